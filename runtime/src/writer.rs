//! Writers: the per-thread handles that append records into slots.
//!
//! A writer owns one open slot per destination node. The per-record path is
//! a route (`series % nodes`, skipped on one node), a length check and a
//! store into memory only this thread touches: no lock and no atomic
//! read-modify-write. Only when a slot fills does the writer seal it, hand it
//! to the node's pipeline and take another, blocking there when the pool is
//! empty. It never waits for its own earlier slots: their sequence numbers
//! keep its inserts in order.

use numatree_core::Record;

use crate::pipeline::Pipelines;
use crate::slot::Slot;
use crate::sync::Arc;
use crate::Error;

/// A handle for inserting records from one thread.
///
/// Records become visible to queries once their slot is merged: after
/// [`Writer::flush`] (or dropping the writer) and then
/// [`Index::flush`](crate::Index::flush). Dropping a writer seals its
/// partial slots; nothing it accepted is lost.
///
/// # Which insert of a key wins
/// Inserting a key that exists replaces its value (upsert). When one insert
/// of a key *happens before* another, the later one wins once both are
/// flushed. One insert happens before another when:
/// - both go through the same writer, one after the other;
/// - they go through successive writers on one thread (the first dropped or
///   flushed before the second inserts);
/// - the first writer's [`flush`](Writer::flush) returned (or it was
///   dropped), and then the thread that inserts second synchronized with it
///   (a channel, a mutex, a join, [`Index::run_writers`](crate::Index::run_writers)
///   returning, ...) before its insert.
///
/// This holds because each node applies sealed slots to each shard in the
/// order they were sealed, and a writer's insert is sealed no later than its
/// `flush` returns. Between inserts of one key that do not happen before
/// one another (concurrent writers, or a writer that has not flushed yet),
/// exactly one of the values remains: which one is unspecified.
#[derive(Debug)]
pub struct Writer {
    pipelines: Arc<Pipelines>,
    /// One open slot per node, taken lazily.
    open: Vec<Option<Slot>>,
    /// The plan index of the node this writer's thread is pinned to.
    home: Option<usize>,
}

impl Writer {
    pub(crate) fn new(pipelines: Arc<Pipelines>, home: Option<usize>) -> Writer {
        for node in &pipelines.nodes {
            node.slots.register_writer();
        }
        let open = (0..pipelines.nodes.len()).map(|_| None).collect();
        Writer {
            pipelines,
            open,
            home,
        }
    }

    /// Inserts one record, replacing the value of an existing key (see
    /// [which insert wins](Writer#which-insert-of-a-key-wins)).
    ///
    /// Blocks while every slot of the destination node is full and merging
    /// (backpressure); never drops the record.
    ///
    /// # Errors
    /// Only when this insert needs a new slot: [`Error::Poisoned`] after a
    /// merge thread panicked, [`Error::Closed`] after [`Index::close`](crate::Index::close),
    /// [`Error::MemoryBudget`] when the budget is spent. The record was not
    /// accepted then; every record accepted before stays.
    #[inline]
    pub fn insert(&mut self, series: u32, ts: i64, value: u64) -> Result<(), Error> {
        let node = self.pipelines.plan.node_of(series);
        let mut record = Record::new(series, ts, value);
        if let Some(slot) = &mut self.open[node] {
            match slot.push(record) {
                Ok(()) => return Ok(()),
                Err(back) => record = back,
            }
        }
        self.insert_slow(node, record)
    }

    #[cold]
    fn insert_slow(&mut self, node: usize, record: Record) -> Result<(), Error> {
        let slot = self.slot_with_room(node)?;
        let pushed = slot.push(record);
        debug_assert!(pushed.is_ok(), "a slot with room takes a record");
        Ok(())
    }

    /// The open slot of `node`, sealing a full one and taking a fresh one.
    fn slot_with_room(&mut self, node: usize) -> Result<&mut Slot, Error> {
        if self.open[node].as_ref().is_some_and(Slot::is_full) {
            if let Some(full) = self.open[node].take() {
                self.pipelines.submit(node, full, self.home)?;
            }
        }
        let slot = match self.open[node].take() {
            Some(slot) => slot,
            None => self.pipelines.acquire(node, self.home)?,
        };
        Ok(self.open[node].insert(slot))
    }

    /// Inserts many records; the same as calling [`insert`](Self::insert)
    /// for each, in order, but copies whole runs into slots.
    ///
    /// # Errors
    /// As [`insert`](Self::insert). On [`Error::MemoryBudget`] or
    /// [`Error::Closed`] the records before the failing one were accepted
    /// (they are merged); on [`Error::Poisoned`] the slot being sealed was
    /// not, and what was merged before stays readable.
    pub fn insert_batch(&mut self, records: &[Record]) -> Result<(), Error> {
        if self.open.len() == 1 {
            let mut rest = records;
            while !rest.is_empty() {
                let copied = self.slot_with_room(0)?.extend_from_slice(rest);
                rest = &rest[copied..];
            }
            return Ok(());
        }
        for r in records {
            self.insert(r.key.series, r.key.ts, r.value)?;
        }
        Ok(())
    }

    /// Seals this writer's partial slots and hands them to the merge pools.
    /// Follow with [`Index::flush`](crate::Index::flush) to wait until they
    /// are visible. Once this returns, every insert made through this writer
    /// happens before any later insert of the same key (see
    /// [which insert wins](Writer#which-insert-of-a-key-wins)).
    ///
    /// # Errors
    /// [`Error::Poisoned`] when a merge thread panicked.
    pub fn flush(&mut self) -> Result<(), Error> {
        let mut result = Ok(());
        for node in 0..self.open.len() {
            if let Some(slot) = self.open[node].take() {
                if slot.is_empty() {
                    self.pipelines.nodes[node].release_slot(slot);
                } else if let Err(e) = self.pipelines.submit(node, slot, self.home) {
                    result = result.and(Err(e));
                }
            }
        }
        result
    }

    /// The plan index of the node this writer's thread is pinned to, if any.
    pub fn home_node(&self) -> Option<usize> {
        self.home
    }

    /// Records buffered in this writer's open slots, not yet sealed.
    pub fn buffered(&self) -> usize {
        self.open.iter().flatten().map(Slot::len).sum()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.flush();
        for node in &self.pipelines.nodes {
            node.unregister_writer();
        }
    }
}

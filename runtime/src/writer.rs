//! Writers: the per-thread handles that append records into slots.
//!
//! A writer owns one open slot per destination node. The per-record path is
//! a route (`series % nodes`, skipped on one node), a length check and a
//! store into memory only this thread touches: no lock and no atomic
//! read-modify-write. Only when a slot fills does the writer seal it, hand it
//! to the node's merge pool and take another, blocking there when the pool
//! is empty.

use numatree_core::Record;

use crate::flush::Ticket;
use crate::index::Shared;
use crate::slot::Slot;
use crate::sync::Arc;
use crate::Error;

/// A handle for inserting records from one thread.
///
/// Records become visible to queries once their slot is merged: after
/// [`Writer::flush`] (or dropping the writer) and then
/// [`Index::flush`](crate::Index::flush). Dropping a writer seals its
/// partial slots; nothing it accepted is lost.
#[derive(Debug)]
pub struct Writer {
    shared: Arc<Shared>,
    /// One open slot per node, taken lazily.
    open: Vec<Option<Box<Slot>>>,
    /// Per node, the ticket of the last slot handed over (merged in order).
    in_flight: Vec<Option<Ticket>>,
    /// The plan index of the node this writer's thread is pinned to.
    home: Option<usize>,
}

impl Writer {
    pub(crate) fn new(shared: Arc<Shared>, home: Option<usize>) -> Writer {
        for node in &shared.nodes {
            node.slots.register_writer();
        }
        let open = (0..shared.nodes.len()).map(|_| None).collect();
        let in_flight = (0..shared.nodes.len()).map(|_| None).collect();
        Writer {
            shared,
            open,
            in_flight,
            home,
        }
    }

    /// Inserts one record, replacing the value of an existing key.
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
        let node = self.shared.node_of(series);
        let record = Record::new(series, ts, value);
        if let Some(slot) = &mut self.open[node] {
            if !slot.is_full() {
                slot.records.push(record);
                return Ok(());
            }
        }
        self.insert_slow(node, record)
    }

    #[cold]
    fn insert_slow(&mut self, node: usize, record: Record) -> Result<(), Error> {
        let slot = self.slot_with_room(node)?;
        slot.records.push(record);
        Ok(())
    }

    /// The open slot of `node`, sealing a full one and taking a fresh one.
    fn slot_with_room(&mut self, node: usize) -> Result<&mut Box<Slot>, Error> {
        if self.open[node].as_ref().is_some_and(|s| s.is_full()) {
            if let Some(full) = self.open[node].take() {
                self.submit(node, full)?;
            }
        }
        if self.open[node].is_none() {
            let slot = self.shared.acquire(node, self.home)?;
            self.open[node] = Some(slot);
        }
        match &mut self.open[node] {
            Some(slot) => Ok(slot),
            None => unreachable!("a slot was just placed"),
        }
    }

    /// Inserts many records; the same as calling [`insert`](Self::insert)
    /// for each, in order, but copies whole runs into slots.
    ///
    /// # Errors
    /// As [`insert`](Self::insert); records before the failing one were accepted.
    pub fn insert_batch(&mut self, records: &[Record]) -> Result<(), Error> {
        if self.open.len() == 1 {
            let mut rest = records;
            while !rest.is_empty() {
                let slot = self.slot_with_room(0)?;
                let n = rest.len().min(slot.capacity - slot.records.len());
                slot.records.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
            }
            return Ok(());
        }
        for r in records {
            self.insert(r.key.series, r.key.ts, r.value)?;
        }
        Ok(())
    }

    /// Seals this writer's partial slots and hands them to the merge pools.
    /// Follow with [`Index::flush`](crate::Index::flush) to wait until they are visible.
    ///
    /// # Errors
    /// [`Error::Poisoned`] when a merge thread panicked.
    pub fn flush(&mut self) -> Result<(), Error> {
        let mut result = Ok(());
        for node in 0..self.open.len() {
            if let Some(slot) = self.open[node].take() {
                if slot.records.is_empty() {
                    self.shared.nodes[node].slots.release(slot);
                } else if let Err(e) = self.submit(node, slot) {
                    result = result.and(Err(e));
                }
            }
        }
        result
    }

    fn submit(&mut self, node: usize, slot: Box<Slot>) -> Result<(), Error> {
        let previous = self.in_flight[node].take();
        self.in_flight[node] = Some(self.shared.submit(node, slot, self.home, previous)?);
        Ok(())
    }

    /// The plan index of the node this writer's thread is pinned to, if any.
    pub fn home_node(&self) -> Option<usize> {
        self.home
    }

    /// Records buffered in this writer's open slots, not yet sealed.
    pub fn buffered(&self) -> usize {
        self.open.iter().flatten().map(|s| s.records.len()).sum()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.flush();
        for node in &self.shared.nodes {
            node.slots.unregister_writer();
        }
    }
}

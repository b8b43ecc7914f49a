//! One NUMA node's pipeline: everything a record meets between a writer's
//! full slot and the node's shard trees, and the protocol around it.
//!
//! A slot's life: a writer takes it from the node's bounded [`SlotPool`]
//! ([`acquire`](NodePipeline::acquire); with none free it helps merge, or
//! parks), fills it, and [`submit`](NodePipeline::submit)s it: the slot is
//! stamped with the next sequence number and the current flush epoch,
//! queued, and one merge job is handed to the node's [`Executor`]. A merge
//! job takes the oldest queued slot, sorts it and hands each shard its part
//! in sequence order (`merge.rs`); the last part applied returns the slot
//! to the pool and marks its epoch merged (the flush barrier).
//!
//! A writer never waits for its own earlier slots: the sequence numbers,
//! not the writer, keep its inserts of a key in order, so it may have as
//! many slots in flight as the pool allows.
//!
//! Why helping has seats. A writer that finds no free slot merges a queued
//! one itself rather than idle, but only while one of the node's helper
//! seats is free ([`HelperSeats`]; `Builder::merge_helpers_per_node`, by
//! default one per writer CPU); the others park. (Once the index is
//! closed, `submit` merges on the writer's thread, seat or not.) A
//! merging thread holds its shards' lanes (`shard.rs`) until it runs
//! again, so a helper that the scheduler preempts for another writer holds
//! up every slot behind it. With 32 writers on one writer CPU, every
//! blocked writer helped, each waited out the other 31 writers' time
//! slices while holding lanes, the merge thread ran out of appliable work,
//! and a fifth of the two CPUs' time went idle (BENCHMARKS.md). With one seat
//! per writer CPU a helper competes only with writers that are filling
//! slots, which soon park.

use std::collections::VecDeque;
use std::time::Instant;

use super::executor::{Executor, Job};
use super::scratch::ScratchPool;
use super::shard::Shard;
use crate::flush::FlushTracker;
use crate::health::{Health, Waiters};
use crate::plan::ShardRule;
use crate::priority::Raised;
use crate::slot::{Binder, Slot, SlotPool};
use crate::stats::{NodeCounters, NodeStats};
use crate::storage::{shard_share, NodeMemory, StorageConfig};
use crate::sync::{lock, Arc, AtomicUsize, Mutex, Ordering, RwLock};
use crate::Error;

/// Called at the start of every slot merge, before any record is touched:
/// a fault-injection point for tests (panic to poison, block to stall).
pub type MergeHook = Arc<dyn Fn(MergeEvent) + Send + Sync>;

/// What a [`MergeHook`] is told about the merge about to run.
#[derive(Clone, Copy, Debug)]
pub struct MergeEvent {
    /// Plan index of the node.
    pub node: usize,
    /// Records in the slot.
    pub records: usize,
}

/// A sealed slot waiting for a merge.
pub(super) struct Sealed {
    pub(super) slot: Slot,
    pub(super) seq: u64,
    pub(super) epoch: u64,
}

/// Sealed slots in seal order, and the next sequence number.
#[derive(Default)]
struct SealedQueue {
    slots: VecDeque<Sealed>,
    next_seq: u64,
}

/// What a node pipeline is built from.
pub(crate) struct NodeSetup {
    /// Plan index of the node.
    pub(crate) index: usize,
    /// Which shard of this node owns a series (the plan's rule).
    pub(crate) rule: ShardRule,
    /// Records per slot, and slots that may be sealed or merging at once.
    pub(crate) slot_capacity: usize,
    pub(crate) in_flight_slots: usize,
    /// Binds slot buffers to the node.
    pub(crate) binder: Binder,
    /// Binds the shards' block arenas to the node (another, in
    /// the placement check's negative control).
    pub(crate) frozen_binder: Binder,
    pub(crate) health: Arc<Health>,
    pub(crate) hook: Option<MergeHook>,
    /// Fault injection for the accounting check: every merge drops the
    /// last record of its run.
    pub(crate) plant_loss: bool,
    /// The nice value writers take while they help merge (`Builder::merge_nice`).
    pub(crate) merge_nice: Option<i32>,
    /// Most writers that help merge at once (`Builder::merge_helpers_per_node`,
    /// by default the node's writer CPUs).
    pub(crate) helper_seats: usize,
    /// How shards keep their blocks.
    pub(crate) storage: StorageConfig,
}

/// Where a writer's thread runs, relative to the node it writes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Pinned to this node: it may help merge here.
    Local,
    /// Pinned to another node: it never merges here (remote memory).
    Remote,
    /// Not pinned: it may help anywhere.
    Unpinned,
}

/// One node's pipeline: slot pool, sealed queue, merge executor, shards,
/// flush tracker and counters.
pub(crate) struct NodePipeline {
    /// Plan index of the node.
    pub(crate) index: usize,
    pub(crate) shards: Vec<Shard>,
    pub(crate) slots: SlotPool,
    sealed: Mutex<SealedQueue>,
    /// Runs merge jobs; taken by `close` (later slots merge on the
    /// submitting thread).
    executor: RwLock<Option<Arc<dyn Executor>>>,
    pub(crate) flush: FlushTracker,
    pub(crate) counters: NodeCounters,
    pub(super) health: Arc<Health>,
    pub(super) rule: ShardRule,
    pub(super) hook: Option<MergeHook>,
    pub(super) plant_loss: bool,
    merge_nice: Option<i32>,
    /// Sort scratches, shared by whoever merges here.
    pub(super) scratch: ScratchPool,
    /// How many writers may help merge here at once.
    helpers: HelperSeats,
}

impl std::fmt::Debug for NodePipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodePipeline")
            .field("index", &self.index)
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl NodePipeline {
    pub(crate) fn new(setup: NodeSetup) -> Self {
        let NodeSetup {
            index,
            rule,
            slot_capacity,
            in_flight_slots,
            binder,
            frozen_binder,
            health,
            hook,
            plant_loss,
            merge_nice,
            helper_seats,
            storage,
        } = setup;
        // The node's shards share its huge chunks (`storage::arena`).
        let memory = NodeMemory::new(frozen_binder, storage.huge_pages);
        let shards = (0..rule.shards())
            .map(|_| Shard::new(rule, storage, &memory))
            .collect();
        NodePipeline {
            index,
            shards,
            // Up to one scratch kept per slot that may be in flight.
            scratch: ScratchPool::new(slot_capacity, binder.clone(), in_flight_slots),
            slots: SlotPool::new(slot_capacity, in_flight_slots, binder),
            sealed: Mutex::new(SealedQueue::default()),
            executor: RwLock::new(None),
            flush: FlushTracker::default(),
            counters: NodeCounters::default(),
            health,
            rule,
            hook,
            plant_loss,
            merge_nice,
            helpers: HelperSeats::new(helper_seats),
        }
    }

    /// Hands merge jobs to `executor` from now on.
    pub(crate) fn start(&self, executor: Box<dyn Executor>) {
        *self.executor.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::from(executor));
    }

    /// Stops handing out merge jobs and returns the executor (whose jobs
    /// already handed out still run): later slots merge on the submitting
    /// thread.
    pub(crate) fn stop(&self) -> Option<Arc<dyn Executor>> {
        self.executor
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// A slot to fill. With none free (backpressure), a writer that may
    /// merge here helps merge the node's sealed slots while it holds one of
    /// the node's [helper seats](HelperSeats), then spins and parks until
    /// a merge returns one.
    ///
    /// # Errors
    /// [`Error::Poisoned`] or [`Error::Closed`].
    pub(crate) fn acquire(&self, origin: Origin) -> Result<Slot, Error> {
        self.health.check()?;
        if let Some(slot) = self.slots.try_acquire() {
            return Ok(slot);
        }
        let c = &self.counters;
        c.backpressure_waits.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let result = loop {
            match self.health.check().map(|()| self.slots.try_acquire()) {
                Ok(Some(slot)) => break Ok(slot),
                Err(e) => break Err(e),
                Ok(None) => {}
            }
            if origin != Origin::Remote && self.help_merge() {
                c.helped_merges.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            break self.slots.wait_for_slot(&self.health);
        };
        c.blocked_ns
            .fetch_add(nanos(started.elapsed()), Ordering::Relaxed);
        result
    }

    /// Merges the oldest sealed slot on this writer's thread, if any and if
    /// a helper's seat is free (otherwise counted as declined), at the
    /// merge priority when one is set (the writer's own priority is
    /// restored after); returns whether it merged one.
    fn help_merge(&self) -> bool {
        let Some(_seat) = self.helpers.take() else {
            self.counters.helps_declined.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        let Some(sealed) = self.pop_sealed() else {
            return false;
        };
        let _raised = self.merge_nice.and_then(|nice| self.raise_to(nice));
        self.merge_sealed(sealed);
        true
    }

    /// Raises the calling thread to nice value `nice` (see
    /// [`Raised`]), counting a refusal.
    fn raise_to(&self, nice: i32) -> Option<Raised> {
        match Raised::to(nice) {
            Ok(raised) => raised,
            Err(_) => {
                self.count_priority_refusal();
                None
            }
        }
    }

    /// How many writers may help merge here at once.
    pub(crate) fn helper_seats(&self) -> usize {
        self.helpers.limit
    }

    /// The nice value merge threads and helping writers take, if set.
    pub(crate) fn merge_nice(&self) -> Option<i32> {
        self.merge_nice
    }

    /// Counts a thread the system refused the merge priority.
    pub(crate) fn count_priority_refusal(&self) {
        self.counters
            .priority_refusals
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Returns an emptied slot to the pool; when the pool frees it instead
    /// (a writer left), writers waiting for memory re-check.
    pub(crate) fn release_slot(&self, slot: Slot) {
        if self.slots.release(slot) {
            self.health.memory_freed();
        }
    }

    /// A writer left (after sealing its slot); when that frees a slot,
    /// writers waiting for memory re-check.
    pub(crate) fn unregister_writer(&self) {
        if self.slots.unregister_writer() {
            self.health.memory_freed();
        }
    }

    /// Seals `slot` and hands it to the node's merges. Once the index is
    /// closed (no executor), merges it on this thread, so late writers lose
    /// nothing.
    ///
    /// # Errors
    /// [`Error::Poisoned`]: the slot's records were not accepted.
    pub(crate) fn submit(self: &Arc<Self>, slot: Slot, origin: Origin) -> Result<(), Error> {
        if let Err(e) = self.health.check_poison() {
            self.release_slot(slot);
            return Err(e);
        }
        let records = slot.len() as u64;
        let c = &self.counters;
        c.records_accepted.fetch_add(records, Ordering::Relaxed);
        c.records_in_flight.fetch_add(records, Ordering::Relaxed);
        c.slots_sealed.fetch_add(1, Ordering::Relaxed);
        let by_origin = match origin {
            Origin::Local => &c.local_records,
            Origin::Remote => &c.remote_records,
            Origin::Unpinned => &c.unpinned_records,
        };
        by_origin.fetch_add(records, Ordering::Relaxed);
        let epoch = self.flush.sealed();
        {
            let mut queue = lock(&self.sealed);
            let seq = queue.next_seq;
            queue.next_seq += 1;
            queue.slots.push_back(Sealed { slot, seq, epoch });
        }
        let executor = self.executor.read().unwrap_or_else(|e| e.into_inner());
        if let Some(executor) = executor.as_ref() {
            let node = Arc::clone(self);
            let job: Job = Box::new(move || {
                node.merge_next();
            });
            executor.spawn(job);
            return Ok(());
        }
        drop(executor);
        while self.merge_next() {}
        self.health.check_poison()
    }

    /// Takes the oldest sealed slot, if any (`None` when there is none).
    pub(super) fn pop_sealed(&self) -> Option<Sealed> {
        lock(&self.sealed).slots.pop_front()
    }

    /// Distinct keys on this node.
    pub(crate) fn keys(&self) -> usize {
        self.shards.iter().map(|s| s.storage.points()).sum()
    }

    /// The node's counters now.
    pub(crate) fn stats(&self) -> NodeStats {
        let frozen = self
            .shards
            .iter()
            .map(|s| s.storage.frozen())
            .fold((0, 0), |(b, p), (sb, sp)| (b + sb, p + sp));
        self.counters.snapshot(
            self.keys(),
            self.slots.existing() * self.slots.slot_bytes(),
            self.scratch.bytes(),
            self.storage_bytes(),
            frozen,
            self.shards
                .iter()
                .map(|s| s.storage.retention_freed())
                .sum(),
        )
    }

    /// Counts `points` removed by retention (the shard's storage counted
    /// them out of its keys), and wakes writers waiting for memory.
    pub(crate) fn dropped(&self, points: usize) {
        self.counters
            .points_dropped
            .fetch_add(points as u64, Ordering::Relaxed);
        if points > 0 {
            self.health.memory_freed();
        }
    }

    /// Removes every point older than `cutoff` from the node's shards.
    pub(crate) fn drop_before(&self, cutoff: i64) {
        for shard in &self.shards {
            let points = shard.storage.drop_before(cutoff);
            self.dropped(points);
        }
    }

    /// Whether a shard's `retain` window is behind its newest timestamp
    /// (see `ShardStorage::catch_up_retention`).
    pub(crate) fn retention_due(&self) -> bool {
        self.shards
            .iter()
            .any(|s| s.storage.catch_up_cutoff().is_some())
    }

    /// Applies each shard's `retain` window at its newest timestamp, on one
    /// of the node's merge threads (the versions it builds are placed on
    /// the node, as a merge's are).
    pub(crate) fn catch_up_retention(&self) {
        self.on_merge_thread(&|| {
            for shard in &self.shards {
                let points = shard.storage.catch_up_retention();
                self.dropped(points);
            }
        });
    }

    /// Removes every point of `series` (in shard `shard`).
    pub(crate) fn drop_series(&self, shard: usize, series: u32) {
        let points = self.shards[shard].storage.drop_series(series);
        self.dropped(points);
    }

    /// Bytes of the node's series storage (blocks, versions, directories).
    pub(crate) fn storage_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.storage.bytes()).sum()
    }

    /// Bytes of memory the node holds: its storage and every slot.
    pub(crate) fn memory_used(&self) -> usize {
        self.storage_bytes() + self.slots.existing() * self.slots.slot_bytes()
    }

    /// Runs `f` on one of the node's merge threads (pinned to the node, so
    /// memory it touches first is placed there) and waits for it; on this
    /// thread once the node is closed.
    pub(crate) fn on_merge_thread(&self, f: &(dyn Fn() + Sync)) {
        // Taken out of the lock: `install` waits, and a thread that runs
        // other jobs meanwhile (a worker of another rayon pool) may submit
        // to this node, taking the read side again while `close` waits for
        // the write side.
        let executor = self
            .executor
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match executor {
            Some(executor) => executor.install(f),
            None => f(),
        }
    }

    /// Pre-allocates and touches blocks for `records` records of at most
    /// `series` series (when known), the in-flight slots and the sort
    /// scratches kept for them. Run on a thread pinned to the node.
    pub(crate) fn reserve(&self, records: usize, series: Option<usize>) {
        self.slots.reserve();
        self.scratch.reserve();
        let (per_shard, series) = shard_share(records, series, self.shards.len());
        for shard in &self.shards {
            shard.storage.reserve(per_shard, series);
        }
    }
}

impl Waiters for NodePipeline {
    /// Wakes every thread waiting on this node (after poison or close).
    fn wake_all(&self) {
        self.slots.wake_all();
        self.flush.wake_all();
    }
}

/// Seats for writers that help merge: at most `limit` at once (see the
/// module docs for why). Taking one never waits.
#[derive(Debug)]
struct HelperSeats {
    taken: AtomicUsize,
    limit: usize,
}

/// A taken seat; dropping it frees the seat.
struct Seat<'a>(&'a HelperSeats);

impl HelperSeats {
    /// `limit` seats, at least one (a limit of 0 would leave every writer
    /// parked while merge threads do all the work).
    fn new(limit: usize) -> Self {
        HelperSeats {
            taken: AtomicUsize::new(0),
            limit: limit.max(1),
        }
    }

    /// A seat, or `None` when all are taken. A seat guards no data (the
    /// merge has its own locks), so the count is relaxed.
    fn take(&self) -> Option<Seat<'_>> {
        self.taken
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Seat(self))
    }
}

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        self.0.taken.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A duration in whole nanoseconds, saturating (584 years).
pub(super) fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::HelperSeats;

    #[test]
    fn helper_seats_hold_at_most_their_limit_and_free_on_drop() {
        let seats = HelperSeats::new(2);
        let first = seats.take().expect("a free seat");
        let second = seats.take().expect("a second free seat");
        assert!(
            seats.take().is_none(),
            "a third writer got one of two seats"
        );
        drop(first);
        let third = seats.take().expect("the seat freed by a drop");
        assert!(seats.take().is_none());
        drop((second, third));
        assert!(seats.take().is_some());
    }

    #[test]
    fn a_node_without_writer_cpus_still_has_one_seat() {
        let seats = HelperSeats::new(0);
        let seat = seats.take();
        assert!(seat.is_some(), "no writer could ever help");
        assert!(seats.take().is_none());
    }
}

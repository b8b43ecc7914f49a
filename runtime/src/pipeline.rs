//! One NUMA node's half of the index: its shards, its slot pool, and the
//! merge step its pinned rayon pool runs on every sealed slot.
//!
//! The merge of a slot: sort it into one strictly ascending run grouped by
//! shard (one counting pass), then merge each shard's sub-run into that
//! shard's tree under the shard's write lock, taking free shards first so
//! concurrent merges of other slots rarely wait, then return the slot to the
//! pool and mark its flush epoch done. Several slots of one node merge at
//! the same time on the pool's threads; they contend only on a shard both
//! touch.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use numatree_core::{sort_dedup, Record, Tree};

use crate::flush::{FlushTracker, Ticket};
use crate::health::{panic_message, Health};
use crate::slot::{Binder, Slot, SlotPool};
use crate::stats::NodeCounters;
use crate::store::ChunkStore;
use crate::sync::{lock, Arc, AtomicUsize, Mutex, Ordering, ShardedLock};

/// Series-id span a merge thread's counting sort handles directly; wider
/// slots fall back to a merge sort.
const COUNT_TABLE: usize = 1 << 16;

/// One shard: a tree and its key count (readable without the lock).
#[derive(Debug)]
pub(crate) struct Shard {
    /// Readers take a per-thread slot of the lock, so concurrent lookups do
    /// not bounce one cache line between cores; merges take all slots.
    pub(crate) tree: ShardedLock<Tree<ChunkStore>>,
    pub(crate) keys: AtomicUsize,
}

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

/// Everything of one node that writers, merges and readers share.
pub(crate) struct NodeShared {
    pub(crate) index: usize,
    pub(crate) shards: Vec<Shard>,
    pub(crate) slots: SlotPool,
    /// Sealed slots waiting for a merge, with their flush epochs. Each is
    /// popped exactly once: by a pool job or by a writer that helps.
    sealed: Mutex<VecDeque<(Box<Slot>, u64, Ticket)>>,
    pub(crate) flush: FlushTracker,
    pub(crate) counters: NodeCounters,
    health: Arc<Health>,
    /// Divisor and modulus of the partition rule (see `plan`).
    node_count: u32,
    shard_count: u32,
    binder: Binder,
    hook: Option<MergeHook>,
}

impl std::fmt::Debug for NodeShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeShared")
            .field("index", &self.index)
            .field("shards", &self.shards.len())
            .finish()
    }
}

thread_local! {
    /// Sort scratch of the merge thread: records and the count table.
    static SCRATCH: RefCell<(Vec<Record>, Vec<u32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// What a node is built from.
pub(crate) struct NodeSetup {
    /// Plan index of the node.
    pub(crate) index: usize,
    /// Nodes in the plan, and this node's shards (the partition rule).
    pub(crate) node_count: usize,
    pub(crate) shard_count: usize,
    /// Records per slot, and slots that may be sealed or merging at once.
    pub(crate) slot_capacity: usize,
    pub(crate) in_flight_slots: usize,
    pub(crate) binder: Binder,
    pub(crate) health: Arc<Health>,
    pub(crate) hook: Option<MergeHook>,
}

impl NodeShared {
    pub(crate) fn new(setup: NodeSetup) -> Self {
        let NodeSetup {
            index,
            node_count,
            shard_count,
            slot_capacity,
            in_flight_slots,
            binder,
            health,
            hook,
        } = setup;
        let shards = (0..shard_count)
            .map(|_| Shard {
                tree: ShardedLock::new(Tree::new(ChunkStore::new(binder.clone()))),
                keys: AtomicUsize::new(0),
            })
            .collect();
        NodeShared {
            index,
            shards,
            slots: SlotPool::new(slot_capacity, in_flight_slots, binder.clone()),
            sealed: Mutex::new(VecDeque::new()),
            flush: FlushTracker::default(),
            counters: NodeCounters::default(),
            health,
            node_count: node_count as u32,
            shard_count: shard_count as u32,
            binder,
            hook,
        }
    }

    /// The shard of this node that owns `series` (the plan's rule).
    #[inline]
    pub(crate) fn shard_of(&self, series: u32) -> usize {
        ((series / self.node_count) % self.shard_count) as usize
    }

    /// Distinct keys on this node.
    pub(crate) fn keys(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.keys.load(Ordering::Acquire))
            .sum()
    }

    /// Pre-allocates and touches tree chunks for `records` records and the
    /// in-flight slots. Run on a thread pinned to the node.
    pub(crate) fn reserve(&self, records: usize) {
        self.slots.reserve();
        let per_shard = records.div_ceil(self.shards.len());
        // Full leaves hold LEAF_CAPACITY records; leave 10% for partial
        // leaves and inner nodes.
        let nodes = (per_shard + per_shard / 10).div_ceil(numatree_core::LEAF_CAPACITY);
        for shard in &self.shards {
            let mut tree = shard.tree.write().unwrap_or_else(|e| e.into_inner());
            if tree.is_empty() {
                let mut store = ChunkStore::new(self.binder.clone());
                store.reserve(nodes);
                *tree = Tree::new(store);
            }
        }
        self.refresh_tree_bytes();
    }

    fn refresh_tree_bytes(&self) {
        use numatree_core::NodeStore;
        let bytes = self
            .shards
            .iter()
            .map(|s| {
                s.tree
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .store()
                    .bytes()
            })
            .sum();
        self.counters.tree_bytes.store(bytes, Ordering::Relaxed);
    }

    /// Queues a sealed slot; the caller then arranges one `merge_next` call.
    pub(crate) fn enqueue(&self, slot: Box<Slot>, epoch: u64, ticket: Ticket) {
        lock(&self.sealed).push_back((slot, epoch, ticket));
    }

    /// Merges the oldest queued slot, if any; returns whether there was one.
    /// A panic in the merge poisons the index instead of unwinding further.
    pub(crate) fn merge_next(&self) -> bool {
        let Some((slot, epoch, ticket)) = lock(&self.sealed).pop_front() else {
            return false;
        };
        if let Err(payload) =
            catch_unwind(AssertUnwindSafe(|| self.merge_slot(slot, epoch, &ticket)))
        {
            self.health.poison(panic_message(&*payload));
        }
        true
    }

    /// Sorts and merges one sealed slot into the shards, then returns it to
    /// the pool.
    fn merge_slot(&self, mut slot: Box<Slot>, epoch: u64, ticket: &Ticket) {
        if let Some(hook) = &self.hook {
            hook(MergeEvent {
                node: self.index,
                records: slot.records.len(),
            });
        }
        let started = Instant::now();
        let len = SCRATCH.with(|scratch| {
            let (records, counts) = &mut *scratch.borrow_mut();
            if records.len() < slot.records.len() {
                records.resize(slot.records.len(), Record::ZERO);
            }
            if counts.len() < COUNT_TABLE {
                counts.resize(COUNT_TABLE, 0);
            }
            sort_dedup(&mut slot.records, records, counts, |s| {
                self.shard_of(s) as u8
            })
            .expect("scratch is sized to the slot")
        });
        let run = &slot.records[..len];
        let mut segments = self.segments(run);
        // Free shards first; then wait for the busy ones.
        segments.retain(
            |(shard, range)| match self.shards[*shard].tree.try_write() {
                Ok(mut tree) => {
                    self.merge_into(&mut tree, *shard, &run[range.clone()]);
                    false
                }
                Err(_) => true,
            },
        );
        for (shard, range) in segments {
            let mut tree = self.shards[shard]
                .tree
                .write()
                .unwrap_or_else(|e| e.into_inner());
            self.merge_into(&mut tree, shard, &run[range]);
        }
        let c = &self.counters;
        c.records_merged.fetch_add(len as u64, Ordering::Relaxed);
        c.slots_merged.fetch_add(1, Ordering::Relaxed);
        c.merge_busy_ns
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.slots.release(slot);
        self.flush.merged(epoch, ticket);
    }

    fn merge_into(&self, tree: &mut Tree<ChunkStore>, shard: usize, run: &[Record]) {
        use numatree_core::NodeStore;
        let bytes_before = tree.store().bytes();
        let stats = tree
            .merge_run(run)
            .expect("a sorted run always merges into a growable store");
        let grown = tree.store().bytes() - bytes_before;
        self.shards[shard]
            .keys
            .fetch_add(stats.inserted, Ordering::Release);
        self.counters.tree_bytes.fetch_add(grown, Ordering::Relaxed);
    }

    /// Splits a run sorted by (shard, key) into one range per shard.
    fn segments(&self, run: &[Record]) -> Vec<(usize, Range<usize>)> {
        let mut segments = Vec::new();
        let mut start = 0;
        while start < run.len() {
            let shard = self.shard_of(run[start].key.series);
            let len = run[start..].partition_point(|r| self.shard_of(r.key.series) == shard);
            segments.push((shard, start..start + len));
            start += len;
        }
        segments
    }

    /// Wakes every thread waiting on this node (after poison or close).
    pub(crate) fn wake_all(&self) {
        self.slots.wake_all();
        self.flush.wake_all();
    }
}

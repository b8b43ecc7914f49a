//! One shard of a node: its tree, and the lane that applies the shard's
//! parts of sealed slots in seal order.
//!
//! Why a lane: slots of one node are sorted in parallel on the node's merge
//! threads and finish sorting in any order, but two inserts of one key must
//! apply in the order their slots were sealed (that is what makes a later
//! insert win). So every sealed slot gets a sequence number, and every
//! slot deposits one part (possibly empty) in every shard's lane. A lane
//! applies parts strictly in sequence order. A thread that sorted a slot
//! first deposits its parts in every lane, then drains the lanes one by one
//! (starting at a lane that depends on the slot, so threads spread out):
//! draining applies every part that is next in order, unless another thread
//! is draining that lane already (it will apply them too). Nobody waits for
//! anybody: a part deposited early is applied by whichever thread drains
//! the lane once the parts before it are there, and that thread is at
//! worst the one that deposits the last missing part, since every deposit
//! is followed by a drain of the same lane.

use std::collections::VecDeque;
use std::ops::Range;

use crate::slot::Slot;
use crate::storage::{NodeMemory, ShardStorage, StorageConfig};
use crate::sync::{lock, Arc, Mutex};

/// A sealed slot, sorted into one run grouped by shard, while its parts
/// are applied. Shared by its parts; the thread that drops the last part
/// finishes the slot (see `NodePipeline::finish`).
#[derive(Debug)]
pub(crate) struct SortedSlot {
    /// The slot; its records are the sorted, deduplicated run.
    pub(crate) slot: Slot,
    /// Seal order within the node.
    pub(crate) seq: u64,
    /// Flush epoch the slot was sealed in.
    pub(crate) epoch: u64,
    /// Records the writer sealed into the slot, before deduplication.
    pub(crate) accepted: usize,
}

/// One shard's part of a sorted slot: a range of its run (empty when the
/// slot holds nothing for the shard).
#[derive(Debug)]
pub(crate) struct Part {
    pub(crate) slot: Arc<SortedSlot>,
    pub(crate) range: Range<usize>,
}

/// Parts waiting for their turn in one shard.
#[derive(Debug, Default)]
struct Lane {
    /// Sequence number of the next part to apply.
    next: u64,
    /// `waiting[i]` is the part of slot `next + i`, once delivered.
    waiting: VecDeque<Option<Part>>,
    /// A thread is applying this lane's parts: others only deposit.
    busy: bool,
}

/// One shard: its series storage (readers take no lock; it counts its
/// own keys) and the lane that orders merges into it.
#[derive(Debug)]
pub(crate) struct Shard {
    pub(crate) storage: ShardStorage,
    lane: Mutex<Lane>,
    /// Negative control for the model tests: `drain` applies the second
    /// part waiting before the first, ignoring seal order.
    #[cfg(test)]
    pub(crate) mutant_ignores_order: std::sync::atomic::AtomicBool,
}

impl Shard {
    /// A shard whose blocks are in `node`'s memory.
    pub(crate) fn new(
        rule: crate::plan::ShardRule,
        config: StorageConfig,
        node: &NodeMemory,
    ) -> Shard {
        Shard {
            storage: ShardStorage::on_node(rule, config, node),
            lane: Mutex::new(Lane::default()),
            #[cfg(test)]
            mutant_ignores_order: Default::default(),
        }
    }

    /// Deposits the part of slot `seq` in the lane. Follow with
    /// [`drain`](Self::drain) of this lane, on the same thread.
    ///
    /// Every sequence number must be deposited exactly once in every lane.
    pub(crate) fn deposit(&self, seq: u64, part: Part) {
        let mut lane = lock(&self.lane);
        let offset = seq
            .checked_sub(lane.next)
            .and_then(|o| usize::try_from(o).ok())
            .expect("each slot's part is deposited once, before its turn passes");
        if lane.waiting.len() <= offset {
            lane.waiting.resize_with(offset + 1, || None);
        }
        debug_assert!(lane.waiting[offset].is_none(), "part {seq} deposited twice");
        lane.waiting[offset] = Some(part);
    }

    /// Applies, with `apply` and outside the lane's lock, every part that is
    /// next in sequence order, unless another thread is draining this lane
    /// already (it applies them instead).
    pub(crate) fn drain(&self, mut apply: impl FnMut(Part)) {
        let mut lane = lock(&self.lane);
        if lane.busy {
            return;
        }
        lane.busy = true;
        loop {
            #[cfg(test)]
            if self
                .mutant_ignores_order
                .load(std::sync::atomic::Ordering::Relaxed)
                && lane.waiting.len() >= 2
                && lane.waiting.iter().take(2).all(Option::is_some)
            {
                lane.waiting.swap(0, 1);
            }
            let Some(part) = lane.waiting.front_mut().and_then(Option::take) else {
                lane.busy = false;
                return;
            };
            lane.waiting.pop_front();
            lane.next += 1;
            drop(lane);
            apply(part);
            lane = lock(&self.lane);
        }
    }
}

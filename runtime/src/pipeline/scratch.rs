//! The sort scratches of a node's merges, kept in one pool per node.
//!
//! Sorting a sealed slot (`merge.rs`) needs scratch space: a slot's worth
//! of records and a count table, 640 KiB at the default 16,384-record slot.
//! Whoever merges takes one from the node's pool, sorts, and gives it back:
//! the node's merge threads, and writers while they help merge. Before, each
//! of those threads kept its own scratch, so at 32 writers 32 scratches were
//! faulted in (this VM faults fresh memory at 1-2.5 GB/s) and each helper
//! sorted through a scratch its cache had not seen. Now a node has as many
//! as ever sorted at once, and keeps up to one per slot that may be in flight
//! (`slots_per_node`; more sorts than that at once, writers that sealed their
//! slots and help while they wait for new ones, make their own and drop them
//! after). The pool is a stack: a sort takes the scratch given back last,
//! the warmest.
//!
//! A scratch's records are a slot's storage, bound to the node like the
//! slots' (`slot::slot_storage`; where binding is not applied, first touch
//! places both, by whichever thread makes them): the counting sort's common
//! case leaves its run in the scratch, and the slot and the scratch then
//! trade storage
//! ([`SlotBuffer::sort_swapping`](numatree_core::SlotBuffer::sort_swapping))
//! instead of copying the run back. A buffer so passes from slot to scratch
//! and back, always of the slot's capacity.
//!
//! Taking and giving back never wait: the stack's lock is only ever tried
//! (a thread preempted while holding it would otherwise stall every sort
//! behind it for a round of the scheduler, with 32 writers on 2 cores). A
//! take that finds it held, or the stack empty, makes a new scratch; a
//! give-back that finds it held, or the stack full, drops the scratch.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use numatree_core::Record;

use crate::slot::{slot_storage, Binder, Slot};

/// Series-id span a counting sort handles directly; slots whose series ids
/// span more fall back to a merge sort (`numatree_core::sort_dedup`).
const COUNT_TABLE: usize = 1 << 16;

/// One sort's scratch: a slot's storage and the count table.
#[derive(Debug)]
struct SortScratch {
    records: Box<[Record]>,
    counts: Box<[u32]>,
}

/// A node's sort scratches that no merge is using, what makes new ones,
/// and the bytes of all of them (in use or not).
///
/// `std`'s lock and atomic under a model checker too: the lock is only
/// tried, never waited for, and the gauge is for the stats; neither is part
/// of any protocol.
#[derive(Debug)]
pub(super) struct ScratchPool {
    free: Mutex<Vec<SortScratch>>,
    /// Scratches the stack keeps.
    kept: usize,
    /// Records a scratch holds: the node's slot capacity.
    capacity: usize,
    binder: Binder,
    /// Bytes of every scratch made and not dropped.
    bytes: AtomicUsize,
}

/// A scratch taken from the pool, given back when dropped (also when a
/// sort panics: the pool and its gauge stay right).
struct Taken<'a> {
    pool: &'a ScratchPool,
    scratch: Option<SortScratch>,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if let Some(scratch) = self.scratch.take() {
            self.pool.give_back(scratch);
        }
    }
}

impl ScratchPool {
    /// A pool of scratches for slots of `capacity` records, bound by
    /// `binder`, that keeps up to `kept` of them (at least one).
    pub(super) fn new(capacity: usize, binder: Binder, kept: usize) -> Self {
        let kept = kept.max(1);
        ScratchPool {
            free: Mutex::new(Vec::with_capacity(kept)),
            kept,
            capacity,
            binder,
            bytes: AtomicUsize::new(0),
        }
    }

    /// Bytes one scratch holds.
    fn scratch_bytes(&self) -> usize {
        self.capacity * size_of::<Record>() + COUNT_TABLE * size_of::<u32>()
    }

    /// A new scratch, counted, its pages bound and touched here.
    fn make(&self) -> SortScratch {
        self.bytes
            .fetch_add(self.scratch_bytes(), Ordering::Relaxed);
        SortScratch {
            records: slot_storage(self.capacity, &self.binder),
            counts: vec![0; COUNT_TABLE].into_boxed_slice(),
        }
    }

    /// The scratch given back last, or a new one.
    fn take(&self) -> Taken<'_> {
        let kept = self.free.try_lock().ok().and_then(|mut free| free.pop());
        Taken {
            pool: self,
            scratch: Some(kept.unwrap_or_else(|| self.make())),
        }
    }

    /// Keeps `scratch` if the stack has room and is free now, else drops it.
    fn give_back(&self, scratch: SortScratch) {
        if let Ok(mut free) = self.free.try_lock() {
            if free.len() < self.kept {
                free.push(scratch);
                return;
            }
        }
        self.bytes
            .fetch_sub(self.scratch_bytes(), Ordering::Relaxed);
    }

    /// Makes the scratches the pool keeps, ahead of the first sorts (a
    /// reserved index: run on a thread of the node, like the slots' reserve).
    pub(super) fn reserve(&self) {
        let missing = self.kept - self.free.lock().map_or(0, |free| free.len());
        for _ in 0..missing {
            let scratch = self.make();
            self.give_back(scratch);
        }
    }

    /// Sorts `slot` (seals it, orders it by `(group(series), key)`, keeps
    /// the last insert of each key) with a scratch taken from the pool, or
    /// made, and given back after; returns the run's length.
    pub(super) fn sort(&self, slot: &mut Slot, group: impl Fn(u32) -> u8) -> usize {
        let mut taken = self.take();
        let scratch = taken.scratch.as_mut().expect("taken until dropped");
        slot.sort_swapping(&mut scratch.records, &mut scratch.counts, group)
            .expect("a scratch holds a whole slot")
            .len()
    }

    /// Bytes of the node's scratches.
    pub(super) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Scratches kept now (for the tests).
    #[cfg(test)]
    fn kept_now(&self) -> usize {
        self.free.lock().map_or(0, |free| free.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use numatree_core::SlotBuffer;
    use std::sync::Barrier;

    const CAPACITY: usize = 64;

    /// A sealed-to-be slot of `CAPACITY` holding rounds of one point per
    /// series (the counting sort's common case: its run ends in the
    /// scratch, so the buffers are traded).
    fn filled_slot() -> Slot {
        let mut slot = SlotBuffer::with_storage(vec![Record::ZERO; CAPACITY].into_boxed_slice());
        for ts in 0..4 {
            for series in (0..8).rev() {
                slot.push(Record::new(series, ts, 0)).unwrap();
            }
        }
        slot
    }

    fn is_sorted(slot: &Slot) -> bool {
        slot.as_slice().windows(2).all(|w| w[0].key < w[1].key)
    }

    #[test]
    fn sorts_one_after_another_share_one_scratch_and_trade_buffers_with_the_slots() {
        let pool = ScratchPool::new(CAPACITY, Binder::default(), 4);
        let mut buffers = Vec::new();
        for _ in 0..5 {
            let mut slot = filled_slot();
            let before = slot.storage().as_ptr() as usize;
            assert_eq!(pool.sort(&mut slot, |_| 0), 32);
            assert!(is_sorted(&slot) && slot.capacity() == CAPACITY);
            buffers.push((before, slot.storage().as_ptr() as usize));
        }
        // Each slot left its buffer in the one scratch and took the one the
        // slot before it had left there.
        for pair in buffers.windows(2) {
            assert_eq!(pair[1].1, pair[0].0, "{buffers:?}");
        }
        assert_eq!(pool.kept_now(), 1);
        assert_eq!(pool.bytes(), pool.scratch_bytes());
    }

    #[test]
    fn a_sort_takes_the_scratch_given_back_last() {
        let pool = ScratchPool::new(CAPACITY, Binder::default(), 4);
        pool.reserve();
        assert_eq!(pool.kept_now(), 4);
        assert_eq!(pool.bytes(), 4 * pool.scratch_bytes());
        // Sorts one after another keep trading with the same scratch: the
        // slot after takes the buffer the slot before left in it.
        let mut left = None;
        for _ in 0..3 {
            let mut slot = filled_slot();
            let before = slot.storage().as_ptr() as usize;
            pool.sort(&mut slot, |_| 0);
            if let Some(left) = left {
                assert_eq!(slot.storage().as_ptr() as usize, left);
            }
            left = Some(before);
        }
        assert_eq!(pool.kept_now(), 4);
    }

    #[test]
    fn a_sort_that_panics_gives_its_scratch_back() {
        let pool = ScratchPool::new(CAPACITY, Binder::default(), 2);
        let mut slot = filled_slot();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.sort(&mut slot, |_| panic!("a planted panic in the sort"))
        }));
        assert!(panicked.is_err());
        assert_eq!(pool.kept_now(), 1);
        assert_eq!(pool.bytes(), pool.scratch_bytes());
    }

    #[test]
    fn sorts_at_once_get_their_own_and_the_pool_keeps_what_it_may() {
        let pool = ScratchPool::new(CAPACITY, Binder::default(), 2);
        let barrier = Barrier::new(3);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    let mut slot = filled_slot();
                    // All three hold a scratch at once: the group function
                    // runs inside the sort.
                    let waited = std::cell::Cell::new(false);
                    pool.sort(&mut slot, |_| {
                        if !waited.replace(true) {
                            barrier.wait();
                        }
                        0
                    });
                    assert!(is_sorted(&slot));
                });
            }
        });
        // The pool keeps two; the third was dropped and its bytes with it.
        assert_eq!(pool.kept_now(), 2);
        assert_eq!(pool.bytes(), 2 * pool.scratch_bytes());
    }
}

//! The sort scratches of a node's merges, kept in one pool per node.
//!
//! Sorting a sealed slot (`merge.rs`) needs scratch space: a slot's worth
//! of records and a count table, 640 KiB at the default 16,384-record slot.
//! Whoever merges takes one from the node's pool, sorts, and gives it back:
//! the node's merge threads, and writers while they help merge. Before, each
//! of those threads kept its own scratch, so at 32 writers 32 scratches were
//! faulted in (this VM faults fresh memory at 1-2.5 GB/s) and each helper
//! sorted through a scratch its cache had not seen. Now the pool keeps one
//! scratch per slot that may be sealed or merging at once (`slots_per_node`),
//! most often warm; sorts beyond that many at once (writers that sealed
//! their slots and help while they wait for new ones) make their own and
//! drop them after.
//!
//! A scratch's records are a slot's storage, bound to the node like the
//! slots' (`slot::slot_storage`): the counting sort's common case leaves
//! its run in the scratch, and the slot and the scratch then trade storage
//! ([`SlotBuffer::sort_swapping`](numatree_core::SlotBuffer::sort_swapping))
//! instead of copying the run back. A buffer so passes from slot to scratch
//! and back, always of the slot's capacity and on the node.
//!
//! The pool is a bounded lock-free queue: taking and giving back never wait,
//! so a thread preempted between the two stalls nobody (at 32 writers on 2
//! cores a lock held across a preemption stalls everyone behind it for a
//! whole round of the scheduler). A take that finds the pool empty makes a
//! new scratch; a give-back that finds it full drops the scratch.

use crossbeam_queue::ArrayQueue;
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
#[derive(Debug)]
pub(super) struct ScratchPool {
    free: ArrayQueue<SortScratch>,
    /// Records a scratch holds: the node's slot capacity.
    capacity: usize,
    binder: Binder,
    /// Bytes of every scratch made and not dropped: a gauge for the stats,
    /// no part of any protocol (so `std`'s atomic, under a model checker too).
    bytes: std::sync::atomic::AtomicUsize,
}

impl ScratchPool {
    /// A pool of scratches for slots of `capacity` records, bound by
    /// `binder`, that keeps up to `kept` of them (at least one).
    pub(super) fn new(capacity: usize, binder: Binder, kept: usize) -> Self {
        ScratchPool {
            free: ArrayQueue::new(kept.max(1)),
            capacity,
            binder,
            bytes: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Bytes one scratch holds.
    fn scratch_bytes(&self) -> usize {
        self.capacity * size_of::<Record>() + COUNT_TABLE * size_of::<u32>()
    }

    /// Sorts `slot` (seals it, orders it by `(group(series), key)`, keeps
    /// the last insert of each key) with a scratch taken from the pool, or
    /// made, and given back after; returns the run's length.
    pub(super) fn sort(&self, slot: &mut Slot, group: impl Fn(u32) -> u8) -> usize {
        let mut scratch = self.free.pop().unwrap_or_else(|| {
            self.bytes
                .fetch_add(self.scratch_bytes(), std::sync::atomic::Ordering::Relaxed);
            SortScratch {
                records: slot_storage(self.capacity, &self.binder),
                counts: vec![0; COUNT_TABLE].into_boxed_slice(),
            }
        });
        let len = slot
            .sort_swapping(&mut scratch.records, &mut scratch.counts, group)
            .expect("a scratch holds a whole slot")
            .len();
        if self.free.push(scratch).is_err() {
            self.bytes
                .fetch_sub(self.scratch_bytes(), std::sync::atomic::Ordering::Relaxed);
        }
        len
    }

    /// Bytes of the node's scratches.
    pub(super) fn bytes(&self) -> usize {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
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
        assert_eq!(pool.free.len(), 1);
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
        assert_eq!(pool.free.len(), 2);
        assert_eq!(pool.bytes(), 2 * pool.scratch_bytes());
    }
}

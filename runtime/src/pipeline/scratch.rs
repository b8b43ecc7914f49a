//! The sort scratches of a node's merges, kept in one pool per node.
//!
//! Sorting a sealed slot (`merge.rs`) needs scratch space: a slot's worth
//! of records and a count table, 640 KiB at the default 16,384-record slot.
//! Whoever merges takes one from the node's pool, sorts, and gives it back:
//! the node's merge threads, and writers while they help merge. Before, each
//! of those threads kept its own scratch, so at 32 writers 32 scratches were
//! faulted in (this VM faults fresh memory at 1-2.5 GB/s) and each helper
//! sorted through a scratch its cache had not seen. Now at most one scratch
//! exists per slot that can be merging at once (no more sorts run at once),
//! each faulted once, by a thread of the node, and most often warm.
//!
//! The pool is a bounded lock-free queue: taking and giving back never wait,
//! so a thread preempted between the two stalls nobody (at 32 writers on 2
//! cores a lock held across a preemption stalls everyone behind it for a
//! whole round of the scheduler). A take that finds the pool empty makes a
//! new scratch; a give-back that finds it full drops the scratch.

use crossbeam_queue::ArrayQueue;
use numatree_core::Record;

/// Series-id span a counting sort handles directly; slots whose series ids
/// span more fall back to a merge sort (`numatree_core::sort_dedup`).
pub(super) const COUNT_TABLE: usize = 1 << 16;

/// One sort's scratch: records and the count table, grown on first use.
#[derive(Debug, Default)]
pub(super) struct SortScratch {
    records: Vec<Record>,
    counts: Vec<u32>,
}

impl SortScratch {
    /// Bytes the scratch holds.
    fn bytes(&self) -> usize {
        self.records.len() * size_of::<Record>() + self.counts.len() * size_of::<u32>()
    }
}

/// A node's sort scratches that no merge is using, and the bytes of all of
/// them (in use or not).
#[derive(Debug)]
pub(super) struct ScratchPool {
    free: ArrayQueue<SortScratch>,
    /// Bytes of every scratch made and not dropped: a gauge for the stats,
    /// no part of any protocol (so `std`'s atomic, under a model checker too).
    bytes: std::sync::atomic::AtomicUsize,
}

impl ScratchPool {
    /// A pool that keeps up to `kept` scratches (at least one).
    pub(super) fn new(kept: usize) -> Self {
        ScratchPool {
            free: ArrayQueue::new(kept.max(1)),
            bytes: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Runs `sort` with a scratch of at least `records` records and a
    /// [`COUNT_TABLE`]-entry count table, taken from the pool (or made)
    /// and given back after.
    pub(super) fn with<R>(
        &self,
        records: usize,
        sort: impl FnOnce(&mut [Record], &mut [u32]) -> R,
    ) -> R {
        let mut scratch = self.free.pop().unwrap_or_default();
        let before = scratch.bytes();
        if scratch.records.len() < records {
            scratch.records.resize(records, Record::ZERO);
        }
        if scratch.counts.len() < COUNT_TABLE {
            scratch.counts.resize(COUNT_TABLE, 0);
        }
        self.add(scratch.bytes() - before);
        let out = sort(&mut scratch.records, &mut scratch.counts);
        if let Err(surplus) = self.free.push(scratch) {
            self.sub(surplus.bytes());
        }
        out
    }

    /// Bytes of the node's scratches.
    pub(super) fn bytes(&self) -> usize {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn add(&self, n: usize) {
        if n > 0 {
            self.bytes
                .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn sub(&self, n: usize) {
        self.bytes
            .fetch_sub(n, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    fn one_scratch(records: usize) -> usize {
        records * size_of::<Record>() + COUNT_TABLE * size_of::<u32>()
    }

    #[test]
    fn sorts_one_after_another_share_one_scratch() {
        let pool = ScratchPool::new(4);
        let mut seen = Vec::new();
        for _ in 0..5 {
            pool.with(100, |records, counts| {
                assert!(records.len() >= 100);
                assert_eq!(counts.len(), COUNT_TABLE);
                seen.push(records.as_ptr() as usize);
            });
        }
        assert!(seen.iter().all(|&p| p == seen[0]), "{seen:?}");
        assert_eq!(pool.bytes(), one_scratch(100));
        // A larger slot grows the kept scratch, and the gauge with it.
        pool.with(300, |records, _| assert!(records.len() >= 300));
        assert_eq!(pool.bytes(), one_scratch(300));
    }

    #[test]
    fn sorts_at_once_get_their_own_and_the_pool_keeps_what_it_may() {
        let pool = ScratchPool::new(2);
        let barrier = Barrier::new(3);
        let starts: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    s.spawn(|| {
                        pool.with(10, |records, _| {
                            // All three hold a scratch at once.
                            barrier.wait();
                            records.as_ptr() as usize
                        })
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut distinct = starts.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 3, "three sorts at once shared a scratch");
        // The pool keeps two; the third was dropped and its bytes with it.
        assert_eq!(pool.free.len(), 2);
        assert_eq!(pool.bytes(), 2 * one_scratch(10));
    }
}

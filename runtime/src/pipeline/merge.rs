//! The merge of one sealed slot: sort it on this thread (slots of a node
//! sort in parallel), deposit every shard's part in the shard's lane, then
//! drain the lanes, which apply parts in seal order (see `shard.rs`).
//!
//! Sorting uses core's [`SlotBuffer::sort_swapping`](numatree_core::SlotBuffer::sort_swapping):
//! one counting pass groups the slot by shard and orders each group by key,
//! keeping only the last insert of a key within the slot. Its scratch comes
//! from the node's pool (`scratch.rs`), whichever thread sorts, and trades
//! buffers with the slot rather than copying the sorted run back. Applying a part
//! merges each series' records into the series' column blocks (see
//! `storage`), which readers keep reading meanwhile.

use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use super::node::{nanos, MergeEvent, NodePipeline, Sealed};
use super::shard::{Part, SortedSlot};
use crate::health::panic_message;
use crate::sync::{Arc, Ordering};

impl NodePipeline {
    /// Merges the oldest sealed slot, if any; returns whether there was one.
    /// A panic in the merge poisons the index instead of unwinding further.
    pub(crate) fn merge_next(&self) -> bool {
        let Some(sealed) = self.pop_sealed() else {
            return false;
        };
        self.merge_sealed(sealed);
        true
    }

    /// Merges one sealed slot taken from the queue; a panic in the merge
    /// poisons the index instead of unwinding further.
    pub(super) fn merge_sealed(&self, sealed: Sealed) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| self.merge(sealed))) {
            self.health.poison(panic_message(&*payload));
        }
    }

    /// Sorts one sealed slot and delivers its part to every shard.
    fn merge(&self, sealed: Sealed) {
        if let Some(hook) = &self.hook {
            hook(MergeEvent {
                node: self.index,
                records: sealed.slot.len(),
            });
        }
        let started = Instant::now();
        let (sorted, ranges) = self.sort(sealed);
        let seq = sorted.seq;
        let sorted = Arc::new(sorted);
        for (shard, range) in self.shards.iter().zip(ranges) {
            let part = Part {
                slot: Arc::clone(&sorted),
                range,
            };
            shard.deposit(seq, part);
        }
        let shards = self.shards.len();
        let first = (seq % shards as u64) as usize;
        for index in (first..shards).chain(0..first) {
            self.shards[index].drain(|part| self.apply(index, part));
        }
        self.finish_if_last(sorted);
        self.counters
            .merge_busy_ns
            .fetch_add(nanos(started.elapsed()), Ordering::Relaxed);
    }

    /// Sorts the slot into a run grouped by shard; returns it with each
    /// shard's range of the run.
    fn sort(&self, sealed: Sealed) -> (SortedSlot, Vec<Range<usize>>) {
        let Sealed {
            mut slot,
            seq,
            epoch,
        } = sealed;
        let accepted = slot.len();
        let rule = self.rule;
        let mut len = self.scratch.sort(&mut slot, |s| rule.shard_of(s) as u8);
        self.counters
            .records_superseded
            .fetch_add((accepted - len) as u64, Ordering::Relaxed);
        if self.plant_loss {
            len = len.saturating_sub(1);
        }
        let run = &slot.as_slice()[..len];
        let mut ranges = Vec::with_capacity(self.shards.len());
        let mut start = 0;
        for shard in 0..self.shards.len() {
            let end =
                start + run[start..].partition_point(|r| rule.shard_of(r.key.series) == shard);
            ranges.push(start..end);
            start = end;
        }
        debug_assert_eq!(start, len, "the run is grouped by shard in shard order");
        let sorted = SortedSlot {
            slot,
            seq,
            epoch,
            accepted,
        };
        (sorted, ranges)
    }

    /// Merges one part into its shard's tree (in the shard's seal order:
    /// called by the shard's lane).
    fn apply(&self, index: usize, part: Part) {
        if !part.range.is_empty() {
            let shard = &self.shards[index];
            let run = &part.slot.slot.as_slice()[part.range.clone()];
            let stats = shard.storage.merge_run(run);
            let c = &self.counters;
            c.records_inserted
                .fetch_add(stats.inserted as u64, Ordering::Relaxed);
            c.records_updated
                .fetch_add(stats.replaced as u64, Ordering::Relaxed);
            c.records_expired
                .fetch_add(stats.expired as u64, Ordering::Relaxed);
            if stats.dropped > 0 {
                self.dropped(stats.dropped);
            }
        }
        self.finish_if_last(part.slot);
    }

    /// Drops one reference to a sorted slot; the last one (every part
    /// applied) returns the slot to the pool and marks its epoch merged.
    fn finish_if_last(&self, sorted: Arc<SortedSlot>) {
        let Some(done) = Arc::into_inner(sorted) else {
            return;
        };
        let c = &self.counters;
        c.records_in_flight
            .fetch_sub(done.accepted as u64, Ordering::Relaxed);
        c.slots_merged.fetch_add(1, Ordering::Relaxed);
        self.release_slot(done.slot);
        self.flush.merged(done.epoch);
        self.health.merged();
    }
}

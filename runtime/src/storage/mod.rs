//! Where a shard's points live: per series, time-ordered column blocks
//! (timestamps and values in separate columns, 16 bytes a point, no series
//! id per point) and a small index over them (each block's first
//! timestamp), found through the shard's series directory. The layouts and
//! algorithms are `numatree-core`'s ([`numatree_core::series`]); this
//! module puts them in memory that readers share with the merge.
//!
//! # The reader protocol: readers never block merges, merges never wait
//!
//! Only one thread merges into a shard at a time (the shard's lane), and
//! readers take no lock at all:
//!
//! 1. **Directory.** A reader pins an epoch, loads the current table and
//!    probes for the series' slot, which names the series' cell, whose
//!    version it loads (plain `Acquire` loads: no lock, no reference count,
//!    no wait for the merge). A new series' cell is published before the
//!    slot that leads to it (`Release`). The merge grows the table by
//!    publishing a copy (cells never move, so both tables lead to the same
//!    versions).
//! 2. **Versions.** A series version (its block index) is immutable. A
//!    merge that adds, splits or replaces blocks builds a new version over
//!    new blocks written in full beforehand, and publishes it: a reader
//!    sees the old version or the new one, each whole.
//! 3. **Blocks.** A block is atomic words `[len, ts.., values..]`. The
//!    merge appends to a tail block beyond its published length and then
//!    stores the new length (`Release`); a reader loads the length
//!    (`Acquire`) and reads below it. Published points are never written
//!    again: a late point or an update builds a new block (copy on write),
//!    so a reader never sees a torn or half-moved value, nor a point of
//!    another series.
//! 4. **Reclamation.** A replaced version (or table, or list of cell
//!    chunks) is destroyed only after every reader pinned before the
//!    replacement has unpinned (`crossbeam_epoch`); blocks are reference
//!    counted by the versions that index them, so a replaced block lives
//!    until the last version that indexes it is destroyed. Nobody waits for
//!    anybody.
//!
//! Every point visible to a read is visible to every later read (the merge
//! only publishes supersets of what a version held, or the same points with
//! newer values), so a scan never misses a point a previous read returned.
//! The protocol is model-checked in `model_tests` (publication of appends
//! and of new versions, with a negative control that publishes before
//! writing).

mod block;
mod directory;
mod series;

use std::ops::RangeBounds;

use numatree_core::{MergeStats, Record};

use crate::plan::ShardRule;
use crate::sync::{flush, lock, pin, AtomicUsize, Mutex, Ordering};

use self::block::{block_bytes, new_block, MAX_POINTS};
use self::directory::Directory;
use self::series::Reserve;

pub(crate) use self::block::Block;

/// One shard's series, shared by its merge and any number of readers.
#[derive(Debug)]
pub(crate) struct ShardStorage {
    directory: Directory,
    /// Bytes held: blocks (reserved ones included), versions, the table.
    bytes: AtomicUsize,
    /// State only the merge touches: full-size blocks reserved ahead.
    reserve: Mutex<Reserve>,
    /// Negative control for the model tests: blocks publish before writing.
    #[cfg(test)]
    mutant_publish_first: std::sync::atomic::AtomicBool,
}

impl Default for ShardStorage {
    /// The storage of the only shard of a one-node plan.
    fn default() -> Self {
        Self::new(ShardRule::new(1, 1))
    }
}

impl ShardStorage {
    /// An empty shard whose series follow `rule`.
    pub(crate) fn new(rule: ShardRule) -> Self {
        let directory = Directory::new(rule);
        ShardStorage {
            bytes: AtomicUsize::new(directory.bytes()),
            directory,
            reserve: Mutex::new(Reserve::default()),
            #[cfg(test)]
            mutant_publish_first: Default::default(),
        }
    }

    /// The value of `(series, ts)`, if merged.
    #[inline]
    pub(crate) fn get(&self, series: u32, ts: i64) -> Option<u64> {
        self.directory.with(series, |s| s.get(ts)).flatten()
    }

    /// Calls `f(ts, value)` for the points of `series` with `ts` in
    /// `range`, ascending, at most `limit`; returns how many.
    pub(crate) fn scan(
        &self,
        series: u32,
        range: impl RangeBounds<i64>,
        limit: usize,
        f: impl FnMut(i64, u64),
    ) -> usize {
        self.directory
            .with(series, |s| s.scan(range, limit, f))
            .unwrap_or(0)
    }

    /// Merges a run strictly ascending by `(series, ts)` (the shard's part
    /// of a sorted slot). One thread at a time: the shard's lane.
    pub(crate) fn merge_run(&self, run: &[Record]) -> MergeStats {
        let mut reserve = lock(&self.reserve);
        let guard = pin();
        let mut directory = self.directory.writer(&guard);
        directory.warm(run, &mut reserve.cells);
        let mut stats = MergeStats::default();
        let (mut grown, mut freed) = (0, 0);
        let mut retired = 0;
        let mut start = 0;
        while start < run.len() {
            let id = run[start].key.series;
            let end = start + run[start..].partition_point(|r| r.key.series == id);
            #[cfg(test)]
            {
                reserve.mutant_publish_first = self
                    .mutant_publish_first
                    .load(std::sync::atomic::Ordering::Relaxed);
            }
            let merged = directory.current(id, |current| {
                series::merge(current, &run[start..end], &mut reserve)
            });
            stats.inserted += merged.stats.inserted;
            stats.replaced += merged.stats.replaced;
            grown += merged.allocated;
            freed += merged.released;
            if let Some(version) = merged.version {
                grown += directory.publish(id, version);
                retired += 1;
            }
            start = end;
        }
        self.bytes.fetch_add(grown, Ordering::Relaxed);
        self.bytes.fetch_sub(freed, Ordering::Relaxed);
        // Hand what this run retired to the collector now and collect as
        // much as it retired, so replaced versions and blocks are freed as
        // soon as readers allow instead of piling up (the collector frees a
        // few bags of 64 per call).
        flush(guard, retired);
        stats
    }

    /// Negative control for the model tests: from now on, blocks publish
    /// their length before their points are written.
    #[cfg(all(test, any(loom, shuttle)))]
    pub(crate) fn set_mutant_publish_first(&self) {
        self.mutant_publish_first
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Allocates and touches full-size blocks for about `points` more
    /// points (call from a thread pinned to the node).
    pub(crate) fn reserve(&self, points: usize) {
        let mut reserve = lock(&self.reserve);
        let blocks = points.div_ceil(MAX_POINTS);
        reserve.blocks.reserve(blocks);
        for _ in 0..blocks {
            reserve.blocks.push(new_block(MAX_POINTS));
        }
        self.bytes
            .fetch_add(blocks * block_bytes(MAX_POINTS), Ordering::Relaxed);
    }

    /// Bytes `reserve(points)` takes, or `None` past `usize`.
    pub(crate) fn reserved_bytes(points: usize) -> Option<usize> {
        points
            .div_ceil(MAX_POINTS)
            .checked_mul(block_bytes(MAX_POINTS))
    }

    /// Bytes of memory the shard holds (blocks, versions, directory).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Checks every series' invariants; returns the shard's point count.
    ///
    /// # Errors
    /// The first violation found.
    pub(crate) fn validate(&self) -> Result<usize, String> {
        let mut points = 0;
        let mut result = Ok(());
        self.directory
            .for_each(|id, series| match series.validate() {
                Ok(n) => points += n,
                Err(e) if result.is_ok() => result = Err(format!("series {id}: {e}")),
                Err(_) => {}
            });
        result.map(|()| points)
    }

    /// Calls `f` with every block of every series, and every reserved block.
    pub(crate) fn for_each_block(&self, mut f: impl FnMut(&Block)) {
        self.directory
            .for_each(|_, series| series.blocks().for_each(&mut f));
        lock(&self.reserve).blocks.iter().for_each(f);
    }
}

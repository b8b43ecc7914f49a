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
//! 1. **Directory.** A reader pins an epoch and finds the series' cell:
//!    at its rank in the shard for dense ids (a direct cell, in chunks set
//!    once), else through the current table's slot, which names the cell.
//!    It loads the cell's version (plain `Acquire` loads: no lock, no
//!    reference count, no wait for the merge). A new series' cell is
//!    published before the slot that leads to it (`Release`). The merge
//!    grows the table by publishing a copy (cells never move, so both
//!    tables lead to the same versions). A short series' cell holds its
//!    one block instead of a version (`cell`): the reader sees the same
//!    version, made on its stack. The merge appends to that block through
//!    the cell, in place (3.) or into a block a size class up that it then
//!    stores into the cell as it would a version (`append`).
//! 2. **Versions.** A series version (its block index) is immutable. A
//!    merge that adds, splits or replaces blocks builds a new version over
//!    new blocks written in full beforehand, and publishes it: a reader
//!    sees the old version or the new one, each whole.
//! 3. **Blocks.** A block is atomic words: its length, its timestamps, its
//!    values (flat, one allocation; or segmented, a tail whose segments are
//!    allocated as it fills, each set before a point in it is written). The
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
//! newer values), so a scan never misses a point a previous read returned;
//! the one exception is retention, which publishes versions without the
//! points it drops.
//!
//! # The life of a block
//!
//! - **Hot**: a series' newest block, atomic words the merge appends to. A
//!   series' first block grows through size classes (`block`: a short
//!   series holds a short block). A long series' next block has 256
//!   points at once; with freezing on it is segmented (`segmented`): it
//!   takes memory in segments of 16, 16, 32, 64 and 128 points as it
//!   fills, without a copy or a new version, so a long series' one hot
//!   block holds at most about twice its points' bytes.
//!   When a tail is frozen, the merge keeps it (`segmented::Spare`) and
//!   makes a later tail of it once no version holds it (`Arc::get_mut`:
//!   the versions that indexed it were reclaimed, so no reader can reach
//!   it); its segments come back one by one as that tail fills. The
//!   system allocator's calls were a third of the merge's time; a new tail
//!   now takes none in the steady state. What is kept (at most 256 tails a
//!   shard) is not in the shard's byte count, like retired versions
//!   awaiting reclamation, and `Index::flush` frees it.
//!   A hot block's words (a flat block; a segmented block's length and
//!   head, and each of its segments) are pieces of the shard's arena
//!   (`arena::HotWords`, reference counted like an `Arc<[AtomicU64]>`), as
//!   frozen blocks are: bound to the shard's node whichever thread merges,
//!   reads or frees them. They were heap memory placed by the merging
//!   thread's first touch until the sixteenth session, and Linux's NUMA
//!   balancing moved every one that another node's thread read often to
//!   that node (the numa-vm guest showed it); a block that another node's
//!   thread freed could also be that thread's next allocation of its size
//!   (glibc's per-thread cache). Every block's points are in the arena
//!   now; heap memory holds the structure (directory tables, frozen runs'
//!   shared index, boxed versions, a segmented block's small `Arc` of
//!   pointers to its pieces).
//! - **Frozen** (`frozen`): when a merge publishes a version in which a
//!   block is no longer the newest, it encodes that block with core's codec
//!   into an immutable byte string (1-3 bytes a point for regular
//!   timestamps and gauge or counter values; random values stay raw), a
//!   piece of the shard's arena (`arena`: chunks bound to the shard's node,
//!   so a frozen block is on its node whichever thread frees it, as hot
//!   blocks are). A
//!   version holds hot and frozen blocks alike (`series::Stored`); readers
//!   decode a frozen block into a buffer on their stack (a scan decodes
//!   its timestamps, then the values of the points it returns only:
//!   `BlockSource::block_within`). A late point into
//!   a frozen block thaws it (decodes it into a hot block), merges, and the
//!   new version freezes the result again: copy on write, as for hot blocks.
//! - **Idle** (`idle`, with `Builder::freeze_idle_after`): a series whose
//!   newest point falls that far behind the newest merged into its shard
//!   has its newest block frozen too, by a sweep the merge runs as the
//!   horizon moves (as `retain`'s); its next point thaws the block, as a
//!   late point does.
//! - **Dropped** (`retention`): `drop_before` raises the shard's floor
//!   (records below it that are merged later expire) and publishes every
//!   series without its older blocks, cutting the block that holds the
//!   cutoff exactly; `drop_series` publishes an empty version. Both run
//!   under the merge lock; readers keep the versions they hold, whose
//!   blocks are freed once they unpin.
//!
//! The shard counts its bytes (and its frozen bytes and points) from the
//! footprints of the versions it publishes and replaces, plus the segments
//! a merge adds to a published tail in place, plus its reserve (hot blocks
//! and arena chunks not taken yet); `validate` checks the counts against
//! what the versions and the reserve hold (`accounting`).
//! The protocol is model-checked in `model_tests` (publication of appends,
//! short series' included, of segments and of new versions, and the reuse
//! of frozen tails, with
//! negative controls that publish before writing, flat and segmented, and
//! that reuse a tail a version still holds).

mod accounting;
mod append;
mod arena;
pub use arena::mapped_bytes;
pub(crate) use arena::NodeMemory;
mod block;
mod cell;
mod directory;
mod frozen;
mod idle;
mod image;
mod merge;
mod prefetch;
mod reserve;
mod retention;
mod segmented;
mod series;

pub(crate) use self::reserve::shard_share;
#[cfg(all(test, not(any(loom, shuttle))))]
use self::reserve::{RESERVED_FROZEN_BYTES_PER_POINT, RESERVED_TAILS_PER_SERIES};

use std::ops::RangeBounds;

use numatree_core::{PointSink, Record};

use crate::plan::ShardRule;
use crate::slot::Binder;
use crate::sync::{flush, lock, pin, AtomicUsize, Mutex, Ordering};
// Written under the shard's merge lock only, so not model-checked.
use std::sync::atomic::AtomicI64;

use self::accounting::Change;
use self::arena::Arena;
#[cfg(all(test, not(any(loom, shuttle))))]
use self::block::{Block, MAX_POINTS};
use self::directory::Directory;
use self::frozen::Encoder;
use self::merge::Reserve;
use self::series::Footprint;

/// How a shard keeps its blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StorageConfig {
    /// Freeze (encode) every block that is no longer its series' newest.
    pub(crate) freeze: bool,
    /// Keep only points within this much time of the newest merged into
    /// the shard (the merge drops older ones).
    pub(crate) retain: Option<i64>,
    /// Freeze a series' newest block too once its newest point is this
    /// much older than the newest merged into the shard (`idle`).
    pub(crate) freeze_idle: Option<i64>,
    /// Blocks (hot and frozen) in huge pages past the arena's first
    /// chunks (see `arena`).
    pub(crate) huge_pages: bool,
}

/// What merging one run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RunStats {
    /// Records that added a point.
    pub(crate) inserted: usize,
    /// Records that replaced a point's value.
    pub(crate) replaced: usize,
    /// Records older than the retention floor, not merged.
    pub(crate) expired: usize,
    /// Points removed by the retention the merge applied.
    pub(crate) dropped: usize,
}

/// A block of the shard, for finding where its memory is.
pub(crate) enum BlockMemory<'a> {
    Hot(&'a [crate::sync::AtomicU64]),
    Frozen(&'a [u8]),
}

/// One shard's series, shared by its merge and any number of readers.
#[derive(Debug)]
pub(crate) struct ShardStorage {
    directory: Directory,
    config: StorageConfig,
    /// Bytes held: blocks (reserved ones included), versions, the table.
    bytes: AtomicUsize,
    /// Points held (the shard's distinct keys), changed only under
    /// `reserve`'s lock by whatever adds or removes them (merges, sweeps,
    /// drops, restores), so it never runs below zero: counted outside the
    /// lock, after a merge, a `drop_before` in between took the merge's
    /// points away before they were added.
    points: AtomicUsize,
    /// Bytes and points of frozen blocks (part of the above).
    frozen_bytes: AtomicUsize,
    frozen_points: AtomicUsize,
    /// Bytes retention freed so far (versions and blocks it replaced,
    /// less what replaced them).
    retention_freed: AtomicUsize,
    /// Points older than this are dropped (`i64::MIN`: none); only grows.
    floor: AtomicI64,
    /// The newest timestamp merged (for `retain` and `freeze_idle`).
    newest: AtomicI64,
    /// The cutoff of the last sweep for idle series (`i64::MIN`: none).
    idle_floor: AtomicI64,
    /// State only the merge touches: full-size blocks reserved ahead.
    reserve: Mutex<Reserve>,
    /// The arena the merge carves blocks from, through its encoder (a
    /// second handle): its reserved chunks are counted in `bytes` until
    /// started.
    arena: Arena,
    /// Negative control for the model tests: blocks publish before writing.
    #[cfg(test)]
    mutant_publish_first: std::sync::atomic::AtomicBool,
    /// Negative control for the model tests: frozen tails are reused while
    /// versions still hold them.
    #[cfg(test)]
    mutant_reuse_held: std::sync::atomic::AtomicBool,
}

impl Default for ShardStorage {
    /// The storage of the only shard of a one-node plan.
    fn default() -> Self {
        Self::new(ShardRule::new(1, 1), StorageConfig::default())
    }
}

impl ShardStorage {
    /// An empty shard whose series follow `rule`, its blocks in memory
    /// bound to no node (huge chunks of its own when `config` says).
    pub(crate) fn new(rule: ShardRule, config: StorageConfig) -> Self {
        Self::on_node(
            rule,
            config,
            &NodeMemory::new(Binder::default(), config.huge_pages),
        )
    }

    /// An empty shard whose series follow `rule`, its blocks in `node`'s
    /// memory (which the node's shards share: see `arena`).
    pub(crate) fn on_node(rule: ShardRule, config: StorageConfig, node: &NodeMemory) -> Self {
        let directory = Directory::new(rule);
        let arena = Arena::new(node);
        ShardStorage {
            bytes: AtomicUsize::new(directory.bytes()),
            directory,
            config,
            points: AtomicUsize::new(0),
            frozen_bytes: AtomicUsize::new(0),
            frozen_points: AtomicUsize::new(0),
            retention_freed: AtomicUsize::new(0),
            floor: AtomicI64::new(i64::MIN),
            newest: AtomicI64::new(i64::MIN),
            idle_floor: AtomicI64::new(i64::MIN),
            reserve: Mutex::new(Reserve::new(Encoder::new(arena.clone()))),
            arena,
            #[cfg(test)]
            mutant_publish_first: Default::default(),
            #[cfg(test)]
            mutant_reuse_held: Default::default(),
        }
    }

    /// Whether the shard's frozen blocks may live in huge pages.
    pub(crate) fn huge_pages(&self) -> bool {
        self.config.huge_pages
    }

    /// The value of `(series, ts)`, if merged.
    #[inline]
    pub(crate) fn get(&self, series: u32, ts: i64) -> Option<u64> {
        self.directory.get(series, ts)
    }

    /// Gives `sink` the points of `series` with `ts` in
    /// `range`, ascending, at most `limit`; returns how many.
    pub(crate) fn scan(
        &self,
        series: u32,
        range: impl RangeBounds<i64>,
        limit: usize,
        sink: impl PointSink,
    ) -> usize {
        self.directory.scan(series, range, limit, sink)
    }

    /// Merges a run strictly ascending by `(series, ts)` (the shard's part
    /// of a sorted slot), leaving out records older than the retention
    /// floor, then applies the shard's `retain` setting. One thread at a
    /// time: the shard's lane.
    pub(crate) fn merge_run(&self, run: &[Record]) -> RunStats {
        let mut reserve = lock(&self.reserve);
        let guard = pin();
        let mut directory = self.directory.writer(&guard);
        directory.warm(run, &mut reserve.cells);
        let floor = self.floor.load(Ordering::Relaxed);
        let mut stats = RunStats::default();
        let mut change = Change::default();
        let mut retired = 0;
        let mut newest = i64::MIN;
        let mut start = 0;
        while start < run.len() {
            let id = run[start].key.series;
            let end = series_end(run, start);
            let kept = if run[start].key.ts >= floor {
                start
            } else {
                start + run[start..end].partition_point(|r| r.key.ts < floor)
            };
            stats.expired += kept - start;
            if kept == end {
                start = end;
                continue;
            }
            newest = newest.max(run[end - 1].key.ts);
            #[cfg(test)]
            {
                reserve.mutant_publish_first = self
                    .mutant_publish_first
                    .load(std::sync::atomic::Ordering::Relaxed);
                reserve.mutant_reuse_held = self
                    .mutant_reuse_held
                    .load(std::sync::atomic::Ordering::Relaxed);
            }
            retired += self.merge_series(
                &mut directory,
                id,
                &run[kept..end],
                &mut reserve,
                (&mut stats, &mut change),
            );
            start = end;
        }
        retired += self.sweep_horizon(
            &mut directory,
            &mut reserve,
            (newest, floor),
            &mut stats,
            &mut change,
        );
        // Counted before the lock goes, so that `validate` (which takes it)
        // never sees the published versions without their bytes, and a
        // drop never takes points away before they were counted.
        self.account(&change);
        self.count_points(stats.inserted, stats.dropped);
        // What the run's stores replaced goes to the collector a chunk at
        // a time: the flush below counts the chunks' destructions, not the
        // words in them.
        let (gathered, deferred) = std::mem::take(&mut reserve.retired).finish(&guard);
        retired = retired.saturating_sub(gathered) + deferred;
        drop(reserve);
        // Hand what this run retired to the collector now and collect as
        // much as it retired, so replaced versions and blocks are freed as
        // soon as readers allow instead of piling up (the collector frees a
        // few bags of 64 per call).
        flush(guard, retired);
        stats
    }

    /// Merges `part` (series `id`'s records of a run, strictly ascending)
    /// into the series, counting what changed into `stats` and `change`;
    /// returns the versions it retired (none or one: gathered into the
    /// run's `Reserve::retired`, which `merge_run` counts apart). A short
    /// series' appends go through its cell (`append::append_short`); other runs
    /// make a version (`append_fast`, else the general merge), stored into
    /// the series' cell, or published with a new one for a new series.
    fn merge_series(
        &self,
        directory: &mut directory::DirectoryWriter<'_>,
        id: u32,
        part: &[Record],
        reserve: &mut Reserve,
        (stats, change): (&mut RunStats, &mut Change),
    ) -> usize {
        /// What a series merge left to publish.
        enum Outcome {
            /// Nothing replaced: points appended in place, or none kept.
            Unchanged,
            /// A new version (or short block) stored into the series' cell.
            Replaced,
            /// The first version of a new series, left in `new_version`
            /// (not in the outcome: every series merge's outcome is
            /// returned through `with_version`, and a `Series` in it made
            /// each return copy 96 bytes).
            New,
        }
        let mut new_version = None;
        let guard = directory.guard();
        let outcome = directory.cell(id, |cell| {
            if let Some(short) = cell.and_then(|c| append::append_short(c, part, reserve, guard)) {
                stats.inserted += short.inserted;
                let Some((before, after)) = short.regrown else {
                    return Outcome::Unchanged;
                };
                change.replace(
                    Some(Footprint::of_bytes(before)),
                    Footprint::of_bytes(after),
                );
                return Outcome::Replaced;
            }
            // The merge's counts go into the run's here, and only the new
            // version comes out: handing the whole `Merged` back was a
            // `memcpy` call a series (a point, in a high-cardinality run).
            directory::with_version(cell, guard, |current| {
                let merged = append::append_fast(current, part, reserve)
                    .unwrap_or_else(|| merge::merge(current, part, reserve, self.config.freeze));
                stats.inserted += merged.stats.inserted;
                stats.replaced += merged.stats.replaced;
                change.from_reserve += merged.from_reserve;
                change.grown += merged.grown;
                let Some(version) = merged.version else {
                    return Outcome::Unchanged;
                };
                change.replace(current.map(series::Series::footprint), version.footprint());
                match cell {
                    // Into the cell found above: no second look-up. The
                    // version replaced stays readable (`current` too)
                    // until the guard is dropped.
                    Some(cell) => {
                        cell.store_retiring(version, guard, &mut reserve.retired);
                        Outcome::Replaced
                    }
                    None => {
                        new_version = Some(version);
                        Outcome::New
                    }
                }
            })
        });
        match outcome {
            Outcome::Unchanged => 0,
            Outcome::Replaced => 1,
            Outcome::New => {
                let version = new_version.expect("a new series' version");
                change.grown += directory.publish(id, version);
                1
            }
        }
    }

    /// Negative control for the model tests: from now on, blocks publish
    /// their length before their points are written.
    #[cfg(all(test, any(loom, shuttle)))]
    pub(crate) fn set_mutant_publish_first(&self) {
        self.mutant_publish_first
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Negative control for the model tests: from now on, a new tail is
    /// made of the oldest frozen one even while a version holds it.
    #[cfg(all(test, any(loom, shuttle)))]
    pub(crate) fn set_mutant_reuse_held(&self) {
        self.mutant_reuse_held
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Where the records of the series that starts at `run[start]` end, in a
/// run grouped by series. Gallops (1, 2, 4, ... records ahead) and then
/// bisects the last step: a series of `n` records in the run costs about
/// `2 log2 n` loads next to `start`, where a bisection of the whole rest
/// of the run cost ~12 dependent loads across it for every series (14% of
/// the merge's samples at 16 records a series).
fn series_end(run: &[Record], start: usize) -> usize {
    let id = run[start].key.series;
    let rest = &run[start..];
    let mut ahead = 1;
    while ahead < rest.len() && rest[ahead].key.series == id {
        ahead *= 2;
    }
    // `rest[ahead / 2]` is of the series (`rest[0]` when `ahead` is 1).
    let from = ahead / 2;
    let to = ahead.min(rest.len());
    start + from + rest[from..to].partition_point(|r| r.key.series == id)
}

/// Publishes, for every series of the directory, the new version `f`
/// makes of its current one (`None`: it stays); returns what changed and
/// how many versions were published (each retires one). The sweeps of
/// retention and of idle series.
fn republish(
    directory: &mut directory::DirectoryWriter<'_>,
    mut f: impl FnMut(&series::Series) -> Option<series::Series>,
) -> (Change, usize) {
    let mut change = Change::default();
    let mut versions = Vec::new();
    directory.for_each(|id, series| {
        if let Some(version) = f(series) {
            change.replace(Some(series.footprint()), version.footprint());
            versions.push((id, version));
        }
    });
    let published = versions.len();
    for (id, version) in versions {
        change.grown += directory.publish(id, version);
    }
    (change, published)
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests;

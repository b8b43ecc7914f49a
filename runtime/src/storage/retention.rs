//! Retention: removing every point older than a cutoff from a shard, by
//! whole blocks where a block lies entirely before it, and exactly at the
//! edge (the block that holds the cutoff is rewritten with the points at or
//! after it). Runs under the shard's merge lock, so it never races a merge
//! of the same shard; readers go on reading the versions they hold, and
//! the freed blocks go back to node memory once they are done.
//!
//! Here too: the retention floor (`floor`, `raise_floor`), the sweeps a
//! merge run makes as the shard's horizon moves (`sweep_horizon`: the
//! `retain` window, and freezing idle series, `super::idle`), and the
//! index's explicit removals (`drop_before`, `drop_series`).

use numatree_core::{BlockRead, Point};
use smallvec::SmallVec;

use super::block::Block;
use super::directory::DirectoryWriter;
use super::frozen::Decoded;
use super::merge::Reserve;
use super::series::{BlockRef, Series, Stored};
use super::{Change, RunStats, ShardStorage};
use crate::sync::{flush, lock, pin, Ordering};

/// What a sweep did.
#[derive(Debug, Default)]
pub(crate) struct Swept {
    /// Points removed.
    pub(crate) points: usize,
    /// Versions published (each retires one).
    pub(crate) published: usize,
    pub(crate) change: Change,
}

impl ShardStorage {
    /// Applies the shard's `retain` window at the newest timestamp merged
    /// into it, however little that moved since the last sweep (a merge
    /// waits for a sixteenth of the window); returns the points it removed
    /// (0 without `retain`). For writers over the memory budget: while
    /// they wait no slot is merged, so the horizon does not move and the
    /// merges' own sweeps would never free the room they wait for. (Under
    /// a budget within a sixteenth of the window's own bytes, each slot a
    /// writer starts then sweeps the shards: slow, but never stuck.)
    pub(crate) fn catch_up_retention(&self) -> usize {
        self.catch_up_cutoff()
            .map_or(0, |cutoff| self.drop_before(cutoff))
    }

    /// The cutoff `catch_up_retention` would sweep at, if any: read
    /// without the merge lock, so a writer over the budget neither waits
    /// for a merge nor walks the shard when there is nothing to catch up.
    pub(crate) fn catch_up_cutoff(&self) -> Option<i64> {
        let keep = self.config.retain?;
        let newest = self.newest.load(Ordering::Relaxed);
        let cutoff = newest.saturating_sub(keep);
        (newest > i64::MIN && cutoff > self.floor.load(Ordering::Relaxed)).then_some(cutoff)
    }

    /// After a run: applies the shard's `retain` and `freeze_idle`
    /// settings as the horizon (the newest timestamp merged into the
    /// shard) moves, each once it moved by a sixteenth of its window, not
    /// after every run. Returns the versions it retired.
    pub(super) fn sweep_horizon(
        &self,
        directory: &mut DirectoryWriter<'_>,
        reserve: &mut Reserve,
        (newest, floor): (i64, i64),
        stats: &mut RunStats,
        change: &mut Change,
    ) -> usize {
        let mut retired = 0;
        let newest = if self.config.retain.is_some() || self.config.freeze_idle.is_some() {
            self.newest.fetch_max(newest, Ordering::Relaxed).max(newest)
        } else {
            newest
        };
        if let Some(keep) = self.config.retain {
            let cutoff = newest.saturating_sub(keep);
            // Sweep once the horizon moved by a sixteenth of the window,
            // not after every run.
            if cutoff > floor.saturating_add(keep / 16) {
                self.floor.fetch_max(cutoff, Ordering::Relaxed);
                let swept = sweep(directory, cutoff, reserve, self.config.freeze);
                stats.dropped += swept.points;
                retired += swept.published;
                self.count_freed(&swept.change);
                change.add(&swept.change);
            }
        }
        if let Some(age) = self.config.freeze_idle {
            // Likewise once the horizon moved by a sixteenth of the age.
            let cutoff = newest.saturating_sub(age);
            let last = self.idle_floor.load(Ordering::Relaxed);
            if newest > i64::MIN && cutoff > last.saturating_add(age / 16) {
                self.idle_floor.store(cutoff, Ordering::Relaxed);
                let (swept, series) = super::idle::sweep(directory, cutoff, reserve);
                retired += series;
                change.add(&swept);
            }
        }
        retired
    }

    /// Removes every point older than `cutoff` (and every record older
    /// than it merged later); returns how many points it removed. Waits
    /// for the run being merged into the shard, if any.
    pub(crate) fn drop_before(&self, cutoff: i64) -> usize {
        let mut reserve = lock(&self.reserve);
        let guard = pin();
        if cutoff <= self.floor.fetch_max(cutoff, Ordering::Relaxed) {
            return 0;
        }
        let mut directory = self.directory.writer(&guard);
        let swept = sweep(&mut directory, cutoff, &mut reserve, self.config.freeze);
        self.count_freed(&swept.change);
        self.account(&swept.change);
        self.count_points(0, swept.points);
        drop(reserve);
        flush(guard, swept.published);
        swept.points
    }

    /// Removes every point of `series`; returns how many.
    pub(crate) fn drop_series(&self, series: u32) -> usize {
        let reserve = lock(&self.reserve);
        let guard = pin();
        let mut directory = self.directory.writer(&guard);
        let Some((footprint, points)) =
            directory.current(series, |s| s.map(|s| (s.footprint(), s.points())))
        else {
            return 0;
        };
        let empty = Series::default();
        let mut change = Change::default();
        change.replace(Some(footprint), empty.footprint());
        directory.publish(series, empty);
        self.count_freed(&change);
        self.account(&change);
        self.count_points(0, points);
        drop(reserve);
        flush(guard, 1);
        points
    }

    /// The retention floor: points older than it are gone.
    pub(crate) fn floor(&self) -> i64 {
        self.floor.load(Ordering::Relaxed)
    }

    /// Raises the retention floor to `floor` without sweeping (for an
    /// index restored from a snapshot, whose points all lie above it).
    pub(crate) fn raise_floor(&self, floor: i64) {
        self.floor.fetch_max(floor, Ordering::Relaxed);
    }
}

/// Removes every point older than `cutoff` from every series of the
/// directory.
pub(crate) fn sweep(
    directory: &mut DirectoryWriter<'_>,
    cutoff: i64,
    reserve: &mut Reserve,
    freeze: bool,
) -> Swept {
    let mut points = 0;
    let (change, published) = super::republish(directory, |series| {
        let (version, lost) = trim(series, cutoff, reserve, freeze)?;
        points += lost;
        Some(version)
    });
    Swept {
        points,
        published,
        change,
    }
}

/// `series` without its points older than `cutoff`, and how many it lost;
/// `None` when it has none.
fn trim(
    series: &Series,
    cutoff: i64,
    reserve: &mut Reserve,
    freeze: bool,
) -> Option<(Series, usize)> {
    let blocks = series.blocks();
    // Block `i` holds points before `blocks[i + 1].first_ts`: the blocks
    // before `edge` lie wholly before the cutoff.
    let edge = blocks
        .partition_point(|b| b.first_ts <= cutoff)
        .saturating_sub(1);
    let first = blocks.first()?;
    if first.first_ts >= cutoff {
        return None;
    }
    let mut lost: usize = blocks[..edge].iter().map(|b| b.block.points()).sum();
    let mut kept: SmallVec<[BlockRef; 1]> = SmallVec::new();
    let is_tail = edge + 1 == blocks.len();
    let (points, dropped) = points_from(&blocks[edge].block, cutoff);
    lost += dropped;
    if lost == 0 {
        return None;
    }
    if !points.is_empty() {
        let block = match &blocks[edge].block {
            Stored::Frozen(_) if freeze || !is_tail => {
                Stored::Frozen(reserve.encoder.freeze_points(points.iter().copied()))
            }
            _ => Stored::Hot(Block::flat_of(
                reserve.encoder.arena(),
                points.iter().copied(),
            )),
        };
        kept.push(BlockRef {
            first_ts: cutoff.max(blocks[edge].first_ts),
            block,
        });
    }
    kept.extend(blocks[edge + 1..].iter().cloned());
    Some((Series::from_blocks(kept, &mut reserve.encoder), lost))
}

/// The points of `block` at or after `cutoff`, and how many are before it.
fn points_from(block: &Stored, cutoff: i64) -> (Vec<Point>, usize) {
    let mut points = Vec::new();
    let mut before = 0;
    let mut take = |ts: i64, value: u64| {
        if ts < cutoff {
            before += 1;
        } else {
            points.push(Point::new(ts, value));
        }
    };
    match block {
        Stored::Hot(words) => {
            let view = words.view();
            view.visit(0, view.len(), &mut take);
        }
        Stored::Frozen(bytes) => {
            let mut decoded = Decoded::new();
            decoded.fill(bytes);
            decoded.visit(0, decoded.len(), &mut take);
        }
    }
    (points, before)
}

//! Retention: removing every point older than a cutoff from a shard, by
//! whole blocks where a block lies entirely before it, and exactly at the
//! edge (the block that holds the cutoff is rewritten with the points at or
//! after it). Runs under the shard's merge lock, so it never races a merge
//! of the same shard; readers go on reading the versions they hold, and
//! the freed blocks go back to node memory once they are done.

use numatree_core::{BlockRead, Point};
use smallvec::SmallVec;

use super::block::Block;
use super::directory::DirectoryWriter;
use super::frozen::Decoded;
use super::merge::Reserve;
use super::series::{BlockRef, Series, Stored};
use super::{Change, ShardStorage};
use crate::sync::Ordering;

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

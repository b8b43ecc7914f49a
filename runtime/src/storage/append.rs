//! Merges that only append: the fast paths.
//!
//! Most runs only append: points after the series' last, onto its newest
//! block (a long series' tail between two freezes; a short series' block,
//! or one regrown a size class up). `append_fast` writes what core's merge
//! would end with and nothing else: no index draft, no thawing checks, no
//! version build (measured in BENCHMARKS.md, "A fast path for appends").
//!
//! A short series' run goes further (`append_short`): most series of a
//! high-cardinality index are short (one flat block, nothing frozen,
//! published as the block alone, `super::cell`), and their runs are a
//! point or two. Through `append_fast` each run made a `Series` over the
//! block, measured the old and the new version's footprint, and probed the
//! directory a second time to publish: more of a one-point run's
//! instructions than the append itself. `append_short` appends through the
//! cell: in place when the block has room, else into a block a size class
//! up, stored into the same cell (the old block retired as every replaced
//! version is). Both publish as core's append does: the points written,
//! then the length (`Release`), then, for a new block, the cell.

use numatree_core::series::BlockIndex;
use numatree_core::{BlockRead, BlockWrite, Record, SeriesMergeStats};

use super::block::{self, Block, BlockFill, MAX_POINTS};
use super::cell::SeriesCell;
use super::merge::{Merged, Reserve};
use super::series::{build, Series};
use crate::sync::{AtomicU64, Guard};

/// `block`, to fill, its new segments (a segmented block's) from the
/// reserve's spares.
fn fill_of<'a>(block: &'a Block, reserve: &'a Reserve) -> BlockFill<'a> {
    with_mutant(block.fill().with_spare(&reserve.spare.segments), reserve)
}

/// The flat block `words`, to fill (see [`fill_of`]).
fn fill_flat<'a>(words: &'a [AtomicU64], reserve: &Reserve) -> BlockFill<'a> {
    with_mutant(BlockFill::flat(words), reserve)
}

/// `fill`, publishing before it writes when the reserve's negative
/// control says so (tests only).
#[allow(unused_mut, unused_variables)] // the reserve's mutant is a test's
fn with_mutant<'a>(mut fill: BlockFill<'a>, reserve: &Reserve) -> BlockFill<'a> {
    #[cfg(test)]
    {
        fill.mutant_publish_first = reserve.mutant_publish_first;
    }
    fill
}

/// The first record of `run`, for a fast path to take it (`None` for an
/// empty run, or in a test that sends every run through the general
/// merge). The run is strictly ascending: the general merge refuses an
/// unsorted one (core's `Error::Unsorted`), and the pipeline sorts every
/// slot before it merges.
#[allow(unused_variables)] // the reserve's switch is a test's
fn first_of<'r>(run: &'r [Record], reserve: &Reserve) -> Option<&'r Record> {
    #[cfg(test)]
    if reserve.general_merge_only {
        return None;
    }
    debug_assert!(
        run.windows(2).all(|w| w[0].key.ts < w[1].key.ts),
        "a run is strictly ascending"
    );
    run.first()
}

/// What [`append_short`] did, for the shard's accounting.
#[derive(Debug)]
pub(crate) struct ShortAppend {
    /// Points appended: the whole run.
    pub(crate) inserted: usize,
    /// The bytes of the block before and after, when the run regrew it
    /// into a new one (stored in the cell: a version retired); `None` when
    /// the points went into the block in place.
    pub(crate) regrown: Option<(usize, usize)>,
}

/// Appends `run` (one series' records, strictly ascending) to the short
/// series whose block `cell` holds: in place when the block has room,
/// else into a new block of the size class the points need (the old ones
/// copied first), which is then stored into `cell`. `None`, with nothing
/// written, when the cell holds no short series' block or the run needs
/// more: a point at or before the block's last, or more points than a
/// short series' block of a size class below [`MAX_POINTS`] holds (the
/// series is no longer short). Only the shard's merge calls it, with the
/// directory's guard.
pub(crate) fn append_short(
    cell: &SeriesCell,
    run: &[Record],
    reserve: &mut Reserve,
    guard: &Guard,
) -> Option<ShortAppend> {
    let first = first_of(run, reserve)?;
    let words = cell.short_words(guard)?;
    let mut tail = fill_flat(&words, reserve);
    let len = tail.len();
    if len == 0 || tail.ts(len - 1) >= first.key.ts {
        return None;
    }
    let want = len + run.len();
    if want <= tail.capacity() {
        tail.write_records(len, run);
        tail.publish(want);
        #[cfg(test)]
        {
            reserve.short_appends += 1;
        }
        return Some(ShortAppend {
            inserted: run.len(),
            regrown: None,
        });
    }
    let capacity = block::capacity_for(want);
    if capacity >= MAX_POINTS {
        return None;
    }
    let new = block::empty_flat_words(reserve.encoder.arena(), capacity);
    {
        let mut fill = fill_flat(&new, reserve);
        fill.copy_flat(&words, len);
        fill.write_records(len, run);
        fill.publish(want);
    }
    let regrown = (
        block::flat_block_bytes(&words),
        block::flat_block_bytes(&new),
    );
    cell.store_short_retiring(new, guard, &mut reserve.retired);
    #[cfg(test)]
    {
        reserve.short_appends += 1;
    }
    Some(ShortAppend {
        inserted: run.len(),
        regrown: Some(regrown),
    })
}

/// The merge's fast path for the commonest runs: points after a series' last,
/// which either fit in its newest block (hot, and with room for all of
/// them: a long series' tail between two freezes, a short series' block
/// below its capacity) or belong to a short series (see
/// `Series::short_block`; or a new one) that stays short with them (a
/// short series' runs take [`append_short`] first: a new series' first
/// run is the short one that comes here). The
/// points go onto the newest block in place (published by its length, as
/// core's append does), or into a new block of the size class the short
/// series needs, its old points copied first, which the caller publishes
/// as the series' new version: the blocks core's merge would end with,
/// without its index drafts, thawing checks and version builds. `None`
/// when the run needs the general merge (late points, a full or frozen
/// tail, a short series' block that would reach [`MAX_POINTS`]).
pub(crate) fn append_fast(
    current: Option<&Series>,
    run: &[Record],
    reserve: &mut Reserve,
) -> Option<Merged> {
    let first = first_of(run, reserve)?;
    let tail = match current {
        Some(series) => {
            let t = BlockIndex::len(series).checked_sub(1)?;
            Some(build::hot_words(series, t)?)
        }
        None => None,
    };
    // The tail's length and last time (only this merge appends to it).
    let len = match tail.map(Block::end) {
        Some((len, Some(last))) if last < first.key.ts => len,
        Some(_) => return None,
        None => 0,
    };
    let want = len + run.len();
    if let Some(tail) = tail {
        let before = tail.bytes();
        let mut fill = fill_of(tail, reserve);
        if want <= fill.capacity() {
            fill.write_records(len, run);
            fill.publish(want);
            #[cfg(test)]
            {
                reserve.fast_appends += 1;
            }
            return Some(Merged {
                stats: appended(run.len(), false),
                grown: tail.bytes() - before,
                ..Merged::default()
            });
        }
    }
    // Only a short series (one flat block: the tail) regrows here.
    if current.is_some_and(|series| series.short_tail().is_none())
        || block::capacity_for(want) >= MAX_POINTS
    {
        return None;
    }
    let block = Block::flat(reserve.encoder.arena(), block::capacity_for(want));
    {
        let mut fill = fill_of(&block, reserve);
        if let Some(old) = tail {
            // Nothing appended to the flat tail since `Block::end` read its
            // length above (only this merge appends), so the same points.
            debug_assert_eq!(old.view().len(), len, "only this merge appends to the tail");
            let Block::Flat(words) = old else {
                unreachable!("a short series' tail is flat")
            };
            fill.copy_flat(words, len);
        }
        fill.write_records(len, run);
        fill.publish(want);
    }
    #[cfg(test)]
    {
        reserve.fast_appends += 1;
    }
    let Block::Flat(words) = block else {
        unreachable!("Block::flat is flat")
    };
    Some(Merged {
        stats: appended(run.len(), true),
        version: Some(Series::of_short(words)),
        ..Merged::default()
    })
}

/// The stats of a merge that appended `inserted` points.
fn appended(inserted: usize, index_changed: bool) -> SeriesMergeStats {
    SeriesMergeStats {
        inserted,
        replaced: 0,
        index_changed,
    }
}

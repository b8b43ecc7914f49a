//! One series in shared memory: a published version of its block index,
//! and how it is read (`reading`).
//!
//! A version is immutable: its frozen blocks (encoded bytes, oldest
//! first), then its hot blocks (atomic words a merge may still append
//! to; with freezing on, just the newest), each block with its lower bound
//! in the series' time line. The frozen part is a `FrozenRun` (`run`): a
//! prefix of one index of the frozen blocks, shared by the versions before
//! and after and appended to in place when a block is frozen, so a version
//! change costs the same however long the series is; a run is rebuilt only
//! when a block is thawed or dropped. Blocks are reference-counted, held
//! by the indexes that have them, and stay alive while any reader still
//! holds a version whose index has them.

mod reading;
mod run;

use numatree_core::series::{self as core_series, BlockEntry, BlockIndex};
use numatree_core::{BlockId, BlockRead, PointSink};

use smallvec::SmallVec;

use self::reading::Reading;
use self::run::{bytes_of, FrozenRun};
pub(crate) use self::run::{FrozenRef, NewlyFrozen};
use super::arena::HotWords;
use super::block::Block;
use super::frozen::{self, Encoder, FrozenBlock};

/// A block, owned: what versions are built from.
#[derive(Clone, Debug)]
pub(crate) enum Stored {
    /// Atomic words: the tail may still grow.
    Hot(Block),
    /// Encoded, immutable.
    Frozen(FrozenBlock),
}

impl Stored {
    /// Points in the block now.
    pub(crate) fn points(&self) -> usize {
        match self {
            Stored::Hot(words) => words.view().len(),
            Stored::Frozen(bytes) => frozen::frozen_points(bytes),
        }
    }
}

/// One block with its lower bound in the series' time line.
#[derive(Clone, Debug)]
pub(crate) struct BlockRef {
    pub(crate) first_ts: i64,
    pub(crate) block: Stored,
}

/// A hot block of a version.
#[derive(Clone, Debug)]
pub(crate) struct HotRef {
    first_ts: i64,
    words: Block,
}

/// A published version of one series' block index.
#[derive(Debug, Default)]
pub(crate) struct Series {
    frozen: Option<FrozenRun>,
    /// One block inline (a short series' version is one allocation).
    hot: SmallVec<[HotRef; 1]>,
}

/// What a version holds, for the shard's accounting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Footprint {
    /// Bytes of the version and of every block it indexes.
    pub(crate) bytes: usize,
    /// Bytes and points of its frozen blocks.
    pub(crate) frozen_bytes: usize,
    pub(crate) frozen_points: usize,
}

impl Footprint {
    /// What a version of `bytes` holds, nothing frozen (a short series').
    pub(crate) fn of_bytes(bytes: usize) -> Self {
        Footprint {
            bytes,
            ..Footprint::default()
        }
    }
}

impl Series {
    /// A version over `blocks` (ascending, partitioning the time line). A
    /// hot block before a frozen one is frozen with `encoder` (a version
    /// is frozen blocks, then hot ones).
    pub(crate) fn from_blocks(
        blocks: impl IntoIterator<Item = BlockRef>,
        encoder: &mut Encoder,
    ) -> Series {
        let blocks: Vec<BlockRef> = blocks.into_iter().collect();
        let frozen_len = blocks
            .iter()
            .rposition(|b| matches!(b.block, Stored::Frozen(_)))
            .map_or(0, |i| i + 1);
        let mut frozen = Vec::with_capacity(frozen_len);
        let mut points = 0;
        let mut hot = SmallVec::new();
        for (i, b) in blocks.into_iter().enumerate() {
            match b.block {
                Stored::Hot(words) if i >= frozen_len => hot.push(HotRef {
                    first_ts: b.first_ts,
                    words,
                }),
                Stored::Hot(words) => {
                    let (block, n) = freeze(b.first_ts, &words, encoder);
                    frozen.push(block);
                    points += n;
                }
                Stored::Frozen(bytes) => {
                    points += frozen::frozen_points(&bytes);
                    frozen.push(FrozenRef {
                        first_ts: b.first_ts,
                        bytes,
                    });
                }
            }
        }
        Series {
            frozen: (!frozen.is_empty()).then(|| FrozenRun::new(frozen, points)),
            hot,
        }
    }

    /// A version with `published`'s frozen blocks, then `newly` frozen
    /// ones (holding `newly_points`), then `hot` ones: the merge's way,
    /// which shares the run when nothing was frozen.
    fn extend(
        published: &Series,
        newly: NewlyFrozen,
        newly_points: usize,
        hot: SmallVec<[HotRef; 1]>,
    ) -> Series {
        let frozen = if newly.is_empty() {
            published.frozen.clone()
        } else {
            Some(FrozenRun::extend(
                published.frozen.as_ref(),
                newly,
                newly_points,
            ))
        };
        Series { frozen, hot }
    }

    /// Frozen block `i` (below `frozen_len`).
    #[inline]
    fn frozen_block(&self, i: usize) -> &FrozenRef {
        match &self.frozen {
            Some(run) => run.block(i),
            None => panic!("frozen block {i} of none"),
        }
    }

    /// Frozen block `i`, if the version has it.
    #[inline]
    fn frozen_get(&self, i: usize) -> Option<&FrozenRef> {
        self.frozen.as_ref()?.get(i)
    }

    /// The frozen blocks, oldest first.
    fn frozen_blocks(&self) -> impl Iterator<Item = &FrozenRef> {
        self.frozen.iter().flat_map(FrozenRun::iter)
    }

    /// Number of frozen blocks (they come first).
    #[inline]
    pub(crate) fn frozen_len(&self) -> usize {
        self.frozen.as_ref().map_or(0, FrozenRun::len)
    }

    /// The block of a short series' version: one flat hot block whose
    /// lower bound is its first point, nothing frozen. Such a version is
    /// published as its block alone (`super::cell`), and rebuilt from it
    /// by [`Series::of_short`].
    pub(crate) fn short_block(&self) -> Option<&HotWords> {
        let [h] = self.hot.as_slice() else {
            return None;
        };
        let Block::Flat(words) = &h.words else {
            return None;
        };
        let view = h.words.view();
        (self.frozen.is_none() && view.len() > 0 && view.ts(0) == h.first_ts).then_some(words)
    }

    /// This version's block, when it is a short series' (see
    /// [`Series::short_block`]); else the version.
    #[cfg_attr(any(loom, shuttle), allow(dead_code))] // every version boxed there
    pub(crate) fn into_short(mut self) -> Result<HotWords, Series> {
        if self.short_block().is_none() {
            return Err(self);
        }
        match self.hot.pop() {
            Some(HotRef {
                words: Block::Flat(words),
                ..
            }) => Ok(words),
            _ => unreachable!("a short series' version holds one flat block"),
        }
    }

    /// The block of a short series' version (see [`Series::short_block`]),
    /// as the block its merge fills.
    #[inline]
    pub(crate) fn short_tail(&self) -> Option<&Block> {
        self.short_block()?;
        Some(&self.hot[0].words)
    }

    /// The version of a short series whose block is `words` (published,
    /// at least one point; see [`Series::short_block`]).
    #[inline]
    #[cfg_attr(any(loom, shuttle), allow(dead_code))]
    pub(crate) fn of_short(words: HotWords) -> Series {
        let words = Block::Flat(words);
        let first_ts = words.view().ts(0);
        let mut hot = SmallVec::new();
        hot.push(HotRef { first_ts, words });
        Series { frozen: None, hot }
    }

    /// Bytes of the version itself (not its blocks or its run): none for
    /// a short series' (its cell points to its block).
    fn own_bytes(&self) -> usize {
        if self.short_block().is_some() {
            return 0;
        }
        let spilled = if self.hot.spilled() {
            self.hot.capacity() * size_of::<HotRef>()
        } else {
            0
        };
        size_of::<Series>() + spilled
    }

    /// What the version and its blocks hold (its run counted whole: a
    /// version replaced by one with the same run frees none of it).
    pub(crate) fn footprint(&self) -> Footprint {
        let mut f = Footprint {
            bytes: self.own_bytes(),
            ..Footprint::default()
        };
        if let Some(run) = &self.frozen {
            f.bytes += run.own_bytes() + run.bytes;
            f.frozen_bytes = run.bytes;
            f.frozen_points = run.points;
        }
        for h in &self.hot {
            f.bytes += h.words.bytes();
        }
        f
    }

    /// Block `i` (frozen ones first), owned.
    pub(crate) fn block(&self, i: usize) -> BlockRef {
        let f = self.frozen_len();
        if i < f {
            let b = self.frozen_block(i);
            BlockRef {
                first_ts: b.first_ts,
                block: Stored::Frozen(b.bytes.clone()),
            }
        } else {
            let h = &self.hot[i - f];
            BlockRef {
                first_ts: h.first_ts,
                block: Stored::Hot(h.words.clone()),
            }
        }
    }

    /// Every block, oldest first, owned (for walks: retention, snapshots).
    pub(crate) fn blocks(&self) -> Vec<BlockRef> {
        (0..BlockIndex::len(self)).map(|i| self.block(i)).collect()
    }

    /// Points in the series now.
    pub(crate) fn points(&self) -> usize {
        self.frozen.as_ref().map_or(0, |run| run.points)
            + self.hot.iter().map(|h| h.words.view().len()).sum::<usize>()
    }

    /// The value at `ts`: decodes at most one block.
    #[inline]
    pub(crate) fn get(&self, ts: i64) -> Option<u64> {
        // Before the hot blocks: among the frozen ones only, whose run
        // knows its bounds (most lookups of a long series).
        if let (Some(run), Some(hot)) = (&self.frozen, self.hot.first()) {
            if ts < hot.first_ts {
                let (b, next) = run.locate(ts, hot.first_ts);
                return run.block(b).value_at(ts, Some(next));
            }
        }
        let b = core_series::locate(self, ts)?;
        let f = self.frozen_len();
        if b < f {
            let next =
                (b + 1 < BlockIndex::len(self)).then(|| BlockIndex::get(self, b + 1).first_ts);
            self.frozen_block(b).value_at(ts, next)
        } else {
            self.hot[b - f].words.value_at(ts)
        }
    }

    /// Calls `f` for the points with `ts` in `range`, ascending, at most
    /// `limit`; returns how many. Frozen blocks are decoded one by one
    /// into a buffer on the stack.
    pub(crate) fn scan(
        &self,
        range: impl std::ops::RangeBounds<i64>,
        limit: usize,
        sink: impl PointSink,
    ) -> usize {
        let reading = Reading::new(self);
        core_series::scan(&reading, &reading, range, limit, sink)
    }

    /// Checks the series' invariants; returns its point count.
    pub(crate) fn validate(&self) -> Result<usize, &'static str> {
        let reading = Reading::new(self);
        let points = core_series::validate(&reading, &reading)?;
        let counted: usize = self
            .frozen_blocks()
            .map(|b| frozen::frozen_points(&b.bytes))
            .sum();
        if self.frozen.as_ref().map_or(0, |run| run.points) != counted {
            return Err("a frozen run's point count is not its blocks'");
        }
        if let Some(run) = &self.frozen {
            if run.len() > 0 && run.first_ts_of(0) != run.block(0).first_ts {
                return Err("a frozen run's first bound is not its first block's");
            }
        }
        if self.frozen.as_ref().map_or(0, |run| run.bytes) != bytes_of(self.frozen_blocks()) {
            return Err("a frozen run's byte count is not its blocks'");
        }
        Ok(points)
    }

    /// The published length of the newest block when it is hot, else 0 (a
    /// load that brings the block's first cache line in).
    #[inline]
    pub(crate) fn tail_len(&self) -> u64 {
        self.hot.last().map_or(0, |h| h.words.len_relaxed())
    }

    /// This version with its hot blocks frozen too, when its newest point
    /// is older than `cutoff` (an idle series, see `idle`); `None` when it
    /// holds no hot point, or a newer one. The frozen run is copied once,
    /// as when a merge freezes a block.
    pub(crate) fn frozen_when_idle(&self, cutoff: i64, encoder: &mut Encoder) -> Option<Series> {
        let newest = self.hot.last()?.words.view();
        let last = newest.len().checked_sub(1).map(|i| newest.ts(i))?;
        if last >= cutoff {
            return None;
        }
        let mut newly = NewlyFrozen::new();
        let mut points = 0;
        // An empty hot block has no points to keep: its part of the time
        // line goes to the block before or after it.
        for h in self.hot.iter().filter(|h| h.words.view().len() > 0) {
            let (block, n) = freeze(h.first_ts, &h.words, encoder);
            newly.push(block);
            points += n;
        }
        Some(Series::extend(self, newly, points, SmallVec::new()))
    }

    /// Whether the newest block is hot and `ts` falls into it or after:
    /// a run from `ts` on touches no frozen block.
    pub(crate) fn hot_from(&self, ts: i64) -> bool {
        match self.hot.first() {
            Some(h) => ts >= h.first_ts,
            None => self.frozen.is_none(),
        }
    }
}

/// Freezes a hot block; returns it with its point count.
fn freeze(first_ts: i64, words: &Block, encoder: &mut Encoder) -> (FrozenRef, usize) {
    let view = words.view();
    let block = FrozenRef {
        first_ts,
        bytes: encoder.freeze(&view),
    };
    (block, view.len())
}

impl BlockIndex for Series {
    #[inline]
    fn len(&self) -> usize {
        self.frozen_len() + self.hot.len()
    }
    #[inline]
    fn get(&self, i: usize) -> BlockEntry {
        let first_ts = match &self.frozen {
            Some(run) if i < run.len() => run.first_ts_of(i),
            _ => self.hot[i - self.frozen_len()].first_ts,
        };
        BlockEntry {
            first_ts,
            id: BlockId(i as u32),
        }
    }
}

/// What the merge (`super::merge`) builds versions with.
pub(crate) mod build {
    use super::*;

    pub(crate) use super::FrozenRef;

    /// A hot block to index.
    pub(crate) fn hot(first_ts: i64, words: Block) -> HotRef {
        HotRef { first_ts, words }
    }

    pub(crate) use super::HotRef;

    /// Freezes a hot block; returns it with its point count.
    pub(crate) fn frozen(
        first_ts: i64,
        words: &Block,
        encoder: &mut Encoder,
    ) -> (FrozenRef, usize) {
        freeze(first_ts, words, encoder)
    }

    /// See `Series::extend`.
    pub(crate) fn extend(
        published: &Series,
        newly: NewlyFrozen,
        newly_points: usize,
        hot: SmallVec<[HotRef; 1]>,
    ) -> Series {
        Series::extend(published, newly, newly_points, hot)
    }

    /// The words of published block `i`, if hot.
    pub(crate) fn hot_words(series: &Series, i: usize) -> Option<&Block> {
        let f = series.frozen_len();
        (i >= f).then(|| &series.hot[i - f].words)
    }

    /// The bytes of published block `i`, if frozen.
    pub(crate) fn frozen_bytes(series: &Series, i: usize) -> Option<&FrozenBlock> {
        series.frozen_get(i).map(|b| &b.bytes)
    }
}

//! One series in shared memory: a published version of its block index,
//! and the merge of a run into it with core's series algorithms.
//!
//! A version is immutable: `Series` holds each block's first timestamp and
//! the block, hot (atomic words a merge may still append to) or frozen
//! (encoded bytes), each an `Arc` shared with the versions before and
//! after. A merge that only appends to the tail block writes beyond its
//! published length and publishes the new length, leaving the version as
//! it is; a merge that adds or replaces blocks builds a new version, which
//! the directory then publishes, with every block but the newest frozen
//! (when freezing is on). A late point that falls into a frozen block
//! thaws it first (see `frozen`). Replaced blocks stay alive while any
//! reader still holds a version that indexes them.

use std::cell::{Ref, RefCell};

use numatree_core::series::{self as core_series, BlockEntry, BlockIndex, BlockList};
use numatree_core::{BlockId, BlockRead, BlockSource, BlockStore, Record, SeriesMergeStats};

use smallvec::SmallVec;

use super::block::{self, Block, BlockFill, BlockView, MAX_POINTS};
use super::frozen::{self, Decoded, Encoder, FrozenBlock};
use crate::sync::{Arc, AtomicU64};

/// A block as a version holds it.
#[derive(Clone, Debug)]
pub(crate) enum Stored {
    /// Atomic words: the tail may still grow.
    Hot(Block),
    /// Encoded, immutable.
    Frozen(FrozenBlock),
}

impl Stored {
    /// Bytes the block holds.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Stored::Hot(words) => block::block_bytes(block::capacity(words)),
            Stored::Frozen(bytes) => frozen::frozen_bytes(bytes),
        }
    }

    /// Points in the block now.
    pub(crate) fn points(&self) -> usize {
        match self {
            Stored::Hot(words) => BlockView::new(words).len(),
            Stored::Frozen(bytes) => frozen::frozen_points(bytes),
        }
    }
}

/// One block of a version, with its lower bound in the series' time line.
#[derive(Clone, Debug)]
pub(crate) struct BlockRef {
    pub(crate) first_ts: i64,
    pub(crate) block: Stored,
}

/// A published version of one series' block index.
#[derive(Debug, Default)]
pub(crate) struct Series {
    /// One block inline (a short series' version is one allocation).
    blocks: SmallVec<[BlockRef; 1]>,
    /// Whether any block is frozen (reads then may decode).
    any_frozen: bool,
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

impl Series {
    /// A version over `blocks` (ascending, partitioning the time line).
    pub(crate) fn new(blocks: SmallVec<[BlockRef; 1]>) -> Series {
        let any_frozen = blocks.iter().any(|b| matches!(b.block, Stored::Frozen(_)));
        Series { blocks, any_frozen }
    }

    /// Bytes of the version itself (not its blocks).
    pub(crate) fn bytes(&self) -> usize {
        let spilled = if self.blocks.spilled() {
            self.blocks.capacity() * size_of::<BlockRef>()
        } else {
            0
        };
        size_of::<Series>() + spilled
    }

    /// What the version and its blocks hold.
    pub(crate) fn footprint(&self) -> Footprint {
        let mut f = Footprint {
            bytes: self.bytes(),
            ..Footprint::default()
        };
        for b in &self.blocks {
            f.bytes += b.block.bytes();
            if let Stored::Frozen(bytes) = &b.block {
                f.frozen_bytes += frozen::frozen_bytes(bytes);
                f.frozen_points += frozen::frozen_points(bytes);
            }
        }
        f
    }

    /// The value at `ts`: decodes at most one block.
    #[inline]
    pub(crate) fn get(&self, ts: i64) -> Option<u64> {
        let b = core_series::locate(self, ts)?;
        match &self.blocks[b].block {
            Stored::Hot(words) => {
                let view = BlockView::new(words);
                numatree_core::find(&view, ts).ok().map(|i| view.value(i))
            }
            Stored::Frozen(bytes) => frozen::get(bytes, ts),
        }
    }

    /// Calls `f` for the points with `ts` in `range`, ascending, at most
    /// `limit`; returns how many. Frozen blocks are decoded one by one
    /// into a buffer on the stack.
    pub(crate) fn scan(
        &self,
        range: impl std::ops::RangeBounds<i64>,
        limit: usize,
        f: impl FnMut(i64, u64),
    ) -> usize {
        let reading = Reading::new(self);
        core_series::scan(&reading, &reading, range, limit, f)
    }

    /// Checks the series' invariants; returns its point count.
    pub(crate) fn validate(&self) -> Result<usize, &'static str> {
        let reading = Reading::new(self);
        core_series::validate(&reading, &reading)
    }

    /// The published length of the tail block (a load that brings the
    /// block's first cache line in).
    #[inline]
    pub(crate) fn tail_len(&self) -> u64 {
        match self.blocks.last().map(|b| &b.block) {
            Some(Stored::Hot(words)) => words[0].load(crate::sync::Ordering::Relaxed),
            _ => 0,
        }
    }

    /// Points in the series now.
    pub(crate) fn points(&self) -> usize {
        self.blocks.iter().map(|b| b.block.points()).sum()
    }

    /// Every block, oldest first.
    pub(crate) fn blocks(&self) -> &[BlockRef] {
        &self.blocks
    }
}

impl BlockIndex for Series {
    #[inline]
    fn len(&self) -> usize {
        self.blocks.len()
    }
    #[inline]
    fn get(&self, i: usize) -> BlockEntry {
        BlockEntry {
            first_ts: self.blocks[i].first_ts,
            id: BlockId(i as u32),
        }
    }
}

/// A version being read: its blocks, with a buffer that frozen ones are
/// decoded into (made on first use, so reads of hot blocks never pay for
/// it). Core's reads hold one block at a time.
struct Reading<'s> {
    series: &'s Series,
    decoded: RefCell<Option<Decoded>>,
}

impl<'s> Reading<'s> {
    fn new(series: &'s Series) -> Self {
        Reading {
            series,
            decoded: RefCell::new(None),
        }
    }
}

impl BlockIndex for Reading<'_> {
    #[inline]
    fn len(&self) -> usize {
        self.series.blocks.len()
    }
    #[inline]
    fn get(&self, i: usize) -> BlockEntry {
        BlockIndex::get(self.series, i)
    }
}

impl BlockSource for Reading<'_> {
    type Block<'a>
        = View<'a>
    where
        Self: 'a;
    #[inline]
    fn block(&self, id: BlockId) -> View<'_> {
        match &self.series.blocks[id.0 as usize].block {
            Stored::Hot(words) => View::Hot(BlockView::new(words)),
            Stored::Frozen(bytes) => {
                self.decoded
                    .borrow_mut()
                    .get_or_insert_with(Decoded::new)
                    .fill(bytes);
                View::Decoded(Ref::map(self.decoded.borrow(), |d| {
                    d.as_ref().expect("just filled")
                }))
            }
        }
    }
}

/// A block, read: hot words, or a frozen block decoded.
pub(crate) enum View<'a> {
    Hot(BlockView<'a>),
    Decoded(Ref<'a, Decoded>),
}

impl BlockRead for View<'_> {
    #[inline]
    fn len(&self) -> usize {
        match self {
            View::Hot(v) => v.len(),
            View::Decoded(d) => d.len(),
        }
    }
    #[inline]
    fn ts(&self, i: usize) -> i64 {
        match self {
            View::Hot(v) => v.ts(i),
            View::Decoded(d) => d.ts(i),
        }
    }
    #[inline]
    fn value(&self, i: usize) -> u64 {
        match self {
            View::Hot(v) => v.value(i),
            View::Decoded(d) => d.value(i),
        }
    }
    #[inline]
    fn visit(&self, from: usize, to: usize, f: &mut impl FnMut(i64, u64)) {
        match self {
            View::Hot(v) => v.visit(from, to, f),
            View::Decoded(d) => d.visit(from, to, f),
        }
    }
}

/// The points a long series' next block starts with when full blocks are
/// frozen: the newest block is the only hot one, and a full-size one would
/// hold most of a series' bytes (4 KiB against ~1-2 bytes a frozen point).
const NEXT_BLOCK_POINTS: usize = 32;

/// Full-size blocks allocated and touched ahead of need
/// ([`Builder::reserve_records`](crate::Builder::reserve_records)), and
/// the merge's scratch.
#[derive(Debug, Default)]
pub(crate) struct Reserve {
    pub(crate) blocks: Vec<Block>,
    /// Scratch of `DirectoryWriter::warm`: the cells of a run's series.
    pub(crate) cells: Vec<usize>,
    /// Scratch of a series merge: its draft index and its new blocks,
    /// reused from one series to the next.
    entries: Vec<BlockEntry>,
    new_blocks: Vec<Block>,
    /// Scratch of freezing.
    pub(crate) encoder: Encoder,
    /// Negative control for the model tests (see `BlockFill`).
    #[cfg(test)]
    pub(crate) mutant_publish_first: bool,
}

/// What a series merge changed, for the shard's accounting.
#[derive(Debug, Default)]
pub(crate) struct Merged {
    pub(crate) stats: SeriesMergeStats,
    /// The new version to publish, when the index changed.
    pub(crate) version: Option<Series>,
    /// Bytes of reserved blocks the merge took (the shard counted them
    /// when it reserved them).
    pub(crate) from_reserve: usize,
}

/// Merges `run` (one series' records, strictly ascending) into the series
/// whose current version is `current` (`None` for a new series); with
/// `freeze`, every block of a new version but its newest is frozen.
///
/// # Panics
/// If `run` is not strictly ascending (the merge sorts slots first).
pub(crate) fn merge(
    current: Option<&Series>,
    run: &[Record],
    reserve: &mut Reserve,
    freeze: bool,
) -> Merged {
    let empty = Series::default();
    let current = current.unwrap_or(&empty);
    // Frozen blocks the run falls into are decoded into hot ones first.
    let thawed = thaw(current, run);
    let published = thawed.as_ref().unwrap_or(current);
    let mut entries = std::mem::take(&mut reserve.entries);
    let mut new_blocks = std::mem::take(&mut reserve.new_blocks);
    entries.clear();
    new_blocks.clear();
    let mut list = Draft {
        published,
        draft: entries,
        changed: false,
    };
    if thawed.is_some() {
        list.entries();
    }
    let mut store = MergeStore {
        published,
        new_blocks,
        reserve,
        from_reserve: 0,
        freeze,
    };
    let stats = core_series::merge(&mut list, &mut store, run)
        .expect("a sorted run always merges into a growable store");
    let version = list.changed.then(|| {
        let last = list.draft.len().saturating_sub(1);
        let blocks = list
            .draft
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let block = match store.stored(e.id) {
                    Stored::Hot(words) if freeze && i < last => {
                        Stored::Frozen(store.reserve.encoder.freeze(&BlockView::new(&words)))
                    }
                    stored => stored,
                };
                BlockRef {
                    first_ts: e.first_ts,
                    block,
                }
            })
            .collect();
        Series::new(blocks)
    });
    store.new_blocks.clear();
    store.reserve.new_blocks = std::mem::take(&mut store.new_blocks);
    store.reserve.entries = list.draft;
    Merged {
        stats,
        version,
        from_reserve: store.from_reserve,
    }
}

/// `current` with the frozen blocks that `run` falls into (and a frozen
/// tail, which appends write to) decoded into hot blocks, or `None` when
/// there is none: core's merge reads and writes hot blocks only.
fn thaw(current: &Series, run: &[Record]) -> Option<Series> {
    let blocks = &current.blocks;
    let (Some(tail), Some(first)) = (blocks.last(), run.first()) else {
        return None;
    };
    if !current.any_frozen
        || (matches!(tail.block, Stored::Hot(_)) && first.key.ts >= tail.first_ts)
    {
        return None;
    }
    let mut thawed = blocks.clone();
    let mut any = false;
    let mut rest = run;
    for (i, b) in thawed.iter_mut().enumerate() {
        let is_tail = i + 1 == blocks.len();
        let ends = if is_tail {
            rest.len()
        } else {
            rest.partition_point(|r| r.key.ts < blocks[i + 1].first_ts)
        };
        if let (Stored::Frozen(bytes), true) = (&b.block, ends > 0 || is_tail) {
            let mut decoded = Decoded::new();
            decoded.fill(bytes);
            let (ts, values) = decoded.columns();
            let words = block::new_block(block::capacity_for(ts.len()));
            let mut fill = BlockFill::new(&words);
            for (k, (&t, &v)) in ts.iter().zip(values).enumerate() {
                numatree_core::BlockWrite::write(&mut fill, k, numatree_core::Point::new(t, v));
            }
            numatree_core::BlockWrite::publish(&mut fill, ts.len());
            b.block = Stored::Hot(words);
            any = true;
        }
        rest = &rest[ends..];
    }
    any.then(|| Series::new(thawed))
}

/// The series' index during a merge: the published entries until the
/// first change, then a private copy (published by the caller).
struct Draft<'a> {
    published: &'a Series,
    /// The private copy, once `changed`.
    draft: Vec<BlockEntry>,
    changed: bool,
}

impl Draft<'_> {
    fn entries(&mut self) -> &mut Vec<BlockEntry> {
        if !self.changed {
            let published = self.published;
            self.draft.clear();
            self.draft
                .extend((0..BlockIndex::len(published)).map(|i| BlockIndex::get(published, i)));
            self.changed = true;
        }
        &mut self.draft
    }
}

impl BlockIndex for Draft<'_> {
    fn len(&self) -> usize {
        if self.changed {
            self.draft.len()
        } else {
            BlockIndex::len(self.published)
        }
    }
    fn get(&self, i: usize) -> BlockEntry {
        if self.changed {
            self.draft[i]
        } else {
            BlockIndex::get(self.published, i)
        }
    }
}

impl BlockList for Draft<'_> {
    fn room(&self) -> usize {
        usize::MAX
    }
    fn set(&mut self, i: usize, entry: BlockEntry) {
        self.entries()[i] = entry;
    }
    fn insert(&mut self, i: usize, entry: BlockEntry) {
        self.entries().insert(i, entry);
    }
}

/// The blocks a merge sees: the published version's (ids `0..n`) and the
/// ones it allocates (ids `n..`).
struct MergeStore<'a> {
    published: &'a Series,
    new_blocks: Vec<Block>,
    reserve: &'a mut Reserve,
    from_reserve: usize,
    /// Full blocks are frozen: a long series' next block starts small.
    freeze: bool,
}

impl MergeStore<'_> {
    /// The words of a hot block. Core's merge reads only the blocks a run
    /// falls into and the tail, which `thaw` made hot.
    fn words(&self, id: BlockId) -> &[AtomicU64] {
        let n = self.published.blocks.len();
        let i = id.0 as usize;
        if i < n {
            match &self.published.blocks[i].block {
                Stored::Hot(words) => words,
                Stored::Frozen(_) => unreachable!("a merge reads thawed blocks only"),
            }
        } else {
            &self.new_blocks[i - n]
        }
    }

    /// Block `id`, to index in a new version.
    fn stored(&self, id: BlockId) -> Stored {
        let n = self.published.blocks.len();
        let i = id.0 as usize;
        if i < n {
            self.published.blocks[i].block.clone()
        } else {
            Stored::Hot(Arc::clone(&self.new_blocks[i - n]))
        }
    }
}

impl MergeStore<'_> {
    fn fill(&self, id: BlockId) -> BlockFill<'_> {
        #[allow(unused_mut)]
        let mut fill = BlockFill::new(self.words(id));
        #[cfg(test)]
        {
            fill.mutant_publish_first = self.reserve.mutant_publish_first;
        }
        fill
    }
}

impl BlockSource for MergeStore<'_> {
    type Block<'a>
        = BlockView<'a>
    where
        Self: 'a;
    fn block(&self, id: BlockId) -> BlockView<'_> {
        BlockView::new(self.words(id))
    }
}

impl BlockStore for MergeStore<'_> {
    type BlockMut<'a>
        = BlockFill<'a>
    where
        Self: 'a;

    fn max_points(&self) -> usize {
        MAX_POINTS
    }

    fn capacity_for(&self, points: usize) -> usize {
        block::capacity_for(points)
    }

    fn next_block_points(&self) -> usize {
        if self.freeze {
            NEXT_BLOCK_POINTS
        } else {
            MAX_POINTS
        }
    }

    fn alloc(&mut self, points: usize) -> Option<BlockId> {
        let capacity = block::capacity_for(points);
        let words = match self.reserve.blocks.pop() {
            Some(reserved) if capacity == MAX_POINTS => {
                self.from_reserve += block::block_bytes(capacity);
                reserved
            }
            other => {
                self.reserve.blocks.extend(other);
                block::new_block(capacity)
            }
        };
        self.new_blocks.push(words);
        Some(BlockId(
            (self.published.blocks.len() + self.new_blocks.len() - 1) as u32,
        ))
    }

    fn available(&self) -> usize {
        usize::MAX
    }

    fn block_mut(&mut self, id: BlockId) -> BlockFill<'_> {
        self.fill(id)
    }

    fn pair(&mut self, from: BlockId, to: BlockId) -> (BlockView<'_>, BlockFill<'_>) {
        (BlockView::new(self.words(from)), self.fill(to))
    }

    fn retire(&mut self, _id: BlockId) {
        // The shard counts bytes by version (`Series::footprint`): a
        // retired block is simply not in the new one.
    }
}

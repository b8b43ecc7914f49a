//! One series in shared memory: a published version of its block index,
//! and the merge of a run into it with core's series algorithms.
//!
//! A version is immutable: `Series` holds each block's first timestamp and
//! the block (an `Arc`, shared with the versions before and after). A
//! merge that only appends to the tail block writes beyond its published
//! length and publishes the new length, leaving the version as it is; a
//! merge that adds or replaces blocks builds a new version, which the
//! directory then publishes. Replaced blocks stay alive while any reader
//! still holds a version that indexes them.

use numatree_core::series::{self as core_series, BlockEntry, BlockIndex, BlockList};
use numatree_core::{BlockId, BlockSource, BlockStore, Record, SeriesMergeStats};

use smallvec::SmallVec;

use super::block::{self, Block, BlockFill, BlockView, MAX_POINTS};
use crate::sync::Arc;

/// One block of a version, with its lower bound in the series' time line.
#[derive(Clone, Debug)]
pub(crate) struct BlockRef {
    first_ts: i64,
    block: Block,
}

/// A published version of one series' block index.
#[derive(Debug, Default)]
pub(crate) struct Series {
    /// One block inline (a short series' version is one allocation).
    blocks: SmallVec<[BlockRef; 1]>,
}

impl Series {
    /// Bytes of the version itself (not its blocks).
    pub(crate) fn bytes(&self) -> usize {
        let spilled = if self.blocks.spilled() {
            self.blocks.capacity() * size_of::<BlockRef>()
        } else {
            0
        };
        size_of::<Series>() + spilled
    }

    /// The value at `ts`.
    pub(crate) fn get(&self, ts: i64) -> Option<u64> {
        core_series::get(self, self, ts)
    }

    /// Calls `f` for the points with `ts` in `range`, ascending, at most
    /// `limit`; returns how many.
    pub(crate) fn scan(
        &self,
        range: impl std::ops::RangeBounds<i64>,
        limit: usize,
        f: impl FnMut(i64, u64),
    ) -> usize {
        core_series::scan(self, self, range, limit, f)
    }

    /// Checks the series' invariants; returns its point count.
    pub(crate) fn validate(&self) -> Result<usize, &'static str> {
        core_series::validate(self, self)
    }

    /// The published length of the tail block (a load that brings the
    /// block's first cache line in).
    #[inline]
    pub(crate) fn tail_len(&self) -> u64 {
        self.blocks
            .last()
            .map_or(0, |b| b.block[0].load(crate::sync::Ordering::Relaxed))
    }

    /// Every block's words, for finding where their pages are.
    pub(crate) fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.blocks.iter().map(|b| &b.block)
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

impl BlockSource for Series {
    type Block<'a> = BlockView<'a>;
    #[inline]
    fn block(&self, id: BlockId) -> BlockView<'_> {
        BlockView::new(&self.blocks[id.0 as usize].block)
    }
}

/// Full-size blocks allocated and touched ahead of need
/// ([`Builder::reserve_records`](crate::Builder::reserve_records)).
#[derive(Debug, Default)]
pub(crate) struct Reserve {
    pub(crate) blocks: Vec<Block>,
    /// Scratch of `DirectoryWriter::warm`: the cells of a run's series.
    pub(crate) cells: Vec<usize>,
    /// Scratch of a series merge: its draft index and its new blocks,
    /// reused from one series to the next.
    entries: Vec<BlockEntry>,
    new_blocks: Vec<Block>,
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
    /// Bytes of blocks allocated, and of blocks and the version replaced.
    pub(crate) allocated: usize,
    pub(crate) released: usize,
}

/// Merges `run` (one series' records, strictly ascending) into the series
/// whose current version is `current` (`None` for a new series).
///
/// # Panics
/// If `run` is not strictly ascending (the merge sorts slots first).
pub(crate) fn merge(current: Option<&Series>, run: &[Record], reserve: &mut Reserve) -> Merged {
    let empty = Series::default();
    let published = current.unwrap_or(&empty);
    let mut entries = std::mem::take(&mut reserve.entries);
    let mut new_blocks = std::mem::take(&mut reserve.new_blocks);
    entries.clear();
    new_blocks.clear();
    let mut list = Draft {
        published,
        draft: entries,
        changed: false,
    };
    let mut store = MergeStore {
        published,
        new_blocks,
        reserve,
        allocated: 0,
        released: 0,
    };
    let stats = core_series::merge(&mut list, &mut store, run)
        .expect("a sorted run always merges into a growable store");
    let version = list.changed.then(|| {
        let blocks = list
            .draft
            .iter()
            .map(|e| BlockRef {
                first_ts: e.first_ts,
                block: Arc::clone(store.words(e.id)),
            })
            .collect();
        Series { blocks }
    });
    store.new_blocks.clear();
    store.reserve.new_blocks = std::mem::take(&mut store.new_blocks);
    store.reserve.entries = list.draft;
    let mut merged = Merged {
        stats,
        allocated: store.allocated,
        released: store.released,
        version: None,
    };
    if let Some(version) = version {
        merged.allocated += version.bytes();
        merged.released += current.map_or(0, Series::bytes);
        merged.version = Some(version);
    }
    merged
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
    allocated: usize,
    released: usize,
}

impl MergeStore<'_> {
    fn words(&self, id: BlockId) -> &Block {
        let n = self.published.blocks.len();
        let i = id.0 as usize;
        if i < n {
            &self.published.blocks[i].block
        } else {
            &self.new_blocks[i - n]
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

    fn alloc(&mut self, points: usize) -> Option<BlockId> {
        let capacity = block::capacity_for(points);
        let words = match self.reserve.blocks.pop() {
            Some(reserved) if capacity == MAX_POINTS => reserved,
            other => {
                self.reserve.blocks.extend(other);
                block::new_block(capacity)
            }
        };
        self.allocated += block::block_bytes(capacity);
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

    fn retire(&mut self, id: BlockId) {
        self.released += block::block_bytes(block::capacity(self.words(id)));
    }
}

//! Merging a sorted run of one series' records into its blocks, with
//! core's series algorithms (`numatree_core::series::merge`), into a new
//! version when the index changes.
//!
//! Core's merge reads and writes hot blocks only: the frozen blocks the run
//! falls into (and a frozen tail, which appends go to) are first thawed,
//! decoded into new hot blocks that stand in for them during the merge.
//! The version the merge then builds freezes every block but the newest
//! (with freezing on). When the merge left the frozen blocks as they were
//! (the common case: appends, a tail that grew, a new tail), the new
//! version shares the old one's frozen run, the blocks it froze appended
//! in place (`series::run`); otherwise it is rebuilt.
//!
//! Most runs only append: those take the fast paths of `super::append`
//! first, and come here only when they cannot.

use numatree_core::series::{self as core_series, BlockEntry, BlockIndex, BlockList};
use numatree_core::{BlockId, BlockSource, BlockStore, Point, Record, SeriesMergeStats};

use smallvec::SmallVec;

use super::arena::Arena;
use super::block::{self, Block, BlockFill, BlockView, MAX_POINTS};
use super::cell::Retired;
use super::frozen::{Decoded, Encoder};
use super::segmented::{Segmented, Spare};
use super::series::{build, BlockRef, NewlyFrozen, Series, Stored};
use crate::sync::Arc;

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
    /// Segmented blocks the merge froze, reused once no version holds
    /// them.
    pub(crate) spare: Spare,
    /// What the run's stores into cells replaced, deferred together at
    /// its end (`storage::cell::Retired`).
    pub(crate) retired: Retired,
    /// Negative control for the model tests (see `BlockFill`).
    #[cfg(test)]
    pub(crate) mutant_publish_first: bool,
    /// Negative control for the model tests (see `Spare::take_held`).
    #[cfg(test)]
    pub(crate) mutant_reuse_held: bool,
    /// Tests: every run through the general merge (neither fast path of
    /// `super::append`), and how many runs took `append_fast`.
    #[cfg(test)]
    pub(crate) general_merge_only: bool,
    #[cfg(test)]
    pub(crate) fast_appends: usize,
    /// Tests: how many runs `append_short` took.
    #[cfg(test)]
    pub(crate) short_appends: usize,
}

impl Reserve {
    /// An empty reserve whose frozen blocks `encoder` makes.
    pub(crate) fn new(encoder: Encoder) -> Self {
        Reserve {
            encoder,
            ..Reserve::default()
        }
    }

    /// Frees the spare blocks and segments (see `Spare`).
    pub(crate) fn release_spare(&mut self) {
        self.spare = Spare::default();
    }

    /// A frozen tail to make a new one of, if one is free (see `Spare`).
    fn spare_block(&mut self) -> Option<Arc<Segmented>> {
        #[cfg(test)]
        if self.mutant_reuse_held {
            return self.spare.take_held();
        }
        self.spare.take()
    }
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
    /// Bytes the published tail grew by in place (segments allocated in a
    /// segmented block): in no version's footprint change, since the
    /// versions before and after share the block.
    pub(crate) grown: usize,
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
    let published = current.unwrap_or(&empty);
    let thawed = thaw(published, run, reserve.encoder.arena());
    let tail = BlockIndex::len(published)
        .checked_sub(1)
        .and_then(|t| build::hot_words(published, t))
        .map(|words| (words, words.bytes()));
    let mut entries = std::mem::take(&mut reserve.entries);
    let mut new_blocks = std::mem::take(&mut reserve.new_blocks);
    entries.clear();
    new_blocks.clear();
    let mut list = Draft {
        published,
        draft: entries,
        changed: false,
    };
    if !thawed.is_empty() {
        // The thawed blocks replace frozen ones: a new version, always.
        list.entries();
    }
    let mut store = MergeStore {
        published,
        thawed,
        new_blocks,
        reserve,
        from_reserve: 0,
        freeze,
    };
    let stats = core_series::merge(&mut list, &mut store, run)
        .expect("a sorted run always merges into a growable store");
    let version = list
        .changed
        .then(|| build_version(published, &list.draft, &mut store, freeze));
    store.new_blocks.clear();
    store.reserve.new_blocks = std::mem::take(&mut store.new_blocks);
    store.reserve.entries = list.draft;
    Merged {
        stats,
        version,
        from_reserve: store.from_reserve,
        grown: tail.map_or(0, |(words, before)| words.bytes() - before),
    }
}

/// The version indexing `entries`, every block but the newest frozen when
/// `freeze`.
fn build_version(
    published: &Series,
    entries: &[BlockEntry],
    store: &mut MergeStore<'_>,
    freeze: bool,
) -> Series {
    let f = published.frozen_len();
    let last = entries.len().saturating_sub(1);
    let frozen_kept = store.thawed.is_empty()
        && entries.len() > f
        && entries[..f].iter().enumerate().all(|(i, e)| {
            e.id.0 as usize == i && e.first_ts == BlockIndex::get(published, i).first_ts
        });
    if frozen_kept {
        // Blocks `f..` are hot (published or new): freeze all but the
        // newest onto the end of the run (in place), or share the run.
        let mut newly = NewlyFrozen::new();
        let mut newly_points = 0;
        let mut hot = SmallVec::new();
        for (k, e) in entries[f..].iter().enumerate() {
            let words = store.hot_block(e.id);
            if freeze && f + k < last {
                let (block, points) = build::frozen(e.first_ts, &words, &mut store.reserve.encoder);
                if let Block::Segmented(segmented) = &words {
                    store.reserve.spare.retire(segmented);
                }
                newly.push(block);
                newly_points += points;
            } else {
                hot.push(build::hot(e.first_ts, words));
            }
        }
        return build::extend(published, newly, newly_points, hot);
    }
    let blocks: Vec<BlockRef> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let block = match store.stored(e.id) {
                Stored::Hot(words) if freeze && i < last => {
                    Stored::Frozen(store.reserve.encoder.freeze(&words.view()))
                }
                stored => stored,
            };
            BlockRef {
                first_ts: e.first_ts,
                block,
            }
        })
        .collect();
    Series::from_blocks(blocks, &mut store.reserve.encoder)
}

/// The frozen blocks of `series` that `run` falls into (and a frozen tail,
/// which appends write to), decoded into new hot blocks, by index: core's
/// merge reads and writes hot blocks only. A frozen tail (an idle series',
/// or one that retention cut) is thawed whatever the run holds: core's
/// merge reads the series' last point to tell appends from late points.
fn thaw(series: &Series, run: &[Record], arena: &Arena) -> SmallVec<[(usize, Block); 2]> {
    let mut thawed = SmallVec::new();
    let Some(first) = run.first() else {
        return thawed;
    };
    if series.hot_from(first.key.ts) {
        return thawed;
    }
    let n = BlockIndex::len(series);
    let mut rest = run;
    for i in 0..series.frozen_len() {
        let is_tail = i + 1 == n;
        let ends = if is_tail {
            rest.len()
        } else {
            let next = BlockIndex::get(series, i + 1).first_ts;
            rest.partition_point(|r| r.key.ts < next)
        };
        if ends > 0 || is_tail {
            let bytes = build::frozen_bytes(series, i).expect("a frozen block");
            let mut decoded = Decoded::new();
            decoded.fill(bytes);
            let (ts, values) = decoded.all_columns();
            let points = ts.iter().zip(values).map(|(&t, &v)| Point::new(t, v));
            thawed.push((i, Block::flat_of(arena, points)));
        }
        rest = &rest[ends..];
    }
    thawed
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

/// The blocks a merge sees: the published version's (ids `0..n`, thawed
/// ones standing in for the frozen blocks the run falls into) and the ones
/// it allocates (ids `n..`).
struct MergeStore<'a> {
    published: &'a Series,
    thawed: SmallVec<[(usize, Block); 2]>,
    new_blocks: Vec<Block>,
    reserve: &'a mut Reserve,
    from_reserve: usize,
    /// Full blocks are frozen: a long series' next block is segmented (it
    /// takes memory as it fills).
    freeze: bool,
}

impl MergeStore<'_> {
    /// Hot block `id`. Core's merge reads only the blocks a run falls into
    /// and the tail, which `thaw` made hot.
    fn hot_block(&self, id: BlockId) -> Block {
        let n = BlockIndex::len(self.published);
        let i = id.0 as usize;
        if i >= n {
            return self.new_blocks[i - n].clone();
        }
        if let Some((_, words)) = self.thawed.iter().find(|(t, _)| *t == i) {
            return words.clone();
        }
        build::hot_words(self.published, i)
            .expect("a merge reads thawed blocks only")
            .clone()
    }

    fn words(&self, id: BlockId) -> &Block {
        let n = BlockIndex::len(self.published);
        let i = id.0 as usize;
        if i >= n {
            return &self.new_blocks[i - n];
        }
        if let Some((_, words)) = self.thawed.iter().find(|(t, _)| *t == i) {
            return words;
        }
        build::hot_words(self.published, i).expect("a merge reads thawed blocks only")
    }

    /// Block `id`, to index in a new version.
    fn stored(&self, id: BlockId) -> Stored {
        let i = id.0 as usize;
        let thawed = self.thawed.iter().any(|(t, _)| *t == i);
        if i < BlockIndex::len(self.published) && !thawed {
            self.published.block(i).block
        } else {
            Stored::Hot(self.hot_block(id))
        }
    }
}

impl MergeStore<'_> {
    fn fill(&self, id: BlockId) -> BlockFill<'_> {
        #[allow(unused_mut)]
        let mut fill = self
            .words(id)
            .fill()
            .with_spare(&self.reserve.spare.segments);
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
        self.words(id).view()
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
        let capacity = self.capacity_for(points);
        let full = capacity == MAX_POINTS;
        // With freezing on, a full-size block (a long series' next tail)
        // is a frozen tail reused when one is free: no allocation, and the
        // reserve lasts longer.
        let spare = if self.freeze && full {
            self.reserve.spare_block()
        } else {
            None
        };
        let reserved = if spare.is_none() && full {
            self.reserve.blocks.pop()
        } else {
            None
        };
        let words = match (spare, reserved) {
            (Some(spare), _) => Block::Segmented(spare),
            (None, Some(reserved)) => {
                self.from_reserve += reserved.bytes();
                reserved
            }
            // A new segmented tail takes memory as it fills.
            (None, None) if self.freeze && full => Block::segmented(self.reserve.encoder.arena()),
            (None, None) => Block::flat(self.reserve.encoder.arena(), capacity),
        };
        self.new_blocks.push(words);
        Some(BlockId(
            (BlockIndex::len(self.published) + self.new_blocks.len() - 1) as u32,
        ))
    }

    fn available(&self) -> usize {
        usize::MAX
    }

    fn block_mut(&mut self, id: BlockId) -> BlockFill<'_> {
        self.fill(id)
    }

    fn pair(&mut self, from: BlockId, to: BlockId) -> (BlockView<'_>, BlockFill<'_>) {
        (self.words(from).view(), self.fill(to))
    }

    fn retire(&mut self, _id: BlockId) {
        // The shard counts bytes by version (`Series::footprint`): a
        // retired block is simply not in the new one.
    }
}

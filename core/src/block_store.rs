//! Where column blocks live: the [`BlockStore`] trait, and
//! [`ArrayBlockStore`], a fixed array of blocks for users with no allocator.
//!
//! The series algorithms never allocate; they ask the store for a block of
//! some capacity and give blocks back with [`BlockStore::retire`] once no
//! series refers to them. The runtime's store hands out size classes (a
//! short series gets a short block) from node-local memory and reuses a
//! retired block only after every reader that could still see it is gone;
//! the array store has one block size and reuses at once.

use core::ops::Bound;

use crate::block::{ArrayBlock, BlockRead, BlockWrite};

/// Index of a block in its [`BlockStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct BlockId(pub u32);

/// Where blocks are read from: all that lookups and scans need.
pub trait BlockSource {
    /// A block, to read.
    type Block<'a>: BlockRead
    where
        Self: 'a;
    /// Block `id`, to read.
    fn block(&self, id: BlockId) -> Self::Block<'_>;

    /// Block `id`, to read the points with timestamps in `range` and no
    /// others: what scans call. A store that decodes blocks may decode only
    /// those points' values; the view's [`value`](BlockRead::value) of any
    /// other point is then unspecified (some value, never a panic). Its
    /// length and timestamps are whole. Default: [`block`](Self::block).
    #[inline]
    fn block_within(&self, id: BlockId, range: (Bound<i64>, Bound<i64>)) -> Self::Block<'_> {
        let _ = range;
        self.block(id)
    }

    /// A hint that block `id` is read soon (a scan's next block): a store
    /// may start bringing it into cache. Default: nothing.
    #[inline]
    fn prefetch(&self, id: BlockId) {
        let _ = id;
    }
}

/// Storage for the column blocks of many series.
///
/// Contract: an id returned by `alloc` refers to the same block until it is
/// passed to `retire`; `available` is a promise that that many `alloc` calls
/// in a row succeed.
pub trait BlockStore: BlockSource {
    /// A block, to fill.
    type BlockMut<'a>: BlockWrite
    where
        Self: 'a;

    /// The most points one block holds.
    fn max_points(&self) -> usize;
    /// The capacity `alloc` gives a block asked to hold `points` points
    /// (`1..=max_points()`): at least `points`.
    fn capacity_for(&self, points: usize) -> usize;
    /// The points a long series' next block starts with, once its tail is
    /// full at [`max_points`](Self::max_points); a block started smaller
    /// doubles as it fills, up to the maximum. Default: the maximum at
    /// once (no copying). A store whose full blocks are compressed soon
    /// after may start smaller, so that the one hot block per series is
    /// small (numatree's runtime instead gives a maximum-size block that
    /// takes memory as it fills).
    fn next_block_points(&self) -> usize {
        self.max_points()
    }
    /// A new, empty block of `capacity_for(points)` points, or `None` when
    /// the store is full.
    fn alloc(&mut self, points: usize) -> Option<BlockId>;
    /// How many more `alloc` calls surely succeed.
    fn available(&self) -> usize;
    /// Block `id`, to fill beyond its published points.
    fn block_mut(&mut self, id: BlockId) -> Self::BlockMut<'_>;
    /// Block `from` to read and block `to` to fill, at once (`from != to`).
    fn pair(&mut self, from: BlockId, to: BlockId) -> (Self::Block<'_>, Self::BlockMut<'_>);
    /// No series refers to block `id` any more.
    fn retire(&mut self, id: BlockId);
}

/// At most `BLOCKS` blocks of `POINTS` points each, inline: no allocator.
#[derive(Clone, Debug)]
pub struct ArrayBlockStore<const BLOCKS: usize, const POINTS: usize> {
    blocks: heapless::Vec<ArrayBlock<POINTS>, BLOCKS>,
    free: heapless::Vec<BlockId, BLOCKS>,
}

impl<const BLOCKS: usize, const POINTS: usize> ArrayBlockStore<BLOCKS, POINTS> {
    /// An empty store.
    pub const fn new() -> Self {
        const {
            assert!(POINTS > 0, "a block holds at least one point");
            assert!(BLOCKS < u32::MAX as usize, "block ids are u32");
        }
        ArrayBlockStore {
            blocks: heapless::Vec::new(),
            free: heapless::Vec::new(),
        }
    }

    /// Blocks in use (allocated, not retired).
    pub fn allocated(&self) -> usize {
        self.blocks.len() - self.free.len()
    }
}

impl<const BLOCKS: usize, const POINTS: usize> Default for ArrayBlockStore<BLOCKS, POINTS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const BLOCKS: usize, const POINTS: usize> BlockSource for ArrayBlockStore<BLOCKS, POINTS> {
    type Block<'a> = &'a ArrayBlock<POINTS>;

    fn block(&self, id: BlockId) -> &ArrayBlock<POINTS> {
        &self.blocks[id.0 as usize]
    }
}

impl<const BLOCKS: usize, const POINTS: usize> BlockStore for ArrayBlockStore<BLOCKS, POINTS> {
    type BlockMut<'a> = &'a mut ArrayBlock<POINTS>;

    fn max_points(&self) -> usize {
        POINTS
    }

    fn capacity_for(&self, _points: usize) -> usize {
        POINTS
    }

    fn alloc(&mut self, _points: usize) -> Option<BlockId> {
        if let Some(id) = self.free.pop() {
            self.blocks[id.0 as usize].clear();
            return Some(id);
        }
        let id = BlockId(self.blocks.len() as u32);
        self.blocks.push(ArrayBlock::new()).ok()?;
        Some(id)
    }

    fn available(&self) -> usize {
        BLOCKS - self.blocks.len() + self.free.len()
    }

    fn block_mut(&mut self, id: BlockId) -> &mut ArrayBlock<POINTS> {
        &mut self.blocks[id.0 as usize]
    }

    fn pair(
        &mut self,
        from: BlockId,
        to: BlockId,
    ) -> (&ArrayBlock<POINTS>, &mut ArrayBlock<POINTS>) {
        let (from, to) = (from.0 as usize, to.0 as usize);
        assert_ne!(from, to, "a block is not copied into itself");
        if from < to {
            let (low, high) = self.blocks.split_at_mut(to);
            (&low[from], &mut high[0])
        } else {
            let (low, high) = self.blocks.split_at_mut(from);
            (&high[0], &mut low[to])
        }
    }

    fn retire(&mut self, id: BlockId) {
        // Room for every block: pushing cannot fail.
        let _ = self.free.push(id);
    }
}

impl<B: BlockRead + ?Sized> BlockRead for &B {
    #[inline]
    fn len(&self) -> usize {
        (**self).len()
    }
    #[inline]
    fn ts(&self, i: usize) -> i64 {
        (**self).ts(i)
    }
    #[inline]
    fn value(&self, i: usize) -> u64 {
        (**self).value(i)
    }
}

impl<B: BlockRead + ?Sized> BlockRead for &mut B {
    #[inline]
    fn len(&self) -> usize {
        (**self).len()
    }
    #[inline]
    fn ts(&self, i: usize) -> i64 {
        (**self).ts(i)
    }
    #[inline]
    fn value(&self, i: usize) -> u64 {
        (**self).value(i)
    }
}

impl<B: BlockWrite + ?Sized> BlockWrite for &mut B {
    fn capacity(&self) -> usize {
        (**self).capacity()
    }
    fn write(&mut self, i: usize, point: crate::block::Point) {
        (**self).write(i, point)
    }
    fn write_records(&mut self, from: usize, records: &[crate::Record]) {
        (**self).write_records(from, records)
    }
    fn publish(&mut self, len: usize) {
        (**self).publish(len)
    }
}

//! A hot column block in shared memory: its number of published points,
//! its timestamp column and its value column, every word an atomic so that
//! a merge may append while readers read, with no lock and no `unsafe`.
//! Flat (one allocation: word 0 the length, then the columns), or
//! segmented (`super::segmented`: a series' newest block with freezing on,
//! which takes memory as it fills).
//!
//! Publication: a merge writes points beyond the published length (relaxed
//! stores), then stores the new length with `Release`; a reader loads the
//! length with `Acquire` and reads only points below it, which are never
//! written again. Relaxed atomic loads and stores of a `u64` compile to
//! plain moves on x86-64 and arm64.

use numatree_core::{BlockRead, BlockWrite, Point, Record};

use super::arena::{piece_bytes, Arena, HotWords};
pub(crate) use super::segmented::SegmentedView;
use super::segmented::{Segmented, SpareSegments};
use crate::sync::{Arc, AtomicU64, Ordering};

/// Block capacities, in points: a series grows through them one by one
/// (so a short series holds a short block, at most a quarter empty), and
/// full blocks hold [`MAX_POINTS`]. 3 and 5 are left out (4 and 6 are at
/// most a quarter empty for them): a series that gains a point per merge
/// (a million series of a few points, each slot holding one point of
/// each) regrows its first block 6 times in 10 points instead of 8, each
/// regrowth a new block, a new version and a retired one. Measured on the
/// bench's high-cardinality shape (1,000,000 x 10, this 2-core VM): insert
/// 5.26 -> 6.72 Mops/s with 1 writer, 5.12 -> 6.35 with 2; a 10-point
/// series still holds exactly 10.
#[cfg(not(any(loom, shuttle)))]
pub(crate) const CAPACITIES: [usize; 20] = [
    1, 2, 4, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256,
];

/// Points in a full block: 4 KiB of columns.
#[cfg(not(any(loom, shuttle)))]
pub(crate) const MAX_POINTS: usize = 256;

/// Under a model checker, blocks of 8 points, so that a model with a
/// handful of points fills, freezes and thaws blocks.
#[cfg(any(loom, shuttle))]
pub(crate) const CAPACITIES: [usize; 7] = [1, 2, 3, 4, 5, 6, 8];

/// Points in a full block (8 under a model checker).
#[cfg(any(loom, shuttle))]
pub(crate) const MAX_POINTS: usize = 8;

/// The smallest capacity that holds `points` (at most [`MAX_POINTS`]).
pub(crate) fn capacity_for(points: usize) -> usize {
    CAPACITIES
        .iter()
        .copied()
        .find(|&c| c >= points)
        .unwrap_or(MAX_POINTS)
}

/// A hot block, shared by every series version that indexes it: flat
/// (`[len, ts[cap], value[cap]]`, one piece of the shard's arena sized by
/// [`CAPACITIES`]), or segmented (a series' newest block with freezing
/// on, see `super::segmented`). Its words are the arena's, bound to the
/// shard's node, whoever writes, reads or frees them.
#[derive(Clone, Debug)]
pub(crate) enum Block {
    Flat(HotWords),
    Segmented(Arc<Segmented>),
}

impl Block {
    /// A new, empty flat block of `capacity` points from `arena` (the
    /// shard's): see [`empty_flat_words`].
    pub(crate) fn flat(arena: &Arena, capacity: usize) -> Block {
        Block::Flat(empty_flat_words(arena, capacity))
    }

    /// A flat block sized for `points` (ascending, at most
    /// [`MAX_POINTS`]), holding them all, published: a block thawed,
    /// restored or cut from others.
    pub(crate) fn flat_of(arena: &Arena, points: impl ExactSizeIterator<Item = Point>) -> Block {
        let n = points.len();
        let block = Block::flat(arena, capacity_for(n));
        let mut fill = block.fill();
        for (i, p) in points.enumerate() {
            fill.write(i, p);
        }
        fill.publish(n);
        block
    }

    /// A new, empty segmented block of [`MAX_POINTS`]: its first segment
    /// only, its segments from `arena` (the shard's).
    pub(crate) fn segmented(arena: &Arena) -> Block {
        Block::Segmented(Arc::new(Segmented::new(arena)))
    }

    /// A full-size block with all its memory allocated and touched (for
    /// the reserve): flat, or segmented with every segment.
    pub(crate) fn reserved(arena: &Arena, segmented: bool) -> Block {
        if segmented {
            Block::Segmented(Arc::new(Segmented::full(arena)))
        } else {
            // Zeroed: every word touched.
            Block::Flat(arena.alloc_words(flat_words(MAX_POINTS)))
        }
    }

    /// Bytes the block holds now: its pieces of the arena (header and
    /// rounding included), and a segmented block's `Arc` (which grows as
    /// segments are allocated).
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Block::Flat(words) => flat_bytes(capacity(words)),
            Block::Segmented(block) => block.bytes(),
        }
    }

    /// The word holding the published length.
    #[inline]
    fn len_word(&self) -> &AtomicU64 {
        match self {
            Block::Flat(words) => &words[0],
            Block::Segmented(block) => block.len_word(),
        }
    }

    /// The published length, loaded `Relaxed` (a load that brings the
    /// block's first cache line in).
    #[inline]
    pub(crate) fn len_relaxed(&self) -> u64 {
        self.len_word().load(Ordering::Relaxed)
    }

    /// The block's first words (where its memory starts).
    pub(crate) fn first_words(&self) -> &[AtomicU64] {
        match self {
            Block::Flat(words) => &words[..1],
            Block::Segmented(block) => &block.head()[..1],
        }
    }

    /// The value at `ts` among the block's published points: a lookup's
    /// last step, each kind's view made where it is read (a `BlockView`
    /// moved by value is a segmented view's 168 bytes, a `memcpy` call).
    #[inline]
    pub(crate) fn value_at(&self, ts: i64) -> Option<u64> {
        match self {
            Block::Flat(words) => flat_value_at(words, ts),
            Block::Segmented(block) => find_value(&block.view(), ts),
        }
    }

    /// The published length and the time of the last published point:
    /// all the merge's append check reads, without a view (making a
    /// segmented block's view walks every segment: ~150 instructions a run,
    /// callgrind).
    #[inline]
    pub(crate) fn end(&self) -> (usize, Option<i64>) {
        match self {
            Block::Flat(words) => {
                let view = FlatView::new(words);
                (view.len(), view.len().checked_sub(1).map(|i| view.ts(i)))
            }
            Block::Segmented(block) => {
                let len = block.published();
                (len, len.checked_sub(1).map(|i| block.point(i).0))
            }
        }
    }

    /// The block's published points now.
    #[inline]
    pub(crate) fn view(&self) -> BlockView<'_> {
        match self {
            Block::Flat(words) => BlockView::Flat(FlatView::new(words)),
            Block::Segmented(block) => BlockView::Segmented(block.view()),
        }
    }

    /// The block, to fill (the one merge that owns its series).
    ///
    /// Inlined: called for every series a merge appends to, it returned
    /// the fill through the stack, and the caller's wider reloads of it
    /// stalled on the stores (store forwarding; ~15% of the merge loop's
    /// samples in `perf record`).
    #[inline]
    pub(crate) fn fill(&self) -> BlockFill<'_> {
        let target = match self {
            Block::Flat(words) => Target::Flat(words),
            Block::Segmented(block) => Target::Segmented(block),
        };
        BlockFill {
            len: self.len_word().load(Ordering::Relaxed) as usize,
            target,
            spare: None,
            #[cfg(test)]
            mutant_publish_first: false,
        }
    }
}

/// The value at `ts` in a hot block's view, if it has a point there.
#[inline]
fn find_value(view: &impl BlockRead, ts: i64) -> Option<u64> {
    numatree_core::find(view, ts).ok().map(|i| view.value(i))
}

/// The value at `ts` in the flat block `words`, if it has a point there
/// (a short cell's block, or any flat hot block through `Block::value_at`).
#[inline]
pub(crate) fn flat_value_at(words: &[AtomicU64], ts: i64) -> Option<u64> {
    find_value(&FlatView::new(words), ts)
}

/// Gives `sink` the points of the flat block `words` with `ts` in
/// `range`, ascending, at most `limit`; returns how many: core's scan over
/// the block alone, from one view of it (a short series' block, read
/// straight from its directory cell).
#[cfg_attr(any(loom, shuttle), allow(dead_code))] // no short cells there
#[inline]
pub(crate) fn flat_scan(
    words: &[AtomicU64],
    range: impl std::ops::RangeBounds<i64>,
    limit: usize,
    sink: impl numatree_core::PointSink,
) -> usize {
    let view = FlatView::new(words);
    if view.len() == 0 {
        return 0;
    }
    let one = OneBlock {
        first_ts: view.ts(0),
        view,
    };
    numatree_core::series::scan(&one, &one, range, limit, sink)
}

/// One flat block as a whole series: core's block index and block source
/// over it (see [`flat_scan`]).
struct OneBlock<'a> {
    first_ts: i64,
    view: FlatView<'a>,
}

impl numatree_core::series::BlockIndex for OneBlock<'_> {
    #[inline]
    fn len(&self) -> usize {
        1
    }
    #[inline]
    fn get(&self, _i: usize) -> numatree_core::series::BlockEntry {
        numatree_core::series::BlockEntry {
            first_ts: self.first_ts,
            id: numatree_core::BlockId(0),
        }
    }
}

impl numatree_core::BlockSource for OneBlock<'_> {
    type Block<'b>
        = FlatView<'b>
    where
        Self: 'b;
    #[inline]
    fn block(&self, _id: numatree_core::BlockId) -> FlatView<'_> {
        self.view
    }
}

/// Bytes a flat block of `capacity` points holds: its piece of the arena.
fn flat_bytes(capacity: usize) -> usize {
    piece_bytes(flat_words(capacity) * size_of::<u64>())
}

/// Bytes of the flat block `words` (as [`Block::bytes`] counts them).
pub(crate) fn flat_block_bytes(words: &[AtomicU64]) -> usize {
    flat_bytes(capacity(words))
}

/// Bytes of a [`Block::reserved`] block.
pub(crate) fn reserved_bytes(segmented: bool) -> usize {
    if segmented {
        Segmented::full_bytes()
    } else {
        flat_bytes(MAX_POINTS)
    }
}

/// Points a flat block's words can hold.
#[inline]
fn capacity(words: &[AtomicU64]) -> usize {
    (words.len() - 1) / 2
}

/// Words of a flat block of `capacity` points.
#[inline]
pub(crate) fn flat_words(capacity: usize) -> usize {
    1 + 2 * capacity
}

/// The words of an empty flat block of `capacity` points from `arena`
/// (see [`empty_words`]).
pub(crate) fn empty_flat_words(arena: &Arena, capacity: usize) -> HotWords {
    empty_words(arena, flat_words(capacity))
}

/// `words` words of an empty hot block from `arena` (a flat block, or a
/// segmented block's length and head): its length word (the first) 0,
/// the rest not zeroed (they hold old bytes until a merge writes its
/// points, and no reader reads past the published length). Zeroing whole
/// blocks was ~2% of a merge at the bench's default shape.
pub(crate) fn empty_words(arena: &Arena, words: usize) -> HotWords {
    let words = arena.alloc_words_unzeroed(words);
    // Relaxed: nothing reads the block before its version is published.
    words[0].store(0, Ordering::Relaxed);
    words
}

/// A flat block, read: its published points as of when the view was made.
#[derive(Clone, Copy)]
pub(crate) struct FlatView<'a> {
    ts: &'a [AtomicU64],
    values: &'a [AtomicU64],
}

impl<'a> FlatView<'a> {
    /// The block's published points now (`Acquire`: every point below the
    /// length is fully written).
    #[inline]
    pub(crate) fn new(words: &'a [AtomicU64]) -> Self {
        let cap = capacity(words);
        let len = (words[0].load(Ordering::Acquire) as usize).min(cap);
        FlatView {
            ts: &words[1..1 + len],
            values: &words[1 + cap..1 + cap + len],
        }
    }
}

impl BlockRead for FlatView<'_> {
    #[inline]
    fn len(&self) -> usize {
        self.ts.len()
    }
    #[inline]
    fn ts(&self, i: usize) -> i64 {
        self.ts[i].load(Ordering::Relaxed) as i64
    }
    #[inline]
    fn value(&self, i: usize) -> u64 {
        self.values[i].load(Ordering::Relaxed)
    }
    #[inline]
    fn visit(&self, from: usize, to: usize, f: &mut impl FnMut(i64, u64)) {
        let (ts, values) = (&self.ts[from..to], &self.values[from..to]);
        for (t, v) in ts.iter().zip(values) {
            f(t.load(Ordering::Relaxed) as i64, v.load(Ordering::Relaxed));
        }
    }
}

/// A hot block, read.
#[derive(Clone, Copy)]
pub(crate) enum BlockView<'a> {
    Flat(FlatView<'a>),
    Segmented(SegmentedView<'a>),
}

impl BlockRead for BlockView<'_> {
    #[inline]
    fn len(&self) -> usize {
        match self {
            BlockView::Flat(v) => v.len(),
            BlockView::Segmented(v) => v.len(),
        }
    }
    #[inline]
    fn ts(&self, i: usize) -> i64 {
        match self {
            BlockView::Flat(v) => v.ts(i),
            BlockView::Segmented(v) => v.ts(i),
        }
    }
    #[inline]
    fn value(&self, i: usize) -> u64 {
        match self {
            BlockView::Flat(v) => v.value(i),
            BlockView::Segmented(v) => v.value(i),
        }
    }
    #[inline]
    fn visit(&self, from: usize, to: usize, f: &mut impl FnMut(i64, u64)) {
        match self {
            BlockView::Flat(v) => v.visit(from, to, f),
            BlockView::Segmented(v) => v.visit(from, to, f),
        }
    }
}

impl BlockView<'_> {
    /// Appends the points to two columns (what freezing encodes), in bulk.
    pub(crate) fn columns_into(&self, ts: &mut Vec<i64>, values: &mut Vec<u64>) {
        match self {
            BlockView::Flat(v) => {
                ts.extend(v.ts.iter().map(|t| t.load(Ordering::Relaxed) as i64));
                values.extend(v.values.iter().map(|v| v.load(Ordering::Relaxed)));
            }
            BlockView::Segmented(v) => v.columns_into(ts, values),
        }
    }
}

/// What a [`BlockFill`] writes to.
enum Target<'a> {
    Flat(&'a [AtomicU64]),
    Segmented(&'a Segmented),
}

/// A block, filled by the one merge that owns its series.
pub(crate) struct BlockFill<'a> {
    target: Target<'a>,
    len: usize,
    /// Where a segmented block's new segments come from, if not new.
    spare: Option<&'a SpareSegments>,
    /// Negative control for the model tests: publish before writing.
    #[cfg(test)]
    pub(crate) mutant_publish_first: bool,
}

impl<'a> BlockFill<'a> {
    /// The flat block `words` (`[len, ts[cap], value[cap]]`), to fill: a
    /// short series' block, reached through its cell without a `Block`.
    pub(crate) fn flat(words: &'a [AtomicU64]) -> Self {
        BlockFill {
            len: words[0].load(Ordering::Relaxed) as usize,
            target: Target::Flat(words),
            spare: None,
            #[cfg(test)]
            mutant_publish_first: false,
        }
    }

    /// This fill, taking a segmented block's new segments from `spare`
    /// when it has them.
    pub(crate) fn with_spare(self, spare: &'a SpareSegments) -> Self {
        BlockFill {
            spare: Some(spare),
            ..self
        }
    }

    /// Writes the first `len` published points of the flat block `old`
    /// to positions `0..len` of this (new, flat) block, a column at a
    /// time: a short series' block regrown a size class up.
    pub(crate) fn copy_flat(&mut self, old: &[AtomicU64], len: usize) {
        let Target::Flat(words) = self.target else {
            unreachable!("a short series' block regrows into a flat block")
        };
        let old_cap = capacity(old);
        debug_assert!(self.len == 0 && len <= old_cap && len <= capacity(words));
        #[cfg(test)]
        if self.mutant_publish_first {
            for i in 0..len {
                let ts = old[1 + i].load(Ordering::Relaxed) as i64;
                self.write(
                    i,
                    Point::new(ts, old[1 + old_cap + i].load(Ordering::Relaxed)),
                );
            }
            return;
        }
        let cap = capacity(words);
        for (column, old_column) in [(1, 1), (1 + cap, 1 + old_cap)] {
            let to = &words[column..column + len];
            for (t, o) in to.iter().zip(&old[old_column..old_column + len]) {
                t.store(o.load(Ordering::Relaxed), Ordering::Relaxed);
            }
        }
    }

    fn len_word(&self) -> &AtomicU64 {
        match self.target {
            Target::Flat(words) => &words[0],
            Target::Segmented(block) => block.len_word(),
        }
    }

    /// Stores `len` as the published length (`Release`).
    fn store_len(&self, len: usize) {
        self.len_word().store(len as u64, Ordering::Release);
    }
}

impl BlockRead for BlockFill<'_> {
    fn len(&self) -> usize {
        self.len
    }
    fn ts(&self, i: usize) -> i64 {
        match self.target {
            Target::Flat(words) => words[1 + i].load(Ordering::Relaxed) as i64,
            Target::Segmented(block) => block.point(i).0,
        }
    }
    fn value(&self, i: usize) -> u64 {
        match self.target {
            Target::Flat(words) => words[1 + capacity(words) + i].load(Ordering::Relaxed),
            Target::Segmented(block) => block.point(i).1,
        }
    }
}

impl BlockWrite for BlockFill<'_> {
    fn capacity(&self) -> usize {
        match self.target {
            Target::Flat(words) => capacity(words),
            Target::Segmented(_) => MAX_POINTS,
        }
    }

    fn write(&mut self, i: usize, point: Point) {
        debug_assert!(i >= self.len, "point {i} is published");
        #[cfg(test)]
        if self.mutant_publish_first {
            if let Target::Segmented(block) = self.target {
                block.allocate_for(i);
            }
            self.store_len(i + 1);
        }
        match self.target {
            Target::Flat(words) => {
                let cap = capacity(words);
                words[1 + i].store(point.ts as u64, Ordering::Relaxed);
                words[1 + cap + i].store(point.value, Ordering::Relaxed);
            }
            Target::Segmented(block) => block.write(i, point, self.spare),
        }
    }

    #[inline]
    fn write_records(&mut self, from: usize, records: &[Record]) {
        debug_assert!(from >= self.len && from + records.len() <= self.capacity());
        #[cfg(test)]
        if self.mutant_publish_first {
            // Point by point, each published before it is written.
            for (k, r) in records.iter().enumerate() {
                self.write(from + k, Point::new(r.key.ts, r.value));
            }
            return;
        }
        match self.target {
            Target::Flat(words) => {
                let cap = capacity(words);
                let n = records.len();
                let ts = &words[1 + from..1 + from + n];
                let values = &words[1 + cap + from..1 + cap + from + n];
                for ((t, v), r) in ts.iter().zip(values).zip(records) {
                    t.store(r.key.ts as u64, Ordering::Relaxed);
                    v.store(r.value, Ordering::Relaxed);
                }
            }
            Target::Segmented(block) => block.write_records(from, records, self.spare),
        }
    }

    fn publish(&mut self, len: usize) {
        debug_assert!(self.len <= len && len <= self.capacity());
        self.len = len;
        self.store_len(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_sized_for_its_points_is_at_most_a_quarter_empty() {
        assert!(CAPACITIES.windows(2).all(|w| w[0] < w[1]), "{CAPACITIES:?}");
        for n in 1..=MAX_POINTS {
            let c = capacity_for(n);
            assert!(c >= n && (c - n) * 4 <= c, "{n} points in {c}");
        }
        assert_eq!(*CAPACITIES.last().unwrap(), MAX_POINTS);
        assert_eq!(capacity_for(MAX_POINTS), MAX_POINTS);
        #[cfg(not(any(loom, shuttle)))]
        assert_eq!(capacity_for(9), 10);
    }

    #[test]
    fn a_view_sees_published_points_only() {
        let arena = Arena::default();
        for block in [Block::flat(&arena, 4), Block::segmented(&arena)] {
            let mut fill = block.fill();
            fill.write(0, Point::new(5, 50));
            fill.write(1, Point::new(6, 60));
            assert_eq!(block.view().len(), 0);
            fill.publish(2);
            let view = block.view();
            assert_eq!((view.len(), view.ts(1), view.value(1)), (2, 6, 60));
            let fill = block.fill();
            assert_eq!((fill.len(), fill.ts(1), fill.value(1)), (2, 6, 60));
        }
    }
}

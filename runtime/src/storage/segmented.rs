//! A long series' newest block when merges freeze full blocks: a block of
//! [`MAX_POINTS`] that takes memory as it fills, without a copy and
//! without a new version of its series.
//!
//! Why: with freezing on, a long series holds ~1 byte a point frozen and
//! one hot block, its newest, at 16 bytes a point. A flat block sized for
//! all the points it will hold (4 KiB) is mostly empty for most of its
//! life, and a block that starts small regrows: each regrowth a copy, an
//! allocation, a new version and a retired one, which made ingest with
//! freezing ~20% slower (measured with 32- and 48-point starts). A
//! series' first block still grows through flat size classes (a short
//! series' block fits its points within a quarter; a segmented block of
//! 17 points would take twice their bytes). Here the
//! block is its published length and a first segment of [`HEAD`] points
//! (one piece of the shard's arena), and [`SEGMENTS`]` - 1` more that double (`HEAD`, `2 HEAD`,
//! `4 HEAD`, ... points), each allocated by the merge when the first point
//! that falls into it is written: the block holds at most about twice its
//! points' bytes, and growing is one allocation, nothing else.
//!
//! A shard's merge keeps the blocks it froze ([`Spare`]) and makes its
//! next tails of them once no version holds them, their segments coming
//! back one by one as they fill: a new block was five allocations and five
//! frees (the frees by whichever thread reclaimed the retired version),
//! half of the merge's calls to the system allocator, which took about a
//! third of its time (see BENCHMARKS.md); in a sustained ingest it is none.
//!
//! Publication is the flat block's (`super::block`): a merge writes points
//! beyond the published length, then stores the length with `Release`; a
//! reader loads it with `Acquire` and reads below it only. A segment is set
//! (once, never replaced or freed while the block lives) before any point
//! in it is written, so one that holds a published point is visible to
//! the reader that sees the length.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::OnceLock;

use numatree_core::{BlockRead, Point, Record};

use super::arena::{piece_bytes, Arena, HotWords};
use super::block::MAX_POINTS;
use crate::sync::{Arc, AtomicU64, Ordering};

/// Segments of a block: the head (in one piece with the length), then
/// the doubling ones. Measured
/// on the bench's default shape (1,024 x 10,000 gauge points, 2 writers,
/// this 2-core VM): with 4 (a 32-point head) `drop_before` of half the
/// time range freed 45.9% of the index, with 5 (16) 46.9%; ingest with
/// freezing on / off 0.92-1.08 with either (flat tails starting at 128
/// points: 40.6%; starting at 48: 45.2% but 0.77-0.82).
#[cfg(not(any(loom, shuttle)))]
pub(crate) const SEGMENTS: usize = 5;

/// Under a model checker (8-point blocks): segments of 1, 1, 2, 4 points.
#[cfg(any(loom, shuttle))]
pub(crate) const SEGMENTS: usize = 4;

/// Points in the first segment (16; 1 under a model checker): the
/// segments hold `HEAD`, `HEAD`, `2 HEAD`, `4 HEAD`, ... points.
pub(crate) const HEAD: usize = MAX_POINTS >> (SEGMENTS - 1);

const _: () = assert!(HEAD >= 1 && HEAD << (SEGMENTS - 1) == MAX_POINTS);

/// A segmented block: its length and its head segment in one piece of
/// the shard's arena, the other segments once allocated (pieces of the
/// same arena). Each segment is its timestamp column, then its value
/// column.
pub(crate) struct Segmented {
    /// The published length (word 0), then the head segment.
    head: HotWords,
    more: [OnceLock<HotWords>; SEGMENTS - 1],
    /// Where segments come from when the merge has no spare one.
    arena: Arena,
}

impl std::fmt::Debug for Segmented {
    /// The block's words, not its arena (whose own `Debug` takes the
    /// arena's lock).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segmented")
            .field("head", &self.head)
            .field("more", &self.more)
            .finish_non_exhaustive()
    }
}

/// Segmented blocks a shard's merge froze, oldest first, kept to be its
/// next tails. A block is reused once the list holds its only reference
/// (`Arc::get_mut`): the versions that indexed it are gone, reclaimed by
/// the epoch collector after every reader that could see them, so no
/// reader can reach it. It comes back as a new block does, its head only:
/// its other segments go to [`SpareSegments`], which the shard's next
/// tails take as they fill (a tail holds at most about twice its points'
/// bytes, as before). Segments are pieces of the shard's arena, so they
/// lie on its node; their words hold old points, which no
/// reader sees (a block is read below its published length only, and a
/// merge writes every point it publishes).
///
/// Neither list is in the shard's byte count (no more than retired
/// versions awaiting reclamation are): at most [`Spare::KEEP`] blocks
/// and as many segments of each size.
#[derive(Debug, Default)]
pub(crate) struct Spare {
    blocks: VecDeque<Arc<Segmented>>,
    pub(crate) segments: SpareSegments,
}

impl Spare {
    /// Blocks (and segments of each size) kept (the oldest goes when a
    /// block comes to a full list; freed when its last version is). The
    /// epoch collector reclaims a retired version several slots later:
    /// at the bench's default shape (1 writer, 4 shards) new tails were
    /// made of kept ones 22% of the time with 64, 46% with 128 and 95%
    /// with 256 (all but the first slots' tails; counted with a `perf
    /// probe` on `malloc`).
    const KEEP: usize = 256;
    /// Blocks `take` looks at, oldest first (the likeliest to be free).
    const LOOK: usize = 4;

    /// Keeps `block`, which the merge just froze (its versions may
    /// still be read).
    pub(crate) fn retire(&mut self, block: &Arc<Segmented>) {
        if self.blocks.len() == Self::KEEP {
            self.blocks.pop_front();
        }
        self.blocks.push_back(Arc::clone(block));
    }

    /// An empty block (its head only) made of a kept one that nothing
    /// else holds, if any; its other segments go to `self.segments`.
    pub(crate) fn take(&mut self) -> Option<Arc<Segmented>> {
        let n = self.blocks.len().min(Self::LOOK);
        let i = (0..n).find(|&i| Arc::get_mut(&mut self.blocks[i]).is_some())?;
        let mut block = self.blocks.remove(i)?;
        let empty = Arc::get_mut(&mut block)?;
        empty.len_word().store(0, Ordering::Relaxed);
        for (s, segment) in (1..SEGMENTS).zip(&mut empty.more) {
            if let Some(words) = segment.take() {
                self.segments.put(s, words);
            }
        }
        Some(block)
    }

    /// Negative control for the model tests: the oldest kept block, emptied
    /// even if a version still holds it (its readers then see its points
    /// vanish, or another series' points).
    #[cfg(test)]
    pub(crate) fn take_held(&mut self) -> Option<Arc<Segmented>> {
        let block = self.blocks.pop_front()?;
        block.len_word().store(0, Ordering::Release);
        Some(block)
    }

    /// Blocks kept, for the tests.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.blocks.len()
    }
}

/// Segments of reused blocks, by size, for the merge's next tails (see
/// [`Spare`]); the merge's only (a `RefCell`: its blocks' fills share it).
#[derive(Debug, Default)]
pub(crate) struct SpareSegments(RefCell<[Vec<HotWords>; SEGMENTS - 1]>);

impl SpareSegments {
    /// Keeps segment `s`'s words, unless [`Spare::KEEP`] are kept.
    fn put(&self, s: usize, words: HotWords) {
        let mut spare = self.0.borrow_mut();
        if spare[s - 1].len() < Spare::KEEP {
            spare[s - 1].push(words);
        }
    }

    /// Kept words for segment `s`, if any.
    fn take(&self, s: usize) -> Option<HotWords> {
        self.0.borrow_mut()[s - 1].pop()
    }

    /// Segments kept of each size, for the tests.
    #[cfg(test)]
    fn counts(&self) -> Vec<usize> {
        self.0.borrow().iter().map(Vec::len).collect()
    }
}

/// The segment point `i` falls into, and its place there.
#[inline]
fn locate(i: usize) -> (usize, usize) {
    if i < HEAD {
        (0, i)
    } else {
        let s = (i / HEAD).ilog2() as usize + 1;
        (s, i - first_point(s))
    }
}

/// The first point of segment `s`.
#[inline]
fn first_point(s: usize) -> usize {
    if s == 0 {
        0
    } else {
        HEAD << (s - 1)
    }
}

/// Bytes segment `s` (past the head) takes: its piece of the arena.
fn segment_bytes(s: usize) -> usize {
    piece_bytes(2 * points_in(s) * size_of::<u64>())
}

/// Points segment `s` holds.
#[inline]
fn points_in(s: usize) -> usize {
    if s == 0 {
        HEAD
    } else {
        HEAD << (s - 1)
    }
}

impl Segmented {
    /// An empty block: its head only (`block::empty_words`: not zeroed
    /// but its length word), its segments from `arena`.
    pub(crate) fn new(arena: &Arena) -> Segmented {
        Segmented::of_head(arena, super::block::empty_words(arena, 1 + 2 * HEAD))
    }

    fn of_head(arena: &Arena, head: HotWords) -> Segmented {
        Segmented {
            head,
            more: std::array::from_fn(|_| OnceLock::new()),
            arena: arena.clone(),
        }
    }

    /// An empty block with every segment allocated and touched (reserved
    /// memory).
    pub(crate) fn full(arena: &Arena) -> Segmented {
        // Zeroed, the head too: every word touched.
        let block = Segmented::of_head(arena, arena.alloc_words(1 + 2 * HEAD));
        for (s, segment) in (1..SEGMENTS).zip(&block.more) {
            // Zeroed: every word touched.
            segment
                .set(arena.alloc_words(2 * points_in(s)))
                .expect("a new block's segments are unset");
        }
        block
    }

    /// The word holding the published length.
    #[inline]
    pub(crate) fn len_word(&self) -> &AtomicU64 {
        &self.head[0]
    }

    /// The length word and the head segment's words (where the block's
    /// memory starts).
    pub(crate) fn head(&self) -> &[AtomicU64] {
        &self.head
    }

    /// Bytes the block holds now (segments allocated so far): its pieces
    /// of the arena, and the `Arc` with its counts.
    pub(crate) fn bytes(&self) -> usize {
        let more: usize = (1..SEGMENTS)
            .filter(|&s| self.more[s - 1].get().is_some())
            .map(segment_bytes)
            .sum();
        Self::empty_bytes() + more
    }

    /// Bytes of a block with no segment but its head.
    fn empty_bytes() -> usize {
        size_of::<Segmented>() + 2 * size_of::<usize>() + piece_bytes((1 + 2 * HEAD) * 8)
    }

    /// Bytes of a block with every segment ([`full`](Self::full)).
    pub(crate) fn full_bytes() -> usize {
        Self::empty_bytes() + (1..SEGMENTS).map(segment_bytes).sum::<usize>()
    }

    /// Segment `s`'s words, if allocated.
    #[inline]
    fn segment(&self, s: usize) -> Option<&[AtomicU64]> {
        if s == 0 {
            Some(&self.head[1..])
        } else {
            self.more[s - 1].get().map(|b| &b[..])
        }
    }

    /// Segment `s`'s words, set if they were not: taken from `spare`
    /// when it has some, else allocated from the block's arena (not
    /// zeroed: like a spare segment, it holds old bytes until the merge
    /// writes its points, and no reader reads past the published length).
    /// The merge's only.
    fn segment_or_alloc(&self, s: usize, spare: Option<&SpareSegments>) -> &[AtomicU64] {
        if s == 0 {
            &self.head[1..]
        } else {
            self.more[s - 1].get_or_init(|| {
                spare
                    .and_then(|spare| spare.take(s))
                    .unwrap_or_else(|| self.arena.alloc_words_unzeroed(2 * points_in(s)))
            })
        }
    }

    /// Writes point `i` (beyond the published length), allocating its
    /// segment first if needed. The merge's only.
    #[inline]
    pub(crate) fn write(&self, i: usize, point: Point, spare: Option<&SpareSegments>) {
        let (s, at) = locate(i);
        let words = self.segment_or_alloc(s, spare);
        words[at].store(point.ts as u64, Ordering::Relaxed);
        words[points_in(s) + at].store(point.value, Ordering::Relaxed);
    }

    /// Writes `records`' points as points `from..` (beyond the published
    /// length), a segment at a time: one segment lookup (and allocation,
    /// if needed) per segment the run touches, not per point.
    #[inline]
    pub(crate) fn write_records(
        &self,
        from: usize,
        records: &[Record],
        spare: Option<&SpareSegments>,
    ) {
        let (mut i, mut rest) = (from, records);
        while !rest.is_empty() {
            let (s, at) = locate(i);
            let (ts, values) = self.segment_or_alloc(s, spare).split_at(points_in(s));
            let n = rest.len().min(points_in(s) - at);
            let (ts, values) = (&ts[at..at + n], &values[at..at + n]);
            for ((t, v), r) in ts.iter().zip(values).zip(&rest[..n]) {
                t.store(r.key.ts as u64, Ordering::Relaxed);
                v.store(r.value, Ordering::Relaxed);
            }
            i += n;
            rest = &rest[n..];
        }
    }

    /// Allocates the segment of point `i` (the model tests' negative
    /// control, which publishes a point before writing it, allocates
    /// first).
    #[cfg(test)]
    pub(crate) fn allocate_for(&self, i: usize) {
        self.segment_or_alloc(locate(i).0, None);
    }

    /// Point `i`'s timestamp and value, read by the merge (which wrote
    /// them; `i` below what it wrote).
    pub(crate) fn point(&self, i: usize) -> (i64, u64) {
        let (s, at) = locate(i);
        let words = self.segment(s).expect("a written point's segment is set");
        (
            words[at].load(Ordering::Relaxed) as i64,
            words[points_in(s) + at].load(Ordering::Relaxed),
        )
    }

    /// The published length (`Acquire`: every point below it is fully
    /// written, and its segment set).
    #[inline]
    pub(crate) fn published(&self) -> usize {
        (self.len_word().load(Ordering::Acquire) as usize).min(MAX_POINTS)
    }

    /// The block's published points now (see [`published`](Self::published)).
    #[inline]
    pub(crate) fn view(&self) -> SegmentedView<'_> {
        let len = self.published();
        let mut view = SegmentedView {
            len,
            ts: [&[]; SEGMENTS],
            values: [&[]; SEGMENTS],
        };
        for s in 0..SEGMENTS {
            let first = first_point(s);
            if first >= len {
                break;
            }
            let words = self
                .segment(s)
                .expect("a segment holding a published point is set");
            let n = points_in(s).min(len - first);
            view.ts[s] = &words[..n];
            view.values[s] = &words[points_in(s)..points_in(s) + n];
        }
        view
    }
}

/// A segmented block, read: its published points as of when the view was
/// made, segment by segment.
#[derive(Clone, Copy)]
pub(crate) struct SegmentedView<'a> {
    len: usize,
    ts: [&'a [AtomicU64]; SEGMENTS],
    values: [&'a [AtomicU64]; SEGMENTS],
}

impl BlockRead for SegmentedView<'_> {
    #[inline]
    fn len(&self) -> usize {
        self.len
    }
    #[inline]
    fn ts(&self, i: usize) -> i64 {
        let (s, at) = locate(i);
        self.ts[s][at].load(Ordering::Relaxed) as i64
    }
    #[inline]
    fn value(&self, i: usize) -> u64 {
        let (s, at) = locate(i);
        self.values[s][at].load(Ordering::Relaxed)
    }
    #[inline]
    fn visit(&self, from: usize, to: usize, f: &mut impl FnMut(i64, u64)) {
        for s in 0..SEGMENTS {
            let first = first_point(s);
            let (lo, hi) = (from.max(first), to.min(first + self.ts[s].len()));
            if lo >= hi {
                continue;
            }
            let (ts, values) = (
                &self.ts[s][lo - first..hi - first],
                &self.values[s][lo - first..hi - first],
            );
            for (t, v) in ts.iter().zip(values) {
                f(t.load(Ordering::Relaxed) as i64, v.load(Ordering::Relaxed));
            }
        }
    }
}

impl SegmentedView<'_> {
    /// Appends the points to two columns (what freezing encodes).
    pub(crate) fn columns_into(&self, ts: &mut Vec<i64>, values: &mut Vec<u64>) {
        for s in 0..SEGMENTS {
            ts.extend(self.ts[s].iter().map(|t| t.load(Ordering::Relaxed) as i64));
            values.extend(self.values[s].iter().map(|v| v.load(Ordering::Relaxed)));
        }
    }
}

#[cfg(test)]
mod tests;

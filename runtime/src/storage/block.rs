//! A column block in shared memory: word 0 is the number of published
//! points, then the timestamp column, then the value column, every word an
//! atomic so that a merge may append while readers read, with no lock and
//! no `unsafe`.
//!
//! Publication: a merge writes points beyond the published length (relaxed
//! stores), then stores the new length with `Release`; a reader loads the
//! length with `Acquire` and reads only points below it, which are never
//! written again. Relaxed atomic loads and stores of a `u64` compile to
//! plain moves on x86-64 and arm64.

use numatree_core::{BlockRead, BlockWrite, Point};

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

/// A block: `[len, ts[cap], value[cap]]` as atomic words, shared by every
/// series version that indexes it.
pub(crate) type Block = Arc<[AtomicU64]>;

/// A new, empty block of `capacity` points, zeroed (so touched: its pages
/// are placed on the node of the merge thread that allocates it).
pub(crate) fn new_block(capacity: usize) -> Block {
    (0..1 + 2 * capacity).map(|_| AtomicU64::new(0)).collect()
}

/// Bytes a block of `capacity` points holds, with the `Arc` counts.
pub(crate) fn block_bytes(capacity: usize) -> usize {
    (1 + 2 * capacity) * size_of::<u64>() + 2 * size_of::<usize>()
}

/// Points a block can hold.
#[inline]
pub(crate) fn capacity(words: &[AtomicU64]) -> usize {
    (words.len() - 1) / 2
}

/// A block, read: its published points as of when the view was made.
#[derive(Clone, Copy)]
pub(crate) struct BlockView<'a> {
    ts: &'a [AtomicU64],
    values: &'a [AtomicU64],
}

impl<'a> BlockView<'a> {
    /// The block's published points now (`Acquire`: every point below the
    /// length is fully written).
    #[inline]
    pub(crate) fn new(words: &'a [AtomicU64]) -> Self {
        let cap = capacity(words);
        let len = (words[0].load(Ordering::Acquire) as usize).min(cap);
        BlockView {
            ts: &words[1..1 + len],
            values: &words[1 + cap..1 + cap + len],
        }
    }
}

impl BlockRead for BlockView<'_> {
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

impl BlockView<'_> {
    /// Appends the points to two columns (what freezing encodes), in bulk.
    pub(crate) fn columns_into(&self, ts: &mut Vec<i64>, values: &mut Vec<u64>) {
        ts.extend(self.ts.iter().map(|t| t.load(Ordering::Relaxed) as i64));
        values.extend(self.values.iter().map(|v| v.load(Ordering::Relaxed)));
    }
}

/// A block, filled by the one merge that owns its series.
pub(crate) struct BlockFill<'a> {
    words: &'a [AtomicU64],
    len: usize,
    /// Negative control for the model tests: publish before writing.
    #[cfg(test)]
    pub(crate) mutant_publish_first: bool,
}

impl<'a> BlockFill<'a> {
    pub(crate) fn new(words: &'a [AtomicU64]) -> Self {
        BlockFill {
            len: words[0].load(Ordering::Relaxed) as usize,
            words,
            #[cfg(test)]
            mutant_publish_first: false,
        }
    }
}

impl BlockRead for BlockFill<'_> {
    fn len(&self) -> usize {
        self.len
    }
    fn ts(&self, i: usize) -> i64 {
        self.words[1 + i].load(Ordering::Relaxed) as i64
    }
    fn value(&self, i: usize) -> u64 {
        self.words[1 + capacity(self.words) + i].load(Ordering::Relaxed)
    }
}

impl BlockWrite for BlockFill<'_> {
    fn capacity(&self) -> usize {
        capacity(self.words)
    }

    fn write(&mut self, i: usize, point: Point) {
        debug_assert!(i >= self.len, "point {i} is published");
        #[cfg(test)]
        if self.mutant_publish_first {
            self.words[0].store(i as u64 + 1, Ordering::Release);
        }
        let cap = capacity(self.words);
        self.words[1 + i].store(point.ts as u64, Ordering::Relaxed);
        self.words[1 + cap + i].store(point.value, Ordering::Relaxed);
    }

    fn publish(&mut self, len: usize) {
        debug_assert!(self.len <= len && len <= capacity(self.words));
        self.len = len;
        self.words[0].store(len as u64, Ordering::Release);
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
        let block = new_block(4);
        let mut fill = BlockFill::new(&block);
        fill.write(0, Point::new(5, 50));
        fill.write(1, Point::new(6, 60));
        assert_eq!(BlockView::new(&block).len(), 0);
        fill.publish(2);
        let view = BlockView::new(&block);
        assert_eq!((view.len(), view.ts(1), view.value(1)), (2, 6, 60));
        assert_eq!(BlockFill::new(&block).len(), 2);
    }
}

//! How a version is read: core's block index and block source over a
//! series' frozen and hot blocks, decoding a frozen block into a buffer on
//! the reader's stack when one is read, and the prefetches that overlap a
//! lookup's or a scan's next misses with this one.

use std::cell::{Ref, RefCell};
use std::ops::Bound;

use numatree_core::series::{BlockEntry, BlockIndex};
use numatree_core::{BlockId, BlockRead, BlockSource};

use super::{FrozenRef, Series};
use crate::storage::block::{Block, FlatView, SegmentedView};
use crate::storage::frozen::{self, Decoded};
use crate::storage::prefetch::prefetch_line;

/// A version being read: its blocks, with a buffer that frozen ones are
/// decoded into (made on first use, so reads of hot blocks never pay for
/// it). Core's reads hold one block at a time.
pub(super) struct Reading<'s> {
    series: &'s Series,
    decoded: RefCell<Option<Decoded>>,
}

impl<'s> Reading<'s> {
    pub(super) fn new(series: &'s Series) -> Self {
        Reading {
            series,
            decoded: RefCell::new(None),
        }
    }
}

impl BlockIndex for Reading<'_> {
    #[inline]
    fn len(&self) -> usize {
        BlockIndex::len(self.series)
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
        self.view(id, |decoded, bytes| decoded.fill(bytes))
    }

    #[inline]
    fn block_within(&self, id: BlockId, range: (Bound<i64>, Bound<i64>)) -> View<'_> {
        self.view(id, |decoded, bytes| decoded.fill_within(bytes, range))
    }

    #[inline]
    fn prefetch(&self, id: BlockId) {
        if let Some(b) = self.series.frozen_get(id.0 as usize) {
            prefetch(&b.bytes);
        }
    }
}

impl Reading<'_> {
    /// Block `id`: its words if hot, else the decode buffer after `fill`
    /// decoded the block into it.
    #[inline]
    fn view(&self, id: BlockId, fill: impl FnOnce(&mut Decoded, &[u8])) -> View<'_> {
        let i = id.0 as usize;
        let f = self.series.frozen_len();
        if i >= f {
            // Each kind's view made in place (moving a `BlockView` out
            // of a match copies a segmented view's 168 bytes).
            return match &self.series.hot[i - f].words {
                Block::Flat(words) => View::Flat(FlatView::new(words)),
                Block::Segmented(block) => View::Segmented(block.view()),
            };
        }
        fill(
            self.decoded.borrow_mut().get_or_insert_with(Decoded::new),
            &self.series.frozen_block(i).bytes,
        );
        View::Decoded(Ref::map(self.decoded.borrow(), |d| {
            d.as_ref().expect("just filled")
        }))
    }
}

/// Starts loading the first cache line of `bytes` (a block a scan reads
/// next) while the current one is decoded.
#[inline]
fn prefetch(bytes: &[u8]) {
    prefetch_line(bytes.as_ptr());
}

impl FrozenRef {
    /// The value at `ts` in this block, `next` the lower bound of the
    /// block after it (`None` for the last): a lookup's one way into a
    /// frozen block, the value's likely lines prefetched from a guess
    /// ([`prefetch_guess`]) while the block's header is read.
    #[inline]
    pub(super) fn value_at(&self, ts: i64, next: Option<i64>) -> Option<u64> {
        prefetch_guess(&self.bytes, self.first_ts, next, ts);
        frozen::get(&self.bytes, ts)
    }
}

/// Starts loading the lines of `bytes` (a frozen block whose time line
/// runs from `first_ts` to `next`) that `ts`'s value most likely sits in,
/// while the block's header and timestamps are read: its share of the
/// block's time span, as a share of its bytes. Values take most of a
/// block's bytes when they do not compress (8 bytes a point against ~0 for
/// regular timestamps), so the guess lands on or next to the value's line,
/// and the two cache misses of a lookup (the header, then the value)
/// overlap. A wrong guess costs a wasted load, nothing else.
#[inline]
fn prefetch_guess(bytes: &[u8], first_ts: i64, next: Option<i64>, ts: i64) {
    let Some(next) = next else {
        return;
    };
    let span = next.wrapping_sub(first_ts) as u64;
    let offset = ts.wrapping_sub(first_ts) as u64;
    if span == 0 || offset >= span || bytes.len() <= 64 {
        return;
    }
    // The guess is at most the header and the timestamps' bytes before
    // the value (they come first): its line and the next.
    let at = if span <= u64::from(u32::MAX) && bytes.len() <= u32::MAX as usize {
        // Both factors below 2^32: no overflow, and no 128-bit division.
        (offset * bytes.len() as u64 / span) as usize
    } else {
        (offset as f64 / span as f64 * bytes.len() as f64) as usize
    }
    .min(bytes.len() - 1);
    prefetch(&bytes[at..]);
    prefetch(&bytes[(at + 64).min(bytes.len() - 1)..]);
}

/// A block, read: hot words (flat or segmented), or a frozen block
/// decoded. One variant per layout, so a read dispatches once per block.
pub(crate) enum View<'a> {
    Flat(FlatView<'a>),
    Segmented(SegmentedView<'a>),
    Decoded(Ref<'a, Decoded>),
}

impl BlockRead for View<'_> {
    #[inline]
    fn len(&self) -> usize {
        match self {
            View::Flat(v) => v.len(),
            View::Segmented(v) => v.len(),
            View::Decoded(d) => d.len(),
        }
    }
    #[inline]
    fn ts(&self, i: usize) -> i64 {
        match self {
            View::Flat(v) => v.ts(i),
            View::Segmented(v) => v.ts(i),
            View::Decoded(d) => d.ts(i),
        }
    }
    #[inline]
    fn value(&self, i: usize) -> u64 {
        match self {
            View::Flat(v) => v.value(i),
            View::Segmented(v) => v.value(i),
            View::Decoded(d) => d.value(i),
        }
    }
    #[inline]
    fn visit(&self, from: usize, to: usize, f: &mut impl FnMut(i64, u64)) {
        match self {
            View::Flat(v) => v.visit(from, to, f),
            View::Segmented(v) => v.visit(from, to, f),
            View::Decoded(d) => d.visit(from, to, f),
        }
    }
    #[inline]
    fn columns(&self, from: usize, to: usize) -> Option<(&[i64], &[u64])> {
        match self {
            View::Flat(_) | View::Segmented(_) => None,
            View::Decoded(d) => d.columns(from, to),
        }
    }
}

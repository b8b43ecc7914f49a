//! Frozen blocks: a block that is no longer its series' newest is encoded
//! by core's codec ([`numatree_core::codec`]) into an immutable byte string
//! (delta + frame-of-reference timestamps; decimal, integer or XOR values,
//! whichever is smallest; raw when nothing helps), by the merge thread that
//! replaced it as the tail, off the writers' path.
//!
//! A frozen block is never written again: a late point that falls into it
//! thaws it (decodes it into a new hot block, which the merge then changes
//! as any other), and the block that results is frozen again when the
//! merge publishes the series' new version. Readers decode at most one
//! frozen block per lookup, and scans decode block by block into a
//! [`Decoded`] buffer on their stack.

use std::ops::Bound;

use numatree_core::codec;
use numatree_core::{lower_bound, BlockRead, Point};

pub(crate) use super::arena::FrozenBlock;
use super::arena::{piece_bytes, Arena};
use super::block::{BlockView, MAX_POINTS};

/// Bytes a frozen block holds: its piece of the shard's arena.
pub(crate) fn frozen_bytes(block: &[u8]) -> usize {
    piece_bytes(block.len())
}

/// Points in a frozen block (from its header; 0 for bytes that are not a
/// block, which the merge never produces).
pub(crate) fn frozen_points(block: &[u8]) -> usize {
    codec::header(block).map_or(0, |h| h.points)
}

/// Scratch for encoding (the columns of one block and the output), and
/// the shard's arena that frozen blocks are copied into.
#[derive(Debug)]
pub(crate) struct Encoder {
    ts: Vec<i64>,
    values: Vec<u64>,
    out: Vec<u8>,
    arena: Arena,
}

impl Default for Encoder {
    /// An encoder over an arena bound to no node.
    fn default() -> Self {
        Encoder::new(Arena::default())
    }
}

impl Encoder {
    /// An encoder whose frozen blocks are pieces of `arena`.
    pub(crate) fn new(arena: Arena) -> Self {
        Encoder {
            ts: Vec::with_capacity(MAX_POINTS),
            values: Vec::with_capacity(MAX_POINTS),
            out: vec![0; codec::max_encoded_len(MAX_POINTS)],
            arena,
        }
    }

    /// The shard's arena, which hot blocks come from too.
    pub(crate) fn arena(&self) -> &Arena {
        &self.arena
    }

    /// A frozen block holding a copy of `bytes` (an encoded block read
    /// from a snapshot).
    pub(crate) fn copy(&self, bytes: &[u8]) -> FrozenBlock {
        self.arena.alloc(bytes)
    }

    /// The published points of `block`, encoded.
    pub(crate) fn freeze(&mut self, block: &BlockView<'_>) -> FrozenBlock {
        self.ts.clear();
        self.values.clear();
        block.columns_into(&mut self.ts, &mut self.values);
        self.encode()
    }

    /// `points` (ascending), encoded.
    pub(crate) fn freeze_points(&mut self, points: impl Iterator<Item = Point>) -> FrozenBlock {
        self.ts.clear();
        self.values.clear();
        for p in points {
            self.ts.push(p.ts);
            self.values.push(p.value);
        }
        self.encode()
    }

    fn encode(&mut self) -> FrozenBlock {
        let need = codec::max_encoded_len(self.ts.len());
        if self.out.len() < need {
            self.out.resize(need, 0);
        }
        let len = codec::encode(&self.ts, &self.values, &mut self.out)
            .expect("the output is sized by max_encoded_len");
        self.arena.alloc(&self.out[..len])
    }
}

/// A frozen block decoded: up to [`MAX_POINTS`] points, read as any block.
#[derive(Debug)]
pub(crate) struct Decoded {
    ts: [i64; MAX_POINTS],
    values: [u64; MAX_POINTS],
    len: usize,
}

impl Decoded {
    /// An empty buffer (4 KiB: lives on a reader's stack).
    pub(crate) fn new() -> Self {
        Decoded {
            ts: [0; MAX_POINTS],
            values: [0; MAX_POINTS],
            len: 0,
        }
    }

    /// Decodes `block` into the buffer.
    ///
    /// # Panics
    /// If the bytes do not decode: frozen blocks are written by the merge
    /// (or checked when a snapshot is restored), so this is a bug.
    pub(crate) fn fill(&mut self, block: &[u8]) {
        self.try_fill(block)
            .unwrap_or_else(|e| panic!("a frozen block does not decode: {e}"));
    }

    /// Decodes `block` into the buffer, if it is a block of at most
    /// [`MAX_POINTS`] points (bytes from a snapshot file).
    pub(crate) fn try_fill(&mut self, block: &[u8]) -> Result<(), codec::DecodeError> {
        self.len = codec::decode(block, &mut self.ts, &mut self.values)?;
        Ok(())
    }

    /// Decodes `block`'s timestamps, and the values of the points with
    /// timestamps in `range` only (a scan's view: the other values are
    /// left as they were).
    ///
    /// # Panics
    /// If the bytes do not decode (see [`fill`](Self::fill)).
    pub(crate) fn fill_within(&mut self, block: &[u8], range: (Bound<i64>, Bound<i64>)) {
        let decoded = codec::decode_timestamps(block, &mut self.ts).and_then(|column| {
            self.len = column.points();
            // The positions core's scan finds in this view, by the same search.
            let from = match range.0 {
                Bound::Included(t) => lower_bound(self, t, false),
                Bound::Excluded(t) => lower_bound(self, t, true),
                Bound::Unbounded => 0,
            };
            let to = match range.1 {
                Bound::Included(t) => lower_bound(self, t, true),
                Bound::Excluded(t) => lower_bound(self, t, false),
                Bound::Unbounded => self.len,
            };
            column.decode_range(from.min(to)..to, &mut self.values)
        });
        decoded.unwrap_or_else(|e| panic!("a frozen block does not decode: {e}"));
    }

    /// The points, as columns.
    pub(crate) fn all_columns(&self) -> (&[i64], &[u64]) {
        (&self.ts[..self.len], &self.values[..self.len])
    }
}

impl BlockRead for Decoded {
    #[inline]
    fn len(&self) -> usize {
        self.len
    }
    #[inline]
    fn ts(&self, i: usize) -> i64 {
        self.ts[..self.len][i]
    }
    #[inline]
    fn value(&self, i: usize) -> u64 {
        self.values[..self.len][i]
    }
    #[inline]
    fn visit(&self, from: usize, to: usize, f: &mut impl FnMut(i64, u64)) {
        let (ts, values) = self.all_columns();
        for (&t, &v) in ts[from..to].iter().zip(&values[from..to]) {
            f(t, v);
        }
    }
    #[inline]
    fn columns(&self, from: usize, to: usize) -> Option<(&[i64], &[u64])> {
        let (ts, values) = self.all_columns();
        Some((&ts[from..to], &values[from..to]))
    }
}

/// The value at `ts` in a frozen block, if any: decodes the timestamps,
/// then only the value it needs where the codec allows.
///
/// # Panics
/// If the bytes do not decode (see [`Decoded::fill`]).
pub(crate) fn get(block: &[u8], ts: i64) -> Option<u64> {
    codec::find(block, ts).unwrap_or_else(|e| panic!("a frozen block does not decode: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_block_decodes_to_its_points() {
        let mut encoder = Encoder::default();
        let points = (0..200).map(|i| Point::new(1_000 + 10 * i, (i * i) as u64));
        let frozen = encoder.freeze_points(points.clone());
        assert_eq!(frozen_points(&frozen), 200);
        let mut decoded = Decoded::new();
        decoded.fill(&frozen);
        let got: Vec<Point> = (0..decoded.len())
            .map(|i| Point::new(decoded.ts(i), decoded.value(i)))
            .collect();
        assert_eq!(got, points.collect::<Vec<_>>());
        assert_eq!(get(&frozen, 1_010), Some(1));
        assert_eq!(get(&frozen, 1_011), None);
    }
}

//! The timestamp column: the first timestamp lives in the header; the rest
//! are deltas (wrapping `i64` subtraction, so any column round-trips, not
//! only ascending ones) stored frame-of-reference: the smallest delta once,
//! then every delta minus it at one fixed width. Regular scrapes have equal
//! deltas and pack at width 0 (no bytes at all); jittered ones pack at the
//! width of the jitter.
//!
//! Delta-of-delta would need twice the jitter's range for jittered
//! intervals and gains nothing on regular ones (width 0 either way), so it
//! is not used.

use super::bits;
use super::cursor::{self, Reader, Writer};
use super::{DecodeError, TsCodec};

/// How to write one timestamp column.
#[derive(Clone, Copy, Debug)]
pub(super) enum TsPlan {
    /// `n - 1` timestamps after the first, 8 bytes each.
    Raw,
    /// Width byte, zigzag varint of the smallest delta, packed deltas.
    DeltaFor { min: i64, width: u32 },
}

impl TsPlan {
    /// The smallest encoding of `ts` and its size in bytes.
    pub(super) fn choose(ts: &[i64]) -> (TsPlan, usize) {
        let n = ts.len();
        let raw = 8 * n.saturating_sub(1);
        if n < 2 {
            return (TsPlan::Raw, raw);
        }
        // Regular scrapes first: one branch-free pass that vectorizes.
        let d0 = ts[1].wrapping_sub(ts[0]);
        let mut differ = 0;
        for (a, b) in ts.iter().zip(&ts[1..]) {
            differ |= b.wrapping_sub(*a) ^ d0;
        }
        let (mut min, mut max) = (d0, d0);
        if differ != 0 {
            for pair in ts.windows(2) {
                let d = pair[1].wrapping_sub(pair[0]);
                min = min.min(d);
                max = max.max(d);
            }
        }
        let width = bits::width(max.wrapping_sub(min) as u64);
        let packed = 1 + cursor::varint_len(cursor::zigzag(min)) + bits::packed_len(n - 1, width);
        if packed < raw {
            (TsPlan::DeltaFor { min, width }, packed)
        } else {
            (TsPlan::Raw, raw)
        }
    }

    pub(super) fn codec(self) -> TsCodec {
        match self {
            TsPlan::Raw => TsCodec::Raw,
            TsPlan::DeltaFor { .. } => TsCodec::DeltaFor,
        }
    }

    /// Writes the section for `ts` (the first timestamp is in the header).
    pub(super) fn write(self, ts: &[i64], w: &mut Writer<'_>) {
        match self {
            TsPlan::Raw => {
                for t in ts.iter().skip(1) {
                    w.bytes(&t.to_le_bytes());
                }
            }
            TsPlan::DeltaFor { min, width } => {
                w.u8(width as u8);
                w.varint(cursor::zigzag(min));
                let deltas = ts
                    .windows(2)
                    .map(|p| p[1].wrapping_sub(p[0]).wrapping_sub(min) as u64);
                bits::pack(
                    deltas,
                    width,
                    w.take(bits::packed_len(ts.len().saturating_sub(1), width)),
                );
            }
        }
    }
}

/// A parsed timestamp section.
#[derive(Clone, Copy, Debug)]
pub(super) enum TsSection<'a> {
    Raw(&'a [u8]),
    DeltaFor {
        min: i64,
        width: u32,
        packed: &'a [u8],
    },
}

impl<'a> TsSection<'a> {
    /// Reads the section of a column of `n` timestamps, checking its size.
    pub(super) fn read(r: &mut Reader<'a>, codec: TsCodec, n: usize) -> Result<Self, DecodeError> {
        let deltas = n.saturating_sub(1);
        Ok(match codec {
            TsCodec::Raw => TsSection::Raw(r.take(8 * deltas)?),
            TsCodec::DeltaFor => {
                let width = r.width()?;
                let min = cursor::unzigzag(r.varint()?);
                let packed = r.take(bits::packed_len(deltas, width))?;
                TsSection::DeltaFor { min, width, packed }
            }
        })
    }

    /// Decodes the column into `out` (exactly the block's points), the first
    /// being `first`.
    pub(super) fn decode(self, first: i64, out: &mut [i64]) {
        let Some((head, rest)) = out.split_first_mut() else {
            return;
        };
        *head = first;
        match self {
            TsSection::Raw(bytes) => {
                let (words, _) = bytes.as_chunks::<8>();
                for (t, b) in rest.iter_mut().zip(words) {
                    *t = i64::from_le_bytes(*b);
                }
            }
            TsSection::DeltaFor { min, width: 0, .. } => {
                // Regular: an induction the compiler vectorizes.
                let mut acc = first;
                for t in rest.iter_mut() {
                    acc = acc.wrapping_add(min);
                    *t = acc;
                }
            }
            TsSection::DeltaFor { min, width, packed } => {
                bits::unpack(packed, width, 0, rest);
                bits::prefix_sum(first, min, rest);
            }
        }
    }

    /// The position of the first point at `target` in a column of `n`
    /// timestamps starting at `first`, decoding at most a stack chunk at a time.
    pub(super) fn position(self, first: i64, n: usize, target: i64) -> Option<usize> {
        if n == 0 {
            return None;
        }
        if first == target {
            return Some(0);
        }
        if let TsSection::DeltaFor { min, width: 0, .. } = self {
            if let Some(found) = regular_position(first, min, n, target) {
                return found;
            }
        }
        const CHUNK: usize = 128;
        let mut buf = [0i64; CHUNK];
        let mut prev = first;
        let mut start = 1;
        while start < n {
            let len = (n - start).min(CHUNK);
            let chunk = &mut buf[..len];
            match self {
                TsSection::Raw(bytes) => {
                    let (words, _) = bytes.as_chunks::<8>();
                    let words = words.get(start - 1..).unwrap_or(&[]);
                    for (t, b) in chunk.iter_mut().zip(words) {
                        *t = i64::from_le_bytes(*b);
                    }
                }
                TsSection::DeltaFor { min, width, packed } => {
                    bits::unpack(packed, width, start - 1, chunk);
                    for t in chunk.iter_mut() {
                        prev = prev.wrapping_add(min.wrapping_add(*t));
                        *t = prev;
                    }
                }
            }
            if let Some(i) = chunk.iter().position(|&t| t == target) {
                return Some(start + i);
            }
            start += len;
        }
        None
    }
}

/// [`TsSection::position`] in a regular column (`first + i * step` for
/// `i < n`), computed: `None` when the column wraps around `i64` (then
/// the caller searches it), else the answer.
fn regular_position(first: i64, step: i64, n: usize, target: i64) -> Option<Option<usize>> {
    let last = i128::from(first) + i128::from(step) * (n as i128 - 1);
    if !(i128::from(i64::MIN)..=i128::from(i64::MAX)).contains(&last) {
        return None;
    }
    if step == 0 {
        return Some((target == first).then_some(0));
    }
    // In 64 bits when the distance fits (a division by a library call
    // in 128, on every lookup of a frozen block), else in 128.
    let in_64 = target
        .checked_sub(first)
        .and_then(|d| Some((d.checked_div(step)?, d.checked_rem(step)? == 0)));
    let (i, exact) = match in_64 {
        Some((i, exact)) => (i128::from(i), exact),
        None => {
            let d = i128::from(target) - i128::from(first);
            (d / i128::from(step), d % i128::from(step) == 0)
        }
    };
    Some((exact && (0..n as i128).contains(&i)).then_some(i as usize))
}

#[cfg(test)]
mod tests {
    use super::regular_position;
    use proptest::prelude::*;

    /// `regular_position` as it was written first: all in 128 bits.
    fn in_128_bits(first: i64, step: i64, n: usize, target: i64) -> Option<Option<usize>> {
        let last = i128::from(first) + i128::from(step) * (n as i128 - 1);
        if !(i128::from(i64::MIN)..=i128::from(i64::MAX)).contains(&last) {
            return None;
        }
        if step == 0 {
            return Some((target == first).then_some(0));
        }
        let d = i128::from(target) - i128::from(first);
        let (i, r) = (d / i128::from(step), d % i128::from(step));
        Some((r == 0 && (0..n as i128).contains(&i)).then_some(i as usize))
    }

    #[test]
    fn the_64_bit_path_falls_back_where_it_would_overflow() {
        // `target - first` is i64::MIN and the step -1: the quotient
        // 2^63 does not fit an i64.
        assert_eq!(regular_position(0, -1, 5, i64::MIN), Some(None));
        assert_eq!(regular_position(0, -1, 5, -4), Some(Some(4)));
        // `target - first` itself overflows.
        assert_eq!(regular_position(i64::MAX - 2, 1, 3, i64::MIN), Some(None));
        assert_eq!(
            regular_position(i64::MAX - 2, 1, 3, i64::MAX),
            Some(Some(2))
        );
        assert_eq!(regular_position(i64::MIN, 1, 3, i64::MAX), Some(None));
        assert_eq!(regular_position(100, -10, 5, 70), Some(Some(3)));
        assert_eq!(regular_position(100, 10, 5, 135), Some(None));
    }

    proptest! {
        #[test]
        fn regular_positions_agree_with_128_bits(
            first in any::<i64>(),
            step in prop_oneof![any::<i64>(), -50i64..50, Just(-1i64), Just(i64::MIN)],
            n in 1usize..300,
            at in 0usize..300,
            off in -2i64..=2,
            any_target in any::<i64>(),
        ) {
            let member = first.wrapping_add(step.wrapping_mul((at % n) as i64)).wrapping_add(off);
            for target in [member, any_target, i64::MIN, i64::MAX] {
                prop_assert_eq!(
                    regular_position(first, step, n, target),
                    in_128_bits(first, step, n, target),
                    "target {}", target
                );
            }
        }
    }
}

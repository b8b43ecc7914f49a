//! The value column: every candidate codec is sized (each in one pass over
//! the column, no output written) and the smallest is written; on a tie the
//! one that decodes fastest wins (the order of [`ValueCodec`]'s variants).
//!
//! Integers (counters, ids, enum codes) pack by frame of reference, `v - min`
//! at the width of `max - min`, or by the same over wrapping deltas (counters
//! that grow by small steps); decimal floats go through [`decimal`], other
//! floats through [`xor`], and what nothing shrinks is stored raw.

use super::bits;
use super::cursor::{self, Reader, Writer};
use super::decimal::{self, IntPlan};
use super::xor;
use super::{DecodeError, ValueCodec};

/// Points whose decimal integers [`ValuePlan::choose`] keeps (on the
/// caller's stack) for [`ValuePlan::write`]; longer blocks compute them
/// again.
pub(super) const STACK_POINTS: usize = 256;

/// Room for the decimal integers of a block of up to [`STACK_POINTS`].
pub(super) type Scratch = [i64; STACK_POINTS];

/// How to write one value column.
#[derive(Clone, Copy, Debug)]
pub(super) enum ValuePlan {
    Raw,
    For {
        min: u64,
        width: u32,
    },
    DeltaFor {
        first: u64,
        min: i64,
        width: u32,
    },
    /// `cached`: the integers are in the scratch `choose` was given.
    Decimal {
        e: u8,
        ints: IntPlan,
        cached: bool,
    },
    Xor,
}

/// The range of a column, and of its wrapping deltas read as `i64`.
struct Ranges {
    min: i64,
    max: i64,
    dmin: i64,
    dmax: i64,
}

impl Ranges {
    fn new() -> Self {
        Ranges {
            min: i64::MAX,
            max: i64::MIN,
            dmin: i64::MAX,
            dmax: i64::MIN,
        }
    }

    /// Widths of FOR (`v - min`) and of delta FOR.
    fn widths(&self) -> (u32, u32) {
        (
            bits::width(self.max.wrapping_sub(self.min) as u64),
            bits::width(self.dmax.wrapping_sub(self.dmin) as u64),
        )
    }
}

/// The unsigned range of the bit patterns `values` (not empty) and the
/// signed range of their wrapping deltas.
fn bit_ranges(values: &[u64]) -> (u64, u64, i64, i64) {
    let first = values[0];
    let (mut umin, mut umax) = (first, first);
    let (mut dmin, mut dmax) = (i64::MAX, i64::MIN);
    for p in values.windows(2) {
        umin = umin.min(p[1]);
        umax = umax.max(p[1]);
        let d = p[1].wrapping_sub(p[0]) as i64;
        dmin = dmin.min(d);
        dmax = dmax.max(d);
    }
    (umin, umax, dmin, dmax)
}

/// Values whose ranges bound the integer codecs from below before the
/// whole column is read for them.
const PROBE: usize = 16;

impl ValuePlan {
    /// The smallest encoding of `values` and its size in bytes; a decimal
    /// plan may leave its integers in `scratch` for [`ValuePlan::write`].
    ///
    /// Every candidate is sized exactly, or skipped when a cheap lower bound
    /// of its size shows that it cannot win: the choice is the same as
    /// sizing them all.
    pub(super) fn choose(values: &[u64], scratch: &mut Scratch) -> (ValuePlan, usize) {
        let n = values.len();
        let mut best = (ValuePlan::Raw, 8 * n);
        let Some(&first) = values.first() else {
            return best;
        };
        let consider = |best: &mut (ValuePlan, usize), plan: ValuePlan, size: usize| {
            if size < best.1 {
                *best = (plan, size);
            }
        };
        let decimal = decimal_plan(values, scratch);

        // Unsigned FOR and signed delta FOR over the bit patterns: they come
        // before decimal in the tie order, so they can win at its size too.
        // Their width over a prefix bounds their size from below.
        let limit = decimal.map_or(best.1, |(.., size, _)| size.min(best.1));
        let (pmin, pmax, pdmin, pdmax) = bit_ranges(&values[..n.min(PROBE)]);
        let for_bound = 2 + bits::packed_len(n, bits::width(pmax - pmin));
        let delta_bound = if n < 2 {
            usize::MAX
        } else {
            3 + bits::packed_len(n - 1, bits::width(pdmax.wrapping_sub(pdmin) as u64))
        };
        if for_bound <= limit || delta_bound <= limit {
            let (umin, umax, dmin, dmax) = if n <= PROBE {
                (pmin, pmax, pdmin, pdmax)
            } else {
                bit_ranges(values)
            };
            let width = bits::width(umax - umin);
            consider(
                &mut best,
                ValuePlan::For { min: umin, width },
                1 + cursor::varint_len(umin) + bits::packed_len(n, width),
            );
            let dwidth = bits::width(dmax.wrapping_sub(dmin) as u64);
            consider(
                &mut best,
                ValuePlan::DeltaFor {
                    first,
                    min: dmin,
                    width: dwidth,
                },
                1 + cursor::varint_len(first)
                    + cursor::varint_len(cursor::zigzag(dmin))
                    + bits::packed_len(n - 1, dwidth),
            );
        }

        if let Some((e, ints, size, cached)) = decimal {
            consider(&mut best, ValuePlan::Decimal { e, ints, cached }, size);
        }

        // XOR costs at least 64 bits, then 2 a value: its count stops as
        // soon as that bound on the rest shows it cannot win.
        if let Some(bits) = xor::size_below(values, 8 * best.1) {
            consider(&mut best, ValuePlan::Xor, bits.div_ceil(8));
        }
        best
    }

    pub(super) fn codec(self) -> ValueCodec {
        match self {
            ValuePlan::Raw => ValueCodec::Raw,
            ValuePlan::For { .. } => ValueCodec::For,
            ValuePlan::DeltaFor { .. } => ValueCodec::DeltaFor,
            ValuePlan::Decimal {
                ints: IntPlan::For { .. },
                ..
            } => ValueCodec::Decimal,
            ValuePlan::Decimal {
                ints: IntPlan::DeltaFor { .. },
                ..
            } => ValueCodec::DecimalDelta,
            ValuePlan::Xor => ValueCodec::Xor,
        }
    }

    /// Writes the section for `values` (`scratch` as `choose` left it).
    pub(super) fn write(self, values: &[u64], scratch: &Scratch, w: &mut Writer<'_>) {
        let n = values.len();
        match self {
            ValuePlan::Raw => {
                for v in values {
                    w.bytes(&v.to_le_bytes());
                }
            }
            ValuePlan::For { min, width } => {
                w.u8(width as u8);
                w.varint(min);
                let packed = values.iter().map(|v| v.wrapping_sub(min));
                bits::pack(packed, width, w.take(bits::packed_len(n, width)));
            }
            ValuePlan::DeltaFor { first, min, width } => {
                w.u8(width as u8);
                w.varint(first);
                w.varint(cursor::zigzag(min));
                let deltas = values
                    .windows(2)
                    .map(|p| p[1].wrapping_sub(p[0]).wrapping_sub(min as u64));
                let len = bits::packed_len(n.saturating_sub(1), width);
                bits::pack(deltas, width, w.take(len));
            }
            ValuePlan::Decimal { e, ints, cached } => {
                let cached = cached.then(|| &scratch[..n]);
                decimal::write(values, e, ints, cached, w)
            }
            ValuePlan::Xor => {
                let mut bw = xor::BitWriter::new(w);
                xor::encode(values, &mut bw);
                bw.finish();
            }
        }
    }
}

/// The decimal plan for `values` (not empty) and its size, if they are all
/// decimals, and whether their integers were left in `scratch`.
fn decimal_plan(values: &[u64], scratch: &mut Scratch) -> Option<(u8, IntPlan, usize, bool)> {
    let count = values.len();
    let mut r = Ranges::new();
    let (e, first, cached) = match scratch.get_mut(..count) {
        Some(ints) => {
            let e = decimal::exponent_into(values, ints)?;
            let first = ints[0];
            (r.min, r.max) = (first, first);
            for &n in ints.iter() {
                r.min = r.min.min(n);
                r.max = r.max.max(n);
            }
            for p in ints.windows(2) {
                let d = p[1].wrapping_sub(p[0]);
                r.dmin = r.dmin.min(d);
                r.dmax = r.dmax.max(d);
            }
            (e, first, true)
        }
        None => {
            let e = decimal::exponent(values)?;
            let mut ints = decimal::integers(values, e);
            let first = ints.next()??;
            let mut prev = first;
            (r.min, r.max) = (first, first);
            for n in ints {
                let n = n?;
                r.min = r.min.min(n);
                r.max = r.max.max(n);
                let d = n.wrapping_sub(prev);
                prev = n;
                r.dmin = r.dmin.min(d);
                r.dmax = r.dmax.max(d);
            }
            (e, first, false)
        }
    };
    let (width, dwidth) = r.widths();
    let for_size = 2 + cursor::varint_len(cursor::zigzag(r.min)) + bits::packed_len(count, width);
    if count < 2 {
        return Some((e, IntPlan::For { min: r.min, width }, for_size, cached));
    }
    let delta_size = 2
        + cursor::varint_len(cursor::zigzag(first))
        + cursor::varint_len(cursor::zigzag(r.dmin))
        + bits::packed_len(count - 1, dwidth);
    Some(if delta_size < for_size {
        let plan = IntPlan::DeltaFor {
            first,
            min: r.dmin,
            width: dwidth,
        };
        (e, plan, delta_size, cached)
    } else {
        (e, IntPlan::For { min: r.min, width }, for_size, cached)
    })
}

/// Decodes the value section (all of `r`) into `out`, one value a point.
#[cfg(test)]
pub(super) fn decode(
    r: &mut Reader<'_>,
    codec: ValueCodec,
    out: &mut [u64],
) -> Result<(), DecodeError> {
    let n = out.len();
    decode_range(r, codec, n, 0..n, out)?;
    if !r.is_empty() {
        return Err(DecodeError::Corrupt {
            what: "bytes after the value column",
        });
    }
    Ok(())
}

/// Decodes the values of points `range` of a value section of `n` points
/// into `out[range]` (`range.end <= n`; `out` at least that long, or this
/// panics: `ValueColumn::decode_range` checks it first), doing
/// only the work those points need: FOR codecs unpack just them, delta
/// codecs sum the deltas before them without converting them (the
/// decimal's division is most of its cost), XOR decodes up to the end of
/// the range. `out` before the range may be overwritten. `r` is left after
/// the section's packed bits (for XOR: after its bytes, read through only
/// when the range ends at `n`, which then checks that the stream ends
/// there).
pub(super) fn decode_range(
    r: &mut Reader<'_>,
    codec: ValueCodec,
    n: usize,
    range: core::ops::Range<usize>,
    out: &mut [u64],
) -> Result<(), DecodeError> {
    let to = range.end.min(n);
    let from = range.start.min(to);
    let out = &mut out[..to];
    match codec {
        ValueCodec::Raw => {
            let (words, _) = r.take(8 * n)?.as_chunks::<8>();
            for (v, b) in out[from..].iter_mut().zip(&words[from..]) {
                *v = u64::from_le_bytes(*b);
            }
        }
        ValueCodec::For => {
            let width = r.width()?;
            let min = r.varint()?;
            let within = &mut out[from..];
            bits::unpack(r.take(bits::packed_len(n, width))?, width, from, within);
            for v in within.iter_mut() {
                *v = v.wrapping_add(min);
            }
        }
        ValueCodec::DeltaFor => {
            let width = r.width()?;
            let first = r.varint()?;
            let min = cursor::unzigzag(r.varint()?) as u64;
            let packed = r.take(bits::packed_len(n.saturating_sub(1), width))?;
            if let Some((head, rest)) = out.split_first_mut() {
                *head = first;
                bits::unpack(packed, width, 0, rest);
                bits::prefix_sum(first, min, rest);
            }
        }
        ValueCodec::Decimal | ValueCodec::DecimalDelta => {
            decimal::Section::read(r, codec == ValueCodec::DecimalDelta, n)?.decode(from, out)
        }
        ValueCodec::Xor => {
            let mut d = xor::Decoder::new(r.rest());
            for v in out.iter_mut() {
                *v = d.next_value()?;
            }
            if to == n && !d.at_end() {
                return Err(xor::TRAILING);
            }
        }
    }
    Ok(())
}

/// The value of point `i < n` of a value section of `n` points, decoding
/// only what the codec needs to reach it: one packed value for FOR codecs,
/// the deltas up to `i` (a stack chunk at a time) for delta codecs, the
/// stream up to `i` for XOR.
pub(super) fn value_at(
    r: &mut Reader<'_>,
    codec: ValueCodec,
    n: usize,
    i: usize,
) -> Result<u64, DecodeError> {
    Ok(match codec {
        ValueCodec::Raw => {
            let (words, _) = r.take(8 * n)?.as_chunks::<8>();
            u64::from_le_bytes(words.get(i).copied().unwrap_or_default())
        }
        ValueCodec::For => {
            let width = r.width()?;
            let min = r.varint()?;
            let packed = r.take(bits::packed_len(n, width))?;
            let mut v = [0u64];
            bits::unpack(packed, width, i, &mut v);
            v[0].wrapping_add(min)
        }
        ValueCodec::DeltaFor => {
            let width = r.width()?;
            let first = r.varint()?;
            let min = cursor::unzigzag(r.varint()?) as u64;
            let packed = r.take(bits::packed_len(n.saturating_sub(1), width))?;
            first.wrapping_add(sum_deltas(packed, width, i, min))
        }
        ValueCodec::Decimal | ValueCodec::DecimalDelta => {
            let s = decimal::Section::read(r, codec == ValueCodec::DecimalDelta, n)?;
            let int = match s.first {
                Some(first) => {
                    let sum = sum_deltas(s.packed, s.width, i, s.min as u64);
                    first.wrapping_add(sum as i64)
                }
                None => {
                    let mut v = [0u64];
                    bits::unpack(s.packed, s.width, i, &mut v);
                    s.min.wrapping_add(v[0] as i64)
                }
            };
            decimal::value(int, s.pow)
        }
        ValueCodec::Xor => {
            let mut d = xor::Decoder::new(r.rest());
            let mut v = 0;
            for _ in 0..=i {
                v = d.next_value()?;
            }
            v
        }
    })
}

/// The wrapping sum of the first `count` deltas (each `min` + packed).
fn sum_deltas(packed: &[u8], width: u32, count: usize, min: u64) -> u64 {
    const CHUNK: usize = 128;
    let mut buf = [0u64; CHUNK];
    let (mut acc, mut start) = (0u64, 0);
    while start < count {
        let chunk = &mut buf[..(count - start).min(CHUNK)];
        bits::unpack(packed, width, start, chunk);
        for u in chunk.iter() {
            acc = acc.wrapping_add(min.wrapping_add(*u));
        }
        start += chunk.len();
    }
    acc
}

#[cfg(test)]
mod tests;

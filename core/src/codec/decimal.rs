//! Decimal floats, after ALP (Afroozeh and Boncz, "ALP: Adaptive Lossless
//! floating-Point Compression", SIGMOD 2024): a gauge written with two
//! decimals is, as `f64`, the double nearest `n / 100` for an integer `n`.
//! Such a block is stored as one exponent `e` and the integers `n`, packed
//! as integers are.
//!
//! The decode formula is `n as f64 / 10^e`, a correctly rounded division
//! (ALP multiplies by an inexact `10^-e` and patches the misses as
//! exceptions; the division never misses a value that came from a decimal
//! with at most 15 significant digits, so this codec needs no exceptions).
//! The division also makes exponents monotone: a value exact at `e` is exact
//! at `e + 1` (`10n / 10^(e+1)` is the same quotient), so the encoder takes
//! the largest exponent any single value needs. Every value is verified with
//! the decode formula itself, compared as bits: `-0.0`, NaN, infinities,
//! subnormals and anything else that does not come back bit-exact make the
//! block use another codec.
//!
//! Integers are limited to `|n| <= 2^51` so the conversion to `f64` is one
//! integer add and one subtraction (the 1.5 * 2^52 trick), which vectorizes.

use super::bits;
use super::cursor::{self, Reader, Writer};
use super::DecodeError;

/// The largest exponent tried (`10^18` is exact in `f64`).
pub(super) const MAX_EXPONENT: u8 = 18;

const POW10: [f64; MAX_EXPONENT as usize + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18,
];

/// `1.5 * 2^52`: adding it to an `f64` of magnitude below `2^51` rounds it to
/// an integer held in the low mantissa bits.
const MAGIC: f64 = 6_755_399_441_055_744.0;
const MAGIC_BITS: u64 = 0x4338_0000_0000_0000;
/// The largest integer magnitude stored.
const LIMIT: f64 = 2_251_799_813_685_248.0; // 2^51

/// The decode formula: the bits of `n / 10^e` (for `|n| <= 2^51`).
#[inline(always)]
pub(super) fn value(n: i64, pow: f64) -> u64 {
    ((f64::from_bits(MAGIC_BITS.wrapping_add(n as u64)) - MAGIC) / pow).to_bits()
}

/// `10^e`, or an error for an exponent no encoder writes.
pub(super) fn pow10(e: u8) -> Result<f64, DecodeError> {
    POW10
        .get(usize::from(e))
        .copied()
        .ok_or(DecodeError::Corrupt {
            what: "decimal exponent above 18",
        })
}

/// The integer `n` with `value(n, 10^e) == bits`, if there is one.
#[inline]
pub(super) fn integer(bits: u64, e: u8) -> Option<i64> {
    let pow = POW10[usize::from(e)];
    let scaled = f64::from_bits(bits) * pow;
    if !(-LIMIT..=LIMIT).contains(&scaled) {
        return None; // also NaN and infinities
    }
    let n = ((scaled + MAGIC) - MAGIC) as i64;
    (value(n, pow) == bits).then_some(n)
}

/// False for values that no exponent holds, told from their bits alone so
/// that the search does not try all 19: magnitudes above `2^51` (the
/// integer limit), NaN and infinities, and nonzero magnitudes below
/// `10^-19`, under any `n / 10^e` (subnormals among them, whose multiply
/// takes a slow microcode path on some CPUs).
#[inline]
fn plausible(v: u64) -> bool {
    const TINY: u64 = 0x3BFD_83C9_4FB6_D2AC; // 1e-19
    let magnitude = v & !(1 << 63);
    magnitude == 0 || (TINY..=LIMIT.to_bits()).contains(&magnitude)
}

/// The exponent for a block of `values`, if every value is a decimal.
pub(super) fn exponent(values: &[u64]) -> Option<u8> {
    exponent_from(values, 0)
}

/// [`exponent`] continued from exponent `e`: the smallest exponent at or
/// above `e` at which each value, taken in turn, is exact, if any.
pub(super) fn exponent_from(values: &[u64], mut e: u8) -> Option<u8> {
    for &v in values {
        if !plausible(v) {
            return None;
        }
        while integer(v, e).is_none() {
            e += 1;
            if e > MAX_EXPONENT {
                return None;
            }
        }
    }
    Some(e)
}

/// The integers of a block at exponent `e`: `None` when one is not exact
/// there (the monotonicity argument failed to a rounding corner).
pub(super) fn integers(values: &[u64], e: u8) -> impl Iterator<Item = Option<i64>> + '_ {
    values.iter().map(move |&v| integer(v, e))
}

/// [`integer`] of every value at `e` into `out` (as long as `values`), in
/// one pass with no branch on the data (it vectorizes: one division a value
/// and no more); whether every value was exact. `out` holds garbage where
/// one was not.
pub(super) fn integers_into(values: &[u64], e: u8, out: &mut [i64]) -> bool {
    let pow = POW10[usize::from(e)];
    let mut bad = 0u64;
    for (o, &v) in out.iter_mut().zip(values) {
        let scaled = f64::from_bits(v) * pow;
        // `rounded` is `MAGIC + n` for `|scaled| <= 2^51`, `n` in its low
        // mantissa bits: the same `n` and quotient as `integer`'s.
        let rounded = scaled + MAGIC;
        *o = rounded.to_bits().wrapping_sub(MAGIC_BITS) as i64;
        let back = ((rounded - MAGIC) / pow).to_bits();
        let in_range = scaled.abs() <= LIMIT; // false for NaN
        bad |= (back ^ v) | u64::from(!in_range);
    }
    bad == 0
}

/// Values whose exponent [`exponent_into`] takes from the scalar search
/// before checking the whole block at once.
const PROBE: usize = 8;

/// The exponent of `values` and their integers at it in `out` (as long as
/// `values`), if every value is a decimal: the same exponent and integers
/// as [`exponent`] then [`integers`], in one vectorized pass over the block
/// when the first [`PROBE`] values already need the block's exponent.
pub(super) fn exponent_into(values: &[u64], out: &mut [i64]) -> Option<u8> {
    let (probe, rest) = values.split_at(values.len().min(PROBE));
    let e = exponent_from(probe, 0)?;
    if integers_into(values, e, out) {
        // Every later value is exact at `e`: the search stays there.
        return Some(e);
    }
    let last = exponent_from(rest, e)?;
    (last != e && integers_into(values, last, out)).then_some(last)
}

/// How a decimal block stores its integers.
#[derive(Clone, Copy, Debug)]
pub(super) enum IntPlan {
    /// Frame of reference: `n - min` at `width` bits.
    For { min: i64, width: u32 },
    /// The first integer, then deltas minus the smallest delta at `width` bits.
    DeltaFor { first: i64, min: i64, width: u32 },
}

/// Writes `e`, the plan's parameters and the packed integers of `values`:
/// `ints`, when given, are those integers (as [`exponent_into`] left them),
/// else they are computed again.
pub(super) fn write(
    values: &[u64],
    e: u8,
    plan: IntPlan,
    ints: Option<&[i64]>,
    w: &mut Writer<'_>,
) {
    match ints {
        Some(ints) => write_ints(ints.iter().copied(), e, plan, w),
        None => write_ints(
            values
                .iter()
                .map(move |&v| integer(v, e).unwrap_or_default()),
            e,
            plan,
            w,
        ),
    }
}

fn write_ints(ints: impl ExactSizeIterator<Item = i64>, e: u8, plan: IntPlan, w: &mut Writer<'_>) {
    let count = ints.len();
    w.u8(e);
    match plan {
        IntPlan::For { min, width } => {
            w.u8(width as u8);
            w.varint(cursor::zigzag(min));
            let packed = ints.map(|n| n.wrapping_sub(min) as u64);
            bits::pack(packed, width, w.take(bits::packed_len(count, width)));
        }
        IntPlan::DeltaFor { first, min, width } => {
            w.u8(width as u8);
            w.varint(cursor::zigzag(first));
            w.varint(cursor::zigzag(min));
            let mut prev = first;
            let deltas = ints.skip(1).map(|n| {
                let d = n.wrapping_sub(prev).wrapping_sub(min) as u64;
                prev = n;
                d
            });
            let len = bits::packed_len(count.saturating_sub(1), width);
            bits::pack(deltas, width, w.take(len));
        }
    }
}

/// Values a delta section sums before dividing them.
const RUN: usize = 8;

/// Turns packed deltas (each `min` below the real one) into values after
/// `acc` (the bits of `MAGIC + n` for the integer `n` before them), and
/// `acc` into that of the last. `min` is added in its own pass, so the
/// running sum is a chain of one add a value.
#[inline(always)]
fn sum_and_divide(run: &mut [u64], acc: &mut u64, min: u64, pow: f64) {
    for d in run.iter_mut() {
        *d = d.wrapping_add(min);
    }
    for d in run.iter_mut() {
        *acc = acc.wrapping_add(*d);
        *d = *acc;
    }
    for d in run.iter_mut() {
        *d = ((f64::from_bits(*d) - MAGIC) / pow).to_bits();
    }
}

/// A parsed decimal section.
pub(super) struct Section<'a> {
    pub(super) pow: f64,
    pub(super) width: u32,
    /// The first integer, for the delta layout.
    pub(super) first: Option<i64>,
    /// The reference: the smallest integer (FOR) or delta (delta FOR).
    pub(super) min: i64,
    pub(super) packed: &'a [u8],
}

impl<'a> Section<'a> {
    /// Reads the section of `n` values (`delta` for [`IntPlan::DeltaFor`]).
    pub(super) fn read(r: &mut Reader<'a>, delta: bool, n: usize) -> Result<Self, DecodeError> {
        let pow = pow10(r.u8()?)?;
        let width = r.width()?;
        let first = if delta {
            Some(cursor::unzigzag(r.varint()?))
        } else {
            None
        };
        let min = cursor::unzigzag(r.varint()?);
        let count = if delta { n.saturating_sub(1) } else { n };
        let packed = r.take(bits::packed_len(count, width))?;
        Ok(Section {
            pow,
            width,
            first,
            min,
            packed,
        })
    }

    /// Decodes the values of points `from..out.len()` into those entries of
    /// `out` (`out` no longer than the section). The delta layout sums the
    /// deltas of the points before `from` without dividing them, and may
    /// overwrite their entries.
    pub(super) fn decode(&self, from: usize, out: &mut [u64]) {
        let (pow, min) = (self.pow, self.min);
        match self.first {
            Some(first) => {
                let Some((head, rest)) = out.split_first_mut() else {
                    return;
                };
                *head = value(first, pow);
                bits::unpack(self.packed, self.width, 0, rest);
                // The running sum is kept as the bits of `MAGIC + n` (what
                // `value` adds). Before the range it is only summed; within
                // it, it runs a chunk ahead of the divisions: the scalar
                // chain of one chunk overlaps the vector divisions of the
                // one before.
                let (before, within) = rest.split_at_mut(from.saturating_sub(1).min(rest.len()));
                let mut acc = MAGIC_BITS.wrapping_add(first as u64);
                let skipped = before.len() as u64;
                acc = acc
                    .wrapping_add(before.iter().fold(0u64, |s, d| s.wrapping_add(*d)))
                    .wrapping_add(skipped.wrapping_mul(min as u64));
                let (runs, tail) = within.as_chunks_mut::<RUN>();
                for run in runs {
                    sum_and_divide(run, &mut acc, min as u64, pow);
                }
                sum_and_divide(tail, &mut acc, min as u64, pow);
            }
            None => {
                let within = out.get_mut(from..).unwrap_or(&mut []);
                bits::unpack(self.packed, self.width, from, within);
                for v in within.iter_mut() {
                    *v = value(min.wrapping_add(*v as i64), pow);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_decimal_gauges_need_exponent_two() {
        let v: [u64; 4] = [20.0f64, 20.01, 19.99, 0.29].map(f64::to_bits);
        assert_eq!(exponent(&v), Some(2));
        assert_eq!(integer(0.29f64.to_bits(), 2), Some(29));
        assert_eq!(integer((-19.99f64).to_bits(), 2), Some(-1999));
        assert_eq!(exponent(&[3.0f64.to_bits(), (-7.0f64).to_bits()]), Some(0));
    }

    #[test]
    fn values_that_do_not_round_trip_exactly_are_not_decimal() {
        for x in [
            -0.0f64,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE / 4.0, // subnormal
            core::f64::consts::PI,
            1e300,
            (1u64 << 53) as f64,
        ] {
            assert_eq!(exponent(&[1.5f64.to_bits(), x.to_bits()]), None, "{x}");
        }
        // A NaN with a payload is not any decimal either.
        assert_eq!(exponent(&[0x7ff8_0000_0000_0001]), None);
    }

    #[test]
    fn values_told_implausible_are_exact_at_no_exponent() {
        assert_eq!(1e-19f64.to_bits(), 0x3BFD_83C9_4FB6_D2AC);
        let edges = [
            0.0f64,
            1e-19,
            1e-18,
            LIMIT,
            f64::from_bits(LIMIT.to_bits() + 1),
            f64::from_bits(0x3BFD_83C9_4FB6_D2AB),
            f64::MIN_POSITIVE,
            5e-324,
            1e-300,
            1e300,
            f64::INFINITY,
            f64::NAN,
        ];
        for x in edges.into_iter().flat_map(|x| [x, -x]) {
            if !plausible(x.to_bits()) {
                assert!(
                    (0..=MAX_EXPONENT).all(|e| integer(x.to_bits(), e).is_none()),
                    "{x}"
                );
            }
        }
        assert!(plausible(1e-18f64.to_bits()) && plausible(LIMIT.to_bits()));
        assert!(!plausible(5e-324f64.to_bits()) && !plausible((-1e300f64).to_bits()));
    }

    #[test]
    fn an_exponent_found_for_each_value_holds_for_all() {
        let v: [u64; 3] = [0.5f64, 0.25, 0.125].map(f64::to_bits);
        let e = exponent(&v).unwrap();
        assert_eq!(e, 3);
        assert!(integers(&v, e).all(|n| n.is_some()));
    }

    #[test]
    fn the_decode_formula_is_exact_for_small_integers_of_either_sign() {
        for n in [-(1i64 << 51), -1, 0, 1, 12_345, 1 << 51] {
            assert_eq!(f64::from_bits(value(n, 1.0)), n as f64);
        }
        assert_eq!(f64::from_bits(value(2001, 100.0)), 20.01);
    }
}

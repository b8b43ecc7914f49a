//! Fixed-width bit packing (values LSB first in a little-endian byte
//! stream) and the prefix sum that turns packed deltas back into values:
//! the frame-of-reference columns' (timestamps, integers, decimals). The
//! byte cursors and the varints around them are `cursor`'s.
//!
//! Unpacking is the decode hot loop: for widths up to 56 bits each value is
//! one unaligned 8-byte load, a shift and a mask, with no branch on the data,
//! so a block unpacks at a few cycles a value whatever its width.

/// Bits needed to hold every value in `0..=range` (0 when `range` is 0).
#[inline]
pub(super) fn width(range: u64) -> u32 {
    64 - range.leading_zeros()
}

/// Bytes that `count` values of `width` bits pack into.
#[inline]
pub(super) fn packed_len(count: usize, width: u32) -> usize {
    count.saturating_mul(width as usize).div_ceil(8)
}

/// The mask of the low `width` bits (`width` in `1..=64`).
#[inline]
fn mask(width: u32) -> u64 {
    u64::MAX >> (64 - width)
}

/// Packs `values` at `width` bits each into `dst`, which must be exactly
/// [`packed_len`] long. Bits above `width` are dropped.
///
/// Values go through a stack buffer, so that each run of it packs at a
/// width known at compile time (as [`unpack`] does).
pub(super) fn pack(values: impl Iterator<Item = u64>, width: u32, dst: &mut [u8]) {
    if width == 0 {
        return;
    }
    const RUN: usize = 64;
    let mut values = values;
    let mut buf = [0u64; RUN];
    let mut at = 0;
    loop {
        let mut k = 0;
        for (b, v) in buf.iter_mut().zip(&mut values) {
            *b = v;
            k += 1;
        }
        if k == 0 {
            break;
        }
        // A full run is a whole number of bytes: the next starts aligned.
        let len = packed_len(k, width);
        pack_slice(&buf[..k], width, &mut dst[at..at + len]);
        at += len;
        if k < RUN {
            break;
        }
    }
}

/// [`pack`] of a slice, whole groups of 8 at a compile-time width.
fn pack_slice(values: &[u64], width: u32, dst: &mut [u8]) {
    macro_rules! dispatch {
        ($($w:literal)*) => {
            match width {
                $($w => pack_groups::<$w>(values, dst),)*
                _ => 0,
            }
        };
    }
    let done = dispatch!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27
        28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56
        57 58 59 60 61 62 63 64);
    pack_any(&values[done..], width, &mut dst[packed_len(done, width)..]);
}

/// Packs the whole groups of 8 `W`-bit values (8 values are exactly `W`
/// bytes) of `values`; returns the values packed.
#[inline(always)]
fn pack_groups<const W: usize>(values: &[u64], dst: &mut [u8]) -> usize {
    let mask = u64::MAX >> (64 - W);
    let (groups, _) = values.as_chunks::<8>();
    let (outs, _) = dst.as_chunks_mut::<W>();
    for (g, out) in groups.iter().zip(outs.iter_mut()) {
        // Every shift and offset is a constant once the loop is unrolled.
        let (mut acc, mut bits, mut pos) = (0u64, 0usize, 0usize);
        for &v in g {
            let v = v & mask;
            acc |= v << bits;
            if bits + W >= 64 {
                out[pos..pos + 8].copy_from_slice(&acc.to_le_bytes());
                pos += 8;
                acc = if bits == 0 { 0 } else { v >> (64 - bits) };
                bits = bits + W - 64;
            } else {
                bits += W;
            }
        }
        let tail = bits / 8;
        out[pos..pos + tail].copy_from_slice(&acc.to_le_bytes()[..tail]);
    }
    groups.len().min(outs.len()) * 8
}

/// [`pack`] one value at a time, for any width in `1..=64`.
fn pack_any(values: &[u64], width: u32, dst: &mut [u8]) {
    let mask = mask(width);
    let (mut acc, mut bits, mut pos) = (0u128, 0u32, 0usize);
    for &v in values {
        acc |= u128::from(v & mask) << bits;
        bits += width;
        if bits >= 64 {
            dst[pos..pos + 8].copy_from_slice(&(acc as u64).to_le_bytes());
            pos += 8;
            acc >>= 64;
            bits -= 64;
        }
    }
    let tail = bits.div_ceil(8) as usize;
    dst[pos..pos + tail].copy_from_slice(&(acc as u64).to_le_bytes()[..tail]);
}

/// What unpacking writes: `u64` value columns and `i64` timestamp columns.
pub(super) trait Lane: Copy {
    /// The lane holding bit pattern `v`.
    fn from_bits(v: u64) -> Self;
}

impl Lane for u64 {
    #[inline(always)]
    fn from_bits(v: u64) -> Self {
        v
    }
}

impl Lane for i64 {
    #[inline(always)]
    fn from_bits(v: u64) -> Self {
        v as i64
    }
}

/// The 8 bytes of `src` from `at`, little-endian; bytes past the end read 0.
#[inline(always)]
fn load(src: &[u8], at: usize) -> u64 {
    match src.get(at..).and_then(|s| s.first_chunk::<8>()) {
        Some(b) => u64::from_le_bytes(*b),
        None => load_tail(src, at),
    }
}

#[cold]
fn load_tail(src: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(rest) = src.get(at..) {
        let n = rest.len().min(8);
        b[..n].copy_from_slice(&rest[..n]);
    }
    u64::from_le_bytes(b)
}

/// Unpacks values `start..start + out.len()` of a stream of `width`-bit
/// values (`width <= 64`). Callers check that `src` holds them; bits past its
/// end read as 0, so a short `src` gives wrong values, never a panic.
pub(super) fn unpack<T: Lane>(src: &[u8], width: u32, start: usize, out: &mut [T]) {
    if width == 0 {
        out.fill(T::from_bits(0));
        return;
    }
    // Whole groups of 8 values from a group boundary: a width known at
    // compile time, so every shift is a constant.
    let done = if start.is_multiple_of(8) {
        let from = (start / 8).saturating_mul(width as usize);
        let src = src.get(from..).unwrap_or(&[]);
        macro_rules! dispatch {
            ($($w:literal)*) => {
                match width {
                    $($w => groups::<T, $w>(src, out),)*
                    _ => 0,
                }
            };
        }
        dispatch!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29
            30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57
            58 59 60 61 62 63 64)
    } else {
        0
    };
    let rest = out.get_mut(done..).unwrap_or(&mut []);
    unpack_any(src, width, start.wrapping_add(done), rest);
}

/// Unpacks whole groups of 8 `W`-bit values (8 values are exactly `W`
/// bytes) from the start of `src` into `out` while each group's loads stay
/// inside `src`; returns the values written.
#[inline(always)]
fn groups<T: Lane, const W: usize>(src: &[u8], out: &mut [T]) -> usize {
    let mask = u64::MAX >> (64 - W);
    // The last value of a group starts in the group's last byte at most.
    let need = if W <= 56 { W + 7 } else { W + 15 };
    let (chunks, _) = out.as_chunks_mut::<8>();
    let mut done = 0;
    for (g, o) in chunks.iter_mut().enumerate() {
        let base = g * W;
        let Some(win) = src.get(base..base + need) else {
            break;
        };
        for (j, o) in o.iter_mut().enumerate() {
            let (at, shift) = (j * W / 8, j * W % 8);
            let lo = u64::from_le_bytes(core::array::from_fn(|k| win[at + k]));
            let v = if W <= 56 {
                lo >> shift
            } else {
                let hi = u64::from_le_bytes(core::array::from_fn(|k| win[at + 8 + k]));
                ((u128::from(hi) << 64 | u128::from(lo)) >> shift) as u64
            };
            *o = T::from_bits(v & mask);
        }
        done += 8;
    }
    done
}

/// [`unpack`] one value at a time, for any start and width in `1..=64`.
/// The values near the end of `src`, whose 8- or 16-byte loads would run
/// past it, read from a zero-padded copy of its last bytes (a load past the
/// end of `src` takes a slow path, which every block's last values would
/// otherwise take).
fn unpack_any<T: Lane>(src: &[u8], width: u32, start: usize, out: &mut [T]) {
    const MARGIN: usize = 16;
    let w = width.clamp(1, 64) as usize;
    let bit = start.wrapping_mul(w);
    // Values whose first byte lies at least `MARGIN` bytes before the end.
    let inside = match src.len().checked_sub(MARGIN) {
        Some(last) if bit >> 3 <= last => ((last * 8 + 7 - bit) / w + 1).min(out.len()),
        _ => 0,
    };
    let (head, tail) = out.split_at_mut(inside);
    extract(src, width, bit, head);
    if tail.is_empty() {
        return;
    }
    let bit = bit.wrapping_add(inside.wrapping_mul(w));
    let from = bit >> 3;
    let mut padded = [0u8; 3 * MARGIN];
    let rest = src.get(from..).unwrap_or(&[]);
    let n = rest.len().min(2 * MARGIN);
    padded[..n].copy_from_slice(&rest[..n]);
    extract(&padded, width, bit & 7, tail);
}

/// Values from bit `bit` of `src` on, one at a time.
#[inline(always)]
fn extract<T: Lane>(src: &[u8], width: u32, mut bit: usize, out: &mut [T]) {
    let w = width as usize;
    let mask = mask(width.clamp(1, 64));
    if width <= 56 {
        // shift <= 7 and width <= 56: the value lies within one load.
        for o in out {
            *o = T::from_bits((load(src, bit >> 3) >> (bit & 7)) & mask);
            bit = bit.wrapping_add(w);
        }
    } else {
        for o in out {
            let at = bit >> 3;
            let window = u128::from(load(src, at)) | u128::from(load(src, at + 8)) << 64;
            *o = T::from_bits((window >> (bit & 7)) as u64 & mask);
            bit = bit.wrapping_add(w);
        }
    }
}

/// Turns packed deltas (each `min` below the real one) into values after
/// `first`, in place. `min` is added in its own pass, which vectorizes, so
/// the running sum is a chain of one add a value.
#[inline]
pub(super) fn prefix_sum<T: Lane + Sum>(first: T, min: T, deltas: &mut [T]) {
    for d in deltas.iter_mut() {
        *d = d.plus(min);
    }
    let mut acc = first;
    for d in deltas.iter_mut() {
        acc = acc.plus(*d);
        *d = acc;
    }
}

/// Wrapping addition, for [`prefix_sum`] over either lane type.
pub(super) trait Sum: Copy {
    fn plus(self, other: Self) -> Self;
}

impl Sum for u64 {
    #[inline(always)]
    fn plus(self, other: Self) -> Self {
        self.wrapping_add(other)
    }
}

impl Sum for i64 {
    #[inline(always)]
    fn plus(self, other: Self) -> Self {
        self.wrapping_add(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn width_counts_significant_bits() {
        assert_eq!(width(0), 0);
        assert_eq!(width(1), 1);
        assert_eq!(width(255), 8);
        assert_eq!(width(256), 9);
        assert_eq!(width(u64::MAX), 64);
    }

    #[test]
    fn unpacking_past_the_end_reads_zero_bits_without_panicking() {
        let src = [0xffu8; 3];
        let mut out = [7u64; 8];
        unpack(&src, 7, 0, &mut out);
        assert_eq!(out[..3], [127, 127, 127]);
        assert_eq!(out[4..], [0, 0, 0, 0]);
        unpack(&src, 64, 1000, &mut out);
        assert_eq!(out, [0; 8]);
        // A start so large that bit positions wrap reads garbage, no panic.
        unpack(&src, 64, usize::MAX / 2, &mut out);
    }

    proptest! {
        #[test]
        fn pack_then_unpack_returns_the_low_bits_from_any_start(
            width in 0u32..=64,
            values in proptest::collection::vec(any::<u64>(), 0..if cfg!(miri) { 20 } else { 200 }),
            start in 0usize..20,
        ) {
            let mut dst = vec![0u8; packed_len(values.len(), width)];
            pack(values.iter().copied(), width, &mut dst);
            let m = if width == 0 { 0 } else { mask(width) };
            let want: Vec<u64> = values.iter().map(|v| v & m).collect();
            let start = start.min(values.len());
            let mut got = vec![0u64; values.len() - start];
            unpack(&dst, width, start, &mut got);
            prop_assert_eq!(&got[..], &want[start..]);
            let mut signed = vec![0i64; values.len()];
            unpack(&dst, width, 0, &mut signed);
            prop_assert!(signed.iter().zip(&want).all(|(s, w)| *s as u64 == *w));
        }
    }
}

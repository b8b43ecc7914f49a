//! The building blocks every codec shares: fixed-width bit packing (values
//! LSB first in a little-endian byte stream), zigzag and LEB128 varints, and
//! byte cursors that write a section of known size and read one that may be
//! damaged.
//!
//! Unpacking is the decode hot loop: for widths up to 56 bits each value is
//! one unaligned 8-byte load, a shift and a mask, with no branch on the data,
//! so a block unpacks at a few cycles a value whatever its width.

use super::DecodeError;

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

/// Maps signed to unsigned so that small magnitudes stay small.
#[inline]
pub(super) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag`].
#[inline]
pub(super) fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Bytes of `v` as a LEB128 varint (1..=10).
#[inline]
pub(super) fn varint_len(v: u64) -> usize {
    (width(v | 1) as usize).div_ceil(7)
}

/// Writes a section whose size was computed beforehand: running past the end
/// is a bug in that computation (a panic), not a condition to report.
pub(super) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub(super) fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }

    /// Bytes written so far.
    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    pub(super) fn bytes(&mut self, b: &[u8]) {
        self.take(b.len()).copy_from_slice(b);
    }

    pub(super) fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }

    pub(super) fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.u8(v as u8 | 0x80);
            v >>= 7;
        }
        self.u8(v as u8);
    }

    /// The next `n` bytes, to fill.
    pub(super) fn take(&mut self, n: usize) -> &mut [u8] {
        let start = self.pos;
        self.pos += n;
        &mut self.buf[start..self.pos]
    }
}

/// Reads a section that may be damaged: every read is checked and a short
/// or malformed input is a [`DecodeError`].
#[derive(Clone, Copy, Debug)]
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// The next `n` bytes.
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.saturating_add(n);
        let s = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated {
            needed: end,
            available: self.buf.len(),
        })?;
        self.pos = end;
        Ok(s)
    }

    /// Everything not read yet.
    pub(super) fn rest(&mut self) -> &'a [u8] {
        let s = self.buf.get(self.pos..).unwrap_or(&[]);
        self.pos = self.buf.len();
        s
    }

    /// Whether every byte was read.
    pub(super) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(super) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// A packed width byte: at most 64.
    pub(super) fn width(&mut self) -> Result<u32, DecodeError> {
        match self.u8()? {
            w @ 0..=64 => Ok(u32::from(w)),
            _ => Err(DecodeError::Corrupt {
                what: "bit width above 64",
            }),
        }
    }

    /// A LEB128 varint of at most 64 bits, read from the rest of the
    /// buffer as a slice: no checked read and no `Result` a byte (a
    /// lookup reads one from every frozen block it searches).
    pub(super) fn varint(&mut self) -> Result<u64, DecodeError> {
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        let mut v = 0u64;
        for (i, &b) in rest.iter().take(10).enumerate() {
            if i == 9 && b > 1 {
                break;
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                self.pos += i + 1;
                return Ok(v);
            }
        }
        // Out of bytes before the last (every byte read said "more").
        if rest.len() < 10 {
            let needed = self.pos + rest.len() + 1;
            return Err(DecodeError::Truncated {
                needed,
                available: self.buf.len(),
            });
        }
        Err(DecodeError::Corrupt {
            what: "varint longer than 64 bits",
        })
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
    fn varints_use_seven_bits_a_byte_and_reject_overlong_input() {
        for v in [0, 1, 127, 128, 16_383, 16_384, u64::MAX >> 1, u64::MAX] {
            let mut buf = [0u8; 10];
            let mut w = Writer::new(&mut buf);
            w.varint(v);
            let len = w.pos();
            assert_eq!(len, varint_len(v), "{v}");
            let mut r = Reader::new(&buf[..len]);
            assert_eq!(r.varint(), Ok(v));
            assert!(r.is_empty());
            assert!(Reader::new(&buf[..len - 1]).varint().is_err());
        }
        let overlong = [0xff; 10];
        assert!(matches!(
            Reader::new(&overlong).varint(),
            Err(DecodeError::Corrupt { .. })
        ));
        let mut eleven = [0x80u8; 11];
        eleven[10] = 0;
        assert!(Reader::new(&eleven).varint().is_err());
    }

    #[test]
    fn zigzag_round_trips_the_extremes() {
        for v in [0, -1, 1, i64::MIN, i64::MAX, -64, 63] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
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

    /// The varint reader as first written, a checked byte at a time: the
    /// reference for the one that reads a slice.
    fn varint_a_byte_at_a_time(r: &mut Reader<'_>) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = r.u8()?;
            if i == 9 && b > 1 {
                break;
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(DecodeError::Corrupt {
            what: "varint longer than 64 bits",
        })
    }

    #[test]
    fn varints_at_the_limits_read_as_the_byte_at_a_time_reader_reads_them() {
        let mut ten_max = [0xffu8; 10];
        ten_max[9] = 1;
        let mut ten_over = [0x80u8; 10];
        ten_over[9] = 2;
        let cases: [&[u8]; 6] = [
            &ten_max,
            &ten_over,
            &[0x80; 10],
            &[0x80; 9],
            &[0x80; 11],
            &[],
        ];
        for bytes in cases {
            for skip in 0..=bytes.len().min(3) {
                let mut fast = Reader::new(bytes);
                let mut reference = Reader::new(bytes);
                fast.take(skip).unwrap();
                reference.take(skip).unwrap();
                let got = fast.varint();
                assert_eq!(
                    got,
                    varint_a_byte_at_a_time(&mut reference),
                    "{bytes:?} from {skip}"
                );
                if got.is_ok() {
                    assert_eq!(fast.pos, reference.pos);
                }
            }
        }
        assert_eq!(Reader::new(&ten_max).varint(), Ok(u64::MAX));
    }

    proptest! {
        /// Same value and position after it, or the same error (with its
        /// byte counts; the position after an error is not compared:
        /// callers stop reading), on any bytes from any position, mostly
        /// continuation bytes so that long, truncated and overlong
        /// varints come up.
        #[test]
        fn varints_read_as_the_byte_at_a_time_reader_reads_them(
            bytes in proptest::collection::vec(
                prop_oneof![3 => 0x80u8..=0xff, 1 => 0u8..=0x7f, 1 => 0u8..=2],
                0..16,
            ),
            skip in 0usize..4,
        ) {
            let mut fast = Reader::new(&bytes);
            let mut reference = Reader::new(&bytes);
            let skip = skip.min(bytes.len());
            fast.take(skip).unwrap();
            reference.take(skip).unwrap();
            let got = fast.varint();
            prop_assert_eq!(&got, &varint_a_byte_at_a_time(&mut reference));
            if got.is_ok() {
                prop_assert_eq!(fast.pos, reference.pos);
            }
        }

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

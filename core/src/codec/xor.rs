//! Floats that are not decimals: each value XOR the previous one, coded by
//! its leading and trailing zero bits, after Chimp (Liakos, Papakonstantinopoulou
//! and Kotidis, VLDB 2022), itself a refinement of Gorilla's scheme. Per
//! value, a 2-bit flag:
//!
//! - `00`: the same value as before;
//! - `01`: more than 6 trailing zeros: a 3-bit leading-zero class, a 6-bit
//!   count of significant bits, then those bits;
//! - `10`: the same leading-zero class as the previous value: the XOR's
//!   `64 - leading` low bits;
//! - `11`: a new 3-bit leading-zero class, then `64 - leading` low bits.
//!
//! Leading zeros are rounded down to one of 8 classes (Chimp's table). The
//! first value is stored whole (64 bits). The stream is a bit sequence, so
//! decoding is serial: about 5-10 ns a value, several times the packed
//! codecs; it is chosen only when it is smaller than every other.

use super::cursor::Writer;
use super::DecodeError;

/// Leading-zero counts a class stands for.
const CLASS_LEADING: [u32; 8] = [0, 8, 12, 16, 18, 20, 22, 24];

/// The class of a leading-zero count (the largest class not above it).
fn class(leading: u32) -> u32 {
    match leading {
        0..=7 => 0,
        8..=11 => 1,
        12..=15 => 2,
        16..=17 => 3,
        18..=19 => 4,
        20..=21 => 5,
        22..=23 => 6,
        _ => 7,
    }
}

/// Trailing zeros above which only the significant bits are stored.
const TRAILING_THRESHOLD: u32 = 6;

/// Where the bit stream goes: counted to size the block, then written.
pub(super) trait Sink {
    /// Appends the low `n` bits of `v` (`n <= 64`; higher bits are zero).
    fn put(&mut self, v: u64, n: u32);

    /// Whether to stop with `remaining` values left to stream.
    #[inline]
    fn stop(&self, remaining: usize) -> bool {
        let _ = remaining;
        false
    }
}

/// Counts bits.
#[cfg(test)]
#[derive(Default)]
pub(super) struct Count(pub(super) usize);

#[cfg(test)]
impl Sink for Count {
    #[inline]
    fn put(&mut self, _: u64, n: u32) {
        self.0 += n as usize;
    }
}

/// Writes bits LSB first into a section sized by [`size_below`].
pub(super) struct BitWriter<'w, 'a> {
    out: &'w mut Writer<'a>,
    acc: u128,
    bits: u32,
}

impl<'w, 'a> BitWriter<'w, 'a> {
    pub(super) fn new(out: &'w mut Writer<'a>) -> Self {
        BitWriter {
            out,
            acc: 0,
            bits: 0,
        }
    }

    /// Writes the last partial byte.
    pub(super) fn finish(self) {
        let tail = self.bits.div_ceil(8) as usize;
        self.out.bytes(&(self.acc as u64).to_le_bytes()[..tail]);
    }
}

impl Sink for BitWriter<'_, '_> {
    #[inline]
    fn put(&mut self, v: u64, n: u32) {
        self.acc |= u128::from(v) << self.bits;
        self.bits += n;
        if self.bits >= 64 {
            self.out.bytes(&(self.acc as u64).to_le_bytes());
            self.acc >>= 64;
            self.bits -= 64;
        }
    }
}

/// Counts bits up to a limit.
struct Bounded {
    bits: usize,
    limit: usize,
}

impl Sink for Bounded {
    #[inline]
    fn put(&mut self, _: u64, n: u32) {
        self.bits += n as usize;
    }

    #[inline]
    fn stop(&self, remaining: usize) -> bool {
        // Every value costs at least 2 bits.
        self.bits + 2 * remaining >= self.limit
    }
}

/// The bits of the stream for `values`, if fewer than `limit`; `None` as
/// soon as the bits so far and 2 a value left reach `limit`, or at once
/// when [`bits_at_least`] reaches it.
pub(super) fn size_below(values: &[u64], limit: usize) -> Option<usize> {
    // Where the limit leaves room for a quarter of a value's bits or more
    // (nothing else compressed the block much: random values, where the
    // count below would run almost to the end before the 2-bit bound
    // stops it), first a bound: one pass, no early exit, no bit counting.
    if limit >= 16 * values.len() && bits_at_least(values) >= limit {
        return None;
    }
    let mut sink = Bounded { bits: 0, limit };
    encode(values, &mut sink).then_some(sink.bits)
}

/// A lower bound of the stream's bits for `values`: the first value's 64,
/// then per value 2 for a repeat; else, past the trailing-zero threshold,
/// 11 (flag, class and significant-bit count) and the XOR's bits from its
/// highest set bit down to its lowest; below it, 2 (the flag; a new class
/// adds 3 more) and the XOR's bits from its highest set bit down. The
/// class rounds leading zeros down, so the stream stores at least these.
pub(super) fn bits_at_least(values: &[u64]) -> usize {
    if values.is_empty() {
        return 0;
    }
    let rest: usize = values
        .windows(2)
        .map(|w| {
            let x = w[0] ^ w[1];
            let (leading, trailing) = (x.leading_zeros(), x.trailing_zeros());
            let bits = if x == 0 {
                2
            } else if trailing > TRAILING_THRESHOLD {
                11 + 64 - leading - trailing
            } else {
                2 + 64 - leading
            };
            bits as usize
        })
        .sum();
    64 + rest
}

/// Streams `values` into `sink`; false if the sink stopped it.
pub(super) fn encode(values: &[u64], sink: &mut impl Sink) -> bool {
    let Some((&first, rest)) = values.split_first() else {
        return true;
    };
    sink.put(first, 64);
    let mut prev = first;
    let mut prev_class = u32::MAX;
    // The sink may stop the stream between runs of 16 values.
    for (r, run) in rest.chunks(16).enumerate() {
        if sink.stop(rest.len() - 16 * r) {
            return false;
        }
        for &v in run {
            let x = v ^ prev;
            prev = v;
            if x == 0 {
                sink.put(0b00, 2);
                continue;
            }
            let c = class(x.leading_zeros());
            let leading = CLASS_LEADING[c as usize];
            let trailing = x.trailing_zeros();
            if trailing > TRAILING_THRESHOLD {
                let significant = 64 - leading - trailing;
                sink.put(
                    0b01 | (u64::from(c) << 2) | (u64::from(significant) << 5),
                    11,
                );
                sink.put(x >> trailing, significant);
                prev_class = u32::MAX;
            } else if c == prev_class {
                sink.put(0b10, 2);
                sink.put(x, 64 - leading);
            } else {
                sink.put(0b11 | (u64::from(c) << 2), 5);
                sink.put(x, 64 - leading);
                prev_class = c;
            }
        }
    }
    !sink.stop(0)
}

/// Reads bits LSB first, every read checked against the end.
struct BitReader<'a> {
    src: &'a [u8],
    bit: usize,
}

impl BitReader<'_> {
    #[inline]
    fn get(&mut self, n: u32) -> Result<u64, DecodeError> {
        let end = self.bit + n as usize;
        if end > self.src.len().saturating_mul(8) {
            return Err(DecodeError::Corrupt {
                what: "XOR stream ends inside a value",
            });
        }
        let at = self.bit >> 3;
        // One 16-byte load where the stream has 16 bytes left (a copy of
        // variable length, made for the last ones, is a `memcpy` call).
        let window = match self.src.get(at..at + 16) {
            Some(w) => u128::from_le_bytes(w.try_into().expect("16 bytes")),
            None => {
                let mut window = [0u8; 16];
                let avail = self.src.get(at..).unwrap_or(&[]);
                window[..avail.len()].copy_from_slice(avail);
                u128::from_le_bytes(window)
            }
        };
        let v = (window >> (self.bit & 7)) as u64;
        self.bit = end;
        Ok(if n == 0 {
            0
        } else {
            v & (u64::MAX >> (64 - n))
        })
    }
}

/// Decodes a stream value by value (what `find` uses to stop early).
pub(super) struct Decoder<'a> {
    r: BitReader<'a>,
    prev: u64,
    prev_leading: u32,
    started: bool,
}

impl<'a> Decoder<'a> {
    pub(super) fn new(src: &'a [u8]) -> Self {
        Decoder {
            r: BitReader { src, bit: 0 },
            prev: 0,
            prev_leading: u32::MAX,
            started: false,
        }
    }

    /// The next value.
    #[inline]
    pub(super) fn next_value(&mut self) -> Result<u64, DecodeError> {
        let r = &mut self.r;
        if !self.started {
            self.started = true;
            self.prev = r.get(64)?;
            return Ok(self.prev);
        }
        let x = match r.get(2)? {
            0b00 => 0,
            0b01 => {
                let head = r.get(9)?;
                let leading = CLASS_LEADING[(head & 7) as usize];
                let significant = (head >> 3) as u32;
                if significant == 0 || leading + significant > 64 {
                    return Err(DecodeError::Corrupt {
                        what: "XOR value with an impossible bit count",
                    });
                }
                self.prev_leading = u32::MAX;
                r.get(significant)? << (64 - leading - significant)
            }
            0b10 => {
                if self.prev_leading > 64 {
                    return Err(DecodeError::Corrupt {
                        what: "XOR value reuses a leading-zero class never set",
                    });
                }
                r.get(64 - self.prev_leading)?
            }
            _ => {
                self.prev_leading = CLASS_LEADING[r.get(3)? as usize];
                r.get(64 - self.prev_leading)?
            }
        };
        self.prev ^= x;
        Ok(self.prev)
    }

    /// Whether the stream was read up to the padding of its last byte.
    pub(super) fn at_end(&self) -> bool {
        self.r.bit.div_ceil(8) == self.r.src.len()
    }
}

/// Decodes a stream of `out.len()` values that fills `src` (up to the
/// padding of its last byte).
#[cfg(test)]
pub(super) fn decode(src: &[u8], out: &mut [u64]) -> Result<(), DecodeError> {
    let mut d = Decoder::new(src);
    for v in out.iter_mut() {
        *v = d.next_value()?;
    }
    if !d.at_end() {
        return Err(TRAILING);
    }
    Ok(())
}

pub(super) const TRAILING: DecodeError = DecodeError::Corrupt {
    what: "bytes after the XOR stream",
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    fn round_trip(values: &[u64]) -> usize {
        let mut count = Count::default();
        encode(values, &mut count);
        let mut buf = vec![0u8; count.0.div_ceil(8)];
        let mut w = Writer::new(&mut buf);
        let mut bw = BitWriter::new(&mut w);
        encode(values, &mut bw);
        bw.finish();
        assert_eq!(w.pos(), buf.len(), "counted and written sizes differ");
        let mut out = vec![0u64; values.len()];
        decode(&buf, &mut out).unwrap();
        assert_eq!(out, values);
        buf.len()
    }

    #[test]
    fn every_flag_round_trips() {
        let floats: Vec<u64> = [1.0f64, 1.0, 1.5, 1.25, 1.0 / 3.0, 2.0 / 3.0, 1e-300, -0.0]
            .iter()
            .map(|f| f.to_bits())
            .collect();
        round_trip(&floats);
        round_trip(&[0, u64::MAX, 1, 1 << 63, 3 << 62, 0xffff, 0xfff0]);
        round_trip(&[]);
        round_trip(&[42]);
    }

    /// The exact bits of `values`' stream.
    fn exact_bits(values: &[u64]) -> usize {
        let mut count = Count::default();
        encode(values, &mut count);
        count.0
    }

    /// `size_below` rejects a block at once on `bits_at_least`: it must
    /// never exceed the stream's bits, or XOR would lose blocks it wins.
    #[test]
    fn the_lower_bound_is_one_and_exact_where_it_should_be() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut random = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let shapes: [Vec<u64>; 6] = [
            vec![],
            vec![5],
            (0..300).map(|_| random()).collect(),
            (0..300)
                .map(|i| (20.0 + f64::from(i % 7) * 0.25).to_bits())
                .collect(),
            (0..300)
                .map(|i| if i % 3 == 0 { 7 } else { random() >> 40 << 40 })
                .collect(),
            (0..300).map(|i| (i / 5) << 20).collect(),
        ];
        for values in &shapes {
            assert!(bits_at_least(values) <= exact_bits(values), "{values:?}");
        }
        // Repeats and the first value are exact.
        assert_eq!(bits_at_least(&[9; 40]), exact_bits(&[9; 40]));
        assert_eq!(bits_at_least(&[9; 40]), 64 + 39 * 2);
        // One XOR past the trailing-zero threshold: flag, class and
        // count (11), then its bits from the highest set bit to the lowest.
        assert_eq!(bits_at_least(&[0, 0b1_1000_0000]), 64 + 11 + 2);
        // One below it: the flag, then its bits from the highest set bit.
        assert_eq!(bits_at_least(&[0, 0b1_0000_0001]), 64 + 2 + 9);
    }

    #[test]
    fn repeated_values_cost_two_bits_each() {
        assert_eq!(round_trip(&[7; 33]), 8 + 8);
    }

    /// The reader's 16-byte load, and its copy of a stream's last bytes,
    /// read the bits a bit-at-a-time reader reads, from every position of
    /// streams shorter and longer than a load.
    #[test]
    fn bit_reads_match_a_bit_at_a_time_reader() {
        let bytes: Vec<u8> = (0..33u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in [0, 1, 15, 16, 17, 33] {
            let src = &bytes[..len];
            for start in 0..=len * 8 {
                for n in [0u32, 1, 9, 63, 64] {
                    let mut r = BitReader { src, bit: start };
                    let got = r.get(n);
                    let end = start + n as usize;
                    if end > len * 8 {
                        assert!(got.is_err(), "len {len} start {start} n {n}");
                        continue;
                    }
                    let want = (start..end).fold(0u64, |acc, b| {
                        acc | (u64::from((src[b / 8] >> (b % 8)) & 1) << (b - start))
                    });
                    assert_eq!(got, Ok(want), "len {len} start {start} n {n}");
                    assert_eq!(r.bit, end);
                }
            }
        }
    }

    #[test]
    fn a_stream_cut_short_or_padded_is_an_error() {
        let values: Vec<u64> = (0..20u64).map(|i| (i as f64 / 7.0).to_bits()).collect();
        let mut count = Count::default();
        encode(&values, &mut count);
        let mut buf = vec![0u8; count.0.div_ceil(8) + 1];
        let len = buf.len() - 1;
        let mut w = Writer::new(&mut buf[..len]);
        let mut bw = BitWriter::new(&mut w);
        encode(&values, &mut bw);
        bw.finish();
        let mut out = vec![0u64; values.len()];
        assert!(decode(&buf[..len - 1], &mut out).is_err());
        assert!(decode(&buf, &mut out).is_err());
        assert!(decode(&buf[..len], &mut out).is_ok());
    }
}

//! Byte cursors over a block's sections, and the integers they write
//! beside packed columns: LEB128 varints and zigzag signed integers.
//!
//! The writer fills a section whose size the codec computed first; the
//! reader reads one that may be damaged, every read checked.

use super::bits::width;
use super::error::DecodeError;

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
    }
}

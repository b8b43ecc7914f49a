//! Block codecs: one frozen column block (`n <= 65_535` points, a timestamp
//! column and a value column) to bytes and back, bit-exact for any input,
//! with no allocation.
//!
//! Each column gets, per block, the smallest of its codecs:
//!
//! - **timestamps** ([`TsCodec`]): the first in the header, then deltas
//!   frame-of-reference packed (width 0, no bytes, for regular scrapes), or
//!   raw;
//! - **values** ([`ValueCodec`]): integer frame of reference, plain or over
//!   deltas (counters); decimal floats as integers and one power of ten
//!   (after ALP); other floats as XOR with the previous value (after
//!   Chimp); or raw. Values are opaque `u64` bit patterns: any pattern
//!   round-trips, NaN payloads and `-0.0` included.
//!
//! Raw is always a candidate, so a block never takes more than
//! [`max_encoded_len`]: [`HEADER_BYTES`] plus 16 bytes a point.
//!
//! # Layout
//! A fixed header ([`HEADER_BYTES`], little-endian): format byte (1),
//! timestamp codec id, value codec id, points (`u16`), encoded length
//! (`u32`, the whole block), first and last timestamp (`i64` each, those of
//! the first and last point, not a minimum and maximum: the column need not
//! be ascending). Then the timestamp section, then the value section, which
//! ends exactly at the encoded length. [`header`] reads only the header, to
//! seek among blocks without decoding them.
//!
//! # Decoding part of a block
//! [`decode`] decodes both columns whole. A scan that needs a range of
//! points calls [`decode_timestamps`], finds where its range lies, then
//! [`ValueColumn::decode_range`]: frame-of-reference values are unpacked
//! for those points only, delta-coded ones are summed up to the range
//! without being converted (a decimal's division is most of its decode
//! cost), and XOR streams stop at the range's end. [`find`] decodes up to
//! one point.
//!
//! # Decoding damaged bytes
//! Every length, width, exponent and codec id is checked before it is used:
//! any byte string gives a [`DecodeError`] or a block, never a panic, and
//! decoding never reads past [`Header::encoded_len`].
//!
//! ```
//! use numatree_core::codec::{self, ValueCodec};
//!
//! let ts: Vec<i64> = (0..256).map(|i| 1_700_000_000_000 + i * 15_000).collect();
//! let values: Vec<u64> = (0..256).map(|i| (20.0 + f64::from(i % 7) * 0.25).to_bits()).collect();
//! let mut buf = vec![0u8; codec::max_encoded_len(ts.len())];
//! let len = codec::encode(&ts, &values, &mut buf).unwrap();
//! let header = codec::header(&buf[..len]).unwrap();
//! assert_eq!((header.points, header.last_ts), (256, ts[255]));
//! assert!(matches!(header.value_codec, ValueCodec::Decimal | ValueCodec::DecimalDelta));
//! assert!(len < 256 * 2);
//!
//! let (mut ts2, mut values2) = (vec![0; 256], vec![0; 256]);
//! assert_eq!(codec::decode(&buf[..len], &mut ts2, &mut values2), Ok(256));
//! assert_eq!((&ts2, &values2), (&ts, &values));
//! assert_eq!(codec::find(&buf[..len], ts[3]), Ok(Some(20.75f64.to_bits())));
//! ```

mod bits;
mod cursor;
mod decimal;
mod error;
mod timestamps;
mod values;
mod xor;

pub use error::{DecodeError, EncodeError};

use cursor::{Reader, Writer};
use timestamps::{TsPlan, TsSection};
use values::ValuePlan;

/// The format byte this version writes and reads.
pub const FORMAT: u8 = 1;

/// Bytes of the fixed header every block starts with.
pub const HEADER_BYTES: usize = 25;

/// The most points one block holds.
pub const MAX_POINTS: usize = u16::MAX as usize;

/// How a block's timestamp column is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TsCodec {
    /// 8 bytes a timestamp after the first.
    Raw,
    /// Deltas minus the smallest delta, bit-packed at one width.
    DeltaFor,
}

/// How a block's value column is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValueCodec {
    /// 8 bytes a value.
    Raw,
    /// `value - min`, bit-packed (integers in a narrow range).
    For,
    /// Wrapping deltas minus the smallest delta, bit-packed (counters).
    DeltaFor,
    /// Decimal floats as integers `n` with `value = n / 10^e`, FOR-packed.
    Decimal,
    /// Decimal floats as integers, delta-FOR-packed (slowly moving gauges).
    DecimalDelta,
    /// XOR with the previous value, by leading and trailing zeros (floats
    /// that are not decimals; decodes serially, several times slower).
    Xor,
}

impl TsCodec {
    const ALL: [TsCodec; 2] = [TsCodec::Raw, TsCodec::DeltaFor];

    fn id(self) -> u8 {
        self as u8
    }
}

impl ValueCodec {
    const ALL: [ValueCodec; 6] = [
        ValueCodec::Raw,
        ValueCodec::For,
        ValueCodec::DeltaFor,
        ValueCodec::Decimal,
        ValueCodec::DecimalDelta,
        ValueCodec::Xor,
    ];

    fn id(self) -> u8 {
        self as u8
    }
}

/// A block's header: what [`header`] reads without decoding the columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Points in the block.
    pub points: usize,
    /// The first point's timestamp (0 in an empty block).
    pub first_ts: i64,
    /// The last point's timestamp (0 in an empty block).
    pub last_ts: i64,
    /// How the timestamps are stored.
    pub ts_codec: TsCodec,
    /// How the values are stored.
    pub value_codec: ValueCodec,
    /// Bytes of the whole block, header included.
    pub encoded_len: usize,
}

/// An upper bound of [`encode`]'s output for `points` points, in bytes:
/// [`HEADER_BYTES`] plus 16 a point (the raw encoding).
pub const fn max_encoded_len(points: usize) -> usize {
    HEADER_BYTES.saturating_add(points.saturating_mul(16))
}

/// Encodes one block of `ts.len()` points into `out`, each column with its
/// smallest codec, and returns the bytes written.
///
/// The columns may hold any values (timestamps need not be ascending); an
/// empty block is allowed. `out` needs room for the encoded block only,
/// which [`max_encoded_len`] bounds.
pub fn encode(ts: &[i64], values: &[u64], out: &mut [u8]) -> Result<usize, EncodeError> {
    let n = ts.len();
    if n != values.len() {
        return Err(EncodeError::LengthMismatch {
            timestamps: n,
            values: values.len(),
        });
    }
    if n > MAX_POINTS {
        return Err(EncodeError::TooManyPoints {
            points: n,
            max: MAX_POINTS,
        });
    }
    let (ts_plan, ts_len) = TsPlan::choose(ts);
    let mut scratch = [0; values::STACK_POINTS];
    let (value_plan, value_len) = ValuePlan::choose(values, &mut scratch);
    let len = HEADER_BYTES + ts_len + value_len;
    let Some(out) = out.get_mut(..len) else {
        return Err(EncodeError::OutputTooSmall {
            needed: len,
            provided: out.len(),
        });
    };
    let mut w = Writer::new(out);
    w.u8(FORMAT);
    w.u8(ts_plan.codec().id());
    w.u8(value_plan.codec().id());
    w.bytes(&(n as u16).to_le_bytes());
    w.bytes(&(len as u32).to_le_bytes());
    w.bytes(&ts.first().copied().unwrap_or(0).to_le_bytes());
    w.bytes(&ts.last().copied().unwrap_or(0).to_le_bytes());
    ts_plan.write(ts, &mut w);
    debug_assert_eq!(w.pos(), HEADER_BYTES + ts_len, "timestamp section size");
    value_plan.write(values, &scratch, &mut w);
    debug_assert_eq!(w.pos(), len, "value section size");
    Ok(len)
}

/// Reads a block's header, checking it and that `bytes` hold the whole
/// block (`bytes` may run on past it).
pub fn header(bytes: &[u8]) -> Result<Header, DecodeError> {
    let mut r = Reader::new(bytes);
    let fixed = r.take(HEADER_BYTES)?;
    let word = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&fixed[at..at + 8]);
        i64::from_le_bytes(b)
    };
    if fixed[0] != FORMAT {
        return Err(DecodeError::UnsupportedFormat { format: fixed[0] });
    }
    let ts_codec = *TsCodec::ALL
        .get(usize::from(fixed[1]))
        .ok_or(DecodeError::UnknownTsCodec { id: fixed[1] })?;
    let value_codec = *ValueCodec::ALL
        .get(usize::from(fixed[2]))
        .ok_or(DecodeError::UnknownValueCodec { id: fixed[2] })?;
    let points = usize::from(u16::from_le_bytes([fixed[3], fixed[4]]));
    let encoded_len = u32::from_le_bytes([fixed[5], fixed[6], fixed[7], fixed[8]]) as usize;
    let (first_ts, last_ts) = (word(9), word(17));
    if encoded_len < HEADER_BYTES || encoded_len > max_encoded_len(points) {
        return Err(DecodeError::Corrupt {
            what: "encoded length outside what the point count allows",
        });
    }
    if bytes.len() < encoded_len {
        return Err(DecodeError::Truncated {
            needed: encoded_len,
            available: bytes.len(),
        });
    }
    if (points == 0 && (first_ts, last_ts) != (0, 0)) || (points == 1 && first_ts != last_ts) {
        return Err(DecodeError::Corrupt {
            what: "first and last timestamps disagree with the point count",
        });
    }
    Ok(Header {
        points,
        first_ts,
        last_ts,
        ts_codec,
        value_codec,
        encoded_len,
    })
}

/// A checked header and readers of the block's two sections.
fn sections(bytes: &[u8]) -> Result<(Header, TsSection<'_>, Reader<'_>), DecodeError> {
    let h = header(bytes)?;
    let mut r = Reader::new(&bytes[HEADER_BYTES..h.encoded_len]);
    let ts = TsSection::read(&mut r, h.ts_codec, h.points)?;
    Ok((h, ts, r))
}

/// Decodes a block into the first `n` entries of `ts` and `values` and
/// returns `n`, the block's point count. Both columns need room for `n`
/// points ([`header`] tells `n` beforehand).
pub fn decode(bytes: &[u8], ts: &mut [i64], values: &mut [u64]) -> Result<usize, DecodeError> {
    let n = header(bytes)?.points;
    if ts.len() < n || values.len() < n {
        return Err(DecodeError::OutputTooSmall {
            points: n,
            ts_room: ts.len(),
            values_room: values.len(),
        });
    }
    decode_timestamps(bytes, ts)?.decode_range(0..n, values)?;
    Ok(n)
}

/// Decodes a block's timestamps into the first `n` entries of `ts` (`n` its
/// point count, which [`header`] tells beforehand) and returns its value
/// column, to decode in part: a scan finds where its range lies in the
/// timestamps, then decodes the values of those points only
/// ([`ValueColumn::decode_range`]).
///
/// It checks what [`decode`] checks of the header and the timestamps, and
/// the value section's bounds when values are decoded.
pub fn decode_timestamps<'a>(
    bytes: &'a [u8],
    ts: &mut [i64],
) -> Result<ValueColumn<'a>, DecodeError> {
    let (h, ts_section, r) = sections(bytes)?;
    let n = h.points;
    let Some(ts) = ts.get_mut(..n) else {
        return Err(DecodeError::OutputTooSmall {
            points: n,
            ts_room: ts.len(),
            values_room: n,
        });
    };
    ts_section.decode(h.first_ts, ts);
    if n > 0 && ts[n - 1] != h.last_ts {
        return Err(DecodeError::Corrupt {
            what: "timestamps do not end at the header's last timestamp",
        });
    }
    Ok(ValueColumn {
        codec: h.value_codec,
        points: n,
        section: r,
    })
}

/// A block's value column, not yet decoded (see [`decode_timestamps`]).
#[derive(Clone, Copy, Debug)]
pub struct ValueColumn<'a> {
    codec: ValueCodec,
    points: usize,
    section: Reader<'a>,
}

impl ValueColumn<'_> {
    /// Points in the block.
    pub fn points(&self) -> usize {
        self.points
    }

    /// How the values are stored.
    pub fn codec(&self) -> ValueCodec {
        self.codec
    }

    /// Decodes the values of points `range` into `out[range]`, doing only
    /// the work those points need: frame-of-reference codecs unpack just
    /// them, delta codecs sum the deltas before them without converting
    /// them (a decimal's division is most of its decode), XOR decodes up to
    /// the range's end. Entries of `out` before the range may be
    /// overwritten.
    ///
    /// A range that ends at the block's end also checks that the value
    /// section ends where the block does, as [`decode`] does.
    ///
    /// # Panics
    /// If `range` is not within `0..points()` or `out` is shorter than
    /// `range.end` (the caller's mistake, as with slice indexing; damaged
    /// bytes give an error).
    pub fn decode_range(
        &self,
        range: core::ops::Range<usize>,
        out: &mut [u64],
    ) -> Result<(), DecodeError> {
        assert!(
            range.start <= range.end && range.end <= self.points && range.end <= out.len(),
            "decode_range({range:?}) of a block of {} points into {} entries",
            self.points,
            out.len()
        );
        let mut r = self.section;
        let whole = range.end == self.points;
        values::decode_range(&mut r, self.codec, self.points, range, out)?;
        if whole && !r.is_empty() {
            return Err(DecodeError::Corrupt {
                what: "bytes after the value column",
            });
        }
        Ok(())
    }
}

/// The value of the first point at timestamp `ts`, if the block has one,
/// found without decoding the whole block: timestamps are decoded a stack
/// chunk at a time up to the point, then only what the value codec needs to
/// reach it (one packed value for FOR codecs).
///
/// It checks less than [`decode`] (bytes after the point are not read).
pub fn find(bytes: &[u8], ts: i64) -> Result<Option<u64>, DecodeError> {
    let (h, ts_section, mut r) = sections(bytes)?;
    let Some(i) = ts_section.position(h.first_ts, h.points, ts) else {
        return Ok(None);
    };
    values::value_at(&mut r, h.value_codec, h.points, i).map(Some)
}

#[cfg(test)]
mod tests;

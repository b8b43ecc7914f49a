//! What can go wrong encoding or decoding a block: values, never panics.

use core::fmt;

/// Why [`encode`](super::encode) wrote nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// More points than a block holds: split the column into blocks of at
    /// most `max` points.
    TooManyPoints {
        /// Points given.
        points: usize,
        /// The most one block holds ([`MAX_POINTS`](super::MAX_POINTS)).
        max: usize,
    },
    /// The two columns differ in length: one point is a timestamp and a value.
    LengthMismatch {
        /// Timestamps given.
        timestamps: usize,
        /// Values given.
        values: usize,
    },
    /// The output buffer is shorter than the encoded block: give at least
    /// `needed` bytes ([`max_encoded_len`](super::max_encoded_len) is
    /// always enough).
    OutputTooSmall {
        /// Bytes the encoded block takes.
        needed: usize,
        /// Bytes the buffer has.
        provided: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EncodeError::TooManyPoints { points, max } => write!(
                f,
                "a block holds at most {max} points but {points} were given: \
                 split the columns into several blocks"
            ),
            EncodeError::LengthMismatch { timestamps, values } => write!(
                f,
                "{timestamps} timestamps but {values} values: \
                 both columns must hold one entry per point"
            ),
            EncodeError::OutputTooSmall { needed, provided } => write!(
                f,
                "the encoded block takes {needed} bytes but the output holds {provided}: \
                 size it with max_encoded_len"
            ),
        }
    }
}

impl core::error::Error for EncodeError {}

/// Why bytes could not be read as a block. Decoding checks every length,
/// width and id before use, so damaged or foreign bytes give one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes end before the block does: pass the whole block (its length
    /// is [`Header::encoded_len`](super::Header::encoded_len)).
    Truncated {
        /// Bytes the block needs at least (counted from its start).
        needed: usize,
        /// Bytes given.
        available: usize,
    },
    /// The first byte names a block format this version cannot read.
    UnsupportedFormat {
        /// The format byte found.
        format: u8,
    },
    /// The header names a timestamp codec that does not exist.
    UnknownTsCodec {
        /// The codec id found.
        id: u8,
    },
    /// The header names a value codec that does not exist.
    UnknownValueCodec {
        /// The codec id found.
        id: u8,
    },
    /// The output columns cannot hold the block's points: give each at
    /// least `points` entries.
    OutputTooSmall {
        /// Points in the block.
        points: usize,
        /// Room in the timestamp column.
        ts_room: usize,
        /// Room in the value column.
        values_room: usize,
    },
    /// The bytes are not a block this code wrote (damaged, or not a block):
    /// `what` names the check that failed.
    Corrupt {
        /// The inconsistency found.
        what: &'static str,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::Truncated { needed, available } => write!(
                f,
                "block truncated: it needs at least {needed} bytes but {available} were given; \
                 pass the whole encoded block"
            ),
            DecodeError::UnsupportedFormat { format } => write!(
                f,
                "unsupported block format {format}: this version reads format {}",
                super::FORMAT
            ),
            DecodeError::UnknownTsCodec { id } => {
                write!(
                    f,
                    "unknown timestamp codec id {id}: the block is damaged or newer"
                )
            }
            DecodeError::UnknownValueCodec { id } => {
                write!(
                    f,
                    "unknown value codec id {id}: the block is damaged or newer"
                )
            }
            DecodeError::OutputTooSmall {
                points,
                ts_room,
                values_room,
            } => write!(
                f,
                "the block holds {points} points but the output has room for \
                 {ts_room} timestamps and {values_room} values: give each column at least {points}"
            ),
            DecodeError::Corrupt { what } => write!(f, "corrupt block: {what}"),
        }
    }
}

impl core::error::Error for DecodeError {}

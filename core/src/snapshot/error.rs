//! What can be wrong with snapshot bytes (parsing) or with what a writer
//! was asked to write (encoding).

use core::fmt;

/// Where in a snapshot file a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The file header (bytes `0..HEADER_LEN`).
    Header,
    /// Section `n` (0 is the meta section), counted from the start of the
    /// file.
    Section(u64),
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Part::Header => f.write_str("the file header"),
            Part::Section(n) => write!(f, "section {n}"),
        }
    }
}

/// Why bytes are not a snapshot this reader accepts. Offsets are bytes
/// from the start of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The bytes do not start with [`MAGIC`](super::MAGIC) (an empty file
    /// included): some other file.
    NotASnapshot,
    /// A snapshot of a format version this reader does not read.
    UnsupportedVersion {
        /// The version in the file.
        found: u32,
        /// The version this reader reads.
        supported: u32,
    },
    /// The header sets flags (features a reader must understand) that this
    /// reader does not know.
    UnsupportedFlags {
        /// The flags in the file.
        found: u32,
        /// The flags this reader knows.
        known: u32,
    },
    /// The file ends inside `part`, or before the end section.
    Truncated {
        /// The part the file ends in (the next section's number when the
        /// file ends between sections).
        part: Part,
        /// Where that part starts.
        offset: u64,
        /// Bytes the part needs from `offset`.
        needed: u64,
        /// The file's length.
        len: u64,
    },
    /// A checksum does not match the bytes it covers.
    ChecksumMismatch {
        /// The header or the section whose checksum failed.
        part: Part,
        /// Where that part starts.
        offset: u64,
        /// The checksum in the file.
        stored: u32,
        /// The checksum of the bytes.
        computed: u32,
    },
    /// A field holds a value the format does not allow (the checksums
    /// matched: a writer bug or a crafted file).
    Corrupt {
        /// Which field, and what is wrong with it.
        what: &'static str,
        /// Where the field is.
        offset: u64,
    },
    /// A section of a kind this reader does not know and that is not marked
    /// optional (bit 31), so it cannot be skipped.
    UnknownSection {
        /// The section's kind.
        kind: u32,
        /// The section's number.
        section: u64,
        /// Where its frame starts.
        offset: u64,
    },
    /// The end section's totals differ from what the file holds.
    TotalsMismatch {
        /// Which total: `"series"`, `"blocks"`, `"points"` or `"sections"`.
        what: &'static str,
        /// The total in the end section.
        recorded: u64,
        /// What the sections before it hold.
        counted: u64,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ParseError::NotASnapshot => f.write_str(
                "not a numatree snapshot: the file does not start with the snapshot magic bytes",
            ),
            ParseError::UnsupportedVersion { found, supported } => write!(
                f,
                "unsupported snapshot format version {found}: this reader reads version {supported}"
            ),
            ParseError::UnsupportedFlags { found, known } => write!(
                f,
                "snapshot header sets flags {found:#x} but this reader knows only {known:#x}"
            ),
            ParseError::Truncated {
                part,
                offset,
                needed,
                len,
            } => write!(
                f,
                "snapshot truncated: {part} at byte {offset} needs {needed} bytes \
                 but the file ends at byte {len}"
            ),
            ParseError::ChecksumMismatch {
                part,
                offset,
                stored,
                computed,
            } => write!(
                f,
                "snapshot checksum mismatch in {part} at byte {offset}: \
                 stored {stored:#010x}, computed {computed:#010x}"
            ),
            ParseError::Corrupt { what, offset } => {
                write!(f, "corrupt snapshot: {what} at byte {offset}")
            }
            ParseError::UnknownSection {
                kind,
                section,
                offset,
            } => write!(
                f,
                "corrupt snapshot: section {section} at byte {offset} has kind {kind:#x}, \
                 which this reader does not know and which is not marked optional"
            ),
            ParseError::TotalsMismatch {
                what,
                recorded,
                counted,
            } => write!(
                f,
                "snapshot totals mismatch: the end section records {recorded} {what} \
                 but the file holds {counted}"
            ),
        }
    }
}

impl core::error::Error for ParseError {}

/// Why something cannot be encoded into a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// A raw block's timestamp and value columns differ in length.
    ColumnsDiffer {
        /// Timestamps given.
        ts: usize,
        /// Values given.
        values: usize,
    },
    /// A block with no points (the format has none).
    EmptyBlock,
    /// A count or length does not fit its field.
    TooLarge {
        /// Which count: `"points in a block"`, `"encoded block bytes"`,
        /// `"blocks in a record"` or `"meta fields"`.
        what: &'static str,
        /// The count given.
        len: usize,
        /// The largest the field holds.
        max: u32,
    },
    /// Meta field keys must be strictly ascending.
    MetaKeysUnsorted {
        /// The first key not above the one before it.
        key: u32,
    },
    /// The output buffer is too short.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes provided.
        provided: usize,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EncodeError::ColumnsDiffer { ts, values } => write!(
                f,
                "raw block has {ts} timestamps but {values} values: the columns must be equal"
            ),
            EncodeError::EmptyBlock => f.write_str("block has no points: a block holds >= 1"),
            EncodeError::TooLarge { what, len, max } => {
                write!(f, "{len} {what} do not fit the format: at most {max}")
            }
            EncodeError::MetaKeysUnsorted { key } => write!(
                f,
                "meta field key {key} is not above the key before it: keys must be strictly ascending"
            ),
            EncodeError::BufferTooSmall { needed, provided } => write!(
                f,
                "output buffer holds {provided} bytes but {needed} are needed"
            ),
        }
    }
}

impl core::error::Error for EncodeError {}

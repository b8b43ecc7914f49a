//! The snapshot file format: an index's series and their blocks written to
//! one file, and read back only once every byte of it is verified.
//!
//! This module knows bytes only: [`Snapshot::parse`] verifies a whole
//! snapshot held in memory and then iterates its series records; the
//! encoding helpers ([`header`], [`frame`], [`encode_meta`],
//! [`encode_series`], [`Block::encode`], [`encode_end`]) write each piece
//! into a caller's buffer, so the runtime's file writer and the tests share
//! one definition of the layout. Files, buffering and crash safety belong
//! to the runtime. Blocks that a codec encoded are opaque bytes here.
//!
//! # Guarantees
//! - **Verified before seen.** `parse` returns a [`Snapshot`] only when the
//!   header, every section's checksum and bounds, every record and block,
//!   and the end section's totals are right and nothing follows the end
//!   section; otherwise a [`ParseError`] that names what is wrong and
//!   where. A file cut short anywhere is [`ParseError::Truncated`] (the end
//!   section is last and required), never a smaller snapshot.
//! - **No panic, no overflow, no alignment.** Every read is bounds-checked
//!   and every count a checked sum, whatever the bytes; points are read as
//!   little-endian words at any alignment.
//!
//! # Layout, version 1
//! All integers are little-endian; nothing is aligned or padded. A file
//! is a header, then sections: the meta section first, series sections
//! and optional sections after it, the end section last.
//!
//! **Header**, [`HEADER_LEN`] = 24 bytes:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic [`MAGIC`], `89 4E 54 53 4E 41 50 0A` (`\x89NTSNAP\n`) |
//! | 8 | 4 | format version `u32`, [`VERSION`] = 1 |
//! | 12 | 4 | flags `u32`: features a reader must understand; version 1 defines none ([`KNOWN_FLAGS`] = 0) |
//! | 16 | 4 | reserved, zero |
//! | 20 | 4 | CRC-32 of bytes 0..20 |
//!
//! **Section frame**, [`FRAME_LEN`] = 16 bytes, then the payload:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | kind `u32` ([`section_kind`]) |
//! | 4 | 8 | payload length `u64`, bytes |
//! | 12 | 4 | CRC-32 of frame bytes 0..12 followed by the payload |
//! | 16 | length | payload |
//!
//! Section kinds: 1 meta, 2 series, 3 end. A kind with bit 31 set
//! ([`section_kind::OPTIONAL`]) is optional: a reader that does not know it
//! verifies its checksum and skips it. Any other unknown kind is an error.
//!
//! **Meta payload** (kind 1, exactly one, the first section):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | retention floor `i64`: points before this timestamp were dropped |
//! | 8 | 4 | field count `u32` |
//! | 12 | 12 x count | fields: key `u32`, value `u64`; keys strictly ascending ([`meta_key`]) |
//!
//! **Series payload** (kind 2): series records back to back, filling the
//! payload exactly. Writers aim at [`SECTION_TARGET`] (1 MiB) per section.
//!
//! | size | field |
//! |---|---|
//! | 4 | series id `u32` |
//! | 4 | block count `u32` |
//! | ... | that many blocks, in time order |
//!
//! A series is one record or several consecutive records with the same id
//! (a writer splits a large series at block boundaries to keep sections
//! near the target); the blocks of such records follow each other in time.
//!
//! **Block**, by its tag ([`block_tag`]):
//!
//! | size | raw (tag 1) | encoded (tag 2) |
//! |---|---|---|
//! | 4 | tag `u32` = 1 | tag `u32` = 2 |
//! | 4 | points `n` `u32`, >= 1 | points `n` `u32`, >= 1 |
//! | | `n` timestamps `i64`, then `n` values `u64` | byte length `m` `u32`, then `m` bytes of the codec |
//!
//! **End payload** (kind 3, exactly one, the last bytes of the file),
//! [`END_LEN`] = 32 bytes:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | series `u64` (runs of consecutive records with one id) |
//! | 8 | 8 | blocks `u64` |
//! | 16 | 8 | points `u64` (of raw and encoded blocks) |
//! | 24 | 8 | sections before the end section `u64`, meta and optional included |
//!
//! CRC-32 is the IEEE polynomial (as in zlib and PNG), computed with
//! `crc32fast`.
//!
//! # Versions
//! The magic and the version word stay at bytes 0..12 in every version; a
//! reader checks them first and reads only the versions it knows (this one:
//! 1), reporting [`ParseError::UnsupportedVersion`] for any other. A change
//! that a version-1 reader would misread bumps the version. Additions it
//! can ignore do not: new meta keys and new optional sections. A flag is a
//! feature every reader must understand, so a reader refuses unknown flags
//! ([`ParseError::UnsupportedFlags`]).

mod encode;
mod error;
mod parse;
mod records;

pub use encode::{
    encode_end, encode_meta, encode_series, frame, header, meta_len, record_header, series_len,
    Block,
};
pub use error::{EncodeError, ParseError, Part};
pub use parse::{Meta, RawBlock, Snapshot, StoredBlock};
pub use records::{Blocks, Records, SeriesRecord};

/// The first 8 bytes of every snapshot.
pub const MAGIC: [u8; 8] = *b"\x89NTSNAP\n";
/// The format version this crate writes and reads.
pub const VERSION: u32 = 1;
/// The header flags this crate knows (none).
pub const KNOWN_FLAGS: u32 = 0;
/// Bytes of the file header.
pub const HEADER_LEN: usize = 24;
/// Bytes of a section frame (before its payload).
pub const FRAME_LEN: usize = 16;
/// Bytes of the end section's payload.
pub const END_LEN: usize = 32;
/// Bytes of a series record's header.
pub const RECORD_HEADER_LEN: usize = 8;
/// Payload bytes a writer aims at per series section (a section may end
/// earlier at the last series, or be longer by one block).
pub const SECTION_TARGET: usize = 1 << 20;

/// Bytes of the meta payload before its fields.
const META_HEADER_LEN: usize = 12;
/// Bytes of one meta field.
const META_FIELD_LEN: usize = 12;

/// Section kinds.
pub mod section_kind {
    /// The meta section: index-wide facts.
    pub const META: u32 = 1;
    /// A series section: series records.
    pub const SERIES: u32 = 2;
    /// The end section: the file's totals.
    pub const END: u32 = 3;
    /// Bit 31: a section a reader may skip if it does not know the kind.
    pub const OPTIONAL: u32 = 1 << 31;
}

/// Block tags.
pub mod block_tag {
    /// Uncompressed points.
    pub const RAW: u32 = 1;
    /// A codec's block.
    pub const ENCODED: u32 = 2;
}

/// Keys of the meta fields the numatree runtime writes. Readers ignore keys
/// they do not know.
pub mod meta_key {
    /// Points in the index when the snapshot was taken.
    pub const POINTS: u32 = 1;
    /// Series in the index when the snapshot was taken.
    pub const SERIES: u32 = 2;
}

/// Counts over a snapshot's contents, as its end section records them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Series (runs of consecutive records with one id).
    pub series: u64,
    /// Blocks.
    pub blocks: u64,
    /// Points in all blocks.
    pub points: u64,
    /// Sections before the end section.
    pub sections: u64,
}

/// CRC-32 of `a` followed by `b`.
fn checksum(a: &[u8], b: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(a);
    h.update(b);
    h.finalize()
}

#[cfg(test)]
mod tests;

//! Reading a snapshot from bytes: everything is verified (header, every
//! section's checksum, every bound, the totals) before a [`Snapshot`] is
//! returned, so the iterators over it cannot meet an error.
//!
//! Every read is a checked `get` and every sum a checked add: no input
//! makes the parser panic or overflow.

use super::records::Records;
use super::{
    block_tag, checksum, section_kind, ParseError, Part, Totals, END_LEN, FRAME_LEN, HEADER_LEN,
    KNOWN_FLAGS, MAGIC, META_FIELD_LEN, META_HEADER_LEN, RECORD_HEADER_LEN, VERSION,
};

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..)?
        .first_chunk::<4>()
        .map(|c| u32::from_le_bytes(*c))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..)?
        .first_chunk::<8>()
        .map(|c| u64::from_le_bytes(*c))
}

/// `len` bytes of `b` from `at`, and the position after them.
fn span(b: &[u8], at: usize, len: usize) -> Option<(&[u8], usize)> {
    let end = at.checked_add(len)?;
    Some((b.get(at..end)?, end))
}

/// A byte offset in the file as the errors report it.
fn off(base: usize, at: usize) -> u64 {
    (base as u64).saturating_add(at as u64)
}

/// The index-wide facts of the meta section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta<'a> {
    retention_floor: i64,
    /// `META_FIELD_LEN`-byte fields, keys strictly ascending (verified).
    fields: &'a [u8],
}

impl<'a> Meta<'a> {
    /// Points before this timestamp were dropped from the index before
    /// the snapshot (retention): a restore must not bring them back.
    pub fn retention_floor(&self) -> i64 {
        self.retention_floor
    }

    /// The free-form fields as `(key, value)`, keys ascending (see
    /// [`meta_key`](super::meta_key) for the keys the runtime writes).
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (u32, u64)> + DoubleEndedIterator + 'a {
        self.fields.as_chunks::<META_FIELD_LEN>().0.iter().map(|f| {
            let (k, v) = f.split_at(4);
            (
                u32::from_le_bytes([k[0], k[1], k[2], k[3]]),
                u64::from_le_bytes([v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]]),
            )
        })
    }

    /// The value of field `key`, if the meta section has it.
    pub fn field(&self, key: u32) -> Option<u64> {
        self.fields().find(|&(k, _)| k == key).map(|(_, v)| v)
    }
}

/// A block as stored: its points as little-endian columns (no alignment
/// assumed), or a codec's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredBlock<'a> {
    /// Uncompressed points.
    Raw(RawBlock<'a>),
    /// A codec's block.
    Encoded {
        /// Points the block holds, as its writer said (>= 1).
        points: u32,
        /// The codec's bytes.
        bytes: &'a [u8],
    },
}

impl StoredBlock<'_> {
    /// Points in the block (>= 1).
    pub fn points(&self) -> u32 {
        match self {
            StoredBlock::Raw(raw) => raw.len() as u32,
            StoredBlock::Encoded { points, .. } => *points,
        }
    }
}

/// The points of a raw block: two columns of little-endian 8-byte words,
/// at any alignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawBlock<'a> {
    ts: &'a [u8],
    values: &'a [u8],
}

impl<'a> RawBlock<'a> {
    /// Points in the block.
    pub fn len(&self) -> usize {
        self.ts.len() / 8
    }

    /// Whether the block has no point (never, in a verified snapshot).
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }

    /// The timestamp column as little-endian bytes, 8 per point.
    pub fn ts_bytes(&self) -> &'a [u8] {
        self.ts
    }

    /// The value column as little-endian bytes, 8 per point.
    pub fn values_bytes(&self) -> &'a [u8] {
        self.values
    }

    /// The timestamps, in order.
    pub fn ts(&self) -> impl ExactSizeIterator<Item = i64> + DoubleEndedIterator + 'a {
        self.ts
            .as_chunks::<8>()
            .0
            .iter()
            .map(|w| i64::from_le_bytes(*w))
    }

    /// The values, in order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = u64> + DoubleEndedIterator + 'a {
        self.values
            .as_chunks::<8>()
            .0
            .iter()
            .map(|w| u64::from_le_bytes(*w))
    }

    /// Copies the points into the front of `ts` and `values`; returns how
    /// many were copied: the block's length, or fewer if a column is
    /// shorter.
    pub fn copy_to(&self, ts: &mut [i64], values: &mut [u64]) -> usize {
        let n = self.len().min(ts.len()).min(values.len());
        for (o, t) in ts[..n].iter_mut().zip(self.ts()) {
            *o = t;
        }
        for (o, v) in values[..n].iter_mut().zip(self.values()) {
            *o = v;
        }
        n
    }
}

/// A section's frame and payload.
pub(super) struct Frame<'a> {
    pub(super) kind: u32,
    pub(super) payload: &'a [u8],
    /// Where the payload starts in the file.
    pub(super) payload_at: usize,
    /// Where the next section starts.
    pub(super) next: usize,
}

pub(super) fn read_frame(
    bytes: &[u8],
    at: usize,
    section: u64,
    verify: bool,
) -> Result<Frame<'_>, ParseError> {
    let truncated = |needed: u64| ParseError::Truncated {
        part: Part::Section(section),
        offset: at as u64,
        needed,
        len: bytes.len() as u64,
    };
    let head = bytes
        .get(at..)
        .and_then(|b| b.first_chunk::<FRAME_LEN>())
        .ok_or(truncated(FRAME_LEN as u64))?;
    let kind = u32_at(head, 0).unwrap_or(0);
    let len = u64_at(head, 4).unwrap_or(0);
    let stored = u32_at(head, 12).unwrap_or(0);
    let needed = len.saturating_add(FRAME_LEN as u64);
    let payload_at = at + FRAME_LEN; // `head` exists, so no overflow
    let (payload, next) = usize::try_from(len)
        .ok()
        .and_then(|len| span(bytes, payload_at, len))
        .ok_or(truncated(needed))?;
    if verify {
        let computed = checksum(&head[..12], payload);
        if computed != stored {
            return Err(ParseError::ChecksumMismatch {
                part: Part::Section(section),
                offset: at as u64,
                stored,
                computed,
            });
        }
    }
    Ok(Frame {
        kind,
        payload,
        payload_at,
        next,
    })
}

fn corrupt(what: &'static str, base: usize, at: usize) -> ParseError {
    ParseError::Corrupt {
        what,
        offset: off(base, at),
    }
}

/// The block at `at` of a series payload that starts at file offset
/// `base`, and the position after it.
pub(super) fn read_block(
    b: &[u8],
    at: usize,
    base: usize,
) -> Result<(StoredBlock<'_>, usize), ParseError> {
    let tag = u32_at(b, at).ok_or(corrupt("block header runs past its section", base, at))?;
    let points = at.checked_add(4).and_then(|p| u32_at(b, p)).ok_or(corrupt(
        "block header runs past its section",
        base,
        at,
    ))?;
    if points == 0 {
        return Err(corrupt("block with no points", base, at));
    }
    let body = at + 8; // both header words were read, so no overflow
    match tag {
        block_tag::RAW => {
            let column = (points as usize).checked_mul(8).ok_or(corrupt(
                "raw block larger than memory",
                base,
                at,
            ))?;
            let past = corrupt("raw block's points run past their section", base, at);
            let (ts, mid) = span(b, body, column).ok_or(past)?;
            let (values, next) = span(b, mid, column).ok_or(past)?;
            Ok((StoredBlock::Raw(RawBlock { ts, values }), next))
        }
        block_tag::ENCODED => {
            let len = u32_at(b, body).ok_or(corrupt(
                "encoded block header runs past its section",
                base,
                at,
            ))?;
            let (bytes, next) = span(b, body + 4, len as usize).ok_or(corrupt(
                "encoded block's bytes run past their section",
                base,
                at,
            ))?;
            Ok((StoredBlock::Encoded { points, bytes }, next))
        }
        _ => Err(corrupt("unknown block tag", base, at)),
    }
}

/// A series record's header at `at`: its id, block count and where its
/// blocks start.
pub(super) fn read_record_header(
    b: &[u8],
    at: usize,
    base: usize,
) -> Result<(u32, u32, usize), ParseError> {
    let header_past = corrupt("series record header runs past its section", base, at);
    let id = u32_at(b, at).ok_or(header_past)?;
    let blocks = u32_at(b, at + 4).ok_or(header_past)?; // `at` < b.len(): no overflow
    Ok((id, blocks, at + RECORD_HEADER_LEN))
}

fn read_meta(payload: &[u8], base: usize) -> Result<Meta<'_>, ParseError> {
    let (Some(floor), Some(count)) = (u64_at(payload, 0), u32_at(payload, 8)) else {
        return Err(corrupt(
            "meta section shorter than its fixed fields",
            base,
            0,
        ));
    };
    let want = (count as u64)
        .checked_mul(META_FIELD_LEN as u64)
        .and_then(|f| f.checked_add(META_HEADER_LEN as u64));
    if want != Some(payload.len() as u64) {
        return Err(corrupt(
            "meta field count disagrees with the meta section's length",
            base,
            8,
        ));
    }
    let fields = payload.get(META_HEADER_LEN..).unwrap_or_default();
    let meta = Meta {
        retention_floor: floor as i64,
        fields,
    };
    let mut last = None;
    for (i, (key, _)) in meta.fields().enumerate() {
        if last.is_some_and(|l| key <= l) {
            return Err(corrupt(
                "meta field keys not strictly ascending",
                base,
                META_HEADER_LEN + i * META_FIELD_LEN,
            ));
        }
        last = Some(key);
    }
    Ok(meta)
}

/// Running totals of a walk, and the id of the last series record (a
/// record with the same id as the one before it continues that series).
#[derive(Default)]
struct Count {
    totals: Totals,
    last_id: Option<u32>,
}

fn count_series(payload: &[u8], base: usize, count: &mut Count) -> Result<(), ParseError> {
    let overflow = |what| corrupt(what, base, 0);
    let mut at = 0;
    while at < payload.len() {
        let (id, blocks, mut next) = read_record_header(payload, at, base)?;
        if count.last_id != Some(id) {
            count.totals.series = count
                .totals
                .series
                .checked_add(1)
                .ok_or(overflow("series count overflows"))?;
            count.last_id = Some(id);
        }
        for _ in 0..blocks {
            let (block, after) = read_block(payload, next, base)?;
            count.totals.blocks = count
                .totals
                .blocks
                .checked_add(1)
                .ok_or(overflow("block count overflows"))?;
            count.totals.points = count
                .totals
                .points
                .checked_add(u64::from(block.points()))
                .ok_or(overflow("point count overflows"))?;
            next = after;
        }
        at = next;
    }
    Ok(())
}

fn check_header(bytes: &[u8], verify: bool) -> Result<(), ParseError> {
    let len = bytes.len() as u64;
    let truncated = ParseError::Truncated {
        part: Part::Header,
        offset: 0,
        needed: HEADER_LEN as u64,
        len,
    };
    match bytes.first_chunk::<8>() {
        Some(magic) if *magic == MAGIC => {}
        // A nonempty prefix of the magic is a snapshot cut short.
        None if !bytes.is_empty() && MAGIC.starts_with(bytes) => return Err(truncated),
        _ => return Err(ParseError::NotASnapshot),
    }
    // The magic and the version word are where they are in every version.
    let version = u32_at(bytes, 8).ok_or(truncated)?;
    if version != VERSION {
        return Err(ParseError::UnsupportedVersion {
            found: version,
            supported: VERSION,
        });
    }
    let header = bytes.first_chunk::<HEADER_LEN>().ok_or(truncated)?;
    let stored = u32_at(header, 20).unwrap_or(0);
    let computed = checksum(&header[..20], &[]);
    if verify && computed != stored {
        return Err(ParseError::ChecksumMismatch {
            part: Part::Header,
            offset: 0,
            stored,
            computed,
        });
    }
    let flags = u32_at(header, 12).unwrap_or(0);
    if flags & !KNOWN_FLAGS != 0 {
        return Err(ParseError::UnsupportedFlags {
            found: flags,
            known: KNOWN_FLAGS,
        });
    }
    if u32_at(header, 16) != Some(0) {
        return Err(corrupt("reserved header word is not zero", 0, 16));
    }
    Ok(())
}

fn check_totals(recorded: &Totals, counted: &Totals) -> Result<(), ParseError> {
    for (what, recorded, counted) in [
        ("sections", recorded.sections, counted.sections),
        ("series", recorded.series, counted.series),
        ("blocks", recorded.blocks, counted.blocks),
        ("points", recorded.points, counted.points),
    ] {
        if recorded != counted {
            return Err(ParseError::TotalsMismatch {
                what,
                recorded,
                counted,
            });
        }
    }
    Ok(())
}

/// A verified snapshot over its bytes: its meta section, its totals, and
/// its series records in file order.
#[derive(Clone, Copy, Debug)]
pub struct Snapshot<'a> {
    bytes: &'a [u8],
    meta: Meta<'a>,
    totals: Totals,
}

impl<'a> Snapshot<'a> {
    /// Verifies the whole of `bytes` as a snapshot: header, version and
    /// flags, every section's checksum and bounds, every series record and
    /// block, the end section's totals, and that nothing follows it.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ParseError> {
        Self::walk(bytes, true)
    }

    /// Like [`Snapshot::parse`] but without computing checksums (the costly
    /// part): for bytes that `parse` accepted and that have stayed in
    /// memory since, so iterating over them does not checksum every byte
    /// twice. On other bytes it still checks every bound and the totals
    /// and never panics, but corruption that only a checksum sees passes.
    pub fn parse_skipping_checksums(bytes: &'a [u8]) -> Result<Self, ParseError> {
        Self::walk(bytes, false)
    }

    fn walk(bytes: &'a [u8], verify: bool) -> Result<Self, ParseError> {
        check_header(bytes, verify)?;
        let mut at = HEADER_LEN;
        let mut meta = None;
        let mut count = Count::default();
        loop {
            let section = count.totals.sections;
            let frame = read_frame(bytes, at, section, verify)?;
            let base = frame.payload_at;
            match frame.kind {
                section_kind::META if section == 0 => meta = Some(read_meta(frame.payload, base)?),
                section_kind::META => return Err(corrupt("a second meta section", at, 0)),
                _ if section == 0 => {
                    return Err(corrupt("first section is not the meta section", at, 0))
                }
                section_kind::SERIES => count_series(frame.payload, base, &mut count)?,
                section_kind::END => {
                    if frame.payload.len() != END_LEN {
                        return Err(corrupt("end section is not 32 bytes long", at, 0));
                    }
                    let field = |i: usize| u64_at(frame.payload, i * 8).unwrap_or(0);
                    let recorded = Totals {
                        series: field(0),
                        blocks: field(1),
                        points: field(2),
                        sections: field(3),
                    };
                    check_totals(&recorded, &count.totals)?;
                    if frame.next != bytes.len() {
                        return Err(corrupt("bytes after the end section", frame.next, 0));
                    }
                    let meta = meta.ok_or(corrupt("no meta section", HEADER_LEN, 0))?;
                    return Ok(Snapshot {
                        bytes,
                        meta,
                        totals: recorded,
                    });
                }
                kind if kind & section_kind::OPTIONAL != 0 => {}
                kind => {
                    return Err(ParseError::UnknownSection {
                        kind,
                        section,
                        offset: at as u64,
                    })
                }
            }
            count.totals.sections =
                section
                    .checked_add(1)
                    .ok_or(corrupt("section count overflows", at, 0))?;
            at = frame.next;
        }
    }

    /// The meta section.
    pub fn meta(&self) -> Meta<'a> {
        self.meta
    }

    /// The totals of the end section (which the file's contents matched).
    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// The snapshot's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The series records in file order. A series is one record or
    /// several consecutive records with the same id, its blocks in order
    /// across them.
    pub fn records(&self) -> Records<'a> {
        Records::new(self.bytes, HEADER_LEN)
    }
}

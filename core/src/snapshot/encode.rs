//! Writing the format's pieces into a caller's buffer: the one definition
//! of the byte layout that the runtime's writer and the tests share.

use super::{
    block_tag, checksum, EncodeError, Totals, END_LEN, FRAME_LEN, HEADER_LEN, KNOWN_FLAGS, MAGIC,
    META_FIELD_LEN, META_HEADER_LEN, RECORD_HEADER_LEN, VERSION,
};

/// One block to write: a series' points as two columns, or a block a codec
/// encoded, which the format carries as opaque bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block<'a> {
    /// Uncompressed points: `ts[i]` and `values[i]` are point `i`.
    Raw {
        /// Timestamps, as many as `values`.
        ts: &'a [i64],
        /// Values.
        values: &'a [u64],
    },
    /// A block encoded by a codec.
    Encoded {
        /// Points the block holds (>= 1), counted into the file's totals.
        points: u32,
        /// The codec's bytes.
        bytes: &'a [u8],
    },
}

fn fits_u32(what: &'static str, len: usize) -> Result<u32, EncodeError> {
    u32::try_from(len).map_err(|_| EncodeError::TooLarge {
        what,
        len,
        max: u32::MAX,
    })
}

fn room(out: &[u8], needed: usize) -> Result<(), EncodeError> {
    if out.len() < needed {
        Err(EncodeError::BufferTooSmall {
            needed,
            provided: out.len(),
        })
    } else {
        Ok(())
    }
}

impl Block<'_> {
    /// Points in the block, checked: the columns are equal, there is at
    /// least one point, and the count fits the format.
    pub fn points(&self) -> Result<u32, EncodeError> {
        let points = match *self {
            Block::Raw { ts, values } => {
                if ts.len() != values.len() {
                    return Err(EncodeError::ColumnsDiffer {
                        ts: ts.len(),
                        values: values.len(),
                    });
                }
                fits_u32("points in a block", ts.len())?
            }
            Block::Encoded { points, bytes } => {
                fits_u32("encoded block bytes", bytes.len())?;
                points
            }
        };
        if points == 0 {
            return Err(EncodeError::EmptyBlock);
        }
        Ok(points)
    }

    /// Bytes the block takes in a series record, header included.
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        let points = self.points()? as usize;
        let len = match *self {
            // 16 * (u32::MAX as usize) fits a 64-bit usize; on 32-bit
            // targets the checked form reports it.
            Block::Raw { .. } => points.checked_mul(16).and_then(|b| b.checked_add(8)),
            Block::Encoded { bytes, .. } => bytes.len().checked_add(12),
        };
        len.ok_or(EncodeError::TooLarge {
            what: "points in a block",
            len: points,
            max: u32::MAX,
        })
    }

    /// Writes the block (its header, then its points or bytes) at the
    /// start of `out`; returns the bytes written, [`Block::encoded_len`].
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let len = self.encoded_len()?;
        room(out, len)?;
        let points = self.points()?;
        let (head, body) = out[..len].split_at_mut(8);
        match *self {
            Block::Raw { ts, values } => {
                head[..4].copy_from_slice(&block_tag::RAW.to_le_bytes());
                head[4..].copy_from_slice(&points.to_le_bytes());
                let (ts_out, values_out) = body.split_at_mut(ts.len() * 8);
                let (ts_out, _) = ts_out.as_chunks_mut::<8>();
                for (o, t) in ts_out.iter_mut().zip(ts) {
                    *o = t.to_le_bytes();
                }
                let (values_out, _) = values_out.as_chunks_mut::<8>();
                for (o, v) in values_out.iter_mut().zip(values) {
                    *o = v.to_le_bytes();
                }
            }
            Block::Encoded { bytes, .. } => {
                head[..4].copy_from_slice(&block_tag::ENCODED.to_le_bytes());
                head[4..].copy_from_slice(&points.to_le_bytes());
                // `bytes.len()` fits a u32: `encoded_len` checked it.
                body[..4].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
                body[4..].copy_from_slice(bytes);
            }
        }
        Ok(len)
    }
}

/// The file header of a snapshot this crate writes (version [`VERSION`],
/// no flags).
pub fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&KNOWN_FLAGS.to_le_bytes());
    // 16..20 reserved, zero.
    let crc = checksum(&h[..20], &[]);
    h[20..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// The frame that goes before a section's `payload`: its kind, length and
/// the checksum of both and of the payload.
pub fn frame(kind: u32, payload: &[u8]) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[..4].copy_from_slice(&kind.to_le_bytes());
    f[4..12].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    let crc = checksum(&f[..12], payload);
    f[12..].copy_from_slice(&crc.to_le_bytes());
    f
}

/// Bytes of a meta section's payload with `fields` fields.
pub fn meta_len(fields: usize) -> Result<usize, EncodeError> {
    fits_u32("meta fields", fields)?;
    fields
        .checked_mul(META_FIELD_LEN)
        .and_then(|f| f.checked_add(META_HEADER_LEN))
        .ok_or(EncodeError::TooLarge {
            what: "meta fields",
            len: fields,
            max: u32::MAX,
        })
}

/// Writes a meta section's payload at the start of `out`: the retention
/// floor, then `fields` as `(key, value)`, keys strictly ascending.
/// Returns the bytes written, [`meta_len`].
pub fn encode_meta(
    out: &mut [u8],
    retention_floor: i64,
    fields: &[(u32, u64)],
) -> Result<usize, EncodeError> {
    let len = meta_len(fields.len())?;
    for pair in fields.windows(2) {
        if pair[1].0 <= pair[0].0 {
            return Err(EncodeError::MetaKeysUnsorted { key: pair[1].0 });
        }
    }
    room(out, len)?;
    out[..8].copy_from_slice(&retention_floor.to_le_bytes());
    out[8..12].copy_from_slice(&(fields.len() as u32).to_le_bytes());
    let (slots, _) = out[META_HEADER_LEN..len].as_chunks_mut::<META_FIELD_LEN>();
    for (slot, &(key, value)) in slots.iter_mut().zip(fields) {
        slot[..4].copy_from_slice(&key.to_le_bytes());
        slot[4..].copy_from_slice(&value.to_le_bytes());
    }
    Ok(len)
}

/// The end section's payload: the file's totals.
pub fn encode_end(totals: &Totals) -> [u8; END_LEN] {
    let mut e = [0u8; END_LEN];
    e[..8].copy_from_slice(&totals.series.to_le_bytes());
    e[8..16].copy_from_slice(&totals.blocks.to_le_bytes());
    e[16..24].copy_from_slice(&totals.points.to_le_bytes());
    e[24..].copy_from_slice(&totals.sections.to_le_bytes());
    e
}

/// The header of a series record: the series id and how many blocks follow.
pub fn record_header(id: u32, blocks: u32) -> [u8; RECORD_HEADER_LEN] {
    let mut h = [0u8; RECORD_HEADER_LEN];
    h[..4].copy_from_slice(&id.to_le_bytes());
    h[4..].copy_from_slice(&blocks.to_le_bytes());
    h
}

/// Bytes of a series record holding `blocks`.
pub fn series_len(blocks: &[Block<'_>]) -> Result<usize, EncodeError> {
    fits_u32("blocks in a record", blocks.len())?;
    let mut len = RECORD_HEADER_LEN;
    for b in blocks {
        len = len
            .checked_add(b.encoded_len()?)
            .ok_or(EncodeError::TooLarge {
                what: "blocks in a record",
                len: blocks.len(),
                max: u32::MAX,
            })?;
    }
    Ok(len)
}

/// Writes a whole series record (series `id`, then `blocks` in order) at
/// the start of `out`; returns the bytes written, [`series_len`]. Nothing
/// is written when an error is returned.
pub fn encode_series(out: &mut [u8], id: u32, blocks: &[Block<'_>]) -> Result<usize, EncodeError> {
    let len = series_len(blocks)?;
    room(out, len)?;
    // `series_len` checked the count.
    out[..RECORD_HEADER_LEN].copy_from_slice(&record_header(id, blocks.len() as u32));
    let mut at = RECORD_HEADER_LEN;
    for b in blocks {
        at += b.encode(&mut out[at..])?;
    }
    Ok(len)
}

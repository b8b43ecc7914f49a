//! Iterating over a verified [`Snapshot`](super::Snapshot): its series
//! records in file order, and each record's blocks. The parser verified
//! every byte they read, so they meet no error (one would end the
//! iteration rather than panic).

use super::parse::{read_block, read_frame, read_record_header};
use super::{section_kind, StoredBlock};

/// The series records of a [`Snapshot`](super::Snapshot), in file order.
#[derive(Clone, Debug)]
pub struct Records<'a> {
    bytes: &'a [u8],
    /// The next section's frame.
    at: usize,
    /// The series section being read.
    payload: &'a [u8],
    payload_at: usize,
    /// The next record in `payload`.
    record_at: usize,
}

impl<'a> Records<'a> {
    /// The records of the snapshot `bytes`, whose first section is at `at`.
    pub(super) fn new(bytes: &'a [u8], at: usize) -> Self {
        Records {
            bytes,
            at,
            payload: &[],
            payload_at: 0,
            record_at: 0,
        }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = SeriesRecord<'a>;

    fn next(&mut self) -> Option<SeriesRecord<'a>> {
        // The snapshot was verified: an error here cannot happen, and would
        // end the iteration rather than panic.
        while self.record_at >= self.payload.len() {
            let frame = read_frame(self.bytes, self.at, 0, false).ok()?;
            match frame.kind {
                section_kind::END => {
                    self.at = self.bytes.len();
                    return None;
                }
                section_kind::SERIES => {
                    self.payload = frame.payload;
                    self.payload_at = frame.payload_at;
                    self.record_at = 0;
                }
                _ => {}
            }
            self.at = frame.next;
        }
        let (id, blocks, start) =
            read_record_header(self.payload, self.record_at, self.payload_at).ok()?;
        let mut end = start;
        for _ in 0..blocks {
            end = read_block(self.payload, end, self.payload_at).ok()?.1;
        }
        self.record_at = end;
        Some(SeriesRecord {
            id,
            blocks: Blocks {
                bytes: self.payload.get(start..end)?,
                base: self.payload_at + start,
                at: 0,
                left: blocks,
            },
        })
    }
}

/// One series record: a series id and blocks of it, in time order.
#[derive(Clone, Debug)]
pub struct SeriesRecord<'a> {
    /// The series.
    pub id: u32,
    /// Its blocks in this record.
    pub blocks: Blocks<'a>,
}

/// The blocks of a [`SeriesRecord`].
#[derive(Clone, Debug)]
pub struct Blocks<'a> {
    bytes: &'a [u8],
    base: usize,
    at: usize,
    left: u32,
}

impl<'a> Iterator for Blocks<'a> {
    type Item = StoredBlock<'a>;

    fn next(&mut self) -> Option<StoredBlock<'a>> {
        if self.left == 0 {
            return None;
        }
        match read_block(self.bytes, self.at, self.base) {
            Ok((block, next)) => {
                self.at = next;
                self.left -= 1;
                Some(block)
            }
            Err(_) => {
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left as usize))
    }
}

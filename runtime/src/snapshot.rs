//! Snapshot files: writing an index's series to a file and reading one
//! back, in the format of [`numatree_core::snapshot`] (which defines every
//! byte; this module adds files, buffering and crash safety).
//!
//! # Crash safety
//! A snapshot at `path` is replaced whole or not at all:
//! 1. [`SnapshotWriter::create`] writes to a temporary file next to `path`
//!    (`<name>.tmp-<pid>-<n>`, same directory, so the rename below stays
//!    within one file system), in sections of about 1 MiB, each written
//!    with one `write` call.
//! 2. [`SnapshotWriter::finish`] writes the end section, `fsync`s the
//!    temporary file (its data reach the disk before its name does),
//!    renames it over `path` (atomic: a reader or a crash sees the old file
//!    or the new one), then `fsync`s the directory so the rename itself is
//!    durable.
//! 3. A writer dropped without `finish` (an error, a panic) removes its
//!    temporary file; `path` is never touched. A process killed while
//!    writing leaves `path` as it was and a stale temporary file, which
//!    nothing reads (a later `create` does not remove it: it may be another
//!    live process's).
//!
//! [`read`] reads the whole file and verifies all of it (every checksum and
//! bound, the totals) before it returns anything: a torn, truncated or
//! foreign file is an error, never a partial snapshot.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::iter::Peekable;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use numatree_core::snapshot::{
    self as format, section_kind, Blocks, EncodeError, ParseError, SeriesRecord, Totals, FRAME_LEN,
    RECORD_HEADER_LEN, SECTION_TARGET,
};

pub(crate) use numatree_core::snapshot::{Block as SnapBlock, StoredBlock};

/// Why a snapshot could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The file system refused an operation on a snapshot file (or its
    /// temporary file, or its directory).
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `"create the temporary snapshot file"`.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },

    /// The file is not a snapshot this version reads, or it is damaged:
    /// nothing of it was used. The message names what is wrong and where.
    #[error("snapshot {}: {source}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        #[source]
        source: ParseError,
    },

    /// The file is a whole, well-formed snapshot, but what it holds cannot
    /// be an index: a block that does not decode, points out of order, a
    /// series twice. Nothing of it was used.
    #[error("snapshot {}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        reason: String,
    },

    /// A series' blocks cannot be written in the format (empty block,
    /// columns of different lengths, a count past a field's limit). The
    /// snapshot being written is unchanged by the refused call.
    #[error("cannot write series {series} to snapshot {}: {source}", path.display())]
    Encode {
        /// The snapshot being written.
        path: PathBuf,
        /// The series.
        series: u32,
        /// What the format cannot hold.
        #[source]
        source: EncodeError,
    },
}

/// Index-wide facts stored in a snapshot's meta section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Points before this timestamp were dropped (retention); `i64::MIN`
    /// when nothing was.
    pub(crate) retention_floor: i64,
    /// Free-form fields by key ([`format::meta_key`]: points, series).
    pub(crate) fields: BTreeMap<u32, u64>,
}

impl Default for Meta {
    fn default() -> Self {
        Meta {
            retention_floor: i64::MIN,
            fields: BTreeMap::new(),
        }
    }
}

/// What a finished snapshot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WriteStats {
    /// Series, blocks, points and sections written.
    pub(crate) totals: Totals,
    /// Bytes of the file.
    pub(crate) bytes: u64,
}

fn io_error<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> SnapshotError + 'p {
    move |source| SnapshotError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Makes each temporary file name of this process unique.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes one snapshot: [`create`](Self::create), [`series`](Self::series)
/// for each series, [`finish`](Self::finish). Dropped before `finish`, it
/// removes its temporary file and leaves `path` as it was.
pub(crate) struct SnapshotWriter {
    path: PathBuf,
    tmp: PathBuf,
    file: File,
    /// The series section being filled: `FRAME_LEN` bytes for its frame,
    /// then its payload.
    section: Vec<u8>,
    totals: Totals,
    /// The id of the last series written: a call with the same id adds
    /// blocks to that series.
    last_id: Option<u32>,
    /// Bytes written to the file so far.
    bytes: u64,
    /// Renamed over `path`: nothing to remove on drop.
    done: bool,
}

impl SnapshotWriter {
    /// Starts a snapshot that [`finish`](Self::finish) will put at `path`:
    /// creates the temporary file next to it and writes the header and the
    /// meta section.
    pub(crate) fn create(path: &Path, meta: &Meta) -> Result<Self, SnapshotError> {
        let name = path.file_name().ok_or_else(|| SnapshotError::Io {
            op: "create a snapshot at",
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"),
        })?;
        let mut tmp_name = name.to_os_string();
        tmp_name.push(format!(
            ".tmp-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let tmp = path.with_file_name(tmp_name);
        // The name is this process's alone; a stale file of that name (a
        // killed process whose pid was reused) is overwritten.
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io_error("create the temporary snapshot file", &tmp))?;
        let mut writer = SnapshotWriter {
            path: path.to_path_buf(),
            tmp,
            file,
            section: Vec::with_capacity(FRAME_LEN + SECTION_TARGET + (64 << 10)),
            totals: Totals {
                sections: 1,
                ..Totals::default()
            },
            last_id: None,
            bytes: 0,
            done: false,
        };
        let fields: Vec<(u32, u64)> = meta.fields.iter().map(|(&k, &v)| (k, v)).collect();
        let mut start = format::header().to_vec();
        let meta_at = start.len() + FRAME_LEN;
        // Keys come from a map (ascending, unique) and the count from
        // memory: neither can fail, but report it if it does.
        let meta_len = format::meta_len(fields.len()).map_err(|e| writer.encode_error(0, e))?;
        start.resize(meta_at + meta_len, 0);
        format::encode_meta(&mut start[meta_at..], meta.retention_floor, &fields)
            .map_err(|e| writer.encode_error(0, e))?;
        let frame = format::frame(section_kind::META, &start[meta_at..]);
        start[meta_at - FRAME_LEN..meta_at].copy_from_slice(&frame);
        writer.write(&start)?;
        writer.section.resize(FRAME_LEN, 0);
        Ok(writer)
    }

    fn encode_error(&self, series: u32, source: EncodeError) -> SnapshotError {
        SnapshotError::Encode {
            path: self.path.clone(),
            series,
            source,
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        self.file
            .write_all(bytes)
            .map_err(io_error("write the temporary snapshot file", &self.tmp))?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    fn payload_len(&self) -> usize {
        self.section.len() - FRAME_LEN
    }

    /// Writes the section being filled, if it holds anything.
    fn flush_section(&mut self) -> Result<(), SnapshotError> {
        if self.payload_len() == 0 {
            return Ok(());
        }
        let frame = format::frame(section_kind::SERIES, &self.section[FRAME_LEN..]);
        self.section[..FRAME_LEN].copy_from_slice(&frame);
        let section = std::mem::take(&mut self.section);
        let written = self.write(&section);
        self.section = section;
        self.section.truncate(FRAME_LEN);
        written?;
        self.totals.sections += 1;
        Ok(())
    }

    /// Adds series `id` with `blocks` (in time order) to the snapshot. A
    /// call with the id of the call before adds blocks to that series. A
    /// series larger than a section is split at block boundaries over
    /// consecutive records. Refused blocks ([`SnapshotError::Encode`])
    /// leave the snapshot as it was.
    pub(crate) fn series(
        &mut self,
        id: u32,
        blocks: &[SnapBlock<'_>],
    ) -> Result<(), SnapshotError> {
        let mut points = 0u64;
        for b in blocks {
            points += u64::from(b.points().map_err(|e| self.encode_error(id, e))?);
            b.encoded_len().map_err(|e| self.encode_error(id, e))?;
        }
        // The open record: where its header is, and its blocks so far.
        let mut record: Option<(usize, u32)> = None;
        for b in blocks {
            let len = b.encoded_len().map_err(|e| self.encode_error(id, e))?;
            let need = len
                + if record.is_none() {
                    RECORD_HEADER_LEN
                } else {
                    0
                };
            let full = self.payload_len() > 0 && self.payload_len() + need > SECTION_TARGET;
            if full || record.is_some_and(|(_, n)| n == u32::MAX) {
                if let Some(r) = record.take() {
                    self.close_record(id, r);
                }
                if full {
                    self.flush_section()?;
                }
            }
            let r = record.get_or_insert_with(|| self.open_record());
            let at = self.section.len();
            self.section.resize(at + len, 0);
            // Checked above: cannot fail.
            b.encode(&mut self.section[at..])
                .map_err(|e| self.encode_error(id, e))?;
            r.1 += 1;
        }
        let record = record.unwrap_or_else(|| self.open_record());
        self.close_record(id, record);
        if self.last_id != Some(id) {
            self.totals.series += 1;
            self.last_id = Some(id);
        }
        self.totals.blocks += blocks.len() as u64;
        self.totals.points += points;
        if self.payload_len() >= SECTION_TARGET {
            self.flush_section()?;
        }
        Ok(())
    }

    fn open_record(&mut self) -> (usize, u32) {
        let at = self.section.len();
        self.section.resize(at + RECORD_HEADER_LEN, 0);
        (at, 0)
    }

    fn close_record(&mut self, id: u32, (at, blocks): (usize, u32)) {
        self.section[at..at + RECORD_HEADER_LEN]
            .copy_from_slice(&format::record_header(id, blocks));
    }

    /// Completes the snapshot: writes the last series section and the end
    /// section, `fsync`s the file, renames it over `path` and `fsync`s the
    /// directory. On an error, `path` is as it was (unless only the
    /// directory `fsync` failed: then the new snapshot is in place but may
    /// not survive a crash).
    pub(crate) fn finish(mut self) -> Result<WriteStats, SnapshotError> {
        self.flush_section()?;
        let end = format::encode_end(&self.totals);
        let mut tail = format::frame(section_kind::END, &end).to_vec();
        tail.extend_from_slice(&end);
        self.write(&tail)?;
        self.file
            .sync_all()
            .map_err(io_error("fsync the temporary snapshot file", &self.tmp))?;
        fs::rename(&self.tmp, &self.path)
            .map_err(io_error("rename the snapshot into", &self.path))?;
        self.done = true;
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error("fsync the directory", dir))?;
        Ok(WriteStats {
            totals: self.totals,
            bytes: self.bytes,
        })
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        if !self.done {
            // Best effort: an unremovable temporary file is only litter.
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// A snapshot read and verified in full.
#[derive(Debug)]
pub(crate) struct Snapshot {
    bytes: Vec<u8>,
    meta: Meta,
    totals: Totals,
}

/// Reads the snapshot at `path` and verifies all of it before returning.
pub(crate) fn read(path: &Path) -> Result<Snapshot, SnapshotError> {
    let bytes = fs::read(path).map_err(io_error("read the snapshot", path))?;
    let parsed = format::Snapshot::parse(&bytes).map_err(|source| SnapshotError::Format {
        path: path.to_path_buf(),
        source,
    })?;
    let meta = Meta {
        retention_floor: parsed.meta().retention_floor(),
        fields: parsed.meta().fields().collect(),
    };
    let totals = parsed.totals();
    Ok(Snapshot {
        bytes,
        meta,
        totals,
    })
}

impl Snapshot {
    /// The meta section.
    pub(crate) fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Series, blocks, points and sections in the file.
    pub(crate) fn totals(&self) -> Totals {
        self.totals
    }

    /// The series records in file order; consecutive records with one id
    /// are one series.
    pub(crate) fn records(&self) -> impl Iterator<Item = SeriesRecord<'_>> {
        // `read` verified these bytes, unchanged since: only the structure
        // is walked again, not the checksums, and it cannot fail.
        format::Snapshot::parse_skipping_checksums(&self.bytes)
            .ok()
            .into_iter()
            .flat_map(|s| s.records())
    }

    /// Calls `f` once per series, in file order, with the series' blocks in
    /// time order (across the records it was split into). Blocks `f` does
    /// not take are skipped.
    pub(crate) fn for_each_series(
        &self,
        mut f: impl FnMut(u32, &mut dyn Iterator<Item = StoredBlock<'_>>),
    ) {
        let mut records = self.records().peekable();
        while let Some(first) = records.next() {
            let mut blocks = SeriesBlocks {
                id: first.id,
                current: first.blocks,
                records: &mut records,
            };
            f(first.id, &mut blocks);
            blocks.for_each(drop);
        }
    }
}

/// A series' blocks across the consecutive records that hold it.
struct SeriesBlocks<'r, 'a, I: Iterator<Item = SeriesRecord<'a>>> {
    id: u32,
    current: Blocks<'a>,
    records: &'r mut Peekable<I>,
}

impl<'a, I: Iterator<Item = SeriesRecord<'a>>> Iterator for SeriesBlocks<'_, 'a, I> {
    type Item = StoredBlock<'a>;

    fn next(&mut self) -> Option<StoredBlock<'a>> {
        loop {
            if let Some(b) = self.current.next() {
                return Some(b);
            }
            let id = self.id;
            self.current = self.records.next_if(|r| r.id == id)?.blocks;
        }
    }
}

#[cfg(test)]
mod tests;

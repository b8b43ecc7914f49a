//! Snapshots of a live index and restores from them: [`Index::snapshot`]
//! and [`Builder::restore`]. The file format is `numatree_core::snapshot`'s;
//! files, buffering and crash safety are `snapshot`'s; which points of a
//! shard go into a file, and how they come back, is `storage`'s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use numatree_core::snapshot::meta_key;

use crate::builder::Builder;
use crate::index::Index;
use crate::snapshot::{self, Meta, SnapshotError, SnapshotWriter};
use crate::sync::{lock, Mutex};
use crate::Error;

/// What [`Index::snapshot`] wrote, or [`Builder::restore`] read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Series in the file.
    pub series: usize,
    /// Points in the file.
    pub points: usize,
    /// Bytes of the file.
    pub bytes: u64,
    /// How long writing (or reading and restoring) took.
    pub elapsed: Duration,
}

impl SnapshotInfo {
    /// Raw point data (16 bytes a point) per second, in GB/s.
    pub fn gigabytes_per_second(&self) -> f64 {
        self.points as f64 * 16.0 / self.elapsed.as_secs_f64().max(1e-9) / 1e9
    }

    /// Points per second.
    pub fn points_per_second(&self) -> f64 {
        self.points as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl Index {
    /// Writes a consistent image of the index to `path`: every point merged
    /// before the call (call [`flush`](Self::flush) first to include
    /// everything writers sealed), each series as one version of it, never
    /// a torn point. Ingest, queries and retention go on meanwhile (the
    /// walk takes no lock); points merged during the walk may or may not
    /// be in it. Frozen blocks are written as they are (no re-encoding),
    /// hot blocks as raw columns.
    ///
    /// The file replaces `path` whole or not at all: it is written to a
    /// temporary file beside it, `fsync`ed, renamed over `path`, and the
    /// directory `fsync`ed; a crash or an error leaves the previous file.
    /// The format is versioned, with a checksum per section; the README
    /// documents it.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("numatree-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("index.snap");
    /// let index = numatree::Index::builder().build()?;
    /// let mut w = index.writer();
    /// for ts in 0..1_000 {
    ///     w.insert(7, ts, ts as u64 * 2)?;
    /// }
    /// drop(w);
    /// index.flush()?;
    /// let written = index.snapshot(&path)?;
    /// assert_eq!((written.series, written.points), (1, 1_000));
    ///
    /// let restored = numatree::Index::builder().restore(&path)?;
    /// assert_eq!(restored.len(), 1_000);
    /// assert_eq!(restored.get(7, 321), Some(642));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), numatree::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Snapshot`] when a file operation fails (naming the file and
    /// the operation).
    pub fn snapshot(&self, path: impl AsRef<Path>) -> Result<SnapshotInfo, Error> {
        let start = Instant::now();
        let path = path.as_ref();
        let shards = || self.pipelines().nodes.iter().flat_map(|n| n.shards.iter());
        // Every shard's points lie at or above its own floor.
        let floor = shards()
            .map(|s| s.storage.floor())
            .min()
            .unwrap_or(i64::MIN);
        // The points merged when the walk starts (the end section's totals
        // are what the file holds).
        let meta = Meta {
            retention_floor: floor,
            fields: BTreeMap::from([(meta_key::POINTS, self.len() as u64)]),
        };
        let mut writer = SnapshotWriter::create(path, &meta)?;
        let (mut series, mut points) = (0, 0);
        for shard in shards() {
            let written = shard.storage.write_snapshot(&mut writer)?;
            series += written.series;
            points += written.points;
        }
        let stats = writer.finish()?;
        Ok(SnapshotInfo {
            series,
            points,
            bytes: stats.bytes,
            elapsed: start.elapsed(),
        })
    }
}

impl Builder {
    /// Builds an index as [`build`](Self::build) does and fills it from the
    /// snapshot at `path` (written by [`Index::snapshot`], on this machine
    /// or another): each series goes to the node and shard this index's
    /// plan gives it, its blocks allocated by that node's merge threads.
    /// The snapshot's retention floor carries over. The whole file is read
    /// and verified first, and every block checked as it is installed: a
    /// truncated, corrupted or foreign file is an error naming what is
    /// wrong, never a partial index.
    ///
    /// # Errors
    /// [`Error::Snapshot`] for a file that cannot be read or is not a whole,
    /// valid snapshot; any error of [`build`](Self::build).
    pub fn restore(self, path: impl AsRef<Path>) -> Result<Index, Error> {
        let path = path.as_ref();
        let file = snapshot::read(path)?;
        let index = self.build()?;
        match fill(&index, &file, path) {
            Ok(()) => Ok(index),
            Err(e) => {
                // Never hand out a partial index.
                let _ = index.close();
                Err(e)
            }
        }
    }
}

/// Installs every series of `file` into `index`, each node's on its own
/// merge thread (so its blocks are placed on that node), nodes in
/// parallel.
fn fill(index: &Index, file: &snapshot::Snapshot, path: &Path) -> Result<(), Error> {
    let plan = index.plan();
    let floor = file.meta().retention_floor;
    let problem: Mutex<Option<String>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for node in &index.pipelines().nodes {
            let problem = &problem;
            scope.spawn(move || {
                node.on_merge_thread(&|| {
                    file.for_each_series(|id, blocks| {
                        let (n, s) = plan.route(id);
                        if n != node.index || lock(problem).is_some() {
                            return;
                        }
                        let shard = &node.shards[s];
                        if let Err(e) = shard.storage.install(id, blocks) {
                            lock(problem).get_or_insert(e);
                        }
                    });
                    for shard in &node.shards {
                        shard.storage.raise_floor(floor);
                    }
                });
            });
        }
    });
    let invalid = |reason: String| {
        Error::from(SnapshotError::Invalid {
            path: PathBuf::from(path),
            reason,
        })
    };
    if let Some(reason) = problem.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(invalid(reason));
    }
    let points = file.totals().points;
    if index.len() as u64 != points {
        return Err(invalid(format!(
            "{} points restored but the file holds {points}",
            index.len()
        )));
    }
    Ok(())
}

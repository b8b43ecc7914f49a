//! A shard's series as a snapshot writes them and a restore reads them
//! back: frozen blocks as their codec bytes (never re-encoded), hot blocks'
//! published points as raw columns.
//!
//! Writing walks the shard's directory once, pinned, with no lock: each
//! series is written as the version a reader would see when it is reached
//! (with each hot block's length as loaded then), so every point merged
//! before the walk began is in it, none torn. Restoring checks everything
//! a file could get wrong that its checksums cannot catch: every frozen
//! block decodes, holds at most a block's points, and points ascend
//! strictly across a series; a series appears once.

use numatree_core::{codec, BlockRead, Point};
use smallvec::SmallVec;

use super::block::{Block, MAX_POINTS};
use super::directory::DirectoryWriter;
use super::frozen::{self, Decoded};
use super::merge::Reserve;
use super::series::{BlockRef, Series, Stored};
use super::{Change, ShardStorage};
use crate::snapshot::{SnapBlock, SnapshotError, SnapshotWriter, StoredBlock};
use crate::sync::{lock, pin};

/// What a shard wrote to a snapshot.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Written {
    pub(crate) series: usize,
    pub(crate) points: usize,
}

impl ShardStorage {
    /// Writes every non-empty series of the shard to `out`.
    ///
    /// # Errors
    /// The writer's (an I/O error).
    pub(crate) fn write_snapshot(
        &self,
        out: &mut SnapshotWriter,
    ) -> Result<Written, SnapshotError> {
        let mut written = Written::default();
        let mut result = Ok(());
        let (mut ts, mut values) = (Vec::new(), Vec::new());
        self.directory.for_each(|id, series| {
            let series_blocks = series.blocks();
            if result.is_err() || series_blocks.is_empty() {
                return;
            }
            // The hot blocks' points, gathered from their atomic words.
            ts.clear();
            values.clear();
            let mut spans: SmallVec<[(usize, usize); 4]> = SmallVec::new();
            for b in &series_blocks {
                if let Stored::Hot(words) = &b.block {
                    let view = words.view();
                    let start = ts.len();
                    view.visit(0, view.len(), &mut |t, v| {
                        ts.push(t);
                        values.push(v);
                    });
                    spans.push((start, ts.len()));
                }
            }
            let mut spans = spans.into_iter();
            let mut blocks = Vec::with_capacity(series_blocks.len());
            for b in &series_blocks {
                match &b.block {
                    Stored::Hot(_) => {
                        let (start, end) = spans.next().expect("one span per hot block");
                        if end > start {
                            blocks.push(SnapBlock::Raw {
                                ts: &ts[start..end],
                                values: &values[start..end],
                            });
                        }
                    }
                    Stored::Frozen(bytes) => blocks.push(SnapBlock::Encoded {
                        points: frozen::frozen_points(bytes) as u32,
                        bytes: &bytes[..],
                    }),
                }
            }
            if blocks.is_empty() {
                return;
            }
            written.series += 1;
            written.points += blocks
                .iter()
                .map(|b| b.points().map_or(0, |p| p as usize))
                .sum::<usize>();
            result = out.series(id, &blocks);
        });
        result.map(|()| written)
    }

    /// Adds series `id` with `blocks` (in time order, from a verified
    /// snapshot file); returns its point count. With freezing on, every
    /// raw block but the newest is frozen.
    ///
    /// # Errors
    /// What is wrong with the blocks: the series is left out.
    pub(crate) fn install(
        &self,
        id: u32,
        blocks: &mut dyn Iterator<Item = StoredBlock<'_>>,
    ) -> Result<usize, String> {
        let mut reserve = lock(&self.reserve);
        let guard = pin();
        let mut directory = self.directory.writer(&guard);
        let installed =
            install_series(id, blocks, &mut reserve, &mut directory, self.config.freeze);
        // Every exit accounts, a failed one too: copying or freezing a
        // block may have started a reserved arena chunk.
        let change = installed.as_ref().map_or(Change::default(), |&(_, c)| c);
        self.account(&change);
        if let Ok((points, _)) = installed {
            self.count_points(points, 0);
        }
        drop(reserve);
        installed.map(|(points, _)| points)
    }
}

/// Builds series `id`'s version from `blocks` and publishes it; returns
/// its points and what it adds to the shard's footprint.
fn install_series(
    id: u32,
    blocks: &mut dyn Iterator<Item = StoredBlock<'_>>,
    reserve: &mut Reserve,
    directory: &mut DirectoryWriter<'_>,
    freeze: bool,
) -> Result<(usize, Change), String> {
    if directory.current(id, |s| s.is_some()) {
        return Err(format!("series {id} appears twice"));
    }
    let mut refs: SmallVec<[BlockRef; 1]> = SmallVec::new();
    let mut decoded = Decoded::new();
    for (i, b) in blocks.enumerate() {
        let (block, first_ts) = match b {
            StoredBlock::Raw(raw) => {
                if raw.len() > MAX_POINTS {
                    return Err(format!(
                        "series {id} block {i}: {} points, more than a block's {MAX_POINTS}",
                        raw.len()
                    ));
                }
                let points = raw.ts().zip(raw.values());
                let points = points.map(|(t, v)| Point::new(t, v));
                let words = Block::flat_of(reserve.encoder.arena(), points);
                let first = raw.ts().next().unwrap_or(i64::MIN);
                (Stored::Hot(words), first)
            }
            StoredBlock::Encoded { points, bytes } => {
                decoded
                    .try_fill(bytes)
                    .map_err(|e| format!("series {id} block {i}: {e}"))?;
                if decoded.len() != points as usize {
                    return Err(format!(
                        "series {id} block {i}: says {points} points but decodes to {}",
                        decoded.len()
                    ));
                }
                if bytes.len() > codec::max_encoded_len(decoded.len()) {
                    return Err(format!(
                        "series {id} block {i}: {} bytes, more than {} points encode to",
                        bytes.len(),
                        decoded.len()
                    ));
                }
                let first = decoded.all_columns().0.first().copied().unwrap_or(i64::MIN);
                (Stored::Frozen(reserve.encoder.copy(bytes)), first)
            }
        };
        refs.push(BlockRef { first_ts, block });
    }
    if freeze {
        let last = refs.len().saturating_sub(1);
        for r in &mut refs[..last] {
            if let Stored::Hot(words) = &r.block {
                let frozen = reserve.encoder.freeze(&words.view());
                r.block = Stored::Frozen(frozen);
            }
        }
    }
    let version = Series::from_blocks(refs, &mut reserve.encoder);
    let points = version
        .validate()
        .map_err(|e| format!("series {id}: {e}"))?;
    let mut change = Change::default();
    change.replace(None, version.footprint());
    change.grown += directory.publish(id, version);
    Ok((points, change))
}

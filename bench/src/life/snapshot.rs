//! Phase 4, snapshot: `Index::snapshot` of the gauge data to a file and
//! `Builder::restore` from it, freezing on and off, each timed end to end
//! and the restored index verified against the oracle. A snapshot is how
//! blocks outlive the process, so its speed (GB/s of raw point data,
//! against the issue's [`SNAPSHOT_GOAL_GBPS`]) and its file bytes per
//! point are reported; a restored index must hold every point it held.
//!
//! [`SNAPSHOT_GOAL_GBPS`]: super::SNAPSHOT_GOAL_GBPS

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use numatree::{Index, SnapshotInfo};
use numatree_core::Record;

use crate::config::{BenchConfig, Phase};
use crate::contender::Contender;
use crate::memory;
use crate::numatree_adapter::NumatreeContender;
use crate::oracle::Oracle;
use crate::phases::{metric, ms, Recorder};
use crate::verify::{self, Mismatches, Problem};
use crate::workload::Workload;

use super::{ctx, options, slices};

/// The file the snapshot phase writes for row `row`: in the temporary
/// directory, named with the process id (and the row), so concurrent runs
/// never share one.
pub fn snapshot_path(row: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "numatree-bench-{}-{}.snap",
        std::process::id(),
        row.replace('/', "-")
    ))
}

/// Removes its file when dropped: after a measurement, a failed snapshot
/// or restore, or a panic alike.
pub struct TempFile(pub PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One snapshot of an index and its restore.
pub struct SnapshotRound {
    /// What `Index::snapshot` reported, its `elapsed` the bench's own
    /// span around the call.
    pub written: SnapshotInfo,
    /// The file's size on disk once written.
    pub file_bytes: u64,
    /// `Builder::restore` end to end: the index built, the file read and
    /// verified, every block installed.
    pub restore: Duration,
    /// The restored index.
    pub restored: NumatreeContender,
}

impl SnapshotRound {
    /// The restore's figures in [`SnapshotInfo`]'s terms (the file's
    /// series, points and bytes, the restore's span).
    pub fn read(&self) -> SnapshotInfo {
        SnapshotInfo {
            elapsed: self.restore,
            ..self.written
        }
    }
}

/// Writes `c`'s index (flushed) to `path`, drops it, and restores a fresh
/// index with freezing `freeze` from `path`, timing both calls end to end.
/// The caller removes `path` (see [`TempFile`]).
///
/// # Errors
/// The snapshot's or the restore's error, or a file that cannot be
/// measured, described.
pub fn snapshot_and_restore(
    c: NumatreeContender,
    path: &Path,
    freeze: bool,
) -> Result<SnapshotRound, String> {
    c.index()
        .flush()
        .map_err(|e| format!("flush before the snapshot: {e}"))?;
    let start = Instant::now();
    let written = c
        .index()
        .snapshot(path)
        .map_err(|e| format!("snapshot to {}: {e}", path.display()))?;
    let span = start.elapsed();
    let written = SnapshotInfo {
        elapsed: span,
        ..written
    };
    let file_bytes = std::fs::metadata(path)
        .map_err(|e| format!("size of {}: {e}", path.display()))?
        .len();
    // Only the restored index in memory while restoring.
    drop(c);
    memory::reclaim();
    let start = Instant::now();
    let index = Index::builder()
        .freeze_blocks(freeze)
        .restore(path)
        .map_err(|e| format!("restore from {}: {e}", path.display()))?;
    let restore = start.elapsed();
    Ok(SnapshotRound {
        written,
        file_bytes,
        restore,
        restored: NumatreeContender::from_index(index),
    })
}

/// What a snapshot of the whole workload must say: every series with
/// points, every distinct key, and the size the file has on disk.
pub fn snapshot_checks(round: &SnapshotRound, oracle: &Oracle) -> Vec<Problem> {
    let w = &round.written;
    let series = (0..oracle.series())
        .filter(|&s| oracle.points(s) > 0)
        .count();
    let mut m = Mismatches::default();
    if w.points as u64 != oracle.distinct_keys() || w.series != series {
        m.record(|| {
            format!(
                "the snapshot holds {} points of {} series, the oracle {} of {series}",
                w.points,
                w.series,
                oracle.distinct_keys()
            )
        });
    }
    if w.bytes != round.file_bytes {
        m.record(|| {
            format!(
                "the snapshot says it wrote {} bytes, the file has {}",
                w.bytes, round.file_bytes
            )
        });
    }
    m.into_problem("snapshot-info").into_iter().collect()
}

/// One snapshot measurement: ingests the gauge workload into numatree with
/// freezing `freeze` (flushed), snapshots it to a file of its own, restores
/// from it, reports both and verifies the restored index against the
/// oracle (every point, as after any ingest). The file is removed
/// whatever happens.
pub(super) fn snapshot(
    rec: &mut Recorder<'_>,
    cfg: &BenchConfig,
    w: &Workload,
    parts: &[Vec<Record>],
    name: &str,
    freeze: bool,
    repeat: usize,
) {
    let oracle = w.oracle();
    let ctx = ctx(cfg, name, repeat);
    let c = NumatreeContender::with_freezing(freeze, &options(cfg, oracle));
    let t = c.ingest(&slices(parts), cfg.batch);
    let mut problems = verify::verify_timing(&t);
    let file = TempFile(snapshot_path(name));
    let round = snapshot_and_restore(c, &file.0, freeze);
    drop(file);
    let round = match round {
        Ok(r) => r,
        Err(e) => {
            problems.push(Problem {
                check: "snapshot".into(),
                mismatches: 1,
                examples: vec![e],
            });
            rec.problems(&ctx, Phase::Snapshot, problems);
            memory::reclaim();
            return;
        }
    };
    let (wr, rd) = (round.written, round.read());
    let restored = round
        .restored
        .block_bytes()
        .expect("numatree reports its blocks");
    let file_per_point = round.file_bytes as f64 / wr.points.max(1) as f64;
    let m = [
        (metric::KEYS, wr.points as f64),
        (metric::SNAPSHOT_FILE_BYTES, round.file_bytes as f64),
        (metric::SNAPSHOT_FILE_BYTES_PER_POINT, file_per_point),
        (metric::SNAPSHOT_MS, ms(wr.elapsed)),
        (metric::SNAPSHOT_GBPS, wr.gigabytes_per_second()),
        (metric::SNAPSHOT_MPOINTS, wr.points_per_second() / 1e6),
        (metric::RESTORE_MS, ms(rd.elapsed)),
        (metric::RESTORE_GBPS, rd.gigabytes_per_second()),
        (metric::RESTORE_MPOINTS, rd.points_per_second() / 1e6),
        (metric::REPORTED_BYTES_PER_POINT, restored.per_point()),
        (metric::FROZEN_SHARE, restored.frozen_share()),
    ];
    let note = format!(
        "snapshot {:.2} GB/s ({:.1} Mpoints/s, {:.0} ms), restore {:.2} GB/s \
         ({:.1} Mpoints/s, {:.0} ms), file {:.2} bytes/point",
        wr.gigabytes_per_second(),
        wr.points_per_second() / 1e6,
        ms(wr.elapsed),
        rd.gigabytes_per_second(),
        rd.points_per_second() / 1e6,
        ms(rd.elapsed),
        file_per_point
    );
    rec.sample(&ctx, Phase::Snapshot, &m, round.restored.extra(), note);
    problems.extend(snapshot_checks(&round, oracle));
    problems.extend(verify::verify_index(&round.restored, oracle));
    rec.problems(&ctx, Phase::Snapshot, problems);
    drop(round);
    memory::reclaim();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contender::BuildOptions;
    use crate::life::tests::{checks, gauge_workload};
    use crate::life::{FREEZE_CHECK_MIN_POINTS, FROZEN};
    use crate::workload::WorkloadConfig;

    #[test]
    fn a_wrong_value_planted_in_the_restored_index_is_caught() {
        // Enough points per series for blocks to freeze.
        let w = Workload::new(WorkloadConfig {
            points: 2 * FREEZE_CHECK_MIN_POINTS,
            ..gauge_workload().config().clone()
        })
        .unwrap();
        let o = w.oracle();
        let parts = w.partition(2);
        let opts = BuildOptions {
            writers: 2,
            series: o.series(),
            expected_records: o.records() as usize,
            reserved: false,
        };
        for freeze in [true, false] {
            let path = std::env::temp_dir().join(format!(
                "numatree-bench-test-{}-planted-{freeze}.snap",
                std::process::id()
            ));
            let file = TempFile(path.clone());
            let c = NumatreeContender::with_freezing(freeze, &opts);
            assert!(verify::verify_timing(&c.ingest(&slices(&parts), 64)).is_empty());
            let round = snapshot_and_restore(c, &path, freeze).unwrap();
            drop(file);
            assert!(!path.exists(), "the file is removed");
            let restored = &round.restored;
            let frozen = restored.block_bytes().unwrap().frozen_points;
            assert_eq!(frozen > 0, freeze, "{frozen} points frozen");
            assert!(snapshot_checks(&round, o).is_empty());
            assert!(verify::verify_index(restored, o).is_empty());
            // One gauge value one cent off, in a frozen block when freezing.
            let (s, i) = (3, 123);
            let ts = o.ts_of(i);
            let wrong = (f64::from_bits(o.value_at(s, i)) + 0.01).to_bits();
            let mut writer = restored.index().writer();
            writer.insert(s, ts, wrong).unwrap();
            drop(writer);
            restored.index().flush().unwrap();
            let problems = verify::verify_index(restored, o);
            assert_eq!(checks(&problems)[0], "scan-all", "{problems:?}");
            assert_eq!(problems[0].mismatches, 1, "{problems:?}");
            assert!(problems[0].examples[0].contains("series 3 record #123"));
        }
    }

    #[test]
    fn snapshot_checks_want_every_point_and_the_file_size() {
        let w = gauge_workload();
        let o = w.oracle();
        let round = |points: usize, bytes: u64, file_bytes: u64| SnapshotRound {
            written: SnapshotInfo {
                series: o.series() as usize,
                points,
                bytes,
                elapsed: Duration::from_millis(1),
            },
            file_bytes,
            restore: Duration::from_millis(2),
            restored: NumatreeContender::with_freezing(
                true,
                &BuildOptions {
                    writers: 1,
                    series: 1,
                    expected_records: 0,
                    reserved: false,
                },
            ),
        };
        let all = o.distinct_keys() as usize;
        assert!(snapshot_checks(&round(all, 100, 100), o).is_empty());
        let short = snapshot_checks(&round(all - 1, 100, 100), o);
        assert_eq!(checks(&short), ["snapshot-info"], "{short:?}");
        let size = snapshot_checks(&round(all, 100, 99), o);
        assert!(size[0].examples[0].contains("the file has 99"), "{size:?}");
        let r = round(all, 100, 100);
        assert_eq!(r.read().elapsed, Duration::from_millis(2));
        assert_eq!(r.read().points, all);
        assert!(snapshot_path(FROZEN)
            .to_string_lossy()
            .contains(&format!("-{}-numatree-frozen.snap", std::process::id())));
    }
}

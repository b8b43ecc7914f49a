//! The life of a block (issue 11): what numatree's frozen blocks cost and
//! save, measured once per run on the default shape's series and points,
//! every measurement verified against the oracle like every other phase.
//!
//! A block is born hot (16 bytes a point, writable), freezes (compressed by
//! `numatree_core::codec`) once it is no longer its series' newest, is read
//! frozen, and dies by retention. The phases follow it:
//!
//! - [`Phase::Compression`]: bytes per point overall, hot and frozen after
//!   ingesting gauge, counter and random values; checks that gauge data
//!   takes <= [`GAUGE_MAX_BYTES_PER_POINT`] and that random values do not
//!   grow when frozen (<= [`RANDOM_MAX_FROZEN_RATIO`] x 16 bytes).
//! - [`Phase::FreezeInsert`]: cold insert of gauge values with freezing on
//!   and off, in the same repeat.
//! - [`Phase::FrozenScan`]: scans of that gauge data, frozen and not, then
//!   the same scans on every queryable peer.
//! - [`Phase::Snapshot`]: `Index::snapshot` of that gauge data (freezing
//!   on, and off: raw blocks) to a file in the temporary directory, then
//!   `Builder::restore` from it, timed end to end (the build included);
//!   GB/s of raw point data (16 bytes a point), points/s and file bytes
//!   per point, the restored index verified against the oracle. The
//!   issue's goal, both faster than [`SNAPSHOT_GOAL_GBPS`] GB/s, is
//!   reported, not enforced.
//! - [`Phase::Retention`]: `drop_before` half of the time range while
//!   writers ingest newer points and readers query; bytes before and after.
//!
//! Rows are named `numatree/<variant>`; figures from numatree's own
//! statistics (`Stats::total`), peers' from the harness.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use numatree::{Index, SnapshotInfo};
use numatree_core::Record;
use rand::RngExt as _;

use crate::config::{
    BenchConfig, Phase, Shape, GAUGE_MAX_BYTES_PER_POINT, RANDOM_MAX_FROZEN_RATIO,
};
use crate::contender::{BuildOptions, Contender, ContenderFactory};
use crate::memory;
use crate::numatree_adapter::NumatreeContender;
use crate::oracle::{Oracle, ValueShape};
use crate::phases::{
    block_metrics, insert_metrics, metric, ms, per_us, run_scans, verify_state, Ctx, Recorder,
    RAW_POINT_BYTES,
};
use crate::progress::Planned;
use crate::registry::{CEILINGS, TARGET};
use crate::report::{Better, Summary, Target};
use crate::verify::{self, Mismatches, Problem};
use crate::workload::{stream_rng, Workload, WorkloadConfig};

/// Value shapes the compression phase measures, in report order.
pub const COMPRESSION_VALUES: [ValueShape; 3] =
    [ValueShape::Gauge, ValueShape::Counter, ValueShape::Random];

/// Row name of numatree with freezing on (gauge values unless named).
pub const FROZEN: &str = "numatree/frozen";
/// Row name of numatree with freezing off.
pub const HOT: &str = "numatree/hot";

/// The goal for snapshot and restore each: GB/s of raw point data
/// (16 bytes a point). Reported, not enforced.
pub const SNAPSHOT_GOAL_GBPS: f64 = 1.0;

/// Extra rounds, over the default shape's points, that the retention
/// phase's writers ingest after the drop starts: a quarter.
const RETENTION_EXTRA_DIVISOR: u64 = 4;

/// Points before a cut that a late point or a duplicate emitted after it
/// can still reach, besides `max_delay` (the generator re-emits one of a
/// series' last 16 points).
const RECENT_MARGIN: u64 = 17;

/// Points per series from which [`GAUGE_MAX_BYTES_PER_POINT`] applies to
/// all of numatree's bytes (the default shape's): with fewer, the hot
/// newest block of each series (16 bytes a point and its room to grow) is
/// a large share of the points, so smaller runs (`--quick`) check the
/// frozen blocks' bytes per point against it instead.
pub const GAUGE_CHECK_MIN_POINTS: u64 = 10_000;

/// Points per series from which some blocks must have frozen: a series
/// of a few hundred points may still fit its first, hot block.
pub const FREEZE_CHECK_MIN_POINTS: u64 = 1_000;

/// The row name of numatree on values `v` in the compression phase.
pub fn compression_row(v: ValueShape) -> String {
    format!("numatree/{}", v.name())
}

/// Whether `cfg` runs any block-life phase (they need numatree).
pub fn runs_any(cfg: &BenchConfig, factories: &[ContenderFactory]) -> bool {
    cfg.shape == Shape::Default
        && factories.iter().any(|f| f.name() == TARGET)
        && Phase::LIFE.iter().any(|&p| cfg.runs(p))
}

/// The peers the frozen-scan phase compares with: queryable, not numatree,
/// not a ceiling.
fn scan_peers(factories: &[ContenderFactory]) -> impl Iterator<Item = &ContenderFactory> {
    factories
        .iter()
        .filter(|f| f.caps().queries && f.name() != TARGET && !CEILINGS.contains(&f.name()))
}

/// The block-life workload: the default shape's with values `v`.
pub fn life_workload(cfg: &BenchConfig, v: ValueShape) -> WorkloadConfig {
    WorkloadConfig {
        values: v,
        ..cfg.workload.clone()
    }
}

/// Every block-life measurement of `cfg`, in run order, with its cost.
pub fn plan(cfg: &BenchConfig, factories: &[ContenderFactory], records: u64) -> Vec<Planned> {
    let mut plan = Vec::new();
    if !runs_any(cfg, factories) {
        return plan;
    }
    let records = records as f64;
    let threads = cfg.life_threads;
    let scanned = cfg.scans as f64 * cfg.scan_len.min(cfg.workload.points) as f64;
    let mut push = |contender: String, phase: Phase, cost: f64| {
        plan.push(Planned {
            shape: cfg.shape,
            threads,
            contender,
            phase,
            cost,
        })
    };
    if cfg.runs(Phase::Compression) {
        for v in COMPRESSION_VALUES {
            for _ in 0..cfg.repeat {
                push(compression_row(v), Phase::Compression, 2.0 * records);
            }
        }
    }
    let insert = cfg.runs(Phase::FreezeInsert);
    let scan = cfg.runs(Phase::FrozenScan);
    if insert || scan {
        for _ in 0..cfg.repeat {
            for name in [FROZEN, HOT] {
                if insert {
                    push(name.to_owned(), Phase::FreezeInsert, 2.0 * records);
                }
                if scan {
                    let cost = if insert {
                        scanned
                    } else {
                        scanned + 2.0 * records
                    };
                    push(name.to_owned(), Phase::FrozenScan, cost);
                }
            }
            if scan {
                for f in scan_peers(factories) {
                    push(
                        f.name().to_owned(),
                        Phase::FrozenScan,
                        scanned + 2.0 * records,
                    );
                }
            }
        }
    }
    if cfg.runs(Phase::Snapshot) {
        for _ in 0..cfg.repeat {
            for name in [FROZEN, HOT] {
                // Ingest, snapshot, restore, verify.
                push(name.to_owned(), Phase::Snapshot, 3.0 * records);
            }
        }
    }
    if cfg.runs(Phase::Retention) {
        for _ in 0..cfg.repeat {
            push(FROZEN.to_owned(), Phase::Retention, 3.0 * records);
        }
    }
    plan
}

/// Runs the block-life phases `cfg` selects (see the module docs).
pub(crate) fn run(rec: &mut Recorder<'_>, cfg: &BenchConfig, factories: &[ContenderFactory]) {
    if !runs_any(cfg, factories) {
        return;
    }
    let threads = cfg.life_threads;
    let mut gauge = None;
    if cfg.runs(Phase::Compression) {
        // One value shape's workload at a time: each is ~245 MB at default.
        for v in COMPRESSION_VALUES {
            let (w, parts) = generate(rec, cfg, v, threads);
            for repeat in 0..cfg.repeat {
                compression(rec, cfg, &w, &parts, v, repeat);
            }
            if v == ValueShape::Gauge {
                gauge = Some((w, parts));
            }
        }
    }
    if cfg.runs(Phase::FreezeInsert) || cfg.runs(Phase::FrozenScan) {
        let (w, parts) =
            &*gauge.get_or_insert_with(|| generate(rec, cfg, ValueShape::Gauge, threads));
        let scans = w.scans(crate::phases::scan_count(cfg), cfg.scan_len);
        for repeat in 0..cfg.repeat {
            freeze_and_scan(rec, cfg, factories, w, parts, &scans, repeat);
        }
    }
    if cfg.runs(Phase::Snapshot) {
        let (w, parts) =
            &*gauge.get_or_insert_with(|| generate(rec, cfg, ValueShape::Gauge, threads));
        for repeat in 0..cfg.repeat {
            for (name, freeze) in [(FROZEN, true), (HOT, false)] {
                snapshot(rec, cfg, w, parts, name, freeze, repeat);
            }
        }
    }
    drop(gauge);
    if cfg.runs(Phase::Retention) {
        let mut wc = life_workload(cfg, ValueShape::Gauge);
        // Round r emits point r of every series only without Zipf skew:
        // the cut between ingested and newer points needs that.
        wc.zipf = None;
        let base = wc.points;
        wc.points = base + (base / RETENTION_EXTRA_DIVISOR).max(1);
        let t0 = Instant::now();
        let w = match Workload::new(wc) {
            Ok(w) => w,
            Err(e) => {
                let ctx = ctx(cfg, FROZEN, 0);
                let problem = Problem {
                    check: "retention-workload".into(),
                    mismatches: 1,
                    examples: vec![e],
                };
                rec.problems(&ctx, Phase::Retention, vec![problem]);
                return;
            }
        };
        let (before, after) = w.partition_split(threads, base);
        rec.progress.line(&format!(
            "retention: gauge workload of {} points per series (the last {} ingested during the drop) in {:.0} ms",
            w.config().points,
            w.config().points - base,
            ms(t0.elapsed())
        ));
        for repeat in 0..cfg.repeat {
            retention(rec, cfg, &w, &before, &after, base, repeat);
        }
    }
}

fn ctx<'a>(cfg: &BenchConfig, contender: &'a str, repeat: usize) -> Ctx<'a> {
    Ctx {
        shape: cfg.shape,
        contender,
        threads: cfg.life_threads,
        repeat,
    }
}

fn generate(
    rec: &Recorder<'_>,
    cfg: &BenchConfig,
    v: ValueShape,
    threads: usize,
) -> (Workload, Vec<Vec<Record>>) {
    let t0 = Instant::now();
    let w = Workload::new(life_workload(cfg, v)).expect("validated with the default shape");
    let parts = w.partition(threads);
    rec.progress.line(&format!(
        "block life: {} workload, oracle and {threads} writer part(s) in {:.0} ms",
        v.name(),
        ms(t0.elapsed())
    ));
    (w, parts)
}

fn options(cfg: &BenchConfig, oracle: &Oracle) -> BuildOptions {
    BuildOptions {
        writers: cfg.life_threads,
        series: oracle.series(),
        expected_records: oracle.records() as usize,
        reserved: false,
    }
}

fn slices(parts: &[Vec<Record>]) -> Vec<&[Record]> {
    parts.iter().map(Vec::as_slice).collect()
}

/// Ingests values `v` with freezing on, reports bytes per point, verifies
/// every point and checks the compression targets.
fn compression(
    rec: &mut Recorder<'_>,
    cfg: &BenchConfig,
    w: &Workload,
    parts: &[Vec<Record>],
    v: ValueShape,
    repeat: usize,
) {
    let oracle = w.oracle();
    let row = compression_row(v);
    let ctx = ctx(cfg, &row, repeat);
    let c = NumatreeContender::with_freezing(true, &options(cfg, oracle));
    let t = c.ingest(&slices(parts), cfg.batch);
    let b = c.block_bytes().expect("numatree reports its blocks");
    let mut m = insert_metrics(oracle.records(), &t);
    m.extend(block_metrics(&b));
    m.push((metric::KEYS, b.points as f64));
    m.push((metric::RAW_RATIO, b.per_point() / RAW_POINT_BYTES));
    let note = format!(
        "{:.2} bytes/point ({:.2} hot, {:.2} frozen, {:.1}% of points frozen), {:.2} Mops/s",
        b.per_point(),
        b.hot_per_point(),
        b.frozen_per_point(),
        b.frozen_share() * 100.0,
        per_us(oracle.records() as f64, t.end_to_end)
    );
    rec.sample(&ctx, Phase::Compression, &m, c.extra(), note);
    let mut problems = verify::verify_timing(&t);
    problems.extend(verify::verify_index(&c, oracle));
    problems.extend(compression_checks(v, &b, w.config().points));
    rec.problems(&ctx, Phase::Compression, problems);
    drop(c);
    memory::reclaim();
}

/// The compression targets that fail the run: some points froze (from
/// [`FREEZE_CHECK_MIN_POINTS`] points per series); gauge data takes at
/// most [`GAUGE_MAX_BYTES_PER_POINT`] bytes a point overall (from
/// [`GAUGE_CHECK_MIN_POINTS`] points per series) or in its frozen blocks
/// (fewer); a frozen block of random values at most
/// [`RANDOM_MAX_FROZEN_RATIO`] x 16.
pub fn compression_checks(
    v: ValueShape,
    b: &crate::contender::BlockBytes,
    points_per_series: u64,
) -> Vec<Problem> {
    let whole = points_per_series >= GAUGE_CHECK_MIN_POINTS;
    let mut m = Mismatches::default();
    if b.frozen_points == 0 && points_per_series >= FREEZE_CHECK_MIN_POINTS {
        m.record(|| {
            format!(
                "no point froze: {} points, all in hot blocks, with freezing on",
                b.points
            )
        });
    }
    let gauge = if whole {
        b.per_point()
    } else {
        b.frozen_per_point()
    };
    if v == ValueShape::Gauge && gauge > GAUGE_MAX_BYTES_PER_POINT {
        m.record(|| {
            format!(
                "gauge values take {:.2} bytes/point overall ({:.2} hot, {:.2} frozen): \
                 the target is <= {GAUGE_MAX_BYTES_PER_POINT} {}",
                b.per_point(),
                b.hot_per_point(),
                b.frozen_per_point(),
                if whole {
                    "overall"
                } else {
                    "frozen (a small shape)"
                }
            )
        });
    }
    let random_max = RANDOM_MAX_FROZEN_RATIO * RAW_POINT_BYTES;
    if v == ValueShape::Random && b.frozen_per_point() > random_max {
        m.record(|| {
            format!(
                "frozen random values take {:.2} bytes/point: the limit is <= {random_max:.2} \
                 ({RANDOM_MAX_FROZEN_RATIO} x 16)",
                b.frozen_per_point()
            )
        });
    }
    m.into_problem("compression").into_iter().collect()
}

/// One repeat of the freeze-insert and frozen-scan phases: numatree with
/// freezing on, then off, each ingested (timed) and verified, then scanned;
/// then every peer ingests the same data and runs the same scans.
fn freeze_and_scan(
    rec: &mut Recorder<'_>,
    cfg: &BenchConfig,
    factories: &[ContenderFactory],
    w: &Workload,
    parts: &[Vec<Record>],
    scans: &[crate::workload::ScanQuery],
    repeat: usize,
) {
    let oracle = w.oracle();
    let parts = slices(parts);
    for (name, freeze) in [(FROZEN, true), (HOT, false)] {
        let ctx = ctx(cfg, name, repeat);
        let c = NumatreeContender::with_freezing(freeze, &options(cfg, oracle));
        let t = c.ingest(&parts, cfg.batch);
        let b = c.block_bytes().expect("numatree reports its blocks");
        if cfg.runs(Phase::FreezeInsert) {
            let mut m = insert_metrics(oracle.records(), &t);
            m.extend(block_metrics(&b));
            let note = format!(
                "{:.2} Mops/s end-to-end ({:.2} writer-only), {:.2} bytes/point",
                per_us(oracle.records() as f64, t.end_to_end),
                per_us(oracle.records() as f64, t.writer),
                b.per_point()
            );
            rec.sample(&ctx, Phase::FreezeInsert, &m, c.extra(), note);
        }
        let mut problems = verify::verify_timing(&t);
        problems.extend(verify::verify_index(&c, oracle));
        if freeze {
            problems.extend(compression_checks(ValueShape::Key, &b, oracle.points(0)));
        }
        // The ingest's problems belong to the insert measurement, or to
        // the scan one when only that runs.
        if cfg.runs(Phase::FreezeInsert) {
            rec.problems(&ctx, Phase::FreezeInsert, std::mem::take(&mut problems));
        }
        if cfg.runs(Phase::FrozenScan) {
            run_scans(rec, &c, &ctx, oracle, scans, Phase::FrozenScan, problems);
        }
        drop(c);
        memory::reclaim();
    }
    if !cfg.runs(Phase::FrozenScan) {
        return;
    }
    for f in scan_peers(factories) {
        let ctx = ctx(cfg, f.name(), repeat);
        let c = f.build(&options(cfg, oracle));
        let t = c.ingest(&parts, cfg.batch);
        let mut problems = verify::verify_timing(&t);
        problems.extend(verify_state(&*c, f, oracle, oracle.records()));
        run_scans(rec, &*c, &ctx, oracle, scans, Phase::FrozenScan, problems);
        drop(c);
        memory::reclaim();
    }
}

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
fn snapshot(
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

/// Readers' tally in the retention phase.
#[derive(Default)]
struct ReadTally {
    ops: u64,
    wrong: Mismatches,
}

/// Ingests the first `base` rounds, then drops the older half of them
/// while writers ingest the newer rounds and readers look up kept keys
/// (which must hold their values throughout) and, once the drop returned,
/// dropped keys (which must be gone); then verifies the whole index
/// against the oracle from the cutoff on.
fn retention(
    rec: &mut Recorder<'_>,
    cfg: &BenchConfig,
    w: &Workload,
    before: &[Vec<Record>],
    after: &[Vec<Record>],
    base: u64,
    repeat: usize,
) {
    let oracle = w.oracle();
    let ctx = ctx(cfg, FROZEN, repeat);
    let cutoff = oracle.ts_of(base / 2);
    let mut problems = Vec::new();
    // Every record ingested during the drop must be at or after the cutoff,
    // or the oracle could not say whether it is dropped.
    let mut early = Mismatches::default();
    for r in after.iter().flatten().filter(|r| r.key.ts < cutoff) {
        early.record(|| {
            format!(
                "record ({}, {}) of a round >= {base} is before the cutoff {cutoff}: \
                 more points per series needed",
                r.key.series, r.key.ts
            )
        });
    }
    problems.extend(early.into_problem("retention-workload"));

    let c = NumatreeContender::with_freezing(true, &options(cfg, oracle));
    let t0 = c.ingest(&slices(before), cfg.batch);
    problems.extend(verify::verify_timing(&t0));
    let at_start = c.block_bytes().expect("numatree reports its blocks");

    // Keys the readers look up: kept ones, whose final value is in before
    // the drop (points base/2.. up to the last ones a late point or a
    // duplicate ingested during the drop can still change), and dropped
    // ones (points 0..base/2).
    let mut rng = stream_rng(oracle.seed(), 0x5245_5445);
    let n = cfg.lookups.clamp(1, 1 << 20);
    let settled = base
        .saturating_sub(w.config().max_delay + RECENT_MARGIN)
        .max(base / 2 + 1);
    let kept: Vec<(u32, u64)> = (0..n)
        .map(|_| {
            let s = rng.random_range(0..oracle.series());
            (s, rng.random_range(base / 2..settled))
        })
        .collect();
    let dropped: Vec<(u32, u64)> = (0..n)
        .map(|_| {
            let s = rng.random_range(0..oracle.series());
            (s, rng.random_range(0..base / 2))
        })
        .collect();

    let readers = cfg.life_threads;
    let stop = AtomicBool::new(false);
    let drop_done = AtomicBool::new(false);
    let barrier = Barrier::new(readers + 2);
    let cr: &NumatreeContender = &c;
    let after_parts = slices(after);
    let (timing, drop_span, after_drop, tallies) = thread::scope(|sc| {
        let reader_handles: Vec<_> = (0..readers)
            .map(|i| {
                let (stop, drop_done, barrier) = (&stop, &drop_done, &barrier);
                let (kept, dropped) = (&kept, &dropped);
                sc.spawn(move || {
                    let mut t = ReadTally::default();
                    barrier.wait();
                    let mut k = i;
                    while !stop.load(Ordering::Acquire) {
                        let gone = drop_done.load(Ordering::Acquire);
                        let (s, p) = kept[k % kept.len()];
                        let ts = oracle.ts_of(p);
                        let want = oracle.value_at(s, p);
                        match cr.get(s, ts) {
                            Some(v) if v == want => {}
                            got => t.wrong.record(|| {
                                format!("get({s}, {ts}) = {got:?} during the drop, oracle {want:#x}")
                            }),
                        }
                        if gone {
                            let (s, p) = dropped[k % dropped.len()];
                            let ts = oracle.ts_of(p);
                            if let Some(v) = cr.get(s, ts) {
                                t.wrong.record(|| {
                                    format!(
                                        "get({s}, {ts}) = {v:#x} after drop_before({cutoff}) returned"
                                    )
                                });
                            }
                        }
                        t.ops += 1 + u64::from(gone);
                        k += readers;
                    }
                    t
                })
            })
            .collect();
        let dropper = {
            let (drop_done, barrier) = (&drop_done, &barrier);
            sc.spawn(move || {
                barrier.wait();
                let start = Instant::now();
                cr.index().drop_before(cutoff);
                let span = start.elapsed();
                let bytes = cr.block_bytes().expect("numatree reports its blocks");
                drop_done.store(true, Ordering::Release);
                (span, bytes)
            })
        };
        barrier.wait();
        let timing = cr.ingest(&after_parts, cfg.batch);
        let (span, bytes) = dropper.join().expect("drop thread panicked");
        // Readers check dropped keys for a while after the drop returned.
        thread::sleep(Duration::from_millis(20));
        stop.store(true, Ordering::Release);
        let tallies: Vec<ReadTally> = reader_handles
            .into_iter()
            .map(|h| h.join().expect("reader panicked"))
            .collect();
        (timing, span, bytes, tallies)
    });
    let at_end = c.block_bytes().expect("numatree reports its blocks");
    let mut reads = Mismatches::default();
    let ops: u64 = tallies.iter().map(|t| t.ops).sum();
    tallies.into_iter().for_each(|t| reads.absorb(t.wrong));
    problems.extend(reads.into_problem("retention-reads"));
    problems.extend(verify::verify_timing(&timing));
    problems.extend(verify::verify_index_from(&c, oracle, cutoff));
    let stats = c.index().stats().total;
    if let Err(e) = c.index().stats().verify_accounting() {
        problems.push(Problem {
            check: "accounting".into(),
            mismatches: 1,
            examples: vec![e.to_string()],
        });
    }
    // Every point before the cutoff was ingested (and merged) before the
    // drop: the workload check above guarantees none came later.
    let dropped_points = oracle.distinct_keys() - oracle.keys_from(cutoff);
    let freed = 1.0 - after_drop.bytes as f64 / at_start.bytes.max(1) as f64;
    // What the drop itself freed (the index counts it), whatever the
    // writers added meanwhile: the figure the target is about.
    let freed_by_drop = stats.retention_freed_bytes as f64 / at_start.bytes.max(1) as f64;
    let new_records: usize = after_parts.iter().map(|p| p.len()).sum();
    let m = [
        (metric::KEYS, at_start.points as f64),
        (metric::RETENTION_BYTES_BEFORE, at_start.bytes as f64),
        (metric::RETENTION_BYTES_AFTER_DROP, after_drop.bytes as f64),
        (metric::RETENTION_BYTES_AFTER, at_end.bytes as f64),
        (metric::RETENTION_FREED, freed_by_drop),
        (metric::RETENTION_NET_FREED, freed),
        (metric::REPORTED_BYTES_PER_POINT, at_start.per_point()),
        (metric::RETENTION_BPP_AFTER, at_end.per_point()),
        (metric::RETENTION_DROP_MS, ms(drop_span)),
        (
            metric::RETENTION_POINTS_DROPPED,
            stats.points_dropped as f64,
        ),
        (metric::RECORDS, new_records as f64),
        (
            metric::WRITER_MOPS,
            per_us(new_records as f64, timing.end_to_end),
        ),
        (metric::READER_OPS, ops as f64),
    ];
    let note = format!(
        "{:.1} -> {:.1} MiB ({:.1}% freed by the drop, {:.1}% net of the newer points merged \
         meanwhile; {:.1} MiB after the newer points), drop {:.1} ms, \
         {} points dropped (oracle {dropped_points}), writers {:.2} Mops/s",
        at_start.bytes as f64 / f64::from(1 << 20),
        after_drop.bytes as f64 / f64::from(1 << 20),
        freed_by_drop * 100.0,
        freed * 100.0,
        at_end.bytes as f64 / f64::from(1 << 20),
        ms(drop_span),
        stats.points_dropped,
        per_us(new_records as f64, timing.end_to_end)
    );
    if stats.points_dropped != dropped_points {
        problems.push(Problem {
            check: "points-dropped".into(),
            mismatches: 1,
            examples: vec![format!(
                "stats say {} points dropped, the oracle {dropped_points}",
                stats.points_dropped
            )],
        });
    }
    rec.sample(&ctx, Phase::Retention, &m, c.extra(), note);
    rec.problems(&ctx, Phase::Retention, problems);
    drop(c);
    memory::reclaim();
}

/// The block-life figures of `shape` against their goals (issue 11): the
/// two compression limits are enforced checks as well (see
/// [`compression_checks`]); the rest are reported.
pub fn targets(summary: &[Summary], shape: Shape) -> Vec<Target> {
    let median = |phase: Phase, row: &str, m: &str| {
        summary
            .iter()
            .find(|s| s.shape == shape && s.phase == phase && s.contender == row)
            .and_then(|s| s.metrics.get(m))
            .map(|s| s.median)
    };
    let mut out = Vec::new();
    let mut push = |phase, what: String, measured: Option<f64>, goal, better, enforced| {
        if let Some(measured) = measured.filter(|m| m.is_finite()) {
            out.push(Target {
                phase,
                what,
                measured,
                goal,
                better,
                enforced,
            });
        }
    };
    let gauge = compression_row(ValueShape::Gauge);
    push(
        Phase::Compression,
        format!(
            "gauge bytes/point overall (codec bench anchor: 1.37; checked overall from \
             {GAUGE_CHECK_MIN_POINTS} points per series, frozen blocks only below)"
        ),
        median(Phase::Compression, &gauge, metric::REPORTED_BYTES_PER_POINT),
        GAUGE_MAX_BYTES_PER_POINT,
        Better::Lower,
        true,
    );
    push(
        Phase::Compression,
        "random frozen bytes/point".into(),
        median(
            Phase::Compression,
            &compression_row(ValueShape::Random),
            metric::FROZEN_BYTES_PER_POINT,
        ),
        RANDOM_MAX_FROZEN_RATIO * RAW_POINT_BYTES,
        Better::Lower,
        true,
    );
    let ratio =
        |a: Option<f64>, b: Option<f64>| a.zip(b).filter(|(_, b)| *b > 0.0).map(|(a, b)| a / b);
    push(
        Phase::FreezeInsert,
        "insert Mops/s, freezing on / off".into(),
        ratio(
            median(Phase::FreezeInsert, FROZEN, metric::MOPS_E2E),
            median(Phase::FreezeInsert, HOT, metric::MOPS_E2E),
        ),
        0.9,
        Better::Higher,
        false,
    );
    let frozen_scan = median(Phase::FrozenScan, FROZEN, metric::MRECS);
    let best = summary
        .iter()
        .filter(|s| s.shape == shape && s.phase == Phase::FrozenScan)
        .filter(|s| !s.contender.starts_with("numatree"))
        .filter_map(|s| {
            s.metrics
                .get(metric::MRECS)
                .map(|m| (s.contender.clone(), m.median))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((name, best)) = best {
        push(
            Phase::FrozenScan,
            format!("scan Mrecords/s, numatree frozen / best peer ({name})"),
            ratio(frozen_scan, Some(best)),
            1.5,
            Better::Higher,
            false,
        );
    }
    push(
        Phase::FrozenScan,
        "scan Mrecords/s, numatree frozen / not frozen".into(),
        ratio(frozen_scan, median(Phase::FrozenScan, HOT, metric::MRECS)),
        1.0,
        Better::Higher,
        false,
    );
    for (row, blocks) in [(FROZEN, "freezing on"), (HOT, "freezing off, raw blocks")] {
        for (what, m) in [
            ("snapshot", metric::SNAPSHOT_GBPS),
            ("restore (end to end, build included)", metric::RESTORE_GBPS),
        ] {
            push(
                Phase::Snapshot,
                format!("{what} GB/s of raw point data (16 B/point), {blocks}"),
                median(Phase::Snapshot, row, m),
                SNAPSHOT_GOAL_GBPS,
                Better::Higher,
                false,
            );
        }
    }
    push(
        Phase::Retention,
        "share of bytes freed by dropping half the time range".into(),
        median(Phase::Retention, FROZEN, metric::RETENTION_FREED),
        0.45,
        Better::Higher,
        false,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contender::BlockBytes;
    use crate::peers::BTreeRwLock;
    use crate::planted::Planted;
    use crate::workload::WorkloadConfig;

    fn gauge_workload() -> Workload {
        Workload::new(WorkloadConfig {
            series: 16,
            points: 400,
            late_pct: 5.0,
            max_delay: 6,
            dup_pct: 5.0,
            values: ValueShape::Gauge,
            ..WorkloadConfig::default()
        })
        .unwrap()
    }

    fn checks(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.check.as_str()).collect()
    }

    #[test]
    fn a_gauge_value_one_cent_off_is_caught_by_the_full_check() {
        let w = gauge_workload();
        let parts = w.partition(2);
        let slices: Vec<&[Record]> = parts.iter().map(Vec::as_slice).collect();
        let honest = Planted::new("planted", |_: &mut Vec<Record>| {});
        honest.ingest(&slices, 64);
        assert!(verify::verify_index(&honest, w.oracle()).is_empty());
        let planted = Planted::new("planted", |p: &mut Vec<Record>| {
            let r = &mut p[100];
            r.value = (f64::from_bits(r.value) + 0.01).to_bits();
        });
        planted.ingest(&slices, 64);
        let problems = verify::verify_index(&planted, w.oracle());
        assert_eq!(checks(&problems)[0], "scan-all", "{problems:?}");
        assert_eq!(problems[0].mismatches, 1);
    }

    #[test]
    fn a_duplicate_that_kept_its_old_gauge_value_is_caught() {
        let w = gauge_workload();
        let o = w.oracle();
        let parts = w.partition(1);
        // The last record of a re-written key in the stream is its final
        // version; leaving it out leaves an older, different value.
        let (key, _) = o.rewritten_keys().next().expect("duplicates");
        let last = parts[0].iter().rposition(|r| r.key == key).unwrap();
        let earlier = parts[0][..last].iter().rfind(|r| r.key == key).unwrap();
        assert_ne!(
            earlier.value, parts[0][last].value,
            "a duplicate's value differs"
        );
        let planted = Planted::new("planted", move |p: &mut Vec<Record>| {
            p.remove(last);
        });
        planted.ingest(&[&parts[0]], 64);
        let problems = verify::verify_index(&planted, o);
        assert!(checks(&problems).contains(&"scan-all"), "{problems:?}");
        assert!(checks(&problems).contains(&"get-sample"), "{problems:?}");
    }

    #[test]
    fn retention_verification_wants_exactly_the_points_from_the_cutoff() {
        let w = gauge_workload();
        let o = w.oracle();
        let cutoff = o.ts_of(200);
        let parts = w.partition(1);
        let kept: Vec<Record> = parts[0]
            .iter()
            .copied()
            .filter(|r| r.key.ts >= cutoff)
            .collect();
        let honest = BTreeRwLock::default();
        honest.ingest(&[&kept], 64);
        assert!(verify::verify_index_from(&honest, o, cutoff).is_empty());
        // Everything kept: the dropped points are still there.
        let kept_all = BTreeRwLock::default();
        kept_all.ingest(&[&parts[0]], 64);
        let problems = verify::verify_index_from(&kept_all, o, cutoff);
        assert_eq!(checks(&problems)[..2], ["len", "scan-all"], "{problems:?}");
        assert!(checks(&problems).contains(&"get-sample"));
        // One point too many dropped.
        let rewritten: std::collections::HashSet<_> = o.rewritten_keys().map(|(k, _)| k).collect();
        let once = kept
            .iter()
            .position(|r| !rewritten.contains(&r.key))
            .unwrap();
        let mut short_of_one = kept.clone();
        short_of_one.remove(once);
        let short = BTreeRwLock::default();
        short.ingest(&[&short_of_one], 64);
        let problems = verify::verify_index_from(&short, o, cutoff);
        assert!(checks(&problems).contains(&"len"), "{problems:?}");
        assert!(checks(&problems).contains(&"scan-all"), "{problems:?}");
    }

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

    #[test]
    fn compression_checks_enforce_the_gauge_and_random_limits() {
        let b = |bytes, frozen_bytes| BlockBytes {
            bytes,
            points: 1_000,
            frozen_bytes,
            frozen_points: 900,
        };
        // 2,900 bytes over 1,000 points, 900 of them frozen in 1,300 bytes.
        let big = GAUGE_CHECK_MIN_POINTS;
        assert!(compression_checks(ValueShape::Gauge, &b(2_900, 1_300), big).is_empty());
        let over = compression_checks(ValueShape::Gauge, &b(3_100, 1_300), big);
        assert_eq!(over.len(), 1);
        assert!(over[0].examples[0].contains("3.10"), "{over:?}");
        // A small shape checks the frozen blocks only.
        assert!(compression_checks(ValueShape::Gauge, &b(9_000, 1_300), 1_000).is_empty());
        assert!(!compression_checks(ValueShape::Gauge, &b(9_000, 2_800), 1_000).is_empty());
        let random = |frozen| compression_checks(ValueShape::Random, &b(20_000, frozen), big);
        assert!(random(15_120).is_empty(), "16.8 bytes/point is the limit");
        assert!(!random(15_130).is_empty());
        let none_frozen = BlockBytes {
            frozen_bytes: 0,
            frozen_points: 0,
            ..b(1_000, 0)
        };
        let p = compression_checks(ValueShape::Counter, &none_frozen, 1_000);
        assert!(p[0].examples[0].contains("no point froze"), "{p:?}");
        assert!(compression_checks(ValueShape::Counter, &none_frozen, 999).is_empty());
    }
}

//! The measurement driver: for each shape (a section of the report), each
//! thread count, each repeat and each contender (interleaved, so drift hits
//! every contender alike) it builds fresh contenders, runs the phases,
//! verifies after each one and records a [`Sample`] per measurement. The
//! memory of each contender is measured once per shape, at its first thread
//! count, in an ingest of its own that is not timed (see [`crate::memory`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use numatree_core::Record;
use rand::RngExt as _;
use serde::Serialize;

use crate::config::{BenchConfig, Phase, Shape};
use crate::contender::{
    timed_threads, BlockBytes, BuildOptions, Contender, ContenderFactory, IngestTiming,
};
use crate::memory::{self, Window};
use crate::oracle::Oracle;
pub use crate::progress::Progress;
use crate::progress::{eta_text, EtaPoint, Planned};
use crate::verify::{self, Failure, Mismatches, Problem};
use crate::workload::{stream_rng, Lookup, ScanQuery, Workload, WorkloadConfig};

/// Every figure of one measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    /// The workload shape (report section).
    pub shape: Shape,
    /// The phase measured.
    pub phase: Phase,
    /// Contender name.
    pub contender: String,
    /// Thread count (writers, or readers for query phases; both for mixed).
    pub threads: usize,
    /// Repeat index, 0-based.
    pub repeat: usize,
    /// Named figures (see [`metric`] for names and units).
    pub metrics: BTreeMap<String, f64>,
    /// The contender's own statistics after the phase.
    pub extra: serde_json::Value,
}

/// Metric names used in [`Sample::metrics`].
pub mod metric {
    /// Records ingested, duplicates included.
    pub const RECORDS: &str = "records";
    /// Writer-only span, ms.
    pub const WRITER_MS: &str = "writer_ms";
    /// End-to-end span (until queryable), ms: the "total time" column.
    pub const TOTAL_MS: &str = "total_ms";
    /// Records per second end to end, millions.
    pub const MOPS_E2E: &str = "mops_e2e";
    /// Records per second until the last writer returned, millions.
    pub const MOPS_WRITER: &str = "mops_writer";
    /// Merge CPU over all ingest CPU, 0..=1 (contenders that report it).
    pub const MERGE_CPU: &str = "merge_cpu_ratio";
    /// Writer waits for buffer space.
    pub const WAITS: &str = "backpressure_waits";
    /// Failed buffer allocations (must be 0).
    pub const UNACCOUNTED: &str = "unaccounted_records";
    /// Queries issued.
    pub const QUERIES: &str = "queries";
    /// Queries for keys that exist.
    pub const PRESENT: &str = "present_queries";
    /// Present keys found.
    pub const HITS: &str = "hits";
    /// hits / present queries.
    pub const HIT_RATE: &str = "hit_rate";
    /// Absent keys that were (wrongly) found.
    pub const ABSENT_FOUND: &str = "absent_found";
    /// Phase span, ms.
    pub const MS: &str = "ms";
    /// Operations per second, millions.
    pub const MOPS: &str = "mops";
    /// Scans issued.
    pub const SCANS: &str = "scans";
    /// Records returned by all scans.
    pub const SCANNED: &str = "records_returned";
    /// Records per scan.
    pub const PER_SCAN: &str = "records_per_scan";
    /// Scans per second, thousands.
    pub const KOPS: &str = "kops";
    /// Scanned records per second, millions.
    pub const MRECS: &str = "mrecords_per_s";
    /// Mixed: writer records per second end to end, millions.
    pub const WRITER_MOPS: &str = "writer_mops";
    /// Mixed: reader lookups per second, millions.
    pub const READER_MOPS: &str = "reader_mops";
    /// Mixed: reader lookups issued.
    pub const READER_OPS: &str = "reader_ops";
    /// Mixed: reader lookups of already-ingested keys that missed.
    pub const READER_MISSES: &str = "reader_misses";
    /// Memory: distinct keys held (the workload's).
    pub const KEYS: &str = "keys";
    /// Memory: heap bytes live after the ingest, counted by the allocator,
    /// once the epoch collector freed what the contender retired.
    pub const LIVE_BYTES: &str = "live_bytes";
    /// Memory: bytes retired to the epoch collector and still allocated when
    /// the ingest returned, freed by [`settle`](crate::memory::settle).
    pub const RETIRED_BYTES: &str = "retired_bytes";
    /// Memory: retired bytes in MiB.
    pub const RETIRED_MIB: &str = "retired_mib";
    /// Memory: live bytes in MiB.
    pub const LIVE_MIB: &str = "live_mib";
    /// Memory: heap allocations live after the ingest.
    pub const LIVE_ALLOCATIONS: &str = "live_allocations";
    /// Memory: live bytes per distinct key.
    pub const BYTES_PER_POINT: &str = "bytes_per_point";
    /// Memory: bytes per point over [`RAW_POINT_BYTES`](super::RAW_POINT_BYTES).
    pub const RAW_RATIO: &str = "x_raw_point";
    /// Memory: bytes the contender's own statistics report, per distinct key.
    pub const REPORTED_BYTES_PER_POINT: &str = "reported_bytes_per_point";
    /// Bytes per point of hot (uncompressed) blocks and everything not
    /// frozen, from the contender's own statistics.
    pub const HOT_BYTES_PER_POINT: &str = "hot_bytes_per_point";
    /// Bytes per point of frozen (compressed) blocks, from the contender's
    /// own statistics.
    pub const FROZEN_BYTES_PER_POINT: &str = "frozen_bytes_per_point";
    /// Points in frozen blocks over all points, 0..=1.
    pub const FROZEN_SHARE: &str = "frozen_share";
    /// Bytes of the contender's data by its own statistics.
    pub const STATS_BYTES: &str = "stats_bytes";
    /// Retention: bytes of the index before `drop_before`.
    pub const RETENTION_BYTES_BEFORE: &str = "bytes_before";
    /// Retention: bytes when `drop_before` returned (newer points that
    /// writers ingested meanwhile included).
    pub const RETENTION_BYTES_AFTER_DROP: &str = "bytes_after_drop";
    /// Retention: bytes once the newer points are all merged.
    pub const RETENTION_BYTES_AFTER: &str = "bytes_after";
    /// Retention: bytes the drop freed (the index's own count,
    /// `retention_freed_bytes`) / bytes before, 0..=1: the target's figure.
    pub const RETENTION_FREED: &str = "freed";
    /// Retention: 1 - bytes when the drop returned / bytes before, 0..=1
    /// (newer points merged meanwhile count against it).
    pub const RETENTION_NET_FREED: &str = "net_freed";
    /// Retention: bytes per point at the end.
    pub const RETENTION_BPP_AFTER: &str = "bytes_per_point_after";
    /// Retention: how long `drop_before` took, ms.
    pub const RETENTION_DROP_MS: &str = "drop_ms";
    /// Retention: points the index says it dropped.
    pub const RETENTION_POINTS_DROPPED: &str = "points_dropped";
    /// Snapshot: bytes of the snapshot file.
    pub const SNAPSHOT_FILE_BYTES: &str = "snapshot_file_bytes";
    /// Snapshot: bytes of the snapshot file per point in it.
    pub const SNAPSHOT_FILE_BYTES_PER_POINT: &str = "snapshot_file_bytes_per_point";
    /// Snapshot: how long `Index::snapshot` took (file synced and renamed), ms.
    pub const SNAPSHOT_MS: &str = "snapshot_ms";
    /// Snapshot: raw point data (16 bytes a point) written per second, GB/s.
    pub const SNAPSHOT_GBPS: &str = "snapshot_gb_per_s";
    /// Snapshot: points written per second, millions.
    pub const SNAPSHOT_MPOINTS: &str = "snapshot_mpoints_per_s";
    /// Snapshot: how long `Builder::restore` took end to end (the index
    /// built, the file read and verified, every block installed), ms.
    pub const RESTORE_MS: &str = "restore_ms";
    /// Snapshot: raw point data (16 bytes a point) restored per second, GB/s.
    pub const RESTORE_GBPS: &str = "restore_gb_per_s";
    /// Snapshot: points restored per second, millions.
    pub const RESTORE_MPOINTS: &str = "restore_mpoints_per_s";
    /// Memory: bytes freed when the contender was dropped (close to
    /// `live_bytes` when the count is the contender's own).
    pub const FREED_ON_DROP: &str = "freed_on_drop_bytes";
}

/// The raw size of a point, `(ts: i64, value: u64)`, that memory is compared with.
pub const RAW_POINT_BYTES: f64 = 16.0;

/// One section of a run: a shape's workload and how it was measured.
#[derive(Clone, Debug, Serialize)]
pub struct ShapeOutcome {
    /// The shape.
    pub shape: Shape,
    /// Its workload.
    pub workload: WorkloadConfig,
    /// Thread counts measured.
    pub threads: Vec<usize>,
    /// Repeats of each measurement.
    pub repeat: usize,
    /// Phases run.
    pub phases: Vec<Phase>,
    /// Distinct keys of the workload.
    pub distinct_keys: u64,
    /// Records of the workload, duplicates included.
    pub records: u64,
}

/// Result of a run: every sample, every verification failure and each
/// contender's plan text.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Outcome {
    /// Every measurement.
    pub samples: Vec<Sample>,
    /// Every failed check.
    pub failures: Vec<Failure>,
    /// Placement plan per contender (those that print one).
    pub plans: BTreeMap<String, String>,
    /// The sections, in run order.
    pub shapes: Vec<ShapeOutcome>,
    /// Whole run, seconds.
    pub wall_s: f64,
    /// The estimate of the time left made after each measurement, with the
    /// time that was really left.
    pub eta: Vec<EtaPoint>,
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Millions per second of `n` in `d` (0 for an empty span).
pub(crate) fn per_us(n: f64, d: Duration) -> f64 {
    if d.is_zero() {
        0.0
    } else {
        n / d.as_secs_f64() / 1e6
    }
}

/// The data shared by every measurement of one thread count.
struct Round<'a> {
    oracle: &'a Oracle,
    threads: usize,
    parts: Vec<&'a [Record]>,
    prefix: Vec<&'a [Record]>,
    suffix: Vec<&'a [Record]>,
    mixed_keys: Vec<(u32, i64)>,
    lookups: &'a [Lookup],
    absent: &'a [Lookup],
    scans: &'a [ScanQuery],
}

/// Where a measurement belongs, for samples and failures.
pub(crate) struct Ctx<'a> {
    pub(crate) shape: Shape,
    pub(crate) contender: &'a str,
    pub(crate) threads: usize,
    pub(crate) repeat: usize,
}

/// Collects samples and failures and prints a line per measurement.
pub(crate) struct Recorder<'a> {
    pub(crate) cfg: &'a BenchConfig,
    pub(crate) progress: &'a Progress,
    pub(crate) out: Outcome,
    /// The line of the measurement being verified, printed once it is.
    pending: Option<String>,
}

impl Recorder<'_> {
    pub(crate) fn sample(
        &mut self,
        ctx: &Ctx<'_>,
        phase: Phase,
        metrics: &[(&str, f64)],
        extra: serde_json::Value,
        note: String,
    ) {
        let shape = match ctx.shape {
            Shape::Default => String::new(),
            s => format!("[{}] ", s.name()),
        };
        self.pending = Some(format!(
            "{shape}{:<13} {:<14} T={:<3} rep {}/{}: {note}",
            phase.name(),
            ctx.contender,
            ctx.threads,
            ctx.repeat + 1,
            self.cfg.repeat
        ));
        self.out.samples.push(Sample {
            shape: ctx.shape,
            phase,
            contender: ctx.contender.to_owned(),
            threads: ctx.threads,
            repeat: ctx.repeat,
            metrics: metrics.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            extra,
        });
    }

    /// Ends a measurement: records its verification problems and prints
    /// its line with the progress so far.
    pub(crate) fn problems(&mut self, ctx: &Ctx<'_>, phase: Phase, problems: Vec<Problem>) -> bool {
        let eta = self.progress.measured();
        if let Some(line) = self.pending.take() {
            self.progress.line(&format!(
                "{line} [{}/{} done, {} left]",
                eta.done,
                eta.planned,
                eta_text(eta.eta_s)
            ));
        }
        let clean = problems.is_empty();
        for problem in problems {
            let f = Failure {
                shape: ctx.shape.name().to_owned(),
                contender: ctx.contender.to_owned(),
                phase: phase.name().to_owned(),
                threads: ctx.threads,
                repeat: ctx.repeat,
                problem,
            };
            self.progress.line(&format!(
                "VERIFICATION FAILED: {}",
                f.to_string().trim_end()
            ));
            self.out.failures.push(f);
        }
        clean
    }
}

/// Bytes per point overall, hot and frozen, and the frozen share, from a
/// contender's own statistics.
pub(crate) fn block_metrics(b: &BlockBytes) -> [(&'static str, f64); 5] {
    [
        (metric::REPORTED_BYTES_PER_POINT, b.per_point()),
        (metric::HOT_BYTES_PER_POINT, b.hot_per_point()),
        (metric::FROZEN_BYTES_PER_POINT, b.frozen_per_point()),
        (metric::FROZEN_SHARE, b.frozen_share()),
        (metric::STATS_BYTES, b.bytes as f64),
    ]
}

pub(crate) fn insert_metrics(records: u64, t: &IngestTiming) -> Vec<(&'static str, f64)> {
    let mut m = vec![
        (metric::RECORDS, records as f64),
        (metric::WRITER_MS, ms(t.writer)),
        (metric::TOTAL_MS, ms(t.end_to_end)),
        (metric::MOPS_E2E, per_us(records as f64, t.end_to_end)),
        (metric::MOPS_WRITER, per_us(records as f64, t.writer)),
    ];
    m.extend(t.merge_cpu_ratio.map(|r| (metric::MERGE_CPU, r)));
    m.extend(t.backpressure_waits.map(|w| (metric::WAITS, w as f64)));
    m.extend(t.unaccounted.map(|a| (metric::UNACCOUNTED, a as f64)));
    m
}

pub(crate) fn verify_state(
    c: &dyn Contender,
    f: &ContenderFactory,
    oracle: &Oracle,
    records: u64,
) -> Vec<Problem> {
    if f.caps().queries {
        verify::verify_index(c, oracle)
    } else {
        verify::verify_count(c, records)
    }
}

/// Builds, ingests, records and verifies one insert measurement; returns the
/// contender for the query phases.
fn insert_phase(
    rec: &mut Recorder<'_>,
    round: &Round<'_>,
    f: &ContenderFactory,
    ctx: &Ctx<'_>,
    reserved: bool,
) -> Box<dyn Contender> {
    let phase = if reserved {
        Phase::InsertWarm
    } else {
        Phase::Insert
    };
    let records = round.oracle.records();
    let c = f.build(&BuildOptions {
        writers: round.threads,
        series: round.oracle.series(),
        expected_records: records as usize,
        reserved,
    });
    if let Some(plan) = c.plan() {
        rec.out.plans.entry(f.name().to_owned()).or_insert(plan);
    }
    let t = c.ingest(&round.parts, rec.cfg.batch);
    let m = insert_metrics(records, &t);
    let note = format!(
        "{:.1} ms end-to-end, {:.2} Mops/s ({:.2} writer-only)",
        ms(t.end_to_end),
        per_us(records as f64, t.end_to_end),
        per_us(records as f64, t.writer)
    );
    rec.sample(ctx, phase, &m, c.extra(), note);
    let mut problems = verify::verify_timing(&t);
    problems.extend(verify_state(&*c, f, round.oracle, records));
    rec.problems(ctx, phase, problems);
    c
}

/// Measures the memory a fresh contender holds after ingesting the
/// workload: an ingest of its own, untimed, with the allocation counter on
/// from building the contender until the ingest returned and the epoch
/// collector freed what it retired (see [`memory::settle`]); then the
/// contender is verified like any ingest and dropped with the counter on
/// again, to see that it gives back what was counted.
fn memory_phase(rec: &mut Recorder<'_>, round: &Round<'_>, f: &ContenderFactory, ctx: &Ctx<'_>) {
    let records = round.oracle.records();
    let keys = round.oracle.distinct_keys();
    // What earlier contenders retired must not be freed inside this window.
    if let Some(w) = Window::open() {
        memory::settle(Some(&w));
    }
    let window = Window::open();
    let c = f.build(&BuildOptions {
        writers: round.threads,
        series: round.oracle.series(),
        expected_records: records as usize,
        reserved: false,
    });
    let t = c.ingest(&round.parts, rec.cfg.batch);
    let retired = memory::settle(window.as_ref());
    let usage = window.as_ref().map(Window::usage);
    drop(window);
    let reported = c.reported_bytes();
    let blocks = c.block_bytes();
    let extra = c.extra();
    let mut problems = verify::verify_timing(&t);
    problems.extend(verify_state(&*c, f, round.oracle, records));
    let window = Window::open();
    drop(c);
    memory::settle(window.as_ref());
    let freed = window.as_ref().map(|w| -w.usage().bytes);
    drop(window);

    let per_point = |bytes: f64| bytes / keys.max(1) as f64;
    let mut m = vec![
        (metric::RECORDS, records as f64),
        (metric::KEYS, keys as f64),
    ];
    if let Some(u) = usage {
        let b = u.bytes as f64;
        m.extend([
            (metric::LIVE_BYTES, b),
            (metric::LIVE_MIB, b / f64::from(1 << 20)),
            (metric::LIVE_ALLOCATIONS, u.allocations as f64),
            (metric::BYTES_PER_POINT, per_point(b)),
            (metric::RAW_RATIO, per_point(b) / RAW_POINT_BYTES),
            (metric::RETIRED_BYTES, retired as f64),
            (metric::RETIRED_MIB, retired as f64 / f64::from(1 << 20)),
        ]);
    }
    m.extend(freed.map(|b| (metric::FREED_ON_DROP, b as f64)));
    m.extend(reported.map(|b| (metric::REPORTED_BYTES_PER_POINT, per_point(b as f64))));
    m.extend(blocks.map_or_else(Vec::new, |b| block_metrics(&b).to_vec()));
    let note = match usage {
        Some(u) => format!(
            "{:.1} MiB live in {} allocations ({:.1} MiB more retired until reclaimed), \
             {:.1} bytes/point ({:.2}x of 16)",
            u.bytes as f64 / f64::from(1 << 20),
            u.allocations,
            retired as f64 / f64::from(1 << 20),
            per_point(u.bytes as f64),
            per_point(u.bytes as f64) / RAW_POINT_BYTES
        ),
        None => "not measured: the counting allocator is not installed".to_owned(),
    };
    rec.sample(ctx, Phase::Memory, &m, extra, note);
    rec.problems(ctx, Phase::Memory, problems);
}

/// Tally of one lookup thread.
#[derive(Default)]
struct LookupTally {
    present: u64,
    hits: u64,
    absent_found: u64,
    wrong: Mismatches,
}

fn lookup_phase(c: &dyn Contender, keys: &[Lookup], threads: usize) -> (Duration, LookupTally) {
    let chunk = keys.len().div_ceil(threads).max(1);
    let (span, tallies) = timed_threads(threads, |i| {
        let mut t = LookupTally::default();
        for q in keys.chunks(chunk).nth(i).unwrap_or(&[]) {
            let got = c.get(q.series, q.ts);
            t.present += u64::from(q.expected.is_some());
            match (q.expected, got) {
                (Some(e), Some(v)) => {
                    t.hits += 1;
                    if v != e {
                        t.wrong.record(|| {
                            format!("get({}, {}) = {v:#x}, oracle {e:#x}", q.series, q.ts)
                        });
                    }
                }
                (None, None) => {}
                (Some(e), None) => {
                    t.wrong
                        .record(|| format!("get({}, {}) missed, oracle {e:#x}", q.series, q.ts));
                }
                (None, Some(v)) => {
                    t.absent_found += 1;
                    t.wrong.record(|| {
                        format!(
                            "get({}, {}) = {v:#x} for a key never written",
                            q.series, q.ts
                        )
                    });
                }
            }
        }
        t
    });
    let mut total = LookupTally::default();
    for t in tallies {
        total.present += t.present;
        total.hits += t.hits;
        total.absent_found += t.absent_found;
        total.wrong.absorb(t.wrong);
    }
    (span, total)
}

fn run_lookups(
    rec: &mut Recorder<'_>,
    c: &dyn Contender,
    ctx: &Ctx<'_>,
    keys: &[Lookup],
    phase: Phase,
) {
    let (span, t) = lookup_phase(c, keys, ctx.threads);
    let n = keys.len() as f64;
    let hit_rate = if t.present == 0 {
        1.0
    } else {
        t.hits as f64 / t.present as f64
    };
    let m = [
        (metric::QUERIES, n),
        (metric::PRESENT, t.present as f64),
        (metric::HITS, t.hits as f64),
        (metric::HIT_RATE, hit_rate),
        (metric::ABSENT_FOUND, t.absent_found as f64),
        (metric::MS, ms(span)),
        (metric::MOPS, per_us(n, span)),
    ];
    let note = format!(
        "{:.2} Mops/s, hits {}/{} present, {} absent found",
        per_us(n, span),
        t.hits,
        t.present,
        t.absent_found
    );
    rec.sample(ctx, phase, &m, c.extra(), note);
    let check = if phase == Phase::Lookup {
        "lookup"
    } else {
        "lookup-absent"
    };
    rec.problems(
        ctx,
        phase,
        t.wrong.into_problem(check).into_iter().collect(),
    );
}

/// How many scans to draw for a scan measurement: [`SCAN_POOL`] times
/// `--scans` when measurements run for a minimum time, so that the scans a
/// fast contender runs in that time are distinct (random ranges across the
/// whole data set, not the same few thousand again, whose data would stay
/// in cache); `--scans` when they run one pass.
pub(crate) fn scan_count(cfg: &BenchConfig) -> usize {
    if cfg.scan_min_time.is_zero() {
        cfg.scans
    } else {
        cfg.scans.saturating_mul(SCAN_POOL)
    }
}

/// See [`scan_count`].
const SCAN_POOL: usize = 32;

/// Runs `scans` on `c` over `ctx.threads` threads (thread `i` takes scans
/// `i`, `i + threads`, ...), each thread going on through its share until
/// it has run its part of the first `--scans` and `scan_min_time` has
/// passed (starting over if its share runs out first); every count is
/// checked against the oracle. Then, untimed, the results of the first
/// `--scans` scans are checked against `oracle` (count, range, order and
/// values). `problems` found earlier in the same measurement are reported
/// with it.
pub(crate) fn run_scans(
    rec: &mut Recorder<'_>,
    c: &dyn Contender,
    ctx: &Ctx<'_>,
    oracle: &Oracle,
    scans: &[ScanQuery],
    phase: Phase,
    mut problems: Vec<Problem>,
) {
    let cap = rec.cfg.scan_len as usize;
    let min_time = rec.cfg.scan_min_time;
    let checked = rec.cfg.scans.min(scans.len());
    let threads = ctx.threads.max(1);
    let least = checked.div_ceil(threads);
    let (span, tallies) = timed_threads(threads, |i| {
        let mut out = Vec::with_capacity(cap);
        let (mut records, mut done) = (0u64, 0usize);
        let mut wrong = Mismatches::default();
        let start = Instant::now();
        for q in scans.iter().skip(i).step_by(threads).cycle() {
            out.clear();
            let n = c.scan(q.series, q.t0, q.t1, &mut out) as u64;
            records += n;
            done += 1;
            if n != q.expected {
                wrong.record(|| {
                    format!(
                        "scan({}, {}..{}) returned {n}, oracle {}",
                        q.series, q.t0, q.t1, q.expected
                    )
                });
            }
            if done >= least && (min_time.is_zero() || start.elapsed() >= min_time) {
                break;
            }
        }
        (records, done, wrong)
    });
    let (mut records, mut done) = (0, 0);
    let mut wrong = Mismatches::default();
    for (r, d, w) in tallies {
        records += r;
        done += d;
        wrong.absorb(w);
    }
    // Untimed: every returned record must be in range, ascending, with its final value.
    let mut content = Mismatches::default();
    let mut out = Vec::with_capacity(cap);
    for q in &scans[..checked] {
        out.clear();
        c.scan(q.series, q.t0, q.t1, &mut out);
        let bad = out.iter().enumerate().find(|&(k, &(ts, v))| {
            ts < q.t0
                || ts >= q.t1
                || (k > 0 && out[k - 1].0 >= ts)
                || oracle.expected(q.series, ts) != Some(v)
        });
        if let Some((k, &(ts, v))) = bad {
            content.record(|| {
                format!(
                    "scan({}, {}..{}) record #{k} = (ts {ts}, value {v:#x}): out of range, out of order or not the oracle's {:?}",
                    q.series,
                    q.t0,
                    q.t1,
                    oracle.expected(q.series, ts)
                )
            });
        }
    }
    let n = done as f64;
    // What the contender says it holds (numatree's statistics), untimed.
    let reported = c
        .block_bytes()
        .map(|b| (metric::REPORTED_BYTES_PER_POINT, b.per_point()));
    let m: Vec<(&str, f64)> = [
        (metric::SCANS, n),
        (metric::SCANNED, records as f64),
        (
            metric::PER_SCAN,
            if n > 0.0 { records as f64 / n } else { 0.0 },
        ),
        (metric::MS, ms(span)),
        (metric::KOPS, per_us(n, span) * 1e3),
        (metric::MRECS, per_us(records as f64, span)),
    ]
    .into_iter()
    .chain(reported)
    .collect();
    let note = format!(
        "{:.1} Kops/s, {:.1} Mrecords/s, {records} records",
        per_us(n, span) * 1e3,
        per_us(records as f64, span)
    );
    rec.sample(ctx, phase, &m, c.extra(), note);
    problems.extend(wrong.into_problem("scan-count"));
    problems.extend(content.into_problem("scan-content"));
    rec.problems(ctx, phase, problems);
}

/// Writers ingest the second half of every part while `threads` readers look
/// up keys of the first half (ingested before timing), which must all hit.
fn run_mixed(rec: &mut Recorder<'_>, f: &ContenderFactory, ctx: &Ctx<'_>, round: &Round<'_>) {
    let records = round.oracle.records();
    let c = f.build(&BuildOptions {
        writers: round.threads,
        series: round.oracle.series(),
        expected_records: records as usize,
        reserved: false,
    });
    c.ingest(&round.prefix, rec.cfg.batch);
    let suffix_records: usize = round.suffix.iter().map(|p| p.len()).sum();
    let keys = &round.mixed_keys;
    let readers = ctx.threads;
    let chunk = keys.len().div_ceil(readers).max(1);
    let done = AtomicBool::new(false);
    let barrier = Barrier::new(readers + 1);
    let cr: &dyn Contender = &*c;
    let (timing, reads) = thread::scope(|sc| {
        let handles: Vec<_> = (0..readers)
            .map(|i| {
                let (done, barrier) = (&done, &barrier);
                let mine = keys.chunks(chunk).nth(i).unwrap_or(&[]);
                sc.spawn(move || {
                    let mut misses = Mismatches::default();
                    let mut ops = 0u64;
                    barrier.wait();
                    let start = Instant::now();
                    'outer: loop {
                        if mine.is_empty() {
                            break;
                        }
                        for block in mine.chunks(64) {
                            for &(s, ts) in block {
                                if cr.get(s, ts).is_none() {
                                    misses.record(|| {
                                        format!(
                                            "get({s}, {ts}) missed an ingested key during ingest"
                                        )
                                    });
                                }
                            }
                            ops += block.len() as u64;
                            if done.load(Ordering::Acquire) {
                                break 'outer;
                            }
                        }
                    }
                    (ops, start, Instant::now(), misses)
                })
            })
            .collect();
        barrier.wait();
        let timing = cr.ingest(&round.suffix, rec.cfg.batch);
        done.store(true, Ordering::Release);
        let reads: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("reader panicked"))
            .collect();
        (timing, reads)
    });
    let ops: u64 = reads.iter().map(|r| r.0).sum();
    let span = match (
        reads.iter().map(|r| r.1).min(),
        reads.iter().map(|r| r.2).max(),
    ) {
        (Some(s), Some(e)) => e.saturating_duration_since(s),
        _ => Duration::ZERO,
    };
    let mut misses = Mismatches::default();
    reads.into_iter().for_each(|r| misses.absorb(r.3));
    let m = [
        (metric::RECORDS, suffix_records as f64),
        (metric::TOTAL_MS, ms(timing.end_to_end)),
        (
            metric::WRITER_MOPS,
            per_us(suffix_records as f64, timing.end_to_end),
        ),
        (metric::READER_OPS, ops as f64),
        (metric::READER_MOPS, per_us(ops as f64, span)),
        (metric::READER_MISSES, misses.count as f64),
    ];
    let note = format!(
        "writers {:.2} Mops/s, readers {:.2} Mops/s, {} misses",
        per_us(suffix_records as f64, timing.end_to_end),
        per_us(ops as f64, span),
        misses.count
    );
    rec.sample(ctx, Phase::Mixed, &m, cr.extra(), note);
    let mut problems: Vec<Problem> = misses.into_problem("mixed-reads").into_iter().collect();
    problems.extend(verify::verify_timing(&timing));
    problems.extend(verify::verify_index(cr, round.oracle));
    rec.problems(ctx, Phase::Mixed, problems);
}

/// Keys the mixed-phase readers look up: drawn from the first half of the
/// writers' parts, so each is present before the readers start.
fn mixed_keys(prefix: &[&[Record]], n: usize, seed: u64) -> Vec<(u32, i64)> {
    let mut rng = stream_rng(seed, 0x4D49_5845);
    let nonempty: Vec<&[Record]> = prefix.iter().copied().filter(|p| !p.is_empty()).collect();
    if nonempty.is_empty() {
        return Vec::new();
    }
    (0..n)
        .map(|_| {
            let p = nonempty[rng.random_range(0..nonempty.len())];
            let r = p[rng.random_range(0..p.len())];
            (r.key.series, r.key.ts)
        })
        .collect()
}

/// Every measurement of one section (`cfg` is a [`BenchConfig::section`])
/// in run order, with its expected cost (records touched, verification
/// included).
pub fn plan(cfg: &BenchConfig, factories: &[ContenderFactory], records: u64) -> Vec<Planned> {
    let records = records as f64;
    let lookups = cfg.lookups as f64;
    let scanned = cfg.scans as f64 * cfg.scan_len.min(cfg.workload.points) as f64;
    let mut plan = Vec::new();
    for (i, &threads) in cfg.threads.iter().enumerate() {
        let mut push = |f: &ContenderFactory, phase: Phase, cost: f64| {
            plan.push(Planned {
                shape: cfg.shape,
                threads,
                contender: f.name().to_owned(),
                phase,
                cost,
            })
        };
        for _ in 0..cfg.repeat {
            for f in factories {
                let queries = f.caps().queries;
                let verified_ingest = if queries { 2.0 * records } else { records };
                push(f, Phase::Insert, verified_ingest);
                if queries {
                    for (phase, cost) in [
                        (Phase::Lookup, lookups),
                        (Phase::LookupAbsent, lookups),
                        (Phase::Scan, scanned / 2.0),
                    ] {
                        if cfg.runs(phase) {
                            push(f, phase, cost);
                        }
                    }
                }
                if cfg.runs(Phase::InsertWarm) && f.caps().reserved {
                    push(f, Phase::InsertWarm, verified_ingest);
                }
                if cfg.runs(Phase::Mixed) && queries {
                    push(f, Phase::Mixed, 2.0 * records + lookups);
                }
            }
        }
        if i == 0 && cfg.runs(Phase::Memory) {
            for f in factories {
                let verified_ingest = if f.caps().queries { 2.0 } else { 1.0 } * records;
                push(f, Phase::Memory, verified_ingest);
            }
        }
    }
    plan
}

/// Runs every configured shape and phase on every factory and verifies each result.
pub fn run(
    cfg: &BenchConfig,
    factories: &[ContenderFactory],
    progress: &Progress,
) -> Result<Outcome, String> {
    let started = Instant::now();
    let sections = cfg.sections();
    let mut workloads = Vec::with_capacity(sections.len());
    for section in &sections {
        let t0 = Instant::now();
        let w = Workload::new(section.workload.clone())?;
        progress.line(&format!(
            "{} shape: {} series x {} points, {} records ({} distinct keys), oracle in {:.0} ms",
            section.shape.name(),
            section.workload.series,
            section.workload.points,
            w.oracle().records(),
            w.oracle().distinct_keys(),
            ms(t0.elapsed())
        ));
        workloads.push(w);
    }
    let planned: Vec<Planned> = sections
        .iter()
        .zip(&workloads)
        .flat_map(|(section, w)| {
            let mut p = plan(section, factories, w.oracle().records());
            p.extend(crate::life::plan(section, factories, w.oracle().records()));
            p
        })
        .collect();
    let setups = sections.iter().map(|s| s.threads.len()).sum();
    progress.line(&format!(
        "{} measurements planned ({} shape(s) x their thread counts x repeats x {} contenders, their phases)",
        planned.len(),
        sections.len(),
        factories.len()
    ));
    progress.start(planned, setups);
    let mut rec = Recorder {
        cfg,
        progress,
        out: Outcome::default(),
        pending: None,
    };
    for (section, workload) in sections.iter().zip(&workloads) {
        rec.cfg = section;
        run_section(&mut rec, section, workload, factories);
    }
    rec.out.wall_s = started.elapsed().as_secs_f64();
    rec.out.eta = progress.finish();
    Ok(rec.out)
}

/// Runs one section: every thread count, repeat, contender and phase of
/// `cfg`, and the memory measurement at the first thread count.
fn run_section(
    rec: &mut Recorder<'_>,
    cfg: &BenchConfig,
    workload: &Workload,
    factories: &[ContenderFactory],
) {
    let progress = rec.progress;
    let oracle = workload.oracle();
    rec.out.shapes.push(ShapeOutcome {
        shape: cfg.shape,
        workload: cfg.workload.clone(),
        threads: cfg.threads.clone(),
        repeat: cfg.repeat,
        phases: Phase::ALL.into_iter().filter(|&p| cfg.runs(p)).collect(),
        distinct_keys: oracle.distinct_keys(),
        records: oracle.records(),
    });
    let lookups = workload.lookups(cfg.lookups, 0.0, 1);
    let absent = workload.lookups(cfg.lookups, cfg.absent_pct, 2);
    let scans = workload.scans(scan_count(cfg), cfg.scan_len);
    for (i, &threads) in cfg.threads.iter().enumerate() {
        let t0 = Instant::now();
        let parts = workload.partition(threads);
        progress.line(&format!(
            "{} shape: generated {threads} writer part(s) in {:.0} ms",
            cfg.shape.name(),
            ms(t0.elapsed())
        ));
        let slices: Vec<&[Record]> = parts.iter().map(Vec::as_slice).collect();
        let prefix: Vec<&[Record]> = slices.iter().map(|p| &p[..p.len() / 2]).collect();
        let suffix: Vec<&[Record]> = slices.iter().map(|p| &p[p.len() / 2..]).collect();
        let mixed_keys = if cfg.runs(Phase::Mixed) {
            mixed_keys(&prefix, cfg.lookups, cfg.workload.seed)
        } else {
            Vec::new()
        };
        progress.setup_done();
        let round = Round {
            oracle,
            threads,
            parts: slices.clone(),
            prefix,
            suffix,
            mixed_keys,
            lookups: &lookups,
            absent: &absent,
            scans: &scans,
        };
        for repeat in 0..cfg.repeat {
            for f in factories {
                let ctx = Ctx {
                    shape: cfg.shape,
                    contender: f.name(),
                    threads,
                    repeat,
                };
                let c = insert_phase(rec, &round, f, &ctx, false);
                if f.caps().queries {
                    if cfg.runs(Phase::Lookup) {
                        run_lookups(rec, &*c, &ctx, round.lookups, Phase::Lookup);
                    }
                    if cfg.runs(Phase::LookupAbsent) {
                        run_lookups(rec, &*c, &ctx, round.absent, Phase::LookupAbsent);
                    }
                    if cfg.runs(Phase::Scan) {
                        let scans = round.scans;
                        run_scans(rec, &*c, &ctx, oracle, scans, Phase::Scan, Vec::new());
                    }
                }
                drop(c);
                memory::reclaim();
                if cfg.runs(Phase::InsertWarm) && f.caps().reserved {
                    drop(insert_phase(rec, &round, f, &ctx, true));
                    memory::reclaim();
                }
                if cfg.runs(Phase::Mixed) && f.caps().queries {
                    run_mixed(rec, f, &ctx, &round);
                    memory::reclaim();
                }
            }
        }
        if i == 0 && cfg.runs(Phase::Memory) {
            for f in factories {
                let ctx = Ctx {
                    shape: cfg.shape,
                    contender: f.name(),
                    threads,
                    repeat: 0,
                };
                memory_phase(rec, &round, f, &ctx);
            }
        }
    }
    crate::life::run(rec, cfg, factories);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contender::Caps;
    use crate::planted::Planted;
    use crate::registry;

    fn tiny(contenders: &[&str]) -> BenchConfig {
        let mut cfg = BenchConfig::profile("ci").unwrap();
        cfg.workload.series = 24;
        cfg.workload.points = 200;
        cfg.workload.late_pct = 5.0;
        cfg.workload.dup_pct = 5.0;
        cfg.threads = vec![1, 3];
        cfg.lookups = 2_000;
        cfg.scans = 100;
        cfg.scan_len = 50;
        cfg.shape_threads = vec![2];
        cfg.high_cardinality_series = 500;
        cfg.high_cardinality_points = 10;
        cfg.contenders = contenders.iter().map(|s| (*s).to_owned()).collect();
        cfg
    }

    #[test]
    fn every_peer_passes_a_small_verified_run_of_every_shape() {
        let cfg = tiny(&[]);
        let factories = registry::select(&cfg.contenders).unwrap();
        assert!(factories.iter().any(|f| f.name() == "series-vec"));
        let out = run(&cfg, &factories, &Progress::new(true)).unwrap();
        assert!(out.failures.is_empty(), "{:#?}", out.failures);
        // The plan the progress counts against is what ran, in order.
        let shapes: Vec<Shape> = out.shapes.iter().map(|s| s.shape).collect();
        assert_eq!(shapes, Shape::ALL);
        let planned: Vec<Planned> = cfg
            .sections()
            .iter()
            .zip(&out.shapes)
            .flat_map(|(section, o)| {
                let mut p = plan(section, &factories, o.records);
                p.extend(crate::life::plan(section, &factories, o.records));
                p
            })
            .collect();
        let ran: Vec<(Shape, usize, &str, Phase)> = out
            .samples
            .iter()
            .map(|s| (s.shape, s.threads, s.contender.as_str(), s.phase))
            .collect();
        let expected: Vec<(Shape, usize, &str, Phase)> = planned
            .iter()
            .map(|p| (p.shape, p.threads, p.contender.as_str(), p.phase))
            .collect();
        assert_eq!(ran, expected);
        assert_eq!(out.eta.len(), planned.len());
        let last = out.eta.last().unwrap();
        assert_eq!((last.done, last.planned), (planned.len(), planned.len()));
        assert_eq!(last.eta_s, Some(0.0));
        assert!(out.eta.iter().all(|p| p.actual_left_s.is_some()));
        for section in cfg.sections() {
            let extra = section.shape != Shape::Default;
            for f in &factories {
                for (i, &t) in section.threads.iter().enumerate() {
                    let has = |p: Phase| {
                        out.samples.iter().any(|s| {
                            s.shape == section.shape
                                && s.contender == f.name()
                                && s.threads == t
                                && s.phase == p
                        })
                    };
                    let queries = f.caps().queries;
                    assert!(has(Phase::Insert));
                    assert_eq!(has(Phase::Lookup), queries, "{}", f.name());
                    assert_eq!(has(Phase::Scan), queries);
                    assert_eq!(has(Phase::Mixed), queries && !extra);
                    assert_eq!(has(Phase::LookupAbsent), queries && !extra);
                    assert_eq!(has(Phase::InsertWarm), f.caps().reserved && !extra);
                    assert_eq!(
                        has(Phase::Memory),
                        i == 0,
                        "memory once, at the first count"
                    );
                }
            }
        }
        let hc = &out.shapes[1];
        assert_eq!((hc.workload.series, hc.distinct_keys), (500, 5_000));
        assert_eq!(
            out.shapes[2].workload.late_pct,
            crate::config::LATE_SHAPE_PCT
        );
        let hits: Vec<f64> = out
            .samples
            .iter()
            .filter(|s| s.phase == Phase::Lookup)
            .map(|s| s.metrics[metric::HIT_RATE])
            .collect();
        assert!(!hits.is_empty() && hits.iter().all(|&h| h == 1.0));
        // The library's tests do not install the counting allocator: the
        // memory phase runs and verifies, but reports no bytes.
        let memory = out
            .samples
            .iter()
            .find(|s| s.phase == Phase::Memory)
            .unwrap();
        assert!(!memory.metrics.contains_key(metric::LIVE_BYTES));
    }

    #[test]
    fn verification_reports_a_contender_that_drops_one_record_in_every_shape_and_phase() {
        let mut cfg = tiny(&[]);
        cfg.workload.dup_pct = 0.0;
        cfg.workload.late_pct = 0.0;
        cfg.threads = vec![2];
        cfg.phases = vec![Phase::Insert, Phase::Memory];
        let broken = ContenderFactory::new(
            "drops-one",
            Caps {
                queries: true,
                reserved: false,
            },
            |_| {
                // Loses the first record of writer 0.
                Box::new(Planted::new("drops-one", |p: &mut Vec<Record>| {
                    if !p.is_empty() {
                        p.remove(0);
                    }
                }))
            },
        );
        let out = run(&cfg, &[broken], &Progress::new(true)).unwrap();
        let checks: Vec<&str> = out
            .failures
            .iter()
            .map(|f| f.problem.check.as_str())
            .collect();
        assert!(checks.contains(&"len"), "{checks:?}");
        assert!(checks.contains(&"scan-all"), "{checks:?}");
        let len = out
            .failures
            .iter()
            .find(|f| f.problem.check == "len")
            .unwrap();
        assert_eq!(
            (len.contender.as_str(), len.phase.as_str(), len.threads),
            ("drops-one", "insert", 2)
        );
        assert_eq!(len.problem.mismatches, 1);
        assert!(
            len.problem.examples[0].contains("1 lost"),
            "{:?}",
            len.problem.examples
        );
        // Series 0 belongs to writer 0; its first record is point 0.
        let scan = out
            .failures
            .iter()
            .find(|f| f.problem.check == "scan-all")
            .unwrap();
        assert!(
            scan.problem.examples.iter().any(|e| e.contains("series 0")),
            "{:?}",
            scan.problem.examples
        );
        for shape in Shape::ALL {
            for phase in ["insert", "memory"] {
                let f = out
                    .failures
                    .iter()
                    .find(|f| {
                        f.shape == shape.name() && f.phase == phase && f.problem.check == "len"
                    })
                    .unwrap_or_else(|| panic!("no len failure in {} / {phase}", shape.name()));
                assert!(
                    f.to_string()
                        .contains(&format!("{} shape / {phase}", shape.name())),
                    "{f}"
                );
            }
        }
    }

    #[test]
    fn verification_reports_records_numatree_loses_inside_its_merge() {
        let mut cfg = tiny(&[]);
        cfg.threads = vec![2];
        cfg.phases = vec![Phase::Insert];
        cfg.shapes = vec![Shape::Default];
        let lossy = ContenderFactory::new(
            "numatree-lossy",
            Caps {
                queries: true,
                reserved: false,
            },
            |o| {
                Box::new(crate::numatree_adapter::NumatreeContender::with_builder(
                    numatree::Index::builder().plant_merge_loss(true),
                    o,
                ))
            },
        );
        let out = run(&cfg, &[lossy], &Progress::new(true)).unwrap();
        let accounting = out
            .failures
            .iter()
            .find(|f| f.problem.check == "accounting")
            .expect("the accounting check reports the planted loss");
        assert!(
            accounting.problem.examples[0].contains("records were lost inside the index"),
            "{:?}",
            accounting.problem.examples
        );
    }
}

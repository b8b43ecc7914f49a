//! The measurement driver: for each shape (a section of the report), each
//! thread count, each repeat and each contender (interleaved, so drift hits
//! every contender alike) it builds fresh contenders, runs the phases,
//! verifies after each one and records a [`Sample`] per measurement. The
//! memory of each contender is measured once per shape, at its first thread
//! count, in an ingest of its own that is not timed (see [`crate::memory`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use numatree_core::Record;
use serde::Serialize;

use crate::config::{BenchConfig, Phase, Shape};
use crate::contender::{BlockBytes, Contender, ContenderFactory, IngestTiming};
use crate::memory;
use crate::oracle::Oracle;
pub use crate::progress::Progress;
use crate::progress::{eta_text, EtaPoint, Planned};
use crate::verify::{self, Failure, Problem};
use crate::workload::{Lookup, ScanQuery, Workload, WorkloadConfig};

mod ingest;
mod mixed;
mod reads;

use self::ingest::{insert_phase, memory_phase};
use self::mixed::{mixed_keys, run_mixed};
use self::reads::run_lookups;
pub(crate) use self::reads::{run_scans, scan_count};

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
    /// Insert: the process's page faults during the ingest, thousands
    /// ([`cpu`](crate::cpu)).
    pub const PAGE_FAULTS_K: &str = "page_faults_k";
    /// Insert: the kernel's share of the process's CPU time during the
    /// ingest, 0..=1 (page faults first of all).
    pub const KERNEL_CPU: &str = "kernel_cpu_share";
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
mod tests;

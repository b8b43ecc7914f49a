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
//!
//! The files follow the block from birth to death, one per phase: this
//! module plans and runs the phases and holds what they share (the
//! workloads, the row names, the build options); `compression` measures
//! what a frozen block takes, `freeze_scan` what freezing costs writers
//! and what reading frozen blocks costs readers, `snapshot` how fast the
//! blocks go to a file and come back, `retention` what dropping them
//! frees; `targets` sets the figures against the goals.
//!
//! [`GAUGE_MAX_BYTES_PER_POINT`]: crate::config::GAUGE_MAX_BYTES_PER_POINT
//! [`RANDOM_MAX_FROZEN_RATIO`]: crate::config::RANDOM_MAX_FROZEN_RATIO

use std::time::Instant;

use numatree_core::Record;

use crate::config::{BenchConfig, Phase, Shape};
use crate::contender::{BuildOptions, ContenderFactory};
use crate::oracle::{Oracle, ValueShape};
use crate::phases::{ms, Ctx, Recorder};
use crate::progress::Planned;
use crate::registry::TARGET;
use crate::verify::Problem;
use crate::workload::{Workload, WorkloadConfig};

mod compression;
mod freeze_scan;
mod retention;
mod snapshot;
mod targets;

pub use compression::compression_checks;
pub use snapshot::{snapshot_and_restore, snapshot_checks, snapshot_path, SnapshotRound, TempFile};
pub use targets::targets;

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

/// Points per series from which [`GAUGE_MAX_BYTES_PER_POINT`] applies to
/// all of numatree's bytes (the default shape's): with fewer, the hot
/// newest block of each series (16 bytes a point and its room to grow) is
/// a large share of the points, so smaller runs (`--quick`) check the
/// frozen blocks' bytes per point against it instead.
///
/// [`GAUGE_MAX_BYTES_PER_POINT`]: crate::config::GAUGE_MAX_BYTES_PER_POINT
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
                for f in freeze_scan::scan_peers(factories) {
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
                compression::compression(rec, cfg, &w, &parts, v, repeat);
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
            freeze_scan::freeze_and_scan(rec, cfg, factories, w, parts, &scans, repeat);
        }
    }
    if cfg.runs(Phase::Snapshot) {
        let (w, parts) =
            &*gauge.get_or_insert_with(|| generate(rec, cfg, ValueShape::Gauge, threads));
        for repeat in 0..cfg.repeat {
            for (name, freeze) in [(FROZEN, true), (HOT, false)] {
                snapshot::snapshot(rec, cfg, w, parts, name, freeze, repeat);
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
        wc.points = base + (base / retention::RETENTION_EXTRA_DIVISOR).max(1);
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
            retention::retention(rec, cfg, &w, &before, &after, base, repeat);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contender::Contender;
    use crate::planted::Planted;
    use crate::verify;

    /// A small gauge workload with late points and duplicates.
    pub(super) fn gauge_workload() -> Workload {
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

    /// The names of the checks that found `problems`.
    pub(super) fn checks(problems: &[Problem]) -> Vec<&str> {
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
}

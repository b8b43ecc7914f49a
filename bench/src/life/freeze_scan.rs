//! Phases 2 and 3, freeze_insert and frozen_scan: what freezing costs
//! writers (cold insert of gauge values, freezing on and off, in the same
//! repeat) and what it saves or costs readers (the same scans over frozen
//! and hot blocks, then on every queryable peer for scale). The two phases
//! share one ingest per row: a repeat ingests each index once, times it
//! for the insert phase and then scans it for the scan phase.

use numatree_core::Record;

use crate::config::{BenchConfig, Phase};
use crate::contender::{Contender, ContenderFactory};
use crate::memory;
use crate::numatree_adapter::NumatreeContender;
use crate::oracle::ValueShape;
use crate::phases::{block_metrics, insert_metrics, per_us, run_scans, verify_state, Recorder};
use crate::registry::{CEILINGS, TARGET};
use crate::verify;
use crate::workload::Workload;

use super::{compression_checks, ctx, options, slices, FROZEN, HOT};

/// The peers the frozen-scan phase compares with: queryable, not numatree,
/// not a ceiling.
pub(super) fn scan_peers(
    factories: &[ContenderFactory],
) -> impl Iterator<Item = &ContenderFactory> {
    factories
        .iter()
        .filter(|f| f.caps().queries && f.name() != TARGET && !CEILINGS.contains(&f.name()))
}

/// One repeat of the freeze-insert and frozen-scan phases: numatree with
/// freezing on, then off, each ingested (timed) and verified, then scanned;
/// then every peer ingests the same data and runs the same scans.
pub(super) fn freeze_and_scan(
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

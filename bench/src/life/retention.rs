//! Phase 5, retention: `drop_before` half of the time range while writers
//! ingest newer points and readers look keys up, the bytes before and
//! after. It is how blocks die: the drop should free their bytes while
//! the writers go on, and no reader may see a kept key change or a
//! dropped one survive once the drop returned.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::Instant;

use numatree_core::Record;
use rand::RngExt as _;

use crate::config::{BenchConfig, Phase};
use crate::contender::Contender;
use crate::memory;
use crate::numatree_adapter::NumatreeContender;
use crate::oracle::Oracle;
use crate::phases::{metric, ms, per_us, Recorder};
use crate::verify::{self, Mismatches, Problem};
use crate::workload::{stream_rng, Workload};

use super::{ctx, options, slices, FROZEN};

/// Extra rounds, over the default shape's points, that the retention
/// phase's writers ingest after the drop starts: a quarter.
pub(super) const RETENTION_EXTRA_DIVISOR: u64 = 4;

/// Points before a cut that a late point or a duplicate emitted after it
/// can still reach, besides `max_delay` (the generator re-emits one of a
/// series' last 16 points).
const RECENT_MARGIN: u64 = 17;

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
pub(super) fn retention(
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
    let mut problems: Vec<Problem> = records_before(after, base, cutoff).into_iter().collect();

    let c = NumatreeContender::with_freezing(true, &options(cfg, oracle));
    let t0 = c.ingest(&slices(before), cfg.batch);
    problems.extend(verify::verify_timing(&t0));
    let at_start = c.block_bytes().expect("numatree reports its blocks");

    let keys = ReadKeys::draw(cfg, w, base, cutoff);
    let readers = cfg.life_threads;
    let stop = AtomicBool::new(false);
    let drop_done = AtomicBool::new(false);
    let barrier = Barrier::new(readers + 2);
    let cr: &NumatreeContender = &c;
    let after_parts = slices(after);
    let (timing, drop_span, after_drop, tallies) = thread::scope(|sc| {
        let reader_handles: Vec<_> = (0..readers)
            .map(|i| {
                let (stop, drop_done, barrier, keys) = (&stop, &drop_done, &barrier, &keys);
                sc.spawn(move || {
                    barrier.wait();
                    read_during_drop(cr, oracle, keys, i, readers, stop, drop_done)
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
        let dropped = dropper.join();
        // Each reader goes on until it has also checked
        // `CHECKS_AFTER_DROP` dropped keys after the drop returned.
        stop.store(true, Ordering::Release);
        let (span, bytes) = dropped.expect("drop thread panicked");
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
    // Every point before the cutoff was ingested (and merged) before the
    // drop: the workload check above guarantees none came later.
    let dropped_points = oracle.distinct_keys() - oracle.keys_from(cutoff);
    problems.extend(check_counts(&c, stats.points_dropped, dropped_points));
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
    rec.sample(&ctx, Phase::Retention, &m, c.extra(), note);
    rec.problems(&ctx, Phase::Retention, problems);
    drop(c);
    memory::reclaim();
}

/// Records of the rounds ingested during the drop (`base` on) that lie
/// before the cutoff: the oracle could not say whether those are dropped,
/// so there must be none.
fn records_before(after: &[Vec<Record>], base: u64, cutoff: i64) -> Option<Problem> {
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
    early.into_problem("retention-workload")
}

/// The index's own accounting, and the points it says the drop removed
/// (`stats_dropped`) against the oracle's count.
fn check_counts(c: &NumatreeContender, stats_dropped: u64, oracle_dropped: u64) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Err(e) = c.index().stats().verify_accounting() {
        problems.push(Problem {
            check: "accounting".into(),
            mismatches: 1,
            examples: vec![e.to_string()],
        });
    }
    if stats_dropped != oracle_dropped {
        problems.push(Problem {
            check: "points-dropped".into(),
            mismatches: 1,
            examples: vec![format!(
                "stats say {stats_dropped} points dropped, the oracle {oracle_dropped}"
            )],
        });
    }
    problems
}

/// Keys the readers look up: kept ones, whose final value is in before
/// the drop (points base/2.. up to the last ones a late point or a
/// duplicate ingested during the drop can still change), and dropped ones
/// (points 0..base/2, before `cutoff`), as (series, point number).
struct ReadKeys {
    kept: Vec<(u32, u64)>,
    dropped: Vec<(u32, u64)>,
    cutoff: i64,
}

impl ReadKeys {
    fn draw(cfg: &BenchConfig, w: &Workload, base: u64, cutoff: i64) -> ReadKeys {
        let oracle = w.oracle();
        let mut rng = stream_rng(oracle.seed(), 0x5245_5445);
        let n = cfg.lookups.clamp(1, 1 << 20);
        let settled = base
            .saturating_sub(w.config().max_delay + RECENT_MARGIN)
            .max(base / 2 + 1);
        let kept = (0..n)
            .map(|_| {
                let s = rng.random_range(0..oracle.series());
                (s, rng.random_range(base / 2..settled))
            })
            .collect();
        let dropped = (0..n)
            .map(|_| {
                let s = rng.random_range(0..oracle.series());
                (s, rng.random_range(0..base / 2))
            })
            .collect();
        ReadKeys {
            kept,
            dropped,
            cutoff,
        }
    }
}

/// Dropped keys each reader checks after the drop returned, at least,
/// before it stops.
const CHECKS_AFTER_DROP: u64 = 1_024;

/// Reader `i` of `readers`: looks up kept keys (which must hold their
/// values throughout) and, once `drop_done`, dropped keys too (which must
/// be gone); stops once `stop` is set and it has checked
/// [`CHECKS_AFTER_DROP`] dropped keys (at once if the drop never
/// returned).
fn read_during_drop(
    c: &NumatreeContender,
    oracle: &Oracle,
    keys: &ReadKeys,
    i: usize,
    readers: usize,
    stop: &AtomicBool,
    drop_done: &AtomicBool,
) -> ReadTally {
    let mut t = ReadTally::default();
    let mut checked_gone = 0u64;
    let mut k = i;
    loop {
        // `stop` first: once it is set, the drop has returned (the main
        // thread sets it after joining the drop's thread), unless that
        // thread panicked, and then nothing is left to wait for.
        let stopping = stop.load(Ordering::Acquire);
        let gone = drop_done.load(Ordering::Acquire);
        if stopping && (!gone || checked_gone >= CHECKS_AFTER_DROP) {
            break;
        }
        let (s, p) = keys.kept[k % keys.kept.len()];
        let ts = oracle.ts_of(p);
        let want = oracle.value_at(s, p);
        match c.get(s, ts) {
            Some(v) if v == want => {}
            got => t
                .wrong
                .record(|| format!("get({s}, {ts}) = {got:?} during the drop, oracle {want:#x}")),
        }
        if gone {
            let (s, p) = keys.dropped[k % keys.dropped.len()];
            let ts = oracle.ts_of(p);
            if let Some(v) = c.get(s, ts) {
                t.wrong.record(|| {
                    format!(
                        "get({s}, {ts}) = {v:#x} after drop_before({}) returned",
                        keys.cutoff
                    )
                });
            }
            checked_gone += 1;
        }
        t.ops += 1 + u64::from(gone);
        k += readers;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::life::tests::{checks, gauge_workload};
    use crate::peers::BTreeRwLock;

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
}

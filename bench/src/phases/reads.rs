//! The query measurements: point lookups (present keys, or with a share of
//! absent ones) and range scans, each split over the round's threads and
//! checked against the oracle.

use std::time::{Duration, Instant};

use crate::config::{BenchConfig, Phase};
use crate::contender::{timed_threads, Contender};
use crate::oracle::Oracle;
use crate::verify::{Mismatches, Problem};
use crate::workload::{Lookup, ScanQuery};

use super::{metric, ms, per_us, Ctx, Recorder};

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

pub(super) fn run_lookups(
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
    let content = check_scan_contents(c, oracle, &scans[..checked], cap);
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

/// Untimed: reruns `scans` and checks every record returned: inside the
/// scan's range, ascending, and with the oracle's final value.
fn check_scan_contents(
    c: &dyn Contender,
    oracle: &Oracle,
    scans: &[ScanQuery],
    cap: usize,
) -> Mismatches {
    let mut content = Mismatches::default();
    let mut out = Vec::with_capacity(cap);
    for q in scans {
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
    content
}

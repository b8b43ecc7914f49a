//! The mixed measurement: writers ingest the second half of the workload
//! while as many readers look up keys of the first half.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use numatree_core::Record;
use rand::RngExt as _;

use crate::config::Phase;
use crate::contender::{BuildOptions, Contender, ContenderFactory};
use crate::verify::{self, Mismatches, Problem};
use crate::workload::stream_rng;

use super::{metric, ms, per_us, Ctx, Recorder, Round};

/// Writers ingest the second half of every part while `threads` readers look
/// up keys of the first half (ingested before timing), which must all hit.
pub(super) fn run_mixed(
    rec: &mut Recorder<'_>,
    f: &ContenderFactory,
    ctx: &Ctx<'_>,
    round: &Round<'_>,
) {
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
                sc.spawn(move || read_until_done(cr, mine, done, barrier))
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

/// One reader of the mixed phase: after `barrier`, looks up `mine` (keys
/// ingested before the phase, so each must hit) over and over, 64 at a
/// time, until `done`; returns its lookups, its start and end, and its
/// misses.
fn read_until_done(
    cr: &dyn Contender,
    mine: &[(u32, i64)],
    done: &AtomicBool,
    barrier: &Barrier,
) -> (u64, Instant, Instant, Mismatches) {
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
                    misses
                        .record(|| format!("get({s}, {ts}) missed an ingested key during ingest"));
                }
            }
            ops += block.len() as u64;
            if done.load(Ordering::Acquire) {
                break 'outer;
            }
        }
    }
    (ops, start, Instant::now(), misses)
}

/// Keys the mixed-phase readers look up: drawn from the first half of the
/// writers' parts, so each is present before the readers start.
pub(super) fn mixed_keys(prefix: &[&[Record]], n: usize, seed: u64) -> Vec<(u32, i64)> {
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

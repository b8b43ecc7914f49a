//! A scrape-like ingest with concurrent queries, the workload numatree is
//! built for: every scrape interval each series gets one point; writer
//! threads on every NUMA node ingest their share of the series, round after
//! round, and hand each batch of rounds over with `Writer::flush` (as a
//! scraper commits a scrape); meanwhile a reader thread keeps asking for the
//! latest points of one series after another, as a dashboard would. At the
//! end: a summary of ingest and query rates, of how fresh the points the
//! reader saw were, and a check that every point is there.
//!
//! ```text
//! cargo run --release -p numatree --example scrape [-- --quick]
//! ```
//!
//! `--quick`: 128 series x 200 rounds instead of 1,024 x 2,000 (CI runs it
//! that way as part of `cargo xtask test`). A round starts every
//! millisecond at the earliest (the scrape interval, compressed), so the
//! quick run takes about 0.2 s and the full one about 2 s.
//!
//! What the reader may rely on (see the `numatree` crate docs): a point is
//! visible once merged, which happens in the background after its slot is
//! sealed (full, `Writer::flush`, or the writer dropped); `Index::flush`
//! waits for everything sealed before it. Until then a query simply does not
//! see the point yet; it never sees a torn or foreign value, and a series'
//! scan is always ascending.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use numatree::Index;

/// Milliseconds between scrapes: timestamps are `round * INTERVAL_MS`.
const INTERVAL_MS: i64 = 15_000;
/// Wall time between scrape rounds: the 15 s interval, compressed, so the
/// reader has an ingest to watch rather than a burst.
const ROUND_EVERY: Duration = Duration::from_millis(1);
/// A writer calls `Writer::flush` after this many rounds.
const ROUNDS_PER_COMMIT: i64 = 20;
/// The reader scans the newest this-many committed rounds of a series: two
/// commits, so a query finds points while the latest commit merges.
const WINDOW_ROUNDS: i64 = 2 * ROUNDS_PER_COMMIT;

/// The value scraped for `series` at `ts`.
fn value(series: u32, ts: i64) -> u64 {
    (u64::from(series) << 40) ^ (ts as u64 / INTERVAL_MS as u64)
}

struct Shape {
    series: u32,
    rounds: i64,
}

/// What the reader saw.
#[derive(Default)]
struct ReaderReport {
    queries: u64,
    points_returned: u64,
    /// Per query: rounds between what its series' writer had committed and
    /// the newest point the query returned.
    staleness: Vec<i64>,
    /// Queries that found nothing in the window yet: the commit was not
    /// merged when they ran.
    empty: u64,
    busy: Duration,
}

fn main() -> ExitCode {
    let quick = std::env::args().skip(1).any(|a| a == "--quick");
    let shape = if quick {
        Shape {
            series: 128,
            rounds: 200,
        }
    } else {
        Shape {
            series: 1_024,
            rounds: 2_000,
        }
    };
    match run(&shape) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scrape failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A failed check, or an error from the index.
type Failure = Box<dyn std::error::Error + Send + Sync>;

fn run(shape: &Shape) -> Result<(), Failure> {
    let index = Index::builder().build()?;
    let (ingest_time, report) = ingest_while_reading(&index, shape)?;
    // Everything is there once flushed.
    index.flush()?;
    check_every_point(&index, shape)?;
    let stats = index.stats();
    stats.verify_accounting()?;
    print_summary(shape, ingest_time, report, stats.total.backpressure_waits);
    index.close()?;
    Ok(())
}

/// Ingests `shape` round after round, one writer a node, while a reader
/// queries the newest committed points (`read_latest`); returns the ingest's
/// wall time and what the reader saw.
fn ingest_while_reading(index: &Index, shape: &Shape) -> Result<(Duration, ReaderReport), Failure> {
    let nodes = index.plan().node_count();
    let per_node = 1;
    let writers = nodes * per_node;
    println!(
        "{} series x {} rounds, {writers} writer(s) on {nodes} node(s), 1 reader",
        shape.series, shape.rounds
    );
    // The last round each writer committed (`Writer::flush` returned), -1
    // before the first: what the reader compares freshness against.
    let committed: Vec<AtomicI64> = (0..writers).map(|_| AtomicI64::new(-1)).collect();
    let ingest_done = AtomicBool::new(false);

    let started = Instant::now();
    let (ingest, report) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| read_latest(index, shape, &committed, &ingest_done));
        let ingest = index.run_writers(per_node, |ctx, writer| {
            let mine: Vec<u32> = (0..shape.series)
                .filter(|s| *s as usize % ctx.threads == ctx.global)
                .collect();
            for round in 0..shape.rounds {
                let due = started + ROUND_EVERY * round as u32;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let ts = round * INTERVAL_MS;
                for &s in &mine {
                    writer.insert(s, ts, value(s, ts))?;
                }
                if (round + 1) % ROUNDS_PER_COMMIT == 0 || round + 1 == shape.rounds {
                    writer.flush()?;
                    committed[ctx.global].store(round, Ordering::Release);
                }
            }
            Ok(())
        });
        let took = started.elapsed();
        ingest_done.store(true, Ordering::Release);
        let report = reader.join().expect("reader thread panicked");
        (ingest.map(|()| took), report)
    });
    Ok((ingest?, report?))
}

/// Checks that every series holds every round's point, with its value.
fn check_every_point(index: &Index, shape: &Shape) -> Result<(), Failure> {
    let mut rows = Vec::new();
    for s in 0..shape.series {
        rows.clear();
        let n = index.scan_into(s, .., &mut rows);
        if n as i64 != shape.rounds || rows.iter().any(|&(ts, v)| v != value(s, ts)) {
            return Err(format!(
                "series {s}: {n} points after the flush, {} expected, values {}",
                shape.rounds,
                if rows.iter().all(|&(ts, v)| v == value(s, ts)) {
                    "right"
                } else {
                    "wrong"
                }
            )
            .into());
        }
    }
    Ok(())
}

/// Prints the ingest and query rates, the freshness of what the reader saw,
/// and that every point was found with the accounting verified: called
/// once `check_every_point` and `Stats::verify_accounting` have passed.
fn print_summary(
    shape: &Shape,
    ingest_time: Duration,
    report: ReaderReport,
    backpressure_waits: u64,
) {
    let records = u64::from(shape.series) * shape.rounds as u64;
    let mut staleness = report.staleness;
    staleness.sort_unstable();
    let pct = |p: f64| {
        staleness
            .get(((staleness.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "ingest: {records} records in {:.0} ms = {:.1} M records/s; backpressure waits {backpressure_waits}",
        ingest_time.as_secs_f64() * 1e3,
        records as f64 / ingest_time.as_secs_f64() / 1e6,
    );
    println!(
        "reader: {} queries of the newest {WINDOW_ROUNDS} committed rounds during ingest \
         ({:.0} k queries/s, {} points returned, {} found nothing there yet)",
        report.queries,
        report.queries as f64 / report.busy.as_secs_f64().max(1e-9) / 1e3,
        report.points_returned,
        report.empty
    );
    println!(
        "freshness: the newest point a query saw was behind its writer's last commit by \
         median {} / p99 {} / max {} rounds",
        pct(0.5),
        pct(0.99),
        staleness.last().copied().unwrap_or(0)
    );
    println!(
        "after the flush: all {records} points of {} series found, accounting verified",
        shape.series
    );
}

/// Queries the newest points of one series after another until the ingest
/// is done, checking each answer: ascending, inside the window, and holding
/// the values the writers wrote.
fn read_latest(
    index: &Index,
    shape: &Shape,
    committed: &[AtomicI64],
    ingest_done: &AtomicBool,
) -> Result<ReaderReport, Failure> {
    let started = Instant::now();
    let mut report = ReaderReport::default();
    let mut rows = Vec::with_capacity(WINDOW_ROUNDS as usize);
    let mut k: u64 = 0;
    while !ingest_done.load(Ordering::Acquire) {
        // Visit the series in a scattered order (7919 is prime).
        let s = (k.wrapping_mul(7_919) % u64::from(shape.series)) as u32;
        k += 1;
        let writer = s as usize % committed.len();
        let last = committed[writer].load(Ordering::Acquire);
        if last < 0 {
            std::thread::yield_now(); // nothing committed yet: nothing to ask
            continue;
        }
        let from = (last - WINDOW_ROUNDS + 1).max(0) * INTERVAL_MS;
        rows.clear();
        index.scan_into(s, from.., &mut rows);
        report.queries += 1;
        report.points_returned += rows.len() as u64;
        let ordered = rows.windows(2).all(|w| w[0].0 < w[1].0);
        let genuine = rows.iter().all(|&(ts, v)| ts >= from && v == value(s, ts));
        if !ordered || !genuine {
            return Err(format!(
                "series {s}: a scan from ts {from} returned {rows:?}: out of order, out of range \
                 or a value never written"
            )
            .into());
        }
        match rows.last() {
            Some(&(ts, _)) => report.staleness.push((last - ts / INTERVAL_MS).max(0)),
            _ => report.empty += 1,
        }
    }
    report.busy = started.elapsed();
    Ok(report)
}

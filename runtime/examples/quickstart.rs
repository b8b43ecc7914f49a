//! Quickstart: the whole life of an index in one page, using only the
//! public API a user depends on.
//!
//! 1. build an [`Index`] for this machine (bad configuration is an `Error`);
//! 2. ingest with writer threads pinned to each NUMA node (`run_writers`);
//! 3. `flush`, so everything inserted is merged and visible;
//! 4. query: point lookups (`get`) and range scans (`scan`, `scan_into`);
//! 5. read the statistics and check that no record was lost
//!    (`Stats::verify_accounting`);
//! 6. `close`: flush, join every thread, final statistics.
//!
//! ```text
//! cargo run --release -p numatree --example quickstart [-- --quick]
//! ```
//!
//! `--quick` ingests 64 series x 1,000 points instead of 1,024 x 10,000
//! (CI runs it that way as part of `cargo xtask test`).

use std::process::ExitCode;
use std::time::Instant;

use numatree::{Error, Index, Stats};

/// The value of a point: any `u64` will do; this one lets the example check
/// what it reads back.
fn value(series: u32, ts: i64) -> u64 {
    (u64::from(series) << 32) ^ ts as u64
}

fn main() -> ExitCode {
    let quick = std::env::args().skip(1).any(|a| a == "--quick");
    match run(quick) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(quick: bool) -> Result<(), Error> {
    let (series, points): (u32, i64) = if quick { (64, 1_000) } else { (1_024, 10_000) };

    // 1. Build. Every setting has a default; `build()` checks them all.
    let index = Index::builder().build()?;
    println!("{}", index.plan());

    // 2. Ingest: two writer threads per NUMA node, each pinned to its node's
    // writer CPUs, each with its own `Writer`. Thread `g` of `n` writes the
    // series `s` with `s % n == g`. An insert never drops a record: when the
    // node's slots are all full, it waits (backpressure).
    let started = Instant::now();
    index.run_writers(2, |ctx, writer| {
        let mine = (0..series).filter(|s| *s as usize % ctx.threads == ctx.global);
        for s in mine {
            for ts in 0..points {
                writer.insert(s, ts, value(s, ts))?;
            }
        }
        Ok(()) // `run_writers` flushes each writer when its closure returns
    })?;

    // 3. Flush: every slot sealed so far is merged and visible to queries.
    index.flush()?;
    let records = u64::from(series) * points as u64;
    let took = started.elapsed();
    println!(
        "ingested {records} records in {:.0} ms ({:.1} M records/s)",
        took.as_secs_f64() * 1e3,
        records as f64 / took.as_secs_f64() / 1e6
    );

    // 4. Query.
    assert_eq!(index.len() as u64, records, "every key is there");
    assert_eq!(index.get(7, 42), Some(value(7, 42)));
    assert_eq!(index.get(7, points), None, "never written");
    let rows = index.scan(3, 100..110); // ascending (ts, value) with 100 <= ts < 110
    assert_eq!(rows.len(), 10);
    assert!(rows.iter().all(|&(ts, v)| v == value(3, ts)));
    let mut buffer = Vec::new(); // reuse one buffer across scans
    let mut scanned = 0;
    for s in 0..series {
        buffer.clear();
        scanned += index.scan_into(s, .., &mut buffer);
    }
    assert_eq!(scanned as u64, records);
    println!("get and scan: every record found with its value");

    // 5. Statistics, and the check that every accepted record is accounted
    // for: accepted = inserted + updated + superseded + in flight.
    let stats: Stats = index.stats();
    stats.verify_accounting()?;
    let t = &stats.total;
    println!(
        "accepted {}, inserted {}, updated {}, superseded {}, in flight {}; \
         backpressure waits {}",
        t.records_accepted,
        t.records_inserted,
        t.records_updated,
        t.records_superseded,
        t.records_in_flight,
        t.backpressure_waits
    );

    // 6. Close: flushes, joins every merge thread, returns the final stats.
    // Dropping the index closes it too; `close` reports errors.
    let last = index.close()?;
    last.verify_accounting()?;
    println!("closed: {} records merged", last.total.records_merged());
    Ok(())
}

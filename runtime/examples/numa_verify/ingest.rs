//! The verifier's workload: pinned writers insert a scrape with late
//! points and rewrites, and the flushed index is checked against a
//! `BTreeMap` fed the same inserts in the same order.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use numatree::Index;

use super::{thread_cpus, WriterSeen, POINTS, SERIES};

/// A deterministic value for a point.
fn value(series: u32, ts: i64, round: u64) -> u64 {
    let mut x = (u64::from(series) << 40) ^ (ts as u64) ^ (round << 60);
    x = (x ^ (x >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 29)
}

/// The points of `series` in the order one writer inserts them: in-order
/// scrapes, late points (new keys behind the newest), and rewrites of
/// earlier keys (upserts: the later value wins).
fn points(series: u32) -> Vec<(i64, u64)> {
    let mut out = Vec::with_capacity(POINTS as usize * 5 / 4);
    for i in 0..POINTS {
        let ts = i * 10;
        out.push((ts, value(series, ts, 0)));
        if i >= 20 && i % 7 == 3 {
            let late = ts - 95;
            out.push((late, value(series, late, 1)));
        }
        if i >= 10 && i % 13 == 0 {
            let again = ts - 10 * (i % 5 + 1);
            out.push((again, value(series, again, 2)));
        }
    }
    out
}

/// Which writer (of `threads`) writes `series`: pairs of series, so each
/// writer feeds its own node and others.
fn writer_of(series: u32, threads: usize) -> usize {
    (series / 2) as usize % threads
}

/// Runs the workload on pinned writers and flushes; returns what each
/// writer saw of its own affinity and the seconds it took (compare with
/// [`compare_with_oracle`] after, from any thread).
pub(crate) fn ingest(index: &Index, mis_bind: bool) -> (Vec<WriterSeen>, Result<f64, String>) {
    let per_node = index
        .plan()
        .nodes()
        .iter()
        .map(|n| n.writer_cpus.len())
        .min()
        .unwrap_or(1);
    let writers = Mutex::new(Vec::new());
    let started = Instant::now();
    let ran = index.run_writers(per_node, |ctx, w| {
        if mis_bind && ctx.global == 0 {
            // The negative control: bind to the next node's CPUs.
            let other = (ctx.node + 1) % index.plan().node_count();
            let _ = index
                .topology()
                .bind_current_thread(index.plan().writer_cpus(other));
        }
        writers.lock().unwrap().push(WriterSeen {
            node: ctx.node,
            thread: ctx.thread,
            pinned: ctx.pinned,
            cpus: thread_cpus(),
        });
        for series in (0..SERIES).filter(|&s| writer_of(s, ctx.threads) == ctx.global) {
            for (ts, v) in points(series) {
                w.insert(series, ts, v)?;
            }
        }
        Ok(())
    });
    let writers = writers.into_inner().unwrap();
    let result = ran
        .and_then(|()| index.flush())
        .map(|()| started.elapsed().as_secs_f64())
        .map_err(|e| format!("ingest failed: {e}"));
    (writers, result)
}

/// Checks the index against a `BTreeMap` fed the same inserts in the same
/// order; `secs` is how long the ingest took.
pub(crate) fn compare_with_oracle(index: &Index, secs: f64) -> Result<String, String> {
    let mut oracle: BTreeMap<(u32, i64), u64> = BTreeMap::new();
    let mut inserted = 0;
    for series in 0..SERIES {
        for (ts, v) in points(series) {
            oracle.insert((series, ts), v);
            inserted += 1;
        }
    }
    if index.len() != oracle.len() {
        return Err(format!(
            "len() = {}, but {} distinct keys were inserted",
            index.len(),
            oracle.len()
        ));
    }
    let shard_sum: usize = index.shard_lengths().iter().map(|&(_, _, n)| n).sum();
    if shard_sum != oracle.len() {
        return Err(format!(
            "shard lengths sum to {shard_sum}, not {}",
            oracle.len()
        ));
    }
    for (&(series, ts), &v) in &oracle {
        let got = index.get(series, ts);
        if got != Some(v) {
            return Err(format!("get({series}, {ts}) = {got:?}, expected {v}"));
        }
    }
    for series in 0..SERIES {
        let want: Vec<(i64, u64)> = oracle
            .range((series, i64::MIN)..=(series, i64::MAX))
            .map(|(&(_, ts), &v)| (ts, v))
            .collect();
        let got = index.scan(series, ..);
        if got != want {
            return Err(format!(
                "scan({series}, ..) returned {} records, expected {}",
                got.len(),
                want.len()
            ));
        }
        let window: Vec<_> = want
            .iter()
            .copied()
            .filter(|&(ts, _)| (5_000..7_000).contains(&ts))
            .collect();
        if index.scan(series, 5_000..7_000) != window {
            return Err(format!(
                "scan({series}, 5000..7000) differs from the oracle"
            ));
        }
    }
    Ok(format!(
        "{inserted} inserts ({} distinct keys, late points and rewrites included) in {secs:.2} s match the BTreeMap oracle",
        oracle.len()
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn workload_has_late_points_and_rewrites() {
        let p = points(3);
        let distinct: BTreeSet<i64> = p.iter().map(|&(ts, _)| ts).collect();
        assert!(distinct.len() > POINTS as usize, "late points add keys");
        assert!(p.len() > distinct.len(), "rewrites repeat keys");
        assert!(p.windows(2).any(|w| w[1].0 < w[0].0), "out of order");
    }
}

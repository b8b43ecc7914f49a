//! Shared test workload: scrape-style records with late points and
//! duplicates, and the `BTreeMap` oracle they must match.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex};

use numatree::{Index, Record};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt as _, SeedableRng as _};

/// The tests' seeded generator: the same as the bench's workload and the
/// stress harness, so one seed means one stream everywhere.
pub type Rng = Xoshiro256PlusPlus;

/// The generator for `seed`.
pub fn rng(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}

/// A value that names its key and version, so a reader can check that a
/// value it sees was really inserted for that key.
pub fn value_of(series: u32, ts: i64, version: u64) -> u64 {
    (u64::from(series) << 40) ^ ((ts as u64) << 8) ^ version
}

/// Whether `value` was produced by `value_of(series, ts, _)` with a small version.
pub fn value_matches(series: u32, ts: i64, value: u64) -> bool {
    (value ^ (u64::from(series) << 40) ^ ((ts as u64) << 8)) < 4
}

/// Each writer's stream: one point per owned series per round (series `s`
/// belongs to writer `s % writers`), `late_pct`% of points swapped with a
/// point up to 3 rounds later, and `dup_pct`% re-sent later with a new value.
pub fn scrape(
    series: u32,
    rounds: i64,
    writers: usize,
    late_pct: u64,
    dup_pct: u64,
    seed: u64,
) -> Vec<Vec<Record>> {
    (0..writers)
        .map(|w| {
            let mut rng = rng(seed + w as u64);
            let owned: Vec<u32> = (0..series).filter(|s| *s as usize % writers == w).collect();
            let mut out = Vec::new();
            for round in 0..rounds {
                for &s in &owned {
                    out.push(Record::new(s, round * 10, value_of(s, round * 10, 0)));
                }
            }
            let span = owned.len().max(1) * 3;
            for i in 0..out.len() {
                if rng.random_range(0..100) < late_pct {
                    let j = (i + 1 + rng.random_range(0..span)).min(out.len() - 1);
                    out.swap(i, j);
                }
            }
            let mut with_dups = Vec::with_capacity(out.len() + out.len() / 50);
            for r in out {
                with_dups.push(r);
                if rng.random_range(0..100) < dup_pct {
                    with_dups.push(Record {
                        value: value_of(r.key.series, r.key.ts, 1),
                        ..r
                    });
                }
            }
            with_dups
        })
        .collect()
}

/// The final value of every key: the last write of its (only) writer.
pub fn oracle(streams: &[Vec<Record>]) -> BTreeMap<(u32, i64), u64> {
    let mut map = BTreeMap::new();
    for stream in streams {
        for r in stream {
            map.insert((r.key.series, r.key.ts), r.value);
        }
    }
    map
}

/// Asserts the index holds exactly the oracle: `len`, every value, every
/// series' full scan, the shard lengths summing to `len`, and its counters
/// accounting for every record accepted (call it after a flush, with no
/// writer sealing).
pub fn assert_matches_oracle(index: &Index, oracle: &BTreeMap<(u32, i64), u64>) {
    let stats = index.stats();
    stats.verify_accounting().unwrap();
    assert_eq!(
        stats.total.records_in_flight, 0,
        "records in flight after a flush"
    );
    assert_eq!(index.len(), oracle.len(), "len() != distinct keys inserted");
    for (&(s, t), &v) in oracle {
        assert_eq!(index.get(s, t), Some(v), "get({s}, {t})");
    }
    let series: std::collections::BTreeSet<u32> = oracle.keys().map(|k| k.0).collect();
    for s in series {
        let want: Vec<(i64, u64)> = oracle
            .range((s, i64::MIN)..=(s, i64::MAX))
            .map(|(k, v)| (k.1, *v))
            .collect();
        assert_eq!(index.scan(s, ..), want, "scan of series {s}");
    }
    assert_eq!(index.validate(), Ok(oracle.len()), "storage invariants");
    let shard_sum: usize = index.shard_lengths().iter().map(|x| x.2).sum();
    assert_eq!(shard_sum, index.len(), "shard lengths must sum to len()");
}

/// A gate that merges (or any thread) wait on until the test opens it.
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    cond: Condvar,
}

impl Gate {
    /// Returns once the gate is open.
    pub fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cond.wait(open).unwrap();
        }
    }

    /// Opens the gate for every waiter, now and later.
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cond.notify_all();
    }
}

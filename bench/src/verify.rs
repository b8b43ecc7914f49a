//! Self-verification, run after every phase: a benchmark of an index that
//! lost records measures nothing (the predecessor printed lookup "throughput"
//! for an empty tree). Every check compares a contender against the
//! [`Oracle`] and reports the first few mismatches.

use std::thread;

use rand::RngExt as _;
use serde::Serialize;

use crate::contender::{Contender, IngestTiming};
use crate::oracle::Oracle;
use crate::workload::stream_rng;

/// Mismatch examples kept per check.
pub const MAX_EXAMPLES: usize = 5;

/// Keys checked with `get` after an ingest, besides the full scan check:
/// this many random keys plus up to this many re-written (duplicate) keys.
pub const GET_SAMPLE: usize = 10_000;

/// A count of mismatches and the first [`MAX_EXAMPLES`] described.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Mismatches {
    /// How many mismatches were seen.
    pub count: u64,
    /// Descriptions of the first few.
    pub examples: Vec<String>,
}

impl Mismatches {
    /// Counts one mismatch; `describe` runs only while examples are still kept.
    #[inline]
    pub fn record(&mut self, describe: impl FnOnce() -> String) {
        self.count += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(describe());
        }
    }

    /// Adds another tally's mismatches (examples up to the cap).
    pub fn absorb(&mut self, other: Mismatches) {
        self.count += other.count;
        let room = MAX_EXAMPLES.saturating_sub(self.examples.len());
        self.examples.extend(other.examples.into_iter().take(room));
    }

    /// `None` when clean, else a [`Problem`] named `check`.
    pub fn into_problem(self, check: &str) -> Option<Problem> {
        (self.count > 0).then(|| Problem {
            check: check.to_owned(),
            mismatches: self.count,
            examples: self.examples,
        })
    }
}

/// One failed check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What was checked (`len`, `scan-all`, `get-sample`, `lookup`, ...).
    pub check: String,
    /// How many mismatches.
    pub mismatches: u64,
    /// The first few, described.
    pub examples: Vec<String>,
}

/// A problem found for one contender in one measurement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Shape name (see `Shape::name`): the section of the report.
    pub shape: String,
    /// Contender name.
    pub contender: String,
    /// Phase name (see `Phase::name`).
    pub phase: String,
    /// Thread count of the measurement.
    pub threads: usize,
    /// Repeat index (0-based).
    pub repeat: usize,
    /// The failed check.
    pub problem: Problem,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.problem;
        writeln!(
            f,
            "{} / {} shape / {} / {} threads / repeat {}: check '{}' failed, {} mismatch(es)",
            self.contender,
            self.shape,
            self.phase,
            self.threads,
            self.repeat + 1,
            p.check,
            p.mismatches
        )?;
        for e in &p.examples {
            writeln!(f, "    {e}")?;
        }
        Ok(())
    }
}

fn verify_threads() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// Checks a queryable contender's whole state: `len()` equals the distinct
/// keys; a full scan of every series returns exactly the oracle's points,
/// ascending, with their final values; unknown series scan empty; and a
/// sample of keys (random ones and every re-written one, up to
/// [`GET_SAMPLE`] each) reads back its final value with `get`.
pub fn verify_index(c: &dyn Contender, oracle: &Oracle) -> Vec<Problem> {
    verify_index_from(c, oracle, i64::MIN)
}

/// [`verify_index`] of a contender that dropped every point before
/// `cutoff` (retention): it must hold exactly the oracle's points at or
/// after `cutoff`, with their final values, and `get` of a sampled key
/// before `cutoff` must miss.
pub fn verify_index_from(c: &dyn Contender, oracle: &Oracle, cutoff: i64) -> Vec<Problem> {
    let mut problems = Vec::new();
    let len = c.len() as u64;
    let expected = if cutoff == i64::MIN {
        oracle.distinct_keys()
    } else {
        oracle.keys_from(cutoff)
    };
    if len != expected {
        let lost = expected as i128 - len as i128;
        problems.push(Problem {
            check: "len".into(),
            mismatches: lost.unsigned_abs() as u64,
            examples: vec![format!(
                "len() = {len}, oracle has {expected} distinct keys at or after {cutoff} ({})",
                if lost > 0 {
                    format!("{lost} lost")
                } else {
                    format!("{} extra", -lost)
                }
            )],
        });
    }

    let series = oracle.series();
    let workers = verify_threads();
    let per = (series as usize).div_ceil(workers).max(1) as u32;
    let scan_all: Vec<Mismatches> = thread::scope(|sc| {
        let handles: Vec<_> = (0..series)
            .step_by(per as usize)
            .map(|lo| sc.spawn(move || scan_series(c, oracle, lo..(lo + per).min(series), cutoff)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("verify thread panicked"))
            .collect()
    });
    let mut all = Mismatches::default();
    scan_all.into_iter().for_each(|m| all.absorb(m));
    let mut out = Vec::new();
    for s in [series, series.saturating_add(1), u32::MAX] {
        if s >= series {
            out.clear();
            let n = c.scan(s, i64::MIN, i64::MAX, &mut out);
            if n != 0 || !out.is_empty() {
                all.record(|| format!("series {s} was never written but scans {n} records"));
            }
        }
    }
    problems.extend(all.into_problem("scan-all"));

    let mut gets = Mismatches::default();
    let mut rng = stream_rng(oracle.seed(), 0x5645_5249);
    let keys = oracle.distinct_keys();
    let random = (0..GET_SAMPLE.min(keys as usize)).map(|_| {
        let (s, i) = oracle.nth_key(rng.random_range(0..keys));
        (s, oracle.ts_of(i))
    });
    let rewritten = oracle
        .rewritten_keys()
        .take(GET_SAMPLE)
        .map(|(k, _)| (k.series, k.ts));
    for (s, ts) in random.chain(rewritten) {
        let want = oracle.expected(s, ts).filter(|_| ts >= cutoff);
        let got = c.get(s, ts);
        if got != want {
            gets.record(|| format!("get({s}, {ts}) = {got:?}, oracle {want:?}"));
        }
    }
    problems.extend(gets.into_problem("get-sample"));
    problems
}

/// Scans each series of `range` whole and compares with the oracle's
/// points at or after `cutoff`.
fn scan_series(
    c: &dyn Contender,
    oracle: &Oracle,
    range: std::ops::Range<u32>,
    cutoff: i64,
) -> Mismatches {
    let mut m = Mismatches::default();
    let mut out = Vec::new();
    for s in range {
        out.clear();
        let n = c.scan(s, i64::MIN, i64::MAX, &mut out);
        let first = oracle.first_at_or_after(s, cutoff);
        let want = oracle.points(s) - first;
        if n != out.len() {
            m.record(|| format!("scan of series {s} returned {n} but appended {}", out.len()));
        }
        let first_bad = (0..want.min(out.len() as u64)).find(|&k| {
            let i = first + k;
            out[k as usize] != (oracle.ts_of(i), oracle.value_at(s, i))
        });
        if let Some(k) = first_bad {
            let i = first + k;
            let got = out[k as usize];
            m.record(|| {
                format!(
                    "series {s} record #{k}: got (ts {}, value {:#x}), oracle (ts {}, value {:#x})",
                    got.0,
                    got.1,
                    oracle.ts_of(i),
                    oracle.value_at(s, i)
                )
            });
        } else if out.len() as u64 != want {
            let k = want.min(out.len() as u64);
            m.record(|| {
                if (out.len() as u64) < want {
                    format!(
                        "series {s}: {} of {want} records, first missing ts {}",
                        out.len(),
                        oracle.ts_of(first + k)
                    )
                } else {
                    format!(
                        "series {s}: {} records, oracle {want}, first extra {:?}",
                        out.len(),
                        out[k as usize]
                    )
                }
            });
        }
    }
    m
}

/// Checks a contender without queries (the writer-only ceiling): it must
/// hold exactly the `records` ingested, duplicates included.
pub fn verify_count(c: &dyn Contender, records: u64) -> Vec<Problem> {
    let len = c.len() as u64;
    let mut m = Mismatches::default();
    if len != records {
        m.record(|| format!("holds {len} records, {records} were ingested"));
    }
    m.into_problem("record-count").into_iter().collect()
}

/// Checks the ingest's own counters: every record the contender accepted
/// must be accounted for (`unaccounted` must be 0).
pub fn verify_timing(t: &IngestTiming) -> Vec<Problem> {
    let mut m = Mismatches::default();
    if let Some(n) = t.unaccounted.filter(|&n| n > 0) {
        m.record(|| {
            format!(
                "{n} records accepted but neither merged, superseded nor in flight: \
                 records were lost inside the index"
            )
        });
    }
    m.into_problem("accounting").into_iter().collect()
}

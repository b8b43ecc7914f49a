//! The verifying readers: threads that scan and look up keys while writers
//! ingest and retention drops, checking every answer against what the
//! phase allows (`Expect`: the oracle of keys flushed before the phase,
//! the values the phase may write, what retention may take). Apart from
//! the after-phase check (module `oracle`) because they check a moving
//! index: they must tolerate what a race may hide and nothing else. The
//! snapshot check uses the same `Expect`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use numatree::Index;
use rand::RngExt as _;

use crate::oracle::Oracle;
use crate::{ensure, Key, Outcome, Rng};

/// What readers may see during a phase.
pub(crate) struct Expect<'a> {
    /// The keys flushed before the phase.
    pub(crate) before: &'a Oracle,
    /// Every value each key may take during the phase.
    pub(crate) values: &'a HashMap<Key, HashSet<u64>>,
    /// Per series: flushed keys below this may vanish (retention).
    pub(crate) vanish: HashMap<u32, i64>,
    /// Series dropped whole during the phase: any of their keys may vanish,
    /// and keys rewritten after the drop come back.
    pub(crate) dropped: HashSet<u32>,
    /// No point below this is visible: a `drop_before` to it returned.
    pub(crate) floor: AtomicI64,
    /// Where the phase's writers start: readers scan around it.
    pub(crate) base: i64,
    /// The `strict-readers` negative control: no key may vanish.
    pub(crate) strict: bool,
}

impl Expect<'_> {
    /// Whether the flushed key `(s, ts)` may be missing during the phase.
    fn may_vanish(&self, s: u32, ts: i64) -> bool {
        !self.strict && self.retention_may_take(s, ts)
    }

    /// Whether retention during the phase may take the flushed key
    /// `(s, ts)`, whatever the negative control (the snapshot check uses
    /// this: `strict-readers` is about readers only).
    pub(crate) fn retention_may_take(&self, s: u32, ts: i64) -> bool {
        self.dropped.contains(&s) || self.vanish.get(&s).is_some_and(|&b| ts < b)
    }
}

/// Checks a scan's shape and, against the oracle of flushed keys and the
/// phase's possible values, its contents; `floor` is the highest
/// `drop_before` cutoff that had returned before the scan began.
fn check_scan(
    series: u32,
    t0: i64,
    t1: i64,
    got: &[(i64, u64)],
    expect: &Expect<'_>,
    floor: i64,
) -> Outcome {
    let (before, values) = (expect.before, expect.values);
    for w in got.windows(2) {
        ensure!(
            w[0].0 < w[1].0,
            "scan {series} {t0}..={t1} not strictly ascending: {w:?}"
        );
    }
    let seen: HashMap<i64, u64> = got.iter().copied().collect();
    for &(ts, v) in got {
        ensure!(
            (t0..=t1).contains(&ts),
            "scan {series} {t0}..={t1} returned ts {ts}"
        );
        ensure!(
            ts >= floor,
            "scan {series} {t0}..={t1} returned ts {ts} after drop_before({floor}) returned"
        );
        let old = before.keys.get(&(series, ts));
        let ok = old.is_some_and(|vs| vs.contains(&v))
            || values.get(&(series, ts)).is_some_and(|vs| vs.contains(&v));
        ensure!(
            ok,
            "scan {series} returned ({ts}, {v}), a value never written for that key"
        );
    }
    // Retention removes a prefix of a series in one version: once a
    // flushed key is there, every later flushed key is (unless the series
    // was dropped whole and started again).
    let mut kept = None;
    for (&(s, ts), vs) in before.keys.range((series, t0)..=(series, t1)) {
        debug_assert_eq!(s, series);
        match seen.get(&ts) {
            None if !expect.may_vanish(s, ts) => {
                return Err(format!(
                    "scan {series} {t0}..={t1} misses flushed key ts {ts}"
                ))
            }
            None => {
                if let Some(k) = kept.filter(|_| !expect.dropped.contains(&s)) {
                    return Err(format!(
                        "scan {series} {t0}..={t1} misses flushed key ts {ts} but holds \
                         flushed ts {k}: retention removed more than a prefix"
                    ));
                }
            }
            Some(v) if !values.contains_key(&(s, ts)) && !vs.contains(v) => {
                return Err(format!(
                    "scan {series} ts {ts}: value {v}, expected one of {vs:?}"
                ))
            }
            Some(_) => kept = Some(ts),
        }
    }
    Ok(())
}

/// A reader: random range scans, each followed by point lookups of the
/// flushed keys in its range, until `stop`; every answer is checked against
/// the oracle while the writers ingest.
pub(crate) fn read_loop(
    index: &Index,
    expect: &Expect<'_>,
    series: &[u32],
    mut rng: Rng,
    stop: &AtomicBool,
    scans: &AtomicU64,
) -> Outcome {
    if series.is_empty() {
        return Ok(());
    }
    let (before, values) = (expect.before, expect.values);
    while !stop.load(Ordering::Relaxed) {
        let s = series[rng.random_range(0..series.len() as u64) as usize];
        let a = expect.base + rng.random_range(0..5_000) as i64 - 4_000;
        let (t0, t1) = if rng.random_ratio(10, 100) {
            (i64::MIN, i64::MAX)
        } else {
            (a, a + rng.random_range(0..500) as i64)
        };
        let floor = expect.floor.load(Ordering::SeqCst);
        let got = index.scan(s, t0..=t1);
        check_scan(s, t0, t1, &got, expect, floor)?;
        scans.fetch_add(1, Ordering::Relaxed);
        // Point lookups of keys flushed before the phase: each must be
        // found (unless retention may have taken it), with a value some
        // writer wrote for it.
        let flushed = before.keys.range((s, t0)..=(s, t1));
        for (&(s, ts), vs) in flushed.take(8) {
            let Some(v) = index.get(s, ts) else {
                if expect.may_vanish(s, ts) {
                    continue;
                }
                return Err(format!(
                    "get({s}, {ts}) = None during ingest: a flushed key vanished"
                ));
            };
            ensure!(
                vs.contains(&v) || values.get(&(s, ts)).is_some_and(|w| w.contains(&v)),
                "get({s}, {ts}) = {v} during ingest, a value never written for that key"
            );
        }
    }
    Ok(())
}

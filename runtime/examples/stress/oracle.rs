//! The oracle: the model of the keys flushed so far and the values each may
//! hold, and the full check of a quiescent index against it after every
//! phase and close. What retention removes is modelled in module
//! `retention`; what readers may see while a phase runs, in `readers`.

use std::collections::{BTreeMap, HashMap, HashSet};

use numatree::{Index, Record};
use rand::RngExt as _;

use crate::lifetime::Lifetime;
use crate::plan::Shape;
use crate::report::Totals;
use crate::retention::{Mutant, Ops, Retention};
use crate::{ensure, Key, Outcome, Rng};

/// Keys flushed so far, each with the values it may hold: the last
/// accepted value of each writer that wrote it in the latest phase that did.
pub(crate) struct Oracle {
    pub(crate) keys: BTreeMap<Key, Vec<u64>>,
    /// What retention removed and will remove.
    pub(crate) retention: Retention,
    /// Every series written to the index (dropped ones too: each must scan
    /// as the model says, empty included).
    pub(crate) written: std::collections::BTreeSet<u32>,
}

impl Oracle {
    pub(crate) fn new(retain: Option<i64>, mutant: Mutant) -> Oracle {
        Oracle {
            keys: BTreeMap::new(),
            retention: Retention::new(retain, mutant),
            written: Default::default(),
        }
    }

    /// Applies a phase: `accepted` holds, per writer instance, its accepted
    /// records in order; `ops` the phase's retention calls. Returns the keys
    /// that may or may not be there (retention raced their writers).
    pub(crate) fn apply(
        &mut self,
        index: &Index,
        accepted: &[Vec<Record>],
        ops: &Ops,
    ) -> HashSet<Key> {
        let mut last: HashMap<Key, Vec<u64>> = HashMap::new();
        for instance in accepted {
            let mut mine: HashMap<Key, u64> = HashMap::new();
            for r in instance {
                mine.insert((r.key.series, r.key.ts), r.value);
            }
            for (k, v) in mine {
                last.entry(k).or_default().push(v);
            }
        }
        self.written.extend(last.keys().map(|k| k.0));
        self.retention.apply(index, &mut self.keys, last, ops)
    }
}

/// Full check of a quiescent index against the oracle; then fixes each
/// key's value to the one observed (the writer that won). Keys in `maybe`
/// (a retention call raced their writers) are observed first: absent, they
/// leave the oracle; present, their value must be allowed.
pub(crate) fn verify(
    life: &mut Lifetime,
    rng: &mut Rng,
    totals: &mut Totals,
    maybe: &HashSet<Key>,
) -> Outcome {
    let index = &life.index;
    let oracle = &mut life.oracle;
    settle_raced(index, oracle, maybe, totals)?;
    check_keys(index, oracle, totals)?;
    check_scans(index, oracle, life.clock, rng, totals)?;
    check_stats(index, life.shape, totals)
}

/// Keys a retention call raced: absent, they leave the oracle; present,
/// their value must be one a writer gave.
fn settle_raced(
    index: &Index,
    oracle: &mut Oracle,
    maybe: &HashSet<Key>,
    totals: &mut Totals,
) -> Outcome {
    for k in maybe {
        let vs = &oracle.keys[k];
        totals.maybe_keys += 1;
        match index.get(k.0, k.1) {
            None => {
                oracle.keys.remove(k);
            }
            Some(v) => {
                ensure!(
                    vs.contains(&v),
                    "get({}, {}) = {v} after a drop raced its writers, expected one of {vs:?}",
                    k.0,
                    k.1
                );
                totals.maybe_survived += 1;
            }
        }
    }
    Ok(())
}

/// The storage's invariants and counts, and every key's value, which then
/// becomes the only one the oracle allows.
fn check_keys(index: &Index, oracle: &mut Oracle, totals: &mut Totals) -> Outcome {
    let points = index
        .validate()
        .map_err(|e| format!("storage invariants: {e}"))?;
    ensure!(
        points == oracle.keys.len(),
        "storage holds {points} points, {} distinct keys were accepted",
        oracle.keys.len()
    );
    ensure!(
        index.len() == oracle.keys.len(),
        "len() = {} but {} distinct keys were accepted",
        index.len(),
        oracle.keys.len()
    );
    for (&(s, ts), vs) in oracle.keys.iter_mut() {
        let Some(v) = index.get(s, ts) else {
            return Err(format!("get({s}, {ts}) = None: accepted record lost"));
        };
        ensure!(
            vs.contains(&v),
            "get({s}, {ts}) = {v}, expected one of {vs:?}"
        );
        *vs = vec![v];
    }
    totals.keys_verified += oracle.keys.len() as u64;
    Ok(())
}

/// A full scan of every written series (nothing below its retention
/// floor), and 16 random ranges around `clock` (some inverted, some of
/// series never written).
fn check_scans(
    index: &Index,
    oracle: &Oracle,
    clock: i64,
    rng: &mut Rng,
    totals: &mut Totals,
) -> Outcome {
    for &s in &oracle.written {
        let got = index.scan(s, ..);
        let gone = oracle.retention.absent_below(s);
        if let Some(&(ts, _)) = got.first() {
            ensure!(
                ts >= gone,
                "series {s} holds ts {ts}, below its retention floor {gone} (drop_before \
                 floor {}, retain {:?})",
                oracle.retention.floor,
                oracle.retention.window
            );
        }
        let want: Vec<(i64, u64)> = oracle
            .keys
            .range((s, i64::MIN)..=(s, i64::MAX))
            .map(|(k, vs)| (k.1, vs[0]))
            .collect();
        ensure!(
            got == want,
            "scan({s}, ..) differs from the oracle ({} vs {} records)",
            got.len(),
            want.len()
        );
        totals.scans_verified += 1;
    }
    for _ in 0..16 {
        let s = rng.random_range(0..40) as u32;
        let a = clock + rng.random_range(0..5_000) as i64 - 4_000;
        let b = a + rng.random_range(0..300) as i64 - 50; // sometimes inverted
        let got = index.scan(s, a..b);
        let want: Vec<(i64, u64)> = if a < b {
            oracle
                .keys
                .range((s, a)..(s, b))
                .map(|(k, vs)| (k.1, vs[0]))
                .collect()
        } else {
            Vec::new()
        };
        ensure!(got == want, "scan({s}, {a}..{b}) differs from the oracle");
        totals.scans_verified += 1;
    }
    Ok(())
}

/// Shard lengths, the index's accounting and its statistics against its
/// length; no frozen point with freezing off.
fn check_stats(index: &Index, shape: Shape, totals: &mut Totals) -> Outcome {
    let per_shard: usize = index.shard_lengths().iter().map(|x| x.2).sum();
    ensure!(
        per_shard == index.len(),
        "shard lengths sum to {per_shard}, len() = {}",
        index.len()
    );
    let stats = index.stats();
    stats.verify_accounting().map_err(|e| e.to_string())?;
    let t = &stats.total;
    ensure!(
        t.records_in_flight == 0,
        "{} records still in flight after a flush",
        t.records_in_flight
    );
    ensure!(
        t.keys == index.len()
            && t.records_inserted.checked_sub(t.points_dropped) == Some(t.keys as u64),
        "stats: keys {} = inserted {} - dropped {} expected, len() = {}",
        t.keys,
        t.records_inserted,
        t.points_dropped,
        index.len()
    );
    ensure!(
        shape.freeze || (t.frozen_points == 0 && t.frozen_bytes == 0),
        "freezing is off but {} points in {} bytes are frozen",
        t.frozen_points,
        t.frozen_bytes
    );
    totals.most_frozen_points = totals.most_frozen_points.max(t.frozen_points);
    Ok(())
}

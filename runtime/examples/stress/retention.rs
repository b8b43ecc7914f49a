//! Retention in the stress run: what a phase drops (`drop_before`,
//! `drop_series`, from a thread racing the writers and readers, or once the
//! writers are done), the `retain` window of an index, and the model of
//! which keys must, may and must not survive them.
//!
//! The rules the model follows, from the index's documentation and its
//! storage (`runtime/src/storage/mod.rs`):
//! - `drop_before(c)` raises every shard's floor to at least `c`: once it
//!   returns no point below `c` is visible, and a record below the floor
//!   merged later expires. So after a phase whose cutoffs reach `c`, every
//!   key below `c` is gone for good and every accepted key at or above it is
//!   there (nothing else removes it).
//! - `drop_series(s)` flushes, then publishes `s` empty. Records of `s`
//!   flushed before the phase are gone unless a writer rewrote the key in the
//!   phase; keys accepted in the phase may or may not be there (sealed
//!   before the call's flush: gone; after: they start the series again),
//!   and where one is, its value is the last one of one of the writers that
//!   wrote it. Called once the writers finished (all sealed), `s` is empty.
//! - `retain(w)`: after every merge into a shard, its floor is at least
//!   `newest - w - w / 16` (the sweep runs once the horizon `newest - w`
//!   passed the floor by `w / 16`) and at most `max(newest - w, highest
//!   drop_before cutoff)`, where `newest` is the newest timestamp merged into
//!   *that shard*: a shard whose series are older than the index's newest
//!   keeps its own horizon, so the bound is per shard (the harness routes
//!   each series with the plan). Records expired by the floor are below
//!   `newest`, so `newest` lies between the newest accepted key at or above
//!   the `drop_before` floor and the newest accepted key. Keys below the low
//!   bound must be gone, keys at or above the high bound must be there, and
//!   the band between is observed once and then followed exactly.
//! - Every removal takes a prefix of a series (one version published per
//!   series), so a scan during a phase that misses a flushed key holds none
//!   of the flushed keys before it, except where a series was dropped whole
//!   and started again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

use numatree::Index;
use rand::RngExt as _;

use crate::{Key, Outcome, Rng};

/// Negative controls of the harness, chosen by `NUMATREE_STRESS_MUTANT`;
/// a run with one must fail.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Mutant {
    #[default]
    None,
    /// `forget-drops`: the model keeps what retention removed.
    ForgetDrops,
    /// `strict-readers`: readers do not tolerate keys vanishing while a
    /// concurrent drop runs.
    StrictReaders,
    /// `snapshot-demands-later`: the snapshot check demands every key
    /// accepted in the phase, also those flushed only after the snapshot
    /// (module `snapshot`).
    SnapshotDemandsLater,
}

impl Mutant {
    pub(crate) fn from_env() -> Result<Mutant, String> {
        match std::env::var("NUMATREE_STRESS_MUTANT").as_deref() {
            Err(_) | Ok("") => Ok(Mutant::None),
            Ok("forget-drops") => Ok(Mutant::ForgetDrops),
            Ok("strict-readers") => Ok(Mutant::StrictReaders),
            Ok("snapshot-demands-later") => Ok(Mutant::SnapshotDemandsLater),
            Ok(other) => Err(format!(
                "NUMATREE_STRESS_MUTANT={other}: expected forget-drops, strict-readers or \
                 snapshot-demands-later"
            )),
        }
    }
}

/// A retention call a phase makes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    DropBefore(i64),
    DropSeries(u32),
}

/// The retention calls of a phase.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ops {
    /// Made from a thread of their own, each once the writers have taken
    /// this many steps in all (or finished).
    pub(crate) during: Vec<(u64, Op)>,
    /// Made after the writers finished (every record sealed), before the
    /// phase's flush.
    pub(crate) after: Option<Op>,
}

impl Ops {
    pub(crate) fn is_empty(&self) -> bool {
        self.during.is_empty() && self.after.is_none()
    }

    fn all(&self) -> impl Iterator<Item = Op> + '_ {
        self.during.iter().map(|d| d.1).chain(self.after)
    }

    /// The highest `drop_before` cutoff of the phase.
    pub(crate) fn cutoff(&self) -> i64 {
        self.all()
            .filter_map(|op| match op {
                Op::DropBefore(c) => Some(c),
                Op::DropSeries(_) => None,
            })
            .max()
            .unwrap_or(i64::MIN)
    }

    /// Series dropped while writers may still write them.
    fn dropped_during(&self) -> HashSet<u32> {
        self.during
            .iter()
            .filter_map(|d| match d.1 {
                Op::DropSeries(s) => Some(s),
                Op::DropBefore(_) => None,
            })
            .collect()
    }

    pub(crate) fn label(&self) -> String {
        let mut parts: Vec<String> = self
            .during
            .iter()
            .map(|(at, op)| format!("{op:?}@{at}"))
            .collect();
        if let Some(op) = self.after {
            parts.push(format!("{op:?} after"));
        }
        parts.join(" ")
    }
}

/// Draws a phase's retention calls: `base` is the phase's time base (its
/// writers start near it), `series` the series it writes, `steps` the
/// writers' steps in all.
pub(crate) fn draw_ops(rng: &mut Rng, base: i64, series: &[u32], steps: u64) -> Ops {
    let mut ops = Ops::default();
    let mut cutoff = || base + rng.random_range(0..2_500) as i64 - 1_500;
    let mut draws = Vec::new();
    for _ in 0..2 {
        draws.push(cutoff());
    }
    let pick = |rng: &mut Rng| series[rng.random_range(0..series.len() as u64) as usize];
    if rng.random_ratio(35, 100) {
        let at = rng.random_range(0..=steps);
        ops.during.push((at, Op::DropBefore(draws[0])));
        if rng.random_ratio(25, 100) {
            // A second, maybe lower (then it does nothing), later.
            ops.during
                .push((rng.random_range(at..=steps), Op::DropBefore(draws[1])));
        }
    }
    if !series.is_empty() && rng.random_ratio(25, 100) {
        for _ in 0..rng.random_range(1..=2) {
            ops.during
                .push((rng.random_range(0..=steps), Op::DropSeries(pick(rng))));
        }
    }
    ops.during.sort_by_key(|d| d.0);
    if rng.random_ratio(12, 100) {
        ops.after = Some(if series.is_empty() || rng.random_ratio(50, 100) {
            Op::DropBefore(draws[1])
        } else {
            Op::DropSeries(pick(rng))
        });
    }
    ops
}

/// Makes `ops.during` against `index` as the writers progress; `floor`
/// rises to each cutoff once its `drop_before` returned (readers check
/// that nothing below it is visible from then on).
pub(crate) fn reap(
    index: &Index,
    ops: &Ops,
    progress: &AtomicU64,
    done: &AtomicUsize,
    writers: usize,
    floor: &AtomicI64,
) -> Outcome {
    for &(at, op) in &ops.during {
        while progress.load(Ordering::Relaxed) < at && done.load(Ordering::SeqCst) < writers {
            std::thread::yield_now();
        }
        apply(index, op, floor)?;
    }
    Ok(())
}

/// Makes one retention call.
pub(crate) fn apply(index: &Index, op: Op, floor: &AtomicI64) -> Outcome {
    match op {
        Op::DropBefore(c) => {
            index.drop_before(c);
            floor.fetch_max(c, Ordering::SeqCst);
        }
        Op::DropSeries(s) => index
            .drop_series(s)
            .map_err(|e| format!("drop_series({s}): {e}"))?,
    }
    Ok(())
}

/// Bounds on the newest timestamp merged into a shard.
#[derive(Clone, Copy, Debug)]
struct Newest {
    /// The newest accepted key at or above the `drop_before` floor of its
    /// phase: merged, or expired by `retain` (then below the newest).
    lo: i64,
    /// The newest accepted key.
    hi: i64,
}

/// The retention state of one index, as the model knows it.
#[derive(Debug)]
pub(crate) struct Retention {
    /// The highest `drop_before` cutoff made (`i64::MIN`: none).
    pub(crate) floor: i64,
    /// The index's `retain` window.
    pub(crate) window: Option<i64>,
    /// Per shard `(node, shard)`.
    newest: HashMap<(usize, usize), Newest>,
    /// Where each series lives.
    routes: HashMap<u32, (usize, usize)>,
    pub(crate) mutant: Mutant,
}

impl Retention {
    pub(crate) fn new(window: Option<i64>, mutant: Mutant) -> Retention {
        Retention {
            floor: i64::MIN,
            window,
            newest: HashMap::new(),
            routes: HashMap::new(),
            mutant,
        }
    }

    fn shard(&mut self, index: &Index, series: u32) -> (usize, usize) {
        *self
            .routes
            .entry(series)
            .or_insert_with(|| index.plan().route(series))
    }

    /// Keys of `series` below this are gone (retention took them).
    pub(crate) fn absent_below(&self, series: u32) -> i64 {
        let Some(w) = self.window else {
            return self.floor;
        };
        let lo = self
            .routes
            .get(&series)
            .and_then(|r| self.newest.get(r))
            .map_or(i64::MIN, |n| n.lo);
        self.floor.max(lo.saturating_sub(w).saturating_sub(w / 16))
    }

    /// Keys of `series` at or above this that were accepted are there.
    fn present_from(&self, series: u32) -> i64 {
        let Some(w) = self.window else {
            return self.floor;
        };
        let hi = self
            .routes
            .get(&series)
            .and_then(|r| self.newest.get(r))
            .map_or(i64::MIN, |n| n.hi);
        self.floor.max(hi.saturating_sub(w))
    }

    /// Per series written in the phase or known before: flushed keys
    /// below the bound may vanish while the phase runs (the phase's
    /// cutoffs, or the `retain` horizon with every planned record merged).
    pub(crate) fn vanish_bounds(
        &mut self,
        index: &Index,
        planned: &HashMap<Key, HashSet<u64>>,
        known: impl Iterator<Item = u32>,
        ops: &Ops,
    ) -> HashMap<u32, i64> {
        let cutoff = self.floor.max(ops.cutoff());
        let mut newest: HashMap<(usize, usize), i64> = self
            .newest
            .iter()
            .map(|(shard, n)| (*shard, n.hi))
            .collect();
        for &(s, ts) in planned.keys() {
            let shard = self.shard(index, s);
            let e = newest.entry(shard).or_insert(i64::MIN);
            *e = (*e).max(ts);
        }
        let series: HashSet<u32> = planned.keys().map(|k| k.0).chain(known).collect();
        series
            .into_iter()
            .map(|s| {
                let shard = self.shard(index, s);
                let horizon = match self.window {
                    Some(w) => newest.get(&shard).map_or(i64::MIN, |n| n.saturating_sub(w)),
                    None => i64::MIN,
                };
                (s, cutoff.max(horizon))
            })
            .collect()
    }

    /// Applies a phase to the flushed keys: `last` holds, per key accepted
    /// in the phase, the last value of each writer that wrote it. Returns
    /// the keys that may or may not be there (to observe once).
    pub(crate) fn apply(
        &mut self,
        index: &Index,
        keys: &mut BTreeMap<Key, Vec<u64>>,
        last: HashMap<Key, Vec<u64>>,
        ops: &Ops,
    ) -> HashSet<Key> {
        self.floor = self.floor.max(ops.cutoff());
        let floor = self.floor;
        for &(s, ts) in last.keys() {
            let shard = self.shard(index, s);
            let n = self.newest.entry(shard).or_insert(Newest {
                lo: i64::MIN,
                hi: i64::MIN,
            });
            n.hi = n.hi.max(ts);
            if ts >= floor {
                n.lo = n.lo.max(ts);
            }
        }
        let dropped_during = ops.dropped_during();
        let mut maybe = HashSet::new();
        let forget = self.mutant == Mutant::ForgetDrops;
        if !forget {
            // Flushed before the phase and not rewritten in it: gone.
            keys.retain(|k, _| !dropped_during.contains(&k.0) || last.contains_key(k));
        }
        for (k, vs) in last {
            if dropped_during.contains(&k.0) {
                maybe.insert(k);
            }
            keys.insert(k, vs);
        }
        if forget {
            return maybe;
        }
        if let Some(Op::DropSeries(s)) = ops.after {
            keys.retain(|k, _| k.0 != s);
        }
        let series: HashSet<u32> = keys.keys().map(|k| k.0).collect();
        for s in series {
            let (gone, sure) = (self.absent_below(s), self.present_from(s));
            keys.retain(|k, _| k.0 != s || k.1 >= gone);
            for (&k, _) in keys.range((s, gone)..(s, sure.max(gone))) {
                maybe.insert(k);
            }
        }
        maybe.retain(|k| keys.contains_key(k));
        maybe
    }
}

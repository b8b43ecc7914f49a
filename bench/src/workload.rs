//! The scrape-style workload: deterministic per-writer record streams, the
//! oracle of their final state, and the lookup and scan query sets.
//!
//! # Shape
//! `series` series, `points` points per series (the *rounds*: `--scale N`
//! multiplies `points`, i.e. a longer scrape window over the same series, so
//! the default 1,024 x 10,000 = 10.24M records becomes 1,024 x 100,000 =
//! 102.4M at scale 10). In round `r` every series emits point `r` with
//! timestamp `ts0 + r * interval`.
//!
//! # Writers
//! Series are partitioned over `T` writers **modulo**: series `s` belongs to
//! writer `s % T`. Every writer therefore spreads its records over the whole
//! key space (no contender gets writer-local key ranges for free), and each
//! series has exactly one writer, so duplicates have a well-defined winner.
//! Within a round a writer emits its series in ascending id order.
//!
//! # Options
//! - **late points** (`late_pct`, `max_delay`): a point is held back and
//!   emitted `1..=max_delay` rounds after its own round.
//! - **duplicates** (`dup_pct`): after a point is emitted, with this
//!   probability one of the series' last 16 emitted points is re-emitted with
//!   a new value (version + 1); it must replace the earlier one.
//! - **Zipf** (`zipf = Some(theta)`): series `s` gets a share of the
//!   `series x points` records proportional to `1 / (s + 1)^theta`, spread
//!   evenly over the `points` rounds (hot series emit several points per
//!   round, cold ones skip rounds). Timestamps stay on the per-series grid.
//!   Writer loads become skewed too: the writer owning series 0 carries its
//!   share.
//!
//! All random decisions of a series come from that series' own stream, so
//! the set of records, their per-series order and the oracle are the same
//! for every writer count; only the interleaving across series changes.
//!
//! # Random numbers
//! Every stream is a [`WorkloadRng`] (`rand`'s xoshiro256++, a named
//! generator whose output `rand` keeps reproducible across releases and
//! platforms, unlike `SmallRng`) seeded by [`stream_rng`] from the seed and
//! a stream id. Values are not drawn: they are a function of the key, its
//! point index and its version chosen by [`WorkloadConfig::values`] (see
//! [`ValueShape`]), so the oracle needs no generator at all.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::thread;

use numatree_core::{Key, Record};
use rand::distr::{Bernoulli, Distribution as _};
use rand::seq::SliceRandom as _;
use rand::{RngExt as _, SeedableRng as _};
use serde::Serialize;

use crate::oracle::{Oracle, ValueShape};

/// The workload's random number generator.
pub type WorkloadRng = rand::rngs::Xoshiro256PlusPlus;

/// The generator of stream `stream` of `seed`: one per series, one per query
/// set. Distinct streams of one seed get distinct 256-bit states
/// (`seed_from_u64` expands its argument with PCG32; the stream id is
/// multiplied by an odd constant first, a bijection).
pub fn stream_rng(seed: u64, stream: u64) -> WorkloadRng {
    WorkloadRng::seed_from_u64(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A coin that lands heads `pct` percent of the time; `None` for 0 %, so a
/// workload without late points or duplicates draws no number for them.
fn coin(pct: f64) -> Option<Bernoulli> {
    (pct > 0.0).then(|| Bernoulli::new((pct / 100.0).clamp(0.0, 1.0)).expect("p in 0..=1"))
}

/// Whether `coin` lands heads (never for `None`).
#[inline]
fn flip(coin: Option<Bernoulli>, rng: &mut WorkloadRng) -> bool {
    coin.is_some_and(|c| c.sample(rng))
}

/// How many recently emitted points of a series a duplicate may re-emit.
const RECENT: usize = 16;

/// Parameters of a workload. Equal configs give identical workloads.
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadConfig {
    /// Number of series (ids `0..series`).
    pub series: u32,
    /// Points per series, i.e. rounds (already multiplied by the scale).
    pub points: u64,
    /// Seed of every random decision and of the values.
    pub seed: u64,
    /// Percentage of points emitted late (0..=100).
    pub late_pct: f64,
    /// A late point is emitted 1..=`max_delay` rounds after its round.
    pub max_delay: u64,
    /// Percentage of emitted points followed by a duplicate of a recent key (0..=100).
    pub dup_pct: f64,
    /// Zipf exponent of the series volume skew; `None` = every series equal.
    pub zipf: Option<f64>,
    /// Timestamp of round 0.
    pub ts0: i64,
    /// Timestamp step between rounds (>= 2, so off-grid absent keys exist).
    pub interval: i64,
    /// What the values look like.
    pub values: ValueShape,
}

impl Default for WorkloadConfig {
    /// The predecessor's workload: 1,024 series x 10,000 in-order points.
    fn default() -> Self {
        WorkloadConfig {
            series: 1024,
            points: 10_000,
            seed: 0x6E75_6D61_7472_6565,
            late_pct: 0.0,
            max_delay: 16,
            dup_pct: 0.0,
            zipf: None,
            ts0: 1_700_000_000_000,
            interval: 10_000,
            values: ValueShape::Key,
        }
    }
}

impl WorkloadConfig {
    /// Checks the parameters, saying which one is wrong and why.
    pub fn validate(&self) -> Result<(), String> {
        if self.series == 0 {
            return Err("series must be >= 1".into());
        }
        if self.points == 0 {
            return Err("points per series must be >= 1".into());
        }
        if self.interval < 2 {
            return Err(format!(
                "interval {} is invalid: must be >= 2",
                self.interval
            ));
        }
        for (name, v) in [("late-pct", self.late_pct), ("dup-pct", self.dup_pct)] {
            if !(0.0..=100.0).contains(&v) {
                return Err(format!("{name} {v} is invalid: must be in 0..=100"));
            }
        }
        if self.late_pct > 0.0 && self.max_delay == 0 {
            return Err("late points need max-delay >= 1".into());
        }
        if let Some(t) = self.zipf {
            if !(t.is_finite() && t >= 0.0) {
                return Err(format!("zipf exponent {t} is invalid: must be >= 0"));
            }
        }
        let last = i128::from(self.ts0)
            + i128::from(self.interval) * (i128::from(self.series) * i128::from(self.points) + 2);
        if last > i128::from(i64::MAX) {
            return Err(format!(
                "timestamps overflow i64: {} series x {} points (after --scale) is too many; \
                 lower --series, --points or --scale",
                self.series, self.points
            ));
        }
        Ok(())
    }

    /// Points of each series: `points` each, or the Zipf shares of
    /// `series * points` (rounded down, the remainder to the hottest series).
    pub fn counts(&self) -> Vec<u64> {
        let n = self.series as usize;
        let Some(theta) = self.zipf else {
            return vec![self.points; n];
        };
        let total = u64::from(self.series) * self.points;
        let weights: Vec<f64> = (0..n).map(|s| 1.0 / ((s + 1) as f64).powf(theta)).collect();
        let sum: f64 = weights.iter().sum();
        let mut counts: Vec<u64> = weights
            .iter()
            .map(|w| (total as f64 * w / sum).floor() as u64)
            .collect();
        let assigned: u64 = counts.iter().sum();
        // Each floor loses < 1, so the remainder is < n: one more each to the hottest.
        let rest = total.saturating_sub(assigned) as usize;
        for c in counts.iter_mut().take(rest) {
            *c += 1;
        }
        counts
    }
}

/// One series' record stream in emission order, tagged with the round.
struct SeriesGen {
    series: u32,
    count: u64,
    rounds: u64,
    seed: u64,
    values: ValueShape,
    ts0: i64,
    interval: i64,
    late: Option<Bernoulli>,
    max_delay: u64,
    dup: Option<Bernoulli>,
    rng: WorkloadRng,
    next_point: u64,
    delayed: BinaryHeap<Reverse<(u64, u64)>>,
    recent: [u64; RECENT],
    recent_len: usize,
    recent_at: usize,
    versions: HashMap<u64, u32>,
    pending: Option<(u64, Record)>,
    head: Option<(u64, Record)>,
}

impl SeriesGen {
    fn new(cfg: &WorkloadConfig, series: u32, count: u64) -> Self {
        let mut g = SeriesGen {
            series,
            count,
            rounds: cfg.points,
            seed: cfg.seed,
            values: cfg.values,
            ts0: cfg.ts0,
            interval: cfg.interval,
            late: coin(cfg.late_pct),
            max_delay: cfg.max_delay,
            dup: coin(cfg.dup_pct),
            rng: stream_rng(cfg.seed, u64::from(series)),
            next_point: 0,
            delayed: BinaryHeap::new(),
            recent: [0; RECENT],
            recent_len: 0,
            recent_at: 0,
            versions: HashMap::new(),
            pending: None,
            head: None,
        };
        g.head = g.produce();
        g
    }

    /// Round in which point `i` is due when on time.
    fn round_of(&self, i: u64) -> u64 {
        (u128::from(i) * u128::from(self.rounds) / u128::from(self.count)) as u64
    }

    fn ts_of(&self, i: u64) -> i64 {
        self.ts0 + i as i64 * self.interval
    }

    fn emit(&mut self, round: u64, i: u64) -> (u64, Record) {
        let ts = self.ts_of(i);
        let rec = Record::new(
            self.series,
            ts,
            self.values.value(self.seed, self.series, i, ts, 0),
        );
        self.recent[self.recent_at] = i;
        self.recent_at = (self.recent_at + 1) % RECENT;
        self.recent_len = (self.recent_len + 1).min(RECENT);
        if flip(self.dup, &mut self.rng) {
            let j = self.recent[self.rng.random_range(0..self.recent_len)];
            let v = self.versions.entry(j).or_insert(0);
            *v += 1;
            let v = *v;
            let ts = self.ts_of(j);
            let value = self.values.value(self.seed, self.series, j, ts, v);
            let dup = Record::new(self.series, ts, value);
            self.pending = Some((round, dup));
        }
        (round, rec)
    }

    fn produce(&mut self) -> Option<(u64, Record)> {
        if let Some(p) = self.pending.take() {
            return Some(p);
        }
        loop {
            let on_time = (self.next_point < self.count).then(|| self.round_of(self.next_point));
            let due = self.delayed.peek().map(|Reverse((d, _))| *d);
            match (on_time, due) {
                (None, None) => return None,
                (_, Some(d)) if on_time.is_none_or(|r| d <= r) => {
                    let Reverse((d, i)) = self.delayed.pop().expect("peeked");
                    return Some(self.emit(d, i));
                }
                (Some(r), _) => {
                    let i = self.next_point;
                    self.next_point += 1;
                    if flip(self.late, &mut self.rng) {
                        let delay = self.rng.random_range(1..=self.max_delay);
                        self.delayed.push(Reverse((r + delay, i)));
                        continue;
                    }
                    return Some(self.emit(r, i));
                }
                (None, Some(_)) => unreachable!("handled by the guard above"),
            }
        }
    }

    fn peek_round(&self) -> Option<u64> {
        self.head.map(|(r, _)| r)
    }

    /// The next record if it is due in `round`.
    fn next_in(&mut self, round: u64) -> Option<Record> {
        match self.head {
            Some((r, rec)) if r == round => {
                self.head = self.produce();
                Some(rec)
            }
            _ => None,
        }
    }
}

/// Lookup query with its expected answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// Series of the key.
    pub series: u32,
    /// Timestamp of the key.
    pub ts: i64,
    /// The oracle's value, `None` for an absent key.
    pub expected: Option<u64>,
}

/// Range-scan query `[t0, t1)` of one series with its expected record count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanQuery {
    /// Series scanned.
    pub series: u32,
    /// First timestamp included.
    pub t0: i64,
    /// First timestamp excluded.
    pub t1: i64,
    /// Records the oracle has in the range.
    pub expected: u64,
}

/// A generated workload: its config and oracle; record streams on demand.
#[derive(Debug)]
pub struct Workload {
    config: WorkloadConfig,
    oracle: Oracle,
}

/// Scoped-thread count for generation work.
fn gen_threads() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

impl Workload {
    /// Validates `config` and computes the oracle (one pass over every
    /// series' stream, records discarded).
    pub fn new(config: WorkloadConfig) -> Result<Self, String> {
        config.validate()?;
        let counts = config.counts();
        let n = counts.len();
        let chunk = n.div_ceil(gen_threads());
        let results: Vec<(HashMap<Key, u32>, u64)> = thread::scope(|sc| {
            let handles: Vec<_> = (0..n)
                .step_by(chunk)
                .map(|lo| {
                    let (config, counts) = (&config, &counts);
                    sc.spawn(move || {
                        let mut versions = HashMap::new();
                        let mut records = 0u64;
                        for (s, &count) in counts.iter().enumerate().skip(lo).take(chunk) {
                            let mut g = SeriesGen::new(config, s as u32, count);
                            while let Some(r) = g.peek_round() {
                                g.next_in(r);
                                records += 1;
                            }
                            for (i, v) in g.versions {
                                versions
                                    .insert(Key::new(s as u32, g.ts0 + i as i64 * g.interval), v);
                            }
                        }
                        (versions, records)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("oracle thread panicked"))
                .collect()
        });
        let mut versions = HashMap::new();
        let mut records = 0;
        for (v, r) in results {
            versions.extend(v);
            records += r;
        }
        let oracle = Oracle::new(
            config.seed,
            config.values,
            config.ts0,
            config.interval,
            counts,
            versions,
            records,
        );
        Ok(Workload { config, oracle })
    }

    /// The parameters.
    pub fn config(&self) -> &WorkloadConfig {
        &self.config
    }

    /// The expected final state.
    pub fn oracle(&self) -> &Oracle {
        &self.oracle
    }

    /// The writer that owns `series` among `writers`.
    pub fn owner(series: u32, writers: usize) -> usize {
        series as usize % writers
    }

    /// The record stream of writer `w` of `writers`.
    pub fn writer_records(&self, w: usize, writers: usize) -> Vec<Record> {
        self.writer_records_split(w, writers, u64::MAX).0
    }

    /// The record stream of writer `w` of `writers`, cut in two: the
    /// records emitted in rounds before `round`, and the rest.
    pub fn writer_records_split(
        &self,
        w: usize,
        writers: usize,
        round: u64,
    ) -> (Vec<Record>, Vec<Record>) {
        let mut gens: Vec<SeriesGen> = (w as u32..self.config.series)
            .step_by(writers)
            .map(|s| SeriesGen::new(&self.config, s, self.oracle.points(s)))
            .collect();
        let points: u64 = gens.iter().map(|g| g.count).sum();
        let cap = points as f64 * (1.0 + self.config.dup_pct / 100.0) * 1.001 + 64.0;
        let share = (round as f64 / self.config.points as f64).min(1.0);
        let mut before = Vec::with_capacity((cap * share) as usize);
        let mut after = Vec::with_capacity((cap * (1.0 - share)) as usize);
        let split = round;
        let mut round = gens.iter().filter_map(SeriesGen::peek_round).min();
        while let Some(r) = round {
            let mut next = None::<u64>;
            let out = if r < split { &mut before } else { &mut after };
            for g in &mut gens {
                while let Some(rec) = g.next_in(r) {
                    out.push(rec);
                }
                if let Some(nr) = g.peek_round() {
                    next = Some(next.map_or(nr, |x| x.min(nr)));
                }
            }
            round = next;
        }
        (before, after)
    }

    /// Every writer's record stream, generated in parallel (do this before timing).
    pub fn partition(&self, writers: usize) -> Vec<Vec<Record>> {
        self.partition_split(writers, u64::MAX).0
    }

    /// Every writer's record stream cut at `round` (see
    /// [`writer_records_split`](Self::writer_records_split)): the parts
    /// before it, and the parts from it on.
    pub fn partition_split(
        &self,
        writers: usize,
        round: u64,
    ) -> (Vec<Vec<Record>>, Vec<Vec<Record>>) {
        assert!(writers >= 1, "need at least one writer");
        let per = writers.div_ceil(gen_threads());
        thread::scope(|sc| {
            let handles: Vec<_> = (0..writers)
                .step_by(per)
                .map(|lo| {
                    sc.spawn(move || {
                        (lo..(lo + per).min(writers))
                            .map(|w| self.writer_records_split(w, writers, round))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("generator thread panicked"))
                .unzip()
        })
    }

    /// `n` lookups in random order; `absent_pct` percent of them (rounded
    /// down) are keys never written: off-grid timestamps, points past a
    /// series' end, and unknown series, in equal shares. The rest are present
    /// keys drawn uniformly.
    pub fn lookups(&self, n: usize, absent_pct: f64, salt: u64) -> Vec<Lookup> {
        let o = &self.oracle;
        let mut rng = stream_rng(self.config.seed, 0x4C4F_4F4B ^ salt);
        let absent = ((n as f64) * absent_pct.clamp(0.0, 100.0) / 100.0) as usize;
        let distinct = o.distinct_keys();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n - absent {
            let (s, i) = o.nth_key(rng.random_range(0..distinct));
            out.push(Lookup {
                series: s,
                ts: o.ts_of(i),
                expected: Some(o.value_at(s, i)),
            });
        }
        for k in 0..absent {
            let (series, ts) = match k % 3 {
                0 => {
                    let (s, i) = o.nth_key(rng.random_range(0..distinct));
                    (s, o.ts_of(i) + o.interval() / 2)
                }
                1 => {
                    let s = rng.random_range(0..o.series());
                    (s, o.ts_of(o.points(s) + rng.random_range(0..1000)))
                }
                _ => {
                    let s = o.series().saturating_add(rng.random_range(0..1000));
                    (s, o.ts_of(rng.random_range(0..self.config.points)))
                }
            };
            debug_assert_eq!(o.expected(series, ts), None);
            out.push(Lookup {
                series,
                ts,
                expected: None,
            });
        }
        out.shuffle(&mut rng);
        out
    }

    /// `n` scans of up to `len` records: a key drawn uniformly, the range
    /// starting at a random timestamp in the interval before it (but not
    /// before the series' first point: like the predecessor's, every start
    /// lies within the series' data) and spanning `len` intervals.
    pub fn scans(&self, n: usize, len: u64) -> Vec<ScanQuery> {
        let o = &self.oracle;
        let mut rng = stream_rng(self.config.seed, 0x5343_414E);
        (0..n)
            .map(|_| {
                let (series, i) = o.nth_key(rng.random_range(0..o.distinct_keys()));
                let back = rng.random_range(0..o.interval());
                let t0 = if i == 0 {
                    o.ts_of(0)
                } else {
                    o.ts_of(i) - back
                };
                let t1 = t0 + len as i64 * o.interval();
                ScanQuery {
                    series,
                    t0,
                    t1,
                    expected: o.count_in(series, t0, t1),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;

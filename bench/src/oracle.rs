//! The expected final state of a workload, computed without storing it.
//!
//! Series `s` holds the points `0..count(s)`; point `i` has timestamp
//! `ts0 + i * interval`, so presence and range counts are arithmetic. A value
//! is a function of `(seed, series, point, version)` chosen by the
//! workload's [`ValueShape`]: version 0 is the first write, and only keys
//! that the generator re-emitted (duplicates) are stored, with their final
//! version. Every series is written by exactly one writer, in order, so "the
//! later value wins" has one well-defined answer.
//!
//! The gauge and the counter shapes look sequential (a gauge wanders by a
//! few cents per point, a counter only grows) but carry no state from point
//! to point: each is a slow wave plus a hash of the point index, so the
//! oracle knows any point's value in O(1) and stores nothing per point.

use std::collections::HashMap;

use clap::ValueEnum;
use numatree_core::Key;
use serde::Serialize;

/// What the values of a workload look like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ValueShape {
    /// A 64-bit hash of the key and version (uniform bits; what every
    /// phase but the block-life ones measures).
    #[default]
    Key,
    /// The `f64` bits of a two-decimal gauge near 20.00: a per-series
    /// triangle wave (+-5.00 over 2,048 points, 0.01 per point at most)
    /// plus 0.00..=0.24 of per-point jitter, so consecutive points differ
    /// by at most 0.25; a duplicate adds 0.01 per version.
    Gauge,
    /// A `u64` counter that grows by 1..=15 per point from a per-series
    /// start (8 per point plus 0..=7 of jitter); a duplicate adds its version.
    Counter,
    /// Uniform `u64` bits, a hash of another salt than [`Key`](Self::Key)'s.
    Random,
}

impl ValueShape {
    /// Every shape, in report order.
    pub const ALL: [ValueShape; 4] = [
        ValueShape::Key,
        ValueShape::Gauge,
        ValueShape::Counter,
        ValueShape::Random,
    ];

    /// The name on the command line, in JSON and in the report.
    pub fn name(self) -> &'static str {
        match self {
            ValueShape::Key => "key",
            ValueShape::Gauge => "gauge",
            ValueShape::Counter => "counter",
            ValueShape::Random => "random",
        }
    }

    /// The value written for point `i` (timestamp `ts`) of `series` at
    /// `version` (0 = first write). Distinct versions of a key give
    /// distinct values.
    #[inline]
    pub fn value(self, seed: u64, series: u32, i: u64, ts: i64, version: u32) -> u64 {
        match self {
            ValueShape::Key => value_of(seed, series, ts, version),
            ValueShape::Random => value_of(seed ^ RANDOM_SALT, series, ts, version),
            ValueShape::Gauge => {
                let h = point_hash(seed, series, i);
                let phase = series_hash(seed, series) % GAUGE_PERIOD;
                let x = (i + phase) % GAUGE_PERIOD;
                let wave = (x as i64 - (GAUGE_PERIOD / 2) as i64).abs() * GAUGE_AMPLITUDE
                    / (GAUGE_PERIOD / 2) as i64
                    - GAUGE_AMPLITUDE / 2;
                let cents = 2_000 + wave + (h % 25) as i64 + i64::from(version);
                (cents as f64 / 100.0).to_bits()
            }
            ValueShape::Counter => {
                let start = series_hash(seed, series) % 1_000_000;
                start + i * 8 + point_hash(seed, series, i) % 8 + u64::from(version)
            }
        }
    }
}

/// Salt of [`ValueShape::Random`]'s hash.
const RANDOM_SALT: u64 = 0x5241_4E44_4F4D_0001;
/// Points per cycle of the gauge's wave.
const GAUGE_PERIOD: u64 = 2_048;
/// Peak-to-peak height of the gauge's wave, in cents.
const GAUGE_AMPLITUDE: i64 = 1_000;

#[inline]
fn series_hash(seed: u64, series: u32) -> u64 {
    mix64(seed ^ mix64(u64::from(series).wrapping_mul(0xD6E8_FEB8_6659_FD93)))
}

#[inline]
fn point_hash(seed: u64, series: u32, i: u64) -> u64 {
    mix64(series_hash(seed, series) ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// The SplitMix64 finaliser: a cheap bijective 64-bit mix. A hash of a key,
/// not a random number generator: the value of a key must not depend on how
/// many random numbers were drawn before it.
#[inline]
const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The value written for `(series, ts)` at `version` (0 = first write).
#[inline]
pub fn value_of(seed: u64, series: u32, ts: i64, version: u32) -> u64 {
    let h = mix64(seed ^ mix64(u64::from(series).wrapping_mul(0xA24B_AED4_963E_E407)));
    let h = mix64(h ^ ts as u64);
    mix64(h ^ u64::from(version).wrapping_mul(0x9FB2_1C65_1E98_DF25))
}

/// What every contender must hold after ingesting a workload.
#[derive(Clone, Debug)]
pub struct Oracle {
    seed: u64,
    values: ValueShape,
    ts0: i64,
    interval: i64,
    counts: Vec<u64>,
    /// `prefix[s]` = points in series `0..s`; `prefix[S]` = distinct keys.
    prefix: Vec<u64>,
    versions: HashMap<Key, u32>,
    records: u64,
}

impl Oracle {
    /// Builds an oracle from per-series point counts, the final versions of
    /// re-emitted keys and the total number of records emitted.
    pub fn new(
        seed: u64,
        values: ValueShape,
        ts0: i64,
        interval: i64,
        counts: Vec<u64>,
        versions: HashMap<Key, u32>,
        records: u64,
    ) -> Self {
        let mut prefix = Vec::with_capacity(counts.len() + 1);
        let mut acc = 0u64;
        prefix.push(0);
        for &c in &counts {
            acc += c;
            prefix.push(acc);
        }
        Oracle {
            seed,
            values,
            ts0,
            interval,
            counts,
            prefix,
            versions,
            records,
        }
    }

    /// Number of series (ids `0..series()`), including any with no points.
    pub fn series(&self) -> u32 {
        self.counts.len() as u32
    }

    /// Points (distinct keys) of `series`; 0 for unknown series.
    pub fn points(&self, series: u32) -> u64 {
        self.counts.get(series as usize).copied().unwrap_or(0)
    }

    /// Distinct keys over all series: what `len()` must report.
    pub fn distinct_keys(&self) -> u64 {
        *self.prefix.last().unwrap_or(&0)
    }

    /// Records emitted over all writers, duplicates included.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Keys written more than once (duplicates), with their final version.
    pub fn rewritten_keys(&self) -> impl Iterator<Item = (Key, u32)> + '_ {
        self.versions.iter().map(|(k, v)| (*k, *v))
    }

    /// Timestamp of point `i` of any series.
    #[inline]
    pub fn ts_of(&self, i: u64) -> i64 {
        self.ts0 + i as i64 * self.interval
    }

    /// The workload's seed (values derive from it).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// What the values look like.
    pub fn values(&self) -> ValueShape {
        self.values
    }

    /// Scrape interval between consecutive points of a series, in timestamp units.
    pub fn interval(&self) -> i64 {
        self.interval
    }

    /// The final value of point `i` of `series` (`i < points(series)`).
    #[inline]
    pub fn value_at(&self, series: u32, i: u64) -> u64 {
        let ts = self.ts_of(i);
        let version = if self.versions.is_empty() {
            0
        } else {
            self.versions
                .get(&Key::new(series, ts))
                .copied()
                .unwrap_or(0)
        };
        self.values.value(self.seed, series, i, ts, version)
    }

    /// The final value of `(series, ts)`, or `None` if the key was never written.
    pub fn expected(&self, series: u32, ts: i64) -> Option<u64> {
        let off = i128::from(ts) - i128::from(self.ts0);
        let iv = i128::from(self.interval);
        if off < 0 || off % iv != 0 {
            return None;
        }
        let i = off / iv;
        (i < i128::from(self.points(series))).then(|| self.value_at(series, i as u64))
    }

    /// Number of points `i` of `series` with `t0 <= ts_of(i) < t1`.
    pub fn count_in(&self, series: u32, t0: i64, t1: i64) -> u64 {
        if t0 >= t1 {
            return 0;
        }
        self.first_at_or_after(series, t1) - self.first_at_or_after(series, t0)
    }

    /// The first point index of `series` with timestamp `>= t`, clamped to
    /// `0..=points(series)`.
    pub fn first_at_or_after(&self, series: u32, t: i64) -> u64 {
        let off = i128::from(t) - i128::from(self.ts0);
        let iv = i128::from(self.interval);
        let idx = if off <= 0 { 0 } else { (off + iv - 1) / iv };
        idx.min(i128::from(self.points(series))) as u64
    }

    /// Points of all series with timestamp `>= t`: what an index holds
    /// after dropping everything before `t`.
    pub fn keys_from(&self, t: i64) -> u64 {
        (0..self.series())
            .map(|s| self.points(s) - self.first_at_or_after(s, t))
            .sum()
    }

    /// The `g`-th distinct key in key order (`g < distinct_keys()`), as
    /// `(series, point index)`: picking `g` uniformly picks keys uniformly.
    pub fn nth_key(&self, g: u64) -> (u32, u64) {
        debug_assert!(g < self.distinct_keys());
        // Last s with prefix[s] <= g, skipping empty series.
        let s = self.prefix.partition_point(|&p| p <= g) - 1;
        (s as u32, g - self.prefix[s])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Oracle {
        let mut versions = HashMap::new();
        versions.insert(Key::new(2, 120), 2);
        Oracle::new(9, ValueShape::Key, 100, 10, vec![3, 0, 4], versions, 9)
    }

    #[test]
    fn presence_and_values_follow_the_grid_and_final_versions() {
        let o = small();
        assert_eq!(o.distinct_keys(), 7);
        assert_eq!(o.expected(0, 100), Some(value_of(9, 0, 100, 0)));
        assert_eq!(o.expected(0, 105), None);
        assert_eq!(o.expected(0, 130), None);
        assert_eq!(o.expected(1, 100), None);
        assert_eq!(o.expected(2, 120), Some(value_of(9, 2, 120, 2)));
        assert_eq!(o.expected(2, 110), Some(value_of(9, 2, 110, 0)));
        assert_eq!(o.expected(7, 100), None);
        assert_eq!(o.expected(0, 90), None);
    }

    #[test]
    fn gauges_wander_by_at_most_a_quarter_and_counters_only_grow() {
        for series in 0..8 {
            let gauge =
                |i: u64, v: u32| f64::from_bits(ValueShape::Gauge.value(7, series, i, 0, v));
            let counter = |i: u64| ValueShape::Counter.value(7, series, i, 0, 0);
            for i in 0..5_000 {
                let g = gauge(i, 0);
                assert_eq!((g * 100.0).round() / 100.0, g, "two decimals");
                assert!((14.0..=26.0).contains(&g), "{g}");
                assert!((gauge(i + 1, 0) - g).abs() <= 0.2501, "step at {i}");
                assert!(gauge(i, 1) != g && gauge(i, 2) != gauge(i, 1));
                let step = counter(i + 1) - counter(i);
                assert!((1..=15).contains(&step), "{step}");
            }
        }
        let r = |v| ValueShape::Random.value(7, 1, 3, 130, v);
        assert_ne!(r(0), r(1));
        assert_ne!(r(0), ValueShape::Key.value(7, 1, 3, 130, 0));
    }

    #[test]
    fn range_counts_are_half_open_and_clamped() {
        let o = small();
        assert_eq!(o.count_in(2, i64::MIN, i64::MAX), 4);
        assert_eq!(o.count_in(2, 100, 120), 2);
        assert_eq!(o.count_in(2, 101, 121), 2);
        assert_eq!(o.count_in(2, 95, 100), 0);
        assert_eq!(o.count_in(2, 130, 131), 1);
        assert_eq!(o.count_in(2, 131, 100), 0);
    }

    #[test]
    fn nth_key_walks_keys_in_order_skipping_empty_series() {
        let o = small();
        let keys: Vec<_> = (0..7).map(|g| o.nth_key(g)).collect();
        assert_eq!(
            keys,
            vec![(0, 0), (0, 1), (0, 2), (2, 0), (2, 1), (2, 2), (2, 3)]
        );
    }
}

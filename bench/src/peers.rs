//! The peers numatree is measured against, in the same process on the same
//! data, each with upsert semantics:
//!
//! | name | structure | writes |
//! |---|---|---|
//! | `btree-rwlock` | one `BTreeMap` behind a `std::sync::RwLock` | write lock taken once per batch |
//! | `btree-sharded` | 64 `Mutex<BTreeMap>` shards, series hashed to a shard | lock per record |
//! | `skiplist` | `crossbeam_skiplist::SkipMap` | lock-free, per record |
//! | `scc-treeindex` | `scc::TreeIndex` (`upsert_sync`) | lock-free reads, per record |
//! | `series-vec` | one `Mutex<Vec<(i64, u64)>>` per series, indexed by series id | lock per record: push in order, binary-search upsert when late |
//! | `vec-ceiling` | one `Vec` per writer, `extend_from_slice` per batch | the writer-only ceiling; no queries |

use std::collections::BTreeMap;
use std::sync::{Mutex, RwLock};

use crossbeam_skiplist::SkipMap;
use numatree_core::{Key, Record};
use scc::TreeIndex;

use crate::contender::{
    run_writers, BuildOptions, Caps, Contender, ContenderFactory, IngestTiming,
};

const INDEX: Caps = Caps {
    queries: true,
    reserved: false,
};

/// The half-open key range of one series' timestamps `t0..t1`, or `None` if empty.
#[inline]
fn key_range(series: u32, t0: i64, t1: i64) -> Option<std::ops::Range<Key>> {
    (t0 < t1).then(|| Key::new(series, t0)..Key::new(series, t1))
}

/// Pads a value to its own cache-line pair so neighbours do not false-share.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Padded<T>(T);

// ---------------------------------------------------------------- btree-rwlock

/// `BTreeMap` behind one `RwLock`: the simplest correct concurrent index.
#[derive(Debug, Default)]
pub struct BTreeRwLock {
    map: RwLock<BTreeMap<Key, u64>>,
}

impl Contender for BTreeRwLock {
    fn name(&self) -> &str {
        "btree-rwlock"
    }

    fn ingest(&self, parts: &[&[Record]], batch: usize) -> IngestTiming {
        IngestTiming::synchronous(run_writers(parts, |_, part| {
            for chunk in part.chunks(batch.max(1)) {
                let mut map = self.map.write().expect("btree-rwlock poisoned");
                for r in chunk {
                    map.insert(r.key, r.value);
                }
            }
        }))
    }

    fn get(&self, series: u32, ts: i64) -> Option<u64> {
        self.map
            .read()
            .expect("btree-rwlock poisoned")
            .get(&Key::new(series, ts))
            .copied()
    }

    fn scan(&self, series: u32, t0: i64, t1: i64, out: &mut Vec<(i64, u64)>) -> usize {
        let Some(range) = key_range(series, t0, t1) else {
            return 0;
        };
        let before = out.len();
        let map = self.map.read().expect("btree-rwlock poisoned");
        out.extend(map.range(range).map(|(k, v)| (k.ts, *v)));
        out.len() - before
    }

    fn len(&self) -> usize {
        self.map.read().expect("btree-rwlock poisoned").len()
    }
}

/// Factory for [`BTreeRwLock`].
pub fn btree_rwlock() -> ContenderFactory {
    ContenderFactory::new("btree-rwlock", INDEX, |_| Box::new(BTreeRwLock::default()))
}

// --------------------------------------------------------------- btree-sharded

/// Number of shards of [`BTreeSharded`].
pub const SHARDS: usize = 64;

/// 64 `Mutex<BTreeMap>` shards; a series lives in one shard (multiplicative
/// hash of the series id), so a scan locks one shard.
#[derive(Debug)]
pub struct BTreeSharded {
    shards: Vec<Padded<Mutex<BTreeMap<Key, u64>>>>,
}

impl Default for BTreeSharded {
    fn default() -> Self {
        BTreeSharded {
            shards: (0..SHARDS).map(|_| Padded::default()).collect(),
        }
    }
}

impl BTreeSharded {
    #[inline]
    fn shard(&self, series: u32) -> &Mutex<BTreeMap<Key, u64>> {
        let h = series.wrapping_mul(0x9E37_79B9) >> (32 - SHARDS.trailing_zeros());
        &self.shards[h as usize].0
    }
}

impl Contender for BTreeSharded {
    fn name(&self) -> &str {
        "btree-sharded"
    }

    fn ingest(&self, parts: &[&[Record]], _batch: usize) -> IngestTiming {
        IngestTiming::synchronous(run_writers(parts, |_, part| {
            for r in part {
                self.shard(r.key.series)
                    .lock()
                    .expect("shard poisoned")
                    .insert(r.key, r.value);
            }
        }))
    }

    fn get(&self, series: u32, ts: i64) -> Option<u64> {
        self.shard(series)
            .lock()
            .expect("shard poisoned")
            .get(&Key::new(series, ts))
            .copied()
    }

    fn scan(&self, series: u32, t0: i64, t1: i64, out: &mut Vec<(i64, u64)>) -> usize {
        let Some(range) = key_range(series, t0, t1) else {
            return 0;
        };
        let before = out.len();
        let shard = self.shard(series).lock().expect("shard poisoned");
        out.extend(shard.range(range).map(|(k, v)| (k.ts, *v)));
        out.len() - before
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.0.lock().expect("shard poisoned").len())
            .sum()
    }

    fn extra(&self) -> serde_json::Value {
        serde_json::json!({ "shards": SHARDS })
    }
}

/// Factory for [`BTreeSharded`].
pub fn btree_sharded() -> ContenderFactory {
    ContenderFactory::new(
        "btree-sharded",
        INDEX,
        |_| Box::new(BTreeSharded::default()),
    )
}

// -------------------------------------------------------------------- skiplist

/// `crossbeam_skiplist::SkipMap`: lock-free inserts; `insert` replaces.
#[derive(Debug, Default)]
pub struct SkipList {
    map: SkipMap<Key, u64>,
}

impl Contender for SkipList {
    fn name(&self) -> &str {
        "skiplist"
    }

    fn ingest(&self, parts: &[&[Record]], _batch: usize) -> IngestTiming {
        IngestTiming::synchronous(run_writers(parts, |_, part| {
            for r in part {
                self.map.insert(r.key, r.value);
            }
        }))
    }

    fn get(&self, series: u32, ts: i64) -> Option<u64> {
        self.map.get(&Key::new(series, ts)).map(|e| *e.value())
    }

    fn scan(&self, series: u32, t0: i64, t1: i64, out: &mut Vec<(i64, u64)>) -> usize {
        let Some(range) = key_range(series, t0, t1) else {
            return 0;
        };
        let before = out.len();
        out.extend(self.map.range(range).map(|e| (e.key().ts, *e.value())));
        out.len() - before
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// Factory for [`SkipList`].
pub fn skiplist() -> ContenderFactory {
    ContenderFactory::new("skiplist", INDEX, |_| Box::new(SkipList::default()))
}

// --------------------------------------------------------------- scc-treeindex

/// `scc::TreeIndex`: `upsert_sync` writes, `peek_with` lookups, guarded range scans.
/// Its `len()` walks the whole tree (O(n)); the harness calls it only to verify.
/// Scans start no lower than the smallest key (see `scan`): scc 3.8.8 is
/// pathologically slow on ranges that begin below it.
#[derive(Debug, Default)]
pub struct SccTree {
    tree: TreeIndex<Key, u64>,
}

impl Contender for SccTree {
    fn name(&self) -> &str {
        "scc-treeindex"
    }

    fn ingest(&self, parts: &[&[Record]], _batch: usize) -> IngestTiming {
        IngestTiming::synchronous(run_writers(parts, |_, part| {
            for r in part {
                self.tree.upsert_sync(r.key, r.value);
            }
        }))
    }

    fn get(&self, series: u32, ts: i64) -> Option<u64> {
        self.tree.peek_with(&Key::new(series, ts), |_, v| *v)
    }

    fn scan(&self, series: u32, t0: i64, t1: i64, out: &mut Vec<(i64, u64)>) -> usize {
        let Some(mut range) = key_range(series, t0, t1) else {
            return 0;
        };
        let before = out.len();
        let guard = scc::Guard::new();
        // scc 3.8.8: a range whose start lies below the tree's smallest key
        // walks the whole leaf chain backwards (18 s for an empty range at 1M
        // keys). Starting at the smallest key gives the same records in O(depth).
        let Some((&min, _)) = self.tree.iter(&guard).next() else {
            return 0;
        };
        if range.end <= min {
            return 0;
        }
        range.start = range.start.max(min);
        out.extend(self.tree.range(range, &guard).map(|(k, v)| (k.ts, *v)));
        out.len() - before
    }

    fn len(&self) -> usize {
        self.tree.len()
    }

    fn extra(&self) -> serde_json::Value {
        serde_json::json!({ "depth": self.tree.depth() })
    }
}

/// Factory for [`SccTree`].
pub fn scc_tree() -> ContenderFactory {
    ContenderFactory::new("scc-treeindex", INDEX, |_| Box::new(SccTree::default()))
}

// ------------------------------------------------------------------ series-vec

/// One series' points, ascending by timestamp.
type Points = Vec<(i64, u64)>;

/// What a time-series user writes by hand (Prometheus' head block has this
/// shape): one `Mutex<Vec<(ts, value)>>` per series, in a boxed slice
/// indexed by the dense series id. A point newer than the series' last one
/// is pushed; an older one is upserted at its binary-search position
/// (`Ok` replaces, `Err` inserts). `get` is a binary search, `scan` two
/// `partition_point`s and one copy of the range.
///
/// The mutexes are not padded (32 bytes each, two to a cache line): neighbours
/// belong to different writers (series `s` to writer `s % T`), but a writer
/// visits its series round-robin, so two writers rarely touch one line at
/// once. Measured (2 cores, 5 repeats, 1/2/32 threads): padding to 64 or 128
/// bytes changed nothing at 1,024 x 10,000, and at 1,000,000 x 10 it cost
/// 10-20% of insert throughput and 3.2-9.6 bytes per point.
#[derive(Debug)]
pub struct SeriesVec {
    series: Box<[Mutex<Points>]>,
}

impl SeriesVec {
    /// Empty vectors for the series ids `0..series`.
    pub fn new(series: u32) -> Self {
        SeriesVec {
            series: (0..series).map(|_| Mutex::default()).collect(),
        }
    }

    /// The points of `series`, locked; `None` for an id beyond the series count.
    #[inline]
    fn points(&self, series: u32) -> Option<std::sync::MutexGuard<'_, Points>> {
        self.series
            .get(series as usize)
            .map(|p| p.lock().expect("series-vec poisoned"))
    }

    /// Stores `value` at `ts` in `points`, replacing an equal timestamp.
    #[inline]
    fn upsert(points: &mut Points, ts: i64, value: u64) {
        match points.last() {
            Some(&(last, _)) if ts <= last => match points.binary_search_by_key(&ts, |p| p.0) {
                Ok(i) => points[i].1 = value,
                Err(i) => points.insert(i, (ts, value)),
            },
            _ => points.push((ts, value)),
        }
    }
}

impl Contender for SeriesVec {
    fn name(&self) -> &str {
        "series-vec"
    }

    fn ingest(&self, parts: &[&[Record]], _batch: usize) -> IngestTiming {
        IngestTiming::synchronous(run_writers(parts, |_, part| {
            for r in part {
                let mut points = self.points(r.key.series).unwrap_or_else(|| {
                    panic!(
                        "series-vec: series {} beyond the {} it was built for",
                        r.key.series,
                        self.series.len()
                    )
                });
                Self::upsert(&mut points, r.key.ts, r.value);
            }
        }))
    }

    fn get(&self, series: u32, ts: i64) -> Option<u64> {
        let points = self.points(series)?;
        points
            .binary_search_by_key(&ts, |p| p.0)
            .ok()
            .map(|i| points[i].1)
    }

    fn scan(&self, series: u32, t0: i64, t1: i64, out: &mut Vec<(i64, u64)>) -> usize {
        if t0 >= t1 {
            return 0;
        }
        let Some(points) = self.points(series) else {
            return 0;
        };
        let lo = points.partition_point(|p| p.0 < t0);
        let hi = lo + points[lo..].partition_point(|p| p.0 < t1);
        out.extend_from_slice(&points[lo..hi]);
        hi - lo
    }

    fn len(&self) -> usize {
        self.series
            .iter()
            .map(|p| p.lock().expect("series-vec poisoned").len())
            .sum()
    }
}

/// Factory for [`SeriesVec`], sized by the workload's series count.
pub fn series_vec() -> ContenderFactory {
    ContenderFactory::new("series-vec", INDEX, |o| Box::new(SeriesVec::new(o.series)))
}

// ----------------------------------------------------------------- vec-ceiling

/// The writer-only ceiling: writer `i` appends its part to its own `Vec` with
/// `extend_from_slice`, one batch at a time. No index, no queries: the
/// harness reports its lookup and scan rows as "n/a" and checks only its
/// record count. The reserved (warm) variant pre-faults each writer's
/// capacity before timing.
#[derive(Debug, Default)]
pub struct VecCeiling {
    per_writer: Mutex<Vec<Vec<Record>>>,
}

impl VecCeiling {
    /// A ceiling sized by `opts`: empty, or with pre-faulted capacity when `opts.reserved`.
    pub fn new(opts: &BuildOptions) -> Self {
        let writers = opts.writers.max(1);
        let vecs = (0..writers)
            .map(|_| {
                if !opts.reserved {
                    return Vec::new();
                }
                let cap = opts.expected_records.div_ceil(writers);
                let mut v = Vec::with_capacity(cap + cap / 8 + 4096);
                // Touch every page now so the timed run takes no page faults.
                v.resize(v.capacity(), Record::ZERO);
                v.clear();
                v
            })
            .collect();
        VecCeiling {
            per_writer: Mutex::new(vecs),
        }
    }
}

impl Contender for VecCeiling {
    fn name(&self) -> &str {
        "vec-ceiling"
    }

    fn ingest(&self, parts: &[&[Record]], batch: usize) -> IngestTiming {
        let mut owned = std::mem::take(&mut *self.per_writer.lock().expect("vec-ceiling poisoned"));
        owned.resize_with(owned.len().max(parts.len()), Vec::new);
        let cells: Vec<Mutex<Vec<Record>>> = owned.into_iter().map(Mutex::new).collect();
        let writer = run_writers(parts, |i, part| {
            let mut v = cells[i].lock().expect("vec-ceiling poisoned");
            for chunk in part.chunks(batch.max(1)) {
                v.extend_from_slice(chunk);
            }
        });
        *self.per_writer.lock().expect("vec-ceiling poisoned") = cells
            .into_iter()
            .map(|c| c.into_inner().expect("vec-ceiling poisoned"))
            .collect();
        IngestTiming::synchronous(writer)
    }

    /// Not supported (the harness never calls it): always `None`.
    fn get(&self, _series: u32, _ts: i64) -> Option<u64> {
        None
    }

    /// Not supported (the harness never calls it): always 0.
    fn scan(&self, _series: u32, _t0: i64, _t1: i64, _out: &mut Vec<(i64, u64)>) -> usize {
        0
    }

    fn len(&self) -> usize {
        self.per_writer
            .lock()
            .expect("vec-ceiling poisoned")
            .iter()
            .map(Vec::len)
            .sum()
    }
}

/// Factory for [`VecCeiling`].
pub fn vec_ceiling() -> ContenderFactory {
    ContenderFactory::new(
        "vec-ceiling",
        Caps {
            queries: false,
            reserved: true,
        },
        |o| Box::new(VecCeiling::new(o)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(series: u32, ts: i64, value: u64) -> Record {
        Record::new(series, ts, value)
    }

    #[test]
    fn series_vec_pushes_in_order_upserts_late_points_and_scans_half_open_ranges() {
        let v = SeriesVec::new(3);
        let part = [
            rec(1, 10, 1),
            rec(1, 30, 3),
            rec(1, 20, 2),  // late: inserted between
            rec(1, 30, 33), // duplicate of the last: replaced
            rec(1, 10, 11), // duplicate of the first: replaced
            rec(1, 5, 0),   // late, before everything
            rec(2, 7, 7),
        ];
        v.ingest(&[&part], 2);
        assert_eq!(v.len(), 5);
        assert_eq!(v.get(1, 10), Some(11));
        assert_eq!(v.get(1, 30), Some(33));
        assert_eq!(v.get(1, 15), None);
        assert_eq!(v.get(0, 10), None);
        assert_eq!(
            v.get(3, 10),
            None,
            "an id beyond the series count is absent"
        );
        let mut out = Vec::new();
        assert_eq!(v.scan(1, 10, 30, &mut out), 2);
        assert_eq!(out, [(10, 11), (20, 2)]);
        out.clear();
        assert_eq!(v.scan(1, i64::MIN, i64::MAX, &mut out), 4);
        assert_eq!(out, [(5, 0), (10, 11), (20, 2), (30, 33)]);
        assert_eq!(v.scan(1, 30, 30, &mut out), 0, "empty range");
        assert_eq!(v.scan(1, 31, 20, &mut out), 0, "reversed range");
        assert_eq!(v.scan(u32::MAX, i64::MIN, i64::MAX, &mut out), 0);
        assert_eq!(out.len(), 4);
    }
}

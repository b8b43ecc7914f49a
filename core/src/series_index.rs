//! A whole index over column blocks with fixed capacities: a directory of
//! series (sorted by id) each with its block index, over one
//! [`BlockStore`]. What an embedded user links instead of the B+-tree, and
//! the oracle-tested composition of the series algorithms.

use core::ops::RangeBounds;

use crate::block_store::BlockStore;
use crate::error::Error;
use crate::record::Record;
use crate::series::{self, BlockEntry};
use crate::tree::MergeStats;

/// Up to `SERIES` series of up to `BLOCKS` blocks each, in store `S`.
#[derive(Clone, Debug)]
pub struct SeriesIndex<S, const SERIES: usize, const BLOCKS: usize> {
    store: S,
    /// `(series id, its block index)`, ascending by id; no empty index.
    series: heapless::Vec<(u32, heapless::Vec<BlockEntry, BLOCKS>), SERIES>,
}

impl<S: BlockStore, const SERIES: usize, const BLOCKS: usize> SeriesIndex<S, SERIES, BLOCKS> {
    /// An empty index over `store`.
    pub const fn new(store: S) -> Self {
        SeriesIndex {
            store,
            series: heapless::Vec::new(),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Series with at least one point.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    fn position(&self, series: u32) -> Result<usize, usize> {
        self.series.binary_search_by_key(&series, |(id, _)| *id)
    }

    /// Merges a run strictly ascending by `(series, ts)` (as
    /// [`sort_dedup`](crate::sort_dedup) leaves a slot): a later value of a
    /// key replaces the stored one.
    ///
    /// # Errors
    /// [`Error::Unsorted`] (nothing changed) or [`Error::Full`]: the first
    /// `applied` records are merged, the rest untouched; retry
    /// `&run[applied..]` once there is room.
    pub fn merge_run(&mut self, run: &[Record]) -> Result<MergeStats, Error> {
        if let Some(index) = (1..run.len()).find(|&i| run[i - 1].key >= run[i].key) {
            return Err(Error::Unsorted { index });
        }
        let mut stats = MergeStats::default();
        let mut start = 0;
        while start < run.len() {
            let id = run[start].key.series;
            let end = start + run[start..].partition_point(|r| r.key.series == id);
            let at = match self.position(id) {
                Ok(at) => at,
                Err(at) => {
                    if self.series.insert(at, (id, heapless::Vec::new())).is_err() {
                        return Err(Error::Full { applied: start });
                    }
                    at
                }
            };
            let list = &mut self.series[at].1;
            let result = series::merge(list, &mut self.store, &run[start..end]);
            if list.is_empty() {
                self.series.remove(at);
            }
            match result {
                Ok(s) => {
                    stats.inserted += s.inserted;
                    stats.replaced += s.replaced;
                }
                Err(Error::Full { applied }) => {
                    return Err(Error::Full {
                        applied: start + applied,
                    })
                }
                Err(e) => return Err(e),
            }
            start = end;
        }
        Ok(stats)
    }

    /// The value stored for `(series, ts)`.
    pub fn get(&self, series: u32, ts: i64) -> Option<u64> {
        let at = self.position(series).ok()?;
        series::get(&self.series[at].1, &self.store, ts)
    }

    /// Calls `f(ts, value)` for the points of `series` with `ts` in
    /// `range`, ascending, at most `limit` of them; returns how many.
    pub fn scan(
        &self,
        series: u32,
        range: impl RangeBounds<i64>,
        limit: usize,
        f: impl FnMut(i64, u64),
    ) -> usize {
        match self.position(series) {
            Ok(at) => series::scan(&self.series[at].1, &self.store, range, limit, f),
            Err(_) => 0,
        }
    }

    /// Points stored.
    pub fn len(&self) -> usize {
        self.series
            .iter()
            .map(|(_, list)| series::len(list, &self.store))
            .sum()
    }

    /// Whether no point is stored.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Checks every series' invariants and the directory's order; returns
    /// the point count.
    ///
    /// # Errors
    /// A description of the first violation.
    pub fn validate(&self) -> Result<usize, &'static str> {
        if self.series.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err("series directory not ascending");
        }
        let mut points = 0;
        for (_, list) in &self.series {
            if list.is_empty() {
                return Err("a series without blocks");
            }
            points += series::validate(list, &self.store)?;
        }
        Ok(points)
    }
}

//! The public face: [`Index`] (queries, flush, stats, writer threads,
//! close). Configuration lives in `builder`, the ingest machinery in
//! `pipeline` and `writer`; this module only wraps them.

use std::ops::RangeBounds;
use std::thread::{self, JoinHandle};

use numatree_core::PointSink;

use crate::builder::{check_range, Builder, Started, MAX_WRITERS_PER_NODE};
use crate::pipeline::Pipelines;
use crate::plan::Plan;
use crate::stats::Stats;
use crate::sync::{lock, Arc, Mutex};
use crate::topology::{NodeId, Topology};
use crate::writer::Writer;
use crate::Error;

impl Builder {
    /// Loads the topology, computes the plan, starts the pinned merge pools.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an out-of-range value or a combination
    /// that cannot work (the message names the value and its limit),
    /// [`Error::Topology`] for an unusable topology source,
    /// [`Error::Thread`] when a merge pool cannot start.
    pub fn build(self) -> Result<Index, Error> {
        let Started {
            pipelines,
            topology,
            merge_threads,
            bind,
        } = self.start()?;
        Ok(Index {
            pipelines,
            topology,
            merge_threads,
            bind,
        })
    }
}

/// What a writer thread started by [`Index::run_writers`] knows about itself.
#[derive(Clone, Debug)]
pub struct WriterContext {
    /// Plan index of the node the thread runs on.
    pub node: usize,
    /// That node's id.
    pub node_id: NodeId,
    /// Index of the thread among its node's writers.
    pub thread: usize,
    /// Index of the thread among all writers (`node * per_node + thread`).
    pub global: usize,
    /// Total writer threads.
    pub threads: usize,
    /// Whether the thread is really bound to its node's writer CPUs.
    pub pinned: bool,
}

/// A NUMA-aware, write-optimized, in-memory ordered index of
/// `(series, ts) -> value` records.
///
/// ```
/// use numatree::{Index, TopologySource};
///
/// let index = Index::builder()
///     .topology(TopologySource::Synthetic("pack:2 numa:1 core:2 pu:1".into()))
///     .slot_capacity(256)
///     .build()?;
/// std::thread::scope(|s| {
///     for w in 0..2u32 {
///         let index = &index;
///         s.spawn(move || {
///             let mut writer = index.writer();
///             for ts in 0..1_000 {
///                 writer.insert(w, ts, (ts * 10) as u64).unwrap();
///             }
///             writer.flush().unwrap();
///         });
///     }
/// });
/// index.flush()?;
/// assert_eq!(index.len(), 2_000);
/// assert_eq!(index.get(1, 42), Some(420));
/// assert_eq!(index.scan(0, 10..13), [(10, 100), (11, 110), (12, 120)]);
/// let stats = index.close()?;
/// stats.verify_accounting()?; // every accepted record is merged
/// assert_eq!(stats.total.records_inserted, 2_000);
/// # Ok::<(), numatree::Error>(())
/// ```
#[derive(Debug)]
pub struct Index {
    pipelines: Arc<Pipelines>,
    topology: Arc<Topology>,
    /// Join handles of every merge thread, joined by `close`.
    merge_threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    bind: bool,
}

impl Index {
    /// A builder with default settings.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A writer for the calling thread (not pinned; see [`run_writers`](Self::run_writers)).
    pub fn writer(&self) -> Writer {
        Writer::new(Arc::clone(&self.pipelines), None)
    }

    /// The value stored for `(series, ts)`, if merged. Takes no lock and
    /// never waits for a merge.
    #[inline]
    pub fn get(&self, series: u32, ts: i64) -> Option<u64> {
        self.storage(series).get(series, ts)
    }

    /// The storage of the shard that owns `series`.
    #[inline]
    fn storage(&self, series: u32) -> &crate::storage::ShardStorage {
        let (node, shard) = self.plan().route(series);
        &self.pipelines.nodes[node].shards[shard].storage
    }

    /// The `(ts, value)` pairs of `series` with `ts` in `range`, ascending.
    /// An inverted range is empty.
    pub fn scan(&self, series: u32, range: impl RangeBounds<i64>) -> Vec<(i64, u64)> {
        let mut out = Vec::new();
        self.scan_into(series, range, &mut out);
        out
    }

    /// Like [`scan`](Self::scan), appending into `out`; returns how many were appended.
    pub fn scan_into(
        &self,
        series: u32,
        range: impl RangeBounds<i64>,
        out: &mut Vec<(i64, u64)>,
    ) -> usize {
        self.storage(series)
            .scan(series, range, usize::MAX, VecSink(out))
    }

    /// Calls `f(ts, value)` for the points of `series` with `ts` in `range`,
    /// ascending, at most `limit` of them, streaming the series' column
    /// blocks; returns how many. Allocates nothing, takes no lock, never
    /// waits for a merge: the points are those merged when each block was
    /// reached (every point merged before the call is among them).
    ///
    /// ```
    /// # let index = numatree::Index::builder().build()?;
    /// # let mut w = index.writer();
    /// # for ts in 0..100 { w.insert(9, ts, ts as u64)?; }
    /// # drop(w);
    /// # index.flush()?;
    /// let mut sum = 0;
    /// let n = index.scan_with(9, 10.., 5, |_ts, value| sum += value);
    /// assert_eq!((n, sum), (5, 10 + 11 + 12 + 13 + 14));
    /// # Ok::<(), numatree::Error>(())
    /// ```
    pub fn scan_with(
        &self,
        series: u32,
        range: impl RangeBounds<i64>,
        limit: usize,
        f: impl FnMut(i64, u64),
    ) -> usize {
        self.storage(series).scan(series, range, limit, f)
    }

    /// Removes every point older than `cutoff` in every series, freeing
    /// whole blocks back to node memory (the block that holds `cutoff` is
    /// rewritten with its points at or after it: exact at block edges).
    /// Records older than `cutoff` that are still in flight, or inserted
    /// later, are not merged (they count as
    /// [`records_expired`](crate::NodeStats::records_expired)): after the
    /// call no point before `cutoff` is ever visible again. Stats and the
    /// memory budget go down by what was freed, and writers waiting for
    /// memory wake.
    ///
    /// Runs alongside ingest and queries: it takes each shard's merge lock
    /// in turn (a merge into that shard waits for the shard's sweep, which
    /// walks its series once); readers never wait, and blocks they still
    /// read are freed once they are done. A cutoff at or below an earlier
    /// one does nothing.
    ///
    /// ```
    /// # let index = numatree::Index::builder().build()?;
    /// # let mut w = index.writer();
    /// for ts in 0..1_000 {
    ///     w.insert(1, ts, ts as u64)?;
    /// }
    /// # drop(w);
    /// index.flush()?;
    /// index.drop_before(600);
    /// assert_eq!(index.len(), 400);
    /// assert_eq!(index.scan(1, ..).first(), Some(&(600, 600)));
    /// # Ok::<(), numatree::Error>(())
    /// ```
    pub fn drop_before(&self, cutoff: i64) {
        for node in &self.pipelines.nodes {
            node.drop_before(cutoff);
        }
    }

    /// Removes every point of `series` merged so far, freeing its blocks:
    /// the records of it sealed before the call are merged first (a
    /// flush), so none of them reappears; records inserted during or after
    /// the call start the series again.
    ///
    /// # Errors
    /// [`Error::Poisoned`] when a merge thread panicked (from the flush).
    pub fn drop_series(&self, series: u32) -> Result<(), Error> {
        self.flush()?;
        let (node, shard) = self.plan().route(series);
        self.pipelines.nodes[node].drop_series(shard, series);
        Ok(())
    }

    /// Distinct keys merged so far.
    pub fn len(&self) -> usize {
        self.pipelines.nodes.iter().map(|n| n.keys()).sum()
    }

    /// Whether no record has been merged yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        Stats::from_nodes(self.pipelines.nodes.iter().map(|n| n.stats()).collect())
    }

    /// Where threads run and series live.
    pub fn plan(&self) -> &Plan {
        &self.pipelines.plan
    }

    /// The nice value the merge threads run at
    /// ([`Builder::merge_nice`](crate::Builder::merge_nice) or
    /// `NUMATREE_MERGE_NICE`), `None` when neither set one.
    pub fn merge_nice(&self) -> Option<i32> {
        self.pipelines.nodes.first().and_then(|n| n.merge_nice())
    }

    /// How many writers of each node may help merge at once, in plan order
    /// ([`Builder::merge_helpers_per_node`](crate::Builder::merge_helpers_per_node),
    /// `NUMATREE_MERGE_HELPERS`, or the node's writer CPUs).
    pub fn merge_helpers(&self) -> Vec<usize> {
        self.pipelines
            .nodes
            .iter()
            .map(|n| n.helper_seats())
            .collect()
    }

    /// Whether frozen blocks may live in huge pages
    /// ([`Builder::huge_pages`](crate::Builder::huge_pages) or
    /// `NUMATREE_HUGE_PAGES`; the kernel decides whether they do).
    pub fn huge_pages(&self) -> bool {
        self.pipelines
            .nodes
            .first()
            .and_then(|n| n.shards.first())
            .is_some_and(|s| s.storage.huge_pages())
    }

    /// The topology the plan was computed from.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The node pipelines, for crate modules that inspect them (`placement`).
    pub(crate) fn pipelines(&self) -> &Pipelines {
        &self.pipelines
    }

    /// Every shard's (node, shard, keys), counted by the shard itself:
    /// for checking where the partition put each series.
    pub fn shard_lengths(&self) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        for n in &self.pipelines.nodes {
            for (s, shard) in n.shards.iter().enumerate() {
                out.push((n.index, s, shard.storage.points()));
            }
        }
        out
    }

    /// Checks the invariants of every series' storage (points strictly
    /// ascending, blocks non-empty and partitioning the time line) and that
    /// each shard's key count matches its points; returns the point count.
    /// Walks everything: for tests and the stress run.
    ///
    /// # Errors
    /// A description of the first violation.
    #[doc(hidden)]
    pub fn validate(&self) -> Result<usize, String> {
        let mut points = 0;
        for node in &self.pipelines.nodes {
            for (s, shard) in node.shards.iter().enumerate() {
                points += shard
                    .storage
                    .validate()
                    .map_err(|e| format!("node {} shard {s}: {e}", node.index))?;
            }
        }
        Ok(points)
    }

    /// Waits until every slot sealed before the call (by [`Writer::flush`],
    /// a full slot, or a dropped writer) is merged and visible. Then frees
    /// what the merges of idle shards kept to reuse while ingest runs (the
    /// blocks they froze, at most 256 a shard; see BENCHMARKS.md).
    ///
    /// # Errors
    /// [`Error::Poisoned`] when a merge thread panicked.
    pub fn flush(&self) -> Result<(), Error> {
        self.pipelines.flush()
    }

    /// Runs `f` on `per_node` writer threads per node, each bound to its
    /// node's writer CPUs (when binding applies) with its own [`Writer`],
    /// flushed when `f` returns. Returns when every thread has finished, so
    /// every insert of one call happens before every insert of a later call.
    ///
    /// # Errors
    /// The first error a thread returned, or [`Error::InvalidConfig`] for
    /// `per_node` outside `1..=4096` or more threads in all than a `usize`
    /// counts. A panic in `f` is propagated.
    pub fn run_writers<F>(&self, per_node: usize, f: F) -> Result<(), Error>
    where
        F: Fn(&WriterContext, &mut Writer) -> Result<(), Error> + Sync,
    {
        check_range(
            "run_writers per_node",
            per_node,
            1,
            MAX_WRITERS_PER_NODE,
            "threads",
        )?;
        let nodes = self.pipelines.nodes.len();
        let threads = per_node.checked_mul(nodes).ok_or_else(|| {
            Error::InvalidConfig(format!(
                "run_writers per_node = {per_node} x {nodes} nodes overflows"
            ))
        })?;
        let f = &f;
        thread::scope(|scope| {
            let mut handles = Vec::with_capacity(threads);
            for node in 0..nodes {
                for thread in 0..per_node {
                    let builder =
                        thread::Builder::new().name(format!("numatree-writer-n{node}-{thread}"));
                    let handle = builder
                        .spawn_scoped(scope, move || {
                            let pinned = self.bind
                                && self
                                    .topology
                                    .bind_current_thread(self.plan().writer_cpus(node))
                                    .unwrap_or(false);
                            let ctx = WriterContext {
                                node,
                                node_id: self.plan().nodes()[node].node,
                                thread,
                                global: node * per_node + thread,
                                threads,
                                pinned,
                            };
                            let mut writer =
                                Writer::new(Arc::clone(&self.pipelines), pinned.then_some(node));
                            let result = f(&ctx, &mut writer);
                            result.and(writer.flush())
                        })
                        .map_err(|e| Error::Thread {
                            what: "writer thread".into(),
                            reason: e.to_string(),
                        })?;
                    handles.push(handle);
                }
            }
            let mut result = Ok(());
            for handle in handles {
                match handle.join() {
                    Ok(r) => result = result.and(r),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            result
        })
    }

    /// Flushes, stops accepting writes, joins every merge thread and returns
    /// the final stats. Closing twice is fine. Writers still alive afterwards
    /// get [`Error::Closed`] when they need a new slot; what they had
    /// buffered is merged on their own thread when they flush or drop.
    /// Queries keep working.
    ///
    /// # Errors
    /// [`Error::Poisoned`] when a merge thread panicked (threads are joined anyway).
    pub fn close(&self) -> Result<Stats, Error> {
        let flushed = self.flush();
        self.pipelines.health.close();
        let executors: Vec<_> = self.pipelines.nodes.iter().map(|n| n.stop()).collect();
        // Slots sealed before the executors were taken were spawned on
        // them: let them finish before the threads go.
        let drained = self.flush();
        drop(executors);
        for handle in std::mem::take(&mut *lock(&self.merge_threads)) {
            // A merge panic was caught by the pool's handler; a join error
            // here would be a panic outside any job, reported as poison too.
            if handle.join().is_err() {
                self.pipelines
                    .health
                    .poison("merge thread died outside a job".into());
            }
        }
        flushed.and(drained).map(|()| self.stats())
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.pipelines.health.is_closed()
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// [`Index::scan_into`]'s sink: decoded blocks are appended as whole runs
/// (one reservation and a plain copy), other points one at a time.
struct VecSink<'a>(&'a mut Vec<(i64, u64)>);

impl PointSink for VecSink<'_> {
    #[inline]
    fn point(&mut self, ts: i64, value: u64) {
        self.0.push((ts, value));
    }

    #[inline]
    fn columns(&mut self, ts: &[i64], values: &[u64]) {
        self.0
            .extend(ts.iter().copied().zip(values.iter().copied()));
    }
}

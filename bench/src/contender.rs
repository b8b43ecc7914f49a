//! What the harness drives: the [`Contender`] trait, the factory that builds a
//! fresh, empty contender for every measurement, and the timed thread helper
//! contenders use to start their writers simultaneously.

use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use numatree_core::Record;

/// Timings and pipeline figures of one [`Contender::ingest`] call.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct IngestTiming {
    /// From the simultaneous start until the last writer returned.
    pub writer: Duration,
    /// From the simultaneous start until every record is queryable
    /// (after any flush/merge); equals `writer` for synchronous structures.
    pub end_to_end: Duration,
    /// Merge busy time (wall time merge threads spent merging, not CPU time
    /// from the OS) over end-to-end time, where the contender measures it;
    /// above 1 when several merge threads are busy at once.
    pub merge_cpu_ratio: Option<f64>,
    /// Times a writer waited for buffer space (backpressure), where it applies.
    pub backpressure_waits: Option<u64>,
    /// Records the contender's own independent counters cannot account for
    /// after the ingest (numatree: accepted - inserted - updated - superseded,
    /// plus any still in flight); must be 0.
    pub unaccounted: Option<u64>,
}

impl IngestTiming {
    /// A synchronous ingest: every record is queryable when its writer returns.
    pub fn synchronous(writer: Duration) -> Self {
        IngestTiming {
            writer,
            end_to_end: writer,
            ..IngestTiming::default()
        }
    }
}

/// An ordered index under test. One instance holds one data set; the harness
/// builds a fresh one per measurement (see [`ContenderFactory`]).
///
/// Semantics every contender keeps: upsert (a later insert of a key replaces
/// its value; within one writer's part the later record wins), `ingest` may be
/// called more than once (the mixed phase ingests half, then the rest while
/// readers run), and `get`/`scan` may run concurrently with `ingest`.
pub trait Contender: Send + Sync {
    /// Name in tables and JSON (equals the factory's name).
    fn name(&self) -> &str;

    /// Ingests `parts[i]` on writer thread `i` (one thread per part), in
    /// `batch`-record batches where the contender batches, and returns when
    /// every record is queryable. Thread start-up is excluded from the
    /// timings: use [`run_writers`] or start writers at a barrier likewise.
    fn ingest(&self, parts: &[&[Record]], batch: usize) -> IngestTiming;

    /// The value stored under `(series, ts)`.
    fn get(&self, series: u32, ts: i64) -> Option<u64>;

    /// Appends the records of `series` with `t0 <= ts < t1` to `out` in
    /// ascending timestamp order and returns how many it appended.
    fn scan(&self, series: u32, t0: i64, t1: i64, out: &mut Vec<(i64, u64)>) -> usize;

    /// Records held: distinct keys for an index, records appended for the
    /// writer-only ceiling.
    fn len(&self) -> usize;

    /// Whether [`len`](Contender::len) is 0.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes its own statistics say its data takes, where it keeps
    /// such a figure (numatree: `stats().total.tree_bytes`), to set beside
    /// the bytes the harness counts.
    fn reported_bytes(&self) -> Option<usize> {
        None
    }

    /// Its data's bytes and points by temperature, where its statistics
    /// keep them (numatree: hot and frozen blocks), to report bytes per
    /// point overall, hot and frozen beside the bytes the harness counts.
    fn block_bytes(&self) -> Option<BlockBytes> {
        None
    }

    /// Contender-specific statistics (merge busy time, waits, record accounting, memory ...).
    fn extra(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Human-readable placement plan, printed in the report header.
    fn plan(&self) -> Option<String> {
        None
    }
}

/// A contender's own count of its data bytes and points, split into hot
/// (writable, uncompressed) and frozen (compressed) blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BlockBytes {
    /// Bytes of all series storage, frozen included.
    pub bytes: usize,
    /// Points stored.
    pub points: usize,
    /// Bytes of frozen blocks (part of `bytes`).
    pub frozen_bytes: usize,
    /// Points in frozen blocks (part of `points`).
    pub frozen_points: usize,
}

fn per(bytes: usize, points: usize) -> f64 {
    if points == 0 {
        0.0
    } else {
        bytes as f64 / points as f64
    }
}

impl BlockBytes {
    /// Bytes per point overall (0 when empty).
    pub fn per_point(&self) -> f64 {
        per(self.bytes, self.points)
    }

    /// Bytes per point of everything not frozen (hot blocks, indexes,
    /// directories).
    pub fn hot_per_point(&self) -> f64 {
        per(
            self.bytes.saturating_sub(self.frozen_bytes),
            self.points.saturating_sub(self.frozen_points),
        )
    }

    /// Bytes per point of frozen blocks.
    pub fn frozen_per_point(&self) -> f64 {
        per(self.frozen_bytes, self.frozen_points)
    }

    /// Frozen points over all points, 0..=1.
    pub fn frozen_share(&self) -> f64 {
        per(self.frozen_points, self.points)
    }
}

/// What a contender can do, known before building it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Caps {
    /// Supports `get`/`scan`; false for the writer-only ceiling (its query rows read "n/a").
    pub queries: bool,
    /// Has a reserved (pre-faulted) memory mode for the warm insert phase.
    pub reserved: bool,
}

/// Sizing and mode of a contender to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuildOptions {
    /// Writer threads the next `ingest` will use.
    pub writers: usize,
    /// Series ids are `0..series`.
    pub series: u32,
    /// Records (duplicates included) the measurement will ingest.
    pub expected_records: usize,
    /// Build the warm variant: reserve and pre-fault memory before timing.
    pub reserved: bool,
}

/// Builds a contender from [`BuildOptions`].
pub type BuildFn = dyn Fn(&BuildOptions) -> Box<dyn Contender> + Send + Sync;

/// A named recipe for fresh, empty contenders.
pub struct ContenderFactory {
    name: String,
    caps: Caps,
    build: Box<BuildFn>,
}

impl ContenderFactory {
    /// A factory called `name` with capabilities `caps`.
    pub fn new(
        name: impl Into<String>,
        caps: Caps,
        build: impl Fn(&BuildOptions) -> Box<dyn Contender> + Send + Sync + 'static,
    ) -> Self {
        ContenderFactory {
            name: name.into(),
            caps,
            build: Box::new(build),
        }
    }

    /// The contender's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it supports.
    pub fn caps(&self) -> Caps {
        self.caps
    }

    /// A fresh, empty contender.
    pub fn build(&self, opts: &BuildOptions) -> Box<dyn Contender> {
        (self.build)(opts)
    }
}

impl std::fmt::Debug for ContenderFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContenderFactory")
            .field("name", &self.name)
            .field("caps", &self.caps)
            .finish()
    }
}

/// Runs `f(i)` on `n` scoped threads that start together at a barrier and
/// returns the span from the earliest start to the latest finish (thread
/// spawning excluded) with every thread's result, in thread order.
pub fn timed_threads<R, F>(n: usize, f: F) -> (Duration, Vec<R>)
where
    R: Send,
    F: Fn(usize) -> R + Sync,
{
    let barrier = Barrier::new(n);
    let (f, barrier) = (&f, &barrier);
    let results: Vec<(Instant, Instant, R)> = thread::scope(|sc| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                thread::Builder::new()
                    .name(format!("bench-{i}"))
                    .spawn_scoped(sc, move || {
                        barrier.wait();
                        let start = Instant::now();
                        let r = f(i);
                        (start, Instant::now(), r)
                    })
                    .expect("spawning a benchmark thread")
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("benchmark thread panicked"))
            .collect()
    });
    let start = results.iter().map(|r| r.0).min();
    let end = results.iter().map(|r| r.1).max();
    let span = match (start, end) {
        (Some(s), Some(e)) => e.saturating_duration_since(s),
        _ => Duration::ZERO,
    };
    (span, results.into_iter().map(|r| r.2).collect())
}

/// Runs `write(i, parts[i])` on one thread per part, started together;
/// returns the writer span (earliest start to last writer's return).
pub fn run_writers<F>(parts: &[&[Record]], write: F) -> Duration
where
    F: Fn(usize, &[Record]) + Sync,
{
    timed_threads(parts.len(), |i| write(i, parts[i])).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn timed_threads_runs_every_index_once_and_returns_results_in_order() {
        let calls = AtomicUsize::new(0);
        let (span, rs) = timed_threads(4, |i| {
            calls.fetch_add(1, Ordering::Relaxed);
            i * 10
        });
        assert_eq!(rs, vec![0, 10, 20, 30]);
        assert_eq!(calls.load(Ordering::Relaxed), 4);
        assert!(span < Duration::from_secs(5));
    }
}

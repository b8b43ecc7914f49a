//! numatree as a contender: the index built by its builder, fed by its own
//! pinned writer threads (`Index::run_writers`), queried through `get` and
//! `scan_into`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use numatree::{Index, Stats};
use numatree_core::Record;

use crate::contender::{BlockBytes, BuildOptions, Caps, Contender, ContenderFactory, IngestTiming};

/// The numatree index under test.
pub struct NumatreeContender {
    index: Index,
    /// Stats at the end of the previous ingest, to report per-ingest deltas.
    last: Mutex<Stats>,
}

/// Builds and closes one default index, so that what the environment
/// sets wrong (`NUMATREE_HUGE_PAGES=maybe`, a node that is not there)
/// stops the bench before it plans, generates and measures, with the
/// index's own error.
///
/// # Errors
/// What [`numatree::Builder::build`] or [`Index::close`] returned.
pub fn preflight() -> Result<(), numatree::Error> {
    Index::builder().build()?.close().map(drop)
}

impl NumatreeContender {
    /// Builds an index with default settings; with `reserved`, memory for
    /// `expected_records` of `series` series is reserved and pre-faulted
    /// on each node first.
    pub fn new(opts: &BuildOptions) -> Self {
        Self::with_builder(Index::builder(), opts)
    }

    /// Like [`new`](Self::new), from a builder with other settings (tests
    /// plant faults this way).
    pub fn with_builder(mut builder: numatree::Builder, opts: &BuildOptions) -> Self {
        if opts.reserved && opts.expected_records > 0 {
            builder = builder
                .reserve_records(opts.expected_records)
                .reserve_series(opts.series.max(1) as usize);
        }
        let index = builder
            .build()
            .unwrap_or_else(|e| panic!("building numatree: {e}"));
        Self::from_index(index)
    }

    /// Like [`new`](Self::new), with block freezing on or off
    /// ([`numatree::Builder::freeze_blocks`]).
    pub fn with_freezing(freeze: bool, opts: &BuildOptions) -> Self {
        Self::with_builder(Index::builder().freeze_blocks(freeze), opts)
    }

    /// Wraps an index built elsewhere (restored from a snapshot, say).
    pub fn from_index(index: Index) -> Self {
        NumatreeContender {
            index,
            last: Mutex::new(Stats::default()),
        }
    }

    /// The index, for what the [`Contender`] trait does not cover
    /// (retention, statistics).
    pub fn index(&self) -> &Index {
        &self.index
    }
}

/// Records the index's independent counters cannot account for after a
/// flush: per node, `|accepted - (inserted + updated + superseded +
/// expired + in flight)|`, plus the records still in flight (a flush leaves
/// none).
pub fn unaccounted(stats: &Stats) -> u64 {
    stats
        .nodes
        .iter()
        .map(|n| {
            let accounted = n.records_inserted
                + n.records_updated
                + n.records_superseded
                + n.records_expired
                + n.records_in_flight;
            n.records_accepted.abs_diff(accounted) + n.records_in_flight
        })
        .sum()
}

impl Contender for NumatreeContender {
    fn name(&self) -> &str {
        "numatree"
    }

    fn ingest(&self, parts: &[&[Record]], batch: usize) -> IngestTiming {
        let nodes = self.index.plan().node_count();
        let per_node = parts.len().div_ceil(nodes).max(1);
        let started = Instant::now();
        self.index
            .run_writers(per_node, |ctx, writer| {
                // Threads beyond the parts (uneven split over nodes) idle.
                let Some(part) = parts.get(ctx.global) else {
                    return Ok(());
                };
                for chunk in part.chunks(batch.max(1)) {
                    writer.insert_batch(chunk)?;
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("numatree ingest failed: {e}"));
        let writer = started.elapsed();
        self.index
            .flush()
            .unwrap_or_else(|e| panic!("numatree flush failed: {e}"));
        let end_to_end = started.elapsed();
        let now = self.index.stats();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let merge_busy = now.total.merge_busy.saturating_sub(last.total.merge_busy);
        let timing = IngestTiming {
            writer,
            end_to_end,
            merge_cpu_ratio: Some(
                merge_busy.as_secs_f64() / end_to_end.max(Duration::from_nanos(1)).as_secs_f64(),
            ),
            backpressure_waits: Some(now.total.backpressure_waits - last.total.backpressure_waits),
            unaccounted: Some(unaccounted(&now)),
        };
        *last = now;
        timing
    }

    fn get(&self, series: u32, ts: i64) -> Option<u64> {
        self.index.get(series, ts)
    }

    fn scan(&self, series: u32, t0: i64, t1: i64, out: &mut Vec<(i64, u64)>) -> usize {
        self.index.scan_into(series, t0..t1, out)
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn reported_bytes(&self) -> Option<usize> {
        Some(self.index.stats().total.tree_bytes)
    }

    fn block_bytes(&self) -> Option<BlockBytes> {
        let s = self.index.stats().total;
        Some(BlockBytes {
            bytes: s.tree_bytes,
            points: s.keys,
            frozen_bytes: s.frozen_bytes,
            frozen_points: s.frozen_points,
        })
    }

    fn extra(&self) -> serde_json::Value {
        let s = self.index.stats().total;
        let raw = (s.keys * std::mem::size_of::<Record>()).max(1);
        serde_json::json!({
            "keys": s.keys,
            "records_accepted": s.records_accepted,
            "slots_sealed": s.slots_sealed,
            "backpressure_waits": s.backpressure_waits,
            "helped_merges": s.helped_merges,
            "helps_declined": s.helps_declined,
            "priority_refusals": s.priority_refusals,
            "blocked_ms": s.blocked.as_secs_f64() * 1e3,
            "merge_busy_ms": s.merge_busy.as_secs_f64() * 1e3,
            "records_inserted": s.records_inserted,
            "records_updated": s.records_updated,
            "records_superseded": s.records_superseded,
            "records_in_flight": s.records_in_flight,
            "local_records": s.local_records,
            "remote_records": s.remote_records,
            "tree_bytes": s.tree_bytes,
            "frozen_bytes": s.frozen_bytes,
            "frozen_points": s.frozen_points,
            "bytes_per_point": s.bytes_per_point(),
            "hot_bytes_per_point": s.hot_bytes_per_point(),
            "frozen_bytes_per_point": s.frozen_bytes_per_point(),
            "records_expired": s.records_expired,
            "points_dropped": s.points_dropped,
            "tree_bytes_per_raw_byte": s.tree_bytes as f64 / raw as f64,
        })
    }

    fn plan(&self) -> Option<String> {
        let priority = match self.index.merge_nice() {
            Some(nice) => {
                format!("merge priority: nice {nice} (merge threads, and writers while they help)")
            }
            None => format!(
                "merge priority: each thread's own (merge_nice and {} unset)",
                numatree::MERGE_NICE_ENV
            ),
        };
        let helpers = format!(
            "merge helpers: at most {:?} writers per node merge at once ({} sets it; default: the node's writer CPUs)",
            self.index.merge_helpers(),
            numatree::MERGE_HELPERS_ENV
        );
        let env = numatree::HUGE_PAGES_ENV;
        let huge = if self.index.huge_pages() {
            format!(
                "frozen blocks: huge pages advised past each arena's first chunks ({env}=0 turns it off; this kernel's transparent huge pages: {})",
                transparent_huge_pages()
            )
        } else {
            format!("frozen blocks: ordinary pages (huge pages off; {env}=1 turns them on)")
        };
        Some(format!(
            "{}\n{priority}\n{helpers}\n{huge}",
            self.index.plan()
        ))
    }
}

/// The kernel's transparent huge page mode, as its settings file shows
/// it (`always [madvise] never`), or why it cannot be read.
fn transparent_huge_pages() -> String {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .map_or_else(|e| format!("unknown ({e})"), |s| s.trim().to_owned())
}

/// Factory for [`NumatreeContender`].
pub fn factory() -> ContenderFactory {
    ContenderFactory::new(
        "numatree",
        Caps {
            queries: true,
            reserved: true,
        },
        |o| Box::new(NumatreeContender::new(o)),
    )
}

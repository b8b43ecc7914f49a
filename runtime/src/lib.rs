//! numatree: a NUMA-aware, write-optimized, in-memory ordered index for
//! time-series records — the std runtime that users depend on.
//!
//! Many threads insert `(series: u32, ts: i64) -> u64` records through
//! their own [`Writer`]s; an [`Index`] merges them, in parallel and while
//! writing goes on, into per-node storage partitioned by series across NUMA
//! nodes, and answers point lookups ([`Index::get`]) and range scans
//! ([`Index::scan`], [`Index::scan_into`]). [`Index::builder`] gives a
//! [`Builder`] that checks every setting in [`Builder::build`];
//! [`Index::run_writers`] runs writer threads pinned to each node, each with
//! a [`WriterContext`]; [`Index::stats`] returns [`Stats`]; everything that
//! can fail returns [`Error`].
//!
//! ```
//! use numatree::Index;
//!
//! let index = Index::builder().build()?;
//! index.run_writers(1, |ctx, writer| {
//!     for ts in 0..100 {
//!         writer.insert(ctx.global as u32, ts, ts as u64 * 2)?; // waits when full, never drops
//!     }
//!     Ok(())
//! })?;
//! index.flush()?; // everything sealed so far is merged and visible
//! assert_eq!(index.get(0, 21), Some(42));
//! assert_eq!(index.scan(0, 10..13), [(10, 20), (11, 22), (12, 24)]);
//! index.stats().verify_accounting()?; // nothing accepted was lost
//! index.close()?;
//! # Ok::<(), numatree::Error>(())
//! ```
//!
//! Two complete programs come with the crate: `examples/quickstart.rs`
//! (the life of an index on one page) and `examples/scrape.rs` (writers on
//! every node, a reader querying the latest points during ingest).
//!
//! # Guarantees
//! - **Nothing is lost.** An insert that returns `Ok` is kept: a writer
//!   whose slots are all full waits (backpressure), it never drops a record;
//!   dropping a [`Writer`] seals what it holds; [`Index::close`] merges
//!   everything before it returns. [`Stats::verify_accounting`] checks, node
//!   by node, that every record accepted was inserted, updated, superseded
//!   by a later insert of its key, or is still in flight, from counters kept
//!   at independent steps.
//! - **Order.** Inserting an existing key replaces its value. When one
//!   insert of a key happens before another (same writer; successive
//!   writers on one thread; or the first writer flushed or dropped and the
//!   second thread synchronized with it), the later one wins once both are
//!   flushed; between concurrent inserts of one key exactly one value
//!   remains. The rules in full: [which insert of a key wins](Writer#which-insert-of-a-key-wins).
//! - **Visibility.** A record becomes visible to queries when its slot is
//!   merged, in the background, after the slot is sealed: when it fills, at
//!   [`Writer::flush`], or when the writer is dropped. [`Index::flush`]
//!   returns once every slot sealed before the call is merged, so after
//!   `writer.flush()` and then `index.flush()` everything that writer
//!   inserted is visible ([`Index::run_writers`] flushes its writers before
//!   it returns). A query never sees a value that was not inserted for its
//!   key, and a scan is always ascending by timestamp.
//! - **Backpressure.** Each node has a bounded pool of slots
//!   ([`Builder::slots_per_node`] x [`Builder::slot_capacity`] records). A
//!   writer that needs a slot when none is free helps merge its node's
//!   queue (while one of the node's helper seats is free:
//!   [`Builder::merge_helpers_per_node`], by default one per writer CPU;
//!   [`NodeStats::helps_declined`] counts the others), then parks until
//!   one is returned; the wait is counted in
//!   [`NodeStats::backpressure_waits`] and [`NodeStats::blocked`]. An
//!   optional [`Builder::memory_budget`] bounds the memory of slots and
//!   storage: past it, inserts fail with [`Error::MemoryBudget`] and every
//!   record accepted before stays.
//! - **Errors.** One type, [`Error`], whose variants say what the caller can
//!   do: fix the configuration ([`Error::InvalidConfig`], naming the value
//!   and its limit), pick another topology ([`Error::Topology`]), run without
//!   binding ([`Error::Binding`]), stop writing ([`Error::MemoryBudget`]),
//!   or give up on an index whose merge thread panicked ([`Error::Poisoned`]:
//!   every later call returns it instead of hanging) or that was closed
//!   ([`Error::Closed`]).
//!
//! # Threads
//! [`Index`] is `Send + Sync`: share it by reference (or in an `Arc`)
//! between writer and query threads. A [`Writer`] is `Send`: it belongs to
//! one thread at a time, which may be another than the one that made it.
//! [`Error`], [`Stats`] and [`Builder`] are `Send + Sync`. These hold at
//! compile time (a `const` block in this file asserts them).
//!
//! # System library
//! The runtime links the system hwloc 2.x (found with pkg-config; Debian:
//! `libhwloc-dev`). Building the documentation needs no hwloc: the
//! `hwlocality-sys` build script skips looking for it when `DOCS_RS` is set,
//! as on docs.rs, and rustdoc does not link.
//!
//! # Modules
//! Modules follow the ingest pipeline: [`topology`] (which NUMA nodes and
//! CPUs exist; the only module that talks to hwloc) -> [`plan`] (which CPUs
//! run writers and merges, and which node and shard own each series) ->
//! `writer` (per-thread slots, no locks per record) -> `pipeline` (one per
//! node: the bounded slot pool, the sealed queue in seal order, the pinned
//! merge pool, per-shard lanes that apply slots in seal order, the flush
//! barrier) -> `index` (the public face: queries, flush, stats, close), with
//! `builder` checking the configuration.
//!
//! Each module imports only modules below it (a test reads the source and
//! fails on any cycle):
//!
//! ```text
//! index ──> builder ──> pipeline ──> slot ──> health ──> sync
//!   │          │           │  └────> flush ─────┘
//!   │          │           ├───────> store (tree chunks)
//!   │          │           └───────> stats, plan ──> topology
//!   └──> writer ──> pipeline
//! placement ──> index (memory diagnostics)
//! ```
//!
//! ```
//! use numatree::{Plan, PlanConfig, Topology, TopologySource};
//!
//! // Two packages with one NUMA node and two CPUs each, described to hwloc;
//! // use `TopologySource::System` (or `NUMATREE_TOPOLOGY`) for the real machine.
//! let source = TopologySource::Synthetic("pack:2 numa:1 core:2 pu:1".into());
//! let topology = Topology::load(&source)?;
//! let plan = Plan::for_topology(&topology, &PlanConfig::default())?;
//! assert_eq!(plan.node_count(), 2);
//! assert_eq!(plan.route(7), (1, 3)); // node 7 % 2, shard (7 / 2) % 4
//! assert!(!plan.binding_applied());
//! println!("{plan}");
//! # Ok::<(), numatree::Error>(())
//! ```

mod builder;
mod error;
mod flush;
mod health;
mod index;
#[cfg(all(test, any(loom, shuttle)))]
mod model_tests;
mod persistence;
mod pipeline;
mod placement;
pub mod plan;
mod priority;
mod slot;
mod snapshot;
mod stats;
mod storage;
mod sync;
pub mod topology;
mod writer;

pub use builder::{
    Builder, DEFAULT_SLOT_CAPACITY, HUGE_PAGES_ENV, MAX_SLOTS_PER_NODE, MAX_SLOT_CAPACITY,
    MAX_WRITERS_PER_NODE, MERGE_HELPERS_ENV, MIN_SLOT_CAPACITY, NODES_ENV,
};
pub use error::Error;
pub use error::SharedSnapshotError;
pub use index::{Index, WriterContext};
pub use numatree_core::{Key, Record};
pub use persistence::SnapshotInfo;
pub use pipeline::{MergeEvent, MergeHook};
pub use placement::NodeMemory;
pub use plan::{NodePlan, Plan, PlanConfig, ShardRule};
pub use priority::{MERGE_NICE_ENV, NICE_RANGE};
pub use snapshot::SnapshotError;
pub use stats::{NodeStats, Stats};
pub use storage::mapped_bytes;
pub use topology::{BindingSupport, CpuId, NodeId, NumaNode, Topology, TopologySource};
pub use writer::Writer;

// The thread-safety the crate docs promise, checked at compile time: a
// field that made one of these types lose `Send` or `Sync` fails the build
// here rather than in a user's program.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    const fn send<T: Send>() {}
    send_sync::<Index>();
    send_sync::<Error>();
    send_sync::<Stats>();
    send_sync::<Builder>();
    send::<Writer>();
};

/// The README's examples, compiled and run as doctests so they stay true.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

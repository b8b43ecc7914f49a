//! numatree: a NUMA-aware, write-optimized, in-memory ordered index for
//! time-series records — the std runtime that users depend on.
//!
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
mod pipeline;
mod placement;
pub mod plan;
mod slot;
mod stats;
mod storage;
mod sync;
pub mod topology;
mod writer;

pub use builder::{
    Builder, DEFAULT_SLOT_CAPACITY, MAX_SLOTS_PER_NODE, MAX_SLOT_CAPACITY, MAX_WRITERS_PER_NODE,
    MIN_SLOT_CAPACITY, NODES_ENV,
};
pub use error::Error;
pub use index::{Index, WriterContext};
pub use numatree_core::{Key, Record};
pub use pipeline::{MergeEvent, MergeHook};
pub use placement::NodeMemory;
pub use plan::{NodePlan, Plan, PlanConfig, ShardRule};
pub use stats::{NodeStats, Stats};
pub use topology::{BindingSupport, CpuId, NodeId, NumaNode, Topology, TopologySource};
pub use writer::Writer;

/// The README's examples, compiled and run as doctests so they stay true.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

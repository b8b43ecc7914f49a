//! The index's configuration: every value a user can set, its documented
//! range, and the checks that turn out-of-range values and combinations
//! that cannot work into [`Error::InvalidConfig`] before anything starts.
//!
//! All arithmetic on user input here is checked (the module denies
//! `clippy::arithmetic_side_effects`): a value near `usize::MAX` is an
//! error naming the value and its limit, never an overflow panic, a hang
//! or an allocation that runs the machine out of memory.
#![deny(clippy::arithmetic_side_effects)]

use std::thread::JoinHandle;

use crate::health::{Health, Waiters};
use crate::pipeline::{merge_pool, Executor, MergeHook, NodePipeline, NodeSetup, Pipelines};
use crate::plan::{Plan, PlanConfig};
use crate::slot::Binder;
use crate::storage::{shard_share, ShardStorage, StorageConfig};
use crate::sync::{Arc, Mutex};
use crate::topology::{Topology, TopologySource};
use crate::Error;

mod env;

use env::{check_nice, huge_pages_from_env, merge_nice_from_env, nodes_from_env};

/// Smallest slot capacity accepted, in records.
pub const MIN_SLOT_CAPACITY: usize = 64;
/// Largest slot capacity accepted, in records (16M records, 384 MiB).
pub const MAX_SLOT_CAPACITY: usize = 1 << 24;
/// Default slot capacity, in records (384 KiB per slot).
pub const DEFAULT_SLOT_CAPACITY: usize = 16_384;
/// Most slots per node that may be sealed or merging at once.
pub const MAX_SLOTS_PER_NODE: usize = 1 << 16;
/// Most writer threads per node [`Index::run_writers`](crate::Index::run_writers) starts.
pub const MAX_WRITERS_PER_NODE: usize = 4096;

/// The env var naming the NUMA nodes to use, e.g. `0` or `0,2`.
pub const NODES_ENV: &str = "NUMATREE_NODES";
/// The env var that turns huge pages for frozen blocks off (`0`) or on
/// (`1`) where the code does not say ([`Builder::huge_pages`]).
pub const HUGE_PAGES_ENV: &str = "NUMATREE_HUGE_PAGES";

/// Configures and builds an [`Index`](crate::Index). Every value is checked
/// in [`build`](Builder::build); each setter documents its range.
#[derive(Clone, Default)]
pub struct Builder {
    topology: Option<TopologySource>,
    plan: PlanConfig,
    slot_capacity: Option<usize>,
    slots_per_node: Option<usize>,
    memory_budget: Option<usize>,
    reserve_records: usize,
    reserve_series: Option<usize>,
    no_pinning: bool,
    merge_hook: Option<MergeHook>,
    plant_merge_loss: bool,
    plant_frozen_elsewhere: bool,
    keep_blocks_hot: bool,
    retain: Option<i64>,
    freeze_idle_after: Option<i64>,
    wait_for_memory: bool,
    merge_nice: Option<i32>,
    huge_pages: Option<bool>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("topology", &self.topology)
            .field("plan", &self.plan)
            .field("slot_capacity", &self.slot_capacity)
            .field("slots_per_node", &self.slots_per_node)
            .field("memory_budget", &self.memory_budget)
            .field("reserve_records", &self.reserve_records)
            .field("reserve_series", &self.reserve_series)
            .field("pin_threads", &!self.no_pinning)
            .field("freeze_blocks", &!self.keep_blocks_hot)
            .field("retain", &self.retain)
            .field("freeze_idle_after", &self.freeze_idle_after)
            .field("wait_for_memory", &self.wait_for_memory)
            .field("merge_nice", &self.merge_nice)
            .field("huge_pages", &self.huge_pages)
            .finish()
    }
}

impl Builder {
    /// Where the topology comes from. Default: `NUMATREE_TOPOLOGY` if set
    /// (an hwloc synthetic string or XML file), else this machine.
    pub fn topology(mut self, source: TopologySource) -> Self {
        self.topology = Some(source);
        self
    }

    /// Use only the first `n` NUMA nodes with CPUs, `1..=` their count
    /// (default: all with CPUs).
    pub fn nodes(mut self, n: usize) -> Self {
        self.plan.nodes = Some(n);
        self
    }

    /// Use only these NUMA nodes (logical indexes, each below the
    /// topology's node count). Default: the list in the env var
    /// `NUMATREE_NODES` (e.g. `1` or `0,2`) if set, else every node.
    pub fn only_nodes(mut self, nodes: &[usize]) -> Self {
        self.plan.only_nodes = Some(nodes.to_vec());
        self
    }

    /// Merge threads per node, `1..=` the node's CPUs minus one (default:
    /// half the node's CPUs, rounded up).
    pub fn merge_threads_per_node(mut self, n: usize) -> Self {
        self.plan.merge_threads_per_node = Some(n);
        self
    }

    /// Shards per node, `1..=256` (default: 4 per merge thread).
    pub fn shards_per_node(mut self, n: usize) -> Self {
        self.plan.shards_per_node = Some(n);
        self
    }

    /// Records per slot, `64..=16,777,216` (default 16,384: 384 KiB).
    /// Each thread that merges (merge threads, and writers while they help)
    /// also keeps a sort scratch of one slot plus a 256 KiB count table,
    /// which neither the slots' bytes in the stats nor the
    /// [memory budget](Self::memory_budget) count.
    pub fn slot_capacity(mut self, records: usize) -> Self {
        self.slot_capacity = Some(records);
        self
    }

    /// Slots per node that can be sealed or merging at once, on top of the
    /// one each writer fills, `1..=65,536` (default: 2 per merge thread +
    /// 2). Fewer means less memory and earlier backpressure. Their memory
    /// (slots x capacity x 24 bytes per node) must fit in the address space
    /// and in the [memory budget](Self::memory_budget), when set.
    pub fn slots_per_node(mut self, n: usize) -> Self {
        self.slots_per_node = Some(n);
        self
    }

    /// Refuse new slots (inserts fail with [`Error::MemoryBudget`]) once
    /// trees and slots hold this many bytes. At least one slot per node
    /// (nodes x slot capacity x 24 bytes), and at least what
    /// [`reserve_records`](Self::reserve_records) reserves. Merges in
    /// flight always finish, so the budget can be exceeded by at most the
    /// in-flight slots' records. With [`retain`](Self::retain), a writer
    /// over the budget first has retention catch up with the newest point
    /// merged into each shard, on the node's merge thread (the merges' own
    /// sweeps wait for that horizon to move by a sixteenth of the window),
    /// and fails or waits only if that frees too little; a waiting writer
    /// catches up again as merges finish.
    /// Default: no budget.
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = Some(bytes);
        self
    }

    /// Pre-allocate and pre-fault tree and slot memory for this many
    /// records, from threads pinned on each node (first touch is ~10x slower
    /// than a copy on some machines). The memory it takes (about 17 bytes a
    /// record of hot blocks, with freezing on up to 9 more for frozen blocks,
    /// plus the slots) must fit in this machine's memory and in the
    /// [memory budget](Self::memory_budget), when set; it counts toward
    /// [`tree_bytes`](crate::NodeStats::tree_bytes) and the budget from the
    /// start. The reserve is full-size hot blocks (with freezing on,
    /// segmented ones with every segment allocated), which new tail blocks
    /// take until it is used up; with freezing on, a new tail is first made
    /// of a frozen one no reader holds any more, so the reserve serves the
    /// tails none is free for (at the start of an ingest, or while readers
    /// hold reclamation back), and [`reserve_series`](Self::reserve_series)
    /// shrinks it to a few a series. With freezing on it also holds, in each
    /// shard's arena, the whole 256 KiB chunks that 9 bytes a record of
    /// frozen blocks fill (rounded down: a shard's share below a chunk
    /// reserves none): raw values with regular timestamps take ~8.2 with
    /// their headers, compressible values less (the rest serves later
    /// blocks), irregular timestamps more (the rest is faulted in as the
    /// merge carves it). Default 0.
    pub fn reserve_records(mut self, records: usize) -> Self {
        self.reserve_records = records;
        self
    }

    /// How many series the [`reserve_records`](Self::reserve_records)
    /// records belong to, when known: with freezing on, the reserve then
    /// holds at most 4 full-size hot blocks a series instead of one per
    /// 256 records (in each shard, for its share of the series: the count
    /// is split over nodes, then shards, rounding up). A freezing ingest
    /// makes a series' new tails of its frozen ones once no reader holds
    /// them, so most of the larger reserve stays unused (an ingest of
    /// 1,024 series x 10,000 points took ~2.3 blocks a series from it: 10
    /// of its 170 MB); tails past
    /// the reserve are allocated as they would be without one. No effect
    /// with freezing off (every full block stays) or without
    /// `reserve_records` (which it then asks for). At least 1; default
    /// unset.
    pub fn reserve_series(mut self, series: usize) -> Self {
        self.reserve_series = Some(series);
        self
    }

    /// Whether merges freeze (compress) every block that is no longer its
    /// series' newest, with `numatree_core::codec` (default true). Frozen
    /// blocks take a fraction of the 16 bytes a point of a hot block
    /// (regular timestamps and decimal or counter values compress best,
    /// random values are stored raw); reads decode them, and a late point
    /// into one thaws, merges and freezes it again. See
    /// [`NodeStats::frozen_bytes`](crate::NodeStats::frozen_bytes).
    pub fn freeze_blocks(mut self, freeze: bool) -> Self {
        self.keep_blocks_hot = !freeze;
        self
    }

    /// Keeps only the last `window` of time: merges drop every point older
    /// than the newest timestamp merged into its shard minus `window`
    /// (swept once the horizon moves by `window / 16`, so at most
    /// `window + window / 16` is kept), and records older than that are
    /// not merged (counted in
    /// [`records_expired`](crate::NodeStats::records_expired)). `window`
    /// is in timestamp units, `>= 1`. Default: keep everything. See also
    /// [`Index::drop_before`](crate::Index::drop_before).
    pub fn retain(mut self, window: i64) -> Self {
        self.retain = Some(window);
        self
    }

    /// Freezes a series' newest block too once the series is idle: once its
    /// newest point is more than `age` older than the newest timestamp
    /// merged into its shard (checked by the merge threads as that horizon
    /// moves by `age / 16`: with an `age` below 16, on every merge that
    /// moves it, each check a walk of the shard's series). A series that
    /// stopped reporting then holds its points at the frozen size (~1 byte
    /// a point for gauges and counters) instead of keeping a hot block of
    /// up to 4 KiB. The next point merged into the series thaws the block
    /// (decode, merge), and it freezes again once the series is idle again;
    /// a late point into an older block thaws it too. `age` is in timestamp
    /// units, `>= 1`, below [`retain`](Self::retain)'s window if that is
    /// set (retention would drop an idle series first), and needs freezing
    /// on ([`freeze_blocks`](Self::freeze_blocks)). Default: off (a series'
    /// newest block stays hot).
    pub fn freeze_idle_after(mut self, age: i64) -> Self {
        self.freeze_idle_after = Some(age);
        self
    }

    /// With a [memory budget](Self::memory_budget): a writer that needs a
    /// slot while the budget is spent waits until retention
    /// ([`Index::drop_before`](crate::Index::drop_before),
    /// [`Index::drop_series`](crate::Index::drop_series) or
    /// [`retain`](Self::retain)) frees room, instead of getting
    /// [`Error::MemoryBudget`](crate::Error::MemoryBudget). It first has
    /// `retain` catch up (see [`memory_budget`](Self::memory_budget));
    /// if the window itself holds more than the budget, something else
    /// must free memory (a drop, a writer leaving with its slot), or the
    /// writer waits until the index is closed. Default false.
    pub fn wait_for_memory(mut self, wait: bool) -> Self {
        self.wait_for_memory = wait;
        self
    }

    /// Runs the merge threads at nice value `nice` (Linux: -20 runs first,
    /// 19 last), and writers while they help merge too when `nice` is a
    /// higher priority than their own. Default: `NUMATREE_MERGE_NICE` if
    /// set, else every thread keeps its own.
    ///
    /// For ingest that must keep up while more query threads than cores run
    /// beside it: a shard applies merges one at a time in seal order, and a
    /// merging thread the scheduler preempts holds up every slot behind it.
    /// A lower value keeps merges running, at the queries' expense
    /// (BENCHMARKS.md measures the trade). A value below a thread's own
    /// needs `CAP_SYS_NICE` or `RLIMIT_NICE`; where the system refuses,
    /// merges run at the thread's own priority and
    /// [`NodeStats::priority_refusals`](crate::NodeStats::priority_refusals)
    /// counts it. A writer's own value is restored after each merge it
    /// helps with. Valid: -20..=19.
    pub fn merge_nice(mut self, nice: i32) -> Self {
        self.merge_nice = Some(nice);
        self
    }

    /// Whether frozen blocks may live in huge pages (default true, or what
    /// `NUMATREE_HUGE_PAGES` says: `0` or `1`). Past its first chunks
    /// (about 500 KiB) a shard's block memory comes in 256 KiB slices of
    /// its node's 2 MiB chunks, which are mapped 2 MiB aligned and
    /// advised `MADV_HUGEPAGE` (Linux): a cold
    /// ingest takes one page fault where it took 512, and a lookup one TLB
    /// entry. Measured on a 2-core VM (BENCHMARKS.md, "Huge pages for
    /// frozen blocks"): page faults of a 10.24 M-point ingest ~24 K -> ~4
    /// K, ingest at 2 and 32 writers +10% and +18%, lookups +5-15%
    /// (medians; on that VM some ingests pay the host for zeroing huge
    /// pages its balloon took back, so single runs swing more). The
    /// kernel decides: with transparent huge pages off, or none free, the
    /// chunks are ordinary pages. The trade: a 2 MiB chunk is faulted
    /// whole, so each node may hold up to one partly used chunk (and
    /// each shard a partly used slice) that
    /// [`tree_bytes`](crate::NodeStats::tree_bytes) and the
    /// [memory budget](Self::memory_budget) do not count (the chunks are
    /// mapped outside the global allocator: [`mapped_bytes`](crate::mapped_bytes)
    /// counts them, whole, less those given back); and where the
    /// kernel's `defrag` setting compacts memory for advised regions
    /// (`madvise`, its default, or `always`), a fault on a fragmented
    /// machine may wait for compaction, on the merge's path: turn it off
    /// where steady merge latency matters more than throughput. Chunks
    /// [`reserve_records`](Self::reserve_records) reserves stay 256 KiB of
    /// ordinary pages.
    pub fn huge_pages(mut self, huge: bool) -> Self {
        self.huge_pages = Some(huge);
        self
    }

    /// Whether to bind threads and memory to nodes (default true; binding is
    /// skipped anyway on synthetic or XML topologies).
    pub fn pin_threads(mut self, pin: bool) -> Self {
        self.no_pinning = !pin;
        self
    }

    /// Calls `hook` at the start of every slot merge, on the merge thread: a
    /// fault-injection point for tests (panic to poison the index, block to
    /// stall merges).
    pub fn merge_hook(mut self, hook: impl Fn(crate::MergeEvent) + Send + Sync + 'static) -> Self {
        self.merge_hook = Some(Arc::new(hook));
        self
    }

    /// Fault injection for tests of the loss check: every merge silently
    /// drops the last record of its slot, so
    /// [`Stats::verify_accounting`](crate::Stats::verify_accounting) and
    /// oracle checks must report a loss. Never set it otherwise.
    #[doc(hidden)]
    pub fn plant_merge_loss(mut self, plant: bool) -> Self {
        self.plant_merge_loss = plant;
        self
    }

    /// Fault injection for the placement check (`numa_verify
    /// --mis-place-frozen`): each node's block arenas (its hot and frozen
    /// blocks) are bound to the next node's memory, so
    /// [`Index::memory_placement`] must report them there. Never set it
    /// otherwise.
    #[doc(hidden)]
    pub fn plant_frozen_elsewhere(mut self, plant: bool) -> Self {
        self.plant_frozen_elsewhere = plant;
        self
    }

    /// Checks every value, loads the topology, computes the plan, starts
    /// the pinned merge pools and reserves memory: everything `build` does
    /// but wrap the result.
    pub(crate) fn start(self) -> Result<Started, Error> {
        let slot_capacity = self.check_settings()?;
        let source = self
            .topology
            .clone()
            .or_else(TopologySource::from_env)
            .unwrap_or(TopologySource::System);
        let topology = Arc::new(Topology::load(&source)?);
        let mut plan_config = self.plan.clone();
        if plan_config.only_nodes.is_none() {
            plan_config.only_nodes = nodes_from_env()?;
        }
        let plan = Plan::for_topology(&topology, &plan_config)?;
        let memory = self.check_memory(&plan, slot_capacity)?;
        let bind = plan.binding_applied() && !self.no_pinning;
        let merge_nice = match self.merge_nice {
            Some(nice) => Some(nice),
            None => merge_nice_from_env()?,
        };
        let huge_pages = match self.huge_pages {
            Some(huge) => huge,
            None => huge_pages_from_env()?.unwrap_or(true),
        };
        let health = Arc::new(Health::default());
        let nodes: Vec<Arc<NodePipeline>> = plan
            .nodes()
            .iter()
            .enumerate()
            .zip(&memory.in_flight)
            .map(|((i, np), &in_flight_slots)| {
                Arc::new(NodePipeline::new(NodeSetup {
                    index: i,
                    rule: plan.shard_rule(i),
                    slot_capacity,
                    in_flight_slots,
                    binder: Binder {
                        topology: bind.then(|| Arc::clone(&topology)),
                        node: np.node,
                    },
                    frozen_binder: Binder {
                        topology: bind.then(|| Arc::clone(&topology)),
                        node: if self.plant_frozen_elsewhere {
                            // The next node, the first after the last.
                            let nodes = plan.nodes();
                            nodes
                                .get(i.wrapping_add(1))
                                .or(nodes.first())
                                .map_or(np.node, |n| n.node)
                        } else {
                            np.node
                        },
                    },
                    health: Arc::clone(&health),
                    hook: self.merge_hook.clone(),
                    plant_loss: self.plant_merge_loss,
                    merge_nice,
                    storage: StorageConfig {
                        freeze: !self.keep_blocks_hot,
                        retain: self.retain,
                        freeze_idle: self.freeze_idle_after,
                        huge_pages,
                    },
                }))
            })
            .collect();
        health.watch(
            nodes
                .iter()
                .map(|n| Arc::downgrade(n) as std::sync::Weak<dyn Waiters>)
                .collect(),
        );
        let merge_threads = Arc::new(Mutex::new(Vec::new()));
        for (i, (np, node)) in plan.nodes().iter().zip(&nodes).enumerate() {
            let pool = merge_pool(
                i,
                np.merge_cpus.clone(),
                bind,
                merge_nice,
                &topology,
                &health,
                {
                    // Weak: the node owns the pool, whose start handler this is.
                    let node = Arc::downgrade(node);
                    move || {
                        if let Some(node) = node.upgrade() {
                            node.count_priority_refusal();
                        }
                    }
                },
                &merge_threads,
            )?;
            if memory.reserve_per_node > 0 {
                pool.install(&|| node.reserve(memory.reserve_per_node, memory.series_per_node));
            }
            node.start(Box::new(pool));
        }
        Ok(Started {
            pipelines: Arc::new(Pipelines {
                plan,
                nodes,
                health,
                memory_budget: self.memory_budget,
                wait_for_memory: self.wait_for_memory,
            }),
            topology,
            merge_threads,
            bind,
        })
    }

    /// Checks every setting that does not need the topology (ranges, and
    /// settings that contradict each other); returns the slot capacity to
    /// use.
    fn check_settings(&self) -> Result<usize, Error> {
        let slot_capacity = self.slot_capacity.unwrap_or(DEFAULT_SLOT_CAPACITY);
        check_range(
            "slot_capacity",
            slot_capacity,
            MIN_SLOT_CAPACITY,
            MAX_SLOT_CAPACITY,
            "records",
        )?;
        if let Some(n) = self.slots_per_node {
            check_range("slots_per_node", n, 1, MAX_SLOTS_PER_NODE, "slots")?;
        }
        if let Some(series) = self.reserve_series {
            if series == 0 {
                return Err(Error::InvalidConfig(
                    "reserve_series = 0 is invalid: at least 1 series, or leave it unset".into(),
                ));
            }
            if self.reserve_records == 0 {
                return Err(Error::InvalidConfig(format!(
                    "reserve_series = {series} needs reserve_records: set how many records to reserve memory for"
                )));
            }
        }
        if self.memory_budget == Some(0) {
            return Err(Error::InvalidConfig(
                "memory_budget = 0 is invalid: must be > 0 bytes".into(),
            ));
        }
        if let Some(window) = self.retain.filter(|&w| w < 1) {
            return Err(Error::InvalidConfig(format!(
                "retain = {window} is invalid: the window must be >= 1 timestamp unit"
            )));
        }
        if let Some(age) = self.freeze_idle_after {
            if age < 1 {
                return Err(Error::InvalidConfig(format!(
                    "freeze_idle_after = {age} is invalid: the age must be >= 1 timestamp unit"
                )));
            }
            if let Some(window) = self.retain.filter(|&w| age >= w) {
                return Err(Error::InvalidConfig(format!(
                    "freeze_idle_after = {age} must be below retain = {window}: retention drops every point older than the window before its series could count as idle"
                )));
            }
            if self.keep_blocks_hot {
                return Err(Error::InvalidConfig(
                    "freeze_idle_after needs freezing on: remove freeze_blocks(false) or freeze_idle_after"
                        .into(),
                ));
            }
        }
        if let Some(nice) = self.merge_nice {
            check_nice("merge_nice", nice)?;
        }
        if self.wait_for_memory && self.memory_budget.is_none() {
            return Err(Error::InvalidConfig(
                "wait_for_memory needs a memory_budget: without one no writer ever waits for memory"
                    .into(),
            ));
        }
        Ok(slot_capacity)
    }

    /// Checks that the slots and the reservation fit the address space, the
    /// machine and the budget.
    fn check_memory(&self, plan: &Plan, slot_capacity: usize) -> Result<Memory, Error> {
        let too_big = |what: String| Error::InvalidConfig(what);
        let slot_bytes = slot_capacity
            .checked_mul(numatree_core::RECORD_BYTES)
            .ok_or_else(|| too_big(format!("slot_capacity = {slot_capacity} overflows")))?;
        let nodes = plan.node_count();
        let in_flight: Vec<usize> = plan
            .nodes()
            .iter()
            .map(|np| {
                self.slots_per_node.unwrap_or_else(|| {
                    np.merge_threads()
                        .saturating_mul(2)
                        .saturating_add(2)
                        .min(MAX_SLOTS_PER_NODE)
                })
            })
            .collect();
        let mut slot_memory: usize = 0;
        for &slots in &in_flight {
            slot_memory = slots
                .checked_mul(slot_bytes)
                .and_then(|b| slot_memory.checked_add(b))
                .ok_or_else(|| {
                    too_big(format!(
                        "slots_per_node = {slots} x slot_capacity = {slot_capacity} records \
                         does not fit in memory: lower either"
                    ))
                })?;
        }
        if let Some(machine) = physical_memory().filter(|&m| slot_memory > m) {
            return Err(too_big(format!(
                "slots_per_node x slot_capacity = {slot_capacity} records needs up to \
                 {slot_memory} bytes of slots over {nodes} node(s), more than this machine's \
                 {machine} bytes of memory: lower either"
            )));
        }
        let one_slot_per_node = slot_bytes.saturating_mul(nodes);
        if let Some(budget) = self.memory_budget {
            if budget < one_slot_per_node {
                return Err(too_big(format!(
                    "memory_budget = {budget} bytes is below one slot per node \
                     ({nodes} node(s) x {slot_bytes} bytes = {one_slot_per_node}): \
                     raise it or lower slot_capacity"
                )));
            }
        }
        let reserve_per_node = self.reserve_records.div_ceil(nodes);
        let series_per_node = self.reserve_series.map(|n| n.div_ceil(nodes));
        if self.reserve_records > 0 {
            let reserved = plan
                .nodes()
                .iter()
                .try_fold(slot_memory, |acc, np| {
                    let (per_shard, series) =
                        shard_share(reserve_per_node, series_per_node, np.shards);
                    ShardStorage::reserved_bytes(per_shard, series, !self.keep_blocks_hot)
                        .and_then(|b| b.checked_mul(np.shards))
                        .and_then(|b| acc.checked_add(b))
                })
                .unwrap_or(usize::MAX);
            let records = self.reserve_records;
            if let Some(budget) = self.memory_budget.filter(|&b| reserved > b) {
                return Err(too_big(format!(
                    "reserve_records = {records} needs about {reserved} bytes with the slots, \
                     above memory_budget = {budget} bytes: reserve less or raise the budget"
                )));
            }
            if let Some(machine) = physical_memory().filter(|&m| reserved > m) {
                return Err(too_big(format!(
                    "reserve_records = {records} needs about {reserved} bytes with the slots, \
                     more than this machine's {machine} bytes of memory"
                )));
            }
        }
        Ok(Memory {
            in_flight,
            reserve_per_node,
            series_per_node,
        })
    }
}

/// What `check_memory` settled.
struct Memory {
    /// In-flight slots of each node, in plan order.
    in_flight: Vec<usize>,
    /// Records to reserve on each node.
    reserve_per_node: usize,
    /// Series they belong to on each node, when known.
    series_per_node: Option<usize>,
}

/// A started index, before the public face wraps it.
pub(crate) struct Started {
    pub(crate) pipelines: Arc<Pipelines>,
    pub(crate) topology: Arc<Topology>,
    /// Join handles of every merge thread, joined by `close`.
    pub(crate) merge_threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    pub(crate) bind: bool,
}

/// `Err(InvalidConfig)` naming `name`, its value and the range, unless
/// `value` is in `min..=max`.
pub(crate) fn check_range<T: PartialOrd + Copy + std::fmt::Display>(
    name: &str,
    value: T,
    min: T,
    max: T,
    unit: &str,
) -> Result<(), Error> {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    Err(Error::InvalidConfig(format!(
        "{name} = {value} is invalid: must be in {min}..={max} {unit}"
    )))
}

/// This machine's physical memory in bytes, where the OS says.
fn physical_memory() -> Option<usize> {
    #[cfg(all(unix, not(miri)))]
    {
        // SAFETY: `sysconf` only reads system configuration; it has no
        // preconditions and returns -1 for an unknown name.
        let (pages, page) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let pages = usize::try_from(pages).ok()?;
        let page = usize::try_from(page).ok()?;
        pages.checked_mul(page)
    }
    #[cfg(not(all(unix, not(miri))))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_name_the_value_and_the_limits() {
        assert!(check_range("x", 5, 1, 5, "slots").is_ok());
        let err = check_range("x", 6, 1, 5, "slots").unwrap_err().to_string();
        assert!(
            err.contains("x = 6 is invalid: must be in 1..=5 slots"),
            "{err}"
        );
    }
}

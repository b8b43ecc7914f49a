//! The index's configuration: every value a user can set and its
//! documented range (this file: the [`Builder`] and its setters). `build`
//! then checks them (`checks`: out-of-range values and combinations that
//! cannot work become [`Error::InvalidConfig`](crate::Error::InvalidConfig)
//! before anything starts), reads the environment where the code set
//! nothing (`env`), and starts the pipelines (`start`).
//!
//! All arithmetic on user input here is checked (the module denies
//! `clippy::arithmetic_side_effects`): a value near `usize::MAX` is an
//! error naming the value and its limit, never an overflow panic, a hang
//! or an allocation that runs the machine out of memory.
#![deny(clippy::arithmetic_side_effects)]

use crate::pipeline::MergeHook;
use crate::plan::PlanConfig;
use crate::sync::Arc;
use crate::topology::TopologySource;

mod checks;
mod env;
mod start;

pub(crate) use checks::check_range;
pub(crate) use start::Started;

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
/// The env var that sets how many writers per node may help merge at once
/// where the code does not say ([`Builder::merge_helpers_per_node`]).
pub const MERGE_HELPERS_ENV: &str = "NUMATREE_MERGE_HELPERS";

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
    merge_helpers: Option<usize>,
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
            .field("merge_helpers", &self.merge_helpers)
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
    /// A node also keeps sort scratches, one slot plus a 256 KiB count
    /// table each, up to one per slot that may be in flight
    /// ([`slots_per_node`](Self::slots_per_node)), shared by its merge
    /// threads and helping writers: the stats count them
    /// ([`NodeStats::scratch_bytes`](crate::NodeStats::scratch_bytes)), the
    /// [memory budget](Self::memory_budget) does not.
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

    /// Refuse new slots (inserts fail with [`Error::MemoryBudget`](crate::Error::MemoryBudget)) once
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
    /// plus the slots; the sort scratches kept for them are made too, and
    /// count in [`scratch_bytes`](crate::NodeStats::scratch_bytes) only)
    /// must fit in this machine's memory and in the
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

    /// How many writers of a node may help merge at once: a writer that
    /// finds no free slot merges a queued one itself while fewer than `n`
    /// do, and parks otherwise. Default: `NUMATREE_MERGE_HELPERS` if set,
    /// else the node's writer CPUs (see [`Plan`](crate::Plan)).
    ///
    /// A merging writer holds its shards' lanes, so one that the scheduler
    /// preempts for another writer holds up every slot behind it: one seat
    /// per writer CPU keeps helpers from queueing behind each other. With
    /// 32 writers on the 2-core VM's one writer CPU that gave the insert
    /// 30-40% (BENCHMARKS.md, "Helper seats"). With more query threads
    /// than cores beside the writers, more seats give merging more of the
    /// CPU (each helper is one more thread in the scheduler's share), at
    /// the queries' expense: with 32 readers beside the 32 writers, 32
    /// seats ran the writers ~11% faster and the readers ~6% slower, and
    /// with [`merge_nice`](Self::merge_nice) -10, ~50% and ~15% (medians
    /// of three runs). Valid: 1..=4096.
    pub fn merge_helpers_per_node(mut self, n: usize) -> Self {
        self.merge_helpers = Some(n);
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
}

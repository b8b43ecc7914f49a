//! The public face: [`Index`], its [`Builder`], and the shared state that
//! writers, merge pools and queries reach through it.

use std::ops::RangeBounds;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use crate::flush::Ticket;
use crate::health::{panic_message, Health};
use crate::pipeline::{MergeHook, NodeSetup, NodeShared};
use crate::plan::{Plan, PlanConfig};
use crate::slot::{Binder, Slot};
use crate::stats::Stats;
use crate::sync::{lock, Arc, Mutex, Ordering, RwLock};
use crate::topology::{CpuId, NodeId, Topology, TopologySource};
use crate::writer::Writer;
use crate::Error;

/// Smallest slot capacity accepted, in records.
pub const MIN_SLOT_CAPACITY: usize = 64;
/// Largest slot capacity accepted, in records (16M records, 384 MiB).
pub const MAX_SLOT_CAPACITY: usize = 1 << 24;
/// Default slot capacity, in records (384 KiB per slot).
pub const DEFAULT_SLOT_CAPACITY: usize = 16_384;

/// Configures and builds an [`Index`]. Every value is checked in [`build`](Builder::build).
#[derive(Clone, Default)]
pub struct Builder {
    topology: Option<TopologySource>,
    plan: PlanConfig,
    slot_capacity: Option<usize>,
    slots_per_node: Option<usize>,
    memory_budget: Option<usize>,
    reserve_records: usize,
    no_pinning: bool,
    merge_hook: Option<MergeHook>,
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
            .field("pin_threads", &!self.no_pinning)
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

    /// Use only the first `n` NUMA nodes (default: all with CPUs).
    pub fn nodes(mut self, n: usize) -> Self {
        self.plan.nodes = Some(n);
        self
    }

    /// Use only these NUMA nodes (logical indexes). Default: the list in the
    /// env var `NUMATREE_NODES` (e.g. `1` or `0,2`) if set, else every node.
    pub fn only_nodes(mut self, nodes: &[usize]) -> Self {
        self.plan.only_nodes = Some(nodes.to_vec());
        self
    }

    /// Merge threads per node (default: half the node's CPUs, rounded up).
    pub fn merge_threads_per_node(mut self, n: usize) -> Self {
        self.plan.merge_threads_per_node = Some(n);
        self
    }

    /// Shards per node, 1..=256 (default: 4 per merge thread).
    pub fn shards_per_node(mut self, n: usize) -> Self {
        self.plan.shards_per_node = Some(n);
        self
    }

    /// Records per slot (default 16,384; at least 64).
    pub fn slot_capacity(mut self, records: usize) -> Self {
        self.slot_capacity = Some(records);
        self
    }

    /// Slots per node that can be sealed or merging at once, on top of the
    /// one each writer fills (default: 2 per merge thread + 2). Fewer means
    /// less memory and earlier backpressure.
    pub fn slots_per_node(mut self, n: usize) -> Self {
        self.slots_per_node = Some(n);
        self
    }

    /// Refuse new slots (inserts fail with [`Error::MemoryBudget`]) once
    /// trees and slots hold this many bytes. Merges in flight always finish.
    pub fn memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = Some(bytes);
        self
    }

    /// Pre-allocate and pre-fault tree and slot memory for this many
    /// records, from threads pinned on each node (first touch is ~10x slower
    /// than a copy on some machines).
    pub fn reserve_records(mut self, records: usize) -> Self {
        self.reserve_records = records;
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

    /// Loads the topology, computes the plan, starts the pinned merge pools.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an out-of-range value (the message names
    /// the limit), [`Error::Topology`] for an unusable topology source,
    /// [`Error::Thread`] when a merge pool cannot start.
    pub fn build(self) -> Result<Index, Error> {
        let slot_capacity = self.slot_capacity.unwrap_or(DEFAULT_SLOT_CAPACITY);
        if !(MIN_SLOT_CAPACITY..=MAX_SLOT_CAPACITY).contains(&slot_capacity) {
            return Err(Error::InvalidConfig(format!(
                "slot capacity {slot_capacity} is invalid: must be in \
                 {MIN_SLOT_CAPACITY}..={MAX_SLOT_CAPACITY} records"
            )));
        }
        if self.slots_per_node == Some(0) {
            return Err(Error::InvalidConfig(
                "slots_per_node = 0 is invalid: must be >= 1 (slots that can merge at once)".into(),
            ));
        }
        if self.memory_budget == Some(0) {
            return Err(Error::InvalidConfig(
                "memory budget 0 is invalid: must be > 0 bytes".into(),
            ));
        }
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
        let bind = plan.binding_applied() && !self.no_pinning;
        let health = Arc::new(Health::default());
        let nodes: Vec<Arc<NodeShared>> = plan
            .nodes()
            .iter()
            .enumerate()
            .map(|(i, np)| {
                let in_flight = self.slots_per_node.unwrap_or(2 * np.merge_threads() + 2);
                let binder = Binder {
                    topology: bind.then(|| Arc::clone(&topology)),
                    node: np.node,
                };
                Arc::new(NodeShared::new(NodeSetup {
                    index: i,
                    node_count: plan.node_count(),
                    shard_count: np.shards,
                    slot_capacity,
                    in_flight_slots: in_flight,
                    binder,
                    health: Arc::clone(&health),
                    hook: self.merge_hook.clone(),
                }))
            })
            .collect();
        health.watch(nodes.iter().map(Arc::downgrade).collect());
        let merge_threads = Arc::new(Mutex::new(Vec::new()));
        let mut pools = Vec::with_capacity(nodes.len());
        for (i, np) in plan.nodes().iter().enumerate() {
            pools.push(merge_pool(
                i,
                np.merge_cpus.clone(),
                bind,
                &topology,
                &health,
                &merge_threads,
            )?);
        }
        if self.reserve_records > 0 {
            let per_node = self.reserve_records.div_ceil(nodes.len());
            for (pool, node) in pools.iter().zip(&nodes) {
                pool.install(|| node.reserve(per_node));
            }
        }
        Ok(Index {
            shared: Arc::new(Shared {
                plan,
                topology,
                nodes,
                pools: RwLock::new(pools),
                health,
                merge_threads,
                bind,
                memory_budget: self.memory_budget,
            }),
        })
    }
}

/// The env var naming the NUMA nodes to use, e.g. `0` or `0,2`.
pub const NODES_ENV: &str = "NUMATREE_NODES";

/// Parses `NUMATREE_NODES`, if set and non-empty.
fn nodes_from_env() -> Result<Option<Vec<usize>>, Error> {
    match std::env::var(NODES_ENV) {
        Ok(v) if !v.trim().is_empty() => parse_node_list(&v).map(Some),
        _ => Ok(None),
    }
}

/// Parses a comma-separated list of node indexes.
fn parse_node_list(list: &str) -> Result<Vec<usize>, Error> {
    list.split(',')
        .map(|n| {
            n.trim().parse().map_err(|_| {
                Error::InvalidConfig(format!(
                    "{NODES_ENV}={list:?} is invalid: expected node indexes like 0 or 0,2"
                ))
            })
        })
        .collect()
}

/// Starts node `index`'s merge pool: threads pinned to its merge CPUs at
/// start, a panic poisoning the index and waking every waiter, and every
/// thread's join handle kept so `close` can join them all.
fn merge_pool(
    index: usize,
    cpus: Vec<CpuId>,
    bind: bool,
    topology: &Arc<Topology>,
    health: &Arc<Health>,
    joins: &Arc<Mutex<Vec<JoinHandle<()>>>>,
) -> Result<rayon::ThreadPool, Error> {
    let threads = cpus.len().max(1);
    let topo = Arc::clone(topology);
    let h = Arc::clone(health);
    let joins = Arc::clone(joins);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .spawn_handler(move |thread| {
            let name = format!("numatree-merge-n{index}-{}", thread.index());
            let handle = thread::Builder::new().name(name).spawn(|| thread.run())?;
            lock(&joins).push(handle);
            Ok(())
        })
        .start_handler(move |_| {
            if bind {
                // Best effort: an unbound merge thread is slower, not wrong.
                let _ = topo.bind_current_thread(&cpus);
            }
        })
        // Merges catch their own panics (see `NodeShared::merge_next`); this
        // covers anything else a pool thread runs.
        .panic_handler(move |payload| h.poison(panic_message(&*payload)))
        .build()
        .map_err(|e| Error::Thread {
            what: format!("merge pool of node {index}"),
            reason: e.to_string(),
        })?;
    Ok(pool)
}

/// State shared by the index, its writers and its merge jobs.
pub(crate) struct Shared {
    plan: Plan,
    topology: Arc<Topology>,
    pub(crate) nodes: Vec<Arc<NodeShared>>,
    /// One merge pool per node; emptied by `close`.
    pools: RwLock<Vec<rayon::ThreadPool>>,
    health: Arc<Health>,
    /// Join handles of every merge thread, joined by `close`.
    merge_threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    bind: bool,
    memory_budget: Option<usize>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The plan index of the node owning `series`.
    #[inline]
    pub(crate) fn node_of(&self, series: u32) -> usize {
        if self.nodes.len() == 1 {
            0
        } else {
            series as usize % self.nodes.len()
        }
    }

    /// A slot for `node`. With none free (backpressure), a writer at home
    /// on that node (or unpinned) helps merge the node's sealed slots, then
    /// spins and parks until a merge returns one.
    pub(crate) fn acquire(&self, node: usize, home: Option<usize>) -> Result<Box<Slot>, Error> {
        self.health.check()?;
        if let Some(budget) = self.memory_budget {
            let used = self.memory_used();
            if used >= budget {
                return Err(Error::MemoryBudget { budget, used });
            }
        }
        let n = &self.nodes[node];
        if let Some(slot) = n.slots.try_acquire() {
            return Ok(slot);
        }
        self.wait_helping(
            node,
            home,
            || {
                self.health.check()?;
                Ok(n.slots.try_acquire())
            },
            || n.slots.wait_for_slot(&self.health),
        )
    }

    /// One backpressure wait on `node`, counted and timed: until `ready`
    /// gives a value (or an error), a writer at home on `node` (or unpinned)
    /// helps merge the node's queue; with nothing left to help, it `park`s.
    fn wait_helping<T>(
        &self,
        node: usize,
        home: Option<usize>,
        mut ready: impl FnMut() -> Result<Option<T>, Error>,
        park: impl FnOnce() -> Result<T, Error>,
    ) -> Result<T, Error> {
        let n = &self.nodes[node];
        n.counters
            .backpressure_waits
            .fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let may_help = home.is_none_or(|h| h == node);
        let result = loop {
            match ready() {
                Ok(Some(value)) => break Ok(value),
                Err(e) => break Err(e),
                Ok(None) => {}
            }
            if may_help && n.merge_next() {
                n.counters.helped_merges.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            break park();
        };
        n.counters
            .blocked_ns
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        result
    }

    fn memory_used(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| {
                n.counters.tree_bytes.load(Ordering::Relaxed)
                    + n.slots.existing() * n.slots.slot_bytes()
            })
            .sum()
    }

    /// Seals `slot` and hands it to `node`'s merge pool (merged on this
    /// thread once the index is closed, so late writers lose nothing).
    /// `previous` is the ticket of this writer's last slot for `node`: the
    /// new slot is handed over only once that one is merged, so one
    /// writer's inserts of a key apply in order. Returns the new ticket.
    pub(crate) fn submit(
        &self,
        node: usize,
        slot: Box<Slot>,
        home: Option<usize>,
        previous: Option<Ticket>,
    ) -> Result<Ticket, Error> {
        let n = &self.nodes[node];
        let waited = previous.map(|t| self.wait_merged(node, &t, home));
        if let Err(e) = self.health.check_poison().and(waited.unwrap_or(Ok(()))) {
            n.slots.forget();
            return Err(e);
        }
        let records = slot.records.len() as u64;
        let c = &n.counters;
        c.records_accepted.fetch_add(records, Ordering::Relaxed);
        c.slots_sealed.fetch_add(1, Ordering::Relaxed);
        match home {
            Some(h) if h == node => c.local_records.fetch_add(records, Ordering::Relaxed),
            Some(_) => c.remote_records.fetch_add(records, Ordering::Relaxed),
            None => c.unpinned_records.fetch_add(records, Ordering::Relaxed),
        };
        let ticket = Ticket::default();
        let epoch = n.flush.sealed();
        n.enqueue(slot, epoch, Arc::clone(&ticket));
        let pools = self.pools.read().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = pools.get(node) {
            let job = Arc::clone(n);
            pool.spawn(move || {
                job.merge_next();
            });
        } else {
            drop(pools);
            while n.merge_next() {}
            self.health.check_poison()?;
        }
        Ok(ticket)
    }

    /// Waits until the slot behind `ticket` is merged, helping to merge
    /// `node`'s queue meanwhile when the writer is at home there.
    fn wait_merged(&self, node: usize, ticket: &Ticket, home: Option<usize>) -> Result<(), Error> {
        if ticket.load(Ordering::Acquire) {
            return Ok(());
        }
        self.wait_helping(
            node,
            home,
            || {
                if ticket.load(Ordering::Acquire) {
                    return Ok(Some(()));
                }
                self.health.check_poison().map(|()| None)
            },
            || self.nodes[node].flush.wait_for(ticket, &self.health),
        )
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
/// assert_eq!(stats.total.alloc_failures, 0);
/// # Ok::<(), numatree::Error>(())
/// ```
#[derive(Debug)]
pub struct Index {
    shared: Arc<Shared>,
}

impl Index {
    /// A builder with default settings.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A writer for the calling thread (not pinned; see [`run_writers`](Self::run_writers)).
    pub fn writer(&self) -> Writer {
        Writer::new(Arc::clone(&self.shared), None)
    }

    /// The value stored for `(series, ts)`, if merged.
    pub fn get(&self, series: u32, ts: i64) -> Option<u64> {
        let (node, shard) = self.route(series);
        let tree = self.shared.nodes[node].shards[shard]
            .tree
            .read()
            .unwrap_or_else(|e| e.into_inner());
        tree.get(series, ts)
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
        let (node, shard) = self.route(series);
        let tree = self.shared.nodes[node].shards[shard]
            .tree
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let before = out.len();
        out.extend(tree.range(series, range).map(|r| (r.key.ts, r.value)));
        out.len() - before
    }

    #[inline]
    fn route(&self, series: u32) -> (usize, usize) {
        let node = self.shared.node_of(series);
        (node, self.shared.nodes[node].shard_of(series))
    }

    /// Distinct keys merged so far.
    pub fn len(&self) -> usize {
        self.shared.nodes.iter().map(|n| n.keys()).sum()
    }

    /// Whether no record has been merged yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        Stats::from_nodes(
            self.shared
                .nodes
                .iter()
                .map(|n| {
                    n.counters
                        .snapshot(n.keys(), n.slots.existing() * n.slots.slot_bytes())
                })
                .collect(),
        )
    }

    /// Where threads run and series live.
    pub fn plan(&self) -> &Plan {
        &self.shared.plan
    }

    /// The topology the plan was computed from.
    pub fn topology(&self) -> &Topology {
        &self.shared.topology
    }

    /// The shared state, for crate modules that inspect it (`placement`).
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Every shard's (node, shard, keys) — for checking the partitioning.
    pub fn shard_lengths(&self) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        for n in &self.shared.nodes {
            for (s, shard) in n.shards.iter().enumerate() {
                out.push((n.index, s, shard.keys.load(Ordering::Acquire)));
            }
        }
        out
    }

    /// Waits until every slot sealed before the call (by [`Writer::flush`],
    /// a full slot, or a dropped writer) is merged and visible.
    ///
    /// # Errors
    /// [`Error::Poisoned`] when a merge thread panicked.
    pub fn flush(&self) -> Result<(), Error> {
        for node in &self.shared.nodes {
            node.flush.barrier(&self.shared.health)?;
        }
        Ok(())
    }

    /// Runs `f` on `per_node` writer threads per node, each bound to its
    /// node's writer CPUs (when binding applies) with its own [`Writer`],
    /// flushed when `f` returns. Returns when every thread has finished.
    ///
    /// # Errors
    /// The first error a thread returned, or [`Error::InvalidConfig`] for
    /// `per_node == 0`. A panic in `f` is propagated.
    pub fn run_writers<F>(&self, per_node: usize, f: F) -> Result<(), Error>
    where
        F: Fn(&WriterContext, &mut Writer) -> Result<(), Error> + Sync,
    {
        if per_node == 0 {
            return Err(Error::InvalidConfig(
                "run_writers with 0 threads per node: must be >= 1".into(),
            ));
        }
        let threads = per_node * self.shared.nodes.len();
        let f = &f;
        thread::scope(|scope| {
            let mut handles = Vec::with_capacity(threads);
            for node in 0..self.shared.nodes.len() {
                for thread in 0..per_node {
                    let builder =
                        thread::Builder::new().name(format!("numatree-writer-n{node}-{thread}"));
                    let handle = builder
                        .spawn_scoped(scope, move || {
                            let pinned = self.shared.bind
                                && self
                                    .shared
                                    .topology
                                    .bind_current_thread(self.shared.plan.writer_cpus(node))
                                    .unwrap_or(false);
                            let ctx = WriterContext {
                                node,
                                node_id: self.shared.plan.nodes()[node].node,
                                thread,
                                global: node * per_node + thread,
                                threads,
                                pinned,
                            };
                            let mut writer =
                                Writer::new(Arc::clone(&self.shared), pinned.then_some(node));
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
        self.shared.health.close();
        let pools =
            std::mem::take(&mut *self.shared.pools.write().unwrap_or_else(|e| e.into_inner()));
        // Slots sealed before the pools were taken were spawned on them:
        // let them finish before the threads go.
        let drained = self.flush();
        drop(pools);
        for handle in std::mem::take(&mut *lock(&self.shared.merge_threads)) {
            // A merge panic was caught by the pool's handler; a join error
            // here would be a panic outside any job, reported as poison too.
            if handle.join().is_err() {
                self.shared
                    .health
                    .poison("merge thread died outside a job".into());
            }
        }
        flushed.and(drained).map(|()| self.stats())
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.health.is_closed()
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_lists_parse_or_name_the_bad_value() {
        assert_eq!(parse_node_list("1").unwrap(), [1]);
        assert_eq!(parse_node_list("0, 2").unwrap(), [0, 2]);
        let err = parse_node_list("0,x").unwrap_err().to_string();
        assert!(err.contains("NUMATREE_NODES=\"0,x\" is invalid"), "{err}");
    }
}

//! What `build` does: check the settings (`checks`), load the topology,
//! compute the plan and check the memory it needs, make each node's
//! pipeline (its slots, shards and storage settings), then start each
//! node's pinned merge pool, which reserves the node's memory from the
//! node itself before any writer comes.

use std::thread::JoinHandle;

use super::checks::Memory;
use super::env::{
    huge_pages_from_env, merge_helpers_from_env, merge_nice_from_env, nodes_from_env,
};
use super::Builder;
use crate::health::{Health, Waiters};
use crate::pipeline::{merge_pool, Executor, NodePipeline, NodeSetup, Pipelines};
use crate::plan::Plan;
use crate::slot::Binder;
use crate::storage::StorageConfig;
use crate::sync::{Arc, Mutex};
use crate::topology::{Topology, TopologySource};
use crate::Error;

/// A started index, before the public face wraps it.
pub(crate) struct Started {
    pub(crate) pipelines: Arc<Pipelines>,
    pub(crate) topology: Arc<Topology>,
    /// Join handles of every merge thread, joined by `close`.
    pub(crate) merge_threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    pub(crate) bind: bool,
}

/// What every node's pipeline is made with, settled once for all nodes.
struct Settled {
    slot_capacity: usize,
    bind: bool,
    merge_nice: Option<i32>,
    /// Writers per node that may help merge at once; `None`: the node's
    /// writer CPUs.
    merge_helpers: Option<usize>,
    huge_pages: bool,
}

impl Builder {
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
        let settled = Settled {
            slot_capacity,
            bind: plan.binding_applied() && !self.no_pinning,
            merge_nice: match self.merge_nice {
                Some(nice) => Some(nice),
                None => merge_nice_from_env()?,
            },
            merge_helpers: match self.merge_helpers {
                Some(n) => Some(n),
                None => merge_helpers_from_env()?,
            },
            huge_pages: match self.huge_pages {
                Some(huge) => huge,
                None => huge_pages_from_env()?.unwrap_or(true),
            },
        };
        let health = Arc::new(Health::default());
        let nodes = self.node_pipelines(&plan, &topology, &memory, &settled, &health);
        health.watch(
            nodes
                .iter()
                .map(|n| Arc::downgrade(n) as std::sync::Weak<dyn Waiters>)
                .collect(),
        );
        let merge_threads = Arc::new(Mutex::new(Vec::new()));
        start_merge_pools(
            &plan,
            &nodes,
            &topology,
            &memory,
            &settled,
            &health,
            &merge_threads,
        )?;
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
            bind: settled.bind,
        })
    }

    /// Each planned node's pipeline, in plan order (not started).
    fn node_pipelines(
        &self,
        plan: &Plan,
        topology: &Arc<Topology>,
        memory: &Memory,
        settled: &Settled,
        health: &Arc<Health>,
    ) -> Vec<Arc<NodePipeline>> {
        let binder = |node| Binder {
            topology: settled.bind.then(|| Arc::clone(topology)),
            node,
        };
        plan.nodes()
            .iter()
            .enumerate()
            .zip(&memory.in_flight)
            .map(|((i, np), &in_flight_slots)| {
                let frozen_node = if self.plant_frozen_elsewhere {
                    // The next node, the first after the last.
                    let nodes = plan.nodes();
                    nodes
                        .get(i.wrapping_add(1))
                        .or(nodes.first())
                        .map_or(np.node, |n| n.node)
                } else {
                    np.node
                };
                Arc::new(NodePipeline::new(NodeSetup {
                    index: i,
                    rule: plan.shard_rule(i),
                    slot_capacity: settled.slot_capacity,
                    in_flight_slots,
                    binder: binder(np.node),
                    frozen_binder: binder(frozen_node),
                    health: Arc::clone(health),
                    hook: self.merge_hook.clone(),
                    plant_loss: self.plant_merge_loss,
                    merge_nice: settled.merge_nice,
                    helper_seats: settled.merge_helpers.unwrap_or(np.writer_cpus.len()),
                    storage: StorageConfig {
                        freeze: !self.keep_blocks_hot,
                        retain: self.retain,
                        freeze_idle: self.freeze_idle_after,
                        huge_pages: settled.huge_pages,
                    },
                }))
            })
            .collect()
    }
}

/// Starts each node's pinned merge pool, which first reserves the node's
/// share of memory (bound and touched from the node), then hands the
/// pool to its node.
fn start_merge_pools(
    plan: &Plan,
    nodes: &[Arc<NodePipeline>],
    topology: &Arc<Topology>,
    memory: &Memory,
    settled: &Settled,
    health: &Arc<Health>,
    merge_threads: &Arc<Mutex<Vec<JoinHandle<()>>>>,
) -> Result<(), Error> {
    for (i, (np, node)) in plan.nodes().iter().zip(nodes).enumerate() {
        let pool = merge_pool(
            i,
            np.merge_cpus.clone(),
            settled.bind,
            settled.merge_nice,
            topology,
            health,
            {
                // Weak: the node owns the pool, whose start handler this is.
                let node = Arc::downgrade(node);
                move || {
                    if let Some(node) = node.upgrade() {
                        node.count_priority_refusal();
                    }
                }
            },
            merge_threads,
        )?;
        if memory.reserve_per_node > 0 {
            pool.install(&|| node.reserve(memory.reserve_per_node, memory.series_per_node));
        }
        node.start(Box::new(pool));
    }
    Ok(())
}

//! The placement plan: which CPUs of each NUMA node run writers and which run
//! merges, how many shards each node's tree has, and which node and shard
//! every series belongs to.
//!
//! The plan is pure data computed from a list of [`NumaNode`]s, with no hwloc
//! call, so it is computed and tested the same way on a laptop, on a 2-socket
//! server, and on an hwloc synthetic topology standing in for one. It is
//! printable ([`fmt::Display`]) so that every benchmark report can show where
//! its threads ran.
//!
//! # Nodes
//!
//! Only nodes with CPUs take part ([`NumaNode::has_cpus`]); memory-only nodes
//! get no partition. [`PlanConfig::nodes`] = `k` keeps the first `k` of them
//! in logical order.
//!
//! # Roles
//!
//! Writers and merges run at the same time, so on a node with `C >= 2` CPUs
//! they get disjoint CPUs and every CPU has exactly one role: the last
//! `m` CPUs (in the node's logical PU order) run merge threads and the first
//! `C - m` run writers, with `m = ceil(C / 2)` by default or
//! [`PlanConfig::merge_threads_per_node`] (`1..=C-1`). Keeping each role a
//! contiguous run of the logical order keeps SMT siblings in the same role
//! whenever the split point falls between cores. A node with a single CPU
//! cannot separate the roles: its writers and its one merge thread share that
//! CPU ([`NodePlan::roles_share_cpus`]; the configured merge thread count does
//! not apply to it), and the printed plan says so.
//!
//! A node runs one merge thread per merge CPU. Its tree is split into
//! `shards` shards, by default 4 per merge thread so that merge threads rarely
//! wait for one another, and always within `1..=256`.
//!
//! # Partition
//!
//! With `n` nodes in the plan, series `s` lives on node `s % n` (an index into
//! [`Plan::nodes`]) and, within that node, in shard `(s / n) % shards`, where
//! `shards` is that node's shard count. Consecutive series therefore spread
//! over all nodes, and the series of one node spread over all its shards. The
//! rule is deterministic: it depends only on the node count and shard counts,
//! never on insertion order or timing.

use crate::topology::{CpuId, CpuList, NodeId, NumaNode, Topology, TopologySource};
use crate::Error;

mod shard_rule;
pub use shard_rule::ShardRule;
use std::fmt;

/// Most shards one node's tree may be split into.
pub const MAX_SHARDS_PER_NODE: usize = 256;

/// Default shards per merge thread.
pub const DEFAULT_SHARDS_PER_MERGE_THREAD: usize = 4;

/// Knobs of [`Plan::compute`]; `None` takes the default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PlanConfig {
    /// Use only the first `k` NUMA nodes that have CPUs (`1..=` their count).
    /// Default: all of them.
    pub nodes: Option<usize>,
    /// Merge threads (and merge CPUs) on each node with `C >= 2` CPUs, in
    /// `1..=C-1`. Default: `ceil(C / 2)`. Nodes with one CPU always get one
    /// merge thread, sharing the CPU with writers.
    pub merge_threads_per_node: Option<usize>,
    /// Shards per node, in `1..=256`. Default: 4 per merge thread of the node,
    /// at most 256.
    pub shards_per_node: Option<usize>,
    /// Use only these NUMA nodes (logical indexes, as in [`Topology::nodes`]),
    /// e.g. for one process per node bound with `hwloc-bind`. Applied
    /// before `nodes`. Default: every node.
    pub only_nodes: Option<Vec<usize>>,
}

/// The plan for one NUMA node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodePlan {
    /// The node.
    pub node: NodeId,
    /// OS number of the node.
    pub os_index: u32,
    /// CPUs that run writer threads; never empty.
    pub writer_cpus: Vec<CpuId>,
    /// CPUs that run merge threads, one thread each; never empty.
    pub merge_cpus: Vec<CpuId>,
    /// Number of shards the node's tree is split into, `1..=256`.
    pub shards: usize,
}

impl NodePlan {
    /// `node`'s part of the plan: its CPUs split into writer CPUs (the
    /// first) and merge CPUs (the last `cfg.merge_threads_per_node`, by
    /// default half rounded up; one CPU does both), and its shards.
    fn for_node(node: &NumaNode, cfg: &PlanConfig) -> Result<NodePlan, Error> {
        let cpus = &node.cpus;
        let (writer_cpus, merge_cpus) = if cpus.len() == 1 {
            (cpus.clone(), cpus.clone())
        } else {
            let merges = cfg.merge_threads_per_node.unwrap_or(cpus.len().div_ceil(2));
            if merges >= cpus.len() {
                return Err(Error::InvalidConfig(format!(
                    "merge_threads_per_node = {merges} is invalid for node {} with {} CPUs: \
                     must be <= {} so that writers keep at least one CPU",
                    node.id,
                    cpus.len(),
                    cpus.len() - 1
                )));
            }
            let split = cpus.len() - merges;
            (cpus[..split].to_vec(), cpus[split..].to_vec())
        };
        let shards = cfg.shards_per_node.unwrap_or_else(|| {
            (DEFAULT_SHARDS_PER_MERGE_THREAD * merge_cpus.len()).clamp(1, MAX_SHARDS_PER_NODE)
        });
        Ok(NodePlan {
            node: node.id,
            os_index: node.os_index,
            writer_cpus,
            merge_cpus,
            shards,
        })
    }

    /// Merge threads on this node: one per merge CPU.
    pub fn merge_threads(&self) -> usize {
        self.merge_cpus.len()
    }

    /// Whether writers and merges share a CPU (only on a 1-CPU node).
    pub fn roles_share_cpus(&self) -> bool {
        self.merge_cpus.iter().any(|c| self.writer_cpus.contains(c))
    }

    /// All CPUs of the node that the plan uses, writers first.
    pub fn cpus(&self) -> Vec<CpuId> {
        let mut cpus = self.writer_cpus.clone();
        cpus.extend(
            self.merge_cpus
                .iter()
                .filter(|c| !self.writer_cpus.contains(c)),
        );
        cpus
    }
}

/// Where every thread runs and where every series lives. See the module doc.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Plan {
    nodes: Vec<NodePlan>,
    /// `nodes.len()`, as the divisor of the partition rule.
    node_count: u32,
    /// Each node's shard rule (see [`ShardRule`]), made once.
    rules: Vec<ShardRule>,
    binding_applied: bool,
    /// One line describing the topology the plan was computed from.
    topology: String,
    /// Why binding is not applied, when it is not.
    binding_note: String,
}

/// Checks the settings that need no topology: each is `None` or in its
/// range.
fn check_plan_settings(cfg: &PlanConfig) -> Result<(), Error> {
    let invalid = |msg: String| Err(Error::InvalidConfig(msg));
    if cfg.nodes == Some(0) {
        return invalid("nodes = 0 is invalid: must be >= 1".into());
    }
    if cfg.merge_threads_per_node == Some(0) {
        return invalid("merge_threads_per_node = 0 is invalid: must be >= 1".into());
    }
    if let Some(shards) = cfg.shards_per_node {
        if !(1..=MAX_SHARDS_PER_NODE).contains(&shards) {
            return invalid(format!(
                "shards_per_node = {shards} is invalid: must be in 1..={MAX_SHARDS_PER_NODE}"
            ));
        }
    }
    Ok(())
}

/// The nodes the plan spans: `cfg.nodes`, or all `usable` ones (of
/// `given` nodes, those with CPUs); at least one, at most the usable ones,
/// and few enough that nodes times shards fits the partition rule's `u32`.
fn planned_node_count(cfg: &PlanConfig, given: usize, usable: usize) -> Result<u32, Error> {
    let invalid = |msg: String| Err(Error::InvalidConfig(msg));
    if usable == 0 {
        return invalid(format!(
            "none of the {given} NUMA nodes given has a CPU: a plan needs at least one"
        ));
    }
    let count = cfg.nodes.unwrap_or(usable);
    if count > usable {
        return invalid(format!(
            "nodes = {count} is more than the topology's {usable} NUMA node{} with CPUs",
            if usable == 1 { "" } else { "s" }
        ));
    }
    u32::try_from(count)
        .ok()
        .filter(|&n| n.checked_mul(MAX_SHARDS_PER_NODE as u32).is_some())
        .ok_or_else(|| {
            Error::InvalidConfig(format!(
                "nodes = {count} is invalid: must be at most {}",
                u32::MAX / MAX_SHARDS_PER_NODE as u32
            ))
        })
}

impl Plan {
    /// Computes the plan for `nodes` (normally [`Topology::nodes`]).
    /// `binding_applied` records whether threads and memory will really be
    /// bound; it changes nothing else.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`], naming the value and its limit, when
    /// `cfg.nodes` is 0 or more than the nodes with CPUs,
    /// `cfg.merge_threads_per_node` is 0 or leaves no writer CPU on some
    /// node with 2 or more CPUs, `cfg.shards_per_node` is outside `1..=256`,
    /// or no node has a CPU.
    pub fn compute(
        nodes: &[NumaNode],
        binding_applied: bool,
        cfg: &PlanConfig,
    ) -> Result<Plan, Error> {
        check_plan_settings(cfg)?;
        let usable: Vec<&NumaNode> = nodes.iter().filter(|n| n.has_cpus()).collect();
        let node_count = planned_node_count(cfg, nodes.len(), usable.len())?;
        let plans = usable[..node_count as usize]
            .iter()
            .map(|node| NodePlan::for_node(node, cfg))
            .collect::<Result<Vec<_>, _>>()?;

        let total_cpus: usize = nodes.iter().map(|n| n.cpus.len()).sum();
        let rules = plans
            .iter()
            .map(|p| ShardRule::new(node_count, p.shards as u32))
            .collect();
        Ok(Plan {
            nodes: plans,
            node_count,
            rules,
            binding_applied,
            topology: format!(
                "{} NUMA node{} given, {total_cpus} CPUs",
                nodes.len(),
                if nodes.len() == 1 { "" } else { "s" }
            ),
            binding_note: String::new(),
        })
    }

    /// Computes the plan for `topology`: binding is applied when it is this
    /// system and supports CPU binding, and the printed plan names the
    /// topology and, when binding is not applied, why.
    ///
    /// # Errors
    ///
    /// As [`Plan::compute`].
    pub fn for_topology(topology: &Topology, cfg: &PlanConfig) -> Result<Plan, Error> {
        let applied = topology.is_this_system() && topology.binding().cpu;
        let chosen: Vec<NumaNode> = match &cfg.only_nodes {
            None => topology.nodes().to_vec(),
            Some(only) => {
                let all = topology.nodes();
                if only.is_empty() {
                    return Err(Error::InvalidConfig(
                        "only_nodes is empty: name at least one node".into(),
                    ));
                }
                if let Some(bad) = only.iter().find(|&&i| i >= all.len()) {
                    return Err(Error::InvalidConfig(format!(
                        "only_nodes names node {bad}, but the topology has nodes 0..{}",
                        all.len()
                    )));
                }
                all.iter()
                    .enumerate()
                    .filter(|(i, _)| only.contains(i))
                    .map(|(_, n)| n.clone())
                    .collect()
            }
        };
        let mut plan = Self::compute(&chosen, applied, cfg)?;
        plan.topology = topology.summary();
        if !applied {
            plan.binding_note = match topology.source() {
                TopologySource::Synthetic(_) => "synthetic topology",
                TopologySource::XmlFile(_) => "XML topology, not this machine",
                TopologySource::System if !topology.is_this_system() => "not this system",
                TopologySource::System => "CPU binding unsupported here",
            }
            .into();
        }
        Ok(plan)
    }

    /// The per-node plans; the partition's node index is an index into this.
    pub fn nodes(&self) -> &[NodePlan] {
        &self.nodes
    }

    /// Number of nodes in the plan (`nodes().len()`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Whether threads and memory are really bound (false on synthetic and
    /// XML topologies).
    pub fn binding_applied(&self) -> bool {
        self.binding_applied
    }

    /// Index into [`Plan::nodes`] of the node that owns `series`:
    /// `series % node_count` (no division on a one-node plan).
    #[inline]
    pub fn node_of(&self, series: u32) -> usize {
        if self.node_count == 1 {
            0
        } else {
            self.rules[0].node_of(series)
        }
    }

    /// Shard, within its node, of `series`: `(series / node_count) % shards`.
    #[inline]
    pub fn shard_of(&self, series: u32) -> usize {
        self.route(series).1
    }

    /// `(node_of(series), shard_of(series))`.
    #[inline]
    pub fn route(&self, series: u32) -> (usize, usize) {
        let node = self.node_of(series);
        (node, self.shard_rule(node).shard_of(series))
    }

    /// The rule that picks a shard within node `node_idx`: what the node's
    /// merges group and route records by.
    ///
    /// # Panics
    ///
    /// If `node_idx >= node_count()`.
    pub fn shard_rule(&self, node_idx: usize) -> ShardRule {
        self.rules[node_idx]
    }

    /// The CPU for the `i`-th writer of node `node_idx`: writer CPUs in
    /// round-robin order.
    ///
    /// # Panics
    ///
    /// If `node_idx >= node_count()`.
    pub fn writer_cpu(&self, node_idx: usize, i: usize) -> CpuId {
        let cpus = &self.nodes[node_idx].writer_cpus;
        cpus[i % cpus.len()]
    }

    /// Writer CPUs of node `node_idx`.
    ///
    /// # Panics
    ///
    /// If `node_idx >= node_count()`.
    pub fn writer_cpus(&self, node_idx: usize) -> &[CpuId] {
        &self.nodes[node_idx].writer_cpus
    }

    /// Merge CPUs of node `node_idx`, one merge thread each.
    ///
    /// # Panics
    ///
    /// If `node_idx >= node_count()`.
    pub fn merge_cpus(&self, node_idx: usize) -> &[CpuId] {
        &self.nodes[node_idx].merge_cpus
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "placement plan on {}", self.topology)?;
        if self.binding_applied {
            writeln!(f, "binding: applied")?;
        } else if self.binding_note.is_empty() {
            writeln!(f, "binding: not applied")?;
        } else {
            writeln!(f, "binding: not applied ({})", self.binding_note)?;
        }
        let n = self.node_count;
        let first_shards = self.nodes[0].shards;
        if self.nodes.iter().all(|p| p.shards == first_shards) {
            writeln!(
                f,
                "series s -> node s % {n}, shard (s / {n}) % {first_shards}"
            )?;
        } else {
            writeln!(
                f,
                "series s -> node s % {n}, shard (s / {n}) % (shards of that node)"
            )?;
        }

        let header = ["node", "os", "cpus", "writer cpus", "merge cpus", "shards"];
        let rows: Vec<[String; 6]> = self
            .nodes
            .iter()
            .map(|p| {
                [
                    p.node.to_string(),
                    p.os_index.to_string(),
                    CpuList(&p.cpus()).to_string(),
                    CpuList(&p.writer_cpus).to_string(),
                    CpuList(&p.merge_cpus).to_string(),
                    p.shards.to_string(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        let mut line = |cells: [&str; 6]| -> fmt::Result {
            let mut text = String::new();
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                text.push_str(&format!("{cell:<w$}"));
            }
            writeln!(f, "{}", text.trim_end())
        };
        line(header)?;
        for row in &rows {
            line(row.each_ref().map(String::as_str))?;
        }
        for p in self.nodes.iter().filter(|p| p.roles_share_cpus()) {
            writeln!(
                f,
                "node {} has one CPU: its writers and its merge thread share cpu {}",
                p.node,
                CpuList(&p.merge_cpus)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

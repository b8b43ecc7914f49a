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
        let usable: Vec<&NumaNode> = nodes.iter().filter(|n| n.has_cpus()).collect();
        if usable.is_empty() {
            return invalid(format!(
                "none of the {} NUMA nodes given has a CPU: a plan needs at least one",
                nodes.len()
            ));
        }
        let count = cfg.nodes.unwrap_or(usable.len());
        if count > usable.len() {
            return invalid(format!(
                "nodes = {count} is more than the topology's {} NUMA node{} with CPUs",
                usable.len(),
                if usable.len() == 1 { "" } else { "s" }
            ));
        }
        // The partition rule divides ids by nodes times shards, a `u32`.
        let node_count = u32::try_from(count)
            .ok()
            .filter(|&n| n.checked_mul(MAX_SHARDS_PER_NODE as u32).is_some())
            .ok_or_else(|| {
                Error::InvalidConfig(format!(
                    "nodes = {count} is invalid: must be at most {}",
                    u32::MAX / MAX_SHARDS_PER_NODE as u32
                ))
            })?;

        let mut plans = Vec::with_capacity(count);
        for node in &usable[..count] {
            let cpus = &node.cpus;
            let (writer_cpus, merge_cpus) = if cpus.len() == 1 {
                (cpus.clone(), cpus.clone())
            } else {
                let merges = cfg.merge_threads_per_node.unwrap_or(cpus.len().div_ceil(2));
                if merges >= cpus.len() {
                    return invalid(format!(
                        "merge_threads_per_node = {merges} is invalid for node {} with {} CPUs: \
                         must be <= {} so that writers keep at least one CPU",
                        node.id,
                        cpus.len(),
                        cpus.len() - 1
                    ));
                }
                let split = cpus.len() - merges;
                (cpus[..split].to_vec(), cpus[split..].to_vec())
            };
            let shards = cfg.shards_per_node.unwrap_or_else(|| {
                (DEFAULT_SHARDS_PER_MERGE_THREAD * merge_cpus.len()).clamp(1, MAX_SHARDS_PER_NODE)
            });
            plans.push(NodePlan {
                node: node.id,
                os_index: node.os_index,
                writer_cpus,
                merge_cpus,
                shards,
            });
        }

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
mod tests {
    use super::*;

    /// Nodes with the given CPU counts, CPUs numbered consecutively.
    fn nodes(cpu_counts: &[usize]) -> Vec<NumaNode> {
        let mut next = 0u32;
        cpu_counts
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let cpus = (next..next + c as u32).map(CpuId::new).collect();
                next += c as u32;
                NumaNode {
                    id: NodeId::new(i as u32),
                    os_index: i as u32,
                    cpus,
                }
            })
            .collect()
    }

    fn plan(cpu_counts: &[usize], cfg: &PlanConfig) -> Plan {
        Plan::compute(&nodes(cpu_counts), false, cfg).unwrap()
    }

    fn config_error(cpu_counts: &[usize], cfg: PlanConfig) -> String {
        match Plan::compute(&nodes(cpu_counts), false, &cfg) {
            Err(Error::InvalidConfig(msg)) => msg,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn roles_are_disjoint_and_cover_every_cpu_of_a_multi_cpu_node() {
        for c in 2..=17 {
            for m in 1..c {
                let cfg = PlanConfig {
                    merge_threads_per_node: Some(m),
                    ..PlanConfig::default()
                };
                let p = plan(&[c], &cfg);
                let node = &p.nodes()[0];
                assert!(!node.roles_share_cpus());
                assert_eq!(node.merge_threads(), m);
                assert_eq!(node.writer_cpus.len(), c - m);
                let mut all = node.cpus();
                all.sort();
                assert_eq!(all, nodes(&[c])[0].cpus, "C={c} m={m}");
            }
        }
    }

    #[test]
    fn merge_threads_default_to_half_the_cpus_rounded_up() {
        let p = plan(&[2, 3, 8, 1], &PlanConfig::default());
        let merges: Vec<usize> = p.nodes().iter().map(NodePlan::merge_threads).collect();
        assert_eq!(merges, [1, 2, 4, 1]);
        // Merges take the end of the node's CPU list.
        assert_eq!(p.merge_cpus(1), [CpuId::new(3), CpuId::new(4)]);
        assert_eq!(p.writer_cpus(1), [CpuId::new(2)]);
    }

    #[test]
    fn a_single_cpu_node_shares_its_cpu_and_says_so() {
        let cfg = PlanConfig {
            merge_threads_per_node: Some(3),
            ..PlanConfig::default()
        };
        let p = plan(&[1, 4], &cfg);
        let lone = &p.nodes()[0];
        assert!(lone.roles_share_cpus());
        assert_eq!(lone.writer_cpus, [CpuId::new(0)]);
        assert_eq!(lone.merge_cpus, [CpuId::new(0)]);
        assert_eq!(lone.shards, 4);
        assert_eq!(p.nodes()[1].merge_threads(), 3);
        assert!(p
            .to_string()
            .contains("node 0 has one CPU: its writers and its merge thread share cpu 0"));
    }

    #[test]
    fn shards_default_to_four_per_merge_thread_capped_at_256() {
        let p = plan(&[2, 8, 1000], &PlanConfig::default());
        let shards: Vec<usize> = p.nodes().iter().map(|n| n.shards).collect();
        assert_eq!(shards, [4, 16, 256]);
        let p = plan(
            &[2, 8],
            &PlanConfig {
                shards_per_node: Some(7),
                ..PlanConfig::default()
            },
        );
        assert!(p.nodes().iter().all(|n| n.shards == 7));
    }

    #[test]
    fn every_series_maps_to_exactly_one_node_and_shard_by_the_documented_rule() {
        let p = plan(&[4, 2, 8], &PlanConfig::default());
        let n = p.node_count() as u32;
        let mut hits = vec![Vec::new(); p.node_count()];
        for (i, node) in p.nodes().iter().enumerate() {
            hits[i] = vec![0usize; node.shards];
        }
        let samples = (0..100_000u32).chain([u32::MAX - 2, u32::MAX - 1, u32::MAX]);
        for s in samples {
            let (node, shard) = p.route(s);
            assert_eq!(node, p.node_of(s));
            assert_eq!(shard, p.shard_of(s));
            assert_eq!(node, (s % n) as usize);
            assert_eq!(shard, ((s / n) as usize) % p.nodes()[node].shards);
            if s < 100_000 {
                hits[node][shard] += 1;
            }
        }
        // Consecutive series fill every node and every shard.
        for node in &hits {
            assert!(node.iter().all(|&h| h > 0), "{hits:?}");
        }
    }

    #[test]
    fn writer_cpus_are_handed_out_round_robin() {
        let p = plan(&[5], &PlanConfig::default()); // writers 0,1; merges 2,3,4
        let got: Vec<u32> = (0..5).map(|i| p.writer_cpu(0, i).get()).collect();
        assert_eq!(got, [0, 1, 0, 1, 0]);
    }

    #[test]
    fn only_the_first_k_nodes_with_cpus_are_used() {
        let mut ns = nodes(&[2, 2, 2]);
        ns.insert(
            1,
            NumaNode {
                id: NodeId::new(9),
                os_index: 9,
                cpus: Vec::new(),
            },
        );
        let p = Plan::compute(
            &ns,
            true,
            &PlanConfig {
                nodes: Some(2),
                ..PlanConfig::default()
            },
        )
        .unwrap();
        let ids: Vec<NodeId> = p.nodes().iter().map(|n| n.node).collect();
        assert_eq!(ids, [NodeId::new(0), NodeId::new(1)]);
        assert!(p.binding_applied());
        assert_eq!(p.node_of(3), 1);
    }

    #[test]
    fn bad_configs_are_rejected_with_the_limit_in_the_message() {
        let none = PlanConfig::default();
        assert_eq!(
            config_error(
                &[2],
                PlanConfig {
                    nodes: Some(0),
                    ..none.clone()
                }
            ),
            "nodes = 0 is invalid: must be >= 1"
        );
        assert_eq!(
            config_error(
                &[2, 2],
                PlanConfig {
                    nodes: Some(3),
                    ..none.clone()
                }
            ),
            "nodes = 3 is more than the topology's 2 NUMA nodes with CPUs"
        );
        assert_eq!(
            config_error(
                &[2],
                PlanConfig {
                    merge_threads_per_node: Some(0),
                    ..none.clone()
                }
            ),
            "merge_threads_per_node = 0 is invalid: must be >= 1"
        );
        assert_eq!(
            config_error(
                &[1, 4],
                PlanConfig {
                    merge_threads_per_node: Some(4),
                    ..none.clone()
                }
            ),
            "merge_threads_per_node = 4 is invalid for node 1 with 4 CPUs: \
             must be <= 3 so that writers keep at least one CPU"
        );
        for shards in [0, 257] {
            assert_eq!(
                config_error(
                    &[2],
                    PlanConfig {
                        shards_per_node: Some(shards),
                        ..none.clone()
                    }
                ),
                format!("shards_per_node = {shards} is invalid: must be in 1..=256")
            );
        }
        assert_eq!(
            config_error(&[0, 0], none.clone()),
            "none of the 2 NUMA nodes given has a CPU: a plan needs at least one"
        );
        assert_eq!(
            Plan::compute(
                &nodes(&[2]),
                false,
                &PlanConfig {
                    nodes: Some(0),
                    ..none
                }
            )
            .unwrap_err()
            .to_string(),
            "invalid configuration: nodes = 0 is invalid: must be >= 1"
        );
    }

    #[test]
    fn display_is_a_table_with_the_series_rule_and_binding_state() {
        let p = plan(&[4, 4], &PlanConfig::default());
        let text = p.to_string();
        let expected = "\
placement plan on 2 NUMA nodes given, 8 CPUs
binding: not applied
series s -> node s % 2, shard (s / 2) % 8
node  os  cpus  writer cpus  merge cpus  shards
0     0   0-3   0-1          2-3         8
1     1   4-7   4-5          6-7         8
";
        assert_eq!(text, expected);
        let mixed = plan(&[2, 4], &PlanConfig::default()).to_string();
        assert!(
            mixed.contains("series s -> node s % 2, shard (s / 2) % (shards of that node)"),
            "{mixed}"
        );
        let bound = Plan::compute(&nodes(&[2]), true, &PlanConfig::default()).unwrap();
        assert!(bound.to_string().contains("binding: applied\n"));
    }
}

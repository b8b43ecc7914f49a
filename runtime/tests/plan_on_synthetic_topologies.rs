//! Plans computed on real hwloc synthetic topologies with 1, 2 and 4 NUMA
//! nodes: the shapes of multi-socket servers, tested on any machine.
//!
//! hwloc 2.9 synthetic strings that give several NUMA nodes: a `numa:N` level
//! (`numa:2 core:2 pu:1`, `pack:2 numa:1 core:2 pu:1`,
//! `pack:2 numa:2 core:4 pu:1` = 4 nodes), or a memory attach `[numa]` after a
//! level (`pack:2 [numa] core:2 pu:1`). A string without any NUMA level gets
//! one node for the whole machine. `numa` cannot be the last level.

use numatree::{Error, NodeId, Plan, PlanConfig, Topology, TopologySource};

fn load(desc: &str) -> Topology {
    Topology::load(&TopologySource::Synthetic(desc.into()))
        .unwrap_or_else(|e| panic!("{desc}: {e}"))
}

/// Loads `desc`, checks its shape, and returns its default plan.
fn check(desc: &str, nodes: usize, cpus_per_node: usize) -> Plan {
    let topo = load(desc);
    assert_eq!(topo.nodes().len(), nodes, "{desc}");
    assert_eq!(topo.cpu_count(), nodes * cpus_per_node, "{desc}");
    for (i, node) in topo.nodes().iter().enumerate() {
        assert_eq!(node.id, NodeId::new(i as u32));
        assert_eq!(node.cpus.len(), cpus_per_node, "{desc} node {i}");
    }
    assert!(!topo.is_this_system());
    assert!(!topo.binding().cpu && !topo.binding().memory);

    let plan = Plan::for_topology(&topo, &PlanConfig::default()).unwrap();
    assert_eq!(plan.node_count(), nodes);
    assert!(!plan.binding_applied());
    let text = plan.to_string();
    assert!(text.contains(&format!("synthetic {desc:?}")), "{text}");
    assert!(
        text.contains("binding: not applied (synthetic topology)"),
        "{text}"
    );
    for node in plan.nodes() {
        let row = format!("\n{:<4}  {:<2}  ", node.node, node.os_index);
        assert!(
            text.contains(&row),
            "no row for node {} in\n{text}",
            node.node
        );
    }
    plan
}

#[test]
fn one_numa_node_machine() {
    for desc in ["core:4 pu:1", "pack:1 numa:1 core:4 pu:1"] {
        let plan = check(desc, 1, 4);
        assert!(plan
            .to_string()
            .contains("series s -> node s % 1, shard (s / 1) % 8"));
        assert_eq!(plan.route(13), (0, 5));
    }
}

#[test]
fn two_numa_nodes() {
    for desc in [
        "pack:2 numa:1 core:2 pu:1",
        "numa:2 core:2 pu:1",
        "pack:2 [numa] core:2 pu:1",
    ] {
        let plan = check(desc, 2, 2);
        let text = plan.to_string();
        assert!(
            text.contains("series s -> node s % 2, shard (s / 2) % 4"),
            "{text}"
        );
        assert_eq!(plan.route(5), (1, 2));
        // Node 1 owns the second package's CPUs 2-3: writer 2, merge 3.
        assert_eq!(plan.writer_cpu(1, 0).get(), 2);
        assert_eq!(plan.merge_cpus(1)[0].get(), 3);
    }
}

#[test]
fn four_numa_nodes() {
    for (desc, cpus) in [
        ("pack:2 numa:2 core:4 pu:1", 4),
        ("numa:4 core:2 pu:2", 4),
        ("pack:4 [numa] core:8 pu:2", 16),
    ] {
        let plan = check(desc, 4, cpus);
        for node in plan.nodes() {
            assert_eq!(node.merge_threads(), cpus / 2);
            assert_eq!(node.shards, 4 * cpus / 2);
        }
    }
}

#[test]
fn plan_can_use_the_first_nodes_only() {
    let topo = load("pack:2 numa:2 core:4 pu:1");
    let cfg = PlanConfig {
        nodes: Some(2),
        merge_threads_per_node: Some(1),
        shards_per_node: Some(3),
        ..PlanConfig::default()
    };
    let plan = Plan::for_topology(&topo, &cfg).unwrap();
    assert_eq!(plan.node_count(), 2);
    assert!(plan
        .nodes()
        .iter()
        .all(|n| n.writer_cpus.len() == 3 && n.shards == 3));
    let err = Plan::for_topology(
        &topo,
        &PlanConfig {
            nodes: Some(5),
            ..PlanConfig::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: nodes = 5 is more than the topology's 4 NUMA nodes with CPUs"
    );
}

#[test]
fn memory_only_nodes_get_no_partition() {
    let topo = load("pack:2 [numa] [numa] core:2 pu:1");
    assert_eq!(topo.nodes().len(), 4);
    let plan = Plan::for_topology(&topo, &PlanConfig::default()).unwrap();
    let ids: Vec<u32> = plan.nodes().iter().map(|n| n.node.get()).collect();
    assert_eq!(ids, [0, 2]);
}

#[test]
fn invalid_synthetic_string_is_a_topology_error() {
    for desc in ["garbage:3", "pack:2 core:2 pu:1 numa:2", "pack:0 pu:1"] {
        match Topology::load(&TopologySource::Synthetic(desc.into())) {
            Err(Error::Topology {
                source_desc,
                reason,
            }) => {
                assert_eq!(source_desc, format!("synthetic {desc:?}"));
                assert!(reason.contains("invalid"), "{reason}");
            }
            other => panic!("{desc}: expected a topology error, got {other:?}"),
        }
    }
}

#[test]
fn invalid_xml_file_is_a_topology_error() {
    let path = std::env::temp_dir().join(format!("numatree-bad-{}.xml", std::process::id()));
    std::fs::write(&path, "<topology>not really</topology>").unwrap();
    let result = Topology::load(&TopologySource::XmlFile(path.clone()));
    std::fs::remove_file(&path).ok();
    match result {
        Err(Error::Topology { source_desc, .. }) => {
            assert_eq!(source_desc, format!("XML file {}", path.display()));
        }
        other => panic!("expected a topology error, got {other:?}"),
    }
}

#[test]
fn topology_is_send_and_sync_and_shares_through_arc() {
    let topo = std::sync::Arc::new(load("pack:2 numa:1 core:2 pu:1"));
    let t2 = std::sync::Arc::clone(&topo);
    let nodes = std::thread::spawn(move || t2.nodes().len()).join().unwrap();
    assert_eq!(nodes, 2);
}

//! The real machine's topology loads, and memory binding to its first node
//! either works (pages land on that node) or is reported as skipped.

use numatree::{NodeId, Plan, PlanConfig, Topology, TopologySource};

#[test]
fn this_system_loads_with_at_least_one_node_and_binds_memory_to_it() {
    let topo = Topology::load(&TopologySource::System).unwrap();
    assert!(topo.is_this_system());
    assert!(!topo.nodes().is_empty());
    assert!(topo.cpu_count() >= 1);
    assert!(topo.nodes().iter().any(|n| n.has_cpus()));
    let summary = topo.summary();
    assert!(summary.starts_with("this system: "), "{summary}");

    let plan = Plan::for_topology(&topo, &PlanConfig::default()).unwrap();
    assert_eq!(plan.binding_applied(), topo.binding().cpu);
    println!("{topo}\n{plan}");

    // Bind before the first touch, then touch: the pages must be on node 0.
    let node = topo.nodes()[0].id;
    let mut data: Vec<u64> = Vec::with_capacity(1 << 20);
    let area = data.spare_capacity_mut();
    let bound = topo.bind_memory(area, node).unwrap();
    assert_eq!(bound, topo.binding().memory);
    data.resize(1 << 20, 7);
    match topo.memory_location(&data) {
        Ok(nodes) if bound => assert_eq!(nodes, [node]),
        Ok(_) => {}
        Err(e) => assert!(!bound, "location query failed although binding worked: {e}"),
    }
    assert_eq!(topo.memory_location(&data[..0]), Ok(Vec::new()));
    assert_eq!(topo.bind_memory::<u8>(&[], NodeId::new(0)), Ok(bound));
}

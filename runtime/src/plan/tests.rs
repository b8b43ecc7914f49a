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

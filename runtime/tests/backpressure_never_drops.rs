//! 32 writers on 2 cores against a deliberately tiny slot pool, with merges
//! held back until writers are seen parked: every record lands exactly once,
//! writers waited, and nothing failed for lack of buffer space.

mod common;

use std::sync::Arc;

use common::Gate;
use numatree::{Index, TopologySource};

fn ingest_with_backpressure(topology: Option<&str>, writers_per_node: usize) {
    let gate = Arc::new(Gate::default());
    let hook_gate = Arc::clone(&gate);
    let mut builder = Index::builder()
        .slot_capacity(64)
        .slots_per_node(1)
        .merge_hook(move |_| hook_gate.wait());
    if let Some(t) = topology {
        builder = builder.topology(TopologySource::Synthetic(t.into()));
    }
    let index = builder.build().unwrap();
    let nodes = index.plan().node_count();
    let writers = writers_per_node * nodes;
    let streams = common::scrape(512, 40, writers, 5, 1, 7);
    let oracle = common::oracle(&streams);

    std::thread::scope(|s| {
        let (index, streams) = (&index, &streams);
        let ingest = s.spawn(move || {
            index
                .run_writers(writers_per_node, |ctx, w| {
                    for r in &streams[ctx.global] {
                        w.insert(r.key.series, r.key.ts, r.value)?;
                    }
                    Ok(())
                })
                .unwrap()
        });
        // Merges are held, so the pool runs dry and writers must park.
        while index.stats().total.backpressure_waits == 0 {
            std::thread::yield_now();
        }
        gate.open();
        ingest.join().unwrap();
    });
    let stats = index.close().unwrap();
    common::assert_matches_oracle(&index, &oracle);
    assert!(stats.total.backpressure_waits > 0);
    // Writers helped sort, yet each node kept one sort scratch (one per
    // slot that may be in flight: one here), not one per thread that sorted.
    assert!(stats.total.helped_merges > 0);
    let one_scratch = 64 * size_of::<numatree_core::Record>() + (1 << 16) * size_of::<u32>();
    for node in &stats.nodes {
        assert!(
            node.scratch_bytes > 0 && node.scratch_bytes <= one_scratch,
            "a node's sort scratches hold {} bytes, one holds {one_scratch}",
            node.scratch_bytes
        );
    }
    let sent: usize = streams.iter().map(Vec::len).sum();
    assert_eq!(
        stats.total.records_accepted as usize, sent,
        "every insert was accepted"
    );
}

#[test]
fn thirty_two_writers_on_one_node_lose_nothing_under_backpressure() {
    ingest_with_backpressure(None, 32);
}

#[test]
fn writers_on_a_synthetic_two_node_topology_lose_nothing() {
    ingest_with_backpressure(Some("pack:2 numa:1 core:2 pu:1"), 16);
}

#[test]
fn writers_on_a_synthetic_four_node_topology_lose_nothing() {
    ingest_with_backpressure(Some("pack:2 numa:2 core:4 pu:1"), 8);
}

#[test]
fn one_and_two_writers_lose_nothing_with_a_one_slot_pool() {
    for writers in [1, 2] {
        let index = Index::builder()
            .slot_capacity(64)
            .slots_per_node(1)
            .build()
            .unwrap();
        let streams = common::scrape(100, 50, writers, 5, 1, 11);
        index
            .run_writers(writers, |ctx, w| w.insert_batch(&streams[ctx.global]))
            .unwrap();
        index.flush().unwrap();
        common::assert_matches_oracle(&index, &common::oracle(&streams));
    }
}

#[test]
fn plans_on_multi_node_topologies_give_each_cpu_one_role_and_each_series_one_home() {
    for t in ["pack:2 numa:1 core:2 pu:1", "pack:2 numa:2 core:4 pu:1"] {
        let index = Index::builder()
            .topology(TopologySource::Synthetic(t.into()))
            .build()
            .unwrap();
        let plan = index.plan();
        let mut seen = std::collections::HashSet::new();
        for np in plan.nodes() {
            for cpu in np.writer_cpus.iter().chain(&np.merge_cpus) {
                assert!(seen.insert(*cpu), "{cpu} used twice in {t}");
            }
        }
        for series in 0..10_000u32 {
            let (node, shard) = plan.route(series);
            assert!(node < plan.node_count() && shard < plan.nodes()[node].shards);
        }
        assert!(!plan.binding_applied());
    }
}

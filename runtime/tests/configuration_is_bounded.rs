//! Every builder value has a range, and out-of-range values or
//! combinations that cannot work are `Error::InvalidConfig` naming the
//! value and its limit: never an overflow panic, a hang, or an allocation
//! that runs the machine out of memory. One test per bound.

use numatree::{
    Error, Index, TopologySource, MAX_SLOTS_PER_NODE, MAX_SLOT_CAPACITY, MAX_WRITERS_PER_NODE,
    MIN_SLOT_CAPACITY,
};

/// The `InvalidConfig` message `build` returns; fails on any other outcome.
fn invalid(builder: numatree::Builder) -> String {
    match builder.build() {
        Err(Error::InvalidConfig(msg)) => msg,
        Err(e) => panic!("expected InvalidConfig, got {e}"),
        Ok(_) => panic!("expected InvalidConfig, the index was built"),
    }
}

fn two_nodes() -> numatree::Builder {
    Index::builder().topology(TopologySource::Synthetic(
        "pack:2 numa:1 core:2 pu:1".into(),
    ))
}

#[test]
fn slot_capacity_must_be_within_its_range() {
    for bad in [0, MIN_SLOT_CAPACITY - 1, MAX_SLOT_CAPACITY + 1, usize::MAX] {
        let msg = invalid(Index::builder().slot_capacity(bad));
        assert!(
            msg.contains(&format!(
                "slot_capacity = {bad} is invalid: must be in {MIN_SLOT_CAPACITY}..={MAX_SLOT_CAPACITY}"
            )),
            "{msg}"
        );
    }
}

#[test]
fn merge_helpers_per_node_must_be_within_its_range() {
    for bad in [0, MAX_WRITERS_PER_NODE + 1, usize::MAX] {
        let msg = invalid(Index::builder().merge_helpers_per_node(bad));
        assert!(
            msg.contains(&format!(
                "merge_helpers_per_node = {bad} is invalid: must be in 1..={MAX_WRITERS_PER_NODE}"
            )),
            "{msg}"
        );
    }
}

#[test]
fn slots_per_node_must_be_within_its_range() {
    for bad in [0, MAX_SLOTS_PER_NODE + 1, usize::MAX] {
        let msg = invalid(Index::builder().slots_per_node(bad));
        assert!(
            msg.contains(&format!(
                "slots_per_node = {bad} is invalid: must be in 1..={MAX_SLOTS_PER_NODE}"
            )),
            "{msg}"
        );
    }
}

#[test]
fn slots_that_cannot_fit_in_memory_are_refused() {
    // 65,536 slots of 16M records: 24 TiB per node.
    let msg = invalid(
        Index::builder()
            .slots_per_node(MAX_SLOTS_PER_NODE)
            .slot_capacity(MAX_SLOT_CAPACITY),
    );
    assert!(msg.contains("more than this machine's"), "{msg}");
}

#[test]
fn memory_budget_must_hold_one_slot_per_node() {
    let msg = invalid(Index::builder().memory_budget(0));
    assert!(msg.contains("memory_budget = 0 is invalid"), "{msg}");
    let msg = invalid(two_nodes().slot_capacity(1024).memory_budget(1));
    assert!(
        msg.contains("memory_budget = 1 bytes is below one slot per node (2 node(s) x 24576 bytes"),
        "{msg}"
    );
    // Exactly one slot per node is enough to build.
    two_nodes()
        .slot_capacity(1024)
        .memory_budget(2 * 24_576)
        .build()
        .unwrap();
}

#[test]
fn reserve_records_beyond_the_machine_is_refused() {
    let msg = invalid(Index::builder().reserve_records(usize::MAX));
    assert!(
        msg.contains("reserve_records = 18446744073709551615"),
        "{msg}"
    );
    assert!(msg.contains("more than this machine's"), "{msg}");
}

#[test]
fn reserve_records_beyond_the_budget_is_refused() {
    let msg = invalid(
        Index::builder()
            .memory_budget(64 << 20)
            .reserve_records(10_000_000),
    );
    assert!(
        msg.contains("reserve_records = 10000000 needs about")
            && msg.contains("above memory_budget = 67108864 bytes"),
        "{msg}"
    );
}

#[test]
fn reserve_series_needs_a_count_and_reserve_records() {
    let msg = invalid(Index::builder().reserve_records(1_000).reserve_series(0));
    assert!(msg.contains("reserve_series = 0 is invalid"), "{msg}");
    let msg = invalid(Index::builder().reserve_series(5));
    assert!(
        msg.contains("reserve_series = 5 needs reserve_records"),
        "{msg}"
    );
}

/// Told its series, a freezing reserve holds a few tails a series: 10 M
/// records refused by a 160 MiB budget fit it for 1,024 series, and the
/// reserve counts less.
#[test]
fn reserve_series_shrinks_a_freezing_reserve_to_its_series_tails() {
    let budget = || {
        Index::builder()
            .memory_budget(160 << 20)
            .reserve_records(10_000_000)
    };
    let msg = invalid(budget());
    assert!(msg.contains("above memory_budget"), "{msg}");
    let tree_bytes = |builder: numatree::Builder| builder.build().unwrap().stats().total.tree_bytes;
    let told = tree_bytes(budget().reserve_series(1_024));
    let untold = tree_bytes(Index::builder().reserve_records(10_000_000));
    assert!(told < untold / 2, "told {told}, untold {untold}");
    // Without freezing every full block stays: the same reserve.
    let hot = |series: Option<usize>| {
        let b = Index::builder()
            .freeze_blocks(false)
            .reserve_records(1_000_000);
        tree_bytes(match series {
            Some(n) => b.reserve_series(n),
            None => b,
        })
    };
    assert_eq!(hot(Some(16)), hot(None));
}

#[test]
fn run_writers_counts_must_be_within_range() {
    let index = two_nodes().build().unwrap();
    for bad in [0, MAX_WRITERS_PER_NODE + 1, usize::MAX / 2 + 1, usize::MAX] {
        match index.run_writers(bad, |_, _| Ok(())) {
            Err(Error::InvalidConfig(msg)) => assert!(
                msg.contains(&format!(
                    "run_writers per_node = {bad} is invalid: must be in 1..={MAX_WRITERS_PER_NODE}"
                )),
                "{msg}"
            ),
            other => panic!("run_writers({bad}): {other:?}"),
        }
    }
    index.run_writers(2, |_, _| Ok(())).unwrap();
}

#[test]
fn plan_values_out_of_range_are_refused() {
    assert!(invalid(two_nodes().nodes(0)).contains("nodes = 0"));
    assert!(invalid(two_nodes().nodes(usize::MAX)).contains("is more than the topology's 2"));
    assert!(invalid(two_nodes().shards_per_node(0)).contains("shards_per_node = 0"));
    assert!(invalid(two_nodes().shards_per_node(usize::MAX)).contains("must be in 1..=256"));
    assert!(invalid(two_nodes().merge_threads_per_node(usize::MAX)).contains("must be <= 1"));
    assert!(invalid(two_nodes().only_nodes(&[usize::MAX])).contains("only_nodes"));
}

/// A reservation is memory in use: it counts in `tree_bytes` and the budget
/// from the start.
#[test]
fn reserved_memory_counts_in_tree_bytes() {
    let index = Index::builder().reserve_records(200_000).build().unwrap();
    let stats = index.stats().total;
    // 16 bytes a point (a timestamp and a value) at the very least.
    assert!(stats.tree_bytes >= 200_000 * 16, "{stats:?}");
    assert!(stats.slot_bytes > 0, "{stats:?}");
}

//! `Index::memory_placement` on the real machine: reserved slot buffers and
//! column blocks are resident, and all on their node, and so are the frozen
//! blocks an ingest makes. (The multi-node proof
//! runs in a VM: `cargo xtask numa-vm`.) On a synthetic topology the query
//! is an error, not a guess.

use numatree::{Index, TopologySource};

#[test]
fn reserved_memory_is_resident_on_its_node_or_the_query_is_refused() {
    let index = Index::builder()
        .topology(TopologySource::System)
        .reserve_records(200_000)
        .build()
        .unwrap();
    let placement = match index.memory_placement() {
        Ok(placement) => placement,
        // An OS without page-location queries: nothing to check.
        Err(e) => return eprintln!("skipped: {e}"),
    };
    assert_eq!(placement.len(), index.plan().node_count());
    for node in &placement {
        assert!(node.slots > 0 && node.blocks > 0, "{node:?}");
        assert_eq!(node.slot_pages, [node.node_id], "{node:?}");
        assert_eq!(node.block_pages, [node.node_id], "{node:?}");
        assert!(node.is_local());
    }

    // Frozen blocks: 8 series of 2,000 points, 7 full blocks each frozen.
    let mut writer = index.writer();
    for s in 0..8 {
        for ts in 0..2_000 {
            writer
                .insert(s, ts, (ts as u64) * 7 + u64::from(s))
                .unwrap();
        }
    }
    drop(writer);
    index.flush().unwrap();
    for node in index.memory_placement().unwrap() {
        assert!(
            node.frozen_blocks >= 8 * 7 / index.plan().node_count(),
            "{node:?}"
        );
        assert_eq!(node.frozen_block_pages, [node.node_id], "{node:?}");
        assert!(node.is_local());
    }

    let synthetic = Index::builder()
        .topology(TopologySource::Synthetic(
            "pack:2 numa:1 core:2 pu:1".into(),
        ))
        .reserve_records(1_000)
        .build()
        .unwrap();
    let err = synthetic.memory_placement().unwrap_err();
    assert!(err.to_string().contains("not this system"), "{err}");
}

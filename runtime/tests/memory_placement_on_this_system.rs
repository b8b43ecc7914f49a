//! `Index::memory_placement` on the real machine: reserved slot buffers and
//! tree chunks are resident, and all on their node. (The multi-node proof
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

//! Dropped writers, closed indexes and exhausted budgets never lose an
//! accepted record; bad configuration is a clear error, never a panic.

use numatree::{Error, Index, TopologySource};

#[test]
fn a_dropped_writer_seals_its_partial_slot() {
    let index = Index::builder().slot_capacity(1024).build().unwrap();
    let mut w = index.writer();
    for ts in 0..100 {
        w.insert(5, ts, ts as u64).unwrap();
    }
    assert_eq!(w.buffered(), 100);
    drop(w);
    index.flush().unwrap();
    assert_eq!(index.len(), 100);
    assert_eq!(index.scan(5, ..).len(), 100);
}

#[test]
fn insert_after_close_is_an_error_and_buffered_records_still_land() {
    let index = Index::builder().slot_capacity(64).build().unwrap();
    let mut w = index.writer();
    for ts in 0..10 {
        w.insert(1, ts, 1).unwrap();
    }
    index.close().unwrap();
    assert!(index.is_closed());
    index.close().unwrap(); // closing twice is fine
                            // The open slot still has room: accepted, and merged on flush.
    let mut accepted = 10;
    let err = loop {
        match w.insert(1, accepted, 1) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err, Error::Closed);
    assert!(
        index.writer().insert(2, 0, 0).is_err(),
        "a new writer cannot insert either"
    );
    w.flush().unwrap();
    assert_eq!(
        index.len(),
        accepted as usize,
        "every accepted record is present"
    );
}

#[test]
fn memory_budget_exhaustion_is_an_error_and_keeps_every_accepted_record() {
    let index = Index::builder()
        .slot_capacity(64)
        .slots_per_node(1)
        .memory_budget(256 * 1024)
        .build()
        .unwrap();
    let mut w = index.writer();
    let mut accepted = 0i64;
    let err = loop {
        match w.insert((accepted % 16) as u32, accepted, accepted as u64) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 10_000_000, "budget never enforced");
    };
    assert!(
        matches!(
            err,
            Error::MemoryBudget {
                budget: 262_144,
                ..
            }
        ),
        "{err}"
    );
    w.flush().unwrap();
    index.flush().unwrap();
    assert_eq!(index.len(), accepted as usize);
    for ts in (0..accepted).step_by(97) {
        assert_eq!(index.get((ts % 16) as u32, ts), Some(ts as u64));
    }
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let msg = |b: numatree::Builder| b.build().unwrap_err().to_string();
    assert!(msg(Index::builder().slot_capacity(0))
        .contains("slot_capacity = 0 is invalid: must be in 64..="));
    assert!(msg(Index::builder().slots_per_node(0)).contains("slots_per_node = 0"));
    assert!(msg(Index::builder().memory_budget(0)).contains("memory_budget = 0"));
    let two_nodes = || {
        Index::builder().topology(TopologySource::Synthetic(
            "pack:2 numa:1 core:2 pu:1".into(),
        ))
    };
    assert!(msg(two_nodes().nodes(3)).contains("3"));
    assert!(msg(two_nodes().shards_per_node(0)).contains("shards"));
    let bad = Index::builder()
        .topology(TopologySource::Synthetic("bogus:3".into()))
        .build()
        .unwrap_err();
    assert!(matches!(bad, Error::Topology { .. }), "{bad}");
    let index = Index::builder().build().unwrap();
    assert!(matches!(
        index.run_writers(0, |_, _| Ok(())),
        Err(Error::InvalidConfig(_))
    ));
}

#[test]
fn inverted_scans_are_empty_and_nan_payloads_round_trip() {
    let index = Index::builder().build().unwrap();
    let nan = f64::from_bits(0x7ff8_0000_dead_beef).to_bits();
    let mut w = index.writer();
    w.insert(3, i64::MIN, nan).unwrap();
    w.insert(3, i64::MAX, 2).unwrap();
    drop(w);
    index.flush().unwrap();
    assert_eq!(index.get(3, i64::MIN), Some(nan));
    let (t0, t1) = (10, 5);
    assert!(index.scan(3, t0..t1).is_empty());
    assert_eq!(index.scan(3, ..).len(), 2);
}

#[test]
fn only_nodes_restricts_the_plan_to_the_named_nodes() {
    let index = Index::builder()
        .topology(TopologySource::Synthetic(
            "pack:2 numa:2 core:4 pu:1".into(),
        ))
        .only_nodes(&[1, 3])
        .build()
        .unwrap();
    let plan = index.plan();
    let ids: Vec<u32> = plan.nodes().iter().map(|n| n.node.get()).collect();
    assert_eq!(ids, [1, 3]);
    let mut w = index.writer();
    for s in 0..10 {
        w.insert(s, 0, 0).unwrap();
    }
    drop(w);
    index.flush().unwrap();
    assert_eq!(index.len(), 10);
}

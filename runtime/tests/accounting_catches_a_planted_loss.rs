//! The loss check can fail: accepted = inserted + updated + superseded + in
//! flight holds after every flush of a healthy index, and a merge that drops
//! one record per slot (a planted fault) makes it fail with a message
//! naming the node and the counts.

use numatree::{Error, Index};

fn ingest(index: &Index, records: i64) {
    let mut w = index.writer();
    for i in 0..records {
        // Every 10th record overwrites the one before it in the same slot.
        let ts = if i % 10 == 9 { i - 1 } else { i };
        w.insert((ts % 7) as u32, ts, i as u64).unwrap();
    }
    assert_eq!(w.buffered(), (records % 64) as usize);
    w.flush().unwrap();
    assert_eq!(w.buffered(), 0);
    index.flush().unwrap();
}

#[test]
fn a_healthy_index_accounts_for_every_record_at_every_flush() {
    let index = Index::builder().slot_capacity(64).build().unwrap();
    for round in 1..=3 {
        ingest(&index, 10_000);
        let stats = index.stats();
        stats.verify_accounting().unwrap();
        let t = &stats.total;
        assert_eq!(t.records_accepted, 10_000 * round);
        assert_eq!(t.records_in_flight, 0);
        assert!(t.records_superseded > 0, "{t:?}");
        if round > 1 {
            assert!(t.records_updated > 0, "{t:?}");
        }
        assert_eq!(t.records_inserted as usize, index.len());
    }
}

#[test]
fn a_merge_that_drops_a_record_fails_the_accounting_check() {
    let index = Index::builder()
        .slot_capacity(64)
        .plant_merge_loss(true)
        .build()
        .unwrap();
    ingest(&index, 10_000);
    let err = index.stats().verify_accounting().unwrap_err();
    match &err {
        Error::Unaccounted {
            node: 0,
            accepted: 10_000,
            accounted,
            ..
        } => assert!(*accounted < 10_000, "{err}"),
        other => panic!("expected Unaccounted, got {other}"),
    }
    assert!(
        err.to_string()
            .starts_with("records unaccounted for on node 0: 10000 accepted but"),
        "{err}"
    );
}

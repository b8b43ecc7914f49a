//! Readers running while writers ingest always see ascending, duplicate-free
//! scans holding only inserted values, `len` never decreases, and after a
//! flush that returned before a scan began, that scan sees all its records.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use numatree::Index;

#[test]
fn scans_during_ingestion_are_ascending_unique_and_hold_inserted_values() {
    let index = Index::builder()
        .slot_capacity(256)
        .slots_per_node(2)
        .build()
        .unwrap();
    let streams = common::scrape(64, 400, 4, 5, 1, 3);
    let oracle = common::oracle(&streams);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        for reader in 0..2u32 {
            let (index, done) = (&index, &done);
            s.spawn(move || {
                let mut last_len = 0;
                let mut scans = 0u64;
                while !done.load(Ordering::Acquire) || scans < 10 {
                    let len = index.len();
                    assert!(len >= last_len, "len went from {last_len} to {len}");
                    last_len = len;
                    let series = (scans as u32 * 7 + reader) % 64;
                    let rows = index.scan(series, 100..2_000);
                    assert!(
                        rows.windows(2).all(|w| w[0].0 < w[1].0),
                        "scan not strictly ascending"
                    );
                    for &(ts, v) in &rows {
                        assert!((100..2_000).contains(&ts));
                        assert!(
                            common::value_matches(series, ts, v),
                            "value {v:#x} never inserted at {series}/{ts}"
                        );
                    }
                    scans += 1;
                }
            });
        }
        index
            .run_writers(4, |ctx, w| {
                for chunk in streams[ctx.global].chunks(97) {
                    w.insert_batch(chunk)?;
                }
                Ok(())
            })
            .unwrap();
        index.flush().unwrap();
        // Covered by the flush: every scan from now on sees all of it.
        for series in 0..64u32 {
            let want = oracle.range((series, 0)..(series, 1_000)).count();
            assert_eq!(index.scan(series, 0..1_000).len(), want);
        }
        done.store(true, Ordering::Release);
    });
    common::assert_matches_oracle(&index, &oracle);
}

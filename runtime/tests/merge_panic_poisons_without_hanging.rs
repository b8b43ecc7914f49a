//! A panic in a merge thread poisons the index: parked and later writers,
//! flush and close all return `Error::Poisoned` instead of hanging, and the
//! process does not abort.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use numatree::{Error, Index};

/// Fails the test if `f` does not finish within the deadline (a watchdog,
/// not a synchronisation: the happy path never waits for it).
fn within_deadline<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("call hung after a merge panic")
}

#[test]
fn merge_panic_turns_every_later_call_into_an_error() {
    within_deadline(|| {
        let merges = AtomicUsize::new(0);
        let index = Index::builder()
            .slot_capacity(64)
            .slots_per_node(1)
            .merge_hook(move |_| {
                if merges.fetch_add(1, Ordering::SeqCst) == 3 {
                    panic!("injected merge fault");
                }
            })
            .build()
            .unwrap();
        // 8 writers keep inserting until the poison reaches them; some are
        // parked on the empty pool when it does.
        let result = index.run_writers(8, |ctx, w| {
            for ts in 0.. {
                w.insert(ctx.global as u32, ts, 1)?;
            }
            Ok(())
        });
        match result {
            Err(Error::Poisoned(msg)) => assert!(msg.contains("injected merge fault"), "{msg}"),
            other => panic!("expected Poisoned, got {other:?}"),
        }
        assert!(matches!(index.flush(), Err(Error::Poisoned(_))));
        let mut w = index.writer();
        let mut refused = false;
        for ts in 0..1_000 {
            if let Err(e) = w.insert(99, ts, 0) {
                assert!(matches!(e, Error::Poisoned(_)));
                refused = true;
                break;
            }
        }
        assert!(
            refused,
            "a writer accepted 1000 records into a poisoned index"
        );
        drop(w);
        assert!(matches!(index.close(), Err(Error::Poisoned(_))));
        assert!(
            matches!(index.close(), Err(Error::Poisoned(_))),
            "close twice still reports it"
        );
        // Queries still answer from what was merged.
        let _ = index.get(0, 0);
    });
}

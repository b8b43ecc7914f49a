//! `close` joins every merge thread (counted in /proc), and dropping an
//! index does the same. One test: it counts the process's threads.

use std::sync::atomic::{AtomicUsize, Ordering};

use numatree::{Index, TopologySource};

/// Merge threads that ran a merge, and those whose thread-local destructors
/// ran: a thread's destructors run before a join of it can return, so after
/// `close` the two must be equal.
static ENTERED: AtomicUsize = AtomicUsize::new(0);
static EXITED: AtomicUsize = AtomicUsize::new(0);

struct ExitGuard;

impl Drop for ExitGuard {
    fn drop(&mut self) {
        EXITED.fetch_add(1, Ordering::SeqCst);
    }
}

thread_local! {
    static GUARD: ExitGuard = {
        ENTERED.fetch_add(1, Ordering::SeqCst);
        ExitGuard
    };
}

fn touch_guard(_: numatree::MergeEvent) {
    GUARD.with(|_| {});
}

fn merge_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok())
        .filter(|comm| comm.starts_with("numatree-merge"))
        .count()
}

/// The merge threads still listed after a join. `pthread_join` returns
/// once the thread has cleared its tid, a moment before the kernel drops the
/// task from /proc, so give the kernel a bounded moment to reap (the join
/// itself already happened; this only waits for the OS bookkeeping).
fn merge_threads_after_join() -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let n = merge_threads();
        if n == 0 || std::time::Instant::now() > deadline {
            return n;
        }
        std::thread::yield_now();
    }
}

#[test]
fn close_and_drop_leave_no_merge_thread_running() {
    assert_eq!(merge_threads(), 0);
    let index = Index::builder()
        .topology(TopologySource::Synthetic(
            "pack:2 numa:2 core:4 pu:1".into(),
        ))
        .slot_capacity(64)
        .merge_hook(touch_guard)
        .build()
        .unwrap();
    let expected: usize = index.plan().nodes().iter().map(|n| n.merge_threads()).sum();
    index
        .run_writers(2, |ctx, w| {
            for ts in 0..1_000 {
                w.insert(ctx.global as u32, ts, 1)?;
            }
            Ok(())
        })
        .unwrap();
    // rayon starts its threads asynchronously: wait until they all exist.
    while merge_threads() < expected {
        std::thread::yield_now();
    }
    assert_eq!(merge_threads(), expected);
    let stats = index.close().unwrap();
    assert_eq!(stats.total.keys, 8_000);
    let entered = ENTERED.load(Ordering::SeqCst);
    assert!(entered > 0);
    assert_eq!(
        EXITED.load(Ordering::SeqCst),
        entered,
        "close returned before its merge threads exited"
    );
    assert_eq!(
        merge_threads_after_join(),
        0,
        "close returned with merge threads alive"
    );
    drop(index);

    let index = Index::builder().build().unwrap();
    index.run_writers(1, |_, w| w.insert(1, 1, 1)).unwrap();
    drop(index);
    assert_eq!(
        merge_threads_after_join(),
        0,
        "drop returned with merge threads alive"
    );
}

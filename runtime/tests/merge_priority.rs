//! `Builder::merge_nice`: merge threads run at the nice value given; a
//! writer that helps merge takes it for the merge only when it is a higher
//! priority than its own, and keeps its own value after. Linux only (nice
//! is per thread there). One node (a synthetic topology, threads not
//! pinned), whatever the host has, and nice values relative to the one the
//! test inherits (merge threads inherit it too), so that the same moves
//! are allowed unprivileged under `nice -n 5 cargo test`.
#![cfg(target_os = "linux")]

mod common;

use std::sync::{Arc, Condvar, Mutex};

use numatree::{Builder, Error, Index, TopologySource};

/// The calling thread's nice value, from `/proc/thread-self/stat`.
fn own_nice() -> i32 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // Fields after the command name (which may hold spaces): state is
    // field 3 of stat(5), nice field 19.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split(' ').nth(19 - 3).unwrap().parse().unwrap()
}

fn set_own_nice(nice: i32) -> std::io::Result<()> {
    // SAFETY: a syscall on the calling thread's own id; no memory involved.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn on_merge_thread() -> bool {
    std::thread::current()
        .name()
        .is_some_and(|n| n.starts_with("numatree-merge"))
}

/// Whether this process may raise a thread's priority (root, or
/// `CAP_SYS_NICE`, or a generous `RLIMIT_NICE`).
fn may_raise_priority() -> bool {
    std::thread::spawn(|| {
        let own = own_nice();
        own < 19 && set_own_nice(own + 1).is_ok() && set_own_nice(own).is_ok()
    })
    .join()
    .unwrap()
}

/// A one-node index builder: with one writer per node, one writer.
fn one_node() -> Builder {
    Index::builder().topology(TopologySource::Synthetic(
        "pack:1 numa:1 core:2 pu:1".into(),
    ))
}

#[derive(Default)]
struct Seen {
    /// (merged on a merge thread, nice value then), one per slot merge.
    merges: Mutex<Vec<(bool, i32)>>,
    open: Mutex<bool>,
    cond: Condvar,
}

#[test]
fn merge_threads_run_at_the_merge_nice_value() {
    // Lowering a thread's priority is always allowed.
    let nice = (own_nice() + 7).min(19);
    let seen = Arc::new(Seen::default());
    let hook_seen = Arc::clone(&seen);
    // Room for every slot: the writer never helps, the merge thread merges all.
    let index = one_node()
        .slot_capacity(64)
        .slots_per_node(8)
        .merge_nice(nice)
        .merge_hook(move |_| {
            let m = &hook_seen.merges;
            m.lock().unwrap().push((on_merge_thread(), own_nice()));
        })
        .build()
        .unwrap();
    let streams = common::scrape(8, 64, 1, 1, 0, 3);
    index
        .run_writers(1, |ctx, w| w.insert_batch(&streams[ctx.global]))
        .unwrap();
    index.flush().unwrap();
    let merges = seen.merges.lock().unwrap().clone();
    assert!(!merges.is_empty(), "slots were merged");
    assert!(
        merges
            .iter()
            .all(|&(merge_thread, n)| merge_thread && n == nice),
        "every merge on a merge thread at nice {nice}: {merges:?}"
    );
    assert_eq!(
        index.stats().total.priority_refusals,
        0,
        "lowering is always allowed"
    );
    common::assert_matches_oracle(&index, &common::oracle(&streams));
}

#[test]
fn a_helping_writer_merges_at_the_merge_nice_and_keeps_its_own() {
    let privileged = may_raise_priority();
    // The merge threads go from the inherited value down to `merge` (always
    // allowed); the writer lowers itself to `writer`, below `merge`, so
    // that `merge` is a raise for it.
    let base = own_nice();
    let (merge, writer) = (base + 3, base + 6);
    if writer > 19 {
        eprintln!("skipped: inherited nice {base} leaves no room for a raise below 19");
        return;
    }
    let seen = Arc::new(Seen::default());
    let hook_seen = Arc::clone(&seen);
    // One merge thread, held in its first merge until a writer has helped.
    // The pool holds one slot in flight plus the writer's own: when the
    // writer runs dry, two slots are sealed, the merge thread holds at most
    // one of them in the hook, and the writer helps with the other.
    let index = one_node()
        .slot_capacity(64)
        .slots_per_node(1)
        .merge_threads_per_node(1)
        .merge_nice(merge)
        .merge_hook(move |_| {
            let s = &hook_seen;
            let merge_thread = on_merge_thread();
            s.merges.lock().unwrap().push((merge_thread, own_nice()));
            let mut open = s.open.lock().unwrap();
            if merge_thread {
                while !*open {
                    open = s.cond.wait(open).unwrap();
                }
            } else {
                *open = true;
                s.cond.notify_all();
            }
        })
        .build()
        .unwrap();
    let streams = common::scrape(16, 64, 1, 1, 0, 5);
    let writer_nice = Mutex::new(Vec::new());
    index
        .run_writers(1, |ctx, w| {
            set_own_nice(writer).map_err(|e| Error::InvalidConfig(e.to_string()))?;
            w.insert_batch(&streams[ctx.global])?;
            w.flush()?;
            writer_nice.lock().unwrap().push(own_nice());
            Ok(())
        })
        .unwrap();
    index.flush().unwrap();
    assert_eq!(
        writer_nice.into_inner().unwrap(),
        vec![writer],
        "the writer keeps its own nice value"
    );
    let helped: Vec<i32> = seen
        .merges
        .lock()
        .unwrap()
        .iter()
        .filter(|&&(merge_thread, _)| !merge_thread)
        .map(|&(_, nice)| nice)
        .collect();
    assert!(!helped.is_empty(), "the writer helped merge");
    let refusals = index.stats().total.priority_refusals;
    if privileged {
        assert_eq!(refusals, 0);
        assert!(
            helped.iter().all(|&n| n == merge),
            "helped at nice {merge}: {helped:?}"
        );
    } else {
        assert_eq!(
            refusals as usize,
            helped.len(),
            "each refused raise counted"
        );
        assert!(
            helped.iter().all(|&n| n == writer),
            "helped at its own: {helped:?}"
        );
    }
    common::assert_matches_oracle(&index, &common::oracle(&streams));
}

#[test]
fn nice_values_outside_linux_range_are_refused_by_name() {
    for bad in [-21, 20, i32::MIN] {
        let err = Index::builder().merge_nice(bad).build().unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("merge_nice = {bad} is invalid")) && msg.contains("-20"),
            "{msg}"
        );
    }
}

//! Merge priority: the nice value a node's merge threads, and writers
//! while they help merge, run at ([`Builder::merge_nice`](crate::Builder::merge_nice)).
//!
//! Why: a shard's parts apply one at a time in seal order (its lane, see
//! `pipeline/shard.rs`), so a thread that is applying a part holds up every
//! later slot until it finishes. When query threads outnumber the cores,
//! the scheduler preempts that thread for as long as it runs the others in
//! turn, and ingest stalls behind it: on the 2-core VM, 32 readers beside
//! 32 writers cut the writers to 4-5 Mops/s while merging took ~15% of the
//! CPU (BENCHMARKS.md, "Mixed phase: merges behind preempted lanes"). A
//! lower nice value for the threads that merge keeps them running, at the
//! readers' expense: a trade the user chooses, so it is off by default.
//!
//! Linux only (per-thread nice via `setpriority` on the thread id); a nice
//! value below the thread's current one needs `CAP_SYS_NICE` or
//! `RLIMIT_NICE`. When the system refuses (or has no per-thread nice),
//! merges run at the thread's own priority and each refused attempt is
//! counted ([`NodeStats::priority_refusals`](crate::NodeStats::priority_refusals)):
//! once per merge thread, once per merge a writer helps with.
//!
//! Also at the merge value: whatever else runs on a merge thread (a
//! snapshot's restore). Not raised: slots a late writer merges itself
//! after [`Index::close`](crate::Index::close) (no merge threads left).

/// Environment variable that sets [`Builder::merge_nice`](crate::Builder::merge_nice)
/// when the code does not (e.g. `NUMATREE_MERGE_NICE=-5`).
pub const MERGE_NICE_ENV: &str = "NUMATREE_MERGE_NICE";

/// Nice values Linux accepts: -20 (first) to 19 (last).
pub const NICE_RANGE: std::ops::RangeInclusive<i32> = -20..=19;

/// The calling thread's nice value.
#[cfg(target_os = "linux")]
pub(crate) fn current() -> std::io::Result<i32> {
    // SAFETY: `gettid` has no preconditions. `getpriority` reads the
    // scheduling priority of the calling thread (its own id) and touches no
    // memory of ours; -1 is a valid result, so errno is cleared first and
    // read after to tell an error from it.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        *libc::__errno_location() = 0;
        let nice = libc::getpriority(libc::PRIO_PROCESS, tid);
        if nice == -1 && *libc::__errno_location() != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(nice)
    }
}

/// Sets the calling thread's nice value.
#[cfg(target_os = "linux")]
pub(crate) fn set_current(nice: i32) -> std::io::Result<()> {
    // SAFETY: as in `current`: a syscall on the calling thread's own id
    // that reads and writes no memory of ours.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, nice) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn current() -> std::io::Result<i32> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn set_current(_nice: i32) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// The calling thread raised to a nice value for a while; dropping it puts
/// the thread's own value back (always allowed: it lowers the priority).
#[derive(Debug)]
pub(crate) struct Raised {
    previous: i32,
}

impl Raised {
    /// Raises the calling thread to `nice` when that is a higher priority
    /// than its own: `Ok(None)` when it runs at `nice` or higher already,
    /// an error when the system refuses.
    pub(crate) fn to(nice: i32) -> std::io::Result<Option<Raised>> {
        let previous = current()?;
        if previous <= nice {
            return Ok(None);
        }
        set_current(nice)?;
        Ok(Some(Raised { previous }))
    }
}

impl Drop for Raised {
    fn drop(&mut self) {
        // Lowering one's own priority is always permitted.
        let _ = set_current(self.previous);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// On a thread of its own: nice values stay with the thread.
    fn on_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| s.spawn(f).join().expect("test thread"))
    }

    #[test]
    fn a_thread_lowers_its_own_priority_and_reads_it_back() {
        on_thread(|| {
            let own = current().unwrap();
            let lower = (own + 3).min(*NICE_RANGE.end());
            set_current(lower).unwrap();
            assert_eq!(current().unwrap(), lower);
        });
    }

    #[test]
    fn raising_to_a_lower_priority_changes_nothing() {
        on_thread(|| {
            let own = current().unwrap();
            let raised = Raised::to((own + 2).min(*NICE_RANGE.end())).unwrap();
            assert!(raised.is_none());
            assert_eq!(current().unwrap(), own);
        });
    }

    #[test]
    fn a_raise_is_undone_on_drop_or_refused() {
        on_thread(|| {
            // Relative to the inherited value, so it runs under `nice` too.
            let (high, low) = (current().unwrap() + 2, current().unwrap() + 4);
            if low > *NICE_RANGE.end() {
                eprintln!("skipped: no room below nice 19 for a raise");
                return;
            }
            set_current(low).unwrap();
            match Raised::to(high) {
                Ok(Some(raised)) => {
                    assert_eq!(current().unwrap(), high, "raised while held");
                    drop(raised);
                }
                Ok(None) => panic!("{low} -> {high} is a raise"),
                // Without CAP_SYS_NICE / RLIMIT_NICE: refused, nothing changed.
                Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}"),
            }
            assert_eq!(current().unwrap(), low, "back to its own value");
        });
    }
}

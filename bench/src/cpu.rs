//! What an ingest cost the process in CPU time and page faults, from
//! `getrusage(RUSAGE_SELF)` before and after it.
//!
//! A cold ingest writes into memory it has never touched, and in this
//! project's VM the first touch of a page (a minor fault: the kernel finds,
//! zeroes and maps it) runs at 1-2.5 GB/s where copying touched memory runs
//! near 20 GB/s. So the insert tables say how many faults each ingest took
//! and which share of its CPU time the kernel spent: page faults first of
//! all, with the futex waits and wake-ups of blocked threads. Set beside
//! the warm table (reserved, pre-faulted memory), they show what the cold
//! figure pays for fresh memory.
//!
//! The counts are the whole process's: the bench runs one measurement at a
//! time, and what else runs meanwhile (the progress line) is negligible.

use std::time::Duration;

/// CPU time and page faults of the process since [`CpuWindow::open`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuUsage {
    /// CPU time in user mode, every thread.
    pub user: Duration,
    /// CPU time in the kernel, every thread.
    pub system: Duration,
    /// Page faults (minor and major).
    pub faults: u64,
}

impl CpuUsage {
    /// The kernel's share of the CPU time, 0..=1 (`None` when no CPU time
    /// was counted).
    pub fn kernel_share(&self) -> Option<f64> {
        let total = (self.user + self.system).as_secs_f64();
        (total > 0.0).then(|| self.system.as_secs_f64() / total)
    }
}

/// The process's counts when a measurement started.
#[derive(Clone, Copy, Debug)]
pub struct CpuWindow {
    start: CpuUsage,
}

impl CpuWindow {
    /// Starts counting; `None` where `getrusage` is not available.
    pub fn open() -> Option<CpuWindow> {
        now().map(|start| CpuWindow { start })
    }

    /// What the process used since `open`.
    pub fn usage(&self) -> Option<CpuUsage> {
        let end = now()?;
        Some(CpuUsage {
            user: end.user.saturating_sub(self.start.user),
            system: end.system.saturating_sub(self.start.system),
            faults: end.faults.saturating_sub(self.start.faults),
        })
    }
}

/// The process's counts so far.
#[cfg(unix)]
fn now() -> Option<CpuUsage> {
    let mut r = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` writes a whole `rusage` into the pointer it is
    // given, which points at one (zeroed, so valid whatever it leaves).
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, r.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: zeroed `rusage` is a valid value (plain integers), and the
    // call above succeeded.
    let r = unsafe { r.assume_init() };
    let time = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    let count = |n: libc::c_long| u64::try_from(n).unwrap_or(0);
    Some(CpuUsage {
        user: time(r.ru_utime),
        system: time(r.ru_stime),
        faults: count(r.ru_minflt) + count(r.ru_majflt),
    })
}

#[cfg(not(unix))]
fn now() -> Option<CpuUsage> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touching_fresh_pages_counts_faults_and_cpu_time() {
        let window = CpuWindow::open().expect("getrusage works on this platform");
        // 64 MiB of fresh pages, each touched once: at least one fault a
        // page unless the kernel maps huge pages (then one per 2 MiB).
        let mut pages = vec![0u8; 64 << 20];
        for i in (0..pages.len()).step_by(4096) {
            pages[i] = 1;
        }
        std::hint::black_box(&mut pages);
        let u = window.usage().expect("getrusage works on this platform");
        assert!(u.faults >= 32, "{u:?}");
        assert!(u.user + u.system > Duration::ZERO, "{u:?}");
        let share = u.kernel_share().expect("some CPU time was counted");
        assert!((0.0..=1.0).contains(&share), "{share}");
    }

    #[test]
    fn no_cpu_time_has_no_kernel_share() {
        assert_eq!(CpuUsage::default().kernel_share(), None);
        let u = CpuUsage {
            user: Duration::from_millis(3),
            system: Duration::from_millis(1),
            faults: 0,
        };
        assert_eq!(u.kernel_share(), Some(0.25));
    }
}

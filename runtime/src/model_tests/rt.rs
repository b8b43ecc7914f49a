//! The model checker behind the models' `check` and `spawn`: loom (every
//! interleaving, up to a preemption bound) under `--cfg loom`, shuttle
//! (random and PCT schedules) under `--cfg shuttle`.

/// Loom: every interleaving up to a preemption bound.
#[cfg(loom)]
mod imp {
    pub(crate) use loom::thread::spawn;

    /// Explores `f` exhaustively (up to `LOOM_MAX_PREEMPTIONS`, default 2
    /// here) and prints how many interleavings that took.
    pub(crate) fn check(name: &str, f: impl Fn() + Send + Sync + 'static) {
        let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&runs);
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(2);
        }
        let bound = builder.preemption_bound;
        builder.check(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            f();
        });
        eprintln!(
            "model {name}: loom explored {} interleavings (preemption bound {bound:?})",
            runs.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
}

/// Shuttle: random and PCT schedules.
#[cfg(all(shuttle, not(loom)))]
mod imp {
    pub(crate) use shuttle::thread::spawn;

    /// Schedules per strategy: `SHUTTLE_ITERATIONS`, default 1,000.
    fn iterations() -> usize {
        std::env::var("SHUTTLE_ITERATIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000)
    }

    /// Runs `f` under `iterations()` random schedules, then as many PCT
    /// schedules (depth 3), and prints the count.
    pub(crate) fn check(name: &str, f: impl Fn() + Send + Sync + 'static) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let n = iterations();
        let runs = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&runs);
        let f = std::sync::Arc::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            f();
        });
        let g = std::sync::Arc::clone(&f);
        shuttle::check_random(move || g(), n);
        shuttle::check_pct(move || f(), n, 3);
        eprintln!(
            "model {name}: shuttle ran {} schedules ({n} random + {n} PCT, depth 3)",
            runs.load(Ordering::Relaxed)
        );
    }
}

pub(super) use imp::{check, spawn};

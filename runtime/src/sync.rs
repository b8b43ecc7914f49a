//! The synchronization primitives the runtime's shared state is built on.
//!
//! Every lock, condition variable and atomic that the slot pool, the flush
//! tracker and the poison flag use comes from here, so model checkers can
//! replace them without touching the protocol code (tokio's `src/loom`
//! pattern):
//!
//! - default: `std` types, crossbeam's `Backoff` and `ShardedLock`;
//! - `--cfg loom`: `loom` types, explored exhaustively by `loom::model`;
//! - `--cfg shuttle`: `shuttle` types, explored by random/PCT schedules.
//!
//! Under a model checker every blocking primitive must be the checker's
//! own, or a parked model thread would block the real OS thread the checker
//! runs all model threads on. `Arc` stays `std`'s everywhere: loom's `Arc`
//! has no `Weak`, which `Health` needs, and reference counting is not part
//! of the protocol under test. The spin phase of a slot wait
//! ([`Backoff`]) becomes a single `yield_now` under a model, so the park
//! path is always reached and the schedule space stays small.

pub(crate) use std::sync::Arc;

#[cfg(not(any(loom, shuttle)))]
mod imp {
    pub(crate) use crossbeam_utils::sync::ShardedLock;
    pub(crate) use crossbeam_utils::Backoff;
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    pub(crate) use std::sync::{Condvar, Mutex, MutexGuard, RwLock};
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    /// The model checker's lock stands in for crossbeam's (same API).
    pub(crate) use loom::sync::RwLock as ShardedLock;
    pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard, RwLock};
    pub(crate) use loom::thread::yield_now;
}

#[cfg(all(shuttle, not(loom)))]
mod imp {
    pub(crate) use shuttle::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    /// The model checker's lock stands in for crossbeam's (same API).
    pub(crate) use shuttle::sync::RwLock as ShardedLock;
    pub(crate) use shuttle::sync::{Condvar, Mutex, MutexGuard, RwLock};
    pub(crate) use shuttle::thread::yield_now;
}

#[cfg(any(loom, shuttle))]
mod model_backoff {
    use std::cell::Cell;

    /// crossbeam's `Backoff` under a model checker: one yield, then done,
    /// so a waiter reaches the condition-variable park after one retry.
    #[derive(Debug, Default)]
    pub(crate) struct Backoff {
        snoozed: Cell<bool>,
    }

    impl Backoff {
        pub(crate) fn new() -> Self {
            Self::default()
        }

        pub(crate) fn snooze(&self) {
            self.snoozed.set(true);
            super::imp::yield_now();
        }

        pub(crate) fn is_completed(&self) -> bool {
            self.snoozed.get()
        }
    }
}

#[cfg(any(loom, shuttle))]
pub(crate) use model_backoff::Backoff;

#[cfg(not(any(loom, shuttle)))]
pub(crate) use imp::Backoff;
#[allow(unused_imports)] // not every build uses every primitive
pub(crate) use imp::{
    AtomicBool, AtomicU64, AtomicUsize, Condvar, Mutex, MutexGuard, Ordering, RwLock, ShardedLock,
};

/// A value readers load without locking while one writer replaces it:
/// `arc_swap::ArcSwapOption` normally (readers never wait, the writer never
/// waits for readers), a mutex around the `Arc` under a model checker (the
/// protocol around it, data written before it is published, is what the
/// models check; `arc_swap` itself is not instrumented for them).
#[cfg(not(any(loom, shuttle)))]
#[derive(Debug, Default)]
pub(crate) struct Published<T>(arc_swap::ArcSwapOption<T>);

#[cfg(not(any(loom, shuttle)))]
impl<T> Published<T> {
    pub(crate) fn new(value: Option<Arc<T>>) -> Self {
        Published(arc_swap::ArcSwapOption::new(value))
    }

    /// The current value (a cheap guard: hold it briefly).
    #[inline]
    pub(crate) fn load(&self) -> arc_swap::Guard<Option<Arc<T>>> {
        self.0.load()
    }

    /// The current value, as an `Arc` to keep.
    pub(crate) fn load_full(&self) -> Option<Arc<T>> {
        self.0.load_full()
    }

    /// Publishes `value`: loads that start afterwards see it.
    pub(crate) fn store(&self, value: Option<Arc<T>>) {
        self.0.store(value);
    }
}

/// A value readers load while one writer replaces it: under a model
/// checker, a mutex around the `Arc`.
#[cfg(any(loom, shuttle))]
#[derive(Debug, Default)]
pub(crate) struct Published<T>(Mutex<Option<Arc<T>>>);

#[cfg(any(loom, shuttle))]
impl<T> Published<T> {
    pub(crate) fn new(value: Option<Arc<T>>) -> Self {
        Published(Mutex::new(value))
    }

    pub(crate) fn load(&self) -> Option<Arc<T>> {
        lock(&self.0).clone()
    }

    pub(crate) fn load_full(&self) -> Option<Arc<T>> {
        lock(&self.0).clone()
    }

    pub(crate) fn store(&self, value: Option<Arc<T>>) {
        *lock(&self.0) = value;
    }
}

/// Locks `m`, ignoring lock poisoning: our own poison flag (set by the
/// merge pool's panic handler) is what reports a failed merge, and the data
/// behind these mutexes stays consistent across a panic elsewhere.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

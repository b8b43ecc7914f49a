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

/// Values readers load without locking while one writer replaces them,
/// reclaimed once no reader can still hold them: epoch-based reclamation
/// (`crossbeam_epoch`) normally; under a model checker a mutex around an
/// `Arc` (the protocol around it, data written before it is published, is
/// what the models check; `crossbeam_epoch` is not instrumented for them).
#[cfg(not(any(loom, shuttle)))]
pub(crate) mod publish {
    use crossbeam_epoch::{Atomic, Owned, Shared};
    use std::sync::atomic::Ordering;

    pub(crate) use crossbeam_epoch::{pin, Guard};

    /// Hands what `guard`'s thread retired to the global collector and
    /// collects what no reader can reach any more: enough rounds for about
    /// `retired` objects (each round collects up to 8 bags of 64).
    pub(crate) fn flush(guard: Guard, retired: usize) {
        for _ in 0..=retired / 256 {
            guard.flush();
        }
    }

    /// One published value of type `T`, or none.
    #[derive(Debug)]
    pub(crate) struct Published<T> {
        ptr: Atomic<T>,
    }

    impl<T> Default for Published<T> {
        fn default() -> Self {
            Published {
                ptr: Atomic::null(),
            }
        }
    }

    impl<T> Published<T> {
        pub(crate) fn new(value: T) -> Self {
            Published {
                ptr: Atomic::new(value),
            }
        }

        /// The current value (`Acquire`: everything written before it was
        /// stored is visible), valid while `guard` is held.
        #[inline]
        pub(crate) fn load<'g>(&self, guard: &'g Guard) -> Option<&'g T> {
            let current = self.ptr.load(Ordering::Acquire, guard);
            // SAFETY: `current` was loaded under `guard`. A value is
            // destroyed only by `defer_destroy` after `store` replaced it
            // (the epoch then waits for every guard pinned before the
            // replacement, `guard` included) or by `Drop`, which holds
            // `&mut self`, so no load is in progress. Null maps to `None`.
            unsafe { current.as_ref() }
        }

        /// Publishes `value` (`Release`) and retires the value it replaces,
        /// destroyed once every reader that could hold it has unpinned.
        pub(crate) fn store(&self, value: T, guard: &Guard)
        where
            T: Send + 'static,
        {
            let old = self.ptr.swap(Owned::new(value), Ordering::AcqRel, guard);
            if !old.is_null() {
                // SAFETY: `old` is no longer reachable through `self` (the
                // swap replaced it, and only this writer stores), so only
                // readers pinned before the swap can hold it; the deferred
                // destruction runs after all of them have unpinned.
                unsafe { guard.defer_destroy(old) };
            }
        }
    }

    impl<T> Drop for Published<T> {
        fn drop(&mut self) {
            // SAFETY: `&mut self`: nobody else can load from or store to
            // this value any more, so no guard is needed to take it.
            let guard = unsafe { crossbeam_epoch::unprotected() };
            let current = self.ptr.swap(Shared::null(), Ordering::Relaxed, guard);
            if !current.is_null() {
                // SAFETY: `current` came from `Owned::new` in `new` or
                // `store`, is unlinked now, and no reader can hold it (see
                // above): it is dropped exactly once, here.
                drop(unsafe { current.into_owned() });
            }
        }
    }
}

/// Under a model checker: a mutex around an `Arc`, and a guard that does
/// nothing.
#[cfg(any(loom, shuttle))]
pub(crate) mod publish {
    use super::{lock, Arc, Mutex};

    /// Stands in for an epoch guard.
    #[derive(Debug)]
    pub(crate) struct Guard;

    pub(crate) fn pin() -> Guard {
        Guard
    }

    pub(crate) fn flush(_guard: Guard, _retired: usize) {}

    #[derive(Debug)]
    pub(crate) struct Published<T>(Mutex<Option<Arc<T>>>);

    impl<T> Default for Published<T> {
        fn default() -> Self {
            Published(Mutex::new(None))
        }
    }

    impl<T> Published<T> {
        pub(crate) fn new(value: T) -> Self {
            Published(Mutex::new(Some(Arc::new(value))))
        }

        pub(crate) fn load(&self, _guard: &Guard) -> Option<Arc<T>> {
            lock(&self.0).clone()
        }

        pub(crate) fn store(&self, value: T, _guard: &Guard) {
            *lock(&self.0) = Some(Arc::new(value));
        }
    }
}

pub(crate) use publish::{flush, pin, Guard, Published};

/// A value set once by one writer and read without a lock: `std`'s
/// `OnceLock` normally; under a model checker a mutex around an `Arc`, so
/// the checker sees the value published (`get` then returns an `Arc`).
#[cfg(not(any(loom, shuttle)))]
pub(crate) type SetOnce<T> = std::sync::OnceLock<T>;

/// See the `std` build's `SetOnce`.
#[cfg(any(loom, shuttle))]
#[derive(Debug)]
pub(crate) struct SetOnce<T>(Mutex<Option<Arc<T>>>);

#[cfg(any(loom, shuttle))]
impl<T> SetOnce<T> {
    pub(crate) fn new() -> Self {
        SetOnce(Mutex::new(None))
    }

    pub(crate) fn get(&self) -> Option<Arc<T>> {
        lock(&self.0).clone()
    }

    pub(crate) fn get_or_init(&self, f: impl FnOnce() -> T) -> Arc<T> {
        Arc::clone(lock(&self.0).get_or_insert_with(|| Arc::new(f())))
    }
}

/// Memory written and read without a lock under a protocol of the
/// caller's, with loom's API (`with`, `with_mut`: a raw pointer inside a
/// closure): `std`'s cell normally and under shuttle; under loom, loom's,
/// which checks that every access is ordered after the last write (a read
/// racing a write fails the model).
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// Locks `m`, ignoring lock poisoning: our own poison flag (set by the
/// merge pool's panic handler) is what reports a failed merge, and the data
/// behind these mutexes stays consistent across a panic elsewhere.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

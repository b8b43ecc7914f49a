//! Whether the index can still accept work: the poison and closed flags.
//!
//! A merge-thread panic poisons the index; `close` closes it. Both are
//! checked only off the per-record path (when a writer needs a slot, on
//! flush), and a poison wakes every waiter so nothing hangs on a dead
//! pipeline. Who waits is not this module's business: the pipelines
//! register themselves as [`Waiters`], so health depends on nothing above it.

use std::any::Any;
use std::sync::{OnceLock, Weak};

use crate::sync::{lock, AtomicBool, AtomicUsize, Condvar, Mutex, Ordering};
use crate::Error;

/// Something with threads parked on it that must re-check the index's
/// health when it changes.
pub(crate) trait Waiters: Send + Sync {
    /// Wakes every parked thread.
    fn wake_all(&self);
}

#[derive(Default)]
pub(crate) struct Health {
    poisoned: AtomicBool,
    closed: AtomicBool,
    message: Mutex<Option<String>>,
    /// Whose waiters a poison must wake (weak: they own `Health`).
    waiters: OnceLock<Vec<Weak<dyn Waiters>>>,
    /// Times memory was freed (or a merge finished while writers waited
    /// for memory); writers waiting for memory park on `memory_cv` until
    /// it moves (or the index is poisoned or closed).
    memory_freed: Mutex<u64>,
    memory_cv: Condvar,
    /// Writers over the memory budget now (waking them costs a lock, so
    /// merges do it only when there are any).
    memory_waiters: AtomicUsize,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("poisoned", &self.poisoned)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Health {
    /// `Ok` while the index accepts writes; else why not.
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(self.poison_error());
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// `Err(Poisoned)` if a merge failed; closing does not count.
    pub(crate) fn check_poison(&self) -> Result<(), Error> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(self.poison_error());
        }
        Ok(())
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn poison_error(&self) -> Error {
        let message = lock(&self.message).clone();
        Error::Poisoned(message.unwrap_or_else(|| "unknown panic".into()))
    }

    /// Tells `poison` whom to wake. Called once, after they exist.
    pub(crate) fn watch(&self, waiters: Vec<Weak<dyn Waiters>>) {
        let _ = self.waiters.set(waiters);
    }

    /// Records the first panic message, raises the flag and wakes every
    /// parked writer and flush so each sees the error.
    pub(crate) fn poison(&self, message: String) {
        lock(&self.message).get_or_insert(message);
        self.poisoned.store(true, Ordering::Release);
        for waiters in self
            .waiters
            .get()
            .into_iter()
            .flatten()
            .filter_map(Weak::upgrade)
        {
            waiters.wake_all();
        }
        self.memory_freed();
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.memory_freed();
    }

    /// Retention freed memory (or the health changed): wakes the writers
    /// waiting for memory.
    pub(crate) fn memory_freed(&self) {
        *lock(&self.memory_freed) += 1;
        self.memory_cv.notify_all();
    }

    /// A merge finished: wakes the writers waiting for memory, if any, to
    /// let retention catch up with the points it merged.
    pub(crate) fn merged(&self) {
        // Under the lock the waiters read `memory_seen` with: a waiter
        // counted after this finds the merge's work done, one counted
        // before it is woken.
        let mut freed = lock(&self.memory_freed);
        if self.memory_waiters.load(Ordering::Relaxed) > 0 {
            *freed += 1;
            self.memory_cv.notify_all();
        }
    }

    /// Counts the caller as over the memory budget until the guard goes
    /// (see [`merged`](Self::merged)).
    pub(crate) fn over_budget(&self) -> OverBudget<'_> {
        self.memory_waiters.fetch_add(1, Ordering::Relaxed);
        OverBudget(self)
    }

    /// How many times memory was freed so far, for
    /// [`wait_for_memory_since`](Self::wait_for_memory_since): read it
    /// before checking the memory, so no wake-up between is lost.
    pub(crate) fn memory_seen(&self) -> u64 {
        *lock(&self.memory_freed)
    }

    /// Parks until [`memory_freed`](Self::memory_freed) was called since
    /// `seen` was read.
    ///
    /// # Errors
    /// [`Error::Poisoned`] or [`Error::Closed`], which also wake it.
    pub(crate) fn wait_for_memory_since(&self, seen: u64) -> Result<(), Error> {
        let mut freed = lock(&self.memory_freed);
        loop {
            self.check()?;
            if *freed != seen {
                return Ok(());
            }
            freed = self
                .memory_cv
                .wait(freed)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// A writer over the memory budget (`Health::over_budget`).
pub(crate) struct OverBudget<'h>(&'h Health);

impl Drop for OverBudget<'_> {
    fn drop(&mut self) {
        self.0.memory_waiters.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The message of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}

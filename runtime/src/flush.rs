//! The visibility barrier: which sealed slots are still being merged.
//!
//! Merges finish out of order, so a count of finished merges says nothing
//! about one particular slot. Instead every sealed slot is stamped with the
//! current epoch; `barrier` closes the epoch and waits until no slot of it
//! or any earlier epoch is pending. Slots sealed after the call belong to a
//! later epoch and cannot starve the caller.

use std::collections::BTreeMap;

use crate::health::Health;
use crate::sync::{lock, Condvar, Mutex};
use crate::Error;

#[derive(Debug, Default)]
struct Epochs {
    current: u64,
    /// Pending (sealed, not yet merged) slots per epoch; no zero entries.
    pending: BTreeMap<u64, usize>,
}

#[derive(Debug, Default)]
pub(crate) struct FlushTracker {
    epochs: Mutex<Epochs>,
    merged: Condvar,
    /// Negative control for the model tests: `merged` skips its wake-up.
    #[cfg(test)]
    pub(crate) mutant_merged_skips_notify: std::sync::atomic::AtomicBool,
}

impl FlushTracker {
    /// A slot was sealed; returns its epoch, to hand to `merged`.
    pub(crate) fn sealed(&self) -> u64 {
        let mut e = lock(&self.epochs);
        let epoch = e.current;
        *e.pending.entry(epoch).or_insert(0) += 1;
        epoch
    }

    /// The slot stamped `epoch` is merged.
    pub(crate) fn merged(&self, epoch: u64) {
        let mut e = lock(&self.epochs);
        if let Some(n) = e.pending.get_mut(&epoch) {
            *n -= 1;
            if *n == 0 {
                e.pending.remove(&epoch);
            }
        }
        drop(e);
        #[cfg(test)]
        if self
            .mutant_merged_skips_notify
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        self.merged.notify_all();
    }

    /// Returns once every slot sealed before the call is merged, or with an
    /// error as soon as the index is poisoned.
    pub(crate) fn barrier(&self, health: &Health) -> Result<(), Error> {
        let mut e = lock(&self.epochs);
        let target = e.current;
        e.current += 1;
        loop {
            health.check_poison()?;
            if e.pending.range(..=target).next().is_none() {
                return Ok(());
            }
            e = self.merged.wait(e).unwrap_or_else(|p| p.into_inner());
        }
    }

    pub(crate) fn wake_all(&self) {
        let _e = lock(&self.epochs);
        self.merged.notify_all();
    }
}

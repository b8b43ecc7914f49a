//! Whether the index can still accept work: the poison and closed flags.
//!
//! A merge-thread panic poisons the index; `close` closes it. Both are
//! checked only off the per-record path (when a writer needs a slot, on
//! flush), and both wake every waiter so nothing hangs on a dead pipeline.

use std::any::Any;
use std::sync::{OnceLock, Weak};

use crate::pipeline::NodeShared;
use crate::sync::{lock, AtomicBool, Mutex, Ordering};
use crate::Error;

#[derive(Debug, Default)]
pub(crate) struct Health {
    poisoned: AtomicBool,
    closed: AtomicBool,
    message: Mutex<Option<String>>,
    /// The nodes whose waiters a poison must wake (weak: nodes own `Health`).
    nodes: OnceLock<Vec<Weak<NodeShared>>>,
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

    /// Tells `poison` which nodes to wake. Called once, after the nodes exist.
    pub(crate) fn watch(&self, nodes: Vec<Weak<NodeShared>>) {
        let _ = self.nodes.set(nodes);
    }

    /// Records the first panic message, raises the flag and wakes every
    /// parked writer and flush so each sees the error.
    pub(crate) fn poison(&self, message: String) {
        lock(&self.message).get_or_insert(message);
        self.poisoned.store(true, Ordering::Release);
        for node in self
            .nodes
            .get()
            .into_iter()
            .flatten()
            .filter_map(Weak::upgrade)
        {
            node.wake_all();
        }
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
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

//! Fault injection through the merge hook: the gate merges wait on in a
//! delay phase, and the panic armed for the k-th merge. Each index gets one
//! `Injector`, built into its merge hook; the phase driver arms it and reads
//! back what happened (merges stalled, whether the panic fired). Apart
//! from the plan because this runs inside the index's merge threads.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// Marker in the payload of injected panics, which the panic hook silences.
pub(crate) const INJECTED: &str = "numatree-stress injected merge panic";

/// What merges wait on in a delay phase; also counts stalled merges.
#[derive(Default)]
pub(crate) struct Gate {
    pub(crate) open: Mutex<bool>,
    pub(crate) cond: Condvar,
    pub(crate) stalled: AtomicUsize,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        if !*open {
            self.stalled.fetch_add(1, Ordering::SeqCst);
        }
        while !*open {
            open = self.cond.wait(open).unwrap();
        }
    }
    pub(crate) fn set(&self, open: bool) {
        *self.open.lock().unwrap() = open;
        self.cond.notify_all();
    }
}

/// The fault a merge hook injects; shared by the hook of one index.
#[derive(Default)]
pub(crate) struct Injector {
    pub(crate) gate: Gate,
    /// Merge number to panic on (`usize::MAX`: none).
    pub(crate) panic_at: AtomicUsize,
    pub(crate) merges: AtomicUsize,
    pub(crate) fired: AtomicBool,
}

impl Injector {
    pub(crate) fn new() -> Arc<Injector> {
        let i = Injector::default();
        i.panic_at.store(usize::MAX, Ordering::SeqCst);
        i.gate.set(true);
        Arc::new(i)
    }
    pub(crate) fn on_merge(&self) {
        let n = self.merges.fetch_add(1, Ordering::SeqCst);
        if n == self.panic_at.load(Ordering::SeqCst) {
            self.fired.store(true, Ordering::SeqCst);
            panic!("{INJECTED} (merge #{n})");
        }
        self.gate.wait();
    }
}

//! The synchronization primitives the runtime's shared state is built on.
//!
//! Every lock, condition variable and atomic that the slot pool, the flush
//! tracker and the poison flag use comes from here, so model checkers can
//! replace them (`cfg(loom)`, the tokio pattern) without touching the
//! protocol code.

pub(crate) use crossbeam_utils::sync::ShardedLock;
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};

/// Locks `m`, ignoring std's lock poisoning: our own poison flag (set by the
/// merge pool's panic handler) is what reports a failed merge, and the data
/// behind these mutexes stays consistent across a panic elsewhere.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

//! The runtime's single error type.
//!
//! Variants are named for what the caller can do about them: pick another
//! topology ([`Error::Topology`]), fix the configuration
//! ([`Error::InvalidConfig`]), or run without (or investigate) binding
//! ([`Error::Binding`]). Every message says what was wrong and, where there is
//! one, the limit that was hit.

/// Everything that can go wrong in the numatree runtime.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The topology could not be loaded: an invalid hwloc synthetic string, an
    /// unreadable or invalid XML file, or a topology the runtime cannot use.
    #[error("cannot load topology from {source_desc}: {reason}")]
    Topology {
        /// Where the topology was to come from, e.g. `synthetic "pack:2 pu:1"`.
        source_desc: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A configuration value is out of range; the message names the value and
    /// the limit.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    /// hwloc refused to bind a thread or a memory area, or to report where an
    /// area's pages are.
    #[error("binding failed: {0}")]
    Binding(String),

    /// A merge panicked (on a merge thread, or on a writer that was helping
    /// merge). Records it was merging may be lost, so the index refuses
    /// every later write and flush; queries still answer from what was
    /// merged. Rebuild the index (and investigate the message).
    #[error("index poisoned: a merge panicked: {0}")]
    Poisoned(String),

    /// Accepting more records would take the index past its memory budget.
    /// Every record accepted before this error is kept and merged; raise the
    /// budget or stop writing.
    #[error("memory budget of {budget} bytes exhausted: {used} bytes in trees and slots")]
    MemoryBudget {
        /// The configured budget, in bytes.
        budget: usize,
        /// Bytes in use (trees plus slot buffers) when the insert was refused.
        used: usize,
    },

    /// A snapshot could not be written, or a file could not be restored
    /// (unreadable, truncated, corrupted, foreign, or holding impossible
    /// data): the message names the file and what is wrong. See
    /// [`SnapshotError`](crate::SnapshotError) for the kinds.
    #[error(transparent)]
    Snapshot(SharedSnapshotError),

    /// The index was closed: a writer needing a new slot gets this. What
    /// writers had buffered is still merged (on their own thread) when they
    /// flush or drop, and queries keep answering.
    #[error("index is closed")]
    Closed,

    /// The counters do not add up: node `node` accepted more (or fewer)
    /// records than it merged, superseded or still holds in flight. Records
    /// were lost or counted twice inside the index: a bug to report, never
    /// an expected outcome. See [`Stats::verify_accounting`](crate::Stats::verify_accounting).
    #[error(
        "records unaccounted for on node {node}: {accepted} accepted but {inserted} inserted \
         + {updated} updated + {superseded} superseded in their slot + {expired} expired \
         + {in_flight} in flight = {accounted}"
    )]
    Unaccounted {
        /// Plan index of the node.
        node: usize,
        /// Records sealed into slots by writers.
        accepted: u64,
        /// Records that added a key to a tree.
        inserted: u64,
        /// Records that replaced the value of a key in a tree.
        updated: u64,
        /// Records dropped by their slot's sort because a later insert of
        /// the same key in the same slot won.
        superseded: u64,
        /// Records older than the retention floor when merged.
        expired: u64,
        /// Records of slots sealed but not yet fully merged.
        in_flight: u64,
        /// `inserted + updated + superseded + expired + in_flight`.
        accounted: u64,
    },

    /// The operating system refused to start a thread.
    #[error("cannot start {what}: {reason}")]
    Thread {
        /// Which thread or pool.
        what: String,
        /// The OS or rayon error.
        reason: String,
    },
}

/// A [`SnapshotError`](crate::SnapshotError) shared, so that [`Error`]
/// stays `Clone` and comparable (two compare equal when their messages do).
#[derive(Debug, Clone)]
pub struct SharedSnapshotError(pub std::sync::Arc<crate::SnapshotError>);

impl SharedSnapshotError {
    /// The error.
    pub fn get(&self) -> &crate::SnapshotError {
        &self.0
    }
}

impl std::fmt::Display for SharedSnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedSnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.0)
    }
}

impl PartialEq for SharedSnapshotError {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for SharedSnapshotError {}

impl From<crate::SnapshotError> for Error {
    fn from(e: crate::SnapshotError) -> Self {
        Error::Snapshot(SharedSnapshotError(std::sync::Arc::new(e)))
    }
}

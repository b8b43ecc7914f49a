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
    // Later work adds `Poisoned` (a merge thread panicked), `MemoryBudget`
    // (the configured budget is exhausted) and `Closed` (the index was closed).
}

//! The core's one error type: every capacity limit is a value, never a panic.

use core::fmt;

/// What went wrong in a core operation, and what the caller can do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The node store ran out of nodes. The first `applied` records of the
    /// run are in the tree; the rest were not touched: retry them (as
    /// `&run[applied..]`) once the store has room. Nothing is half-applied.
    Full {
        /// How many records of the run were merged before the store filled.
        applied: usize,
    },
    /// The run given to a merge was not strictly ascending by key at
    /// `index` (`run[index - 1].key >= run[index].key`). Sort and deduplicate
    /// it first (`sort::sort_dedup`). The tree was not changed.
    Unsorted {
        /// The first position that breaks the order.
        index: usize,
    },
    /// A sort was given less scratch space than records.
    ScratchTooSmall {
        /// Records to sort.
        needed: usize,
        /// Scratch records provided.
        provided: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Full { applied } => write!(
                f,
                "node store is full: the first {applied} records of the run were merged, \
                 retry the rest once the store has room"
            ),
            Error::Unsorted { index } => write!(
                f,
                "run is not strictly ascending by (series, ts) at index {index}: \
                 sort and deduplicate it before merging"
            ),
            Error::ScratchTooSmall { needed, provided } => write!(
                f,
                "sort scratch holds {provided} records but {needed} must be sorted: \
                 provide scratch at least as long as the run"
            ),
        }
    }
}

impl core::error::Error for Error {}

//! A series' cell in the directory: where its current version is published.
//!
//! Most series of a high-cardinality index are short: one flat hot block,
//! nothing frozen. Publishing such a version as a `Series` object of its
//! own would cost an allocation (48 bytes) beside the block for every
//! series, and a dependent cache miss on every read. So the cell holds
//! either a pointer to a boxed `Series` (tag bit 0), or, for a short
//! series, a pointer to its block's words alone (tag bit 1: the block's
//! `HotWords` handle, whose reference the cell owns; a handle is one
//! pointer, its length in its top bits, `arena::piece`); the version's
//! lower bound is the block's first point (`Series::short_block`
//! publishes a version this way only then).
//!
//! The protocol is `Published`'s: the merge (one thread per shard) writes
//! the version, or the block, in full, then stores the cell (`Release`);
//! a reader loads it (`Acquire`) under an epoch guard; what a store
//! replaces is destroyed (a box freed, a block reference dropped) once
//! every reader pinned before the store has unpinned. A lookup or a scan
//! of a short cell reads the block straight from the cell's word
//! (`SeriesCell::get`, `SeriesCell::scan`: half the time of a lookup that
//! first made a `Series` over the block on its stack, measured on
//! cache-resident short series); other readers (and the merge, past its
//! short path below) see the series through such a `Series`, which they
//! never drop. Either way the cell's reference keeps the block alive while
//! the reader is pinned.
//!
//! The merge appends to a short series' block through the cell
//! (`SeriesCell::short_words`, `SeriesCell::store_short_retiring`;
//! `storage::append`): in place, published by the block's length, or into
//! a new block stored into the cell, as a new version would be.
//!
//! What a merge run replaces goes into its [`Retired`] list rather than
//! to the collector one by one (`store_retiring`): the list is deferred
//! 512 words at a time (and what is left at the end of the run), and the
//! short blocks in each such part go back to their arena in one batch. A
//! run of many short series replaces one block for nearly every record;
//! deferring each and giving each piece back alone took ~35% of the
//! merging threads' samples at 1,000,000 x 10 (BENCHMARKS.md).
//!
//! Under a model checker the cell is a `Published<Series>` (every version
//! boxed): the short form changes where a version's words are, not the
//! order in which they are written and published. The merge's short path
//! runs there too, on the block of a boxed short version.

#[cfg(any(loom, shuttle))]
mod model;
#[cfg(not(any(loom, shuttle)))]
mod retired;
#[cfg(not(any(loom, shuttle)))]
mod tagged;

#[cfg(any(loom, shuttle))]
pub(crate) use model::{Retired, SeriesCell};
#[cfg(not(any(loom, shuttle)))]
pub(crate) use retired::Retired;
#[cfg(not(any(loom, shuttle)))]
pub(crate) use tagged::SeriesCell;

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests;

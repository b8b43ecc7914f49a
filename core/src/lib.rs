//! numatree-core: the allocation-free heart of numatree — slot buffers,
//! sorting, B+-tree node layouts, bulk merge and queries — for `no_std`
//! targets with no allocator at all.
//!
//! The data flow reads as the module list: records are appended to a
//! [`SlotBuffer`], sorted into a strictly ascending run ([`sort_dedup`]),
//! merged into a [`Tree`] ([`Tree::merge_run`]) whose nodes live in a
//! [`NodeStore`], and read back with [`Tree::get`] and [`Tree::range`].
//! Frozen column blocks compress to bytes and back with [`codec`].
//!
//! ```
//! use numatree_core::{ArraySlot, ArrayStore, Error, Record, SortScratch, Tree};
//!
//! // Everything lives inline: no heap anywhere.
//! let mut slot: ArraySlot<256> = ArraySlot::new();
//! for ts in (0..100).rev() {
//!     slot.push(Record::new(7, ts, ts as u64 * 10)).unwrap(); // Err(record) when full
//! }
//! let mut scratch = SortScratch::new();
//! let run = slot.sort(&mut scratch); // ascending; a later insert of a key wins
//!
//! let mut tree: Tree<ArrayStore<64>> = Tree::new(ArrayStore::new());
//! match tree.merge_run(run) {
//!     Ok(stats) => assert_eq!(stats.inserted, 100),
//!     Err(Error::Full { applied }) => panic!("store full after {applied} records"),
//!     Err(e) => panic!("{e}"),
//! }
//! assert_eq!(tree.get(7, 42), Some(420));
//! assert_eq!(tree.range(7, 10..20).count(), 10);
//! tree.validate().unwrap();
//! ```
//!
//! # Guarantees
//! - **Nothing lost.** Every capacity limit is an [`Error`] value, never a
//!   panic and never a silent drop: a full slot hands the record back
//!   (`Err(record)`), and a full store stops a merge at a reported prefix
//!   ([`Error::Full`] with `applied`): the first `applied` records of the run
//!   are in the tree, the rest untouched, to be merged again.
//! - **Order.** A key is `(series, ts)`, ordered by series then timestamp.
//!   Sorting a slot keeps one record per key, the one pushed last (a later
//!   write wins); merging a run replaces the value of a key already stored.
//!   [`Tree::range`] yields a series' records in ascending timestamp order.
//! - **Visibility.** There is no concurrency here: a record is in the tree
//!   once `merge_run` returns (or is within the applied prefix of
//!   [`Error::Full`]), and every later `get` or `range` sees it. Threads,
//!   waiting and backpressure belong to the `numatree` runtime crate.
//! - **Errors.** One small `#[non_exhaustive]` [`Error`] enum: a full store
//!   ([`Error::Full`]), a run that is not strictly ascending
//!   ([`Error::Unsorted`], the tree unchanged), or too little sort scratch
//!   ([`Error::ScratchTooSmall`]).
//! - **No allocation, no `std`.** Capacity is fixed by the caller (const
//!   generics, or storage it provides); the same code runs on a
//!   microcontroller and in the runtime.
//!
//! [`snapshot`] is the snapshot file format: encoding its pieces into a
//! caller's buffer, and parsing a snapshot only once all of it is verified.
//!
//! The crate has no features and no unsafe code.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

mod block;
mod block_store;
pub mod codec;
mod error;
mod node;
mod query;
mod record;
pub mod series;
mod series_index;
mod slot;
pub mod snapshot;
mod sort;
mod store;
mod tree;
mod validate;

pub use block::{find, lower_bound, ArrayBlock, BlockRead, BlockWrite, Point, PointSink};
pub use block_store::{ArrayBlockStore, BlockId, BlockSource, BlockStore};
pub use error::Error;
pub use node::{Inner, Leaf, Node, TreeNodeId, INNER_FANOUT, LEAF_CAPACITY};
pub use query::Range;
pub use record::{Key, Record, RECORD_BYTES};
pub use series::{BlockEntry, BlockIndex, BlockList, SeriesMergeStats};
pub use series_index::SeriesIndex;
pub use slot::{ArraySlot, SlotBuffer};
pub use sort::{sort_dedup, sort_dedup_either, SortScratch, Sorted};
pub use store::{ArrayStore, NodeStore};
pub use tree::{MergeStats, Tree};
pub use validate::InvalidTree;

//! Fixed-capacity B+-tree node layouts.
//!
//! Leaves hold records in key order and a link to the next leaf (range scans
//! walk the chain). Inner nodes hold separator keys and child ids. Both have
//! fixed capacities chosen by const generics, so a node is one plain value
//! that any [`NodeStore`](crate::NodeStore) can keep in an array.

use crate::record::{Key, Record};

/// Default leaf capacity, in records (64 x 24 B = 1.5 KiB of records).
pub const LEAF_CAPACITY: usize = 64;
/// Default inner-node fan-out, in children.
pub const INNER_FANOUT: usize = 64;

/// Index of a tree node in its [`NodeStore`](crate::NodeStore). (Not a NUMA
/// node: the runtime names those `NodeId`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct TreeNodeId(pub u32);

impl TreeNodeId {
    /// "No node": the end of the leaf chain, or the root of an empty tree.
    pub const NONE: TreeNodeId = TreeNodeId(u32::MAX);

    /// The id as an array index.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A leaf: up to `L` records, strictly ascending by key.
#[derive(Clone, Debug)]
#[repr(C)]
pub struct Leaf<const L: usize = LEAF_CAPACITY> {
    /// The next leaf in key order, or [`TreeNodeId::NONE`] for the last leaf.
    pub next: TreeNodeId,
    /// The records, strictly ascending by key.
    pub records: heapless::Vec<Record, L>,
}

impl<const L: usize> Leaf<L> {
    /// An empty, unlinked leaf.
    pub const fn new() -> Self {
        Leaf {
            next: TreeNodeId::NONE,
            records: heapless::Vec::new(),
        }
    }
}

impl<const L: usize> Default for Leaf<L> {
    fn default() -> Self {
        Self::new()
    }
}

/// An inner node: `children.len()` children separated by `children.len() - 1` keys.
///
/// Child `i` holds exactly the keys `k` with `keys[i - 1] <= k < keys[i]`
/// (unbounded at either end). `keys` has room for `I` entries though at most
/// `I - 1` are used, which keeps the layout free of const arithmetic.
#[derive(Clone, Debug)]
#[repr(C)]
pub struct Inner<const I: usize = INNER_FANOUT> {
    /// Separators: `keys[i]` is the smallest key of child `i + 1`'s subtree
    /// at the time that child was split off.
    pub keys: heapless::Vec<Key, I>,
    /// Child node ids, all at the same depth.
    pub children: heapless::Vec<TreeNodeId, I>,
}

impl<const I: usize> Inner<I> {
    /// An inner node with no children.
    pub const fn new() -> Self {
        Inner {
            keys: heapless::Vec::new(),
            children: heapless::Vec::new(),
        }
    }

    /// Which child's subtree holds `key`: the number of separators `<= key`.
    #[inline]
    pub fn child_for(&self, key: &Key) -> usize {
        self.keys.partition_point(|k| k <= key)
    }
}

impl<const I: usize> Default for Inner<I> {
    fn default() -> Self {
        Self::new()
    }
}

/// A tree node: a leaf or an inner node.
#[derive(Clone, Debug)]
pub enum Node<const L: usize = LEAF_CAPACITY, const I: usize = INNER_FANOUT> {
    /// Holds records.
    Leaf(Leaf<L>),
    /// Routes to children.
    Inner(Inner<I>),
}

const _: () = assert!(core::mem::size_of::<TreeNodeId>() == 4);
// A default leaf spends at most 16 bytes on bookkeeping next to its 1,536
// bytes of records, so a full leaf stays within 24 bytes per record + 1%.
const _: () = assert!(
    core::mem::size_of::<Leaf<LEAF_CAPACITY>>() <= LEAF_CAPACITY * crate::RECORD_BYTES + 16
);

/// Loads one value from every cache line of `items`, independently of each
/// other, so a cold node arrives in one round of memory latency instead of
/// one per binary-search probe. The result is meaningless; it is passed
/// through `black_box` so the loads are not optimised away.
#[inline]
pub(crate) fn warm<T: Copy>(items: &[T], pick: impl Fn(&T) -> u32) {
    let stride = (64 / core::mem::size_of::<T>()).max(1);
    let mut acc = 0u32;
    let mut i = 0;
    while i < items.len() {
        acc ^= pick(&items[i]);
        i += stride;
    }
    if let Some(last) = items.last() {
        acc ^= pick(last);
    }
    core::hint::black_box(acc);
}

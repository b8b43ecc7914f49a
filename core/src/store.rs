//! Where tree nodes live: the [`NodeStore`] trait and [`ArrayStore`], a
//! fixed-capacity store for users with no allocator at all.
//!
//! The tree never allocates itself; it asks its store. The runtime supplies a
//! growable store over node-local memory chunks; embedded users use
//! `ArrayStore`, whose capacity is part of its type.

use crate::node::{Node, TreeNodeId, INNER_FANOUT, LEAF_CAPACITY};

/// Storage for the nodes of one tree.
///
/// Contract: an id returned by `alloc` stays valid, and refers to the same
/// node, until it is passed to `free`; `available` is a promise that that
/// many `alloc` calls in a row will succeed.
pub trait NodeStore<const L: usize = LEAF_CAPACITY, const I: usize = INNER_FANOUT> {
    /// Stores `node`, returning its id; hands the node back if the store is full.
    fn alloc(&mut self, node: Node<L, I>) -> Result<TreeNodeId, Node<L, I>>;
    /// Releases a node; its id may be reused by a later `alloc`.
    fn free(&mut self, id: TreeNodeId);
    /// The node with id `id`.
    fn get(&self, id: TreeNodeId) -> &Node<L, I>;
    /// The node with id `id`, mutably.
    fn get_mut(&mut self, id: TreeNodeId) -> &mut Node<L, I>;
    /// How many more nodes `alloc` is guaranteed to accept.
    fn available(&self) -> usize;
    /// Nodes currently allocated (not freed).
    fn allocated(&self) -> usize;
    /// Bytes of memory this store holds for nodes, used or not.
    fn bytes(&self) -> usize;
}

/// A store of at most `CAP` nodes in one inline array: no allocator needed.
///
/// Put it in a `static`, on the stack, or inside another structure.
#[derive(Clone, Debug)]
pub struct ArrayStore<
    const CAP: usize,
    const L: usize = LEAF_CAPACITY,
    const I: usize = INNER_FANOUT,
> {
    nodes: heapless::Vec<Node<L, I>, CAP>,
    free: heapless::Vec<TreeNodeId, CAP>,
}

impl<const CAP: usize, const L: usize, const I: usize> ArrayStore<CAP, L, I> {
    /// An empty store.
    pub const fn new() -> Self {
        const {
            assert!(
                CAP < u32::MAX as usize,
                "ArrayStore capacity must fit a TreeNodeId"
            )
        };
        ArrayStore {
            nodes: heapless::Vec::new(),
            free: heapless::Vec::new(),
        }
    }
}

impl<const CAP: usize, const L: usize, const I: usize> Default for ArrayStore<CAP, L, I> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const CAP: usize, const L: usize, const I: usize> NodeStore<L, I> for ArrayStore<CAP, L, I> {
    fn alloc(&mut self, node: Node<L, I>) -> Result<TreeNodeId, Node<L, I>> {
        if let Some(id) = self.free.pop() {
            self.nodes[id.index()] = node;
            return Ok(id);
        }
        let id = TreeNodeId(self.nodes.len() as u32);
        self.nodes.push(node)?;
        Ok(id)
    }

    fn free(&mut self, id: TreeNodeId) {
        debug_assert!(id.index() < self.nodes.len(), "freeing unknown node {id:?}");
        debug_assert!(!self.free.contains(&id), "double free of node {id:?}");
        // Cannot fail: at most CAP ids exist, so at most CAP can be free.
        let _ = self.free.push(id);
    }

    #[inline]
    fn get(&self, id: TreeNodeId) -> &Node<L, I> {
        &self.nodes[id.index()]
    }

    #[inline]
    fn get_mut(&mut self, id: TreeNodeId) -> &mut Node<L, I> {
        &mut self.nodes[id.index()]
    }

    fn available(&self) -> usize {
        CAP - self.nodes.len() + self.free.len()
    }

    fn allocated(&self) -> usize {
        self.nodes.len() - self.free.len()
    }

    fn bytes(&self) -> usize {
        core::mem::size_of::<Self>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Leaf;

    #[test]
    fn array_store_reports_full_and_reuses_freed_ids() {
        let mut store: ArrayStore<2, 4, 4> = ArrayStore::new();
        let a = store.alloc(Node::Leaf(Leaf::new())).unwrap();
        let _b = store.alloc(Node::Leaf(Leaf::new())).unwrap();
        assert_eq!(store.available(), 0);
        assert!(store.alloc(Node::Leaf(Leaf::new())).is_err());
        store.free(a);
        assert_eq!((store.available(), store.allocated()), (1, 1));
        assert_eq!(store.alloc(Node::Leaf(Leaf::new())).unwrap(), a);
    }
}

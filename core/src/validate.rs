//! Checking every B+-tree invariant, for tests and debugging.
//!
//! `validate` is the oracle the property tests and fuzzers lean on: after
//! any sequence of merges it must hold, and a failure names the node and
//! the broken rule.

use core::fmt;

use crate::node::{Node, TreeNodeId};
use crate::record::Key;
use crate::store::NodeStore;
use crate::tree::{Tree, MAX_HEIGHT};

/// A broken tree invariant, found by [`Tree::validate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidTree {
    /// The node where the problem was seen.
    pub node: TreeNodeId,
    /// The rule that does not hold.
    pub problem: &'static str,
}

impl fmt::Display for InvalidTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid tree at node {}: {}", self.node.0, self.problem)
    }
}

impl core::error::Error for InvalidTree {}

#[derive(Default)]
struct Counts {
    nodes: usize,
    leaves: usize,
    records: usize,
}

impl<S: NodeStore<L, I>, const L: usize, const I: usize> Tree<S, L, I> {
    /// Checks every invariant: records and separators strictly ascending,
    /// every key inside the fences its ancestors set, all leaves at one
    /// depth, node fill within bounds (non-root leaves non-empty, inner nodes
    /// with at least 2 children), the leaf chain visiting every leaf once in
    /// key order with `len()` records in all, and every allocated node
    /// reachable.
    pub fn validate(&self) -> Result<(), InvalidTree> {
        let fail = |node, problem| Err(InvalidTree { node, problem });
        if self.root == TreeNodeId::NONE {
            if self.height != 0 || self.len != 0 || self.store.allocated() != 0 {
                return fail(
                    TreeNodeId::NONE,
                    "empty tree with a height, a length or nodes",
                );
            }
            return Ok(());
        }
        if self.height == 0 || self.height > MAX_HEIGHT {
            return fail(self.root, "height out of range");
        }
        let mut counts = Counts::default();
        self.check_node(self.root, 1, None, None, &mut counts)?;
        if counts.records != self.len {
            return fail(self.root, "len() differs from the records in the leaves");
        }
        if counts.nodes != self.store.allocated() {
            return fail(self.root, "allocated nodes differ from reachable nodes");
        }
        self.check_leaf_chain(counts.leaves)
    }

    fn check_node(
        &self,
        id: TreeNodeId,
        depth: usize,
        lo: Option<Key>,
        hi: Option<Key>,
        counts: &mut Counts,
    ) -> Result<(), InvalidTree> {
        let fail = |problem| Err(InvalidTree { node: id, problem });
        let inside = |k: &Key| lo.is_none_or(|lo| *k >= lo) && hi.is_none_or(|hi| *k < hi);
        counts.nodes += 1;
        match self.store.get(id) {
            Node::Leaf(leaf) => {
                if depth != self.height {
                    return fail("leaf above the leaf level");
                }
                if leaf.records.is_empty() && depth != 1 {
                    return fail("empty non-root leaf");
                }
                if leaf.records.windows(2).any(|w| w[0].key >= w[1].key) {
                    return fail("leaf records not strictly ascending");
                }
                if !leaf.records.iter().all(|r| inside(&r.key)) {
                    return fail("leaf record outside its parent's fences");
                }
                counts.leaves += 1;
                counts.records += leaf.records.len();
                Ok(())
            }
            Node::Inner(inner) => {
                if depth >= self.height {
                    return fail("inner node at the leaf level");
                }
                if inner.children.len() < 2 || inner.keys.len() + 1 != inner.children.len() {
                    return fail("inner node with < 2 children or keys != children - 1");
                }
                if inner.keys.windows(2).any(|w| w[0] >= w[1]) {
                    return fail("separators not strictly ascending");
                }
                if !inner.keys.iter().all(inside) {
                    return fail("separator outside its parent's fences");
                }
                for (i, &child) in inner.children.iter().enumerate() {
                    let child_lo = if i == 0 { lo } else { Some(inner.keys[i - 1]) };
                    let child_hi = inner.keys.get(i).copied().or(hi);
                    self.check_node(child, depth + 1, child_lo, child_hi, counts)?;
                }
                Ok(())
            }
        }
    }

    fn check_leaf_chain(&self, leaves: usize) -> Result<(), InvalidTree> {
        let mut id = self.root;
        for _ in 1..self.height {
            id = self.inner(id).children[0];
        }
        let (mut seen, mut records, mut last): (usize, usize, Option<Key>) = (0, 0, None);
        while id != TreeNodeId::NONE {
            seen += 1;
            if seen > leaves {
                return Err(InvalidTree {
                    node: id,
                    problem: "leaf chain longer than the leaf count",
                });
            }
            let leaf = self.leaf(id);
            if let (Some(prev), Some(first)) = (last, leaf.records.first()) {
                if prev >= first.key {
                    return Err(InvalidTree {
                        node: id,
                        problem: "leaf chain out of key order",
                    });
                }
            }
            if let Some(r) = leaf.records.last() {
                last = Some(r.key);
            }
            records += leaf.records.len();
            id = leaf.next;
        }
        if seen != leaves || records != self.len {
            return Err(InvalidTree {
                node: self.root,
                problem: "leaf chain misses leaves or records",
            });
        }
        Ok(())
    }
}

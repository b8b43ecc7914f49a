//! Reading the tree: ascending iteration over a key range.
//!
//! A range descends once to its first leaf and then follows the leaf chain,
//! so a scan of `k` records costs one descent plus `k / L` leaf hops.

use core::ops::{Bound, RangeBounds};

use crate::node::TreeNodeId;
use crate::record::{Key, Record};
use crate::store::NodeStore;
use crate::tree::Tree;

impl<S: NodeStore<L, I>, const L: usize, const I: usize> Tree<S, L, I> {
    /// Records of `series` whose timestamps lie in `ts`, ascending.
    /// An empty or inverted range (`t0 > t1`) yields nothing.
    pub fn range(&self, series: u32, ts: impl RangeBounds<i64>) -> Range<'_, S, L, I> {
        let start = match ts.start_bound() {
            Bound::Included(&t) => Bound::Included(Key::new(series, t)),
            Bound::Excluded(&t) => Bound::Excluded(Key::new(series, t)),
            Bound::Unbounded => Bound::Included(Key::new(series, i64::MIN)),
        };
        let end = match ts.end_bound() {
            Bound::Included(&t) => Bound::Included(Key::new(series, t)),
            Bound::Excluded(&t) => Bound::Excluded(Key::new(series, t)),
            Bound::Unbounded => Bound::Included(Key::new(series, i64::MAX)),
        };
        self.range_keys(start, end)
    }

    /// Every record, ascending by key.
    pub fn iter(&self) -> Range<'_, S, L, I> {
        self.range_keys(Bound::Unbounded, Bound::Unbounded)
    }

    /// Records with keys between `start` and `end`, ascending.
    pub fn range_keys(&self, start: Bound<Key>, end: Bound<Key>) -> Range<'_, S, L, I> {
        let seek = match start {
            Bound::Included(k) | Bound::Excluded(k) => k,
            Bound::Unbounded => Key::MIN,
        };
        let Some(leaf) = self.find_leaf(&seek) else {
            return Range {
                tree: self,
                leaf: TreeNodeId::NONE,
                pos: 0,
                end,
            };
        };
        let records = &self.leaf(leaf).records;
        let pos = match start {
            Bound::Included(k) => records.partition_point(|r| r.key < k),
            Bound::Excluded(k) => records.partition_point(|r| r.key <= k),
            Bound::Unbounded => 0,
        };
        Range {
            tree: self,
            leaf,
            pos,
            end,
        }
    }
}

/// Ascending iterator over a key range of a [`Tree`].
#[derive(Debug)]
pub struct Range<'a, S, const L: usize, const I: usize> {
    tree: &'a Tree<S, L, I>,
    leaf: TreeNodeId,
    pos: usize,
    end: Bound<Key>,
}

impl<S: NodeStore<L, I>, const L: usize, const I: usize> Iterator for Range<'_, S, L, I> {
    type Item = Record;

    #[inline]
    fn next(&mut self) -> Option<Record> {
        while self.leaf != TreeNodeId::NONE {
            let leaf = self.tree.leaf(self.leaf);
            if let Some(&record) = leaf.records.get(self.pos) {
                let inside = match self.end {
                    Bound::Included(k) => record.key <= k,
                    Bound::Excluded(k) => record.key < k,
                    Bound::Unbounded => true,
                };
                if !inside {
                    self.leaf = TreeNodeId::NONE;
                    return None;
                }
                self.pos += 1;
                return Some(record);
            }
            self.leaf = leaf.next;
            self.pos = 0;
        }
        None
    }
}

//! The B+-tree and its bulk merge: how a sorted run becomes part of the index.
//!
//! A merge walks the run once. Each step descends to the leaf that owns the
//! next key, takes every following run record that belongs to that leaf (at
//! most one leaf's worth), merges them with the leaf's records (a run record
//! replaces a leaf record with the same key), and, if the result overflows,
//! splits the leaf in two and posts the separator up the path, splitting
//! inner nodes as needed.
//!
//! Time-series appends are the common case: new points of a series land past
//! its last key. Such a step appends in place without a merge, and a split
//! caused by an append leaves the old leaf full and starts a new one, so
//! append-only series fill their leaves completely. Other splits cut at a
//! series boundary near the middle when there is one, so a series' newest
//! leaf does not share its space with its neighbour's oldest points.
//!
//! Capacity: before each step the tree checks that the store can take the
//! step's worst case (one leaf plus one node per level plus a new root). If
//! it cannot, the merge stops with [`Error::Full`] naming the prefix of the
//! run that was applied; the tree is valid and holds exactly that prefix.

use crate::error::Error;
use crate::node::{warm, Inner, Leaf, Node, TreeNodeId, INNER_FANOUT, LEAF_CAPACITY};
use crate::record::{Key, Record};
use crate::store::NodeStore;

/// The deepest a tree can grow: inner nodes keep >= 2 children and ids are
/// 32-bit, so no tree of distinct nodes gets deeper than 33 levels.
pub(crate) const MAX_HEIGHT: usize = 40;

/// Inner nodes from the root down to a leaf, with the child index taken at each.
pub(crate) type Path = heapless::Vec<(TreeNodeId, usize), MAX_HEIGHT>;

/// A merge's position in the tree between steps: the path to the last
/// leaf and, per level, the exclusive upper fence of the child taken there
/// (`None`: unbounded).
struct Finger {
    path: Path,
    upper: [Option<Key>; MAX_HEIGHT],
    valid: bool,
}

impl Finger {
    fn new() -> Self {
        Finger {
            path: Path::new(),
            upper: [None; MAX_HEIGHT],
            valid: false,
        }
    }

    /// The exclusive upper fence of the leaf the path leads to.
    fn leaf_upper(&self) -> Option<Key> {
        self.path
            .len()
            .checked_sub(1)
            .and_then(|level| self.upper[level])
    }
}

/// What one merge did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MergeStats {
    /// Records whose key was new to the tree.
    pub inserted: usize,
    /// Records that replaced the value of a key already in the tree.
    pub replaced: usize,
}

/// An ordered index of records over a [`NodeStore`], with leaves of `L`
/// records and inner nodes of `I` children.
///
/// ```
/// use numatree_core::{ArrayStore, Record, Tree};
///
/// let mut tree: Tree<ArrayStore<16>> = Tree::new(ArrayStore::new());
/// let run = [Record::new(1, 10, 100), Record::new(1, 20, 200), Record::new(2, 5, 7)];
/// tree.merge_run(&run).unwrap();
/// assert_eq!(tree.get(1, 20), Some(200));
/// let ts: Vec<i64> = tree.range(1, 0..15).map(|r| r.key.ts).collect();
/// assert_eq!(ts, [10]);
/// ```
#[derive(Clone, Debug)]
pub struct Tree<S, const L: usize = LEAF_CAPACITY, const I: usize = INNER_FANOUT> {
    pub(crate) store: S,
    pub(crate) root: TreeNodeId,
    /// Levels, leaves included; 0 for a tree that never held a node.
    pub(crate) height: usize,
    pub(crate) len: usize,
    /// Where a leaf's records and a step's run records are merged: 2 leaves' worth.
    merged: [[Record; L]; 2],
}

impl<S: NodeStore<L, I>, const L: usize, const I: usize> Tree<S, L, I> {
    const VALID_CAPACITIES: () = assert!(
        L >= 2 && I >= 4,
        "a tree needs leaves of >= 2 records and inner nodes of >= 4 children"
    );

    /// An empty tree over `store`, which must hold no nodes yet.
    pub fn new(store: S) -> Self {
        let () = Self::VALID_CAPACITIES;
        Tree {
            store,
            root: TreeNodeId::NONE,
            height: 0,
            len: 0,
            merged: [[Record::ZERO; L]; 2],
        }
    }

    /// Distinct keys in the tree.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the tree holds no record.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Levels from the root to the leaves (0 when empty, 1 when the root is a leaf).
    pub fn height(&self) -> usize {
        self.height
    }

    /// The node store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives the store back, with the tree's nodes still in it.
    pub fn into_store(self) -> S {
        self.store
    }

    /// The value stored for `(series, ts)`, if any.
    pub fn get(&self, series: u32, ts: i64) -> Option<u64> {
        let key = Key::new(series, ts);
        let leaf = self.leaf(self.find_leaf(&key)?);
        warm(&leaf.records, |r| r.key.series);
        leaf.records
            .binary_search_by(|r| r.key.cmp(&key))
            .ok()
            .map(|i| leaf.records[i].value)
    }

    /// Merges a run that is strictly ascending by key (as
    /// [`sort_dedup`](crate::sort_dedup) leaves it). A run record replaces
    /// the value of an equal key already in the tree.
    ///
    /// # Errors
    /// - [`Error::Unsorted`]: the run is not strictly ascending; nothing changed.
    /// - [`Error::Full`]: the store ran out of room; `run[..applied]` is in the
    ///   tree, the rest untouched, and the tree is valid.
    pub fn merge_run(&mut self, run: &[Record]) -> Result<MergeStats, Error> {
        if let Some(index) = (1..run.len()).find(|&i| run[i - 1].key >= run[i].key) {
            return Err(Error::Unsorted { index });
        }
        let mut stats = MergeStats::default();
        if run.is_empty() {
            return Ok(stats);
        }
        if self.root == TreeNodeId::NONE {
            self.root = self
                .store
                .alloc(Node::Leaf(Leaf::new()))
                .map_err(|_| Error::Full { applied: 0 })?;
            self.height = 1;
        }
        let mut applied = 0;
        // The finger: the last step's path and fences, reused while valid.
        let mut finger = Finger::new();
        while applied < run.len() {
            // Worst case of one step: a new leaf, one new inner node per
            // inner level, and a new root.
            if self.store.available() < self.height + 1 {
                return Err(Error::Full { applied });
            }
            let leaf = self.seek(&run[applied].key, &mut finger);
            let upper = finger.leaf_upper();
            let path = &mut finger.path;
            let window = &run[applied..run.len().min(applied + L)];
            let take = match upper {
                Some(upper) => window.partition_point(|r| r.key < upper),
                None => window.len(),
            };
            let (taken, replaced) = self
                .merge_into_leaf(leaf, path, &window[..take])
                .ok_or(Error::Full { applied })?;
            // A split consumed (part of) the path: descend afresh next time.
            finger.valid = finger.path.len() + 1 == self.height;
            stats.replaced += replaced;
            stats.inserted += taken - replaced;
            self.len += taken - replaced;
            applied += taken;
        }
        Ok(stats)
    }

    /// Frees every node: the tree becomes empty and its store reusable.
    pub fn clear(&mut self) {
        if self.root != TreeNodeId::NONE {
            self.free_subtree(self.root, 1);
        }
        self.root = TreeNodeId::NONE;
        self.height = 0;
        self.len = 0;
    }

    fn free_subtree(&mut self, id: TreeNodeId, depth: usize) {
        if depth < self.height {
            let children = self.inner(id).children.clone();
            for child in children {
                self.free_subtree(child, depth + 1);
            }
        }
        self.store.free(id);
    }

    /// The leaf whose key range holds `key`, or `None` for an empty tree.
    pub(crate) fn find_leaf(&self, key: &Key) -> Option<TreeNodeId> {
        if self.root == TreeNodeId::NONE {
            return None;
        }
        let mut id = self.root;
        for _ in 1..self.height {
            let inner = self.inner(id);
            warm(&inner.keys, |k| k.series);
            id = inner.children[inner.child_for(key)];
        }
        Some(id)
    }

    /// The leaf owning `key` on a non-empty tree, with `finger` updated to
    /// its path. Keys must come in ascending order between calls: a valid
    /// finger is climbed only as far as the key's fences require.
    fn seek(&self, key: &Key, finger: &mut Finger) -> TreeNodeId {
        let mut id = self.root;
        if finger.valid {
            // The deepest level whose chosen child still contains the key
            // (keys ascend, so only upper fences can be crossed).
            let keep = (0..finger.path.len())
                .rev()
                .find(|&level| finger.upper[level].is_none_or(|u| *key < u));
            match keep {
                Some(level) => {
                    let (node, idx) = finger.path[level];
                    let inner = self.inner(node);
                    let child_idx = inner.child_for(key);
                    debug_assert_eq!(child_idx, idx, "finger fence and separator disagree");
                    id = inner.children[child_idx];
                    finger.path.truncate(level + 1);
                }
                None => finger.path.clear(),
            }
        } else {
            finger.path.clear();
        }
        for level in finger.path.len() + 1..self.height {
            let inner = self.inner(id);
            warm(&inner.keys, |k| k.series);
            let idx = inner.child_for(key);
            let parent_upper = if level == 1 {
                None
            } else {
                finger.upper[level - 2]
            };
            finger.upper[level - 1] = inner.keys.get(idx).copied().or(parent_upper);
            // Cannot fail: height <= MAX_HEIGHT (see its doc).
            let _ = finger.path.push((id, idx));
            id = inner.children[idx];
        }
        finger.valid = true;
        id
    }

    /// Merges `batch` (at most `L` records, all inside the leaf's fences)
    /// into leaf `id`, splitting it if needed. Returns how many batch records
    /// were consumed (0 when the step only split the leaf at a series
    /// boundary, to be retried) and how many of them replaced an existing
    /// key; `None` (tree untouched) if the store refused the new leaf.
    fn merge_into_leaf(
        &mut self,
        id: TreeNodeId,
        path: &mut Path,
        batch: &[Record],
    ) -> Option<(usize, usize)> {
        let Tree { store, merged, .. } = self;
        let Node::Leaf(leaf) = store.get_mut(id) else {
            unreachable!("descent ends at a leaf")
        };
        let old = leaf.records.len();
        let appends = old == 0 || leaf.records[old - 1].key < batch[0].key;
        if appends && old + batch.len() <= L {
            // Fits: cannot fail.
            let _ = leaf.records.extend_from_slice(batch);
            return Some((batch.len(), 0));
        }
        if !appends && old + batch.len() > L {
            // The leaf overflows and holds later series after the batch's
            // series: give those their own leaf first, so this series' newest
            // leaf ends at its boundary and the batch becomes an append.
            let last_series = batch[batch.len() - 1].key.series;
            let cut = leaf
                .records
                .partition_point(|r| r.key.series <= last_series);
            if cut >= L / 4 && old - cut >= L / 4 {
                let mut right = Leaf::new();
                right.next = leaf.next;
                let _ = right.records.extend_from_slice(&leaf.records[cut..]);
                let separator = leaf.records[cut].key;
                let right_id = store.alloc(Node::Leaf(right)).ok()?;
                let Node::Leaf(leaf) = store.get_mut(id) else {
                    unreachable!("node kinds never change")
                };
                leaf.records.truncate(cut);
                leaf.next = right_id;
                self.insert_separator(path, separator, right_id);
                return Some((0, 0));
            }
        }
        let buf = merged.as_flattened_mut();
        let (len, replaced) = merge_sorted(&leaf.records, batch, buf);
        if len <= L {
            leaf.records.clear();
            let _ = leaf.records.extend_from_slice(&buf[..len]);
            return Some((batch.len(), replaced));
        }
        let cut = if appends {
            L
        } else {
            split_point(&buf[..len], L)
        };
        let mut right = Leaf::new();
        right.next = leaf.next;
        let _ = right.records.extend_from_slice(&buf[cut..len]);
        let separator = buf[cut].key;
        // Allocate before touching the leaf, so a store that breaks its
        // `available` promise still leaves the tree intact.
        let right_id = store.alloc(Node::Leaf(right)).ok()?;
        let Node::Leaf(leaf) = store.get_mut(id) else {
            unreachable!("node kinds never change")
        };
        leaf.records.clear();
        let _ = leaf.records.extend_from_slice(&buf[..cut]);
        leaf.next = right_id;
        self.insert_separator(path, separator, right_id);
        Some((batch.len(), replaced))
    }

    /// Posts `separator` and the new right sibling `right` to the parent at
    /// the end of `path`, splitting full inner nodes up to a new root.
    fn insert_separator(&mut self, path: &mut Path, mut separator: Key, mut right: TreeNodeId) {
        while let Some((parent, idx)) = path.pop() {
            let inner = self.inner_mut(parent);
            if inner.children.len() < I {
                let _ = inner.keys.insert(idx, separator);
                let _ = inner.children.insert(idx + 1, right);
                return;
            }
            let half = I / 2;
            let mut sibling = Inner::new();
            let _ = sibling.children.extend_from_slice(&inner.children[half..]);
            let _ = sibling.keys.extend_from_slice(&inner.keys[half..]);
            let up = inner.keys[half - 1];
            inner.children.truncate(half);
            inner.keys.truncate(half - 1);
            let target = if idx < half { inner } else { &mut sibling };
            let at = if idx < half { idx } else { idx - half };
            let _ = target.keys.insert(at, separator);
            let _ = target.children.insert(at + 1, right);
            right = self.alloc_reserved(Node::Inner(sibling));
            separator = up;
        }
        let mut root = Inner::new();
        let _ = root.keys.push(separator);
        let _ = root.children.push(self.root);
        let _ = root.children.push(right);
        self.root = self.alloc_reserved(Node::Inner(root));
        self.height += 1;
    }

    /// Allocates a node the step's capacity check already reserved.
    fn alloc_reserved(&mut self, node: Node<L, I>) -> TreeNodeId {
        match self.store.alloc(node) {
            Ok(id) => id,
            Err(_) => unreachable!("NodeStore::available promised room for this step"),
        }
    }

    #[inline]
    pub(crate) fn leaf(&self, id: TreeNodeId) -> &Leaf<L> {
        match self.store.get(id) {
            Node::Leaf(leaf) => leaf,
            Node::Inner(_) => unreachable!("node {id:?} at leaf depth is inner"),
        }
    }

    #[inline]
    pub(crate) fn inner(&self, id: TreeNodeId) -> &Inner<I> {
        match self.store.get(id) {
            Node::Inner(inner) => inner,
            Node::Leaf(_) => unreachable!("node {id:?} above leaf depth is a leaf"),
        }
    }

    fn inner_mut(&mut self, id: TreeNodeId) -> &mut Inner<I> {
        match self.store.get_mut(id) {
            Node::Inner(inner) => inner,
            Node::Leaf(_) => unreachable!("node {id:?} above leaf depth is a leaf"),
        }
    }
}

/// Merges two strictly ascending slices into `out`; on equal keys `new`
/// wins. Returns (records written, keys of `new` that replaced one of `old`).
fn merge_sorted(old: &[Record], new: &[Record], out: &mut [Record]) -> (usize, usize) {
    let (mut a, mut b, mut n, mut replaced) = (0, 0, 0, 0);
    while a < old.len() && b < new.len() {
        let (record, next_a, next_b) = match old[a].key.cmp(&new[b].key) {
            core::cmp::Ordering::Less => (old[a], a + 1, b),
            core::cmp::Ordering::Greater => (new[b], a, b + 1),
            core::cmp::Ordering::Equal => {
                replaced += 1;
                (new[b], a + 1, b + 1)
            }
        };
        out[n] = record;
        (a, b, n) = (next_a, next_b, n + 1);
    }
    let rest = if a < old.len() { &old[a..] } else { &new[b..] };
    out[n..n + rest.len()].copy_from_slice(rest);
    (n + rest.len(), replaced)
}

/// Where to split `records` (more than `cap`, at most `2 * cap`) so both
/// halves fit: the series boundary nearest the middle, else the middle.
fn split_point(records: &[Record], cap: usize) -> usize {
    let (lo, hi, mid) = (records.len() - cap, cap, records.len() / 2);
    let boundary = |p: usize| records[p - 1].key.series != records[p].key.series;
    for d in 0..=(hi - lo) {
        if mid >= lo + d && boundary(mid - d) {
            return mid - d;
        }
        if mid + d <= hi && boundary(mid + d) {
            return mid + d;
        }
    }
    mid
}

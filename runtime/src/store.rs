//! Growable node-local storage for the shard trees: `numatree-core`'s
//! [`NodeStore`] over chunks of nodes allocated on the shard's NUMA node.
//!
//! Nodes never move once allocated (chunks are never reallocated), and a
//! chunk's pages are bound to the node before they are first touched, or
//! pre-faulted by a thread pinned there when memory is reserved.

use std::mem::MaybeUninit;

use numatree_core::{Leaf, Node, NodeStore, TreeNodeId};

use crate::slot::Binder;

/// Nodes per chunk (a power of two: ids split with a shift and a mask).
/// 4,096 nodes are ~6 MiB, so every chunk holds at least one 2 MiB-aligned
/// range the kernel can back with a transparent huge page.
const CHUNK_NODES: usize = 4096;
const CHUNK_SHIFT: u32 = CHUNK_NODES.trailing_zeros();

/// One tree node of the default capacities.
pub(crate) type TreeNode = Node;

/// One chunk of nodes, and whether `reserve` touched all of it.
#[derive(Debug)]
struct Chunk {
    nodes: Vec<TreeNode>,
    /// Every page was touched in advance: all of it is resident memory.
    prefaulted: bool,
}

#[derive(Debug)]
pub(crate) struct ChunkStore {
    chunks: Vec<Chunk>,
    free: Vec<TreeNodeId>,
    allocated: usize,
    /// The first chunk that may have room; every chunk before it is full.
    cursor: usize,
    binder: Binder,
}

impl ChunkStore {
    pub(crate) fn new(binder: Binder) -> Self {
        ChunkStore {
            chunks: Vec::new(),
            free: Vec::new(),
            allocated: 0,
            cursor: 0,
            binder,
        }
    }

    fn new_chunk(&self) -> Vec<TreeNode> {
        let mut chunk = Vec::with_capacity(CHUNK_NODES);
        self.binder.bind(chunk.spare_capacity_mut());
        huge_pages::advise(chunk.spare_capacity_mut());
        chunk
    }

    /// Makes room for at least `nodes` more nodes and touches every page of
    /// it, so a later ingest faults nothing. Call from a thread pinned to the
    /// store's node.
    pub(crate) fn reserve(&mut self, nodes: usize) {
        let spare: usize = self.chunks[self.cursor.min(self.chunks.len())..]
            .iter()
            .map(|c| CHUNK_NODES - c.nodes.len())
            .sum();
        let mut needed = nodes.saturating_sub(spare);
        while needed > 0 {
            let mut chunk = self.new_chunk();
            for node in chunk.spare_capacity_mut() {
                // One write per node touches every page: nodes are < 4 KiB.
                node.write(Node::Leaf(Leaf::new()));
            }
            self.chunks.push(Chunk {
                nodes: chunk,
                prefaulted: true,
            });
            needed = needed.saturating_sub(CHUNK_NODES);
        }
        // Reserved chunks sit behind the current one; allocation fills the
        // first chunk with room, see `alloc`.
    }

    /// Bytes that `reserve(nodes)` touches on an empty store (whole chunks),
    /// or `None` when that does not fit a `usize`.
    pub(crate) fn reserved_bytes(nodes: usize) -> Option<usize> {
        nodes
            .div_ceil(CHUNK_NODES)
            .checked_mul(CHUNK_NODES * size_of::<TreeNode>())
    }

    /// The whole allocation of every chunk, used or reserved: where
    /// `placement` looks for the tree's pages.
    pub(crate) fn chunk_buffers(&self) -> impl Iterator<Item = &[MaybeUninit<TreeNode>]> {
        self.chunks.iter().map(|Chunk { nodes: chunk, .. }| {
            // SAFETY: `as_ptr` and `capacity` describe the chunk's one
            // allocation (or a dangling, aligned pointer with capacity 0),
            // so the range is aligned and in bounds. `MaybeUninit` may view
            // uninitialized elements, and the chunk cannot change while
            // `self` is borrowed: the slice lives no longer than `&self`.
            unsafe {
                std::slice::from_raw_parts(
                    chunk.as_ptr().cast::<MaybeUninit<TreeNode>>(),
                    chunk.capacity(),
                )
            }
        })
    }
}

impl NodeStore for ChunkStore {
    fn alloc(&mut self, node: TreeNode) -> Result<TreeNodeId, TreeNode> {
        self.allocated += 1;
        if let Some(id) = self.free.pop() {
            *self.get_mut(id) = node;
            return Ok(id);
        }
        while self.cursor < self.chunks.len() && self.chunks[self.cursor].nodes.len() == CHUNK_NODES
        {
            self.cursor += 1;
        }
        if self.cursor == self.chunks.len() {
            let nodes = self.new_chunk();
            self.chunks.push(Chunk {
                nodes,
                prefaulted: false,
            });
        }
        let index = self.cursor;
        let chunk = &mut self.chunks[index].nodes;
        chunk.push(node);
        Ok(TreeNodeId(
            ((index << CHUNK_SHIFT) + chunk.len() - 1) as u32,
        ))
    }

    fn free(&mut self, id: TreeNodeId) {
        self.allocated -= 1;
        self.free.push(id);
    }

    #[inline]
    fn get(&self, id: TreeNodeId) -> &TreeNode {
        &self.chunks[id.index() >> CHUNK_SHIFT].nodes[id.index() & (CHUNK_NODES - 1)]
    }

    #[inline]
    fn get_mut(&mut self, id: TreeNodeId) -> &mut TreeNode {
        &mut self.chunks[id.index() >> CHUNK_SHIFT].nodes[id.index() & (CHUNK_NODES - 1)]
    }

    fn available(&self) -> usize {
        usize::MAX
    }

    fn allocated(&self) -> usize {
        self.allocated
    }

    /// Bytes the tree has touched: the node slots handed out so far (freed
    /// ones included) plus the whole of every chunk `reserve` pre-faulted.
    /// Chunk capacity never used and never reserved is address space only.
    fn bytes(&self) -> usize {
        let nodes: usize = self
            .chunks
            .iter()
            .map(|c| {
                if c.prefaulted {
                    CHUNK_NODES
                } else {
                    c.nodes.len()
                }
            })
            .sum();
        nodes * size_of::<TreeNode>()
    }
}

/// Asking the kernel for transparent huge pages on tree chunks: lookups walk
/// a tree far larger than the TLB covers with 4 KiB pages, and on kernels
/// whose THP mode is `madvise` nothing is huge unless asked for.
mod huge_pages {
    /// Advises huge pages for the whole pages inside `area`. Best effort:
    /// errors (no THP, old kernel) leave ordinary pages.
    #[cfg(all(target_os = "linux", not(miri)))]
    pub(super) fn advise<T>(area: &mut [T]) {
        const PAGE: usize = 4096;
        let start = area.as_mut_ptr() as usize;
        let end = start + std::mem::size_of_val(area);
        let first = start.next_multiple_of(PAGE);
        let last = end / PAGE * PAGE;
        if last > first {
            // SAFETY: `first..last` lies inside `area`, memory this process
            // owns for the lifetime of the call; MADV_HUGEPAGE only changes
            // the kernel's page-size policy for the range and never its
            // contents or mapping, so no Rust reference is invalidated.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }

    #[cfg(not(all(target_os = "linux", not(miri))))]
    pub(super) fn advise<T>(_area: &mut [T]) {}
}

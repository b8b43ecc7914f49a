//! Where an index's memory really is: a diagnostic that asks the kernel on
//! which NUMA nodes the pages of each node's slot buffers and shard trees
//! sit, so placement can be proven rather than assumed (`cargo xtask
//! numa-vm` checks it inside a multi-node VM). Not on any ingest path.
//!
//! Every slot buffer and every chunk of a shard's block arena (hot and
//! frozen blocks are pieces of it) is bound to its node before its first
//! touch, and [`Builder::reserve_records`](crate::Builder::reserve_records)
//! also touches them from a thread pinned there, so their resident pages
//! should all be on that node, whoever wrote, read or freed them (a bound
//! area is one Linux's automatic NUMA balancing leaves alone). Only pages
//! wholly inside a slot buffer are asked about (the first and last page of
//! a heap allocation can hold other data, touched first by any thread);
//! for blocks, the page where each starts.

use crate::storage::BlockMemory;
use std::collections::BTreeSet;

use crate::topology::{NodeId, Topology};
use crate::{Error, Index};

/// Page granularity of the location query, in bytes (the x86-64 and arm64
/// base page; larger pages are multiples of it).
const PAGE_BYTES: usize = 4096;

/// Blocks whose page is looked up, per node (one system call each).
const MAX_BLOCKS_LOCATED: usize = 4096;

/// Where one node's memory is, as reported by [`Index::memory_placement`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeMemory {
    /// Plan index of the node (an index into [`Plan::nodes`](crate::Plan::nodes)).
    pub node: usize,
    /// The node's id: where its memory belongs.
    pub node_id: NodeId,
    /// Free slot buffers examined (slots held by live writers are not).
    pub slots: usize,
    /// Nodes holding resident pages of those slot buffers, ascending; empty
    /// when none is resident.
    pub slot_pages: Vec<NodeId>,
    /// Hot column blocks examined (each series' newest, appended to in
    /// place), over all of the node's shards (at most 4,096 per node).
    pub blocks: usize,
    /// Nodes holding the pages where those blocks start, ascending; empty
    /// when none is resident. Hot blocks' words are pieces of their
    /// shard's chunks, bound to the node before their first touch (as
    /// frozen blocks are), whichever thread merges, reads or frees them.
    pub block_pages: Vec<NodeId>,
    /// Frozen (encoded) blocks examined (at most 4,096 per node).
    pub frozen_blocks: usize,
    /// Nodes holding the pages where those start, ascending. Frozen blocks
    /// are pieces of their shard's chunks, which are bound to the node
    /// before their first touch, whoever frees and reuses a piece.
    pub frozen_block_pages: Vec<NodeId>,
}

impl NodeMemory {
    /// Whether every resident page examined is on [`node_id`](Self::node_id)
    /// (true when nothing is resident).
    pub fn is_local(&self) -> bool {
        self.slot_pages
            .iter()
            .chain(&self.block_pages)
            .chain(&self.frozen_block_pages)
            .all(|&n| n == self.node_id)
    }
}

impl Index {
    /// For each node of the plan, the nodes on which the resident pages of
    /// its free slot buffers, its hot blocks and its frozen blocks are.
    ///
    /// Walks each shard's series (taking its reserve's lock) and the slot
    /// pool (its lock) in turn, so it may run during ingest; call it after [`flush`](Index::flush) with no
    /// writer alive to see every slot.
    ///
    /// # Errors
    /// [`Error::Binding`] when the topology cannot report page locations
    /// (not this system, or an OS without the query).
    pub fn memory_placement(&self) -> Result<Vec<NodeMemory>, Error> {
        let topology = self.topology();
        let mut out = Vec::with_capacity(self.plan().node_count());
        for (node, plan) in self.pipelines().nodes.iter().zip(self.plan().nodes()) {
            let mut slot_pages = BTreeSet::new();
            let mut result = Ok(());
            let slots = node.slots.for_each_free_buffer(|buffer| {
                if result.is_ok() {
                    result = locate(topology, &mut slot_pages, buffer);
                }
            });
            result?;
            let (mut block_pages, mut frozen_block_pages) = (BTreeSet::new(), BTreeSet::new());
            let (mut blocks, mut frozen_blocks) = (0, 0);
            let mut result = Ok(());
            for shard in &node.shards {
                shard.storage.for_each_block(|block| {
                    if result.is_err() {
                        return;
                    }
                    // The page of the block's first word: a block is
                    // smaller than a page or not page aligned, and lies
                    // in a chunk bound to the node.
                    match block {
                        BlockMemory::Hot(words) if blocks < MAX_BLOCKS_LOCATED => {
                            blocks += 1;
                            result = topology
                                .memory_location(&words[..1])
                                .map(|nodes| block_pages.extend(nodes));
                        }
                        BlockMemory::Frozen(bytes) if frozen_blocks < MAX_BLOCKS_LOCATED => {
                            frozen_blocks += 1;
                            result = topology
                                .memory_location(&bytes[..1])
                                .map(|nodes| frozen_block_pages.extend(nodes));
                        }
                        _ => {}
                    }
                });
            }
            result?;
            out.push(NodeMemory {
                node: node.index,
                node_id: plan.node,
                slots,
                slot_pages: slot_pages.into_iter().collect(),
                blocks,
                block_pages: block_pages.into_iter().collect(),
                frozen_blocks,
                frozen_block_pages: frozen_block_pages.into_iter().collect(),
            });
        }
        Ok(out)
    }
}

/// Adds the nodes holding `area`'s resident whole pages to `found`.
fn locate<T>(topology: &Topology, found: &mut BTreeSet<NodeId>, area: &[T]) -> Result<(), Error> {
    found.extend(topology.memory_location(whole_pages(area))?);
    Ok(())
}

/// The elements of `area` that lie on pages wholly inside it.
fn whole_pages<T>(area: &[T]) -> &[T] {
    let size = size_of::<T>();
    if size == 0 || area.is_empty() {
        return &[];
    }
    let start = area.as_ptr().addr();
    let end = start + size_of_val(area);
    let first_page = start.next_multiple_of(PAGE_BYTES);
    let past_last_page = end - end % PAGE_BYTES;
    if first_page >= past_last_page {
        return &[];
    }
    let from = (first_page - start).div_ceil(size);
    let to = (past_last_page - start) / size;
    &area[from..to.max(from)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_pages_keeps_only_elements_on_pages_inside_the_area() {
        let buffer = vec![0u8; 4 * PAGE_BYTES];
        let page = buffer.as_ptr().addr().next_multiple_of(PAGE_BYTES) - buffer.as_ptr().addr();
        // From 10 bytes before a page to 10 bytes past the next one: one whole page.
        let area = &buffer[page + PAGE_BYTES - 10..page + 2 * PAGE_BYTES + 10];
        let inner = whole_pages(area);
        assert_eq!(inner.len(), PAGE_BYTES);
        assert_eq!(inner.as_ptr().addr() % PAGE_BYTES, 0);
        // Less than a page, or straddling one boundary only: nothing.
        assert!(whole_pages(&buffer[page + 1..page + PAGE_BYTES]).is_empty());
        assert!(whole_pages(&buffer[page + 100..page + PAGE_BYTES + 100]).is_empty());
        assert!(whole_pages::<u8>(&[]).is_empty());
    }

    #[test]
    fn whole_pages_of_wide_elements_start_and_end_inside_whole_pages() {
        let buffer = vec![[0u8; 24]; 1024];
        let (start, end) = (buffer.as_ptr().addr(), buffer.as_ptr().addr() + 24 * 1024);
        let inner = whole_pages(&buffer);
        let (from, to) = (
            inner.as_ptr().addr(),
            inner.as_ptr().addr() + size_of_val(inner),
        );
        assert!(
            from >= start.next_multiple_of(PAGE_BYTES),
            "{from:#x} {start:#x}"
        );
        assert!(from - start.next_multiple_of(PAGE_BYTES) < 24);
        assert!(to <= end - end % PAGE_BYTES && end - end % PAGE_BYTES - to < 24);
    }

    #[test]
    fn a_node_with_no_resident_pages_counts_as_local() {
        let memory = NodeMemory {
            node: 0,
            node_id: NodeId::new(1),
            slots: 0,
            slot_pages: Vec::new(),
            blocks: 0,
            block_pages: vec![NodeId::new(1)],
            frozen_blocks: 0,
            frozen_block_pages: Vec::new(),
        };
        assert!(memory.is_local());
        let remote = NodeMemory {
            slot_pages: vec![NodeId::new(0), NodeId::new(1)],
            ..memory
        };
        assert!(!remote.is_local());
    }
}

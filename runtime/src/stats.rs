//! Counters the pipeline keeps and the [`Stats`] snapshot users read.
//!
//! Counters are updated per slot (seal, merge), never per record, so they
//! cost the insert path nothing.

use std::fmt;
use std::time::Duration;

use crate::sync::{AtomicU64, AtomicUsize, Ordering};

/// Live counters of one node.
#[derive(Debug, Default)]
pub(crate) struct NodeCounters {
    pub(crate) records_accepted: AtomicU64,
    pub(crate) records_merged: AtomicU64,
    pub(crate) slots_sealed: AtomicU64,
    pub(crate) slots_merged: AtomicU64,
    pub(crate) backpressure_waits: AtomicU64,
    pub(crate) helped_merges: AtomicU64,
    pub(crate) blocked_ns: AtomicU64,
    pub(crate) alloc_failures: AtomicU64,
    pub(crate) merge_busy_ns: AtomicU64,
    pub(crate) local_records: AtomicU64,
    pub(crate) remote_records: AtomicU64,
    pub(crate) unpinned_records: AtomicU64,
    pub(crate) tree_bytes: AtomicUsize,
}

/// A snapshot of one node's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Records accepted by writers and sealed into slots for this node.
    pub records_accepted: u64,
    /// Records of merged slots (duplicates within a slot count once).
    pub records_merged: u64,
    /// Slots sealed and handed to the merge pool.
    pub slots_sealed: u64,
    /// Slots merged into the trees.
    pub slots_merged: u64,
    /// Times a writer found no free slot (it then helped merge, or parked).
    pub backpressure_waits: u64,
    /// Slots merged by writers that found no free slot, instead of idling.
    pub helped_merges: u64,
    /// Total time writers spent without a slot (helping or parked).
    pub blocked: Duration,
    /// Records that could not be buffered. Exists to prove it stays 0:
    /// writers wait instead of failing.
    pub alloc_failures: u64,
    /// Wall time merge threads spent sorting and merging slots.
    pub merge_busy: Duration,
    /// Records written by writer threads pinned to this node.
    pub local_records: u64,
    /// Records written by writer threads pinned to another node.
    pub remote_records: u64,
    /// Records written by writers not pinned to any node.
    pub unpinned_records: u64,
    /// Bytes held by this node's shard trees.
    pub tree_bytes: usize,
    /// Bytes held by this node's slot buffers.
    pub slot_bytes: usize,
    /// Distinct keys stored on this node.
    pub keys: usize,
}

impl NodeCounters {
    pub(crate) fn snapshot(&self, keys: usize, slot_bytes: usize) -> NodeStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NodeStats {
            records_accepted: get(&self.records_accepted),
            records_merged: get(&self.records_merged),
            slots_sealed: get(&self.slots_sealed),
            slots_merged: get(&self.slots_merged),
            backpressure_waits: get(&self.backpressure_waits),
            helped_merges: get(&self.helped_merges),
            blocked: Duration::from_nanos(get(&self.blocked_ns)),
            alloc_failures: get(&self.alloc_failures),
            merge_busy: Duration::from_nanos(get(&self.merge_busy_ns)),
            local_records: get(&self.local_records),
            remote_records: get(&self.remote_records),
            unpinned_records: get(&self.unpinned_records),
            tree_bytes: self.tree_bytes.load(Ordering::Relaxed),
            slot_bytes,
            keys,
        }
    }
}

/// What the index has done, summed over nodes, with the per-node detail.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Sums over all nodes.
    pub total: NodeStats,
    /// One entry per node of the plan, in plan order.
    pub nodes: Vec<NodeStats>,
}

impl Stats {
    pub(crate) fn from_nodes(nodes: Vec<NodeStats>) -> Stats {
        let mut t = NodeStats::default();
        for n in &nodes {
            t.records_accepted += n.records_accepted;
            t.records_merged += n.records_merged;
            t.slots_sealed += n.slots_sealed;
            t.slots_merged += n.slots_merged;
            t.backpressure_waits += n.backpressure_waits;
            t.helped_merges += n.helped_merges;
            t.blocked += n.blocked;
            t.alloc_failures += n.alloc_failures;
            t.merge_busy += n.merge_busy;
            t.local_records += n.local_records;
            t.remote_records += n.remote_records;
            t.unpinned_records += n.unpinned_records;
            t.tree_bytes += n.tree_bytes;
            t.slot_bytes += n.slot_bytes;
            t.keys += n.keys;
        }
        Stats { total: t, nodes }
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.total;
        writeln!(
            f,
            "keys {} | accepted {} merged {} records | slots sealed {} merged {}",
            t.keys, t.records_accepted, t.records_merged, t.slots_sealed, t.slots_merged
        )?;
        writeln!(
            f,
            "backpressure waits {} (helped merge {}) blocked {:.3?} | alloc_failures {} | merge busy {:.3?}",
            t.backpressure_waits, t.helped_merges, t.blocked, t.alloc_failures, t.merge_busy
        )?;
        write!(
            f,
            "records local {} remote {} unpinned {} | tree {:.1} MiB slots {:.1} MiB",
            t.local_records,
            t.remote_records,
            t.unpinned_records,
            t.tree_bytes as f64 / (1 << 20) as f64,
            t.slot_bytes as f64 / (1 << 20) as f64
        )
    }
}

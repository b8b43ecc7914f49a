//! Counters the pipeline keeps and the [`Stats`] snapshot users read.
//!
//! Counters are updated per slot (seal, sort, merge of a shard's part),
//! never per record, so they cost the insert path nothing. Each is moved by
//! a different step, so they check one another: every record a writer
//! seals (`records_accepted`, counted at seal) is, once merged, either a
//! new key or an update of a key (counted from what the tree merge reports)
//! or superseded by a later insert of its key in the same slot (counted by
//! the sort); until then it is in flight. [`Stats::verify_accounting`]
//! checks that these add up.

use std::fmt;
use std::time::Duration;

use crate::sync::{AtomicU64, Ordering};
use crate::Error;

/// Live counters of one node.
#[derive(Debug, Default)]
pub(crate) struct NodeCounters {
    pub(crate) records_accepted: AtomicU64,
    pub(crate) records_inserted: AtomicU64,
    pub(crate) records_updated: AtomicU64,
    pub(crate) records_superseded: AtomicU64,
    pub(crate) records_in_flight: AtomicU64,
    pub(crate) records_expired: AtomicU64,
    pub(crate) points_dropped: AtomicU64,
    pub(crate) slots_sealed: AtomicU64,
    pub(crate) slots_merged: AtomicU64,
    pub(crate) backpressure_waits: AtomicU64,
    pub(crate) helped_merges: AtomicU64,
    pub(crate) helps_declined: AtomicU64,
    pub(crate) priority_refusals: AtomicU64,
    pub(crate) blocked_ns: AtomicU64,
    pub(crate) memory_waits: AtomicU64,
    pub(crate) memory_blocked_ns: AtomicU64,
    pub(crate) merge_busy_ns: AtomicU64,
    pub(crate) local_records: AtomicU64,
    pub(crate) remote_records: AtomicU64,
    pub(crate) unpinned_records: AtomicU64,
}

/// A snapshot of one node's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Records writers sealed into slots for this node (counted when the
    /// slot is handed over; records still in a writer's open slot are not
    /// counted yet: see [`Writer::buffered`](crate::Writer::buffered)).
    pub records_accepted: u64,
    /// Records that added a new key to a shard tree.
    pub records_inserted: u64,
    /// Records that replaced the value of a key already in a shard tree.
    pub records_updated: u64,
    /// Records dropped by their slot's sort because a later insert of the
    /// same key in the same slot won.
    pub records_superseded: u64,
    /// Records of slots sealed but not yet fully merged.
    pub records_in_flight: u64,
    /// Records not merged because they were older than the retention
    /// floor when their slot was merged
    /// ([`Index::drop_before`](crate::Index::drop_before),
    /// [`Builder::retain`](crate::Builder::retain)).
    pub records_expired: u64,
    /// Points removed by retention after they were merged
    /// ([`Index::drop_before`](crate::Index::drop_before),
    /// [`Index::drop_series`](crate::Index::drop_series),
    /// [`Builder::retain`](crate::Builder::retain)); `keys` went down by
    /// as much.
    pub points_dropped: u64,
    /// Slots sealed and handed to the merge pool.
    pub slots_sealed: u64,
    /// Slots merged into the trees.
    pub slots_merged: u64,
    /// Times a writer found no free slot (it then helped merge, or parked).
    /// Besides slot shortage a writer waits only for memory
    /// (`memory_waits`).
    pub backpressure_waits: u64,
    /// Slots merged by writers that found no free slot, instead of idling.
    pub helped_merges: u64,
    /// Times a writer that found no free slot parked instead of helping,
    /// because every helper seat of the node was taken
    /// ([`Builder::merge_helpers_per_node`](crate::Builder::merge_helpers_per_node),
    /// by default one per writer CPU), whether or not a slot was queued: a
    /// helper preempted by another writer would hold up every slot behind
    /// it.
    pub helps_declined: u64,
    /// Times a merge thread (once, at its start) or a writer helping with
    /// a merge (once per merge) was refused the merge priority
    /// ([`Builder::merge_nice`](crate::Builder::merge_nice)): the system
    /// does not let it raise its priority (`CAP_SYS_NICE` or `RLIMIT_NICE`
    /// needed) or has no per-thread nice (not Linux), so it merged at its
    /// own. 0 without the setting.
    pub priority_refusals: u64,
    /// Total time writers spent without a slot (helping or parked).
    pub blocked: Duration,
    /// Times a writer needing a slot for this node found the
    /// [memory budget](crate::Builder::memory_budget) spent (it then had
    /// retention catch up, and failed or waited); counted when found, so
    /// it also counts writers waiting now.
    pub memory_waits: u64,
    /// Total time those writers spent on it: the catch-up, and waiting
    /// for memory ([`Builder::wait_for_memory`](crate::Builder::wait_for_memory)).
    pub memory_blocked: Duration,
    /// Wall time (not CPU time from the OS) that merge threads and helping
    /// writers spent merging slots: sorting, applying each shard's part
    /// (readers take no lock; a part may wait for the one before it in the
    /// shard's seal order) and merging into the series' blocks. Parts of a
    /// slot applied by another thread's lane count toward that thread's
    /// merge.
    pub merge_busy: Duration,
    /// Records written by writer threads pinned to this node.
    pub local_records: u64,
    /// Records written by writer threads pinned to another node.
    pub remote_records: u64,
    /// Records written by writers not pinned to any node.
    pub unpinned_records: u64,
    /// Bytes of series storage: column blocks (including those reserved
    /// and touched ahead by
    /// [`Builder::reserve_records`](crate::Builder::reserve_records), and
    /// with freezing on the arena chunks it reserves for frozen blocks,
    /// until they start them), block-index versions and series
    /// directories. Free memory in the blocks' chunks (holes that replaced
    /// blocks left, the rest of the chunk being carved) is not in it:
    /// [`mapped_bytes`](crate::mapped_bytes) counts the chunks whole.
    pub tree_bytes: usize,
    /// Bytes of this node's slot buffers (every slot allocated, free or in
    /// use; slots are touched when allocated).
    pub slot_bytes: usize,
    /// Bytes of this node's sort scratches: a slot's records and a 256 KiB
    /// count table each, shared by the node's merge threads and the writers
    /// that help them: as many as ever sorted at once, up to one per slot
    /// that may be in flight
    /// ([`Builder::slots_per_node`](crate::Builder::slots_per_node)) kept
    /// after (and made ahead by
    /// [`Builder::reserve_records`](crate::Builder::reserve_records)).
    pub scratch_bytes: usize,
    /// Distinct keys stored on this node: its points.
    pub keys: usize,
    /// Bytes of frozen (compressed) blocks, part of `tree_bytes`.
    pub frozen_bytes: usize,
    /// Bytes retention has freed so far (what the versions and blocks it
    /// replaced held, less what replaced them): `tree_bytes` went down by
    /// as much, whatever ingest added meanwhile.
    pub retention_freed_bytes: usize,
    /// Points in frozen blocks, part of `keys`.
    pub frozen_points: usize,
}

impl NodeStats {
    /// Records merged into the trees: new keys plus updates.
    pub fn records_merged(&self) -> u64 {
        self.records_inserted + self.records_updated
    }

    /// Bytes of series storage per point stored (0 when empty).
    pub fn bytes_per_point(&self) -> f64 {
        ratio(self.tree_bytes, self.keys)
    }

    /// Bytes per point of frozen blocks.
    pub fn frozen_bytes_per_point(&self) -> f64 {
        ratio(self.frozen_bytes, self.frozen_points)
    }

    /// Bytes per point of everything else: hot blocks (the newest of each
    /// series, with their room to grow), block indexes, directories and
    /// reserved blocks.
    pub fn hot_bytes_per_point(&self) -> f64 {
        ratio(
            self.tree_bytes.saturating_sub(self.frozen_bytes),
            self.keys.saturating_sub(self.frozen_points),
        )
    }
}

fn ratio(bytes: usize, points: usize) -> f64 {
    if points == 0 {
        0.0
    } else {
        bytes as f64 / points as f64
    }
}

impl NodeCounters {
    pub(crate) fn snapshot(
        &self,
        keys: usize,
        slot_bytes: usize,
        scratch_bytes: usize,
        tree_bytes: usize,
        (frozen_bytes, frozen_points): (usize, usize),
        retention_freed_bytes: usize,
    ) -> NodeStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NodeStats {
            records_accepted: get(&self.records_accepted),
            records_inserted: get(&self.records_inserted),
            records_updated: get(&self.records_updated),
            records_superseded: get(&self.records_superseded),
            records_in_flight: get(&self.records_in_flight),
            records_expired: get(&self.records_expired),
            points_dropped: get(&self.points_dropped),
            slots_sealed: get(&self.slots_sealed),
            slots_merged: get(&self.slots_merged),
            backpressure_waits: get(&self.backpressure_waits),
            helped_merges: get(&self.helped_merges),
            helps_declined: get(&self.helps_declined),
            priority_refusals: get(&self.priority_refusals),
            blocked: Duration::from_nanos(get(&self.blocked_ns)),
            memory_waits: get(&self.memory_waits),
            memory_blocked: Duration::from_nanos(get(&self.memory_blocked_ns)),
            merge_busy: Duration::from_nanos(get(&self.merge_busy_ns)),
            local_records: get(&self.local_records),
            remote_records: get(&self.remote_records),
            unpinned_records: get(&self.unpinned_records),
            tree_bytes,
            slot_bytes,
            scratch_bytes,
            keys,
            frozen_bytes,
            frozen_points,
            retention_freed_bytes,
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
            t.records_inserted += n.records_inserted;
            t.records_updated += n.records_updated;
            t.records_superseded += n.records_superseded;
            t.records_in_flight += n.records_in_flight;
            t.records_expired += n.records_expired;
            t.points_dropped += n.points_dropped;
            t.frozen_bytes += n.frozen_bytes;
            t.frozen_points += n.frozen_points;
            t.retention_freed_bytes += n.retention_freed_bytes;
            t.slots_sealed += n.slots_sealed;
            t.slots_merged += n.slots_merged;
            t.backpressure_waits += n.backpressure_waits;
            t.helped_merges += n.helped_merges;
            t.helps_declined += n.helps_declined;
            t.priority_refusals += n.priority_refusals;
            t.blocked += n.blocked;
            t.memory_waits += n.memory_waits;
            t.memory_blocked += n.memory_blocked;
            t.merge_busy += n.merge_busy;
            t.local_records += n.local_records;
            t.remote_records += n.remote_records;
            t.unpinned_records += n.unpinned_records;
            t.tree_bytes += n.tree_bytes;
            t.slot_bytes += n.slot_bytes;
            t.scratch_bytes += n.scratch_bytes;
            t.keys += n.keys;
        }
        Stats { total: t, nodes }
    }

    /// Checks, node by node, that every record accepted is accounted for:
    /// `accepted == inserted + updated + superseded + expired + in flight`. The terms
    /// come from independent counters (seal, tree merge, sort, completion),
    /// so a record lost (or applied twice) inside the index shows here.
    /// Exact when no writer is sealing or merging concurrently, e.g. right
    /// after [`Index::flush`](crate::Index::flush) with writers flushed (then
    /// `records_in_flight` is also 0).
    ///
    /// # Errors
    /// [`Error::Unaccounted`] for the first node whose counters disagree.
    pub fn verify_accounting(&self) -> Result<(), Error> {
        for (node, n) in self.nodes.iter().enumerate() {
            let accounted = n.records_inserted
                + n.records_updated
                + n.records_superseded
                + n.records_expired
                + n.records_in_flight;
            if accounted != n.records_accepted {
                return Err(Error::Unaccounted {
                    node,
                    accepted: n.records_accepted,
                    inserted: n.records_inserted,
                    updated: n.records_updated,
                    superseded: n.records_superseded,
                    expired: n.records_expired,
                    in_flight: n.records_in_flight,
                    accounted,
                });
            }
        }
        Ok(())
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.total;
        writeln!(
            f,
            "keys {} | records accepted {} = inserted {} + updated {} + superseded {} + expired {} + in flight {} | points dropped {}",
            t.keys,
            t.records_accepted,
            t.records_inserted,
            t.records_updated,
            t.records_superseded,
            t.records_expired,
            t.records_in_flight,
            t.points_dropped
        )?;
        writeln!(
            f,
            "slots sealed {} merged {} | backpressure waits {} (helped merge {}, declined {}) blocked {:.3?} | memory waits {} blocked {:.3?} | merge busy (wall) {:.3?}",
            t.slots_sealed,
            t.slots_merged,
            t.backpressure_waits,
            t.helped_merges,
            t.helps_declined,
            t.blocked,
            t.memory_waits,
            t.memory_blocked,
            t.merge_busy
        )?;
        write!(
            f,
            "records local {} remote {} unpinned {} | tree {:.1} MiB ({:.2} B/point; frozen {:.1} MiB, {} points, {:.2} B/point) slots {:.1} MiB, sort scratch {:.1} MiB",
            t.local_records,
            t.remote_records,
            t.unpinned_records,
            t.tree_bytes as f64 / (1 << 20) as f64,
            t.bytes_per_point(),
            t.frozen_bytes as f64 / (1 << 20) as f64,
            t.frozen_points,
            t.frozen_bytes_per_point(),
            t.slot_bytes as f64 / (1 << 20) as f64,
            t.scratch_bytes as f64 / (1 << 20) as f64
        )
    }
}

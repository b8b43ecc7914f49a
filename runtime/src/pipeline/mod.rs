//! The ingest pipelines, one per NUMA node of the plan: where a sealed
//! slot goes, how it is merged, and how writers wait for room.
//!
//! - `node`: one node's pipeline and the writer protocol around it
//!   (acquire a slot, submit it sealed, help merge under backpressure);
//! - `merge`: the merge of one slot (sort, then hand each shard its part);
//! - `scratch`: the node's pool of sort scratches, shared by whoever sorts;
//! - `shard`: a shard's tree and the lane that applies parts in seal order;
//! - `executor`: who runs merge jobs (a pinned rayon pool per node, or
//!   model threads under loom/shuttle).
//!
//! [`Pipelines`] is what writers and the index share: the plan (which node
//! and shard own a series), one [`NodePipeline`] per node, the health flags
//! and the memory budget.

mod executor;
mod merge;
mod node;
mod scratch;
mod shard;

#[cfg(all(test, any(loom, shuttle)))]
pub(crate) use executor::Job;
pub(crate) use executor::{merge_pool, Executor};
pub use node::{MergeEvent, MergeHook};
pub(crate) use node::{NodePipeline, NodeSetup, Origin};

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use crate::health::{panic_message, Health};
use crate::plan::Plan;
use crate::slot::Slot;
use crate::sync::{Arc, Ordering};
use crate::Error;
use node::nanos;

/// Every node's pipeline, and the rules for reaching them.
#[derive(Debug)]
pub(crate) struct Pipelines {
    pub(crate) plan: Plan,
    pub(crate) nodes: Vec<Arc<NodePipeline>>,
    pub(crate) health: Arc<Health>,
    /// Bytes of trees and slots above which no new slot is handed out.
    pub(crate) memory_budget: Option<usize>,
    /// Whether a writer over the budget waits for retention to free room
    /// (else it gets `Error::MemoryBudget`).
    pub(crate) wait_for_memory: bool,
}

impl Pipelines {
    /// A slot for node `node`, for a writer whose thread is pinned to
    /// `home` (a plan index), if any. Blocks under backpressure.
    ///
    /// # Errors
    /// [`Error::MemoryBudget`] when the budget is spent (unless writers wait
    /// for memory), [`Error::Poisoned`], [`Error::Closed`].
    pub(crate) fn acquire(&self, node: usize, home: Option<usize>) -> Result<Slot, Error> {
        self.health.check()?;
        if let Some(budget) = self.memory_budget {
            if self.memory_used() >= budget {
                let started = Instant::now();
                // Counted when found spent, before the wait: a thread
                // watching the stats can tell that a writer waits.
                let c = &self.nodes[node].counters;
                c.memory_waits.fetch_add(1, Ordering::Relaxed);
                let made = self.make_room(budget);
                c.memory_blocked_ns
                    .fetch_add(nanos(started.elapsed()), Ordering::Relaxed);
                made?;
            }
        }
        self.nodes[node].acquire(origin(node, home))
    }

    /// For a writer over the memory budget: has retention catch up with
    /// the newest points merged (the merges' sweeps wait for the horizon
    /// to move by a sixteenth of the window, which it does not while
    /// writers wait), and returns once the trees and slots hold less than
    /// `budget`; waits for memory to be freed or for merges to finish
    /// (each a chance to catch up again) when writers wait for memory.
    ///
    /// # Errors
    /// [`Error::MemoryBudget`] when it is still spent and writers do not
    /// wait, [`Error::Poisoned`] (also when the catch-up panicked),
    /// [`Error::Closed`].
    fn make_room(&self, budget: usize) -> Result<(), Error> {
        let _over = self.health.over_budget();
        loop {
            // Read first: a wake-up after it is not lost.
            let seen = self.health.memory_seen();
            for node in self.nodes.iter().filter(|n| n.retention_due()) {
                let caught = catch_unwind(AssertUnwindSafe(|| node.catch_up_retention()));
                if let Err(payload) = caught {
                    self.health.poison(panic_message(&*payload));
                    break;
                }
            }
            self.health.check()?;
            let used = self.memory_used();
            if used < budget {
                return Ok(());
            }
            if !self.wait_for_memory {
                return Err(Error::MemoryBudget { budget, used });
            }
            self.health.wait_for_memory_since(seen)?;
        }
    }

    /// Seals `slot` and hands it to node `node`'s merges.
    ///
    /// # Errors
    /// [`Error::Poisoned`]: the slot's records were not accepted.
    pub(crate) fn submit(&self, node: usize, slot: Slot, home: Option<usize>) -> Result<(), Error> {
        self.nodes[node].submit(slot, origin(node, home))
    }

    /// Bytes of trees and slots over all nodes: what the budget limits.
    pub(crate) fn memory_used(&self) -> usize {
        self.nodes.iter().map(|n| n.memory_used()).sum()
    }

    /// Returns once every slot sealed before the call is merged.
    ///
    /// # Errors
    /// [`Error::Poisoned`] when a merge panicked.
    pub(crate) fn flush(&self) -> Result<(), Error> {
        for node in &self.nodes {
            node.flush.barrier(&self.health)?;
            // Ingest paused here: the merges' spare blocks go back
            // (unless a merge is running: then ingest goes on).
            for shard in &node.shards {
                shard.storage.release_spare();
            }
        }
        Ok(())
    }
}

/// Where a writer pinned to `home` stands relative to node `node`.
fn origin(node: usize, home: Option<usize>) -> Origin {
    match home {
        Some(h) if h == node => Origin::Local,
        Some(_) => Origin::Remote,
        None => Origin::Unpinned,
    }
}

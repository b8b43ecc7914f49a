//! Slots in the runtime: fixed-capacity record buffers and the bounded,
//! blocking per-node pool they come from.
//!
//! A slot's life: free (in the pool) -> filling (owned by one writer) ->
//! sealed (queued on its node's merge pool) -> merging -> free again. The
//! pool bounds how many slots exist per node, so memory is bounded; a writer
//! that finds none free first helps merge its node's sealed slots (when one
//! of the node's helper seats is free: see `pipeline/node.rs`), then spins
//! briefly, then parks on the pool's condition variable until a merge
//! returns one. It never drops a record.
//!
//! Deadlock freedom: every registered writer may hold one filling slot per
//! node, so the pool's limit is `in_flight + writers`. At least `in_flight`
//! slots are therefore always free, sealed or merging, and a waiting writer
//! waits only for merges, which always finish (or poison the index, which
//! wakes it with an error): every sealed slot was handed a merge job, so a
//! writer that parks without helping still has its wait ended.

use numatree_core::{Record, SlotBuffer};

use crate::health::Health;
use crate::sync::{lock, Arc, Backoff, Condvar, Mutex};
use crate::topology::{NodeId, Topology};
use crate::Error;

/// A record buffer of fixed capacity destined for one node: core's
/// [`SlotBuffer`] over a heap buffer whose length (the capacity) is chosen
/// at run time and whose pages are bound to the node.
pub(crate) type Slot = SlotBuffer<Box<[Record]>>;

/// Allocates a slot whose pages are bound to the binder's node before the
/// first touch, then touches them all (zero fill), so later pushes fault
/// nothing.
fn new_slot(capacity: usize, binder: &Binder) -> Slot {
    SlotBuffer::with_storage(slot_storage(capacity, binder))
}

/// A slot's storage: `capacity` records bound to the binder's node before
/// the first touch, then zero-filled (also the merges' sort scratch, which
/// trades storage with the slots it sorts).
pub(crate) fn slot_storage(capacity: usize, binder: &Binder) -> Box<[Record]> {
    let mut records = Vec::with_capacity(capacity);
    binder.bind(records.spare_capacity_mut());
    records.resize(capacity, Record::ZERO);
    records.into_boxed_slice()
}

/// Binds fresh memory to a node, when binding is applied.
#[derive(Clone, Debug)]
pub(crate) struct Binder {
    pub(crate) topology: Option<Arc<Topology>>,
    pub(crate) node: NodeId,
}

impl Default for Binder {
    /// Binds nothing: pages are placed by first touch.
    fn default() -> Self {
        Binder {
            topology: None,
            node: NodeId::new(0),
        }
    }
}

impl Binder {
    pub(crate) fn bind<T>(&self, area: &[T]) {
        if let Some(topology) = &self.topology {
            // Binding is best effort: on failure pages fall back to first touch.
            let _ = topology.bind_memory(area, self.node);
        }
    }
}

#[derive(Debug)]
struct PoolState {
    free: Vec<Slot>,
    /// Slots allowed to exist: in-flight slots plus one per registered writer.
    limit: usize,
    /// Slots that exist now (free, filling, sealed or merging).
    existing: usize,
}

/// What [`SlotPool::take`] grants.
enum Taken {
    Free(Slot),
    /// Room under the limit: the caller allocates a new slot.
    Create,
}

/// The bounded pool of one node's slots.
#[derive(Debug)]
pub(crate) struct SlotPool {
    state: Mutex<PoolState>,
    returned: Condvar,
    capacity: usize,
    binder: Binder,
    /// Negative control for the model tests: `release` skips its wake-up.
    #[cfg(test)]
    pub(crate) mutant_release_skips_notify: std::sync::atomic::AtomicBool,
}

impl SlotPool {
    pub(crate) fn new(capacity: usize, in_flight: usize, binder: Binder) -> Self {
        SlotPool {
            state: Mutex::new(PoolState {
                free: Vec::new(),
                limit: in_flight,
                existing: 0,
            }),
            returned: Condvar::new(),
            capacity,
            binder,
            #[cfg(test)]
            mutant_release_skips_notify: Default::default(),
        }
    }

    /// Bytes of one slot's records.
    pub(crate) fn slot_bytes(&self) -> usize {
        self.capacity * size_of::<Record>()
    }

    /// Slots that exist now.
    pub(crate) fn existing(&self) -> usize {
        lock(&self.state).existing
    }

    /// A writer joined: it may hold one more slot.
    pub(crate) fn register_writer(&self) {
        lock(&self.state).limit += 1;
    }

    /// A writer left (after sealing its slot); returns whether a slot
    /// was freed (memory the budget counted).
    pub(crate) fn unregister_writer(&self) -> bool {
        let mut state = lock(&self.state);
        state.limit -= 1;
        let freed = state.existing > state.limit && state.free.pop().is_some();
        if freed {
            state.existing -= 1;
        }
        freed
    }

    /// Creates the pool's in-flight slots now, touching every page: called
    /// from a thread pinned to the node, so first touch places them there.
    pub(crate) fn reserve(&self) {
        loop {
            {
                let mut state = lock(&self.state);
                if state.existing >= state.limit {
                    return;
                }
                state.existing += 1;
            }
            let slot = new_slot(self.capacity, &self.binder);
            lock(&self.state).free.push(slot);
        }
    }

    /// Waits for a slot: spins briefly, then parks until a merge returns
    /// one. Fails only when the index is poisoned or closed.
    pub(crate) fn wait_for_slot(&self, health: &Health) -> Result<Slot, Error> {
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            if let Some(slot) = self.try_acquire() {
                return Ok(slot);
            }
            health.check()?;
            backoff.snooze();
        }
        let mut state = lock(&self.state);
        let taken = loop {
            health.check()?;
            if let Some(taken) = Self::take(&mut state) {
                break taken;
            }
            state = self.returned.wait(state).unwrap_or_else(|e| e.into_inner());
        };
        drop(state);
        Ok(self.finish(taken))
    }

    /// A free slot, or a new one while under the limit; never waits.
    pub(crate) fn try_acquire(&self) -> Option<Slot> {
        let taken = Self::take(&mut lock(&self.state))?;
        Some(self.finish(taken))
    }

    /// A free slot, or the right to create one (counted as existing).
    fn take(state: &mut PoolState) -> Option<Taken> {
        if let Some(slot) = state.free.pop() {
            return Some(Taken::Free(slot));
        }
        if state.existing < state.limit {
            state.existing += 1;
            return Some(Taken::Create);
        }
        None
    }

    /// The slot `take` granted; a new one is allocated and touched here,
    /// outside the pool's lock.
    fn finish(&self, taken: Taken) -> Slot {
        match taken {
            Taken::Free(slot) => slot,
            Taken::Create => new_slot(self.capacity, &self.binder),
        }
    }

    /// Returns an emptied slot and wakes one waiting writer; returns
    /// whether the slot was freed instead (more existed than writers may
    /// hold: one left).
    pub(crate) fn release(&self, mut slot: Slot) -> bool {
        slot.clear();
        let mut state = lock(&self.state);
        let freed = state.existing > state.limit;
        if freed {
            state.existing -= 1;
        } else {
            state.free.push(slot);
        }
        drop(state);
        #[cfg(test)]
        if self
            .mutant_release_skips_notify
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return freed;
        }
        self.returned.notify_one();
        freed
    }

    /// `(free, existing, limit)` slots, for tests that check the pool's
    /// accounting: `free <= existing`, and `existing <= limit` at rest.
    #[cfg(all(test, any(loom, shuttle)))]
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        let state = lock(&self.state);
        (state.free.len(), state.existing, state.limit)
    }

    /// Wakes every parked writer so it re-checks the index's health.
    pub(crate) fn wake_all(&self) {
        let _state = lock(&self.state);
        self.returned.notify_all();
    }

    /// Calls `f` with the whole buffer of every free slot and returns how many there
    /// were: where `placement` looks for the pool's pages.
    pub(crate) fn for_each_free_buffer(&self, mut f: impl FnMut(&[Record])) -> usize {
        let state = lock(&self.state);
        for slot in &state.free {
            debug_assert!(slot.is_empty(), "free slots are cleared on release");
            f(slot.storage());
        }
        state.free.len()
    }
}

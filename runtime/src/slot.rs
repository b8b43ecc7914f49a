//! Slots in the runtime: fixed-capacity record buffers and the bounded,
//! blocking per-node pool they come from.
//!
//! A slot's life: free (in the pool) -> filling (owned by one writer) ->
//! sealed (queued on its node's merge pool) -> merging -> free again. The
//! pool bounds how many slots exist per node, so memory is bounded; a writer
//! that finds none free first helps merge its node's sealed slots, then
//! spins briefly, then parks on the pool's condition variable until a merge
//! returns one. It never drops a record.
//!
//! Deadlock freedom: every registered writer may hold one filling slot per
//! node, so the pool's limit is `in_flight + writers`. At least `in_flight`
//! slots are therefore always free, sealed or merging, and a waiting writer
//! waits only for merges, which always finish (or poison the index, which
//! wakes it with an error).

use std::mem::MaybeUninit;

use numatree_core::Record;

use crate::health::Health;
use crate::sync::{lock, Arc, Backoff, Condvar, Mutex};
use crate::topology::{NodeId, Topology};
use crate::Error;

/// A record buffer of fixed capacity destined for one node.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) records: Vec<Record>,
    pub(crate) capacity: usize,
}

impl Slot {
    /// Allocates a slot whose pages are bound to `node` before first touch.
    fn new(capacity: usize, binder: &Binder) -> Box<Slot> {
        let mut records = Vec::with_capacity(capacity);
        binder.bind(records.spare_capacity_mut());
        Box::new(Slot { records, capacity })
    }

    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.records.len() >= self.capacity
    }

    /// Touches every page of the slot so later writes fault nothing.
    fn prefault(&mut self) {
        for chunk in self
            .records
            .spare_capacity_mut()
            .chunks_mut(4096 / size_of::<Record>())
        {
            chunk[0].write(Record::ZERO);
        }
    }
}

/// Binds fresh memory to a node, when binding is applied.
#[derive(Clone, Debug)]
pub(crate) struct Binder {
    pub(crate) topology: Option<Arc<Topology>>,
    pub(crate) node: NodeId,
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
#[allow(clippy::vec_box)] // slots move between threads as boxes; the pool keeps them boxed
struct PoolState {
    free: Vec<Box<Slot>>,
    /// Slots allowed to exist: in-flight slots plus one per registered writer.
    limit: usize,
    /// Slots that exist now (free, filling, sealed or merging).
    existing: usize,
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

    /// A writer left (after sealing its slot).
    pub(crate) fn unregister_writer(&self) {
        let mut state = lock(&self.state);
        state.limit -= 1;
        if state.existing > state.limit && state.free.pop().is_some() {
            state.existing -= 1;
        }
    }

    /// Creates the pool's in-flight slots now, touching every page: called
    /// from a thread pinned to the node, so first touch places them there.
    pub(crate) fn reserve(&self) {
        let mut state = lock(&self.state);
        while state.existing < state.limit {
            let mut slot = Slot::new(self.capacity, &self.binder);
            slot.prefault();
            state.free.push(slot);
            state.existing += 1;
        }
    }

    /// Waits for a slot: spins briefly, then parks until a merge returns
    /// one. Fails only when the index is poisoned or closed.
    pub(crate) fn wait_for_slot(&self, health: &Health) -> Result<Box<Slot>, Error> {
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            if let Some(slot) = self.try_acquire() {
                return Ok(slot);
            }
            health.check()?;
            backoff.snooze();
        }
        let mut state = lock(&self.state);
        loop {
            health.check()?;
            if let Some(slot) = Self::take(&mut state, self.capacity, &self.binder) {
                return Ok(slot);
            }
            state = self.returned.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// A free slot, or a new one while under the limit; never waits.
    pub(crate) fn try_acquire(&self) -> Option<Box<Slot>> {
        Self::take(&mut lock(&self.state), self.capacity, &self.binder)
    }

    fn take(state: &mut PoolState, capacity: usize, binder: &Binder) -> Option<Box<Slot>> {
        if let Some(slot) = state.free.pop() {
            return Some(slot);
        }
        if state.existing < state.limit {
            state.existing += 1;
            return Some(Slot::new(capacity, binder));
        }
        None
    }

    /// Returns an emptied slot and wakes one waiting writer.
    pub(crate) fn release(&self, mut slot: Box<Slot>) {
        slot.records.clear();
        let mut state = lock(&self.state);
        if state.existing > state.limit {
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
            return;
        }
        self.returned.notify_one();
    }

    /// A slot that will never come back (its merge panicked).
    pub(crate) fn forget(&self) {
        lock(&self.state).existing -= 1;
        self.returned.notify_all();
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

    /// Calls `f` with the whole buffer of every free slot (free slots are
    /// empty, so that is all their capacity) and returns how many there
    /// were: where `placement` looks for the pool's pages.
    pub(crate) fn for_each_free_buffer(&self, mut f: impl FnMut(&[MaybeUninit<Record>])) -> usize {
        let mut state = lock(&self.state);
        for slot in &mut state.free {
            debug_assert!(slot.records.is_empty(), "free slots are cleared on release");
            f(slot.records.spare_capacity_mut());
        }
        state.free.len()
    }
}

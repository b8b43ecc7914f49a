//! Model tests of the slot handoff, backpressure, flush-barrier and poison
//! protocol, run under `loom` (every interleaving, up to a preemption
//! bound) or `shuttle` (random and PCT schedules, larger sizes).
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p numatree --release --lib model
//! RUSTFLAGS="--cfg shuttle" cargo test -p numatree --release --lib model
//! ```
//!
//! The models use the real [`SlotPool`](crate::slot::SlotPool),
//! [`FlushTracker`](crate::flush::FlushTracker), [`Health`] and
//! [`NodeShared`] (its sealed queue and `merge_next`, which sorts a slot,
//! merges it into the shard tree, returns the slot and marks its epoch).
//! Only the rayon pool is replaced: loom cannot drive rayon, so a model
//! merge thread takes one "job" per sealed slot, as `pool.spawn` would run
//! one. Writers do what `Shared::acquire` / `Shared::submit` do, minus the
//! memory budget, the stats and helping (an extra `merge_next` caller,
//! covered by the stress run).
//!
//! What each model proves, on every explored schedule:
//! - no slot is lost or used twice: the pool's accounting ends with every
//!   slot free (`free == existing <= limit`), every acquired slot is empty,
//!   and every record written lands in the tree exactly once with its value;
//! - no lost wake-up: every parked writer or flush returns (loom and shuttle
//!   report a schedule where all threads block as a deadlock);
//! - poison while writers and a flush are parked returns `Poisoned` to each;
//!   close while writers are parked returns `Closed` (or a slot) to each;
//! - `barrier` (the flush) returns only after every slot sealed before it
//!   is merged, and a writer sees its own records after it.
//!
//! The negative controls run the first model with one wake-up removed
//! (`mutant_*` switches that exist only in test builds) and must fail.

use std::sync::atomic::Ordering as StdOrdering;

use numatree_core::Record;

use crate::flush::Ticket;
use crate::health::Health;
use crate::pipeline::{NodeSetup, NodeShared};
use crate::slot::{Binder, Slot};
use crate::sync::{lock, Arc, AtomicUsize, Condvar, Mutex, Ordering};
use crate::topology::NodeId;
use crate::Error;

/// The model checker behind `check` and `spawn`.
#[cfg(loom)]
mod rt {
    pub(super) use loom::thread::spawn;

    /// Explores `f` exhaustively (up to `LOOM_MAX_PREEMPTIONS`, default 2
    /// here) and prints how many interleavings that took.
    pub(super) fn check(name: &str, f: impl Fn() + Send + Sync + 'static) {
        let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&runs);
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(2);
        }
        let bound = builder.preemption_bound;
        builder.check(move || {
            counter.fetch_add(1, super::StdOrdering::Relaxed);
            f();
        });
        eprintln!(
            "model {name}: loom explored {} interleavings (preemption bound {bound:?})",
            runs.load(super::StdOrdering::Relaxed)
        );
    }
}

/// The model checker behind `check` and `spawn`.
#[cfg(all(shuttle, not(loom)))]
mod rt {
    pub(super) use shuttle::thread::spawn;

    /// Schedules per strategy: `SHUTTLE_ITERATIONS`, default 1,000.
    fn iterations() -> usize {
        std::env::var("SHUTTLE_ITERATIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000)
    }

    /// Runs `f` under `iterations()` random schedules, then as many PCT
    /// schedules (depth 3), and prints the count.
    pub(super) fn check(name: &str, f: impl Fn() + Send + Sync + 'static) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let n = iterations();
        let runs = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&runs);
        let f = std::sync::Arc::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            f();
        });
        let g = std::sync::Arc::clone(&f);
        shuttle::check_random(move || g(), n);
        shuttle::check_pct(move || f(), n, 3);
        eprintln!(
            "model {name}: shuttle ran {} schedules ({n} random + {n} PCT, depth 3)",
            runs.load(Ordering::Relaxed)
        );
    }
}

use rt::{check, spawn};

/// Which wake-up to remove, for the negative controls.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mutant {
    None,
    ReleaseSkipsNotify,
    MergedSkipsNotify,
}

/// One node's shared state plus the stand-in for its rayon pool: a count
/// of merge jobs posted (one per sealed slot, as `pool.spawn` is called).
struct Harness {
    node: Arc<NodeShared>,
    health: Arc<Health>,
    jobs: Mutex<usize>,
    job_posted: Condvar,
    /// Slots whose `sealed()` has returned (for the flush-barrier check).
    sealed: AtomicUsize,
}

impl Harness {
    /// A node whose pool allows `in_flight` slots plus one per writer
    /// registered, with slots of 64 records and one shard.
    fn new(in_flight: usize, writers: usize, mutant: Mutant) -> Arc<Harness> {
        let health = Arc::new(Health::default());
        let node = Arc::new(NodeShared::new(NodeSetup {
            index: 0,
            node_count: 1,
            shard_count: 1,
            slot_capacity: 64,
            in_flight_slots: in_flight,
            binder: Binder {
                topology: None,
                node: NodeId::new(0),
            },
            health: Arc::clone(&health),
            hook: None,
        }));
        health.watch(vec![Arc::downgrade(&node)]);
        for _ in 0..writers {
            node.slots.register_writer();
        }
        match mutant {
            Mutant::None => {}
            Mutant::ReleaseSkipsNotify => node
                .slots
                .mutant_release_skips_notify
                .store(true, StdOrdering::Relaxed),
            Mutant::MergedSkipsNotify => node
                .flush
                .mutant_merged_skips_notify
                .store(true, StdOrdering::Relaxed),
        }
        Arc::new(Harness {
            node,
            health,
            jobs: Mutex::new(0),
            job_posted: Condvar::new(),
            sealed: AtomicUsize::new(0),
        })
    }

    /// `Shared::acquire` without the budget, stats and helping.
    fn acquire(&self) -> Result<Box<Slot>, Error> {
        self.health.check()?;
        let slot = match self.node.slots.try_acquire() {
            Some(slot) => slot,
            None => self.node.slots.wait_for_slot(&self.health)?,
        };
        assert!(
            slot.records.is_empty(),
            "a slot came back with records in it"
        );
        let (_, existing, limit) = self.node.slots.counts();
        assert!(existing <= limit, "{existing} slots exist, limit {limit}");
        Ok(slot)
    }

    /// `Shared::submit`: wait until this writer's previous slot is merged
    /// (keeps its upserts in order), seal, queue, post one merge job.
    fn submit(&self, slot: Box<Slot>, previous: Option<Ticket>) -> Result<Ticket, Error> {
        let waited = previous.map_or(Ok(()), |t| self.node.flush.wait_for(&t, &self.health));
        if let Err(e) = self.health.check_poison().and(waited) {
            self.node.slots.forget();
            return Err(e);
        }
        let ticket = Ticket::default();
        let epoch = self.node.flush.sealed();
        self.sealed.fetch_add(1, Ordering::SeqCst);
        self.node.enqueue(slot, epoch, Arc::clone(&ticket));
        *lock(&self.jobs) += 1;
        self.job_posted.notify_one();
        Ok(ticket)
    }

    /// A merge thread of the node's pool: runs `jobs` merge jobs.
    fn merge_jobs(&self, jobs: usize) {
        for _ in 0..jobs {
            let mut pending = lock(&self.jobs);
            while *pending == 0 {
                pending = self
                    .job_posted
                    .wait(pending)
                    .unwrap_or_else(|e| e.into_inner());
            }
            *pending -= 1;
            drop(pending);
            assert!(self.node.merge_next(), "a job found no sealed slot");
        }
    }

    /// A writer that fills `slots` slots with `per_slot` records of
    /// `series` each (ts = 0, 1, ...; value = series * 1000 + ts), flushes
    /// and checks its own records are visible.
    fn write(&self, series: u32, slots: usize, per_slot: usize) {
        let mut previous = None;
        let mut ts = 0;
        for _ in 0..slots {
            let mut slot = self.acquire().expect("healthy index");
            for _ in 0..per_slot {
                slot.records
                    .push(Record::new(series, ts, value(series, ts)));
                ts += 1;
            }
            previous = Some(self.submit(slot, previous).expect("healthy index"));
        }
        self.node
            .flush
            .barrier(&self.health)
            .expect("healthy index");
        let tree = self.node.shards[0]
            .tree
            .read()
            .unwrap_or_else(|e| e.into_inner());
        for t in 0..ts {
            assert_eq!(
                tree.get(series, t),
                Some(value(series, t)),
                "record ({series}, {t}) not visible after flush"
            );
        }
    }

    /// Every slot is back in the pool and the tree holds `keys` keys.
    fn assert_quiescent(&self, keys: usize) {
        let (free, existing, limit) = self.node.slots.counts();
        assert_eq!(free, existing, "a slot was lost: {free} free of {existing}");
        assert!(existing <= limit, "{existing} slots exist, limit {limit}");
        assert_eq!(self.node.keys(), keys, "keys in the tree");
        let tree = self.node.shards[0]
            .tree
            .read()
            .unwrap_or_else(|e| e.into_inner());
        tree.validate().expect("valid tree");
        assert_eq!(tree.len(), keys);
    }
}

fn value(series: u32, ts: i64) -> u64 {
    u64::from(series) * 1000 + ts as u64
}

/// One slot, one writer, one merger: the writer's second slot is the first
/// one coming back, so it must park and be woken by `release`; its second
/// submit waits on the first slot's ticket (`wait_for`); its flush waits
/// for both merges.
fn one_slot_one_writer_one_merger(mutant: Mutant) {
    let h = Harness::new(1, 0, mutant);
    let merger = {
        let h = Arc::clone(&h);
        spawn(move || h.merge_jobs(2))
    };
    let writer = {
        let h = Arc::clone(&h);
        spawn(move || h.write(1, 2, 1))
    };
    writer.join().unwrap();
    merger.join().unwrap();
    h.assert_quiescent(2);
}

#[test]
fn model_one_slot_handoff_loses_nothing_and_wakes_the_writer() {
    check("one_slot_one_writer_one_merger", || {
        one_slot_one_writer_one_merger(Mutant::None)
    });
}

/// Negative control: without `release`'s `notify_one` a writer parked for
/// a slot sleeps forever, and the checker must say so.
#[test]
#[should_panic(expected = "deadlock")]
fn model_negative_control_release_without_notify_deadlocks() {
    check("negative_control_release_without_notify", || {
        one_slot_one_writer_one_merger(Mutant::ReleaseSkipsNotify)
    });
}

/// Negative control: without `merged`'s `notify_all` a writer waiting for
/// its previous slot, or a flush, sleeps forever.
#[test]
#[should_panic(expected = "deadlock")]
fn model_negative_control_merged_without_notify_deadlocks() {
    check("negative_control_merged_without_notify", || {
        one_slot_one_writer_one_merger(Mutant::MergedSkipsNotify)
    });
}

/// Two writers share two slots (one each) and one merger: each writer's
/// second slot waits for a merge; an observer's flush, concurrent with
/// both, covers every slot sealed before it began.
#[test]
fn model_two_writers_two_slots_flush_covers_every_earlier_seal() {
    check("two_writers_one_merger_two_slots", || {
        let h = Harness::new(0, 2, Mutant::None);
        let merger = {
            let h = Arc::clone(&h);
            spawn(move || h.merge_jobs(4))
        };
        let writers: Vec<_> = (1..=2)
            .map(|series| {
                let h = Arc::clone(&h);
                spawn(move || h.write(series, 2, 1))
            })
            .collect();
        let sealed_before = h.sealed.load(Ordering::SeqCst);
        h.node.flush.barrier(&h.health).unwrap();
        let merged = h.node.counters.slots_merged.load(Ordering::SeqCst) as usize;
        assert!(
            merged >= sealed_before,
            "flush returned with {merged} slots merged, {sealed_before} sealed before it"
        );
        for w in writers {
            w.join().unwrap();
        }
        merger.join().unwrap();
        h.assert_quiescent(4);
    });
}

/// Merges stall (the only slot is sealed and never merged); two writers
/// park for a slot and a flush parks on the barrier. A merge panic
/// poisons the index (`merge_next` calls `Health::poison`): each of the
/// three must return `Poisoned`.
#[test]
fn model_poison_wakes_every_parked_writer_and_flush_with_an_error() {
    check("poison_while_parked", || {
        let h = Harness::new(1, 0, Mutant::None);
        let mut slot = h.acquire().unwrap();
        slot.records.push(Record::new(1, 0, 0));
        h.submit(slot, None).unwrap();
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let h = Arc::clone(&h);
                spawn(move || h.acquire().map(drop))
            })
            .collect();
        let flusher = {
            let h = Arc::clone(&h);
            spawn(move || h.node.flush.barrier(&h.health))
        };
        h.health.poison("injected merge panic".into());
        for w in writers {
            let result = w.join().unwrap();
            assert!(matches!(result, Err(Error::Poisoned(_))), "{result:?}");
        }
        let result = flusher.join().unwrap();
        assert!(matches!(result, Err(Error::Poisoned(_))), "{result:?}");
    });
}

/// The pool's three slots (one in flight, one per writer) are sealed and
/// queued; two writers wait for a slot while the index closes (close sets
/// the flag, then flushes, as `Index::close` does). Each writer returns:
/// `Closed`, or a slot it then hands back (a writer dropped after close).
#[test]
fn model_close_while_writers_wait_returns_to_each_of_them() {
    check("close_while_parked", || {
        let h = Harness::new(1, 2, Mutant::None);
        for ts in 0..3 {
            let mut slot = h.acquire().unwrap();
            slot.records.push(Record::new(9, ts, value(9, ts)));
            h.submit(slot, None).unwrap();
        }
        let merger = {
            let h = Arc::clone(&h);
            spawn(move || h.merge_jobs(3))
        };
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let h = Arc::clone(&h);
                spawn(move || match h.acquire() {
                    Ok(slot) => {
                        h.node.slots.release(slot);
                        Ok(())
                    }
                    Err(e) => Err(e),
                })
            })
            .collect();
        h.health.close();
        h.node.flush.barrier(&h.health).unwrap();
        for w in writers {
            let result = w.join().unwrap();
            assert!(matches!(result, Ok(()) | Err(Error::Closed)), "{result:?}");
        }
        merger.join().unwrap();
        h.assert_quiescent(3);
    });
}

/// Shuttle only (too big for loom): four writers of three slots each, two
/// merge threads, a reader scanning while merges run, and a flush.
#[cfg(all(shuttle, not(loom)))]
#[test]
fn model_four_writers_two_mergers_and_a_reader_lose_nothing() {
    check("four_writers_two_mergers_reader", || {
        const WRITERS: u32 = 4;
        const SLOTS: usize = 3;
        const PER_SLOT: usize = 2;
        let h = Harness::new(2, WRITERS as usize, Mutant::None);
        let total = WRITERS as usize * SLOTS;
        let mergers: Vec<_> = [total / 2, total - total / 2]
            .into_iter()
            .map(|jobs| {
                let h = Arc::clone(&h);
                spawn(move || h.merge_jobs(jobs))
            })
            .collect();
        let writers: Vec<_> = (1..=WRITERS)
            .map(|series| {
                let h = Arc::clone(&h);
                spawn(move || h.write(series, SLOTS, PER_SLOT))
            })
            .collect();
        let reader = {
            let h = Arc::clone(&h);
            spawn(move || {
                for _ in 0..3 {
                    for series in 1..=WRITERS {
                        let tree = h.node.shards[0]
                            .tree
                            .read()
                            .unwrap_or_else(|e| e.into_inner());
                        let mut last = None;
                        for r in tree.range(series, ..) {
                            assert!(last < Some(r.key.ts), "scan not strictly ascending");
                            assert_eq!(r.value, value(series, r.key.ts));
                            last = Some(r.key.ts);
                        }
                    }
                }
            })
        };
        let sealed_before = h.sealed.load(Ordering::SeqCst);
        h.node.flush.barrier(&h.health).unwrap();
        let merged = h.node.counters.slots_merged.load(Ordering::SeqCst) as usize;
        assert!(
            merged >= sealed_before,
            "{merged} merged < {sealed_before} sealed"
        );
        for t in writers.into_iter().chain(mergers).chain([reader]) {
            t.join().unwrap();
        }
        h.assert_quiescent(total * PER_SLOT);
    });
}

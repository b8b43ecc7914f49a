//! Model tests of the node pipeline's protocol (slot handoff,
//! backpressure with helping, seal-order application, the flush barrier,
//! poison and close), run under `loom` (every interleaving, up to a
//! preemption bound) or `shuttle` (random and PCT schedules, larger sizes).
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p numatree --release --lib model
//! RUSTFLAGS="--cfg shuttle" cargo test -p numatree --release --lib model
//! ```
//!
//! The models drive the real [`NodePipeline`](crate::pipeline::NodePipeline): writers call its `acquire`
//! and `submit` (with helping, exactly as a `Writer` does), merges run the
//! jobs `submit` hands to its [`Executor`](crate::pipeline::Executor) (sort, deliver each shard's
//! part to its lane, apply in seal order, release the slot, mark the
//! epoch), and flushes call its `FlushTracker::barrier`. Only the executor
//! is a stand-in: loom cannot drive rayon, so model merge threads run the
//! queued jobs, as the pool's threads would.
//!
//! What each model proves, on every explored schedule:
//! - no slot is lost or used twice: the pool's accounting ends with every
//!   slot free (`free == existing <= limit`), every acquired slot is empty,
//!   and every record written lands in storage exactly once with its value;
//! - no lost wake-up: every parked writer or flush returns (loom and shuttle
//!   report a schedule where all threads block as a deadlock);
//! - a later insert of a key wins even when its slot sorts first on another
//!   merge thread (the lanes apply parts in seal order);
//! - poison while writers and a flush are parked returns `Poisoned` to each;
//!   close while writers are parked returns `Closed` (or a slot) to each;
//! - `barrier` (the flush) returns only after every slot sealed before it
//!   is merged, and a writer sees its own records after it.
//!
//! The storage's publication protocol has models of its own (`storage`).
//!
//! The negative controls run models with one wake-up removed, with lanes
//! that ignore seal order, or with blocks published before their points are
//! written (`mutant_*` switches that exist only in test builds), and must
//! fail.

mod harness;
mod rt;

use numatree_core::Record;

use crate::health::Health;
use crate::pipeline::Origin;
use crate::sync::{Arc, AtomicUsize, Ordering};
use crate::Error;

use harness::{value, Harness, Mutant};
use rt::{check, spawn};

/// One slot, one writer pinned elsewhere (so it parks instead of
/// helping), one merger: the writer's second slot is the first one coming
/// back, so it must park and be woken by `release`; its flush waits for
/// both merges.
fn one_slot_one_writer_one_merger(mutant: Mutant) {
    let h = Harness::new(1, 0, 1, mutant);
    let merger = {
        let h = Arc::clone(&h);
        spawn(move || h.merge_jobs(2))
    };
    let writer = {
        let h = Arc::clone(&h);
        spawn(move || h.write(Origin::Remote, 1, 2, 1))
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

/// Negative control: without `merged`'s `notify_all` a flush sleeps forever.
#[test]
#[should_panic(expected = "deadlock")]
fn model_negative_control_merged_without_notify_deadlocks() {
    check("negative_control_merged_without_notify", || {
        one_slot_one_writer_one_merger(Mutant::MergedSkipsNotify)
    });
}

/// One writer seals two slots that both hold key (0, 0) (values 1, then
/// 2) and a key of the other shard; two merge threads sort them in
/// parallel, so the second slot may finish sorting first. After the flush
/// the second value must be there: the lanes apply parts in seal order.
fn later_insert_wins_across_parallel_merges(mutant: Mutant) {
    let h = Harness::new(2, 1, 2, mutant);
    let mergers: Vec<_> = (0..2)
        .map(|_| {
            let h = Arc::clone(&h);
            spawn(move || h.merge_jobs(1))
        })
        .collect();
    for v in 1..=2 {
        let mut slot = h.acquire(Origin::Remote).unwrap();
        slot.push(Record::new(0, 0, v)).unwrap();
        slot.push(Record::new(1, v as i64, v)).unwrap();
        h.submit(slot, Origin::Remote).unwrap();
    }
    h.node.flush.barrier(&h.health).unwrap();
    assert_eq!(
        h.get(0, 0),
        Some(2),
        "an earlier insert overwrote a later one"
    );
    for m in mergers {
        m.join().unwrap();
    }
    h.assert_quiescent(3);
}

#[test]
fn model_later_insert_wins_across_parallel_merges() {
    check("later_insert_wins_across_parallel_merges", || {
        later_insert_wins_across_parallel_merges(Mutant::None)
    });
}

/// Negative control: lanes that apply parts as they arrive let the first
/// slot's value overwrite the second's on some schedule.
#[test]
#[should_panic(expected = "an earlier insert overwrote a later one")]
fn model_negative_control_lanes_ignoring_seal_order_lose_the_later_insert() {
    check("negative_control_lanes_ignore_order", || {
        later_insert_wins_across_parallel_merges(Mutant::LanesIgnoreOrder)
    });
}

/// A writer over the memory budget parks until memory is freed or a
/// merge finishes, then catches retention up again: the merge that moves
/// the horizon (here a relaxed store, as `newest` is) wakes it, whichever
/// runs first. `wake: false` is the negative control (no `merged`).
fn over_budget_writer_woken_by_a_merge(wake: bool) {
    let health = Arc::new(Health::default());
    let horizon = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (health, horizon) = (Arc::clone(&health), Arc::clone(&horizon));
        spawn(move || {
            // Kept (never dropped): the negative control's deadlock unwinds
            // this thread, and loom aborts on an atomic in a destructor then.
            std::mem::forget(health.over_budget());
            loop {
                let seen = health.memory_seen();
                if horizon.load(Ordering::Relaxed) > 0 {
                    return;
                }
                health.wait_for_memory_since(seen).expect("healthy index");
            }
        })
    };
    horizon.store(1, Ordering::Relaxed);
    if wake {
        health.merged();
    }
    writer.join().unwrap();
}

#[test]
fn model_over_budget_writer_woken_by_a_merge() {
    check("over_budget_writer_woken_by_a_merge", || {
        over_budget_writer_woken_by_a_merge(true)
    });
}

/// Negative control: without `merged` the writer may park for ever.
#[test]
#[should_panic(expected = "deadlock")]
fn model_negative_control_merge_without_wake_leaves_the_writer_parked() {
    check("negative_control_merge_without_wake", || {
        over_budget_writer_woken_by_a_merge(false)
    });
}

/// A `drop_before` while a slot merges: the node's key count never runs
/// below zero. (It did: the merge counted its keys after letting go of
/// the shard, so a drop in between took them away first and the count
/// wrapped, to be mended when the merge came back to count.)
fn drop_while_merging() {
    let h = Harness::new(1, 0, 1, Mutant::None);
    let merger = {
        let h = Arc::clone(&h);
        spawn(move || h.merge_jobs(1))
    };
    let dropper = {
        let h = Arc::clone(&h);
        spawn(move || {
            h.node.drop_before(1);
            let keys = h.node.keys();
            assert!(keys <= 1, "one record merged, but {keys} keys counted");
        })
    };
    let mut slot = h.acquire(Origin::Remote).expect("healthy index");
    slot.push(Record::new(1, 0, value(1, 0)))
        .expect("room in the slot");
    h.submit(slot, Origin::Remote).expect("healthy index");
    merger.join().unwrap();
    dropper.join().unwrap();
    // Dropped after its merge, or expired by the floor before it: gone.
    assert_eq!(h.get(1, 0), None);
    h.assert_quiescent(0);
}

#[test]
fn model_drop_while_merging_never_counts_below_zero() {
    check("drop_while_merging", drop_while_merging);
}

/// Two unpinned writers share two slots (one each) and one merger, with
/// `seats` helper seats; each writes two slots of one record while the
/// main thread runs `observe`; then nothing is lost and every slot is free.
fn two_unpinned_writers_one_merger(seats: usize, observe: impl Fn(&Harness)) {
    let h = Harness::with_helper_seats(0, 2, 1, Mutant::None, seats);
    let merger = {
        let h = Arc::clone(&h);
        spawn(move || h.merge_jobs(4))
    };
    let writers: Vec<_> = (1..=2)
        .map(|series| {
            let h = Arc::clone(&h);
            spawn(move || h.write(Origin::Unpinned, series, 2, 1))
        })
        .collect();
    observe(&h);
    for w in writers {
        w.join().unwrap();
    }
    merger.join().unwrap();
    h.assert_quiescent(4);
}

/// Two unpinned writers share two slots (one each) and one merger; a
/// writer that finds no slot helps merge. An observer's flush, concurrent
/// with both, covers every slot sealed before it began.
#[test]
fn model_two_helping_writers_two_slots_flush_covers_every_earlier_seal() {
    check("two_writers_one_merger_two_slots", || {
        two_unpinned_writers_one_merger(2, Harness::flush_covers_earlier_seals);
    });
}

/// As above, but with one helper's seat: a writer that finds no slot while
/// the other helps must park and be woken by a merge's `release`, never
/// wait for a merge that nobody runs. Liveness only: that at most one
/// writer merges at a time is `tests/one_merging_writer_per_writer_cpu.rs`'s.
#[test]
fn model_one_helper_seat_a_declined_writer_parks_and_is_woken() {
    check("two_writers_one_seat", || {
        two_unpinned_writers_one_merger(1, |_| {});
    });
}

/// Merges stall (the only slot is sealed and its job never runs); two
/// writers pinned elsewhere park for a slot and a flush parks on the
/// barrier. A merge panic poisons the index: each of the three must
/// return `Poisoned`.
#[test]
fn model_poison_wakes_every_parked_writer_and_flush_with_an_error() {
    check("poison_while_parked", || {
        let h = Harness::new(1, 0, 1, Mutant::None);
        let mut slot = h.acquire(Origin::Remote).unwrap();
        slot.push(Record::new(1, 0, 0)).unwrap();
        h.submit(slot, Origin::Remote).unwrap();
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let h = Arc::clone(&h);
                spawn(move || h.acquire(Origin::Remote).map(drop))
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
/// queued; two writers pinned elsewhere wait for a slot while the index
/// closes (close sets the flag, then flushes, as `Index::close` does).
/// Each writer returns: `Closed`, or a slot it then hands back (a writer
/// dropped after close).
#[test]
fn model_close_while_writers_wait_returns_to_each_of_them() {
    check("close_while_parked", || {
        let h = Harness::new(1, 2, 1, Mutant::None);
        for ts in 0..3 {
            let mut slot = h.acquire(Origin::Remote).unwrap();
            slot.push(Record::new(9, ts, value(9, ts))).unwrap();
            h.submit(slot, Origin::Remote).unwrap();
        }
        let merger = {
            let h = Arc::clone(&h);
            spawn(move || h.merge_jobs(3))
        };
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let h = Arc::clone(&h);
                spawn(move || match h.acquire(Origin::Remote) {
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

/// Shuttle only (too big for loom): four helping writers of three slots
/// each over two shards, two merge threads, a reader scanning while merges
/// run, and a flush.
#[cfg(all(shuttle, not(loom)))]
#[test]
fn model_four_writers_two_mergers_and_a_reader_lose_nothing() {
    check("four_writers_two_mergers_reader", || {
        const WRITERS: u32 = 4;
        const SLOTS: usize = 3;
        const PER_SLOT: usize = 2;
        let h = Harness::new(2, WRITERS as usize, 2, Mutant::None);
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
                spawn(move || h.write(Origin::Unpinned, series, SLOTS, PER_SLOT))
            })
            .collect();
        let reader = {
            let h = Arc::clone(&h);
            spawn(move || {
                for _ in 0..3 {
                    for series in 1..=WRITERS {
                        let shard = &h.node.shards[h.node_shard(series)];
                        let mut last = None;
                        shard.storage.scan(series, .., usize::MAX, |ts, v| {
                            assert!(last < Some(ts), "scan not strictly ascending");
                            assert_eq!(v, value(series, ts));
                            last = Some(ts);
                        });
                    }
                }
            })
        };
        h.flush_covers_earlier_seals();
        for t in writers.into_iter().chain(mergers).chain([reader]) {
            t.join().unwrap();
        }
        h.assert_quiescent(total * PER_SLOT);
    });
}

mod storage;

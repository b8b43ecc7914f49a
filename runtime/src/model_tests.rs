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
//! The models drive the real [`NodePipeline`]: writers call its `acquire`
//! and `submit` (with helping, exactly as a `Writer` does), merges run the
//! jobs `submit` hands to its [`Executor`] (sort, deliver each shard's
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
//! - a reader scanning a series while merges append to its tail block and
//!   rewrite a block for a late point sees every point whole (never an
//!   unwritten one, never another series'), ascending, and never loses a
//!   point an earlier scan returned (the storage's publication protocol).
//!
//! The negative controls run models with one wake-up removed, with lanes
//! that ignore seal order, or with blocks published before their points are
//! written (`mutant_*` switches that exist only in test builds), and must
//! fail.

use std::collections::VecDeque;
use std::sync::atomic::Ordering as StdOrdering;

use numatree_core::Record;

use crate::health::{Health, Waiters};
use crate::pipeline::{Executor, Job, NodePipeline, NodeSetup, Origin};
use crate::plan::ShardRule;
use crate::slot::{Binder, Slot};
use crate::sync::{lock, Arc, AtomicUsize, Condvar, Mutex, Ordering};
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

/// Which part of the protocol to break, for the negative controls.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mutant {
    None,
    ReleaseSkipsNotify,
    MergedSkipsNotify,
    LanesIgnoreOrder,
}

/// The stand-in for a node's rayon pool: jobs queue here and model merge
/// threads run them.
#[derive(Default)]
struct ModelExecutor {
    jobs: Mutex<VecDeque<Job>>,
    posted: Condvar,
}

impl Executor for ModelExecutor {
    fn spawn(&self, job: Job) {
        lock(&self.jobs).push_back(job);
        self.posted.notify_one();
    }

    fn install(&self, f: &(dyn Fn() + Sync)) {
        f();
    }
}

/// A node pipeline with a model executor.
struct Harness {
    node: Arc<NodePipeline>,
    health: Arc<Health>,
    executor: Arc<ModelExecutor>,
    /// Slots whose `submit` has returned (for the flush-barrier check).
    sealed: AtomicUsize,
}

/// Lets the pipeline own a handle to the shared model executor.
struct SharedExecutor(Arc<ModelExecutor>);

impl Executor for SharedExecutor {
    fn spawn(&self, job: Job) {
        self.0.spawn(job);
    }

    fn install(&self, f: &(dyn Fn() + Sync)) {
        self.0.install(f);
    }
}

impl Harness {
    /// A node whose pool allows `in_flight` slots plus one per writer
    /// registered, with slots of 64 records and `shards` shards (series
    /// `s` in shard `s % shards`).
    fn new(in_flight: usize, writers: usize, shards: u32, mutant: Mutant) -> Arc<Harness> {
        let health = Arc::new(Health::default());
        let node = Arc::new(NodePipeline::new(NodeSetup {
            index: 0,
            rule: ShardRule::new(1, shards),
            slot_capacity: 64,
            in_flight_slots: in_flight,
            binder: Binder::default(),
            frozen_binder: Binder::default(),
            health: Arc::clone(&health),
            hook: None,
            plant_loss: false,
            storage: Default::default(),
        }));
        let executor = Arc::new(ModelExecutor::default());
        node.start(Box::new(SharedExecutor(Arc::clone(&executor))));
        health.watch(vec![Arc::downgrade(&node) as std::sync::Weak<dyn Waiters>]);
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
            Mutant::LanesIgnoreOrder => {
                for shard in &node.shards {
                    shard.mutant_ignores_order.store(true, StdOrdering::Relaxed);
                }
            }
        }
        Arc::new(Harness {
            node,
            health,
            executor,
            sealed: AtomicUsize::new(0),
        })
    }

    /// `NodePipeline::acquire`, checking what comes back.
    fn acquire(&self, origin: Origin) -> Result<Slot, Error> {
        let slot = self.node.acquire(origin)?;
        assert!(slot.is_empty(), "a slot came back with records in it");
        let (_, existing, limit) = self.node.slots.counts();
        assert!(existing <= limit, "{existing} slots exist, limit {limit}");
        Ok(slot)
    }

    /// `NodePipeline::submit`, counting the slots sealed.
    fn submit(&self, slot: Slot, origin: Origin) -> Result<(), Error> {
        self.node.submit(slot, origin)?;
        self.sealed.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// A merge thread of the node's pool: runs `jobs` merge jobs (a job
    /// finds nothing to merge when a helping writer took its slot).
    fn merge_jobs(&self, jobs: usize) {
        for _ in 0..jobs {
            let mut queue = lock(&self.executor.jobs);
            let job = loop {
                if let Some(job) = queue.pop_front() {
                    break job;
                }
                queue = self
                    .executor
                    .posted
                    .wait(queue)
                    .unwrap_or_else(|e| e.into_inner());
            };
            drop(queue);
            job();
        }
    }

    /// A writer that fills `slots` slots with `per_slot` records of
    /// `series` each (ts = 0, 1, ...; value = series * 1000 + ts), flushes
    /// and checks its own records are visible.
    fn write(&self, origin: Origin, series: u32, slots: usize, per_slot: usize) {
        let mut ts = 0;
        for _ in 0..slots {
            let mut slot = self.acquire(origin).expect("healthy index");
            for _ in 0..per_slot {
                slot.push(Record::new(series, ts, value(series, ts)))
                    .expect("room in the slot");
                ts += 1;
            }
            self.submit(slot, origin).expect("healthy index");
        }
        self.node
            .flush
            .barrier(&self.health)
            .expect("healthy index");
        for t in 0..ts {
            assert_eq!(
                self.get(series, t),
                Some(value(series, t)),
                "record ({series}, {t}) not visible after flush"
            );
        }
    }

    fn get(&self, series: u32, ts: i64) -> Option<u64> {
        let shard = &self.node.shards[self.node_shard(series)];
        shard.storage.get(series, ts)
    }

    fn node_shard(&self, series: u32) -> usize {
        series as usize % self.node.shards.len()
    }

    /// Every slot is back in the pool and the trees hold `keys` keys.
    fn assert_quiescent(&self, keys: usize) {
        let (free, existing, limit) = self.node.slots.counts();
        assert_eq!(free, existing, "a slot was lost: {free} free of {existing}");
        assert!(existing <= limit, "{existing} slots exist, limit {limit}");
        assert_eq!(self.node.keys(), keys, "keys in the trees");
        let mut len = 0;
        for shard in &self.node.shards {
            len += shard.storage.validate().expect("valid storage");
        }
        assert_eq!(len, keys);
        let stats = crate::Stats::from_nodes(vec![self.node.stats()]);
        stats
            .verify_accounting()
            .expect("every record accounted for");
        assert_eq!(stats.total.records_in_flight, 0);
    }
}

fn value(series: u32, ts: i64) -> u64 {
    u64::from(series) * 1000 + ts as u64
}

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

/// Two unpinned writers share two slots (one each) and one merger; a
/// writer that finds no slot helps merge. An observer's flush, concurrent
/// with both, covers every slot sealed before it began.
#[test]
fn model_two_helping_writers_two_slots_flush_covers_every_earlier_seal() {
    check("two_writers_one_merger_two_slots", || {
        let h = Harness::new(0, 2, 1, Mutant::None);
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

/// The series the storage models read and write: its cell is a direct one
/// (rank 7 < 16 under a checker, `storage::directory`).
const SERIES: u32 = 7;

/// A series whose cell is found through the directory's hash table (rank
/// 40 >= 16, the direct ranks under a checker).
const TABLE_SERIES: u32 = 40;

/// A reader's scan of `series` in the storage models: every point whole
/// (its value is `1000 + ts`, as written), ascending, and every point of the
/// previous scan `seen` still there unless `may_vanish(ts)`. Returns the
/// scan.
fn scan_and_check(
    storage: &crate::storage::ShardStorage,
    series: u32,
    seen: &[(i64, u64)],
    may_vanish: impl Fn(i64) -> bool,
) -> Vec<(i64, u64)> {
    let mut now = Vec::new();
    storage.scan(series, .., usize::MAX, |ts, value| now.push((ts, value)));
    for &(ts, value) in &now {
        assert_eq!(
            value,
            1000 + ts as u64,
            "a point seen before it was written: {now:?}"
        );
    }
    for w in now.windows(2) {
        assert!(w[0].0 < w[1].0, "scan not ascending: {now:?}");
    }
    for p in seen {
        assert!(
            may_vanish(p.0) || now.contains(p),
            "{p:?} vanished: {seen:?} then {now:?}"
        );
    }
    now
}

/// Spawns the storage models' reader of `series`: twice, a scan checked by
/// `scan_and_check` (a point of the previous scan may vanish only where
/// `may_vanish` says), then the model's own `check`. Returns what joins it.
fn spawn_reader(
    storage: &Arc<crate::storage::ShardStorage>,
    series: u32,
    may_vanish: fn(i64) -> bool,
    check: impl Fn(&crate::storage::ShardStorage) + Send + 'static,
) -> impl FnOnce() {
    let storage = Arc::clone(storage);
    let reader = spawn(move || {
        let mut seen: Vec<(i64, u64)> = Vec::new();
        for _ in 0..2 {
            seen = scan_and_check(&storage, series, &seen, may_vanish);
            check(&storage);
        }
    });
    move || reader.join().unwrap()
}

/// Merges [`SERIES`]' first `n` points (at 10, 20, ..., valued `1000 + ts`,
/// as `scan_and_check` expects) as one run.
fn merge_first_points(storage: &crate::storage::ShardStorage, n: i64) {
    merge_first_points_of(storage, SERIES, n);
}

/// Merges `series`' first `n` points, as [`merge_first_points`].
fn merge_first_points_of(storage: &crate::storage::ShardStorage, series: u32, n: i64) {
    let run: Vec<Record> = (1..=n)
        .map(|k| Record::new(series, k * 10, 1000 + k as u64 * 10))
        .collect();
    storage.merge_run(&run);
}

/// The storage's publication protocol: one merge appends to a series in
/// place (its 7 points sit in an 8-point block), then rewrites the block for
/// a late point and regrows it for a new one, while a reader scans it
/// twice. Every point the reader sees must be whole (its value is the one
/// written for its timestamp), the scans ascending, and the second scan must
/// hold every point of the first.
fn reader_during_appends_and_rewrites(series: u32, publish_first: bool) {
    use crate::storage::ShardStorage;
    let storage = Arc::new(ShardStorage::default());
    let v = |ts: i64| 1000 + ts as u64;
    merge_first_points_of(&storage, series, 7);
    if publish_first {
        storage.set_mutant_publish_first();
    }
    let join_reader = spawn_reader(
        &storage,
        series,
        |_| false,
        move |storage| {
            // A bounded scan, past the series' end when it starts: points
            // appended meanwhile below the bound stay out.
            let mut late = Vec::new();
            storage.scan(series, 85.., usize::MAX, |ts, value| late.push((ts, value)));
            assert!(
                late.iter().all(|&(ts, _)| ts >= 85),
                "a scan of 85.. returned {late:?}"
            );
        },
    );
    // In place: the eighth point fills the block.
    storage.merge_run(&[Record::new(series, 80, v(80))]);
    // A late point rewrites the block (split in two), a new one is appended.
    storage.merge_run(&[
        Record::new(series, 15, v(15)),
        Record::new(series, 90, v(90)),
    ]);
    join_reader();
    assert_eq!(storage.validate(), Ok(10));
}

#[test]
fn model_readers_see_whole_points_while_merges_append_and_rewrite() {
    check("reader_during_appends_and_rewrites", || {
        reader_during_appends_and_rewrites(SERIES, false)
    });
}

/// The same through the directory's hash table (a sparse id's cell): the
/// slot is published after the cell it leads to.
#[test]
fn model_readers_see_whole_points_of_a_table_series_while_merges_append_and_rewrite() {
    check("reader_during_appends_and_rewrites_table", || {
        reader_during_appends_and_rewrites(TABLE_SERIES, false)
    });
}

/// One shard's storage with freezing on (and `freeze_idle_after(age)`).
fn freezing_storage(freeze_idle: Option<i64>) -> Arc<crate::storage::ShardStorage> {
    use crate::storage::{ShardStorage, StorageConfig};
    Arc::new(ShardStorage::new(
        ShardRule::new(1, 1),
        StorageConfig {
            freeze: true,
            retain: None,
            freeze_idle,
        },
    ))
}

/// Frozen blocks and retention under the same protocol (blocks of 8 points
/// under a model checker): a merge fills a block and starts the next, which
/// freezes the first; a late point thaws, rewrites and refreezes it; a
/// retention drop cuts the series at 35, while a reader scans and looks
/// points up. Every point seen must be whole, scans ascending, and a point
/// may vanish between two scans only if it lies below the cutoff.
fn reader_during_freezing_and_retention() {
    let storage = freezing_storage(None);
    let v = |ts: i64| 1000 + ts as u64;
    merge_first_points(&storage, 7);
    let join_reader = spawn_reader(
        &storage,
        SERIES,
        |ts| ts < 35,
        |storage| {
            if let Some(value) = storage.get(SERIES, 60) {
                assert_eq!(value, 1060, "get of a frozen point");
            }
        },
    );
    // The first block fills, the next starts: the first freezes.
    storage.merge_run(&[
        Record::new(SERIES, 80, v(80)),
        Record::new(SERIES, 90, v(90)),
    ]);
    // A late point into the frozen block: thawed, rewritten, refrozen.
    storage.merge_run(&[Record::new(SERIES, 15, v(15))]);
    // Retention cuts the series at 35.
    assert_eq!(storage.drop_before(35), 4);
    join_reader();
    assert_eq!(storage.validate(), Ok(6));
    assert!(storage.frozen().1 > 0, "nothing froze");
}

/// A frozen tail made into another series' new tail (`storage::segmented`,
/// `Spare`) under the same protocol: series 7 fills two blocks (the
/// second a segmented tail), a reader scans it, and a point more freezes
/// that tail, which the merge keeps; series 8 then needs a segmented tail
/// of its own, made of the kept one only if no version still holds it.
/// Every point the reader sees must be series 7's, whole (series 8's
/// values differ), and none may vanish.
fn reader_during_tail_reuse(reuse_held: bool) {
    let storage = freezing_storage(None);
    merge_first_points(&storage, 16);
    if reuse_held {
        storage.set_mutant_reuse_held();
    }
    let join_reader = spawn_reader(&storage, SERIES, |_| false, |_| {});
    // Series 7's tail is full: a point more freezes it (kept for reuse).
    storage.merge_run(&[Record::new(SERIES, 170, 1170)]);
    // Series 8's first 8 points fill a flat block; the next ones need a
    // segmented tail.
    let other: Vec<Record> = (1..=10)
        .map(|k| Record::new(8, k * 10 + 5, 5000 + k as u64))
        .collect();
    storage.merge_run(&other);
    join_reader();
    assert_eq!(storage.validate(), Ok(27));
}

#[test]
fn model_readers_never_see_a_frozen_tail_reused_while_a_version_holds_it() {
    check("reader_during_tail_reuse", || {
        reader_during_tail_reuse(false)
    });
}

/// Negative control: a tail reused while a version holds it shows its
/// reader another series' points (whose values the check takes for
/// unwritten ones).
#[test]
#[should_panic(expected = "a point seen before it was written")]
fn model_negative_control_reusing_a_held_tail() {
    check("negative_control_reuse_held", || {
        reader_during_tail_reuse(true)
    });
}

#[test]
fn model_readers_see_whole_points_while_blocks_freeze_thaw_and_drop() {
    check("reader_during_freezing_and_retention", || {
        reader_during_freezing_and_retention()
    });
}

/// A frozen run appended to in place (`storage::series::run`) under the
/// same protocol: series 7's first block froze when its second started;
/// while a reader scans and looks points up, the second and third blocks
/// fill and freeze, each set in the run's next free slot (the index
/// shared with the version the reader may hold) before the version that
/// counts it is published. Every point seen must be whole and none may
/// vanish; a slot read through a version before it was set panics.
fn reader_during_run_appends() {
    let storage = freezing_storage(None);
    let v = |ts: i64| 1000 + ts as u64;
    merge_first_points(&storage, 9);
    assert_eq!(storage.frozen().1, 8, "the first block froze");
    let join_reader = spawn_reader(
        &storage,
        SERIES,
        |_| false,
        |storage| {
            assert_eq!(storage.get(SERIES, 20), Some(1020), "get of a frozen point");
            let second = storage.get(SERIES, 120);
            assert!(
                matches!(second, None | Some(1120)),
                "get of 120: {second:?}"
            );
        },
    );
    // The second block fills and the third starts: the second freezes.
    storage.merge_run(
        &(10..=17)
            .map(|k| Record::new(SERIES, k * 10, v(k * 10)))
            .collect::<Vec<_>>(),
    );
    // The third fills and the fourth starts: the third freezes.
    storage.merge_run(
        &(18..=25)
            .map(|k| Record::new(SERIES, k * 10, v(k * 10)))
            .collect::<Vec<_>>(),
    );
    join_reader();
    assert_eq!(storage.validate(), Ok(25));
    assert_eq!(storage.frozen().1, 24, "three blocks froze");
}

#[test]
fn model_readers_see_whole_points_while_a_frozen_run_grows_in_place() {
    check("reader_during_run_appends", reader_during_run_appends);
}

/// Idle freezing under the same protocol: series 7 falls behind the
/// shard's horizon (series 8 moves it on) and its newest block is frozen
/// while a reader scans and looks it up; the next append thaws it. Every
/// point seen must be whole, and none may vanish.
fn reader_during_idle_freezing() {
    let storage = freezing_storage(Some(20));
    let v = |ts: i64| 1000 + ts as u64;
    storage.merge_run(&[10, 20, 30].map(|ts| Record::new(SERIES, ts, v(ts))));
    assert_eq!(storage.frozen().1, 0, "series 7 is not idle yet");
    let join_reader = spawn_reader(
        &storage,
        SERIES,
        |_| false,
        |storage| {
            assert_eq!(storage.get(SERIES, 20), Some(1020), "get of an idle point");
        },
    );
    // The horizon moves to 100: series 7 (newest 30) is idle, frozen whole.
    storage.merge_run(&[Record::new(8, 100, v(100))]);
    assert_eq!(storage.frozen().1, 3, "series 7's newest block froze");
    // An append to series 7 thaws it.
    storage.merge_run(&[Record::new(SERIES, 110, v(110))]);
    join_reader();
    assert_eq!(storage.validate(), Ok(5));
    assert_eq!(storage.frozen().1, 0, "series 7 thawed");
}

#[test]
fn model_readers_see_whole_points_while_idle_series_freeze_and_thaw() {
    check("reader_during_idle_freezing", || {
        reader_during_idle_freezing()
    });
}

/// A segmented tail (freezing on) grows in place under the same protocol:
/// series 7 fills its first block (8 points under a model checker), then
/// its next block, segmented (segments of 1, 1, 2 and 4 points), takes
/// appends that allocate its segments one by one, with no new version,
/// while a reader scans and looks points up. Every point seen must be whole
/// and none may vanish; the bytes the segments take are counted.
fn reader_during_segment_growth(publish_first: bool) {
    let storage = freezing_storage(None);
    let v = |ts: i64| 1000 + ts as u64;
    merge_first_points(&storage, 8);
    // The next block starts (the first freezes): its head segment.
    storage.merge_run(&[Record::new(SERIES, 90, v(90))]);
    if publish_first {
        storage.set_mutant_publish_first();
    }
    let bytes = storage.bytes();
    let join_reader = spawn_reader(
        &storage,
        SERIES,
        |_| false,
        move |storage| {
            // (The negative control scans only: a lookup may trip on the
            // unwritten point first, with another message.)
            if !publish_first {
                assert_eq!(storage.get(SERIES, 90), Some(1090), "get of a head point");
                let grown = storage.get(SERIES, 110);
                assert!(matches!(grown, None | Some(1110)), "get of 110: {grown:?}");
            }
        },
    );
    storage.merge_run(&[100, 110].map(|ts| Record::new(SERIES, ts, v(ts))));
    storage.merge_run(&[120, 130].map(|ts| Record::new(SERIES, ts, v(ts))));
    join_reader();
    assert_eq!(storage.validate(), Ok(13));
    assert!(storage.bytes() > bytes, "the segments are counted");
}

#[test]
fn model_readers_see_whole_points_while_a_segmented_tail_grows() {
    check("reader_during_segment_growth", || {
        reader_during_segment_growth(false)
    });
}

/// Negative control for segmented tails: a length published before the
/// point is written shows a reader a point that was never written.
#[test]
#[should_panic(expected = "a point seen before it was written")]
fn model_negative_control_segmented_publishing_before_writing() {
    check("negative_control_segmented_publish_first", || {
        reader_during_segment_growth(true)
    });
}

/// Negative control: a block whose length is published before its points
/// are written shows a reader a point that was never written.
#[test]
#[should_panic(expected = "a point seen before it was written")]
fn model_negative_control_publishing_before_writing_shows_unwritten_points() {
    check("negative_control_publish_first", || {
        reader_during_appends_and_rewrites(SERIES, true)
    });
}

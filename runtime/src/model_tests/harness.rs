//! What the pipeline models run on: the real [`NodePipeline`] with a
//! stand-in for its rayon pool (jobs queue in a [`ModelExecutor`] and
//! model merge threads run them), writers that check what they get back,
//! and the end-of-model check that nothing was lost.

use std::collections::VecDeque;
use std::sync::atomic::Ordering as StdOrdering;

use numatree_core::Record;

use crate::health::{Health, Waiters};
use crate::pipeline::{Executor, Job, NodePipeline, NodeSetup, Origin};
use crate::plan::ShardRule;
use crate::slot::{Binder, Slot};
use crate::sync::{lock, Arc, AtomicUsize, Condvar, Mutex, Ordering};
use crate::Error;

/// Which part of the protocol to break, for the negative controls.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mutant {
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
pub(super) struct Harness {
    pub(super) node: Arc<NodePipeline>,
    pub(super) health: Arc<Health>,
    executor: Arc<ModelExecutor>,
    /// Slots whose `submit` has returned (for the flush-barrier check).
    pub(super) sealed: AtomicUsize,
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
    /// `s` in shard `s % shards`); every writer may help merge at once.
    pub(super) fn new(
        in_flight: usize,
        writers: usize,
        shards: u32,
        mutant: Mutant,
    ) -> Arc<Harness> {
        Self::with_helper_seats(in_flight, writers, shards, mutant, writers)
    }

    /// As [`new`](Self::new), with at most `seats` writers helping merge at
    /// once (the others park).
    pub(super) fn with_helper_seats(
        in_flight: usize,
        writers: usize,
        shards: u32,
        mutant: Mutant,
        seats: usize,
    ) -> Arc<Harness> {
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
            merge_nice: None,
            helper_seats: seats,
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
    pub(super) fn acquire(&self, origin: Origin) -> Result<Slot, Error> {
        let slot = self.node.acquire(origin)?;
        assert!(slot.is_empty(), "a slot came back with records in it");
        let (_, existing, limit) = self.node.slots.counts();
        assert!(existing <= limit, "{existing} slots exist, limit {limit}");
        Ok(slot)
    }

    /// `NodePipeline::submit`, counting the slots sealed.
    pub(super) fn submit(&self, slot: Slot, origin: Origin) -> Result<(), Error> {
        self.node.submit(slot, origin)?;
        self.sealed.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// A flush (`FlushTracker::barrier`) run beside writers and merges:
    /// when it returns, every slot whose `submit` returned before it began
    /// is merged.
    pub(super) fn flush_covers_earlier_seals(&self) {
        let sealed_before = self.sealed.load(Ordering::SeqCst);
        self.node.flush.barrier(&self.health).unwrap();
        let merged = self.node.counters.slots_merged.load(Ordering::SeqCst) as usize;
        assert!(
            merged >= sealed_before,
            "flush returned with {merged} slots merged, {sealed_before} sealed before it"
        );
    }

    /// A merge thread of the node's pool: runs `jobs` merge jobs (a job
    /// finds nothing to merge when a helping writer took its slot).
    pub(super) fn merge_jobs(&self, jobs: usize) {
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
    pub(super) fn write(&self, origin: Origin, series: u32, slots: usize, per_slot: usize) {
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

    pub(super) fn get(&self, series: u32, ts: i64) -> Option<u64> {
        let shard = &self.node.shards[self.node_shard(series)];
        shard.storage.get(series, ts)
    }

    pub(super) fn node_shard(&self, series: u32) -> usize {
        series as usize % self.node.shards.len()
    }

    /// Every slot is back in the pool and the trees hold `keys` keys.
    pub(super) fn assert_quiescent(&self, keys: usize) {
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

pub(super) fn value(series: u32, ts: i64) -> u64 {
    u64::from(series) * 1000 + ts as u64
}

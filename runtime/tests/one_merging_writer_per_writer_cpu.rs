//! Eight writers on a node with one writer CPU, merges held back until the
//! writers have run the pool dry: at most one writer merges at a time (the
//! node's one helper's seat), the others park and count a declined help,
//! and every record lands exactly once when merges resume.
//!
//! Why it matters: a helper preempted by another writer holds its shards'
//! lanes, and every slot behind it waits (`pipeline/node.rs`). Without the
//! seats every blocked writer would take a queued slot and merge it: this
//! test then sees two writers inside a merge at once.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use numatree::{Index, TopologySource, MERGE_HELPERS_ENV};

/// One NUMA node of two CPUs: one writer CPU, one merge CPU.
const ONE_WRITER_CPU: &str = "pack:1 numa:1 core:2 pu:1";
const WRITERS: usize = 8;
const SLOT: usize = 64;
/// In-flight slots: with one open slot per writer, the queue holds at least
/// `IN_FLIGHT - 2` sealed slots once every writer waits, so each writer that
/// may help finds one to take.
const IN_FLIGHT: usize = 16;
/// How long the writers may take to run the pool dry before the test
/// fails (they need milliseconds; a bound, not a synchronization).
const DEADLINE: Duration = Duration::from_secs(60);

/// A gate merges wait on until the test opens it, counting the writer
/// threads inside a merge and the most seen at once.
#[derive(Default)]
struct CountingGate {
    gate: common::Gate,
    writers_inside: AtomicUsize,
    most_writers_inside: AtomicUsize,
}

impl CountingGate {
    fn merge_starts(&self) {
        let writer = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("numatree-writer"));
        if writer {
            let inside = self.writers_inside.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_writers_inside.fetch_max(inside, Ordering::SeqCst);
        }
        self.gate.wait();
        if writer {
            self.writers_inside.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn one_writer_cpu_lets_one_writer_merge_at_a_time_and_loses_nothing() {
    let gate = Arc::new(CountingGate::default());
    let hook_gate = Arc::clone(&gate);
    // One seat, said outright so that `NUMATREE_MERGE_HELPERS` in the
    // environment cannot change it: the default's mapping is tested below.
    let index = Index::builder()
        .topology(TopologySource::Synthetic(ONE_WRITER_CPU.into()))
        .merge_helpers_per_node(1)
        .slot_capacity(SLOT)
        .slots_per_node(IN_FLIGHT)
        .merge_hook(move |_| hook_gate.merge_starts())
        .build()
        .unwrap();
    assert_eq!(index.plan().writer_cpus(0).len(), 1, "{}", index.plan());
    // More than the whole pool a writer (24 slots of 64), so no writer can
    // finish its stream before every writer waits for a slot.
    let pool = (IN_FLIGHT + WRITERS) * SLOT;
    let streams = common::scrape(WRITERS as u32 * 16, 160, WRITERS, 5, 1, 11);
    let oracle = common::oracle(&streams);
    assert!(streams.iter().all(|s| s.len() > pool + SLOT));

    std::thread::scope(|s| {
        let (index, streams) = (&index, &streams);
        let ingest = s.spawn(move || {
            index
                .run_writers(WRITERS, |ctx, w| {
                    for r in &streams[ctx.global] {
                        w.insert(r.key.series, r.key.ts, r.value)?;
                    }
                    Ok(())
                })
                .unwrap()
        });
        // Merges are held: every writer ends up merging or parked. One
        // merges (the seat), the other seven decline; without seats two
        // would be inside a merge.
        let started = Instant::now();
        loop {
            let declined = index.stats().total.helps_declined;
            let inside = gate.most_writers_inside.load(Ordering::SeqCst);
            if inside >= 2 || declined >= (WRITERS - 1) as u64 {
                break;
            }
            assert!(
                !ingest.is_finished(),
                "the writers finished with merges held back ({declined} helps declined)"
            );
            assert!(
                started.elapsed() < DEADLINE,
                "writers neither merged two at once nor declined: {declined} declined, {inside} inside"
            );
            std::thread::yield_now();
        }
        gate.gate.open();
        ingest.join().unwrap();
    });
    let stats = index.close().unwrap();
    common::assert_matches_oracle(&index, &oracle);
    assert_eq!(
        gate.most_writers_inside.load(Ordering::SeqCst),
        1,
        "writers merging at once, with one writer CPU"
    );
    assert!(stats.total.helps_declined >= (WRITERS - 1) as u64);
    assert!(stats.total.helped_merges > 0);
    stats.verify_accounting().unwrap();
}

#[test]
fn seats_default_to_each_nodes_writer_cpus_and_follow_the_setting() {
    let from_env = std::env::var(MERGE_HELPERS_ENV).is_ok_and(|v| !v.trim().is_empty());
    let two_nodes = || {
        Index::builder().topology(TopologySource::Synthetic(
            "pack:2 numa:1 core:4 pu:1".into(),
        ))
    };
    let index = two_nodes().build().unwrap();
    let writer_cpus: Vec<usize> = (0..index.plan().node_count())
        .map(|n| index.plan().writer_cpus(n).len())
        .collect();
    assert_eq!(writer_cpus, [2, 2], "{}", index.plan());
    if !from_env {
        assert_eq!(index.merge_helpers(), writer_cpus);
    }
    index.close().unwrap();

    let index = two_nodes().merge_helpers_per_node(5).build().unwrap();
    assert_eq!(index.merge_helpers(), [5, 5]);
    index.close().unwrap();
}

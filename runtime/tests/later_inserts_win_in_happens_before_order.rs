//! When one insert of a key happens before another, the later one wins once
//! both are flushed (the rule documented on `Writer`), whatever the writers,
//! threads and merge threads involved. Each case below left stale values on
//! a version whose order was kept per writer instead of per node.
//!
//! The index runs on a synthetic 8-CPU node (4 merge threads, 16 shards),
//! and the first slot's merge is delayed by 20 ms (fault injection through
//! the merge hook), so slots sealed after it are ready to merge first: the
//! window an order bug needs. No assertion depends on the delay; the first
//! value is also written in descending time order, a slower sort.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use numatree::{Index, TopologySource};

/// Keys per case, all of series 1 (one shard), so every overwrite races
/// against the merge of the slot it overwrites.
const KEYS: i64 = 3_000;

fn index() -> Index {
    Index::builder()
        .topology(TopologySource::Synthetic(
            "pack:1 numa:1 core:8 pu:1".into(),
        ))
        .slot_capacity(4096)
        .merge_hook({
            let first = AtomicBool::new(true);
            move |_| {
                if first.swap(false, Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(20));
                }
            }
        })
        .build()
        .unwrap()
}

/// The timestamps a writer of `value` inserts, in its order: the first
/// value descending (a slow sort), later ones ascending.
fn order(value: u64) -> Box<dyn Iterator<Item = i64>> {
    if value == 1 {
        Box::new((0..KEYS).rev())
    } else {
        Box::new(0..KEYS)
    }
}

/// Every key of series 1 in `0..KEYS` holds `value`, and the counters
/// account for every record.
fn assert_all(index: &Index, value: u64) {
    index.flush().unwrap();
    let stale: Vec<i64> = (0..KEYS)
        .filter(|&ts| index.get(1, ts) != Some(value))
        .collect();
    assert!(
        stale.is_empty(),
        "{} of {KEYS} keys do not hold the later value {value}, e.g. ts {:?} = {:?}",
        stale.len(),
        stale.first(),
        stale.first().map(|&ts| index.get(1, ts))
    );
    assert_eq!(index.len(), KEYS as usize);
    let stats = index.stats();
    stats.verify_accounting().unwrap();
    assert_eq!(stats.total.records_in_flight, 0);
}

#[test]
fn successive_writers_on_one_thread_the_later_wins() {
    let index = index();
    for value in 1..=3 {
        let mut w = index.writer();
        for ts in order(value) {
            w.insert(1, ts, value).unwrap();
        }
        drop(w);
    }
    assert_all(&index, 3);
}

#[test]
fn one_writer_many_slots_in_flight_the_later_wins() {
    let index = index();
    let mut w = index.writer();
    for value in 1..=4 {
        for ts in order(value) {
            w.insert(1, ts, value).unwrap();
        }
    }
    w.flush().unwrap();
    assert_all(&index, 4);
}

#[test]
fn run_writers_calls_in_sequence_the_later_call_wins() {
    let index = index();
    for value in 1..=3 {
        index
            .run_writers(1, |_, w| {
                for ts in order(value) {
                    w.insert(1, ts, value)?;
                }
                Ok(())
            })
            .unwrap();
    }
    assert_all(&index, 3);
}

#[test]
fn a_flushed_writer_then_a_channel_then_another_threads_insert_wins() {
    let index = index();
    let (tx, rx) = mpsc::channel();
    thread::scope(|s| {
        let index = &index;
        s.spawn(move || {
            let mut w = index.writer();
            for ts in order(1) {
                w.insert(1, ts, 1).unwrap();
            }
            w.flush().unwrap();
            tx.send(()).unwrap();
        });
        s.spawn(move || {
            rx.recv().unwrap();
            let mut w = index.writer();
            for ts in 0..KEYS {
                w.insert(1, ts, 2).unwrap();
            }
        });
    });
    assert_all(&index, 2);
}

#[test]
fn three_threads_handing_over_by_channels_the_last_wins() {
    let index = index();
    let (to_second, from_first) = mpsc::channel();
    let (to_third, from_second) = mpsc::channel();
    thread::scope(|s| {
        let index = &index;
        let write = move |value: u64| {
            let mut w = index.writer();
            for ts in order(value) {
                w.insert(1, ts, value).unwrap();
            }
            w.flush().unwrap();
        };
        s.spawn(move || {
            write(1);
            to_second.send(()).unwrap();
        });
        s.spawn(move || {
            from_first.recv().unwrap();
            write(2);
            to_third.send(()).unwrap();
        });
        s.spawn(move || {
            from_second.recv().unwrap();
            write(3);
        });
    });
    assert_all(&index, 3);
}

#[test]
fn concurrent_writers_leave_exactly_one_of_their_values() {
    let index = index();
    index
        .run_writers(4, |ctx, w| {
            for ts in 0..KEYS {
                w.insert(1, ts, 10 + ctx.global as u64)?;
            }
            Ok(())
        })
        .unwrap();
    index.flush().unwrap();
    assert_eq!(index.len(), KEYS as usize);
    for (ts, v) in index.scan(1, ..) {
        assert!(
            (10..14).contains(&v),
            "ts {ts} holds {v}, written by nobody"
        );
    }
    index.stats().verify_accounting().unwrap();
}

/// With slots to spare, a lone writer never waits: it does not wait for its
/// own earlier slots to merge, and waits count slot shortage only.
#[test]
fn a_writer_with_slots_to_spare_never_waits() {
    let index = Index::builder()
        .slot_capacity(64)
        .slots_per_node(10_000)
        .build()
        .unwrap();
    let mut w = index.writer();
    for i in 0..200_000i64 {
        w.insert((i % 100) as u32, i, 0).unwrap();
    }
    w.flush().unwrap();
    index.flush().unwrap();
    let stats = index.stats().total;
    assert_eq!(stats.backpressure_waits, 0, "{stats:?}");
    assert_eq!(stats.blocked, std::time::Duration::ZERO);
    assert_eq!(index.len(), 200_000);
}

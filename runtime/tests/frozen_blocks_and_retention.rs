//! Frozen blocks and retention against the `BTreeMap` oracle: every point
//! reads back the same whether its block is hot or frozen, late points and
//! updates into frozen blocks land, idle series freeze whole and thaw, and
//! `drop_before`, `drop_series` and `retain` remove exactly the points they
//! name and free memory.

mod common;

use std::collections::BTreeMap;

use numatree::{Error, Index, Record};

type Oracle = BTreeMap<(u32, i64), u64>;

fn insert_all(index: &Index, records: &[Record], oracle: &mut Oracle) {
    let mut w = index.writer();
    for r in records {
        w.insert(r.key.series, r.key.ts, r.value).unwrap();
        oracle.insert((r.key.series, r.key.ts), r.value);
    }
    w.flush().unwrap();
    drop(w);
    index.flush().unwrap();
}

/// `series` series of `points` points each, 10 apart, gauge-like values.
fn regular(series: u32, points: i64, version: u64) -> Vec<Record> {
    let mut out = Vec::new();
    for ts in 0..points {
        for s in 0..series {
            out.push(Record::new(
                s,
                ts * 10,
                common::value_of(s, ts * 10, version),
            ));
        }
    }
    out
}

/// Like `regular`, with values that do not compress (a hash of the key),
/// so that frozen blocks hold most of the index's bytes.
fn noisy(series: u32, points: i64) -> Vec<Record> {
    let mut records = regular(series, points, 0);
    for r in &mut records {
        let mut x = r.value.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 29;
        r.value = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    }
    records
}

/// Scans over sub-ranges of every series agree with the oracle.
fn assert_ranges(index: &Index, oracle: &Oracle, series: u32, end: i64) {
    for s in 0..series {
        for (lo, hi) in [
            (0, end),
            (5, 2_571),
            (2_560, 2_570),
            (1_234, 7_777),
            (end - 3, end + 50),
        ] {
            let want: Vec<(i64, u64)> = oracle
                .range((s, lo)..(s, hi))
                .map(|(k, v)| (k.1, *v))
                .collect();
            assert_eq!(index.scan(s, lo..hi), want, "scan({s}, {lo}..{hi})");
        }
    }
}

#[test]
fn frozen_blocks_read_back_exactly_and_take_late_points() {
    let index = Index::builder().slot_capacity(4096).build().unwrap();
    let mut oracle = Oracle::new();
    insert_all(&index, &regular(16, 3_000, 0), &mut oracle);
    let stats = index.stats().total;
    assert!(
        stats.frozen_points >= 16 * 2_816,
        "every full block but the newest is frozen: {stats:?}"
    );
    common::assert_matches_oracle(&index, &oracle);
    assert_ranges(&index, &oracle, 16, 30_000);

    // Late points: updates of frozen points, new points between them, and
    // points before the first block, all into frozen blocks.
    let mut late = Vec::new();
    for s in 0..16 {
        for ts in (0..29_000).step_by(997) {
            late.push(Record::new(s, ts, common::value_of(s, ts, 1)));
        }
        late.push(Record::new(s, -5, common::value_of(s, -5, 1)));
    }
    insert_all(&index, &late, &mut oracle);
    common::assert_matches_oracle(&index, &oracle);
    assert_ranges(&index, &oracle, 16, 30_000);
    let after = index.stats().total;
    assert!(
        after.frozen_points >= 16 * 2_816,
        "late points re-froze: {after:?}"
    );
}

#[test]
fn without_freezing_nothing_is_frozen() {
    let index = Index::builder().freeze_blocks(false).build().unwrap();
    let mut oracle = Oracle::new();
    insert_all(&index, &regular(4, 2_000, 0), &mut oracle);
    assert_eq!(index.stats().total.frozen_points, 0);
    assert_eq!(index.stats().total.frozen_bytes, 0);
    common::assert_matches_oracle(&index, &oracle);
}

#[test]
fn drop_before_removes_exactly_the_older_points_and_frees_memory() {
    for freeze in [true, false] {
        let index = Index::builder().freeze_blocks(freeze).build().unwrap();
        let mut oracle = Oracle::new();
        insert_all(&index, &noisy(32, 4_000), &mut oracle);
        let before = index.stats().total;
        // 20_005 lies inside a block: the edge block is cut exactly.
        let cutoff = 20_005;
        index.drop_before(cutoff);
        oracle.retain(|k, _| k.1 >= cutoff);
        common::assert_matches_oracle(&index, &oracle);
        assert_ranges(&index, &oracle, 32, 40_000);
        let after = index.stats().total;
        assert_eq!(after.points_dropped, 32 * 2_001);
        assert_eq!(
            after.retention_freed_bytes,
            before.tree_bytes - after.tree_bytes,
            "the freed-bytes counter is what tree_bytes lost"
        );
        assert_eq!(after.keys, before.keys - 32 * 2_001);
        // Older records inserted afterwards never show; newer ones do.
        let mut w = index.writer();
        w.insert(3, 5, 1).unwrap();
        w.insert(3, 40_000, 7).unwrap();
        w.flush().unwrap();
        drop(w);
        index.flush().unwrap();
        oracle.insert((3, 40_000), 7);
        assert_eq!(index.get(3, 5), None);
        assert_eq!(index.stats().total.records_expired, 1);
        common::assert_matches_oracle(&index, &oracle);

        // A lower cutoff later does nothing.
        index.drop_before(0);
        common::assert_matches_oracle(&index, &oracle);

        // Dropping half the time range freed about half of what dropping
        // everything frees (the rest is directories).
        index.drop_before(i64::MAX);
        common::assert_matches_oracle(&index, &Oracle::new());
        let all = before.tree_bytes - index.stats().total.tree_bytes;
        let half = before.tree_bytes - after.tree_bytes;
        assert!(
            half * 100 >= all * 45,
            "freeze {freeze}: dropping half freed {half} bytes of {all}"
        );
    }
}

#[test]
fn drop_series_removes_one_series() {
    let index = Index::builder().build().unwrap();
    let mut oracle = Oracle::new();
    insert_all(&index, &regular(8, 1_000, 0), &mut oracle);
    let bytes = index.stats().total.tree_bytes;
    // Records of the series still in a writer's flushed slot are merged
    // first, then dropped with the rest.
    let mut w = index.writer();
    w.insert(5, 99_999, 1).unwrap();
    w.flush().unwrap();
    index.drop_series(5).unwrap();
    oracle.retain(|k, _| k.0 != 5);
    assert_eq!(index.scan(5, ..), []);
    assert_eq!(index.get(5, 99_999), None);
    common::assert_matches_oracle(&index, &oracle);
    let after = index.stats().total.tree_bytes;
    // The series can start again.
    w.insert(5, 1, 2).unwrap();
    w.flush().unwrap();
    drop(w);
    index.flush().unwrap();
    oracle.insert((5, 1), 2);
    common::assert_matches_oracle(&index, &oracle);

    // The 8 series held about the same: dropping one freed an eighth of
    // what dropping them all frees (the rest is directories).
    for s in 0..8 {
        index.drop_series(s).unwrap();
    }
    common::assert_matches_oracle(&index, &Oracle::new());
    let share = (bytes - index.stats().total.tree_bytes) / 8;
    assert!(
        bytes - after >= share * 9 / 10,
        "{bytes} -> {after} bytes (a series held ~{share})"
    );
}

#[test]
fn retain_keeps_the_last_window_of_time() {
    let window = 5_000;
    let index = Index::builder().retain(window).build().unwrap();
    let mut oracle = Oracle::new();
    insert_all(&index, &regular(8, 3_000, 0), &mut oracle);
    let stats = index.stats().total;
    let newest = 29_990;
    // Everything older than the newest minus the window (and the sweep's
    // slack of a sixteenth of it) is gone; nothing newer is.
    // (Each shard sweeps on its own, so each series has its own floor.)
    let floors: Vec<i64> = (0..8)
        .map(|s| index.scan(s, ..).first().unwrap().0)
        .collect();
    for &floor in &floors {
        assert!(floor >= newest - window - window / 16, "floor {floor}");
    }
    oracle.retain(|k, _| k.1 >= floors[k.0 as usize]);
    assert!(oracle.len() < 8 * 600);
    assert_eq!(
        stats.points_dropped + stats.records_expired + oracle.len() as u64,
        8 * 3_000,
        "every record is kept, dropped or expired: {stats:?}"
    );
    common::assert_matches_oracle(&index, &oracle);
}

#[test]
fn a_writer_waiting_for_memory_wakes_when_retention_frees_it() {
    let index = Index::builder()
        .slot_capacity(1024)
        .slots_per_node(2)
        .memory_budget(2 << 20)
        .wait_for_memory(true)
        .build()
        .unwrap();
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut w = index.writer();
            // ~4 MiB of points at 16 B (random values do not compress):
            // twice the budget.
            let mut rng = common::rng(3);
            for ts in 0..250_000 {
                w.insert((ts % 4) as u32, ts, rand::RngExt::random::<u64>(&mut rng))?;
            }
            w.flush()
        });
        // The writer parks once the budget is spent (storage and slots):
        // wait until it found it spent (it counts that before it waits;
        // freeing earlier, as when this waited for the bytes used, could
        // leave it never waiting), then free old points until it is done.
        loop {
            if index.stats().total.memory_waits > 0 || writer.is_finished() {
                break;
            }
            std::thread::yield_now();
        }
        assert!(
            !writer.is_finished(),
            "the writer should be waiting for memory"
        );
        let mut cutoff = 0;
        while !writer.is_finished() {
            cutoff += 10_000;
            index.drop_before(cutoff);
            std::thread::yield_now();
        }
        writer.join().unwrap().unwrap();
    });
    index.flush().unwrap();
    let stats = index.stats();
    stats.verify_accounting().unwrap();
    assert!(stats.total.points_dropped > 0);
    // It waited, and the stats say so.
    assert!(stats.total.memory_waits > 0);
    assert!(!stats.total.memory_blocked.is_zero());
}

/// `retain` with a memory budget: a writer over the budget first has
/// retention catch up with the newest points merged. The merges sweep only
/// once that horizon moved by a sixteenth of the window, which it never
/// does while every writer waits for memory; so writers waited forever
/// (or, as here without waiting, got `MemoryBudget`) while the budget was
/// held by points the window no longer covered.
#[test]
fn a_writer_over_the_budget_first_catches_retention_up() {
    const WINDOW: i64 = 1_000_000;
    // Series 0 from 0, then series 1 from WINDOW: the merges sweep at 0
    // when series 1 starts, then not again (its 60,000 points move the
    // horizon by less than WINDOW / 16), so series 0's first 60,000 points
    // fall out of the window but stay.
    let mut rng = common::rng(5);
    let mut records: Vec<Record> = (0..100_000)
        .map(|ts| Record::new(0, ts, rand::RngExt::random::<u64>(&mut rng)))
        .collect();
    let first = records.len();
    records.extend(
        (0..60_000).map(|ts| Record::new(1, WINDOW + ts, rand::RngExt::random::<u64>(&mut rng))),
    );
    let build = |budget: Option<usize>, wait: bool| {
        let b = Index::builder()
            .nodes(1)
            .shards_per_node(1)
            .slot_capacity(1024)
            .slots_per_node(2)
            .retain(WINDOW);
        match budget {
            Some(budget) => b.memory_budget(budget).wait_for_memory(wait),
            None => b,
        }
        .build()
        .unwrap()
    };
    let used = |index: &Index| {
        let t = index.stats().total;
        t.tree_bytes + t.slot_bytes
    };
    // What the two parts take without a budget: the budget goes between.
    let probe = build(None, false);
    let mut oracle = Oracle::new();
    insert_all(&probe, &records[..first], &mut oracle);
    let first_part = used(&probe);
    insert_all(&probe, &records[first..], &mut oracle);
    let both = used(&probe);
    // The sweep when series 1 started (at its first slot's newest point).
    let swept = probe.stats().total.points_dropped;
    assert!(swept <= 1024, "{swept} points swept");
    assert!(
        both > first_part + (256 << 10),
        "{first_part} then {both} bytes"
    );
    drop(probe);

    // Writers that get `MemoryBudget` when it stays spent, and writers
    // that wait for memory then: neither fails nor waits here.
    for wait in [false, true] {
        let index = build(Some(first_part + (both - first_part) / 2), wait);
        let mut w = index.writer();
        for r in &records {
            if let Err(e) = w.insert(r.key.series, r.key.ts, r.value) {
                panic!("({}, {}), wait {wait}: {e}", r.key.series, r.key.ts);
            }
        }
        w.flush().unwrap();
        drop(w);
        index.flush().unwrap();
        let stats = index.stats();
        stats.verify_accounting().unwrap();
        assert!(stats.total.points_dropped > 0);
        assert!(stats.total.memory_waits > 0, "the budget was never spent");
        assert!(used(&index) < both, "retention freed nothing");
        // Series 1 whole; of series 0, what is gone is older than the window.
        let mut kept = oracle.clone();
        kept.retain(|&(s, ts), _| s == 1 || index.get(s, ts).is_some());
        assert_eq!(kept.len(), 160_000 - stats.total.points_dropped as usize);
        assert_eq!(
            kept.range((0, 60_000)..(1, 0)).count(),
            40_000,
            "a point in the window is gone"
        );
        common::assert_matches_oracle(&index, &kept);
        index.validate().unwrap();
    }
}

/// An idle series (its newest point falls `age` behind its shard's
/// newest) has its newest block frozen too, reads back the same, and thaws
/// when a point arrives; measured against the same ingest without the
/// setting, where the idle series' newest block stays hot.
#[test]
fn freeze_idle_after_freezes_the_newest_block_of_idle_series() {
    let build = |idle: bool| {
        let b = Index::builder().nodes(1).shards_per_node(1);
        let b = if idle { b.freeze_idle_after(1_000) } else { b };
        b.build().unwrap()
    };
    // Series 0 stops at 990 (100 points, one hot block: short series grow
    // through size classes); series 1 runs on to 29,990.
    let mut records = regular(1, 100, 0);
    records.extend(
        regular(2, 3_000, 0)
            .into_iter()
            .filter(|r| r.key.series == 1),
    );
    let (idle, busy) = (build(true), build(false));
    let (mut oracle, mut unused) = (Oracle::new(), Oracle::new());
    insert_all(&idle, &records, &mut oracle);
    insert_all(&busy, &records, &mut unused);
    let (i, b) = (idle.stats().total, busy.stats().total);
    assert_eq!(
        i.frozen_points - b.frozen_points,
        100,
        "exactly the idle series' 100 hot points froze: {i:?} against {b:?}"
    );
    assert!(i.tree_bytes < b.tree_bytes, "{i:?} against {b:?}");
    common::assert_matches_oracle(&idle, &oracle);
    idle.stats().verify_accounting().unwrap();

    // A new point thaws series 0; every point still reads back.
    insert_all(&idle, &[Record::new(0, 30_000, 7)], &mut oracle);
    assert_eq!(
        idle.stats().total.frozen_points,
        b.frozen_points,
        "series 0's block is hot again"
    );
    common::assert_matches_oracle(&idle, &oracle);
    assert_eq!(
        idle.scan(0, 980..),
        vec![
            (980, oracle[&(0, 980)]),
            (990, oracle[&(0, 990)]),
            (30_000, 7)
        ]
    );
}

#[test]
fn bad_retention_settings_are_clear_errors() {
    let invalid = |builder: numatree::Builder, says: &str| {
        let err = builder.build().unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig(m) if m.contains(says)),
            "{err}"
        );
    };
    invalid(Index::builder().retain(0), "retain");
    invalid(Index::builder().freeze_idle_after(0), "freeze_idle_after");
    invalid(
        Index::builder().retain(100).freeze_idle_after(100),
        "below retain",
    );
    Index::builder()
        .retain(100)
        .freeze_idle_after(99)
        .build()
        .unwrap();
    invalid(
        Index::builder().freeze_blocks(false).freeze_idle_after(60),
        "needs freezing on",
    );
    invalid(Index::builder().wait_for_memory(true), "memory_budget");
}

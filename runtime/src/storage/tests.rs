use super::*;

#[test]
fn series_end_finds_where_each_series_of_a_run_ends() {
    // Series of 1..=40 records, each run checked against a linear walk.
    for lens in [
        vec![1],
        vec![1, 1, 1],
        vec![2, 5, 1, 16, 17, 3],
        (1..=40).collect(),
    ] {
        let run: Vec<Record> = lens
            .iter()
            .enumerate()
            .flat_map(|(s, &n)| (0..n).map(move |t| Record::new(s as u32 * 3, t as i64, 0)))
            .collect();
        let mut start = 0;
        for &n in &lens {
            assert_eq!(series_end(&run, start), start + n, "{lens:?} at {start}");
            start += n;
        }
        assert_eq!(start, run.len());
    }
}

#[test]
fn a_reserve_holds_arena_chunks_counted_until_frozen_blocks_start_them() {
    // Enough points for one arena chunk of frozen bytes.
    let points = 128 * MAX_POINTS;
    let storage = shard(true);
    let empty = storage.bytes();
    storage.reserve(points, None);
    let reserved = storage.arena.reserved_left();
    assert!(
        reserved > 0 && reserved <= points * RESERVED_FROZEN_BYTES_PER_POINT,
        "{reserved}"
    );
    assert_eq!(
        storage.bytes() - empty,
        reserved
            + lock(&storage.reserve)
                .blocks
                .iter()
                .map(Block::bytes)
                .sum::<usize>()
    );
    assert_eq!(
        ShardStorage::reserved_bytes(points, None, true),
        Some(storage.bytes() - empty),
        "the builder's estimate is what the reserve takes, whole chunks"
    );
    assert_eq!(storage.validate(), Ok(0));
    // Blocks of raw values: all but the last freeze, into what is left of
    // the chunk the reserved hot blocks were carved from, then into the
    // reserved chunks (twice the points reserved: the frozen bytes outgrow
    // that leftover).
    let run: Vec<Record> = (0..2 * points as i64)
        .map(|ts| Record::new(7, ts, (ts as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
        .collect();
    storage.merge_run(&run);
    assert!(storage.arena.reserved_left() < reserved);
    assert_eq!(
        storage.validate(),
        Ok(2 * points),
        "started chunks left the count"
    );
    // A shard that does not freeze reserves no arena chunk.
    let hot = shard(false);
    hot.reserve(points, None);
    assert_eq!(hot.arena.reserved_left(), 0);
    assert_eq!(hot.validate(), Ok(0));
}

#[test]
fn a_reserve_told_its_series_holds_a_few_tails_a_series_when_freezing() {
    let points = 128 * MAX_POINTS;
    let hot_blocks = |storage: &ShardStorage| lock(&storage.reserve).blocks.len();
    // Freezing: 3 series take at most 4 tails each, not 128.
    let storage = shard(true);
    let empty = storage.bytes();
    storage.reserve(points, Some(3));
    assert_eq!(hot_blocks(&storage), 3 * RESERVED_TAILS_PER_SERIES);
    assert_eq!(
        ShardStorage::reserved_bytes(points, Some(3), true),
        Some(storage.bytes() - empty),
        "the builder's estimate is what the reserve takes"
    );
    let full = shard(true);
    full.reserve(points, None);
    assert_eq!(hot_blocks(&full), 128);
    assert_eq!(
        storage.arena.reserved_left(),
        full.arena.reserved_left(),
        "the frozen bytes' chunks do not depend on the series"
    );
    // Fewer points than the series' tails: one block per 256 points still.
    let few = shard(true);
    few.reserve(2 * MAX_POINTS, Some(1_000));
    assert_eq!(hot_blocks(&few), 2);
    // Not freezing: every full block stays, whatever the series.
    let hot = shard(false);
    hot.reserve(points, Some(3));
    assert_eq!(hot_blocks(&hot), 128);
    assert_eq!(
        ShardStorage::reserved_bytes(points, Some(3), false),
        ShardStorage::reserved_bytes(points, None, false)
    );
    // The smaller reserve still serves an ingest: 3 long series, points
    // exact after it.
    for b in 0..6i64 {
        for series in 0..3u32 {
            let run: Vec<Record> = (b * MAX_POINTS as i64..(b + 1) * MAX_POINTS as i64)
                .map(|ts| Record::new(series, ts, ts as u64 ^ u64::from(series)))
                .collect();
            storage.merge_run(&run);
        }
    }
    assert_eq!(storage.validate(), Ok(18 * MAX_POINTS));
}

#[test]
fn frozen_tails_are_kept_for_reuse_and_released_on_request() {
    let storage = shard(true);
    let full = MAX_POINTS as i64;
    // Series 1 and 2, four blocks each, a block per run: from the
    // second run on, each run freezes the series' tail, which the
    // merge keeps.
    for b in 0..4 {
        for series in [1, 2] {
            let run: Vec<Record> = (b * full..(b + 1) * full)
                .map(|ts| Record::new(series, ts, ts as u64 * 3))
                .collect();
            storage.merge_run(&run);
        }
        // Let the epoch collector reclaim the retired versions (other
        // tests' pins may hold it back: whether tails were reused is
        // `segmented`'s tests' to check, and the data is checked below).
        for _ in 0..64 {
            flush(pin(), 1);
        }
    }
    let kept = lock(&storage.reserve).spare.len();
    assert!((1..=6).contains(&kept), "6 tails froze, kept: {kept}");
    assert_eq!(storage.validate(), Ok(8 * MAX_POINTS));
    storage.release_spare();
    assert_eq!(lock(&storage.reserve).spare.len(), 0);
    assert_eq!(storage.validate(), Ok(8 * MAX_POINTS));
    for series in [1, 2] {
        let mut points = Vec::new();
        storage.scan(series, .., usize::MAX, |ts, v| points.push((ts, v)));
        assert_eq!(points.len(), 4 * MAX_POINTS);
        assert!(points.iter().all(|&(ts, v)| v == ts as u64 * 3));
    }
}

#[test]
fn a_failed_restore_of_a_series_leaves_the_reserve_counted() {
    use crate::snapshot::StoredBlock;
    use crate::storage::frozen::Encoder;
    use numatree_core::Point;

    let storage = shard(true);
    storage.reserve(128 * MAX_POINTS, None);
    assert!(storage.arena.reserved_left() > 0);
    let bytes = Encoder::default().freeze_points((0..100).map(|t| Point::new(t, t as u64 * 7)));
    // The first block is copied into the shard's arena (starting a
    // reserved chunk); the second says the wrong point count.
    let blocks = [
        StoredBlock::Encoded {
            points: 100,
            bytes: &bytes,
        },
        StoredBlock::Encoded {
            points: 99,
            bytes: &bytes,
        },
    ];
    let err = storage.install(3, &mut blocks.into_iter()).unwrap_err();
    assert!(err.contains("says 99 points"), "{err}");
    assert_eq!(storage.validate(), Ok(0));
    // A whole series installs, and counts.
    let ok = [StoredBlock::Encoded {
        points: 100,
        bytes: &bytes,
    }];
    assert_eq!(storage.install(3, &mut ok.into_iter()), Ok(100));
    assert_eq!(storage.validate(), Ok(100));
}

#[test]
fn appends_on_the_fast_path_end_as_the_general_merge_leaves_them() {
    // Two shards merge the same runs, one with the fast paths
    // (`append_short`, `append_fast`) and one without: they must hold the
    // same points and count the same bytes after every run. Series `s`
    // gains `s % 4` points a run (a fourth of them none), so the short ones
    // regrow through the size classes at different rates and the longest
    // pass `MAX_POINTS` (the general merge's); every fifth run brings
    // series divisible by 7 a late point and a new value for their first
    // one, and series divisible by 3 a new value for their last one. Odd
    // series have ids past the direct cells' ranks (table cells).
    use std::collections::BTreeMap;
    for freeze in [true, false] {
        let fast = shard(freeze);
        let general = shard(freeze);
        lock(&general.reserve).general_merge_only = true;
        let mut oracle = BTreeMap::new();
        let mut next = [0i64; 64];
        for round in 0..200u64 {
            let mut run = Vec::new();
            for (s, next_ts) in next.iter_mut().enumerate() {
                let series = s as u32 + if s % 2 == 1 { 1 << 21 } else { 0 };
                let value = |ts: i64| (ts as u64 ^ round).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                if round % 5 == 4 && s % 7 == 0 && *next_ts > 2 {
                    run.push(Record::new(series, 0, value(-1)));
                    run.push(Record::new(series, 2 * *next_ts - 1, value(0)));
                }
                if round % 5 == 2 && s % 3 == 0 && *next_ts > 0 {
                    // A new value for the series' last point: not an append.
                    run.push(Record::new(series, 2 * (*next_ts - 1), value(-2)));
                }
                for _ in 0..s % 4 {
                    run.push(Record::new(series, 2 * *next_ts, value(*next_ts)));
                    *next_ts += 1;
                }
            }
            run.sort_by_key(|r| (r.key.series, r.key.ts));
            run.dedup_by_key(|r| (r.key.series, r.key.ts));
            for r in &run {
                oracle.insert((r.key.series, r.key.ts), r.value);
            }
            let (a, b) = (fast.merge_run(&run), general.merge_run(&run));
            assert_eq!(
                (a.inserted, a.replaced),
                (b.inserted, b.replaced),
                "run {round}"
            );
            assert_eq!(
                fast.bytes(),
                general.bytes(),
                "run {round}, freeze {freeze}"
            );
            assert_eq!(fast.validate(), Ok(oracle.len()), "run {round}");
            assert_eq!(general.validate(), Ok(oracle.len()), "run {round}");
        }
        for (&(series, ts), &value) in &oracle {
            assert_eq!(fast.get(series, ts), Some(value), "{series} at {ts}");
        }
        assert_eq!(
            fast.get(2, 1),
            None,
            "odd timestamps are only ever late ones"
        );
        let took = lock(&fast.reserve).fast_appends;
        assert!(took > 1_000, "the fast path took {took} runs");
        let short = lock(&fast.reserve).short_appends;
        assert!(short > 1_000, "the short series' path took {short} runs");
        assert_eq!(lock(&general.reserve).fast_appends, 0);
        assert_eq!(lock(&general.reserve).short_appends, 0);
    }
}

#[test]
fn lookups_before_and_after_the_hot_tail_find_what_was_merged() {
    use numatree_core::series::BlockIndex;
    use std::collections::BTreeMap;
    let storage = shard(true);
    let mut oracle = BTreeMap::new();
    // Three series with steps 1, 7 and 1,000 between points; every
    // fifth round also brings late points (odd offsets, between earlier
    // points), which split blocks so that the frozen run's bounds do not
    // split its span evenly: a lookup's guess lands too low or too high.
    let steps = [(1u32, 1i64), (2, 7), (3, 1_000)];
    for round in 0..60i64 {
        let mut run = Vec::new();
        for &(series, step) in &steps {
            for k in 0..40 {
                run.push(Record::new(series, (round * 40 + k) * 2 * step, 0));
            }
            if round % 5 == 4 {
                // Early on, far back; later, into the newest frozen
                // blocks: bounds denser at one end or the other.
                let lates = if round < 30 {
                    [3, 77, 301, 1_201]
                } else {
                    [1, 2, 3, 4].map(|j| round * 40 - 60 * j)
                };
                for late in lates {
                    run.push(Record::new(series, (late * 2 + 1) * step, 0));
                }
            }
        }
        run.sort_by_key(|r| r.key);
        run.dedup_by_key(|r| r.key);
        for r in &mut run {
            r.value = (r.key.ts as u64) ^ (u64::from(r.key.series) << 40) ^ round as u64;
            oracle.insert((r.key.series, r.key.ts), r.value);
        }
        storage.merge_run(&run);
    }
    assert_eq!(storage.validate(), Ok(oracle.len()));
    for &(series, _) in &steps {
        let (frozen, all) = storage
            .directory
            .with(series, |v| (v.frozen_len(), BlockIndex::len(v)))
            .expect("merged");
        assert!(
            frozen >= 3 && all > frozen,
            "{series}: {frozen} frozen of {all}"
        );
        let times: Vec<i64> = oracle
            .range((series, i64::MIN)..=(series, i64::MAX))
            .map(|(&(_, ts), _)| ts)
            .collect();
        let (first, last) = (times[0], times[times.len() - 1]);
        let probes = times.iter().flat_map(|&ts| [ts - 1, ts, ts + 1]).chain([
            first - 3,
            i64::MIN,
            last + 3,
            i64::MAX,
        ]);
        for ts in probes {
            assert_eq!(
                storage.get(series, ts),
                oracle.get(&(series, ts)).copied(),
                "series {series} at {ts}"
            );
        }
    }
}

/// A shard of a one-shard plan that freezes blocks or not, keeping
/// everything.
fn shard(freeze: bool) -> ShardStorage {
    ShardStorage::new(
        ShardRule::new(1, 1),
        StorageConfig {
            freeze,
            retain: None,
            freeze_idle: None,
            huge_pages: false,
        },
    )
}

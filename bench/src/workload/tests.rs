use super::*;

fn cfg(late: f64, dup: f64, zipf: Option<f64>) -> WorkloadConfig {
    WorkloadConfig {
        series: 37,
        points: 300,
        late_pct: late,
        max_delay: 5,
        dup_pct: dup,
        zipf,
        ..WorkloadConfig::default()
    }
}

/// Replays every writer's stream into a map: the ground truth.
fn replay(parts: &[Vec<Record>]) -> std::collections::BTreeMap<Key, u64> {
    let mut m = std::collections::BTreeMap::new();
    for p in parts {
        for r in p {
            m.insert(r.key, r.value);
        }
    }
    m
}

#[test]
fn generator_is_deterministic() {
    let a = Workload::new(cfg(5.0, 3.0, None)).unwrap();
    let b = Workload::new(cfg(5.0, 3.0, None)).unwrap();
    assert_eq!(a.partition(3), b.partition(3));
    assert_eq!(a.lookups(500, 10.0, 1), b.lookups(500, 10.0, 1));
    assert_eq!(a.scans(50, 20), b.scans(50, 20));
}

#[test]
fn oracle_counts_distinct_keys_and_final_values_with_late_points_and_duplicates() {
    for zipf in [None, Some(1.0)] {
        let w = Workload::new(cfg(10.0, 5.0, zipf)).unwrap();
        let o = w.oracle();
        assert!(o.rewritten_keys().count() > 0);
        for writers in [1, 4] {
            let parts = w.partition(writers);
            let total: usize = parts.iter().map(Vec::len).sum();
            assert_eq!(total as u64, o.records());
            let truth = replay(&parts);
            assert_eq!(truth.len() as u64, o.distinct_keys());
            assert!(o.records() > o.distinct_keys());
            for (k, v) in &truth {
                assert_eq!(o.expected(k.series, k.ts), Some(*v), "{k:?}");
            }
            for (w_idx, p) in parts.iter().enumerate() {
                assert!(p
                    .iter()
                    .all(|r| Workload::owner(r.key.series, writers) == w_idx));
            }
        }
    }
}

#[test]
fn every_value_shape_replays_to_the_oracle_and_a_split_partition_is_the_whole() {
    for values in ValueShape::ALL {
        let w = Workload::new(WorkloadConfig {
            values,
            ..cfg(10.0, 5.0, None)
        })
        .unwrap();
        let o = w.oracle();
        let parts = w.partition(3);
        let truth = replay(&parts);
        assert_eq!(truth.len() as u64, o.distinct_keys());
        for (k, v) in &truth {
            assert_eq!(o.expected(k.series, k.ts), Some(*v), "{values:?} {k:?}");
        }
        let (before, after) = w.partition_split(3, 100);
        for (i, p) in parts.iter().enumerate() {
            assert_eq!([&before[i][..], &after[i][..]].concat(), *p);
        }
        assert!(before.iter().flatten().all(|r| r.key.ts < o.ts_of(100)));
    }
}

#[test]
fn duplicate_share_matches_the_percentage_and_the_seed_changes_the_draws() {
    let w = Workload::new(cfg(0.0, 10.0, None)).unwrap();
    let o = w.oracle();
    let share = (o.records() - o.distinct_keys()) as f64 / o.distinct_keys() as f64;
    assert!((0.09..0.11).contains(&share), "{share}");
    let other = Workload::new(WorkloadConfig {
        seed: 1,
        ..cfg(0.0, 10.0, None)
    })
    .unwrap();
    assert_ne!(w.partition(1), other.partition(1));
    let first = |mut r: WorkloadRng| r.random::<u64>();
    assert_ne!(first(stream_rng(7, 1)), first(stream_rng(7, 2)));
    assert_eq!(first(stream_rng(7, 1)), first(stream_rng(7, 1)));
}

#[test]
fn late_points_arrive_out_of_order_within_max_delay() {
    let w = Workload::new(cfg(20.0, 0.0, None)).unwrap();
    let p = &w.partition(1)[0];
    let ts0 = w.config().ts0;
    let iv = w.config().interval;
    let mut out_of_order = 0;
    let mut last = vec![i64::MIN; 37];
    for r in p {
        let l = &mut last[r.key.series as usize];
        if r.key.ts < *l {
            out_of_order += 1;
            assert!(*l - r.key.ts <= 6 * iv, "delay beyond max-delay");
        }
        *l = (*l).max(r.key.ts);
        assert!(r.key.ts >= ts0);
    }
    assert!(out_of_order > 100);
}

#[test]
fn zipf_skews_volume_toward_low_series_ids() {
    let w = Workload::new(cfg(0.0, 0.0, Some(1.0))).unwrap();
    let o = w.oracle();
    assert_eq!(o.distinct_keys(), 37 * 300);
    assert!(o.points(0) > 5 * o.points(36));
}

#[test]
fn query_sets_have_the_promised_answers() {
    let w = Workload::new(cfg(5.0, 5.0, None)).unwrap();
    let o = w.oracle();
    let l = w.lookups(1000, 10.0, 0);
    assert_eq!(l.iter().filter(|q| q.expected.is_none()).count(), 100);
    assert!(l.iter().all(|q| o.expected(q.series, q.ts) == q.expected));
    let s = w.scans(200, 50);
    assert!(s.iter().all(|q| q.expected >= 1 && q.expected <= 50));
    assert!(s.iter().any(|q| q.expected == 50));
}

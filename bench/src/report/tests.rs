use super::*;

#[test]
fn stats_take_the_median_min_and_max() {
    assert_eq!(
        Stat::of(&[3.0, 1.0, 2.0]),
        Stat {
            median: 2.0,
            min: 1.0,
            max: 3.0,
            n: 3
        }
    );
    assert_eq!(Stat::of(&[4.0, 1.0]).median, 2.5);
}

#[test]
fn numbers_print_like_the_predecessor_tables() {
    assert_eq!(count(10_240_000.0), "10,240,000");
    assert_eq!(count(-1234.0), "-1,234");
    assert_eq!(num(110.23), "110.2");
    assert_eq!(num(5.661), "5.66");
    assert_eq!(
        cell(
            Some(&Stat {
                median: 2.0,
                min: 1.5,
                max: 2.5,
                n: 3
            }),
            Fmt::Rate
        ),
        "2.00 [1.50..2.50]"
    );
    assert_eq!(cell(None, Fmt::Rate), "—");
}

/// A contender without a reserved mode, with queries or not.
fn info(name: &str, queries: bool) -> ContenderInfo {
    ContenderInfo {
        name: name.into(),
        caps: Caps {
            queries,
            reserved: false,
        },
    }
}

fn summary(phase: Phase, contender: &str, threads: usize, metric: &str, v: f64) -> Summary {
    let stat = Stat {
        median: v,
        min: v,
        max: v,
        n: 1,
    };
    Summary {
        shape: Shape::Default,
        phase,
        contender: contender.into(),
        threads,
        metrics: [(metric.to_owned(), stat)].into(),
    }
}

#[test]
fn tables_compare_numatree_with_the_best_peer_and_mark_unsupported_rows() {
    let mut cfg = BenchConfig::profile("ci").unwrap();
    cfg.threads = vec![2];
    cfg.phases = vec![Phase::Insert, Phase::Lookup];
    let contenders = [
        info("numatree", true),
        info("btree-sharded", true),
        info("vec-ceiling", false),
    ];
    let sums = [
        summary(Phase::Insert, "numatree", 2, metric::MOPS_E2E, 120.0),
        summary(Phase::Insert, "btree-sharded", 2, metric::MOPS_E2E, 12.0),
        summary(Phase::Insert, "vec-ceiling", 2, metric::MOPS_E2E, 140.0),
        summary(Phase::Lookup, "numatree", 2, metric::MOPS, 6.0),
        summary(Phase::Lookup, "btree-sharded", 2, metric::MOPS, 2.0),
    ];
    assert_eq!(
        best_peer(
            &sums,
            Shape::Default,
            Phase::Insert,
            2,
            metric::MOPS_E2E,
            Better::Higher
        ),
        Some(("btree-sharded", 12.0))
    );
    let t = tables(&cfg, &contenders, &sums);
    assert!(t.contains("x best peer"), "{t}");
    assert!(t.contains("| numatree | 2 | — | 120.0 |"), "{t}");
    assert!(t.contains("10.00x btree-sharded"), "{t}");
    assert!(t.contains("3.00x btree-sharded"), "{t}");
    assert!(t.contains("| vec-ceiling | 2 | n/a (no queries) |"), "{t}");
    assert!(!t.contains("### Scan"), "{t}");
}

#[test]
fn insert_rows_show_page_faults_and_the_kernel_s_share() {
    let mut cfg = BenchConfig::profile("ci").unwrap();
    cfg.threads = vec![2];
    cfg.phases = vec![Phase::Insert];
    let contenders = [info("numatree", true)];
    let mut sum = summary(Phase::Insert, "numatree", 2, metric::MOPS_E2E, 53.19);
    for (m, v) in [(metric::PAGE_FAULTS_K, 24.23), (metric::KERNEL_CPU, 0.183)] {
        let stat = Stat {
            median: v,
            min: v,
            max: v,
            n: 1,
        };
        sum.metrics.insert(m.to_owned(), stat);
    }
    let t = tables(&cfg, &contenders, &[sum]);
    assert!(t.contains("| page faults (K) | kernel CPU |"), "{t}");
    assert!(t.contains("| 24.23 | 18.3% |"), "{t}");
}

fn with_shape(mut s: Summary, shape: Shape) -> Summary {
    s.shape = shape;
    s
}

#[test]
fn series_vec_is_a_peer_and_memory_compares_with_the_smallest_peer() {
    let mut cfg = BenchConfig::profile("ci").unwrap();
    cfg.threads = vec![1, 2];
    cfg.phases = vec![Phase::Insert, Phase::Memory];
    let contenders = [
        info("numatree", true),
        info("btree-sharded", true),
        info("series-vec", true),
        info("vec-ceiling", false),
    ];
    let sums = [
        summary(Phase::Insert, "numatree", 2, metric::MOPS_E2E, 60.0),
        summary(Phase::Insert, "btree-sharded", 2, metric::MOPS_E2E, 12.0),
        summary(Phase::Insert, "series-vec", 2, metric::MOPS_E2E, 50.0),
        summary(Phase::Insert, "vec-ceiling", 2, metric::MOPS_E2E, 140.0),
        summary(Phase::Memory, "numatree", 1, metric::BYTES_PER_POINT, 18.0),
        summary(
            Phase::Memory,
            "btree-sharded",
            1,
            metric::BYTES_PER_POINT,
            40.0,
        ),
        summary(
            Phase::Memory,
            "series-vec",
            1,
            metric::BYTES_PER_POINT,
            24.0,
        ),
        summary(
            Phase::Memory,
            "vec-ceiling",
            1,
            metric::BYTES_PER_POINT,
            12.0,
        ),
    ];
    let best =
        |phase, threads, m, better| best_peer(&sums, Shape::Default, phase, threads, m, better);
    assert_eq!(
        best(Phase::Insert, 2, metric::MOPS_E2E, Better::Higher),
        Some(("series-vec", 50.0)),
        "series-vec counts, vec-ceiling does not"
    );
    assert_eq!(
        best(Phase::Memory, 1, metric::BYTES_PER_POINT, Better::Lower),
        Some(("series-vec", 24.0)),
        "the smallest peer, vec-ceiling left out"
    );
    assert_eq!(
        best_peer(
            &sums,
            Shape::Late,
            Phase::Insert,
            2,
            metric::MOPS_E2E,
            Better::Higher
        ),
        None,
        "another shape's figures never count"
    );
    let t = tables(&cfg, &contenders, &sums);
    assert!(t.contains("1.20x series-vec"), "{t}");
    assert!(t.contains("### Memory after ingest"), "{t}");
    assert!(t.contains("| bytes/point | x 16 B |"), "{t}");
    assert!(t.contains("0.75x series-vec"), "{t}");
    // Memory is measured at one thread count: no empty row for the other.
    let memory = &t[t.find("### Memory").unwrap()..];
    assert!(memory.contains("| numatree | 1 |"), "{t}");
    assert!(!memory.contains("| numatree | 2 |"), "{t}");
    // Every throughput row ends with its contender's bytes per point
    // from the memory phase, whatever its thread count.
    let insert = &t[..t.find("### Memory").unwrap()];
    assert!(insert.contains("| B/pt | x best peer |"), "{t}");
    assert!(
        insert.contains("| 60.00 | — | — | — | — | — | — | — | 18.00 | 1.20x series-vec |"),
        "{t}"
    );
    assert!(
        insert.contains("| 50.00 | — | — | — | — | — | — | — | 24.00 |  |"),
        "{t}"
    );
}

#[test]
fn a_row_s_own_bytes_per_point_come_before_the_memory_phase_s() {
    let own = summary(
        Phase::FrozenScan,
        "numatree/frozen",
        2,
        metric::REPORTED_BYTES_PER_POINT,
        1.1,
    );
    let sums = [
        own.clone(),
        summary(Phase::FrozenScan, "series-vec", 2, metric::MRECS, 400.0),
        summary(
            Phase::Memory,
            "series-vec",
            1,
            metric::BYTES_PER_POINT,
            26.2,
        ),
    ];
    let bpp =
        |name: &str, row| bytes_per_point(&sums, Shape::Default, name, row).map(|s: Stat| s.median);
    assert_eq!(bpp("numatree/frozen", Some(&own)), Some(1.1));
    assert_eq!(bpp("series-vec", Some(&sums[1])), Some(26.2));
    assert_eq!(bpp("numatree/hot", None), None, "measured nowhere");
    assert_eq!(
        bytes_per_point(&sums, Shape::Late, "series-vec", None),
        None,
        "another shape's memory never counts"
    );
}

#[test]
fn every_shape_gets_a_section_with_its_workload_and_its_own_figures() {
    let mut cfg = BenchConfig::profile("ci").unwrap();
    cfg.phases = vec![Phase::Insert];
    let contenders = [info("series-vec", true)];
    let outcome = Outcome {
        shapes: cfg
            .sections()
            .into_iter()
            .map(|c| ShapeOutcome {
                shape: c.shape,
                distinct_keys: u64::from(c.workload.series) * c.workload.points,
                records: u64::from(c.workload.series) * c.workload.points,
                workload: c.workload,
                threads: c.threads,
                repeat: c.repeat,
                phases: c.phases,
            })
            .collect(),
        ..Outcome::default()
    };
    let sums: Vec<Summary> = Shape::ALL
        .iter()
        .zip([11.0, 22.0, 33.0])
        .map(|(&shape, v)| {
            with_shape(
                summary(Phase::Insert, "series-vec", 1, metric::MOPS_E2E, v),
                shape,
            )
        })
        .collect();
    let r = sections(&cfg, &outcome, &contenders, &sums);
    let at = |needle: &str| r.find(needle).unwrap_or_else(|| panic!("{needle}: {r}"));
    let (d, hc, late) = (
        at("## Shape `default`"),
        at("## Shape `high-cardinality`"),
        at("## Shape `late`"),
    );
    assert!(d < hc && hc < late, "{r}");
    assert!(r[hc..late].contains("25,600 series x 10 points"), "{r}");
    assert!(r[late..].contains("late 5%"), "{r}");
    assert!(r[d..hc].contains("| series-vec | 1 | — | 11.00 |"), "{r}");
    assert!(
        r[hc..late].contains("| series-vec | 1 | — | 22.00 |"),
        "{r}"
    );
    assert!(r[late..].contains("| series-vec | 1 | — | 33.00 |"), "{r}");
    // The extra shapes run at their own thread counts (ci: 1, 2).
    assert!(r[hc..late].contains("threads [1, 2]"), "{r}");
    assert!(!r[hc..late].contains("| series-vec | 4 |"), "{r}");
}

#[test]
fn utc_stamps_are_correct_for_known_instants() {
    let t = UNIX_EPOCH + std::time::Duration::from_secs(1_764_424_798);
    assert_eq!(utc_stamp(t).1, "2025-11-29T13:59:58Z");
    assert_eq!(utc_stamp(UNIX_EPOCH).0, "19700101T000000Z");
}

use super::*;
use crate::contender::Caps;
use crate::planted::Planted;
use crate::registry;

fn tiny(contenders: &[&str]) -> BenchConfig {
    let mut cfg = BenchConfig::profile("ci").unwrap();
    cfg.workload.series = 24;
    cfg.workload.points = 200;
    cfg.workload.late_pct = 5.0;
    cfg.workload.dup_pct = 5.0;
    cfg.threads = vec![1, 3];
    cfg.lookups = 2_000;
    cfg.scans = 100;
    cfg.scan_len = 50;
    cfg.shape_threads = vec![2];
    cfg.high_cardinality_series = 500;
    cfg.high_cardinality_points = 10;
    cfg.contenders = contenders.iter().map(|s| (*s).to_owned()).collect();
    cfg
}

#[test]
fn every_peer_passes_a_small_verified_run_of_every_shape() {
    let cfg = tiny(&[]);
    let factories = registry::select(&cfg.contenders).unwrap();
    assert!(factories.iter().any(|f| f.name() == "series-vec"));
    let out = run(&cfg, &factories, &Progress::new(true)).unwrap();
    assert!(out.failures.is_empty(), "{:#?}", out.failures);
    // The plan the progress counts against is what ran, in order.
    let shapes: Vec<Shape> = out.shapes.iter().map(|s| s.shape).collect();
    assert_eq!(shapes, Shape::ALL);
    let planned: Vec<Planned> = cfg
        .sections()
        .iter()
        .zip(&out.shapes)
        .flat_map(|(section, o)| {
            let mut p = plan(section, &factories, o.records);
            p.extend(crate::life::plan(section, &factories, o.records));
            p
        })
        .collect();
    let ran: Vec<(Shape, usize, &str, Phase)> = out
        .samples
        .iter()
        .map(|s| (s.shape, s.threads, s.contender.as_str(), s.phase))
        .collect();
    let expected: Vec<(Shape, usize, &str, Phase)> = planned
        .iter()
        .map(|p| (p.shape, p.threads, p.contender.as_str(), p.phase))
        .collect();
    assert_eq!(ran, expected);
    assert_eq!(out.eta.len(), planned.len());
    let last = out.eta.last().unwrap();
    assert_eq!((last.done, last.planned), (planned.len(), planned.len()));
    assert_eq!(last.eta_s, Some(0.0));
    assert!(out.eta.iter().all(|p| p.actual_left_s.is_some()));
    for section in cfg.sections() {
        let extra = section.shape != Shape::Default;
        for f in &factories {
            for (i, &t) in section.threads.iter().enumerate() {
                let has = |p: Phase| {
                    out.samples.iter().any(|s| {
                        s.shape == section.shape
                            && s.contender == f.name()
                            && s.threads == t
                            && s.phase == p
                    })
                };
                let queries = f.caps().queries;
                assert!(has(Phase::Insert));
                assert_eq!(has(Phase::Lookup), queries, "{}", f.name());
                assert_eq!(has(Phase::Scan), queries);
                assert_eq!(has(Phase::Mixed), queries && !extra);
                assert_eq!(has(Phase::LookupAbsent), queries && !extra);
                assert_eq!(has(Phase::InsertWarm), f.caps().reserved && !extra);
                assert_eq!(
                    has(Phase::Memory),
                    i == 0,
                    "memory once, at the first count"
                );
            }
        }
    }
    let hc = &out.shapes[1];
    assert_eq!((hc.workload.series, hc.distinct_keys), (500, 5_000));
    assert_eq!(
        out.shapes[2].workload.late_pct,
        crate::config::LATE_SHAPE_PCT
    );
    let hits: Vec<f64> = out
        .samples
        .iter()
        .filter(|s| s.phase == Phase::Lookup)
        .map(|s| s.metrics[metric::HIT_RATE])
        .collect();
    assert!(!hits.is_empty() && hits.iter().all(|&h| h == 1.0));
    // The library's tests do not install the counting allocator: the
    // memory phase runs and verifies, but reports no bytes.
    let memory = out
        .samples
        .iter()
        .find(|s| s.phase == Phase::Memory)
        .unwrap();
    assert!(!memory.metrics.contains_key(metric::LIVE_BYTES));
}

#[test]
fn verification_reports_a_contender_that_drops_one_record_in_every_shape_and_phase() {
    let mut cfg = tiny(&[]);
    cfg.workload.dup_pct = 0.0;
    cfg.workload.late_pct = 0.0;
    cfg.threads = vec![2];
    cfg.phases = vec![Phase::Insert, Phase::Memory];
    // Loses the first record of writer 0.
    let broken = Planted::factory("drops-one", |p| {
        if !p.is_empty() {
            p.remove(0);
        }
    });
    let out = run(&cfg, &[broken], &Progress::new(true)).unwrap();
    let checks: Vec<&str> = out
        .failures
        .iter()
        .map(|f| f.problem.check.as_str())
        .collect();
    assert!(checks.contains(&"len"), "{checks:?}");
    assert!(checks.contains(&"scan-all"), "{checks:?}");
    let len = out
        .failures
        .iter()
        .find(|f| f.problem.check == "len")
        .unwrap();
    assert_eq!(
        (len.contender.as_str(), len.phase.as_str(), len.threads),
        ("drops-one", "insert", 2)
    );
    assert_eq!(len.problem.mismatches, 1);
    assert!(
        len.problem.examples[0].contains("1 lost"),
        "{:?}",
        len.problem.examples
    );
    // Series 0 belongs to writer 0; its first record is point 0.
    let scan = out
        .failures
        .iter()
        .find(|f| f.problem.check == "scan-all")
        .unwrap();
    assert!(
        scan.problem.examples.iter().any(|e| e.contains("series 0")),
        "{:?}",
        scan.problem.examples
    );
    for shape in Shape::ALL {
        for phase in ["insert", "memory"] {
            let f = out
                .failures
                .iter()
                .find(|f| f.shape == shape.name() && f.phase == phase && f.problem.check == "len")
                .unwrap_or_else(|| panic!("no len failure in {} / {phase}", shape.name()));
            assert!(
                f.to_string()
                    .contains(&format!("{} shape / {phase}", shape.name())),
                "{f}"
            );
        }
    }
}

#[test]
fn verification_reports_scans_that_return_wrong_values() {
    let mut cfg = tiny(&[]);
    cfg.workload.dup_pct = 0.0;
    cfg.workload.late_pct = 0.0;
    cfg.threads = vec![2];
    cfg.phases = vec![Phase::Insert, Phase::Scan];
    cfg.shapes = vec![Shape::Default];
    // Stores every record of writer 0 with its value's lowest bit flipped:
    // every count stays right, those values are wrong.
    let broken = Planted::factory("flips-values", |p| {
        for r in p.iter_mut() {
            r.value ^= 1;
        }
    });
    let out = run(&cfg, &[broken], &Progress::new(true)).unwrap();
    let content = out
        .failures
        .iter()
        .find(|f| f.phase == "scan" && f.problem.check == "scan-content")
        .unwrap_or_else(|| panic!("no scan-content failure: {:#?}", out.failures));
    assert!(content.problem.mismatches > 0);
    assert!(
        content.problem.examples[0].contains("not the oracle's"),
        "{:?}",
        content.problem.examples
    );
    // The counts were right: the timed loop's count check found nothing.
    assert!(
        !out.failures
            .iter()
            .any(|f| f.phase == "scan" && f.problem.check == "scan-count"),
        "{:#?}",
        out.failures
    );
}

#[test]
fn verification_reports_records_numatree_loses_inside_its_merge() {
    let mut cfg = tiny(&[]);
    cfg.threads = vec![2];
    cfg.phases = vec![Phase::Insert];
    cfg.shapes = vec![Shape::Default];
    let lossy = ContenderFactory::new(
        "numatree-lossy",
        Caps {
            queries: true,
            reserved: false,
        },
        |o| {
            Box::new(crate::numatree_adapter::NumatreeContender::with_builder(
                numatree::Index::builder().plant_merge_loss(true),
                o,
            ))
        },
    );
    let out = run(&cfg, &[lossy], &Progress::new(true)).unwrap();
    let accounting = out
        .failures
        .iter()
        .find(|f| f.problem.check == "accounting")
        .expect("the accounting check reports the planted loss");
    assert!(
        accounting.problem.examples[0].contains("records were lost inside the index"),
        "{:?}",
        accounting.problem.examples
    );
}

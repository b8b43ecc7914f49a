//! The counting allocator measures what a structure holds: a known
//! structure reads back its size, the memory phase reports a plausible
//! figure per contender, and dropping a contender gives back what was
//! counted (memory retired to the epoch collector included, once settled).
//!
//! A binary of its own without the test harness (`harness = false`): the
//! counter sees every thread's allocations, so nothing may run beside the
//! check, not even libtest's threads. Under libtest, one CI run counted
//! 1,003 allocations for the known structure's 1,001, most likely
//! libtest's main thread allocating on its first wait for the test thread.

use numatree_bench::config::{BenchConfig, Phase, Shape};
use numatree_bench::memory::{self, CountingAlloc, Window};
use numatree_bench::phases::{self, metric, Progress};
use numatree_bench::registry;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn main() {
    live_bytes_are_counted_only_inside_a_window_and_match_what_a_structure_holds();
    println!("memory_counts_live_heap_bytes: ok");
}

fn live_bytes_are_counted_only_inside_a_window_and_match_what_a_structure_holds() {
    assert!(memory::installed());

    // A known structure: 1,000 boxed 1 KiB arrays and the Vec holding them.
    let w = Window::open().unwrap();
    let held: Vec<Box<[u8; 1024]>> = (0..1_000).map(|_| Box::new([1u8; 1024])).collect();
    let u = w.usage();
    assert_eq!(u.allocations, 1_001, "{u:?}");
    assert_eq!(
        u.bytes as usize,
        1_000 * 1024 + held.capacity() * 8,
        "{u:?}"
    );
    drop(held);
    assert_eq!(w.usage().bytes, 0, "all given back");
    // Growth by realloc counts the difference.
    let mut v: Vec<u64> = Vec::with_capacity(1);
    v.reserve_exact(4_096);
    assert_eq!(w.usage().bytes, 4_096 * 8);
    drop(w);
    // Outside a window nothing counts: freeing now leaves the next window at 0.
    drop(v);
    let w = Window::open().unwrap();
    assert_eq!(w.usage().bytes, 0);
    drop(w);

    // The memory phase over every contender, 2,000 series x 50 points.
    let mut cfg = BenchConfig::profile("ci").unwrap();
    cfg.workload.series = 2_000;
    cfg.workload.points = 50;
    cfg.workload.late_pct = 0.0;
    cfg.workload.dup_pct = 0.0;
    cfg.threads = vec![2];
    cfg.phases = vec![Phase::Memory];
    cfg.shapes = vec![Shape::Default];
    let factories = registry::select(&[]).unwrap();
    let out = phases::run(&cfg, &factories, &Progress::new(true)).unwrap();
    assert!(out.failures.is_empty(), "{:#?}", out.failures);
    let keys = 100_000.0;
    for f in &factories {
        let s = out
            .samples
            .iter()
            .find(|s| s.phase == Phase::Memory && s.contender == f.name())
            .unwrap();
        let m = |k: &str| s.metrics[k];
        let per_point = m(metric::BYTES_PER_POINT);
        assert_eq!(m(metric::KEYS), keys);
        assert!((m(metric::LIVE_BYTES) / keys - per_point).abs() < 1e-9);
        assert!((m(metric::RAW_RATIO) - per_point / 16.0).abs() < 1e-9);
        // Every contender stores at least the 16 bytes of a point and, for
        // this workload, less than 40 times that.
        assert!(
            (16.0..640.0).contains(&per_point),
            "{}: {per_point} bytes/point",
            f.name()
        );
        // Settling the epoch collector only frees: what it freed is not live.
        assert!(m(metric::RETIRED_BYTES) >= 0.0, "{}", f.name());
        // What it held is what dropping it gave back (within 1%, or 64 KiB
        // of thread and bookkeeping allocations).
        let (live, freed) = (m(metric::LIVE_BYTES), m(metric::FREED_ON_DROP));
        assert!(
            (live - freed).abs() <= (live * 0.01).max(65_536.0),
            "{}: {live} live, {freed} freed on drop",
            f.name()
        );
        match f.name() {
            // A 32-byte mutex per series plus the points, in vectors grown
            // by doubling to 64 points.
            "series-vec" => {
                let expect = (2_000.0 * (32.0 + 64.0 * 16.0)) / keys;
                assert!((per_point - expect).abs() < 0.5, "{per_point} vs {expect}");
            }
            // 24-byte records, one vector per writer grown by doubling.
            "vec-ceiling" => assert!((24.0..48.1).contains(&per_point), "{per_point}"),
            "numatree" => assert!(m(metric::REPORTED_BYTES_PER_POINT) > 0.0),
            _ => {}
        }
    }
}

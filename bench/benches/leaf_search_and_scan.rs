//! Point lookups (descent plus leaf search) and range scans (descent plus
//! leaf-chain walk) on a tree of 1M records.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use numatree_bench::vec_store::VecStore;
use numatree_core::{Record, Tree};

const SERIES: u32 = 1024;
const POINTS: i64 = 1024;

fn tree() -> Tree<VecStore> {
    let mut tree = Tree::new(VecStore::default());
    for round in 0..POINTS / 16 {
        let mut run: Vec<Record> = (0..SERIES)
            .flat_map(|s| (0..16).map(move |k| Record::new(s, round * 16 + k, u64::from(s))))
            .collect();
        run.sort_by_key(|r| r.key);
        tree.merge_run(&run).unwrap();
    }
    tree
}

fn search_and_scan(c: &mut Criterion) {
    let tree = tree();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut g = c.benchmark_group("leaf_search");
    g.throughput(Throughput::Elements(1));
    g.bench_function("get, 1M records", |b| {
        b.iter(|| {
            let r = next();
            black_box(tree.get((r % u64::from(SERIES)) as u32, (r >> 32) as i64 % POINTS))
        })
    });
    g.finish();
    let mut g = c.benchmark_group("range_scan");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000 records of one series", |b| {
        b.iter(|| {
            let r = next();
            let t0 = (r >> 32) as i64 % (POINTS - 1000);
            black_box(
                tree.range((r % u64::from(SERIES)) as u32, t0..t0 + 1000)
                    .count(),
            )
        })
    });
    g.finish();
}

criterion_group!(benches, search_and_scan);
criterion_main!(benches);

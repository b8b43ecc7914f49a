//! Merging a sorted 4,096-record run into a tree that already holds data:
//! the append path (every series gets newer points, the time-series case)
//! and the out-of-order path (points land between existing ones).
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use numatree_bench::vec_store::VecStore;
use numatree_core::{sort_dedup, Record, Tree};

const RUN: usize = 4096;
const SERIES: u32 = 256;

fn sorted(mut records: Vec<Record>) -> Vec<Record> {
    let mut scratch = vec![Record::ZERO; records.len()];
    let mut counts = vec![0u32; 1 << 16];
    let n = sort_dedup(&mut records, &mut scratch, &mut counts, |_| 0).unwrap();
    records.truncate(n);
    records
}

/// A tree holding `rounds` points of every series, at even timestamps.
fn base_tree(rounds: i64) -> Tree<VecStore> {
    let mut tree = Tree::new(VecStore::default());
    for round in 0..rounds {
        let run: Vec<Record> = (0..SERIES).map(|s| Record::new(s, round * 2, 1)).collect();
        tree.merge_run(&sorted(run)).unwrap();
    }
    tree
}

fn bench_merge(c: &mut Criterion, name: &str, run: Vec<Record>) {
    let run = sorted(run);
    let mut g = c.benchmark_group("run_merge");
    g.throughput(Throughput::Elements(run.len() as u64));
    g.bench_function(name, |b| {
        b.iter_batched_ref(
            || base_tree(64),
            |tree| tree.merge_run(&run).unwrap(),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn run_merge(c: &mut Criterion) {
    // Newer points of every series: the append fast path.
    let append = (0..RUN as u32)
        .map(|i| Record::new(i % SERIES, 128 + i64::from(i / SERIES) * 2, 2))
        .collect();
    bench_merge(c, "append 4096 records over 256 series", append);
    // Odd timestamps between the existing even ones: out-of-order merges.
    let between = (0..RUN as u32)
        .map(|i| Record::new(i % SERIES, 2 * (i64::from(i / SERIES) % 64) + 1, 3))
        .collect();
    bench_merge(c, "out-of-order 4096 records over 256 series", between);
}

criterion_group!(benches, run_merge);
criterion_main!(benches);

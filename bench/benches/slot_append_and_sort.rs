//! Slot append (the writer's per-record cost) and slot sort (the first step
//! of every merge), on scrape-shaped data: rounds of one point per series.
//! The slot is the runtime's own: a `SlotBuffer` over a heap buffer, sorted
//! with `sort_swapping` (trading buffers with a scratch of its capacity)
//! and grouped by shard as the merge threads do.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use numatree_core::{Record, SlotBuffer};

const SLOT: usize = 4096;
/// Shards per node the grouping spreads series over (the default on a
/// 2-CPU node: 4 per merge thread).
const SHARDS: u32 = 4;

/// A slot as the runtime allocates it: capacity chosen at run time.
fn runtime_slot() -> SlotBuffer<Box<[Record]>> {
    SlotBuffer::with_storage(vec![Record::ZERO; SLOT].into_boxed_slice())
}

fn scrape(series: u32, late_every: u32) -> Vec<Record> {
    (0..SLOT as u32)
        .map(|i| {
            let ts = i64::from(i / series) * 10
                - if late_every > 0 && i % late_every == 0 {
                    25
                } else {
                    0
                };
            Record::new(i % series, ts, u64::from(i))
        })
        .collect()
}

/// `scrape` with the series ids spread over all of `u32` (hashed ids, as a
/// user keyed by a hash of the series' labels has): wider than the count
/// table, so the sort takes its scatter-by-group and merge-sort path.
fn scrape_sparse(series: u32) -> Vec<Record> {
    scrape(series, 0)
        .into_iter()
        .map(|r| Record::new(r.key.series.wrapping_mul(2_654_435_761), r.key.ts, r.value))
        .collect()
}

fn slot_append(c: &mut Criterion) {
    let records = scrape(1024, 0);
    let mut g = c.benchmark_group("slot_append");
    g.throughput(Throughput::Elements(SLOT as u64));
    g.bench_function("4096 records", |b| {
        b.iter_custom(|iters| {
            let mut slot = runtime_slot();
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                slot.clear();
                let start = Instant::now();
                for r in &records {
                    let _ = slot.push(*r);
                }
                total += start.elapsed();
                black_box(slot.len());
            }
            total
        })
    });
    g.finish();
}

fn slot_sort(c: &mut Criterion) {
    let mut g = c.benchmark_group("slot_sort");
    g.throughput(Throughput::Elements(SLOT as u64));
    for (name, records) in [
        ("1024 series in order", scrape(1024, 0)),
        ("1024 series 5% late", scrape(1024, 20)),
        ("64 series 5% late", scrape(64, 20)),
        ("1024 sparse ids in order", scrape_sparse(1024)),
    ] {
        g.bench_function(name, |b| {
            let mut slot = runtime_slot();
            let mut scratch = vec![Record::ZERO; SLOT].into_boxed_slice();
            let mut counts = vec![0u32; 1 << 16];
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    slot.clear();
                    for r in &records {
                        let _ = slot.push(*r);
                    }
                    let start = Instant::now();
                    let run = slot
                        .sort_swapping(&mut scratch, &mut counts, |s| (s % SHARDS) as u8)
                        .expect("scratch fits the slot");
                    black_box(run.len());
                    total += start.elapsed();
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, slot_append, slot_sort);
criterion_main!(benches);

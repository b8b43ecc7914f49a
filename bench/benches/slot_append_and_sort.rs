//! Slot append (the writer's per-record cost) and slot sort (the first step
//! of every merge), on scrape-shaped data: rounds of one point per series.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use numatree_core::{Record, SlotBuffer, SortScratch};

const SLOT: usize = 4096;

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

fn slot_append(c: &mut Criterion) {
    let records = scrape(1024, 0);
    let mut g = c.benchmark_group("slot_append");
    g.throughput(Throughput::Elements(SLOT as u64));
    g.bench_function("4096 records", |b| {
        b.iter_custom(|iters| {
            let mut slot: Box<SlotBuffer<SLOT>> = Box::new(SlotBuffer::new());
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
    ] {
        g.bench_function(name, |b| {
            let mut slot: Box<SlotBuffer<SLOT>> = Box::new(SlotBuffer::new());
            let mut scratch: Box<SortScratch<SLOT>> = Box::new(SortScratch::new());
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    slot.clear();
                    for r in &records {
                        let _ = slot.push(*r);
                    }
                    let start = Instant::now();
                    black_box(slot.sort(&mut scratch).len());
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

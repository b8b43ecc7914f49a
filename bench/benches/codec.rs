//! Block codecs: encode and decode throughput (points/s) of 256-point
//! blocks (the runtime's block size), 64 blocks a pass, for the value shapes
//! a time-series store sees: a two-decimal gauge (decimal codec), a counter
//! (delta FOR), noisy floats (XOR) and random bit patterns (raw). Each shape
//! prints its bytes a point before it is timed.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use numatree_core::codec::{self, ValueCodec};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt as _, SeedableRng as _};

const POINTS: usize = 256;
const BLOCKS: usize = 64;

struct Shape {
    name: &'static str,
    ts: Vec<Vec<i64>>,
    values: Vec<Vec<u64>>,
}

fn shape(name: &'static str, mut value: impl FnMut(&mut Xoshiro256PlusPlus) -> u64) -> Shape {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let mut t = 1_700_000_000_000i64;
    let (mut ts, mut values) = (Vec::new(), Vec::new());
    for _ in 0..BLOCKS {
        ts.push(
            (0..POINTS)
                .map(|_| {
                    t += 15_000;
                    t
                })
                .collect(),
        );
        values.push((0..POINTS).map(|_| value(&mut rng)).collect());
    }
    Shape { name, ts, values }
}

fn shapes() -> Vec<Shape> {
    let mut gauge = 20.0f64;
    let mut counter = 1u64 << 32;
    let mut float = 1.0f64;
    vec![
        shape("gauge", move |rng| {
            let step = f64::from(rng.random_range(1..=25u32)) * 0.01;
            gauge += if rng.random::<bool>() { step } else { -step };
            gauge = (gauge * 100.0).round() / 100.0;
            gauge.to_bits()
        }),
        shape("counter", move |rng| {
            counter += rng.random_range(0..100u64);
            counter
        }),
        shape("float", move |rng| {
            float += rng.random::<f64>() - 0.5;
            float.to_bits()
        }),
        shape("random", |rng| rng.random::<u64>()),
    ]
}

fn codecs(c: &mut Criterion) {
    for s in shapes() {
        let mut encoded = Vec::new();
        let mut bytes = 0;
        let mut used: Vec<ValueCodec> = Vec::new();
        for (ts, values) in s.ts.iter().zip(&s.values) {
            let mut buf = vec![0u8; codec::max_encoded_len(POINTS)];
            let len = codec::encode(ts, values, &mut buf).unwrap();
            buf.truncate(len);
            bytes += len;
            let h = codec::header(&buf).unwrap();
            if !used.contains(&h.value_codec) {
                used.push(h.value_codec);
            }
            let (mut t, mut v) = (vec![0; POINTS], vec![0; POINTS]);
            codec::decode(&buf, &mut t, &mut v).unwrap();
            assert!(t == *ts && v == *values, "{} does not round-trip", s.name);
            encoded.push(buf);
        }
        println!(
            "codec {}: {:.3} bytes/point (header included), value codecs {used:?}",
            s.name,
            bytes as f64 / (POINTS * BLOCKS) as f64
        );

        let mut g = c.benchmark_group("codec");
        g.throughput(Throughput::Elements((POINTS * BLOCKS) as u64));
        let mut out = vec![0u8; codec::max_encoded_len(POINTS)];
        g.bench_function(format!("encode {}", s.name), |b| {
            b.iter(|| {
                for (ts, values) in s.ts.iter().zip(&s.values) {
                    black_box(codec::encode(ts, values, &mut out).unwrap());
                }
            })
        });
        let (mut t, mut v) = (vec![0i64; POINTS], vec![0u64; POINTS]);
        g.bench_function(format!("decode {}", s.name), |b| {
            b.iter(|| {
                for block in &encoded {
                    black_box(codec::decode(block, &mut t, &mut v).unwrap());
                    black_box((&t, &v));
                }
            })
        });
        g.finish();
    }
}

criterion_group!(benches, codecs);
criterion_main!(benches);

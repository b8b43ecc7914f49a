//! Arbitrary columns through `codec::encode` and back: `decode` must return
//! them bit-exact, `header` must describe them, the size must stay within
//! `max_encoded_len`, `find` and decoding a range of points
//! (`decode_timestamps`, `decode_range`) must agree with the decoded columns,
//! and every truncation of the block must be an error.
//!
//! Columns are built from a few shapes (arbitrary, regular or jittered
//! timestamps; arbitrary, narrow, counter, decimal or float values) so every
//! codec is reached, with arbitrary bit patterns mixed in.
//!
//! Run: `cd core/fuzz && cargo +nightly fuzz run codec_round_trip -- -max_total_time=60`.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use numatree_core::codec;

#[derive(Arbitrary, Debug)]
enum Ts {
    Any(Vec<i64>),
    Regular {
        start: i64,
        step: i64,
        n: u16,
    },
    Jittered {
        start: i64,
        step: i32,
        jitter: Vec<u8>,
    },
}

#[derive(Arbitrary, Debug)]
enum Values {
    Any(Vec<u64>),
    Narrow {
        base: u64,
        offsets: Vec<u16>,
    },
    Counter {
        start: u64,
        steps: Vec<u8>,
    },
    /// `ints[i] / 10^e` as `f64`, with some raw patterns patched in.
    Decimal {
        e: u8,
        ints: Vec<i32>,
        patches: Vec<(u16, u64)>,
    },
    Floats(Vec<f64>),
}

fn timestamps(ts: Ts) -> Vec<i64> {
    match ts {
        Ts::Any(v) => v,
        Ts::Regular { start, step, n } => (0..i64::from(n % 1024))
            .map(|i| start.wrapping_add(step.wrapping_mul(i)))
            .collect(),
        Ts::Jittered {
            start,
            step,
            jitter,
        } => jitter
            .iter()
            .scan(start, |t, &j| {
                *t = t
                    .wrapping_add(i64::from(step))
                    .wrapping_add(i64::from(j % 8));
                Some(*t)
            })
            .collect(),
    }
}

fn values(v: Values, n: usize) -> Vec<u64> {
    let mut out: Vec<u64> = match v {
        Values::Any(v) => v,
        Values::Narrow { base, offsets } => offsets
            .iter()
            .map(|&o| base.wrapping_add(u64::from(o)))
            .collect(),
        Values::Counter { start, steps } => steps
            .iter()
            .scan(start, |c, &s| {
                *c = c.wrapping_add(u64::from(s));
                Some(*c)
            })
            .collect(),
        Values::Decimal { e, ints, patches } => {
            let p = 10f64.powi(i32::from(e % 19));
            let mut v: Vec<u64> = ints.iter().map(|&i| (f64::from(i) / p).to_bits()).collect();
            for (at, bits) in patches {
                let len = v.len();
                if let Some(x) = v.get_mut(usize::from(at) % len.max(1)) {
                    *x = bits;
                }
            }
            v
        }
        Values::Floats(f) => f.into_iter().map(f64::to_bits).collect(),
    };
    out.resize(n, 0x7ff8_0000_0000_0001);
    out
}

fuzz_target!(|input: (Ts, Values)| {
    let ts = timestamps(input.0);
    if ts.len() > 4096 {
        return;
    }
    let values = values(input.1, ts.len());
    let mut buf = vec![0u8; codec::max_encoded_len(ts.len())];
    let len = codec::encode(&ts, &values, &mut buf).expect("max_encoded_len is enough");
    let bytes = &buf[..len];

    let h = codec::header(bytes).expect("header of a fresh block");
    assert_eq!((h.points, h.encoded_len), (ts.len(), len));
    assert_eq!(h.first_ts, ts.first().copied().unwrap_or(0));
    assert_eq!(h.last_ts, ts.last().copied().unwrap_or(0));

    let (mut t, mut v) = (vec![0i64; ts.len()], vec![0u64; ts.len()]);
    assert_eq!(codec::decode(bytes, &mut t, &mut v), Ok(ts.len()));
    assert_eq!(t, ts, "timestamps");
    assert_eq!(v, values, "values ({:?})", h.value_codec);

    for &probe in ts.iter().step_by((ts.len() / 8).max(1)) {
        let want = ts.iter().position(|&x| x == probe).map(|i| values[i]);
        assert_eq!(codec::find(bytes, probe), Ok(want), "find {probe}");
    }
    // In part, as scans decode: the timestamps, then a range's values.
    let n = ts.len();
    for range in [n / 3..n, n / 4..n / 2, 0..n / 5] {
        let (mut t2, mut v2) = (vec![0i64; n], vec![0u64; n]);
        let column = codec::decode_timestamps(bytes, &mut t2).expect("timestamps of a fresh block");
        assert_eq!(t2, ts, "timestamps alone");
        column
            .decode_range(range.clone(), &mut v2)
            .expect("values of a fresh block");
        assert_eq!(v2[range.clone()], values[range.clone()], "values {range:?}");
    }
    for cut in [0, len / 2, len.saturating_sub(1)] {
        if cut < len {
            assert!(
                codec::decode(&bytes[..cut], &mut t, &mut v).is_err(),
                "cut at {cut}"
            );
        }
    }
});

//! Block codecs: any columns round-trip bit-exact, typical series compress
//! as promised (gauges with two decimals under 3 bytes a point, counters
//! near one, random values never beyond raw), and damaged bytes are errors,
//! never panics.

use numatree_core::codec::{
    self, decode, encode, find, header, max_encoded_len, DecodeError, ValueCodec, HEADER_BYTES,
};
use proptest::prelude::*;

const CASES: u32 = if cfg!(miri) { 3 } else { 256 };
const MAX_N: usize = if cfg!(miri) { 24 } else { 600 };

fn encoded(ts: &[i64], values: &[u64]) -> Vec<u8> {
    let mut buf = vec![0u8; max_encoded_len(ts.len())];
    let len = encode(ts, values, &mut buf).expect("max_encoded_len is enough");
    buf.truncate(len);
    buf
}

/// Decodes `bytes` (with trailing junk after the block, which must be
/// ignored) and checks the header against the columns.
fn decoded(bytes: &[u8], ts: &[i64]) -> (Vec<i64>, Vec<u64>) {
    let mut padded = bytes.to_vec();
    padded.extend_from_slice(&[0xA5; 9]);
    let h = header(&padded).unwrap();
    assert_eq!(h.encoded_len, bytes.len());
    assert_eq!(h.points, ts.len());
    assert_eq!(h.first_ts, ts.first().copied().unwrap_or(0));
    assert_eq!(h.last_ts, ts.last().copied().unwrap_or(0));
    let (mut t, mut v) = (vec![0; ts.len() + 3], vec![0; ts.len() + 3]);
    assert_eq!(decode(&padded, &mut t, &mut v), Ok(ts.len()));
    t.truncate(ts.len());
    v.truncate(ts.len());
    (t, v)
}

fn columns(points: Vec<(i64, u64)>) -> (Vec<i64>, Vec<u64>) {
    points.into_iter().unzip()
}

/// Values shaped like real series, so every codec is exercised: anything,
/// narrow integers, counters, decimals (with the odd NaN or -0.0), floats.
fn values(n: usize) -> impl Strategy<Value = Vec<u64>> {
    prop_oneof![
        proptest::collection::vec(any::<u64>(), n),
        (any::<u64>(), proptest::collection::vec(0u64..1000, n))
            .prop_map(|(base, v)| v.into_iter().map(|x| base.wrapping_add(x)).collect()),
        (any::<u64>(), proptest::collection::vec(0u64..50, n)).prop_map(|(base, steps)| steps
            .into_iter()
            .scan(base, |acc, s| {
                *acc = acc.wrapping_add(s);
                Some(*acc)
            })
            .collect()),
        (0u8..6, proptest::collection::vec(-100_000i64..100_000, n)).prop_map(|(e, ints)| ints
            .into_iter()
            .map(|i| (i as f64 / 10f64.powi(i32::from(e))).to_bits())
            .collect()),
        (
            proptest::collection::vec(-1e6f64..1e6, n),
            0..n.max(1),
            prop_oneof![
                Just(f64::NAN.to_bits()),
                Just((-0.0f64).to_bits()),
                Just(f64::INFINITY.to_bits()),
                Just(1u64),
            ]
        )
            .prop_map(|(f, at, odd)| {
                let mut v: Vec<u64> = f.into_iter().map(f64::to_bits).collect();
                if let Some(x) = v.get_mut(at) {
                    *x = odd;
                }
                v
            }),
    ]
}

/// Timestamps: regular, jittered, or anything.
fn timestamps(n: usize) -> impl Strategy<Value = Vec<i64>> {
    prop_oneof![
        (any::<i64>(), any::<i64>()).prop_map(move |(start, step)| (0..n as i64)
            .map(|i| start.wrapping_add(step.wrapping_mul(i)))
            .collect()),
        (
            -1i64 << 50..1 << 50,
            proptest::collection::vec(9_990i64..10_010, n)
        )
            .prop_map(|(start, steps)| steps
                .into_iter()
                .scan(start, |t, s| {
                    *t += s;
                    Some(*t)
                })
                .collect()),
        proptest::collection::vec(any::<i64>(), n),
    ]
}

fn block() -> impl Strategy<Value = (Vec<i64>, Vec<u64>)> {
    (0..MAX_N).prop_flat_map(|n| (timestamps(n), values(n)))
}

/// A gauge: a random walk from 20.00 by 0.01..=0.25, rounded to two decimals.
fn gauge(steps: &[(bool, u8)]) -> Vec<u64> {
    let mut x = 20.0f64;
    steps
        .iter()
        .map(|&(up, k)| {
            let step = f64::from(k % 25 + 1) * 0.01;
            x += if up { step } else { -step };
            x = (x * 100.0).round() / 100.0;
            x.to_bits()
        })
        .collect()
}

fn regular(n: usize) -> Vec<i64> {
    (0..n as i64)
        .map(|i| 1_700_000_000_000 + 15_000 * i)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn any_columns_round_trip_bit_exact(points in proptest::collection::vec(any::<(i64, u64)>(), 0..MAX_N)) {
        let (ts, values) = columns(points);
        let bytes = encoded(&ts, &values);
        prop_assert!(bytes.len() <= max_encoded_len(ts.len()));
        prop_assert_eq!(decoded(&bytes, &ts), (ts, values));
    }

    #[test]
    fn shaped_columns_round_trip_and_find_agrees_with_decode(
        (ts, values) in block(),
        probes in proptest::collection::vec(any::<i64>(), 0..4),
    ) {
        let bytes = encoded(&ts, &values);
        prop_assert_eq!(decoded(&bytes, &ts), (ts.clone(), values.clone()));
        let step = (ts.len() / 16).max(1);
        for probe in ts.iter().step_by(step).copied().chain(probes) {
            let want = ts.iter().position(|&t| t == probe).map(|i| values[i]);
            prop_assert_eq!(find(&bytes, probe), Ok(want), "probe {}", probe);
        }
    }

    #[test]
    fn two_decimal_gauges_use_the_decimal_codec_under_3_bytes_a_point(
        steps in proptest::collection::vec(any::<(bool, u8)>(), 256),
    ) {
        let (ts, values) = (regular(256), gauge(&steps));
        let bytes = encoded(&ts, &values);
        let h = header(&bytes).unwrap();
        prop_assert!(matches!(h.value_codec, ValueCodec::Decimal | ValueCodec::DecimalDelta), "{:?}", h);
        prop_assert!(bytes.len() < 3 * 256, "{} bytes", bytes.len());
        prop_assert_eq!(decoded(&bytes, &ts), (ts, values));
    }

    #[test]
    fn counters_pack_their_steps(
        start in 0u64..1 << 60,
        steps in proptest::collection::vec(0u64..100, 256),
    ) {
        let values: Vec<u64> = steps.iter().scan(start, |c, s| { *c += s; Some(*c) }).collect();
        let ts = regular(256);
        let bytes = encoded(&ts, &values);
        // Steps below 128 pack in 7 bits: 224 bytes, plus header and parameters.
        prop_assert!(bytes.len() <= HEADER_BYTES + 4 + 1 + 10 + 2 + 224, "{} bytes", bytes.len());
        prop_assert_eq!(header(&bytes).unwrap().value_codec, ValueCodec::DeltaFor);
        prop_assert_eq!(decoded(&bytes, &ts), (ts, values));
    }

    #[test]
    fn random_values_stay_within_raw_size(
        values in proptest::collection::vec(any::<u64>(), 1..MAX_N),
    ) {
        let ts = regular(values.len());
        let bytes = encoded(&ts, &values);
        let raw = 8 * values.len();
        prop_assert!((bytes.len() - HEADER_BYTES - 4) as f64 <= 1.05 * raw as f64, "{} bytes", bytes.len());
        prop_assert_eq!(decoded(&bytes, &ts), (ts, values));
    }

    #[test]
    fn truncated_blocks_are_errors((ts, values) in block(), cut in any::<prop::sample::Index>()) {
        let bytes = encoded(&ts, &values);
        let short = &bytes[..cut.index(bytes.len())];
        let (mut t, mut v) = (vec![0; ts.len()], vec![0; ts.len()]);
        prop_assert!(header(short).is_err());
        prop_assert!(decode(short, &mut t, &mut v).is_err());
        prop_assert!(find(short, ts.first().copied().unwrap_or(0)).is_err());
    }

    #[test]
    fn mutated_blocks_decode_or_fail_without_panicking(
        (ts, values) in block(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        probe in any::<i64>(),
    ) {
        let mut bytes = encoded(&ts, &values);
        for (at, x) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        let (mut t, mut v) = (vec![0; MAX_N], vec![0; MAX_N]);
        match (header(&bytes), decode(&bytes, &mut t, &mut v)) {
            (Ok(h), Ok(n)) => prop_assert_eq!(h.points, n),
            (Err(e), Err(d)) => prop_assert_eq!(e, d),
            (Ok(_), Err(_)) => {}
            (Err(e), Ok(n)) => prop_assert!(false, "header failed ({}) but decode gave {} points", e, n),
        }
        let _ = find(&bytes, probe);
        let _ = find(&bytes, ts.first().copied().unwrap_or(0));
    }

    #[test]
    fn arbitrary_bytes_are_errors_or_blocks(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        probe in any::<i64>(),
    ) {
        let (mut t, mut v) = (vec![0; 64], vec![0; 64]);
        if let Ok(n) = decode(&bytes, &mut t, &mut v) {
            // A block that decodes re-encodes to one that decodes the same.
            let again = encoded(&t[..n], &v[..n]);
            prop_assert_eq!(decoded(&again, &t[..n]), (t[..n].to_vec(), v[..n].to_vec()));
        }
        let _ = header(&bytes);
        let _ = find(&bytes, probe);
    }
}

#[test]
fn a_header_with_a_valid_format_byte_still_needs_the_whole_block() {
    let bytes = encoded(&regular(10), &[1; 10]);
    assert_eq!(
        header(&bytes[..HEADER_BYTES]),
        Err(DecodeError::Truncated {
            needed: bytes.len(),
            available: HEADER_BYTES
        })
    );
    assert_eq!(codec::FORMAT, bytes[0]);
}

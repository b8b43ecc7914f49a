use super::*;
use std::vec;
use std::vec::Vec;

fn encoded(ts: &[i64], values: &[u64]) -> Vec<u8> {
    let mut buf = vec![0u8; max_encoded_len(ts.len())];
    let len = encode(ts, values, &mut buf).unwrap();
    buf.truncate(len);
    buf
}

/// Encodes, decodes, checks `find` on every point and returns the bytes.
fn round_trip(ts: &[i64], values: &[u64]) -> Vec<u8> {
    let bytes = encoded(ts, values);
    let h = header(&bytes).unwrap();
    assert_eq!(h.encoded_len, bytes.len());
    assert_eq!(h.points, ts.len());
    let (mut t, mut v) = (vec![0; ts.len()], vec![0; ts.len()]);
    assert_eq!(decode(&bytes, &mut t, &mut v), Ok(ts.len()));
    assert_eq!(t, ts);
    assert_eq!(v, values);
    // Under Miri (slow to interpret), every 17th point and the last.
    let step = if cfg!(miri) { 17 } else { 1 };
    let last = ts.len().saturating_sub(1);
    for (i, &at) in ts
        .iter()
        .enumerate()
        .filter(|(i, _)| i % step == 0 || *i == last)
    {
        let first = ts.iter().position(|&x| x == at).unwrap();
        assert_eq!(find(&bytes, at), Ok(Some(values[first])), "point {i}");
    }
    // Timestamps first, then the values of a range of points.
    let n = ts.len();
    for range in [0..n, n / 4..n / 2, n / 2..n, n..n] {
        let (mut t, mut v) = (vec![0; n], vec![u64::MAX; n]);
        let column = decode_timestamps(&bytes, &mut t).unwrap();
        assert_eq!((t.as_slice(), column.points()), (ts, n));
        column.decode_range(range.clone(), &mut v).unwrap();
        assert_eq!(v[range.clone()], values[range.clone()], "{range:?}");
    }
    bytes
}

/// Pseudo-random bit patterns (xorshift), which nothing compresses.
fn random(n: usize) -> Vec<u64> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        })
        .collect()
}

fn regular(n: usize) -> Vec<i64> {
    (0..n as i64).map(|i| 1_000_000 + 10 * i).collect()
}

#[test]
fn each_value_codec_is_chosen_where_it_is_smallest() {
    let ts = regular(100);
    let cases: [(Vec<u64>, ValueCodec); 6] = [
        (random(100), ValueCodec::Raw),
        (
            (0..100u64).map(|i| 1_000 + (i * 7) % 13).collect(),
            ValueCodec::For,
        ),
        (
            (0..100u64).map(|i| 1 << 40 | (i * 1000 + i % 3)).collect(),
            ValueCodec::DeltaFor,
        ),
        (
            (0..100)
                .map(|i| (f64::from(i % 9) * 0.5).to_bits())
                .collect(),
            ValueCodec::Decimal,
        ),
        (
            (0..100)
                .map(|i| (1000.0 + f64::from(i) * 0.01).to_bits())
                .collect(),
            ValueCodec::DecimalDelta,
        ),
        (
            (0..100)
                .map(|i| (f64::from(i / 10) / 3.0).to_bits())
                .collect(),
            ValueCodec::Xor,
        ),
    ];
    for (values, codec) in cases {
        let bytes = round_trip(&ts, &values);
        let h = header(&bytes).unwrap();
        assert_eq!(h.value_codec, codec, "{values:x?}");
        assert_eq!(h.ts_codec, TsCodec::DeltaFor);
    }
}

#[test]
fn regular_timestamps_take_no_packed_bytes() {
    let ts = regular(256);
    let bytes = round_trip(&ts, &[0; 256]);
    // Header, width byte, varint 20 (zigzag of 10); values: width, min.
    assert_eq!(bytes.len(), HEADER_BYTES + 2 + 2);
    assert_eq!(header(&bytes).unwrap().value_codec, ValueCodec::For);
}

#[test]
fn any_timestamps_round_trip_even_descending_and_extreme() {
    let ts = [i64::MAX, i64::MIN, 0, -1, i64::MAX, 5, 5];
    let values = [
        u64::MAX,
        0,
        1,
        0x7ff8_0000_0000_0001,
        (-0.0f64).to_bits(),
        2,
        3,
    ];
    round_trip(&ts, &values);
    let wide: Vec<i64> = (0..50)
        .map(|i| (i64::MIN / 3).wrapping_mul(i % 5))
        .collect();
    round_trip(&wide, &[1; 50]);
}

#[test]
fn small_blocks_round_trip() {
    round_trip(&[], &[]);
    round_trip(&[-7], &[42]);
    round_trip(&[1, 2], &[2.5f64.to_bits(), f64::NAN.to_bits()]);
    let bytes = encoded(&[], &[]);
    assert_eq!(bytes.len(), HEADER_BYTES);
}

#[test]
fn encode_reports_bad_input_and_short_output() {
    let mut buf = [0u8; 64];
    assert_eq!(
        encode(&[1, 2], &[1], &mut buf),
        Err(EncodeError::LengthMismatch {
            timestamps: 2,
            values: 1
        })
    );
    let big = vec![0i64; MAX_POINTS + 1];
    assert_eq!(
        encode(&big, &vec![0; MAX_POINTS + 1], &mut buf),
        Err(EncodeError::TooManyPoints {
            points: MAX_POINTS + 1,
            max: MAX_POINTS
        })
    );
    let values: Vec<u64> = (0..4u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    let needed = encoded(&[1, 2, 3, 4], &values).len();
    assert_eq!(
        encode(&[1, 2, 3, 4], &values, &mut buf[..needed - 1]),
        Err(EncodeError::OutputTooSmall {
            needed,
            provided: needed - 1
        })
    );
}

#[test]
fn every_truncation_of_a_block_is_an_error() {
    let ts = regular(40);
    let values: Vec<u64> = (0..40).map(|i| (f64::from(i) / 7.0).to_bits()).collect();
    let bytes = round_trip(&ts, &values);
    let (mut t, mut v) = ([0i64; 40], [0u64; 40]);
    for len in 0..bytes.len() {
        assert!(header(&bytes[..len]).is_err(), "header of {len} bytes");
        assert!(
            decode(&bytes[..len], &mut t, &mut v).is_err(),
            "{len} bytes"
        );
        assert!(find(&bytes[..len], ts[0]).is_err());
    }
}

#[test]
#[should_panic(expected = "decode_range(3..9) of a block of 8 points")]
fn decoding_a_range_past_the_block_is_the_callers_mistake() {
    let bytes = encoded(&regular(8), &random(8));
    let mut t = [0; 8];
    let column = decode_timestamps(&bytes, &mut t).unwrap();
    let _ = column.decode_range(3..9, &mut [0; 16]);
}

#[test]
fn decode_needs_room_for_every_point() {
    let bytes = encoded(&regular(10), &[3; 10]);
    let (mut t, mut v) = ([0i64; 10], [0u64; 9]);
    assert_eq!(
        decode(&bytes, &mut t, &mut v),
        Err(DecodeError::OutputTooSmall {
            points: 10,
            ts_room: 10,
            values_room: 9
        })
    );
}

#[test]
fn header_checks_format_ids_and_lengths() {
    let good = encoded(&regular(10), &[3; 10]);
    let with = |at: usize, byte: u8| {
        let mut b = good.clone();
        b[at] = byte;
        header(&b)
    };
    assert_eq!(
        with(0, 9),
        Err(DecodeError::UnsupportedFormat { format: 9 })
    );
    assert_eq!(with(1, 2), Err(DecodeError::UnknownTsCodec { id: 2 }));
    assert_eq!(with(2, 6), Err(DecodeError::UnknownValueCodec { id: 6 }));
    assert!(matches!(with(8, 1), Err(DecodeError::Corrupt { .. })));
    // One point more than the bytes describe: sections no longer fit.
    let mut more = good.clone();
    more[3] = 11;
    let (mut t, mut v) = ([0i64; 11], [0u64; 11]);
    assert!(decode(&more, &mut t, &mut v).is_err());
    // A changed last timestamp is noticed when decoding.
    let mut last = good.clone();
    last[17] ^= 1;
    assert_eq!(
        decode(&last, &mut t, &mut v),
        Err(DecodeError::Corrupt {
            what: "timestamps do not end at the header's last timestamp"
        })
    );
}

#[test]
fn find_misses_timestamps_not_in_the_block() {
    let ts = regular(300);
    let values: Vec<u64> = (0..300).map(|i| i * 3).collect();
    let bytes = round_trip(&ts, &values);
    assert_eq!(find(&bytes, 1_000_005), Ok(None));
    assert_eq!(find(&bytes, 0), Ok(None));
    assert_eq!(find(&bytes, ts[299]), Ok(Some(897)));
}

#[test]
fn errors_say_what_to_do() {
    use std::string::ToString;
    let msg = EncodeError::OutputTooSmall {
        needed: 90,
        provided: 10,
    }
    .to_string();
    assert!(
        msg.contains("90") && msg.contains("max_encoded_len"),
        "{msg}"
    );
    let msg = DecodeError::Truncated {
        needed: 90,
        available: 10,
    }
    .to_string();
    assert!(msg.contains("90") && msg.contains("10"), "{msg}");
}

mod regular_columns {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 512 }))]

        /// `find` in a regular column computes the position (unless the
        /// column wraps around `i64`): it must agree with a linear search
        /// for members, near misses and anything else, wrapping or not.
        #[test]
        fn find_in_a_regular_column_is_a_linear_search(
            first in prop_oneof![any::<i64>(), -1_000i64..1_000, Just(i64::MAX - 300), Just(i64::MIN + 5)],
            step in prop_oneof![any::<i64>(), -50i64..50, Just(0i64), Just(i64::MIN)],
            n in 1usize..if cfg!(miri) { 20 } else { 300 },
            probes in proptest::collection::vec((any::<u16>(), -2i64..=2, any::<i64>()), 8),
        ) {
            let ts: Vec<i64> = (0..n as i64).map(|i| first.wrapping_add(step.wrapping_mul(i))).collect();
            let values: Vec<u64> = (0..n as u64).collect();
            let bytes = encoded(&ts, &values);
            for (at, off, any) in probes {
                for target in [ts[usize::from(at) % n].wrapping_add(off), any] {
                    let want = ts.iter().position(|&t| t == target).map(|i| values[i]);
                    prop_assert_eq!(find(&bytes, target), Ok(want), "target {}", target);
                }
            }
        }
    }
}

use super::*;
use proptest::prelude::*;
use std::vec;
use std::vec::Vec;

/// The codec and size `choose` must pick: every candidate sized in
/// full, in the tie order, with no bound to skip one.
fn exhaustive(values: &[u64]) -> (ValueCodec, usize) {
    let n = values.len();
    let mut best = (ValueCodec::Raw, 8 * n);
    let Some(&first) = values.first() else {
        return best;
    };
    let mut consider = |codec, size| {
        if size < best.1 {
            best = (codec, size);
        }
    };
    let (umin, umax, dmin, dmax) = bit_ranges(values);
    let width = bits::width(umax - umin);
    consider(
        ValueCodec::For,
        1 + cursor::varint_len(umin) + bits::packed_len(n, width),
    );
    let dwidth = bits::width(dmax.wrapping_sub(dmin) as u64);
    consider(
        ValueCodec::DeltaFor,
        1 + cursor::varint_len(first)
            + cursor::varint_len(cursor::zigzag(dmin))
            + bits::packed_len(n - 1, dwidth),
    );
    let ints: Option<Vec<i64>> =
        decimal::exponent(values).and_then(|e| decimal::integers(values, e).collect());
    if let Some(ints) = ints {
        let (min, max) = (*ints.iter().min().unwrap(), *ints.iter().max().unwrap());
        let for_size = 2
            + cursor::varint_len(cursor::zigzag(min))
            + bits::packed_len(n, bits::width(max.wrapping_sub(min) as u64));
        let mut size = (for_size, ValueCodec::Decimal);
        if n >= 2 {
            let d: Vec<i64> = ints.windows(2).map(|p| p[1].wrapping_sub(p[0])).collect();
            let (dmin, dmax) = (*d.iter().min().unwrap(), *d.iter().max().unwrap());
            let delta_size = 2
                + cursor::varint_len(cursor::zigzag(ints[0]))
                + cursor::varint_len(cursor::zigzag(dmin))
                + bits::packed_len(n - 1, bits::width(dmax.wrapping_sub(dmin) as u64));
            if delta_size < for_size {
                size = (delta_size, ValueCodec::DecimalDelta);
            }
        }
        consider(size.1, size.0);
    }
    let mut count = xor::Count::default();
    xor::encode(values, &mut count);
    consider(ValueCodec::Xor, count.0.div_ceil(8));
    best
}

/// Chooses and writes `values`, from the scratch and without it.
fn check(values: &[u64]) {
    let mut scratch = [0; STACK_POINTS];
    let (plan, size) = ValuePlan::choose(values, &mut scratch);
    assert_eq!((plan.codec(), size), exhaustive(values), "{values:x?}");
    let (mut a, mut b) = (vec![0xA5u8; size], vec![0x5Au8; size]);
    let mut w = Writer::new(&mut a);
    plan.write(values, &scratch, &mut w);
    assert_eq!(w.pos(), size);
    let uncached = match plan {
        ValuePlan::Decimal { e, ints, .. } => ValuePlan::Decimal {
            e,
            ints,
            cached: false,
        },
        plan => plan,
    };
    let mut w = Writer::new(&mut b);
    uncached.write(values, &[0; STACK_POINTS], &mut w);
    assert_eq!(a, b);
    let mut out = vec![0u64; values.len()];
    decode(&mut Reader::new(&a), plan.codec(), &mut out).unwrap();
    assert_eq!(out, values);
    // In part: the points of each range come back, whatever the entries
    // around them held.
    let n = values.len();
    for (from, to) in [
        (0, n),
        (n / 3, n),
        (n / 3, 2 * n / 3),
        (1.min(n / 2), n / 2),
        (n, n),
    ] {
        let mut part = vec![0xDEAD_BEEF; n];
        decode_range(&mut Reader::new(&a), plan.codec(), n, from..to, &mut part).unwrap();
        assert_eq!(part[from..to], values[from..to], "{from}..{to} of {n}");
    }
}

fn decimals(n: usize) -> impl Strategy<Value = Vec<u64>> {
    // Mostly one exponent, now and then a value that needs more (early,
    // late or never), and the odd value no exponent holds.
    (
        0u8..4,
        proptest::collection::vec(-30_000i64..30_000, n),
        proptest::collection::vec((0..n.max(1), 0u8..6), 0..3),
        prop_oneof![Just(None), (0..n.max(1)).prop_map(Some)],
    )
        .prop_map(|(e, ints, bumps, odd)| {
            let mut v: Vec<u64> = ints
                .iter()
                .map(|&i| (i as f64 / 10f64.powi(i32::from(e))).to_bits())
                .collect();
            for (at, e) in bumps {
                if let Some(x) = v.get_mut(at) {
                    *x = (ints[at] as f64 / 10f64.powi(i32::from(e) + 3) + 0.125).to_bits();
                }
            }
            if let Some(x) = odd.and_then(|at| v.get_mut(at)) {
                *x = core::f64::consts::PI.to_bits();
            }
            v
        })
}

fn shaped(n: usize) -> impl Strategy<Value = Vec<u64>> {
    prop_oneof![
        proptest::collection::vec(any::<u64>(), n),
        decimals(n),
        (any::<u64>(), proptest::collection::vec(0u64..1 << 12, n))
            .prop_map(|(base, v)| v.into_iter().map(|x| base.wrapping_add(x)).collect()),
        (any::<u64>(), proptest::collection::vec(0u64..300, n)).prop_map(|(base, steps)| {
            steps
                .into_iter()
                .scan(base, |acc, s| {
                    *acc = acc.wrapping_add(s);
                    Some(*acc)
                })
                .collect()
        }),
        proptest::collection::vec((0u64..4, any::<u64>()), n).prop_map(|v| {
            // Repeats and small XORs: XOR against everything else.
            v.into_iter()
                .scan(1.5f64.to_bits(), |acc, (k, x)| {
                    *acc ^= match k {
                        0 | 1 => 0,
                        2 => x & 0xff << 20,
                        _ => x & 0xf_ffff_ffff,
                    };
                    Some(*acc)
                })
                .collect()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 2 } else { 512 }))]

    #[test]
    fn choose_picks_what_sizing_every_candidate_picks(
        values in (0usize..if cfg!(miri) { 20 } else { 300 }).prop_flat_map(shaped),
    ) {
        check(&values);
    }

    #[test]
    fn the_xor_bound_is_at_most_the_stream_and_size_below_is_exact(
        values in (0usize..if cfg!(miri) { 20 } else { 300 }).prop_flat_map(shaped),
        share in 0usize..=100,
    ) {
        let mut count = xor::Count::default();
        xor::encode(&values, &mut count);
        prop_assert!(xor::bits_at_least(&values) <= count.0);
        // A limit anywhere from nothing to past the stream's size.
        let limit = (count.0 + 64) * share / 100;
        let expected = (count.0 < limit).then_some(count.0);
        prop_assert_eq!(xor::size_below(&values, limit), expected);
    }

    #[test]
    fn full_blocks_choose_the_same_either_side_of_the_scratch(
        values in (STACK_POINTS - 2..=STACK_POINTS + 2).prop_flat_map(shaped),
    ) {
        check(&values);
    }
}

#[test]
fn a_late_value_needing_a_larger_exponent_is_found() {
    let mut v: Vec<u64> = (0..200)
        .map(|i| (f64::from(i * 37 % 101) * 0.5 - 20.0).to_bits())
        .collect();
    v[150] = 0.125f64.to_bits();
    check(&v);
    let mut scratch = [0; STACK_POINTS];
    let (plan, _) = ValuePlan::choose(&v, &mut scratch);
    assert!(
        matches!(
            plan,
            ValuePlan::Decimal {
                e: 3,
                cached: true,
                ..
            }
        ),
        "{plan:?}"
    );
}

//! `series::locate_below` (interpolation checked by the two bounds around
//! the guess, binary search otherwise) against a walk over the bounds:
//! even bounds, where the guess is right; clustered ones, where it lands
//! too low or too high; spans that overflow 64 bits times the count.

use numatree_core::series::locate_below;
use proptest::prelude::*;

/// The last block whose bound is at most `ts` (the first when none is),
/// with the bound after it (`upper` after the last).
fn walked(bounds: &[i64], upper: i64, ts: i64) -> (usize, i64) {
    let b = bounds.iter().rposition(|&f| f <= ts).unwrap_or(0);
    (b, bounds.get(b + 1).copied().unwrap_or(upper))
}

fn located(bounds: &[i64], upper: i64, ts: i64) -> (usize, i64) {
    locate_below(bounds.len(), |i| bounds[i], upper, ts)
}

#[test]
fn fixed_shapes_locate_as_a_walk_does() {
    let shapes: Vec<(Vec<i64>, i64)> = vec![
        ((0..40).map(|b| 1_000 + 256 * b).collect(), 1_000 + 256 * 40),
        (vec![0, 1, 2, 3, 1_000, 1_001, 50_000], 50_010),
        (vec![0, 10_000, 10_001, 10_002, 10_003], 10_004),
        (vec![-7], 5),
        (vec![i64::MIN + 1, -3, 0, i64::MAX - 100], i64::MAX),
    ];
    for (bounds, upper) in shapes {
        let ends: Vec<i64> = bounds.iter().copied().chain([upper]).collect();
        let mut probes = vec![
            bounds[0].saturating_sub(1),
            upper - 1,
            upper,
            i64::MIN,
            i64::MAX,
        ];
        for w in ends.windows(2) {
            let (lo, hi) = (w[0], w[1]);
            probes.extend([lo, lo.saturating_add(1), hi - 1, lo + (hi - lo) / 2]);
        }
        for ts in probes {
            assert_eq!(
                located(&bounds, upper, ts),
                walked(&bounds, upper, ts),
                "ts {ts} in {bounds:?} (upper {upper})"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 512 }))]

    #[test]
    fn locate_below_finds_the_block_a_walk_finds(
        mut bounds in proptest::collection::vec(
            prop_oneof![any::<i64>(), -1_000i64..1_000, 0i64..20],
            1..60,
        ),
        past in 1i64..1_000,
        probes in proptest::collection::vec(any::<i64>(), 0..20),
        near in proptest::collection::vec((0usize..60, -2i64..=2), 0..40),
    ) {
        bounds.sort_unstable();
        bounds.dedup();
        let last = *bounds.last().unwrap();
        let upper = last.checked_add(past);
        prop_assume!(upper.is_some());
        let upper = upper.unwrap();
        let around = near
            .iter()
            .map(|&(i, off)| bounds[i % bounds.len()].saturating_add(off))
            .chain([upper - 1, upper, upper.saturating_add(1)]);
        for ts in probes.into_iter().chain(around) {
            prop_assert_eq!(
                located(&bounds, upper, ts),
                walked(&bounds, upper, ts),
                "ts {} in {:?} (upper {})", ts, bounds, upper
            );
        }
    }
}

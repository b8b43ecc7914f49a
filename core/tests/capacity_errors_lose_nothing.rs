//! A full store or a bad run is an error value: the tree stays valid and
//! holds exactly what was reported as applied.

use std::collections::BTreeMap;

use numatree_core::{sort_dedup, ArrayStore, Error, NodeStore, Record, Tree};
use proptest::prelude::*;

fn sorted_run(mut raw: Vec<Record>) -> Vec<Record> {
    let mut scratch = vec![Record::ZERO; raw.len()];
    let len = sort_dedup(&mut raw, &mut scratch, &mut [], |_| 0).unwrap();
    raw.truncate(len);
    raw
}

/// 300 cases by default; `PROPTEST_CASES` overrides (Miri runs use few).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

fn contents<const C: usize>(tree: &Tree<ArrayStore<C, 4, 4>, 4, 4>) -> BTreeMap<(u32, i64), u64> {
    tree.iter()
        .map(|r| ((r.key.series, r.key.ts), r.value))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn full_store_applies_exactly_the_reported_prefix(
        runs in prop::collection::vec(
            prop::collection::vec((0u32..8, -100i64..100, any::<u64>()), 0..80), 1..8),
    ) {
        let mut tree: Tree<ArrayStore<12, 4, 4>, 4, 4> = Tree::new(ArrayStore::new());
        for raw in runs {
            let run = sorted_run(raw.into_iter().map(|(s, t, v)| Record::new(s, t, v)).collect());
            let mut expected = contents(&tree);
            match tree.merge_run(&run) {
                Ok(_) => {
                    for r in &run { expected.insert((r.key.series, r.key.ts), r.value); }
                }
                Err(Error::Full { applied }) => {
                    prop_assert!(applied <= run.len());
                    for r in &run[..applied] { expected.insert((r.key.series, r.key.ts), r.value); }
                }
                Err(e) => panic!("unexpected {e}"),
            }
            tree.validate().unwrap();
            prop_assert_eq!(contents(&tree), expected.clone());
            prop_assert_eq!(tree.len(), expected.len());
        }
    }
}

#[test]
fn retrying_the_rest_after_clearing_completes_the_run() {
    let run: Vec<Record> = (0..200).map(|t| Record::new(1, t, t as u64)).collect();
    let mut tree: Tree<ArrayStore<20, 4, 4>, 4, 4> = Tree::new(ArrayStore::new());
    let Err(Error::Full { applied }) = tree.merge_run(&run) else {
        panic!("200 records cannot fit 20 nodes of 4")
    };
    assert!(applied > 0 && applied < run.len());
    assert_eq!(tree.len(), applied);
    tree.validate().unwrap();
    tree.clear();
    tree.validate().unwrap();
    assert_eq!(tree.store().allocated(), 0);
    let rest = &run[applied..];
    let half = &rest[..rest.len().min(40)];
    tree.merge_run(half).unwrap();
    assert_eq!(tree.len(), half.len());
    assert!(half.iter().all(|r| tree.get(1, r.key.ts) == Some(r.value)));
}

#[test]
fn unsorted_or_duplicate_runs_are_rejected_without_changes() {
    let mut tree: Tree<ArrayStore<16>> = Tree::new(ArrayStore::new());
    tree.merge_run(&[Record::new(1, 1, 1)]).unwrap();
    let descending = [Record::new(1, 5, 0), Record::new(1, 4, 0)];
    assert_eq!(
        tree.merge_run(&descending),
        Err(Error::Unsorted { index: 1 })
    );
    let duplicate = [Record::new(1, 5, 0), Record::new(1, 5, 1)];
    assert_eq!(
        tree.merge_run(&duplicate),
        Err(Error::Unsorted { index: 1 })
    );
    assert_eq!(tree.len(), 1);
    tree.validate().unwrap();
}

#[test]
fn a_store_with_no_room_fails_before_creating_the_root() {
    let mut tree: Tree<ArrayStore<0>> = Tree::new(ArrayStore::new());
    assert_eq!(
        tree.merge_run(&[Record::new(1, 1, 1)]),
        Err(Error::Full { applied: 0 })
    );
    assert!(tree.is_empty());
    tree.validate().unwrap();
    assert_eq!(tree.merge_run(&[]), Ok(Default::default()));
}

#[test]
fn nan_payloads_and_extreme_keys_round_trip_exactly() {
    let nan = f64::from_bits(0x7ff8_dead_beef_0001);
    let run = [
        Record::new(0, i64::MIN, nan.to_bits()),
        Record::new(0, i64::MAX, u64::MAX),
        Record::new(u32::MAX, i64::MIN, 0),
        Record::new(u32::MAX, i64::MAX, 1),
    ];
    let mut tree: Tree<ArrayStore<8>> = Tree::new(ArrayStore::new());
    tree.merge_run(&run).unwrap();
    assert_eq!(tree.get(0, i64::MIN), Some(nan.to_bits()));
    assert_eq!(tree.range(u32::MAX, ..).count(), 2);
    assert_eq!(tree.range(0, i64::MIN..=i64::MAX).count(), 2);
    let (t0, t1) = (5, 1);
    assert_eq!(tree.range(0, t0..t1).count(), 0, "inverted range is empty");
}

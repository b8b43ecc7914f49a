//! Sequences of runs merged into a tiny fixed-capacity tree, checked after
//! every step against a `BTreeMap` oracle and `validate()`.
//!
//! The store holds 64 nodes of 4 records / 4 children, so `Error::Full`
//! happens often: its `applied` prefix must be exactly what the tree holds.
//! Keys come from a small domain (six series plus `u32::MAX`, timestamps
//! -127..=126 plus `i64::MIN` / `i64::MAX`) so duplicates, upserts and
//! extreme keys are common. Also checked: `sort_dedup` (stable, last write
//! wins, grouped), `Error::Unsorted` leaving the tree untouched, `clear`
//! returning every node, point lookups and range scans with every bound kind.
//!
//! Run: `cd core && cargo +nightly fuzz run merge_runs -- -max_total_time=60`.

#![no_main]

use std::collections::BTreeMap;
use std::ops::Bound;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use numatree_core::{sort_dedup, ArrayStore, Error, NodeStore, Record, SlotBuffer, Tree};

type SmallTree = Tree<ArrayStore<64, 4, 4>, 4, 4>;
type Oracle = BTreeMap<(u32, i64), u64>;

/// One insert: a series code, a timestamp code and the value.
#[derive(Arbitrary, Clone, Copy, Debug)]
struct Raw {
    series: u8,
    ts: u8,
    value: u64,
}

fn series(code: u8) -> u32 {
    if code == u8::MAX {
        u32::MAX
    } else {
        u32::from(code % 6)
    }
}

fn ts(code: u8) -> i64 {
    match code {
        0 => i64::MIN,
        u8::MAX => i64::MAX,
        c => i64::from(c) - 128,
    }
}

impl Raw {
    fn record(self) -> Record {
        Record::new(series(self.series), ts(self.ts), self.value)
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Inserts sorted the way a sealed slot is (`sort_dedup`, one group,
    /// a count table of `table % 4` -> 0, 1, 8 or 1024 entries), then merged.
    Merge { raw: Vec<Raw>, table: u8 },
    /// Records merged as given: `Unsorted` (tree unchanged) unless they
    /// happen to be strictly ascending.
    MergeAsIs(Vec<Raw>),
    /// `sort_dedup` and `SlotBuffer::sort_swapping` grouped by
    /// `series % groups`, checked against a stable sort with
    /// last-write-wins; the tree is not touched.
    SortGrouped { raw: Vec<Raw>, groups: u8, table: u8 },
    /// Empties the tree; every node must go back to the store.
    Clear,
    /// A range scan of one series.
    Scan {
        series: u8,
        from: Option<(u8, bool)>,
        to: Option<(u8, bool)>,
    },
}

fn counts(table: u8) -> Vec<u32> {
    vec![0; [0, 1, 8, 1024][usize::from(table % 4)]]
}

fn sorted(raw: &[Raw], table: u8, group: impl Fn(u32) -> u8) -> Vec<Record> {
    let mut records: Vec<Record> = raw.iter().map(|r| r.record()).collect();
    let mut scratch = vec![Record::ZERO; records.len()];
    let len = sort_dedup(&mut records, &mut scratch, &mut counts(table), group)
        .expect("scratch is as long as the run");
    records.truncate(len);
    records
}

/// The runtime's way: a slot sorted with a scratch of its own capacity
/// (`SlotBuffer::sort_swapping`, which trades the two buffers when the run
/// ends in the scratch).
fn sorted_swapping(raw: &[Raw], table: u8, group: impl Fn(u32) -> u8) -> Vec<Record> {
    let records: Vec<Record> = raw.iter().map(|r| r.record()).collect();
    let capacity = records.len().max(1);
    let mut slot = SlotBuffer::with_storage(vec![Record::ZERO; capacity].into_boxed_slice());
    assert_eq!(slot.extend_from_slice(&records), records.len());
    let mut scratch = vec![Record::ZERO; capacity].into_boxed_slice();
    slot.sort_swapping(&mut scratch, &mut counts(table), group)
        .expect("scratch is as long as the slot")
        .to_vec()
}

/// What `sort_dedup` must produce: stable by (group, key), last write wins.
fn expected_sort(raw: &[Raw], group: impl Fn(u32) -> u8) -> Vec<Record> {
    let mut tagged: Vec<(u8, Record, usize)> = raw
        .iter()
        .enumerate()
        .map(|(i, r)| (group(series(r.series)), r.record(), i))
        .collect();
    tagged.sort_by(|a, b| (a.0, a.1.key, a.2).cmp(&(b.0, b.1.key, b.2)));
    let mut out: Vec<Record> = Vec::new();
    let mut last: Option<(u8, numatree_core::Key)> = None;
    for (g, r, _) in tagged {
        if last == Some((g, r.key)) {
            *out.last_mut().unwrap() = r;
        } else {
            out.push(r);
        }
        last = Some((g, r.key));
    }
    out
}

fn merge(tree: &mut SmallTree, oracle: &mut Oracle, run: &[Record]) {
    let before = tree.len();
    let new_keys = |prefix: &[Record], oracle: &Oracle| {
        prefix
            .iter()
            .filter(|r| !oracle.contains_key(&(r.key.series, r.key.ts)))
            .count()
    };
    let applied = match tree.merge_run(run) {
        Ok(stats) => {
            assert_eq!(stats.inserted, new_keys(run, oracle), "inserted count");
            assert_eq!(stats.inserted + stats.replaced, run.len());
            run.len()
        }
        Err(Error::Full { applied }) => {
            assert!(applied < run.len(), "Full with the whole run applied");
            applied
        }
        Err(e) => panic!("unexpected error merging a sorted run: {e}"),
    };
    let added = new_keys(&run[..applied], oracle);
    for r in &run[..applied] {
        oracle.insert((r.key.series, r.key.ts), r.value);
    }
    assert_eq!(tree.len(), before + added, "len after merge");
    for r in run {
        let want = oracle.get(&(r.key.series, r.key.ts)).copied();
        assert_eq!(tree.get(r.key.series, r.key.ts), want, "get {:?}", r.key);
    }
}

fn check(tree: &SmallTree, oracle: &Oracle) {
    if let Err(e) = tree.validate() {
        panic!("invalid tree: {e:?}");
    }
    assert_eq!(tree.len(), oracle.len());
    assert!(tree.iter().map(|r| ((r.key.series, r.key.ts), r.value)).eq(oracle.iter().map(|(k, v)| (*k, *v))));
}

fn bound(b: Option<(u8, bool)>) -> Bound<i64> {
    match b {
        None => Bound::Unbounded,
        Some((t, true)) => Bound::Included(ts(t)),
        Some((t, false)) => Bound::Excluded(ts(t)),
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut tree: SmallTree = Tree::new(ArrayStore::new());
    let mut oracle = Oracle::new();
    for op in ops.into_iter().take(64) {
        match op {
            Op::Merge { raw, table } => {
                let run = sorted(&raw, table, |_| 0);
                assert_eq!(run, expected_sort(&raw, |_| 0), "sort_dedup");
                merge(&mut tree, &mut oracle, &run);
            }
            Op::MergeAsIs(raw) => {
                let run: Vec<Record> = raw.iter().map(|r| r.record()).collect();
                match (1..run.len()).find(|&i| run[i - 1].key >= run[i].key) {
                    Some(index) => {
                        assert_eq!(tree.merge_run(&run), Err(Error::Unsorted { index }));
                    }
                    None => merge(&mut tree, &mut oracle, &run),
                }
            }
            Op::SortGrouped { raw, groups, table } => {
                let groups = groups.max(1);
                let group = move |s: u32| (s % u32::from(groups)) as u8;
                let expected = expected_sort(&raw, group);
                assert_eq!(sorted(&raw, table, group), expected);
                assert_eq!(sorted_swapping(&raw, table, group), expected, "sort_swapping");
            }
            Op::Clear => {
                tree.clear();
                oracle.clear();
                assert_eq!(tree.store().allocated(), 0, "clear leaked nodes");
            }
            Op::Scan { series: s, from, to } => {
                let s = series(s);
                let range = (bound(from), bound(to));
                let inverted = match (range.0, range.1) {
                    (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
                        a > b || (a == b && !matches!(range, (Bound::Included(_), Bound::Included(_))))
                    }
                    _ => false,
                };
                let got: Vec<(i64, u64)> = tree.range(s, range).map(|r| (r.key.ts, r.value)).collect();
                let want: Vec<(i64, u64)> = if inverted {
                    Vec::new()
                } else {
                    let lo = match range.0 {
                        Bound::Unbounded => Bound::Included((s, i64::MIN)),
                        b => b.map(|t| (s, t)),
                    };
                    let hi = match range.1 {
                        Bound::Unbounded => Bound::Included((s, i64::MAX)),
                        b => b.map(|t| (s, t)),
                    };
                    oracle.range((lo, hi)).map(|(k, v)| (k.1, *v)).collect()
                };
                assert_eq!(got, want, "scan {s} {range:?}");
            }
        }
        check(&tree, &oracle);
    }
});

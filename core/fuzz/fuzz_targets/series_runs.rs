//! Sequences of runs merged into a tiny fixed-capacity column-block index
//! (`SeriesIndex` over 48 blocks of 4 points, 6 series of up to 16 blocks),
//! checked after every step against a `BTreeMap` oracle and `validate()`.
//!
//! Blocks hold 4 points, so appends start blocks and late points rewrite
//! and split them all the time, and the store or a series' index fills
//! often: the `Error::Full { applied }` prefix must be exactly what the
//! index holds. Keys come from a small domain (five series plus
//! `u32::MAX`, timestamps -127..=126 plus `i64::MIN` / `i64::MAX`), so
//! duplicates, upserts, late points and extreme keys are common. Point
//! lookups and scans with every bound kind and a limit are checked too.
//!
//! Run: `cd core && cargo +nightly fuzz run series_runs -- -max_total_time=60`.

#![no_main]

use std::collections::BTreeMap;
use std::ops::Bound;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use numatree_core::{sort_dedup, ArrayBlockStore, Error, Record, SeriesIndex};

type SmallIndex = SeriesIndex<ArrayBlockStore<48, 4>, 6, 16>;
type Oracle = BTreeMap<(u32, i64), u64>;

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
        u32::from(code % 5)
    }
}

fn ts(code: u8) -> i64 {
    match code {
        0 => i64::MIN,
        u8::MAX => i64::MAX,
        c => i64::from(c) - 128,
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Inserts sorted the way a sealed slot is, then merged.
    Merge(Vec<Raw>),
    /// A run that is not strictly ascending must be refused, nothing changed.
    Unsorted(Raw, Raw),
    /// A scan of one series with bounds of every kind and a limit.
    Scan { series: u8, lo: (u8, u8), hi: (u8, u8), limit: u8 },
}

fn bound(kind: u8, code: u8) -> Bound<i64> {
    match kind % 3 {
        0 => Bound::Included(ts(code)),
        1 => Bound::Excluded(ts(code)),
        _ => Bound::Unbounded,
    }
}

fn check(index: &SmallIndex, oracle: &Oracle) {
    assert_eq!(index.validate(), Ok(oracle.len()));
    for (&(s, t), &v) in oracle {
        assert_eq!(index.get(s, t), Some(v), "get({s}, {t})");
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut index = SmallIndex::new(ArrayBlockStore::new());
    let mut oracle = Oracle::new();
    for op in ops {
        match op {
            Op::Merge(raw) => {
                let mut run: Vec<Record> = raw
                    .iter()
                    .map(|r| Record::new(series(r.series), ts(r.ts), r.value))
                    .collect();
                let mut scratch = vec![Record::ZERO; run.len()];
                let len = sort_dedup(&mut run, &mut scratch, &mut [0; 8], |_| 0).unwrap();
                run.truncate(len);
                let applied = match index.merge_run(&run) {
                    Ok(stats) => {
                        let new = run
                            .iter()
                            .filter(|r| !oracle.contains_key(&(r.key.series, r.key.ts)))
                            .count();
                        assert_eq!((stats.inserted, stats.replaced), (new, run.len() - new));
                        run.len()
                    }
                    Err(Error::Full { applied }) => applied,
                    Err(e) => panic!("{e}"),
                };
                for r in &run[..applied] {
                    oracle.insert((r.key.series, r.key.ts), r.value);
                }
                check(&index, &oracle);
            }
            Op::Unsorted(a, b) => {
                let (a, b) = (
                    Record::new(series(a.series), ts(a.ts), a.value),
                    Record::new(series(b.series), ts(b.ts), b.value),
                );
                let (hi, lo) = if a.key >= b.key { (a, b) } else { (b, a) };
                assert_eq!(index.merge_run(&[hi, lo]), Err(Error::Unsorted { index: 1 }));
                check(&index, &oracle);
            }
            Op::Scan { series: code, lo, hi, limit } => {
                let s = series(code);
                let (start, end) = (bound(lo.0, lo.1), bound(hi.0, hi.1));
                let mut got = Vec::new();
                let n = index.scan(s, (start, end), usize::from(limit), |t, v| got.push((t, v)));
                let key = |b: Bound<i64>, unbounded: i64| match b {
                    Bound::Included(t) => Bound::Included((s, t)),
                    Bound::Excluded(t) => Bound::Excluded((s, t)),
                    Bound::Unbounded => Bound::Included((s, unbounded)),
                };
                let (klo, khi) = (key(start, i64::MIN), key(end, i64::MAX));
                let empty = match (klo, khi) {
                    (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) if a > b => true,
                    (Bound::Excluded(a), Bound::Excluded(b)) if a == b => true,
                    _ => false,
                };
                let want: Vec<(i64, u64)> = if empty {
                    Vec::new()
                } else {
                    oracle.range((klo, khi)).map(|(k, v)| (k.1, *v)).take(usize::from(limit)).collect()
                };
                assert_eq!(n, got.len());
                assert_eq!(got, want, "scan {s} {start:?}..{end:?} limit {limit}");
            }
        }
    }
});

//! The core's behaviour on a Cortex-M4F, checked against an oracle:
//! slot capacity, sorting (both algorithms, series 0 and `u32::MAX` in one
//! slot), merging until the store is full with nothing lost, point lookups
//! of every key and range scans. One `PASS`/`FAIL` line per check.
//!
//! With the `plant-wrong-expectation` feature one expected value is wrong on
//! purpose: the run must then fail (the negative control).
#![no_std]
#![no_main]

use core::ops::Bound;

use cortex_m_rt::entry;
use numatree_core::{ArraySlot, ArrayStore, Error, NodeStore, Record, SortScratch, Tree};
use numatree_embedded::report::{note, Checks};
use numatree_embedded::workload::{self, SERIES};
use numatree_embedded::{SLOT_RECORDS, STORE_NODES};

/// Where the rest of a run goes when the main store is full: at most one
/// slot's records, appended in order into an empty tree (4 full leaves and
/// a root), with room to spare.
const OVERFLOW_NODES: usize = 8;

/// Stop pushing if the store has not reported full by then.
const MAX_RECORDS: usize = 100_000;

type MainTree = Tree<ArrayStore<STORE_NODES>>;
type OverflowTree = Tree<ArrayStore<OVERFLOW_NODES>>;

#[entry]
fn main() -> ! {
    let mut checks = Checks::new();
    note(format_args!(
        "numatree-core checks: slot {SLOT_RECORDS} records, store {STORE_NODES} nodes"
    ));
    slot_hands_back_records_when_full(&mut checks);
    extreme_series_in_one_slot(&mut checks);
    narrow_series_take_the_counting_sort(&mut checks);
    oracle_agrees_with_brute_force(&mut checks);

    let slot =
        cortex_m::singleton!(: ArraySlot<SLOT_RECORDS> = ArraySlot::new()).expect("main runs once");
    let scratch = cortex_m::singleton!(: SortScratch<SLOT_RECORDS> = SortScratch::new())
        .expect("main runs once");
    let main_tree =
        cortex_m::singleton!(: MainTree = Tree::new(ArrayStore::new())).expect("main runs once");
    let overflow = cortex_m::singleton!(: OverflowTree = Tree::new(ArrayStore::new()))
        .expect("main runs once");

    let ingested = ingest_until_full(&mut checks, slot, scratch, main_tree, overflow);
    let view = View {
        main: main_tree,
        overflow,
    };
    point_lookups(&mut checks, &view, ingested);
    range_scans(&mut checks, &view, ingested);
    checks.finish()
}

/// What a key must hold after `n` records: the oracle, with the planted
/// mistake of the negative control.
fn expected(k: usize, ts: i64, n: usize) -> Option<u64> {
    let value = workload::expected(k, ts, n);
    if cfg!(feature = "plant-wrong-expectation") && SERIES[k] == u32::MAX && ts == 5 {
        return Some(value.map_or(1, |v| v ^ 1));
    }
    value
}

fn slot_hands_back_records_when_full(checks: &mut Checks) {
    let mut slot: ArraySlot<4> = ArraySlot::new();
    let accepted = (0..4).all(|i| slot.push(workload::record(i)).is_ok());
    let refused = slot.push(workload::record(4));
    slot.seal();
    let sealed = slot.is_sealed() && slot.clone().push(workload::record(0)).is_err();
    checks.check(
        "slot-full",
        accepted && refused == Err(workload::record(4)) && slot.len() == 4 && sealed,
        format_args!(
            "4 pushes accepted, the 5th handed back (Err(record)), len {}",
            slot.len()
        ),
    );
}

/// The 32-bit overflow this firmware exists to catch: the series span
/// `u32::MAX - 0 + 1` does not fit a 32-bit `usize`.
fn extreme_series_in_one_slot(checks: &mut Checks) {
    let mut slot: ArraySlot<8> = ArraySlot::new();
    for r in [
        Record::new(u32::MAX, 2, 1),
        Record::new(0, 1, 2),
        Record::new(u32::MAX, 1, 3),
        Record::new(0, 1, 4),
    ] {
        let _ = slot.push(r);
    }
    let mut scratch = SortScratch::new();
    let run = slot.sort(&mut scratch);
    let want = [
        Record::new(0, 1, 4),
        Record::new(u32::MAX, 1, 3),
        Record::new(u32::MAX, 2, 1),
    ];
    let sorted = run == want;
    // Room for a root leaf plus a step's worst case (a leaf and a new root).
    let mut tree: Tree<ArrayStore<4>> = Tree::new(ArrayStore::new());
    let merged = tree.merge_run(run).is_ok();
    let found = tree.get(0, 1) == Some(4)
        && tree.get(u32::MAX, 1) == Some(3)
        && tree.get(u32::MAX, 2) == Some(1)
        && tree.get(u32::MAX, 3).is_none();
    checks.check(
        "series-0-and-u32-max-in-one-slot",
        sorted && merged && found,
        format_args!("sorted {sorted} (last insert of a key wins), merged {merged}, found {found}"),
    );
}

fn narrow_series_take_the_counting_sort(checks: &mut Checks) {
    // Series 100..=103 span 4 <= 8 count entries: the counting sort path.
    let mut slot: ArraySlot<8> = ArraySlot::new();
    for r in [
        Record::new(103, 5, 1),
        Record::new(100, 9, 2),
        Record::new(102, -3, 3),
        Record::new(100, 4, 4),
        Record::new(103, 5, 5),
        Record::new(100, 9, 6),
        Record::new(101, i64::MIN, 7),
        Record::new(103, 1, 8),
    ] {
        let _ = slot.push(r);
    }
    let mut scratch = SortScratch::new();
    let run = slot.sort(&mut scratch);
    let want = [
        Record::new(100, 4, 4),
        Record::new(100, 9, 6),
        Record::new(101, i64::MIN, 7),
        Record::new(102, -3, 3),
        Record::new(103, 1, 8),
        Record::new(103, 5, 5),
    ];
    checks.check(
        "counting-sort",
        run == want,
        format_args!(
            "8 records over series 100..=103 -> {} distinct keys in order",
            run.len()
        ),
    );
}

/// The closed-form oracle against the definition it abbreviates: the last
/// of records `0..n` that writes a key.
fn oracle_agrees_with_brute_force(checks: &mut Checks) {
    const N: usize = 900;
    let mut disagreements = 0;
    for i in 0..N {
        let r = workload::record(i);
        let last = (i..N)
            .rfind(|&j| workload::record(j).key == r.key)
            .map(workload::value);
        if last != workload::expected(workload::series_index(i), r.key.ts, N) {
            disagreements += 1;
        }
    }
    checks.check(
        "oracle",
        disagreements == 0,
        format_args!("closed-form expected values agree with a brute-force scan of {N} records ({disagreements} disagreements)"),
    );
}

/// Pushes the workload slot by slot, sorts each slot and merges it, until the
/// main store reports [`Error::Full`]; the rest of that run goes into the
/// overflow tree. Returns how many records were pushed into slots (all of
/// them ingested: in the main tree, or, for the last slot's tail, in the
/// overflow tree).
fn ingest_until_full(
    checks: &mut Checks,
    slot: &mut ArraySlot<SLOT_RECORDS>,
    scratch: &mut SortScratch<SLOT_RECORDS>,
    tree: &mut MainTree,
    overflow: &mut OverflowTree,
) -> usize {
    let mut next = 0;
    let mut handed_back_ok = true;
    let (mut inserted, mut replaced, mut slots) = (0, 0, 0);
    let mut full = None;
    // Keys in the tree before the merge that filled the store.
    let mut len_before = 0;
    while next < MAX_RECORDS {
        slot.clear();
        while next < MAX_RECORDS {
            let record = workload::record(next);
            match slot.push(record) {
                Ok(()) => next += 1,
                Err(back) => {
                    // The record is not lost: it is pushed again, first
                    // thing, into the next slot.
                    handed_back_ok &= back == record;
                    break;
                }
            }
        }
        slots += 1;
        let run = slot.sort(scratch);
        len_before = tree.len();
        match tree.merge_run(run) {
            Ok(stats) => {
                inserted += stats.inserted;
                replaced += stats.replaced;
            }
            Err(Error::Full { applied }) => {
                let rest = &run[applied..];
                let rest_merged = overflow.merge_run(rest);
                full = Some((applied, run.len(), rest_merged));
                break;
            }
            Err(e) => {
                checks.check(
                    "ingest",
                    false,
                    format_args!("merge_run of slot {slots} failed: {e}"),
                );
                return next;
            }
        }
    }
    let Some((applied, run_len, rest_merged)) = full else {
        checks.check(
            "store-full",
            false,
            format_args!("the store of {STORE_NODES} nodes never reported Error::Full in {MAX_RECORDS} records"),
        );
        return next;
    };
    let store = tree.store();
    checks.check(
        "store-full",
        store.available() <= tree.height() && tree.height() >= 3,
        format_args!(
            "Error::Full {{ applied: {applied} }} of a {run_len}-record run after {next} records in {slots} slots; \
             {} of {STORE_NODES} nodes used, height {}",
            store.allocated(),
            tree.height()
        ),
    );
    checks.check(
        "full-is-not-lossy",
        handed_back_ok && rest_merged.is_ok() && overflow.len() == run_len - applied,
        format_args!(
            "the {} records past `applied` merged into a second tree ({rest_merged:?}); \
             refused pushes handed back unchanged: {handed_back_ok}",
            run_len - applied
        ),
    );
    // `Error::Full` carries no stats: the last merge added at most `applied` keys.
    let stats_agree = inserted == len_before
        && (len_before..=len_before + applied).contains(&tree.len())
        && replaced > 0;
    checks.check(
        "merge-stats",
        stats_agree,
        format_args!(
            "{inserted} keys inserted before the store filled (tree len then {len_before}, now {}), \
             {replaced} replaced by late duplicates",
            tree.len()
        ),
    );
    let main_valid = tree.validate();
    let overflow_valid = overflow.validate();
    checks.check(
        "validate",
        main_valid.is_ok() && overflow_valid.is_ok(),
        format_args!("main {main_valid:?}, overflow {overflow_valid:?}"),
    );
    next
}

/// The ingested data as a reader sees it: the overflow tree holds the newest
/// writes, so it is asked first.
struct View<'a> {
    main: &'a MainTree,
    overflow: &'a OverflowTree,
}

impl View<'_> {
    fn get(&self, series: u32, ts: i64) -> Option<u64> {
        self.overflow
            .get(series, ts)
            .or_else(|| self.main.get(series, ts))
    }

    /// Visits the records of `series` in `lo..hi` ascending, merging both
    /// trees (the overflow tree's record wins on equal keys).
    fn scan(&self, series: u32, lo: Bound<i64>, hi: Bound<i64>, mut visit: impl FnMut(Record)) {
        let mut a = self.main.range(series, (lo, hi)).peekable();
        let mut b = self.overflow.range(series, (lo, hi)).peekable();
        loop {
            let next = match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (Some(x), Some(y)) if x.key < y.key => a.next(),
                (Some(x), Some(y)) if x.key == y.key => {
                    a.next();
                    b.next()
                }
                (Some(_), Some(_)) => b.next(),
            };
            if let Some(r) = next {
                visit(r);
            }
        }
    }
}

/// Every key a record could have written (and one past each end), looked up.
fn point_lookups(checks: &mut Checks, view: &View<'_>, n: usize) {
    let (mut present, mut absent, mut wrong) = (0, 0, 0);
    let mut first_wrong = None;
    for (k, &series) in SERIES.iter().enumerate() {
        for ts in -1..=workload::max_ts(n) + 1 {
            let want = expected(k, ts, n);
            let got = view.get(series, ts);
            match want {
                Some(_) => present += 1,
                None => absent += 1,
            }
            if got != want {
                wrong += 1;
                first_wrong.get_or_insert((series, ts, got, want));
            }
        }
    }
    let extra = view.main.len() + view.overflow.len() - overlap(view);
    checks.check(
        "point-lookups",
        wrong == 0 && extra == present,
        format_args!(
            "{present} present and {absent} absent keys over {} series; {wrong} wrong \
             (first: {first_wrong:?} as (series, ts, got, expected)); trees hold {extra} distinct keys",
            SERIES.len()
        ),
    );
}

/// Keys held by both trees (the overflow tree's version is the current one).
fn overlap(view: &View<'_>) -> usize {
    view.overflow
        .iter()
        .filter(|r| view.main.get(r.key.series, r.key.ts).is_some())
        .count()
}

fn range_scans(checks: &mut Checks, view: &View<'_>, n: usize) {
    let end = workload::max_ts(n);
    let windows: [(Bound<i64>, Bound<i64>); 8] = [
        (Bound::Unbounded, Bound::Unbounded),
        (Bound::Included(0), Bound::Excluded(100)),
        (Bound::Included(37), Bound::Included(421)),
        (Bound::Excluded(end / 2), Bound::Unbounded),
        (Bound::Unbounded, Bound::Excluded(-1)),
        (Bound::Included(50), Bound::Excluded(50)),
        (Bound::Included(60), Bound::Excluded(40)),
        (Bound::Included(end - 20), Bound::Included(end + 20)),
    ];
    let (mut scans, mut records, mut wrong) = (0, 0, 0);
    let mut first_wrong = None;
    for (k, &series) in SERIES.iter().enumerate() {
        for (lo, hi) in windows {
            scans += 1;
            // Expected: every timestamp in the window, in order, with a value.
            let from = match lo {
                Bound::Included(t) => t,
                Bound::Excluded(t) => t + 1,
                Bound::Unbounded => -1,
            };
            let to = match hi {
                Bound::Included(t) => t,
                Bound::Excluded(t) => t - 1,
                Bound::Unbounded => end + 1,
            };
            let mut want = (from..=to).filter_map(|ts| expected(k, ts, n).map(|v| (ts, v)));
            let mut ok = true;
            view.scan(series, lo, hi, |r| {
                records += 1;
                let got = (r.key.series == series).then_some((r.key.ts, r.value));
                ok &= got == want.next();
            });
            ok &= want.next().is_none();
            if !ok {
                wrong += 1;
                first_wrong.get_or_insert((series, lo, hi));
            }
        }
    }
    checks.check(
        "range-scans",
        wrong == 0,
        format_args!(
            "{scans} scans ({records} records; full, bounded, open, empty and inverted windows); \
             {wrong} wrong (first: {first_wrong:?})"
        ),
    );
}

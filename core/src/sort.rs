//! Sorting a sealed slot into a strictly ascending run, with no heap.
//!
//! Why not `slice::sort`: the stable sort needs `alloc`, and the unstable one
//! loses insertion order, which decides which of two inserts of one key wins.
//!
//! The common case is a counting sort by series (time-series writers cycle
//! over a bounded set of series, each in time order): one counting pass, one
//! scatter pass, a per-series check that is almost always "already in time
//! order", and a copy back (one pass that drops superseded duplicates
//! instead, when the check saw a series not strictly ascending: it costs
//! a compare a record, a third of the sort). [`sort_dedup_either`] leaves
//! out the copy back, for callers that can swap their buffers. Only series whose
//! points arrived out of order are sorted further (insertion sort for short
//! groups, merge sort for long ones). When series ids span more than the
//! caller's count table, a stable scatter by group and a stable merge sort
//! by key within each group handle the run.
//!
//! Records can also be grouped by a caller-given function of the series
//! (the runtime groups by shard), so one pass yields one contiguous,
//! sorted sub-run per group.

use crate::error::Error;
use crate::record::Record;

/// Groups below this length are insertion-sorted, above it merge-sorted.
const INSERTION_SORT_MAX: usize = 24;

/// Scratch space for sorting up to `N` records: `N` records and an `N`-entry
/// count table. Lives wherever the caller likes (stack, static, arena).
#[derive(Clone, Debug)]
pub struct SortScratch<const N: usize> {
    records: [Record; N],
    counts: [u32; N],
}

impl<const N: usize> SortScratch<N> {
    /// Zeroed scratch.
    pub const fn new() -> Self {
        SortScratch {
            records: [Record::ZERO; N],
            counts: [0; N],
        }
    }

    /// The record scratch and the count table, for [`sort_dedup`].
    pub fn parts(&mut self) -> (&mut [Record], &mut [u32]) {
        (&mut self.records, &mut self.counts)
    }
}

impl<const N: usize> Default for SortScratch<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Sorts `records` by `(group(series), key)`, stably, then removes all but
/// the last of each run of equal keys. Returns the new length: `records[..len]`
/// is strictly ascending by key within each group.
///
/// `scratch` must hold at least `records.len()` records. `counts` may be any
/// length (even 0): when the series ids of the run span at most
/// `counts.len()` values, the fast counting sort is used, else a stable
/// scatter by group and a merge sort by key within each group.
/// `group` is called with series ids and must be a pure function of them.
///
/// # Errors
/// [`Error::ScratchTooSmall`] if `scratch` is shorter than `records`;
/// `records` is then unchanged.
pub fn sort_dedup(
    records: &mut [Record],
    scratch: &mut [Record],
    counts: &mut [u32],
    group: impl Fn(u32) -> u8,
) -> Result<usize, Error> {
    match sort_dedup_either(records, scratch, counts, group)? {
        Sorted::InRecords(len) => Ok(len),
        Sorted::InScratch(len) => {
            records[..len].copy_from_slice(&scratch[..len]);
            Ok(len)
        }
    }
}

/// Where [`sort_dedup_either`] left the sorted run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sorted {
    /// In `records[..len]`.
    InRecords(usize),
    /// In `scratch[..len]`; `records` then still holds the input as given.
    InScratch(usize),
}

/// [`sort_dedup`] without its last copy: the counting sort's common case
/// (no key twice) ends with the run in `scratch`, and a caller that can
/// swap the two buffers (a slot and a scratch of the same capacity, see
/// [`SlotBuffer::sort_swapping`](crate::SlotBuffer::sort_swapping)) saves
/// copying it back. Same order, same deduplication, same errors.
///
/// # Errors
/// [`Error::ScratchTooSmall`] if `scratch` is shorter than `records`;
/// `records` is then unchanged.
pub fn sort_dedup_either(
    records: &mut [Record],
    scratch: &mut [Record],
    counts: &mut [u32],
    group: impl Fn(u32) -> u8,
) -> Result<Sorted, Error> {
    let n = records.len();
    if scratch.len() < n {
        return Err(Error::ScratchTooSmall {
            needed: n,
            provided: scratch.len(),
        });
    }
    if n < 2 {
        return Ok(Sorted::InRecords(n));
    }
    let scratch = &mut scratch[..n];
    let sort_key = |r: &Record| (group(r.key.series), r.key);
    if records
        .windows(2)
        .all(|w| sort_key(&w[0]) <= sort_key(&w[1]))
    {
        return Ok(Sorted::InRecords(dedup_in_place(records)));
    }
    let (min, max) = records.iter().fold((u32::MAX, 0), |(lo, hi), r| {
        (lo.min(r.key.series), hi.max(r.key.series))
    });
    // `max - min` fits a u32; the span (one more) need not fit a 32-bit
    // usize, so compare without forming it.
    let widest = (max - min) as usize;
    if widest < counts.len() {
        counting_sort_by_series(records, scratch, &mut counts[..=widest], min, &group);
        if sort_each_series_by_ts(scratch, records) {
            Ok(Sorted::InRecords(dedup_into(scratch, records)))
        } else {
            // No key twice (the common case): no compares, and the run is
            // where the scatter left it.
            Ok(Sorted::InScratch(n))
        }
    } else {
        let ends = scatter_by_group(records, scratch, &group);
        let mut start = 0;
        for end in ends {
            if end - start > 1 {
                merge_sort_by(
                    &mut scratch[start..end],
                    &mut records[start..end],
                    |a, b| a.key < b.key,
                );
            }
            start = end;
        }
        Ok(Sorted::InRecords(dedup_into(scratch, records)))
    }
}

/// Groups `group` can name.
const GROUPS: usize = 256;

/// Stable scatter of `src` into `dst` ordered by `group(series)` only;
/// returns where each group ends in `dst` (one table of 256 positions on
/// the stack: each group's start, advanced past each record placed).
/// Calls `group` twice per record, so that the merge sort of each group
/// after it compares keys alone instead of calling `group` twice per
/// comparison.
fn scatter_by_group(
    src: &[Record],
    dst: &mut [Record],
    group: &impl Fn(u32) -> u8,
) -> [usize; GROUPS] {
    let mut next = [0usize; GROUPS];
    for r in src {
        next[group(r.key.series) as usize] += 1;
    }
    let mut start = 0;
    for n in next.iter_mut() {
        let count = *n;
        *n = start;
        start += count;
    }
    for r in src {
        let pos = &mut next[group(r.key.series) as usize];
        dst[*pos] = *r;
        *pos += 1;
    }
    next
}

/// Stable scatter of `src` into `dst` ordered by `(group(series), series)`.
/// `counts` has one entry per series id in `min..min + counts.len()`.
fn counting_sort_by_series(
    src: &[Record],
    dst: &mut [Record],
    counts: &mut [u32],
    min: u32,
    group: &impl Fn(u32) -> u8,
) {
    counts.fill(0);
    for r in src {
        counts[(r.key.series - min) as usize] += 1;
    }
    let mut group_start = [0u32; 256];
    for (offset, &c) in counts.iter().enumerate() {
        if c != 0 {
            group_start[group(min + offset as u32) as usize] += c;
        }
    }
    let mut acc = 0;
    for g in group_start.iter_mut() {
        let total = *g;
        *g = acc;
        acc += total;
    }
    // Turn counts into each series' first output position.
    for (offset, c) in counts.iter_mut().enumerate() {
        if *c != 0 {
            let g = group(min + offset as u32) as usize;
            let start = group_start[g];
            group_start[g] += *c;
            *c = start;
        }
    }
    for r in src {
        let pos = &mut counts[(r.key.series - min) as usize];
        dst[*pos as usize] = *r;
        *pos += 1;
    }
}

/// Sorts each maximal run of one series in `records` by timestamp, stably.
/// `tmp` is free space at least as long as `records`. Returns whether a
/// key may occur twice (false: every key is distinct, so the dedup pass
/// can be a plain copy). A series this sorts counts as maybe having a
/// key twice, unchecked.
fn sort_each_series_by_ts(records: &mut [Record], tmp: &mut [Record]) -> bool {
    let mut maybe_twice = false;
    let mut start = 0;
    while start < records.len() {
        let series = records[start].key.series;
        let mut end = start + 1;
        let mut ascending = true;
        while end < records.len() && records[end].key.series == series {
            ascending &= records[end - 1].key.ts < records[end].key.ts;
            end += 1;
        }
        if !ascending {
            maybe_twice = true;
            let group = &mut records[start..end];
            if group.len() <= INSERTION_SORT_MAX {
                insertion_sort_by(group, |a, b| a.key.ts < b.key.ts);
            } else {
                merge_sort_by(group, &mut tmp[..end - start], |a, b| a.key.ts < b.key.ts);
            }
        }
        start = end;
    }
    maybe_twice
}

/// Copies `src` into `dst`, keeping only the last of each run of equal keys.
fn dedup_into(src: &[Record], dst: &mut [Record]) -> usize {
    let mut out = 0;
    for i in 0..src.len() {
        if i + 1 < src.len() && src[i].key == src[i + 1].key {
            continue;
        }
        dst[out] = src[i];
        out += 1;
    }
    out
}

/// Keeps only the last of each run of equal keys, in place.
fn dedup_in_place(records: &mut [Record]) -> usize {
    let mut out = 0;
    for i in 0..records.len() {
        if i + 1 < records.len() && records[i].key == records[i + 1].key {
            continue;
        }
        records[out] = records[i];
        out += 1;
    }
    out
}

/// Stable insertion sort.
fn insertion_sort_by(v: &mut [Record], less: impl Fn(&Record, &Record) -> bool) {
    for i in 1..v.len() {
        let x = v[i];
        let mut j = i;
        while j > 0 && less(&x, &v[j - 1]) {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = x;
    }
}

/// Stable bottom-up merge sort of `v`, using `tmp` (same length) as scratch.
fn merge_sort_by(v: &mut [Record], tmp: &mut [Record], less: impl Fn(&Record, &Record) -> bool) {
    const BLOCK: usize = 16;
    let n = v.len();
    for chunk in v.chunks_mut(BLOCK) {
        insertion_sort_by(chunk, &less);
    }
    let mut width = BLOCK;
    let mut in_v = true;
    while width < n {
        {
            let (src, dst): (&[Record], &mut [Record]) = if in_v {
                (&*v, &mut *tmp)
            } else {
                (&*tmp, &mut *v)
            };
            let mut lo = 0;
            while lo < n {
                let mid = (lo + width).min(n);
                let hi = (lo + 2 * width).min(n);
                merge_into(&src[lo..mid], &src[mid..hi], &mut dst[lo..hi], &less);
                lo = hi;
            }
        }
        in_v = !in_v;
        width *= 2;
    }
    if !in_v {
        v.copy_from_slice(tmp);
    }
}

/// Merges two sorted runs into `out`; ties take the left run first (stable).
fn merge_into(
    a: &[Record],
    b: &[Record],
    out: &mut [Record],
    less: &impl Fn(&Record, &Record) -> bool,
) {
    let (mut i, mut j) = (0, 0);
    for slot in out.iter_mut() {
        if j >= b.len() || (i < a.len() && !less(&b[j], &a[i])) {
            *slot = a[i];
            i += 1;
        } else {
            *slot = b[j];
            j += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    fn oracle(records: &[Record], group: impl Fn(u32) -> u8) -> Vec<Record> {
        let mut map = BTreeMap::new();
        for r in records {
            map.insert((group(r.key.series), r.key), r.value);
        }
        map.into_iter()
            .map(|((_, k), v)| Record { key: k, value: v })
            .collect()
    }

    /// Both entry points against the oracle: `sort_dedup` leaves the run
    /// in `records`, `sort_dedup_either` wherever it says.
    fn check(records: Vec<Record>, counts_len: usize, group: impl Fn(u32) -> u8 + Copy) {
        let expected = oracle(&records, group);
        let mut copy = records.clone();
        let mut scratch = std::vec![Record::ZERO; records.len()];
        let mut counts = std::vec![0u32; counts_len];
        let len = sort_dedup(&mut copy, &mut scratch, &mut counts, group).unwrap();
        assert_eq!(&copy[..len], &expected[..]);

        let mut copy = records;
        let mut scratch = std::vec![Record::ZERO; copy.len()];
        let run = match sort_dedup_either(&mut copy, &mut scratch, &mut counts, group).unwrap() {
            Sorted::InRecords(len) => &copy[..len],
            Sorted::InScratch(len) => &scratch[..len],
        };
        assert_eq!(run, &expected[..]);
    }

    #[test]
    fn the_common_case_is_left_in_the_scratch_and_the_rest_in_the_records() {
        // Rounds of one point per series, each series in time order: the
        // counting sort's scatter is the answer, not copied back.
        let rounds: Vec<Record> = (0..4i64)
            .flat_map(|t| (0..5u32).map(move |s| Record::new(s, t, u64::from(s) + 10 * t as u64)))
            .collect();
        let expected = oracle(&rounds, |_| 0);
        let mut records = rounds.clone();
        let mut scratch = std::vec![Record::ZERO; records.len() + 1];
        let mut counts = std::vec![0u32; 64];
        let sorted = sort_dedup_either(&mut records, &mut scratch, &mut counts, |_| 0).unwrap();
        assert_eq!(sorted, Sorted::InScratch(expected.len()));
        assert_eq!(&scratch[..expected.len()], &expected[..]);
        assert_eq!(records, rounds, "the records are left as given");
        // A key twice: deduplicated into the records.
        let mut records = rounds.clone();
        records.push(Record::new(2, 1, 99));
        let sorted = sort_dedup_either(&mut records, &mut scratch, &mut counts, |_| 0).unwrap();
        assert_eq!(sorted, Sorted::InRecords(expected.len()));
        assert_eq!(records[9], Record::new(2, 1, 99), "the later insert wins");
        // Already in order: left in place.
        let mut records = expected.clone();
        let sorted = sort_dedup_either(&mut records, &mut scratch, &mut counts, |_| 0).unwrap();
        assert_eq!(sorted, Sorted::InRecords(expected.len()));
        assert_eq!(records, expected);
    }

    fn arb_records(max_series: u32, max_ts: i64) -> impl Strategy<Value = Vec<Record>> {
        proptest::collection::vec(
            (0..max_series, -max_ts..max_ts, any::<u64>())
                .prop_map(|(s, t, v)| Record::new(s, t, v)),
            0..if cfg!(miri) { 40 } else { 600 },
        )
    }

    /// Rounds of one point per series in time order (a slot's common
    /// case), some points sent again later in their round with a new
    /// value: every series stays in time order, with a key twice.
    fn arb_rounds_with_resends() -> impl Strategy<Value = Vec<Record>> {
        let resends =
            proptest::collection::vec(any::<bool>(), 0..if cfg!(miri) { 40 } else { 600 });
        (2u32..20, 1i64..30, resends).prop_map(|(series, rounds, resend)| {
            let mut out = Vec::new();
            let mut k = 0;
            for t in 0..rounds {
                let mut again = Vec::new();
                for s in 0..series {
                    out.push(Record::new(s, t * 10, k));
                    if resend.get(k as usize).copied().unwrap_or(false) {
                        again.push(Record::new(s, t * 10, k + 1_000_000));
                    }
                    k += 1;
                }
                out.extend(again);
            }
            out
        })
    }

    proptest! {
        #[test]
        fn resent_points_of_ordered_series_keep_the_later_value(records in arb_rounds_with_resends()) {
            check(records.clone(), 64, |_| 0);
            check(records, 64, |s| (s % 3) as u8);
        }

        #[test]
        fn counting_path_matches_oracle_with_later_insert_winning(records in arb_records(40, 30)) {
            check(records, 64, |_| 0);
        }

        #[test]
        fn merge_sort_path_matches_oracle(records in arb_records(u32::MAX, i64::MAX)) {
            check(records, 0, |_| 0);
        }

        #[test]
        fn grouping_puts_groups_first_then_keys(records in arb_records(50, 100)) {
            check(records.clone(), 64, |s| (s % 7) as u8);
            check(records, 0, |s| (s % 7) as u8);
        }
    }

    #[test]
    fn scratch_too_small_is_an_error_and_leaves_input_alone() {
        let mut records = [Record::new(2, 0, 0), Record::new(1, 0, 0)];
        let before = records;
        let mut scratch = [Record::ZERO; 1];
        assert_eq!(
            sort_dedup(&mut records, &mut scratch, &mut [], |_| 0),
            Err(Error::ScratchTooSmall {
                needed: 2,
                provided: 1
            })
        );
        assert_eq!(records, before);
    }

    #[test]
    fn series_zero_and_u32_max_together_take_the_merge_sort_path() {
        let records = std::vec![
            Record::new(u32::MAX, 5, 1),
            Record::new(0, 5, 2),
            Record::new(u32::MAX, 5, 3),
        ];
        check(records.clone(), 64, |_| 0);
        check(records, 64, |s| (s % 3) as u8);
    }

    #[test]
    fn extreme_timestamps_sort_correctly() {
        let records = std::vec![
            Record::new(3, i64::MAX, 1),
            Record::new(3, i64::MIN, 2),
            Record::new(3, 0, 3),
            Record::new(3, i64::MAX, 4),
        ];
        check(records, 4, |_| 0);
    }

    #[test]
    fn long_out_of_order_series_use_merge_sort_correctly() {
        let records: Vec<Record> = (0..500)
            .map(|i| Record::new(i % 3, (i as i64 * 7919) % 401, i as u64))
            .collect();
        check(records, 8, |_| 0);
    }
}

//! The ingest workload, defined by closed formulas so that the value every
//! key must hold after any prefix of it is computed from the definition
//! alone ([`expected`]), never from the tree under test.
//!
//! Record `i` belongs to step `i / SERIES.len()`: each step writes one point
//! of every series, in an order that rotates with the step (so every slot is
//! unsorted and holds series 0 and `u32::MAX` together). A step writes
//! timestamp `step`, except:
//! - every 10th step (`step % 10 == 9`) re-sends the point of 7 steps before,
//!   a late duplicate, often of a record still in the same slot;
//! - every 100th step (`step % 100 == 55`) re-sends the point of 50 steps
//!   before (300 records back: always merged already, so the new value must
//!   replace it in the tree).
//!
//! So timestamps ending in 9 are never written (absent keys), those ending in
//! 2 are written twice, and those ending in 05 twice; the later write wins.

use numatree_core::Record;

/// The series ids, both ends of `u32` included.
pub const SERIES: [u32; 6] = [0, 7, 8, 1_000_000, u32::MAX - 1, u32::MAX];

const S: usize = SERIES.len();

/// Steps back that a 10th step re-sends.
const LATE: usize = 7;
/// Steps back that a 100th step re-sends.
const VERY_LATE: usize = 50;

/// The timestamp written at `step`.
pub fn ts_at(step: usize) -> i64 {
    let ts = if step % 10 == 9 {
        step - LATE
    } else if step % 100 == 55 {
        step - VERY_LATE
    } else {
        step
    };
    ts as i64
}

/// Index into [`SERIES`] of record `i`.
pub fn series_index(i: usize) -> usize {
    (i % S + i / S) % S
}

/// The value of record `i`: distinct for every record, so a lookup shows
/// exactly which write it returns.
pub fn value(i: usize) -> u64 {
    (i as u64) << 20 | 0xA_BCDE
}

/// Record `i` of the workload.
pub fn record(i: usize) -> Record {
    let step = i / S;
    Record::new(SERIES[series_index(i)], ts_at(step), value(i))
}

/// Record `i` of the same workload with series ids `0..6` instead of
/// [`SERIES`]: ids that span less than a slot's capacity, which the sort
/// handles with its counting sort (ids spanning more take its merge sort).
pub fn record_narrow_ids(i: usize) -> Record {
    let step = i / S;
    Record::new(series_index(i) as u32, ts_at(step), value(i))
}

/// The record index that writes series `SERIES[k]` at `step`.
fn index_of(step: usize, k: usize) -> usize {
    step * S + (k + S - step % S) % S
}

/// The value key `(SERIES[k], ts)` holds once records `0..n` are ingested
/// (the last write wins), or `None` if none of them wrote it.
pub fn expected(k: usize, ts: i64, n: usize) -> Option<u64> {
    let t = usize::try_from(ts).ok()?;
    [Some(t), t.checked_add(LATE), t.checked_add(VERY_LATE)]
        .into_iter()
        .flatten()
        .filter(|&step| ts_at(step) == ts)
        .map(|step| index_of(step, k))
        .filter(|&i| i < n)
        .max()
        .map(value)
}

/// The largest timestamp records `0..n` can write.
pub fn max_ts(n: usize) -> i64 {
    (n / S) as i64
}

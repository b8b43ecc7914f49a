//! One series: its column blocks in time order and the small index over
//! them (each block's first timestamp), and the algorithms on it: merging a
//! sorted run of the series' records, point search and range iteration.
//!
//! Blocks partition the series' time line: block `i` holds the points with
//! `first_ts(i) <= ts < first_ts(i + 1)` (the first block also takes
//! earlier points, the last everything later). Merging a run:
//!
//! - **Append fast path** (points after the series' last one, the common
//!   case): copy onto the tail block's room, no search. A series' first
//!   block starts as small as its first run and is regrown through the
//!   store's size classes as points arrive (a short series never holds a
//!   whole large block); once it is full at the largest size, the series is
//!   a long one and each new block gets the store's
//!   [`next_block_points`](crate::BlockStore::next_block_points) (the
//!   largest size, unless the store says otherwise) and doubles from there.
//! - **Late points** (at or before the last point): each block they fall
//!   into is rewritten into a new block (or several, split evenly when the
//!   points no longer fit one), which then replaces it in the index: points
//!   already published are never written again, so a reader of the old
//!   block sees it whole. A later insert of a timestamp replaces its value.
//!
//! Every capacity limit is an error value: a merge that runs out of blocks
//! or index room stops between two steps with `Error::Full { applied }`,
//! the first `applied` records merged and the rest untouched.

use core::ops::{Bound, RangeBounds};

use crate::block::{
    binary, interpolate, lower_bound, search, BlockRead, BlockWrite, Point, PointSink,
};
use crate::block_store::{BlockId, BlockSource, BlockStore};
use crate::error::Error;
use crate::record::Record;

/// One block of a series in the series' index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockEntry {
    /// The block's first timestamp when it was indexed (its lower bound in
    /// the partition of the series' time line).
    pub first_ts: i64,
    /// The block.
    pub id: BlockId,
}

/// A series' index over its blocks, ascending by `first_ts`, to read.
pub trait BlockIndex {
    /// Blocks in the series.
    fn len(&self) -> usize;
    /// Entry `i < len()`.
    fn get(&self, i: usize) -> BlockEntry;

    /// Whether the series has no block.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A series' index over its blocks, to change.
pub trait BlockList: BlockIndex {
    /// How many more entries fit.
    fn room(&self) -> usize;
    /// Replaces entry `i`.
    fn set(&mut self, i: usize, entry: BlockEntry);
    /// Inserts `entry` at `i <= len()`; `room()` must be at least 1.
    fn insert(&mut self, i: usize, entry: BlockEntry);
}

impl<const N: usize> BlockIndex for heapless::Vec<BlockEntry, N> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }
    fn get(&self, i: usize) -> BlockEntry {
        self[i]
    }
}

impl<const N: usize> BlockList for heapless::Vec<BlockEntry, N> {
    fn room(&self) -> usize {
        N - self.as_slice().len()
    }
    fn set(&mut self, i: usize, entry: BlockEntry) {
        self[i] = entry;
    }
    fn insert(&mut self, i: usize, entry: BlockEntry) {
        // The caller checked `room()`.
        let _ = heapless::Vec::insert(self, i, entry);
    }
}

/// What a merge did to a series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeriesMergeStats {
    /// Records whose timestamp was new to the series.
    pub inserted: usize,
    /// Records that replaced the value at an existing timestamp.
    pub replaced: usize,
    /// Whether the series' index changed (entries added or replaced); when
    /// false, the merge only appended to the tail block in place.
    pub index_changed: bool,
}

/// The index of the block that holds (or would hold) `ts`, or `None` when
/// the series has no block.
pub fn locate<L: BlockIndex + ?Sized>(list: &L, ts: i64) -> Option<usize> {
    (!list.is_empty()).then(|| block_for(list, ts))
}

/// The block whose time line holds `ts` among `len` blocks with lower
/// bounds `bound(0) < ... < bound(len - 1)`, followed by `upper` (the
/// lower bound of whatever comes after them), and the bound after that
/// block (`upper` after the last): [`locate`] for a reader that knows
/// the end of the span it searches, for `len >= 1`. A `ts` before
/// `bound(0)` gives block 0, one at or past `upper` the last block.
///
/// It interpolates between `bound(0)` and `upper`, which blocks of a
/// regular series split evenly, and checks the guess by the bounds on
/// either side (the second is the answer's next bound); where the blocks
/// split the span unevenly, a binary search. The runtime's lookup of a
/// frozen block takes it: the run's bounds are its frozen blocks', the
/// hot tail's is `upper`, and no probe asks which kind a block is.
///
/// With `len == 0` the answer is `(0, upper)`; `bound` is only called
/// below `len`, and nothing panics.
#[inline]
pub fn locate_below(len: usize, bound: impl Fn(usize) -> i64, upper: i64, ts: i64) -> (usize, i64) {
    let at = |i: usize| if i >= len { upper } else { bound(i) };
    if len <= 1 || ts <= at(0) {
        return (0, at(1));
    }
    if ts >= upper {
        return (len - 1, upper);
    }
    // at(0) < ts < upper: the guess is below `len`.
    let guess = interpolate(at(0), upper, ts, len);
    let next = at(guess + 1);
    if ts < next && at(guess) <= ts {
        return (guess, next);
    }
    // The guess was off: the first bound above `ts` by the shared binary
    // search (`at(len)` is `upper`, above `ts`), its block the one before
    // (`at(0) < ts`, so that bound is not the first).
    let above = match binary(&at, ts, 0, len) {
        Ok(i) => i + 1,
        Err(i) => i,
    };
    (above - 1, at(above))
}

/// The index of the block that holds (or would hold) `ts`.
fn block_for<L: BlockIndex + ?Sized>(list: &L, ts: i64) -> usize {
    match search(list.len(), |i| list.get(i).first_ts, ts) {
        Ok(i) => i,
        Err(i) => i.saturating_sub(1),
    }
}

/// The series' last timestamp, if it has points.
fn last_ts<L: BlockIndex + ?Sized, S: BlockSource>(list: &L, store: &S) -> Option<i64> {
    let tail = store.block(list.get(list.len().checked_sub(1)?).id);
    let len = tail.len();
    (len > 0).then(|| tail.ts(len - 1))
}

/// Merges `run` (records of one series, strictly ascending by timestamp;
/// their series ids are not looked at) into the series' blocks.
///
/// # Errors
/// [`Error::Unsorted`] when `run` is not strictly ascending (nothing
/// changed); [`Error::Full`] when the store has no block or the index no
/// room left: the first `applied` records are merged, the rest untouched.
pub fn merge<L: BlockList + ?Sized, S: BlockStore>(
    list: &mut L,
    store: &mut S,
    run: &[Record],
) -> Result<SeriesMergeStats, Error> {
    if let Some(index) = (1..run.len()).find(|&i| run[i - 1].key.ts >= run[i].key.ts) {
        return Err(Error::Unsorted { index });
    }
    let mut stats = SeriesMergeStats::default();
    let late = match last_ts(list, store) {
        Some(last) => run.partition_point(|r| r.key.ts <= last),
        None => 0,
    };
    let mut applied = 0;
    while applied < late {
        let b = block_for(list, run[applied].key.ts);
        let end = if b + 1 < list.len() {
            let next = list.get(b + 1).first_ts;
            applied + run[applied..late].partition_point(|r| r.key.ts < next)
        } else {
            late
        };
        rewrite(list, store, b, &run[applied..end], &mut stats)
            .map_err(|()| Error::Full { applied })?;
        applied = end;
    }
    while applied < run.len() {
        applied += append(list, store, &run[applied..], &mut stats)
            .map_err(|()| Error::Full { applied })?;
    }
    Ok(stats)
}

/// How many points merging `chunk` into `old` gives, and how many of the
/// chunk's timestamps are new. `from` is where the chunk's first
/// timestamp falls in `old` (`lower_bound`): the points before it are
/// kept as they are, and not read.
fn merged_len<B: BlockRead>(old: &B, chunk: &[Record], from: usize) -> (usize, usize) {
    let mut new = 0;
    let mut i = from;
    for r in chunk {
        while i < old.len() && old.ts(i) < r.key.ts {
            i += 1;
        }
        if i < old.len() && old.ts(i) == r.key.ts {
            i += 1;
        } else {
            new += 1;
        }
    }
    (old.len() + new, new)
}

/// The merge of a block's points with a chunk of records, the chunk's value
/// winning on equal timestamps, as a resumable stream.
struct MergeCursor {
    old: usize,
    chunk: usize,
}

impl MergeCursor {
    fn next<B: BlockRead>(&mut self, old: &B, chunk: &[Record]) -> Point {
        let from_old = self.old < old.len();
        let from_chunk = self.chunk < chunk.len();
        match (from_old, from_chunk) {
            (true, true) => {
                let (t_old, r) = (old.ts(self.old), chunk[self.chunk]);
                if t_old < r.key.ts {
                    self.old += 1;
                    Point::new(t_old, old.value(self.old - 1))
                } else {
                    if t_old == r.key.ts {
                        self.old += 1;
                    }
                    self.chunk += 1;
                    Point::new(r.key.ts, r.value)
                }
            }
            (true, false) => {
                self.old += 1;
                Point::new(old.ts(self.old - 1), old.value(self.old - 1))
            }
            (false, _) => {
                let r = chunk[self.chunk];
                self.chunk += 1;
                Point::new(r.key.ts, r.value)
            }
        }
    }
}

/// Rewrites block `b` merged with `chunk` (records that all fall into it)
/// into new blocks that replace it. All or nothing: `Err` when the store or
/// the index lacks room, with nothing changed.
fn rewrite<L: BlockList + ?Sized, S: BlockStore>(
    list: &mut L,
    store: &mut S,
    b: usize,
    chunk: &[Record],
    stats: &mut SeriesMergeStats,
) -> Result<(), ()> {
    let old_entry = list.get(b);
    // The points before the chunk's first timestamp (most of the block,
    // for a late point into a series' tail) are copied, not merged.
    let (kept, (total, new)) = {
        let old = store.block(old_entry.id);
        let kept = chunk
            .first()
            .map_or(0, |r| lower_bound(&old, r.key.ts, false));
        (kept, merged_len(&old, chunk, kept))
    };
    let max = store.max_points();
    let pieces = total.div_ceil(max);
    if store.available() < pieces || list.room() < pieces - 1 {
        return Err(());
    }
    let mut cursor = MergeCursor { old: 0, chunk: 0 };
    for k in 0..pieces {
        // Even split: the first `total % pieces` pieces get one more.
        let len = total / pieces + usize::from(k < total % pieces);
        let id = store.alloc(len).ok_or(())?;
        let (old, mut block) = store.pair(old_entry.id, id);
        // The kept points that land in this piece, in one pass.
        let copied = kept.saturating_sub(cursor.old).min(len);
        let mut first = (copied > 0).then(|| old.ts(cursor.old));
        copy_points(&old, &mut block, cursor.old..cursor.old + copied);
        cursor.old += copied;
        for i in copied..len {
            let p = cursor.next(&old, chunk);
            first.get_or_insert(p.ts);
            block.write(i, p);
        }
        let first = first.unwrap_or_default();
        block.publish(len);
        // The first piece keeps the old lower bound: earlier points of the
        // series' time line still belong to it.
        let first_ts = if k == 0 {
            old_entry.first_ts.min(first)
        } else {
            first
        };
        let entry = BlockEntry { first_ts, id };
        if k == 0 {
            list.set(b, entry);
        } else {
            list.insert(b + k, entry);
        }
    }
    store.retire(old_entry.id);
    stats.inserted += new;
    stats.replaced += chunk.len() - new;
    stats.index_changed = true;
    Ok(())
}

/// Appends a prefix of `rest` (records after the series' last point) to the
/// series; returns how many. `Err` when the store or the index lacks room.
fn append<L: BlockList + ?Sized, S: BlockStore>(
    list: &mut L,
    store: &mut S,
    rest: &[Record],
    stats: &mut SeriesMergeStats,
) -> Result<usize, ()> {
    let max = store.max_points();
    let tail = list.len().checked_sub(1).map(|t| (t, list.get(t)));
    let (len, capacity) = match tail {
        Some((_, entry)) => {
            let block = store.block_mut(entry.id);
            (block.len(), block.capacity())
        }
        None => (0, 0),
    };
    let n = if let (Some((_, entry)), true) = (tail, len < capacity) {
        // Room in the tail: copy onto it, nothing else changes.
        let n = rest.len().min(capacity - len);
        write_points(&mut store.block_mut(entry.id), len, &rest[..n]);
        n
    } else if let (Some((t, entry)), true) = (tail, capacity < max) {
        // A full tail below the largest size: regrow it one size class up
        // (or more, for a long run); a later block of a long series
        // doubles.
        if store.available() == 0 {
            return Err(());
        }
        let want = if t == 0 {
            len + rest.len()
        } else {
            (len + rest.len()).max(2 * len)
        }
        .min(max);
        let id = store.alloc(want).ok_or(())?;
        let n = {
            let (old, mut block) = store.pair(entry.id, id);
            copy_points(&old, &mut block, 0..len);
            let n = rest.len().min(block.capacity() - len);
            write_points(&mut block, len, &rest[..n]);
            n
        };
        list.set(
            t,
            BlockEntry {
                first_ts: entry.first_ts,
                id,
            },
        );
        store.retire(entry.id);
        stats.index_changed = true;
        n
    } else {
        // No tail, or a full one of the largest size: a new block. A
        // series that filled a largest block is a long one: its new blocks
        // get the largest size at once, so appends never regrow them.
        if store.available() == 0 || list.room() == 0 {
            return Err(());
        }
        let points = if tail.is_some() {
            rest.len().max(store.next_block_points())
        } else {
            rest.len()
        }
        .min(max);
        let id = store.alloc(points).ok_or(())?;
        let mut block = store.block_mut(id);
        let n = rest.len().min(block.capacity());
        write_points(&mut block, 0, &rest[..n]);
        let first_ts = rest[0].key.ts;
        list.insert(list.len(), BlockEntry { first_ts, id });
        stats.index_changed = true;
        n
    };
    stats.inserted += n;
    Ok(n)
}

/// Copies `old`'s points `range` to `block` as its first points, a stack
/// chunk at a time through [`BlockWrite::write_records`], so that a block
/// whose writes cost a lookup each (where point `i` lives) pays it once a
/// chunk, not once a point (the runtime's segmented blocks: ~80
/// instructions a point when written one by one, callgrind).
fn copy_points<R: BlockRead, W: BlockWrite>(
    old: &R,
    block: &mut W,
    range: core::ops::Range<usize>,
) {
    const CHUNK: usize = 32;
    let mut chunk = [Record::ZERO; CHUNK];
    let mut start = range.start;
    while start < range.end {
        let end = (start + CHUNK).min(range.end);
        let mut k = 0;
        old.visit(start, end, &mut |ts, value| {
            // `write_records` writes each record's time and value only.
            chunk[k] = Record::new(0, ts, value);
            k += 1;
        });
        // A view clamps a range past its published points: copying fewer
        // would publish words never written.
        debug_assert_eq!(k, end - start, "the old block holds every point copied");
        block.write_records(start - range.start, &chunk[..k]);
        start = end;
    }
}

/// Writes `records` as points `from..` of `block` and publishes them.
fn write_points<W: BlockWrite>(block: &mut W, from: usize, records: &[Record]) {
    block.write_records(from, records);
    block.publish(from + records.len());
}

/// The value at `ts` in the series, if any.
pub fn get<L: BlockIndex + ?Sized, S: BlockSource>(list: &L, store: &S, ts: i64) -> Option<u64> {
    if list.is_empty() {
        return None;
    }
    let block = store.block(list.get(block_for(list, ts)).id);
    crate::block::find(&block, ts).ok().map(|i| block.value(i))
}

/// Gives `sink` (a closure `f(ts, value)`, or any [`PointSink`]) the
/// series' points with `ts` in `range`, ascending, at most `limit` of them;
/// returns how many.
pub fn scan<L: BlockIndex + ?Sized, S: BlockSource>(
    list: &L,
    store: &S,
    range: impl RangeBounds<i64>,
    limit: usize,
    mut sink: impl PointSink,
) -> usize {
    let (start, after) = match range.start_bound() {
        Bound::Included(&t) => (t, false),
        Bound::Excluded(&t) => (t, true),
        Bound::Unbounded => (i64::MIN, false),
    };
    let start_bound = range.start_bound().cloned();
    let end = range.end_bound().cloned();
    let before_end = |ts: i64| match end {
        Bound::Included(e) => ts <= e,
        Bound::Excluded(e) => ts < e,
        Bound::Unbounded => true,
    };
    let mut count = 0;
    if list.is_empty() || limit == 0 {
        return 0;
    }
    let first = block_for(list, start);
    for b in first..list.len() {
        // One view of the block for both the bound and the walk: a block
        // may grow between two views (the runtime appends while readers
        // read), and a point appended after a first view's end can still lie
        // before `start`.
        let block = store.block_within(list.get(b).id, (start_bound, end));
        if b + 1 < list.len() {
            store.prefetch(list.get(b + 1).id);
        }
        let from = if b == first {
            lower_bound(&block, start, after)
        } else {
            0
        };
        // Where the range ends in this block, found once (on the same
        // view), so the walk below is a plain copy of the two columns.
        let len = block.len();
        let to = match end {
            Bound::Unbounded => len,
            _ if len == 0 || before_end(block.ts(len - 1)) => len,
            Bound::Included(e) => lower_bound(&block, e, true),
            Bound::Excluded(e) => lower_bound(&block, e, false),
        };
        let to = to.max(from);
        let to = from + (to - from).min(limit - count);
        match block.columns(from, to) {
            Some((ts, values)) => sink.columns(ts, values),
            None => block.visit(from, to, &mut |ts, value| sink.point(ts, value)),
        }
        count += to - from;
        if count == limit || to < len {
            return count;
        }
    }
    count
}

/// Points in the series (reads every block's length).
pub fn len<L: BlockIndex + ?Sized, S: BlockSource>(list: &L, store: &S) -> usize {
    (0..list.len())
        .map(|i| store.block(list.get(i).id).len())
        .sum()
}

/// Checks the series' invariants: every block non-empty, points strictly
/// ascending within and across blocks, each block's points at or after its
/// `first_ts` and before the next block's. Returns the point count.
///
/// # Errors
/// A description of the first violation.
pub fn validate<L: BlockIndex + ?Sized, S: BlockSource>(
    list: &L,
    store: &S,
) -> Result<usize, &'static str> {
    let mut last: Option<i64> = None;
    let mut count = 0;
    for b in 0..list.len() {
        let entry = list.get(b);
        let block = store.block(entry.id);
        if block.is_empty() {
            return Err("empty block");
        }
        if b > 0 && entry.first_ts <= list.get(b - 1).first_ts {
            return Err("block index not ascending");
        }
        for i in 0..block.len() {
            let ts = block.ts(i);
            if last.is_some_and(|l| l >= ts) {
                return Err("points not strictly ascending");
            }
            if ts < entry.first_ts {
                return Err("point before its block's first_ts");
            }
            if b + 1 < list.len() && ts >= list.get(b + 1).first_ts {
                return Err("point at or after the next block's first_ts");
            }
            last = Some(ts);
        }
        count += block.len();
    }
    Ok(count)
}

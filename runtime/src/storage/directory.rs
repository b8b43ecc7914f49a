//! A shard's series directory: series id -> the series' published version.
//!
//! Three parts, all readable without a lock:
//! - **direct cells**: a series whose rank in the shard
//!   (`ShardRule::local_index`) is below [`DIRECT_RANKS`] has its cell at
//!   its rank, in chunks of [`DIRECT_CHUNK`] cells allocated when the first
//!   series of the chunk arrives: dense ids (every series of a shard up to
//!   a million, the common case) cost 8 bytes a series, found with no
//!   probe. Sparse ids that happen to fall below the bound cost a chunk
//!   each at worst (at most [`DIRECT_RANKS`] cells a shard in all). The
//!   table of chunks (24 KiB) is made with the first direct series;
//! - a **hash table** for the other series (open addressing, linear
//!   probing) of atomic words, each `series << 32 | cell + 1` (0 marks a
//!   free slot): 8 bytes a slot, at most 3/4 full, whatever the ids;
//! - their **cells**, one per series, in chunks that never move.
//!
//! A cell publishes the series' current version (`super::cell`: 8 bytes,
//! a short series' block itself).
//!
//! Only the shard's merge (one thread at a time, see the shard's lane)
//! writes. It grows the table by publishing a twice larger copy of the
//! words (cells do not move, so the copy shares them), and adds cell chunks
//! by publishing a longer list of chunks; a direct chunk is set once and
//! never moves. Every published thing is reclaimed once no reader pinned
//! before its replacement is left (`crate::sync::publish`).

use crate::plan::ShardRule;
use crate::sync::{pin, Arc, AtomicU64, AtomicUsize, Guard, Ordering, Published, SetOnce};

use super::cell::SeriesCell;

use numatree_core::Record;

use super::series::Series;

/// A free table slot.
const FREE: u64 = 0;

/// Cells per chunk.
const CHUNK_CELLS: usize = 4096;

/// Ranks in a shard whose series have a direct cell (a million: 8 MiB of
/// cells a shard when every one is taken).
#[cfg(not(any(loom, shuttle)))]
const DIRECT_RANKS: usize = 1 << 20;

/// Direct cells per chunk (8 KiB).
#[cfg(not(any(loom, shuttle)))]
const DIRECT_CHUNK: usize = 1024;

/// Under a model checker, 16 direct ranks in chunks of 4 (series of
/// higher ranks take the table).
#[cfg(any(loom, shuttle))]
const DIRECT_RANKS: usize = 16;

#[cfg(any(loom, shuttle))]
const DIRECT_CHUNK: usize = 4;

/// Bytes of a chunk of direct cells.
const DIRECT_CHUNK_BYTES: usize = DIRECT_CHUNK * size_of::<SeriesCell>();

/// The residue of a directory that has no direct cell yet.
const NO_RESIDUE: u64 = u64::MAX;

/// One generation of the table.
#[derive(Debug)]
struct Table {
    words: Box<[AtomicU64]>,
    /// Slots in use (and cells: one per series); written by the merge only.
    used: AtomicUsize,
    /// Which shard the table belongs to: slots are ordered by the series'
    /// rank in its shard.
    rule: ShardRule,
}

impl Table {
    fn with_slots(n: usize, rule: ShardRule) -> Table {
        Table {
            words: (0..n).map(|_| AtomicU64::new(FREE)).collect(),
            used: AtomicUsize::new(0),
            rule,
        }
    }

    /// The word of `series`' slot, or the index of the free slot where it
    /// would go, as `(index, word)`.
    #[inline]
    fn probe(&self, series: u32) -> (usize, u64) {
        let mask = self.words.len() - 1;
        let mut i = slot_of(self.rule.local_index(series)) & mask;
        loop {
            let word = self.words[i].load(Ordering::Acquire);
            if word == FREE || (word >> 32) as u32 == series {
                return (i, word);
            }
            i = (i + 1) & mask;
        }
    }

    /// The cell of `series`, if it has one.
    #[inline]
    fn cell(&self, series: u32) -> Option<usize> {
        match self.probe(series) {
            (_, FREE) => None,
            (_, word) => Some((word & u64::from(u32::MAX)) as usize - 1),
        }
    }

    fn bytes(&self) -> usize {
        self.words.len() * size_of::<u64>()
    }

    /// A copy with twice the slots.
    fn doubled(&self) -> Table {
        let bigger = Table::with_slots(self.words.len() * 2, self.rule);
        for word in self.words.iter() {
            let word = word.load(Ordering::Relaxed);
            if word != FREE {
                let (i, _) = bigger.probe((word >> 32) as u32);
                bigger.words[i].store(word, Ordering::Relaxed);
            }
        }
        bigger
            .used
            .store(self.used.load(Ordering::Relaxed), Ordering::Relaxed);
        bigger
    }
}

/// Where a series of rank `local` in its shard goes in the table: next to
/// the series ranked before and after it (dense ids fill the table in
/// order, so a sorted run walks it like an array and shares its cache
/// lines), with the high bits folded in so that ids far apart but equal in
/// their low bits spread out instead of piling onto one slot.
#[inline]
fn slot_of(local: u32) -> usize {
    (local ^ (local >> 16)) as usize
}

/// One chunk of cells; shared by every list of chunks that includes it.
type Chunk = Arc<[SeriesCell]>;

/// A chunk of direct cells, set once.
type DirectChunk = SetOnce<Box<[SeriesCell]>>;

/// The directory of one shard.
#[derive(Debug)]
pub(crate) struct Directory {
    rule: ShardRule,
    /// What the ids of the series with direct cells leave beside their
    /// rank (`ShardRule::residue`: the same for every series routed to the
    /// shard), set by the first series given a direct cell; a series with
    /// another residue (a shard fed ids that are not its own, in a test)
    /// goes to the table.
    residue: AtomicU64,
    /// The chunks of direct cells, made with the first direct series (an
    /// empty shard holds none of it).
    direct: SetOnce<Box<[DirectChunk]>>,
    table: Published<Table>,
    chunks: Published<Vec<Chunk>>,
}

impl Directory {
    /// An empty directory of a shard whose series follow `rule`.
    pub(crate) fn new(rule: ShardRule) -> Self {
        Directory {
            rule,
            residue: AtomicU64::new(NO_RESIDUE),
            direct: SetOnce::new(),
            table: Published::new(Table::with_slots(64, rule)),
            chunks: Published::new(Vec::new()),
        }
    }

    /// The direct cell index of `series` (its rank), when it has one.
    #[inline]
    fn direct_rank(&self, series: u32) -> Option<usize> {
        let rank = self.rule.local_index(series) as usize;
        let residue = u64::from(self.rule.residue(series));
        (rank < DIRECT_RANKS && residue == self.residue.load(Ordering::Relaxed)).then_some(rank)
    }

    /// Calls `f` with the direct cell of rank `rank` (`None` when its chunk
    /// is not made yet).
    #[inline]
    fn with_direct_cell<R>(&self, rank: usize, f: impl FnOnce(Option<&SeriesCell>) -> R) -> R {
        let chunks = self.direct.get();
        let chunk = chunks.as_ref().and_then(|c| c[rank / DIRECT_CHUNK].get());
        f(chunk.as_ref().map(|c| &c[rank % DIRECT_CHUNK]))
    }

    /// Calls `f` with the cell of `series` (`None` when it has none yet).
    #[inline]
    fn with_cell<R>(
        &self,
        series: u32,
        guard: &Guard,
        f: impl FnOnce(Option<&SeriesCell>) -> R,
    ) -> R {
        if let Some(rank) = self.direct_rank(series) {
            return self.with_direct_cell(rank, f);
        }
        let cell = self.table.load(guard).and_then(|t| t.cell(series));
        match (cell, self.chunks.load(guard)) {
            (Some(cell), Some(chunks)) => f(Some(&chunks[cell / CHUNK_CELLS][cell % CHUNK_CELLS])),
            _ => f(None),
        }
    }

    /// Calls `f` with the current version of `series`, if any (tests: the
    /// read paths are `get` and `scan`, which take no lock, no reference
    /// count and write nothing).
    #[cfg(all(test, not(any(loom, shuttle))))]
    pub(crate) fn with<R>(&self, series: u32, f: impl FnOnce(&Series) -> R) -> Option<R> {
        let guard = pin();
        self.with_cell(series, &guard, |cell| {
            let version = cell?.load(&guard)?;
            Some(f(&version))
        })
    }

    /// The value of `series` at `ts`, if any: the lookup path (as `with`,
    /// and a short series' block searched without making a version).
    #[inline]
    pub(crate) fn get(&self, series: u32, ts: i64) -> Option<u64> {
        let guard = pin();
        self.with_cell(series, &guard, |cell| cell?.get(&guard, ts))
    }

    /// Gives `sink` the points of `series` with `ts` in `range`,
    /// ascending, at most `limit`; returns how many: the scan path (as
    /// `get`).
    #[inline]
    pub(crate) fn scan(
        &self,
        series: u32,
        range: impl std::ops::RangeBounds<i64>,
        limit: usize,
        sink: impl numatree_core::PointSink,
    ) -> usize {
        let guard = pin();
        self.with_cell(series, &guard, |cell| {
            cell.map_or(0, |c| c.scan(&guard, range, limit, sink))
        })
    }

    /// The merge's view of the directory for one run, pinned for its
    /// length. Merge only: one thread at a time per directory.
    pub(crate) fn writer<'g>(&'g self, guard: &'g Guard) -> DirectoryWriter<'g> {
        DirectoryWriter {
            directory: self,
            guard,
        }
    }

    /// Every series' current version, for walking the shard.
    pub(crate) fn for_each(&self, f: impl FnMut(u32, &Series)) {
        self.walk(&pin(), f);
    }

    /// Calls `f` with every series and its current version, as of `guard`.
    #[allow(clippy::needless_borrow)] // an `Arc` under a model checker
    fn walk(&self, guard: &Guard, mut f: impl FnMut(u32, &Series)) {
        let residue = self.residue.load(Ordering::Relaxed);
        if residue != NO_RESIDUE {
            let chunks = self.direct.get();
            for (k, chunk) in chunks.iter().flat_map(|c| c.iter()).enumerate() {
                let Some(chunk) = chunk.get() else {
                    continue;
                };
                for (i, cell) in chunk.iter().enumerate() {
                    if let Some(version) = cell.load(guard) {
                        let rank = (k * DIRECT_CHUNK + i) as u32;
                        f(self.rule.series_of(rank, residue as u32), &version);
                    }
                }
            }
        }
        let (Some(table), Some(chunks)) = (self.table.load(guard), self.chunks.load(guard)) else {
            return;
        };
        for word in table.words.iter() {
            let word = word.load(Ordering::Acquire);
            if word != FREE {
                let cell = (word & u64::from(u32::MAX)) as usize - 1;
                if let Some(version) = chunks[cell / CHUNK_CELLS][cell % CHUNK_CELLS].load(guard) {
                    f((word >> 32) as u32, &version);
                }
            }
        }
    }

    /// Bytes of the direct cells, the table and the cells.
    pub(crate) fn bytes(&self) -> usize {
        let guard = pin();
        let table = self.table.load(&guard).map_or(0, |t| t.bytes());
        let cells =
            self.chunks.load(&guard).map_or(0, |c| c.len()) * CHUNK_CELLS * size_of::<SeriesCell>();
        let direct = self.direct.get().map_or(0, |chunks| {
            let set = chunks.iter().filter(|c| c.get().is_some()).count();
            size_of_val(&**chunks) + set * DIRECT_CHUNK_BYTES
        });
        table + cells + direct
    }
}

/// The merge's handle on a directory during one run.
pub(crate) struct DirectoryWriter<'g> {
    directory: &'g Directory,
    guard: &'g Guard,
}

impl<'g> DirectoryWriter<'g> {
    /// Brings what merging `run` will touch into the cache, one kind of
    /// thing at a time, so that the misses of one pass overlap where the
    /// merge itself would take them one series after another (with many
    /// short series, most of a merge's time is these misses):
    ///
    /// 1. for a series with a direct cell, a prefetch of what the cell
    ///    points at (a short series' block, or a boxed version); for one
    ///    without, its table slot, probed;
    /// 2. the tail block of every boxed version of a direct cell, loaded;
    /// 3. the version and tail block of every series found in the table,
    ///    loaded.
    ///
    /// The first pass prefetches rather than loads: a loop of loads keeps
    /// only as many misses in flight as the core's reorder window holds
    /// iterations, a loop of prefetches as many as its fill buffers.
    pub(crate) fn warm(&self, run: &[Record], cells: &mut Vec<usize>) {
        let d = self.directory;
        let table = d.table.load(self.guard);
        cells.clear();
        let mut touched = 0u64;
        let distinct = || {
            let mut last = None;
            run.iter().filter_map(move |r| {
                let new = last != Some(r.key.series);
                last = Some(r.key.series);
                new.then_some(r.key.series)
            })
        };
        for series in distinct() {
            if let Some(rank) = d.direct_rank(series) {
                d.with_direct_cell(rank, |cell| {
                    if let Some(cell) = cell {
                        cell.prefetch();
                    }
                });
            } else if let Some(cell) = table.as_ref().and_then(|t| t.cell(series)) {
                cells.push(cell);
            }
        }
        for series in distinct() {
            if let Some(rank) = d.direct_rank(series) {
                touched ^= d.with_direct_cell(rank, |cell| match cell {
                    Some(cell) if !cell.is_short() => {
                        cell.with_current(self.guard, |v| v.map_or(0, Series::tail_len))
                    }
                    _ => 0,
                });
            }
        }
        if let Some(chunks) = d.chunks.load(self.guard) {
            for &cell in cells.iter() {
                touched ^= chunks[cell / CHUNK_CELLS][cell % CHUNK_CELLS]
                    .with_current(self.guard, |v| v.map_or(0, Series::tail_len));
            }
        }
        std::hint::black_box(touched);
    }

    /// Calls `f` with the current version of `series` (`None` when it has
    /// no point yet).
    #[inline]
    pub(crate) fn current<R>(&self, series: u32, f: impl FnOnce(Option<&Series>) -> R) -> R {
        self.directory
            .with_cell(series, self.guard, |cell| with_version(cell, self.guard, f))
    }

    /// The guard the writer reads and retires under.
    pub(crate) fn guard(&self) -> &'g Guard {
        self.guard
    }

    /// Calls `f` with the cell of `series` (`None` when it has none yet),
    /// for a merge that publishes into it directly (`append_short`, or a
    /// new version stored into the cell it found).
    #[inline]
    pub(crate) fn cell<R>(&self, series: u32, f: impl FnOnce(Option<&SeriesCell>) -> R) -> R {
        self.directory.with_cell(series, self.guard, f)
    }

    /// Calls `f` with every series and its current version.
    pub(crate) fn for_each(&self, f: impl FnMut(u32, &Series)) {
        self.directory.walk(self.guard, f);
    }

    /// Publishes `version` as the current one of `series`, adding the
    /// series (a cell, a table slot, growing either) if it is new. Returns
    /// the bytes the directory grew by.
    pub(crate) fn publish(&mut self, series: u32, version: Series) -> usize {
        let d = self.directory;
        let rank = d.rule.local_index(series) as usize;
        if rank < DIRECT_RANKS && d.residue.load(Ordering::Relaxed) == NO_RESIDUE {
            // The first series with a direct cell: every later series of
            // the shard has its residue.
            d.residue
                .store(u64::from(d.rule.residue(series)), Ordering::Relaxed);
        }
        if let Some(rank) = d.direct_rank(series) {
            let mut grown = 0;
            let chunks = d.direct.get_or_init(|| {
                let chunks: Box<[DirectChunk]> = (0..DIRECT_RANKS / DIRECT_CHUNK)
                    .map(|_| SetOnce::new())
                    .collect();
                grown += size_of_val(&*chunks);
                chunks
            });
            let chunk = chunks[rank / DIRECT_CHUNK].get_or_init(|| {
                grown += DIRECT_CHUNK_BYTES;
                (0..DIRECT_CHUNK).map(|_| SeriesCell::default()).collect()
            });
            chunk[rank % DIRECT_CHUNK].store(version, self.guard);
            return grown;
        }
        let table = d
            .table
            .load(self.guard)
            .expect("a directory always has a table");
        let chunks = d
            .chunks
            .load(self.guard)
            .expect("a directory always has cells");
        if let Some(cell) = table.cell(series) {
            chunks[cell / CHUNK_CELLS][cell % CHUNK_CELLS].store(version, self.guard);
            return 0;
        }
        let mut grown = 0;
        // A new series: its cell first (published before the slot that
        // leads to it), then the slot.
        let cell = table.used.load(Ordering::Relaxed);
        if cell / CHUNK_CELLS == chunks.len() {
            let chunk: Chunk = (0..CHUNK_CELLS).map(|_| SeriesCell::default()).collect();
            let mut longer: Vec<Chunk> = chunks.to_vec();
            longer.push(chunk);
            grown += CHUNK_CELLS * size_of::<SeriesCell>();
            d.chunks.store(longer, self.guard);
        }
        let chunks = d.chunks.load(self.guard).expect("just stored");
        chunks[cell / CHUNK_CELLS][cell % CHUNK_CELLS].store(version, self.guard);
        let word = (u64::from(series) << 32) | (cell as u64 + 1);
        if (cell + 1) * 4 > table.words.len() * 3 {
            let bigger = table.doubled();
            grown += bigger.bytes() - table.bytes();
            let (i, _) = bigger.probe(series);
            bigger.words[i].store(word, Ordering::Relaxed);
            bigger.used.fetch_add(1, Ordering::Relaxed);
            d.table.store(bigger, self.guard);
        } else {
            let (i, _) = table.probe(series);
            table.words[i].store(word, Ordering::Release);
            table.used.fetch_add(1, Ordering::Relaxed);
        }
        grown
    }
}

/// Calls `f` with the version `cell` holds (`None` for no cell, or a cell
/// with no version yet), read under `guard`.
#[inline]
pub(crate) fn with_version<R>(
    cell: Option<&SeriesCell>,
    guard: &Guard,
    f: impl FnOnce(Option<&Series>) -> R,
) -> R {
    match cell {
        Some(cell) => cell.with_current(guard, f),
        None => f(None),
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use std::collections::BTreeMap;

    use numatree_core::Point;

    use super::*;
    use crate::storage::arena::Arena;
    use crate::storage::block::Block;
    use crate::storage::frozen::Encoder;
    use crate::storage::series::{BlockRef, Stored};

    /// A version of `n` points from `first`, its values the series id.
    fn version(series: u32, first: i64, n: i64) -> Series {
        let points = (first..first + n).map(|t| Point::new(t, u64::from(series)));
        let block = BlockRef {
            first_ts: first,
            block: Stored::Hot(Block::flat_of(
                &Arena::default(),
                points.collect::<Vec<_>>().into_iter(),
            )),
        };
        Series::from_blocks([block], &mut Encoder::default())
    }

    #[test]
    fn dense_sparse_and_foreign_ids_are_each_found_and_walked_once() {
        // Node 1 of 2, shard 3 of 4: its series are 8k + 7.
        let rule = ShardRule::new(2, 4);
        let own = |rank: u32| rule.series_of(rank, 7);
        let dense = (0..3000).map(own);
        // Ranks past the direct cells, spread over the id space.
        let sparse = (0..200u32).map(|k| own(DIRECT_RANKS as u32 + k * 1_000_003));
        // Ids of another shard (a test may feed a shard any id).
        let foreign = [0u32, 1, 8, 4_000_000_001];
        let ids: Vec<u32> = dense.chain(sparse).chain(foreign).collect();

        let directory = Directory::new(rule);
        let mut bytes = directory.bytes();
        assert!(bytes < 1024, "an empty directory holds {bytes} bytes");
        let guard = pin();
        let mut writer = directory.writer(&guard);
        for (k, &id) in ids.iter().enumerate() {
            bytes += writer.publish(id, version(id, 0, 1 + k as i64 % 3));
        }
        // Republishing replaces, adding nothing.
        for &id in &ids[..10] {
            assert_eq!(writer.publish(id, version(id, 100, 2)), 0);
        }
        assert_eq!(
            directory.bytes(),
            bytes,
            "publish reports every byte the directory grew"
        );

        for &id in &ids {
            let got = directory.with(id, |s| s.get(if ids[..10].contains(&id) { 101 } else { 0 }));
            assert_eq!(got, Some(Some(u64::from(id))), "series {id}");
        }
        assert!(directory.with(own(3000), |_| ()).is_none());
        assert!(directory.with(9, |_| ()).is_none());

        let mut walked = BTreeMap::new();
        directory.for_each(|id, s| *walked.entry(id).or_insert(0) += s.points());
        let expected: BTreeMap<u32, usize> = ids
            .iter()
            .enumerate()
            .map(|(k, &id)| (id, if k < 10 { 2 } else { 1 + k % 3 }))
            .collect();
        assert_eq!(walked, expected);
    }
}

//! A shard's series directory: series id -> the series' published version.
//!
//! Two parts, both readable without a lock:
//! - a hash table (open addressing, linear probing) of atomic words, each
//!   `series << 32 | cell + 1` (0 marks a free slot): 8 bytes a slot, at
//!   most 3/4 full, whatever the ids (dense or spread over all of `u32`);
//! - cells, one per series, in chunks that never move: each cell publishes
//!   the series' current version (8 bytes a series).
//!
//! Only the shard's merge (one thread at a time, see the shard's lane)
//! writes. It grows the table by publishing a twice larger copy of the
//! words (cells do not move, so the copy shares them), and adds cell chunks
//! by publishing a longer list of chunks. Every published thing is
//! reclaimed once no reader pinned before its replacement is left
//! (`crate::sync::publish`).

use crate::plan::ShardRule;
use crate::sync::{pin, Arc, AtomicU64, AtomicUsize, Guard, Ordering, Published};

use numatree_core::Record;

use super::series::Series;

/// A free table slot.
const FREE: u64 = 0;

/// Cells per chunk.
const CHUNK_CELLS: usize = 4096;

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
type Chunk = Arc<[Published<Series>]>;

/// The directory of one shard.
#[derive(Debug)]
pub(crate) struct Directory {
    table: Published<Table>,
    chunks: Published<Vec<Chunk>>,
}

impl Directory {
    /// An empty directory of a shard whose series follow `rule`.
    pub(crate) fn new(rule: ShardRule) -> Self {
        Directory {
            table: Published::new(Table::with_slots(64, rule)),
            chunks: Published::new(Vec::new()),
        }
    }

    /// Calls `f` with the current version of `series`, if any: the read
    /// path (no lock, no reference count, nothing written).
    #[inline]
    // Under a model checker `load` returns an `Arc`, which needs the borrow.
    #[allow(clippy::needless_borrow)]
    pub(crate) fn with<R>(&self, series: u32, f: impl FnOnce(&Series) -> R) -> Option<R> {
        let guard = pin();
        let table = self.table.load(&guard)?;
        let cell = table.cell(series)?;
        let chunks = self.chunks.load(&guard)?;
        let version = chunks[cell / CHUNK_CELLS][cell % CHUNK_CELLS].load(&guard)?;
        Some(f(&version))
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

    /// Bytes of the table and the cells.
    pub(crate) fn bytes(&self) -> usize {
        let guard = pin();
        let table = self.table.load(&guard).map_or(0, |t| t.bytes());
        let cells = self.chunks.load(&guard).map_or(0, |c| c.len())
            * CHUNK_CELLS
            * size_of::<Published<Series>>();
        table + cells
    }
}

/// The merge's handle on a directory during one run.
pub(crate) struct DirectoryWriter<'g> {
    directory: &'g Directory,
    guard: &'g Guard,
}

impl DirectoryWriter<'_> {
    /// Brings what merging `run` will touch into the cache, one kind of
    /// thing at a time: every series' table slot, then every version, then
    /// every tail block. The loads of one stage do not depend on each
    /// other, so their cache misses overlap, where the merge itself would
    /// take them one series after another (with many short series, most of
    /// a merge's time is these misses).
    pub(crate) fn warm(&self, run: &[Record], cells: &mut Vec<usize>) {
        let d = self.directory;
        let (Some(table), Some(chunks)) = (d.table.load(self.guard), d.chunks.load(self.guard))
        else {
            return;
        };
        cells.clear();
        let mut last = None;
        for r in run {
            if last != Some(r.key.series) {
                last = Some(r.key.series);
                if let Some(cell) = table.cell(r.key.series) {
                    cells.push(cell);
                }
            }
        }
        let mut touched = 0u64;
        for &cell in cells.iter() {
            if let Some(version) = chunks[cell / CHUNK_CELLS][cell % CHUNK_CELLS].load(self.guard) {
                touched ^= version.tail_len();
            }
        }
        std::hint::black_box(touched);
    }

    /// Calls `f` with the current version of `series` (`None` when it has
    /// no point yet).
    #[inline]
    #[allow(clippy::needless_option_as_deref)] // an `Arc` under a model checker
    pub(crate) fn current<R>(&self, series: u32, f: impl FnOnce(Option<&Series>) -> R) -> R {
        let d = self.directory;
        let cell = d.table.load(self.guard).and_then(|t| t.cell(series));
        match (cell, d.chunks.load(self.guard)) {
            (Some(cell), Some(chunks)) => {
                let version = chunks[cell / CHUNK_CELLS][cell % CHUNK_CELLS].load(self.guard);
                f(version.as_deref())
            }
            _ => f(None),
        }
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
            let chunk: Chunk = (0..CHUNK_CELLS).map(|_| Published::default()).collect();
            let mut longer: Vec<Chunk> = chunks.to_vec();
            longer.push(chunk);
            grown += CHUNK_CELLS * size_of::<Published<Series>>();
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

//! A shard's series directory: series id -> the series' published version.
//!
//! An open-addressing hash table (linear probing) of slots, each an atomic
//! key and a published version: 16 bytes a slot, at most 3/4 full, so
//! about 21-32 bytes a series, whatever the ids (dense or spread over all
//! of `u32`). Readers probe without a lock. Only the shard's merge (one
//! thread at a time, see the shard's lane) inserts; it grows the table by
//! building a twice larger copy and publishing it, and readers still on
//! the old table see the versions as they were when it was copied.

use crate::sync::{Arc, AtomicU64, Ordering, Published};

use super::series::Series;

/// Keys are stored as `series + 1`, so 0 marks a free slot.
const FREE: u64 = 0;

#[derive(Debug, Default)]
struct Slot {
    key: AtomicU64,
    series: Published<Series>,
}

/// One generation of the table.
#[derive(Debug)]
pub(crate) struct Table {
    slots: Box<[Slot]>,
    /// Slots in use; written by the merge only.
    used: AtomicU64,
}

impl Table {
    fn with_slots(n: usize) -> Table {
        Table {
            slots: (0..n).map(|_| Slot::default()).collect(),
            used: AtomicU64::new(0),
        }
    }

    /// The slot of `series`, or the free slot where it would go.
    #[inline]
    fn probe(&self, series: u32) -> &Slot {
        let mask = self.slots.len() - 1;
        let key = u64::from(series) + 1;
        let mut i = hash(series) & mask;
        loop {
            let slot = &self.slots[i];
            let k = slot.key.load(Ordering::Acquire);
            if k == key || k == FREE {
                return slot;
            }
            i = (i + 1) & mask;
        }
    }

    /// Bytes of the table.
    pub(crate) fn bytes(&self) -> usize {
        self.slots.len() * size_of::<Slot>()
    }
}

/// A copy of `table` with twice the slots.
fn doubled(table: &Table) -> Table {
    let bigger = Table::with_slots(table.slots.len() * 2);
    for slot in table.slots.iter() {
        let key = slot.key.load(Ordering::Relaxed);
        if key != FREE {
            let target = bigger.probe((key - 1) as u32);
            target.series.store(slot.series.load_full());
            target.key.store(key, Ordering::Relaxed);
        }
    }
    bigger
        .used
        .store(table.used.load(Ordering::Relaxed), Ordering::Relaxed);
    bigger
}

/// Spreads consecutive ids over the table (Fibonacci hashing).
#[inline]
fn hash(series: u32) -> usize {
    (u64::from(series).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize
}

/// The directory: the current table, published.
#[derive(Debug)]
pub(crate) struct Directory {
    table: Published<Table>,
}

impl Default for Directory {
    fn default() -> Self {
        Directory {
            table: Published::new(Some(Arc::new(Table::with_slots(64)))),
        }
    }
}

impl Directory {
    /// Calls `f` with the current version of `series` (`None` when it has
    /// no point yet), without taking a reference count (`arc_swap` guards).
    #[inline]
    pub(crate) fn current<R>(&self, series: u32, f: impl FnOnce(Option<&Series>) -> R) -> R {
        let table = self.table.load();
        match table.as_ref() {
            Some(table) => table.current(series, f),
            None => f(None),
        }
    }

    /// Calls `f` with the current version of `series`, if any (the read path).
    #[inline]
    pub(crate) fn with<R>(&self, series: u32, f: impl FnOnce(&Series) -> R) -> Option<R> {
        self.current(series, |version| version.map(f))
    }

    /// The merge's view of the directory for one run: the current table,
    /// loaded once. Merge only: one thread at a time per directory.
    pub(crate) fn writer(&self) -> DirectoryWriter<'_> {
        DirectoryWriter {
            table: self
                .table
                .load_full()
                .expect("a directory always has a table"),
            directory: self,
        }
    }

    /// Every series' current version, for walking the shard.
    pub(crate) fn for_each(&self, mut f: impl FnMut(u32, &Series)) {
        let Some(table) = self.table.load_full() else {
            return;
        };
        for slot in table.slots.iter() {
            let key = slot.key.load(Ordering::Acquire);
            if key != FREE {
                if let Some(series) = slot.series.load_full() {
                    f((key - 1) as u32, &series);
                }
            }
        }
    }

    /// Bytes of the current table.
    pub(crate) fn bytes(&self) -> usize {
        self.table.load_full().map_or(0, |t| t.bytes())
    }
}

impl Table {
    /// Calls `f` with the version of `series` in this table, if any.
    #[inline]
    fn current<R>(&self, series: u32, f: impl FnOnce(Option<&Series>) -> R) -> R {
        let slot = self.probe(series);
        if slot.key.load(Ordering::Acquire) == FREE {
            return f(None);
        }
        let version = slot.series.load();
        f(version.as_deref())
    }
}

/// The merge's handle on a directory during one run.
pub(crate) struct DirectoryWriter<'a> {
    table: Arc<Table>,
    directory: &'a Directory,
}

impl DirectoryWriter<'_> {
    /// Calls `f` with the current version of `series`, if any.
    #[inline]
    pub(crate) fn current<R>(&self, series: u32, f: impl FnOnce(Option<&Series>) -> R) -> R {
        self.table.current(series, f)
    }

    /// Publishes `version` as the current one of `series`, adding the
    /// series (and growing the table) if it is new. Returns the bytes the
    /// table grew by.
    pub(crate) fn publish(&mut self, series: u32, version: Arc<Series>) -> usize {
        let key = u64::from(series) + 1;
        let slot = self.table.probe(series);
        if slot.key.load(Ordering::Relaxed) == key {
            slot.series.store(Some(version));
            return 0;
        }
        let mut grown = 0;
        let used = self.table.used.load(Ordering::Relaxed) + 1;
        if used * 4 > self.table.slots.len() as u64 * 3 {
            let bigger = Arc::new(doubled(&self.table));
            grown = bigger.bytes() - self.table.bytes();
            self.directory.table.store(Some(Arc::clone(&bigger)));
            self.table = bigger;
        }
        let slot = self.table.probe(series);
        // The version first: a reader that finds the key finds it.
        slot.series.store(Some(version));
        slot.key.store(key, Ordering::Release);
        self.table.used.fetch_add(1, Ordering::Relaxed);
        grown
    }
}

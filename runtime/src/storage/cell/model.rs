//! The cell under a model checker: a `Published<Series>`, every version
//! boxed (see the parent module's docs), with the tagged cell's methods.

use std::ops::Deref;

use crate::storage::arena::HotWords;
use crate::sync::{AtomicU64, Guard};

/// Every version boxed (see `storage::cell`'s docs).
pub(crate) type SeriesCell = crate::sync::Published<crate::storage::series::Series>;

/// Nothing is gathered here: each store retires its version itself
/// (`retired.rs` gathers a run's; readers see the same either way).
#[derive(Debug, Default)]
pub(crate) struct Retired;

impl Retired {
    pub(crate) fn finish(self, _guard: &Guard) -> (usize, usize) {
        (0, 0)
    }
}

/// A short series' block, read by the merge through its cell (a
/// counted handle here), valid while the guard it was read under is
/// held.
pub(crate) struct ShortWords<'g> {
    words: HotWords,
    _guard: std::marker::PhantomData<&'g Guard>,
}

impl Deref for ShortWords<'_> {
    type Target = [AtomicU64];
    fn deref(&self) -> &[AtomicU64] {
        &self.words
    }
}

impl SeriesCell {
    /// Nothing to start loading (see `tagged.rs`).
    pub(crate) fn prefetch(&self) {}

    /// No version is short here.
    pub(crate) fn is_short(&self) -> bool {
        false
    }

    /// The block of the cell's version when that version is a short
    /// series' (`Series::short_block`): what `tagged.rs`'s cell
    /// holds itself, so that the models run the merge's short path.
    pub(crate) fn short_words<'g>(&self, guard: &'g Guard) -> Option<ShortWords<'g>> {
        let version = self.load(guard)?;
        let words = version.short_block()?.clone();
        Some(ShortWords {
            words,
            _guard: std::marker::PhantomData,
        })
    }

    /// Publishes `block` as a short series' version (boxed here).
    pub(crate) fn store_short(&self, block: HotWords, guard: &Guard) {
        self.store(crate::storage::series::Series::of_short(block), guard);
    }

    /// `store` (see `tagged.rs`).
    pub(crate) fn store_retiring(
        &self,
        version: crate::storage::series::Series,
        guard: &Guard,
        _retired: &mut Retired,
    ) {
        self.store(version, guard);
    }

    /// `store_short` (see `tagged.rs`).
    pub(crate) fn store_short_retiring(
        &self,
        block: HotWords,
        guard: &Guard,
        _retired: &mut Retired,
    ) {
        self.store_short(block, guard);
    }

    /// Calls `f` with the current version (see `tagged.rs`).
    pub(crate) fn with_current<R>(
        &self,
        guard: &Guard,
        f: impl FnOnce(Option<&crate::storage::series::Series>) -> R,
    ) -> R {
        f(self.load(guard).as_deref())
    }

    /// The value at `ts` of the current version.
    pub(crate) fn get(&self, guard: &Guard, ts: i64) -> Option<u64> {
        self.load(guard)?.get(ts)
    }

    /// The current version's points in `range` (see `tagged.rs`).
    pub(crate) fn scan(
        &self,
        guard: &Guard,
        range: impl std::ops::RangeBounds<i64>,
        limit: usize,
        sink: impl numatree_core::PointSink,
    ) -> usize {
        self.load(guard)
            .map_or(0, |series| series.scan(range, limit, sink))
    }
}

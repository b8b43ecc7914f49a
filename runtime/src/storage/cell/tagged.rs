//! The cell as one tagged word (every build but the model checkers'):
//! a boxed `Series` (tag bit 0) or a short series' block (tag bit 1),
//! see the parent module's docs.

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use super::retired::Retired;
use crate::storage::arena::{HotWords, ReturnBatch};
use crate::storage::block::{flat_scan, flat_value_at};
use crate::storage::prefetch::prefetch_line;
use crate::storage::series::Series;
use crate::sync::Guard;

/// The tag of a short series' cell (in the pointer's lowest bit: both
/// a `Series` and a block's words are word-aligned).
const SHORT: usize = 1;

/// What a cell's word points at, its tag cleared.
#[inline]
fn untagged(word: *mut ()) -> *mut () {
    word.map_addr(|a| a & !SHORT)
}

/// One series' published version, or none (null).
#[derive(Debug)]
pub(crate) struct SeriesCell {
    word: AtomicPtr<()>,
}

impl Default for SeriesCell {
    fn default() -> Self {
        SeriesCell {
            word: AtomicPtr::new(ptr::null_mut()),
        }
    }
}

/// What a cell's word holds, read: a boxed version, or a short
/// series' block handle that is never dropped (it holds no reference
/// of its own). Valid while the guard it was read under is held.
enum Word<'g> {
    Boxed(&'g Series),
    Short(ManuallyDrop<HotWords>),
}

/// A short series' block, read by the merge through its cell
/// ([`SeriesCell::short_words`]): a handle that holds no reference of
/// its own (never dropped), valid while the guard it was read under is
/// held.
pub(crate) struct ShortWords<'g> {
    words: ManuallyDrop<HotWords>,
    _guard: PhantomData<&'g Guard>,
}

impl Deref for ShortWords<'_> {
    type Target = [AtomicU64];
    #[inline]
    fn deref(&self) -> &[AtomicU64] {
        &self.words
    }
}

/// A version loaded from a cell, valid while the guard it was loaded
/// under is held.
pub(crate) enum Current<'g> {
    Boxed(&'g Series),
    /// A version made over a short series' block; never dropped (it
    /// holds no reference of its own).
    Short(ManuallyDrop<Series>),
}

impl Deref for Current<'_> {
    type Target = Series;
    #[inline]
    fn deref(&self) -> &Series {
        match self {
            Current::Boxed(series) => series,
            Current::Short(series) => series,
        }
    }
}

impl SeriesCell {
    /// The current version (`Acquire`: everything written before it
    /// was stored is visible), valid while `guard` is held.
    #[inline]
    pub(crate) fn load<'g>(&self, guard: &'g Guard) -> Option<Current<'g>> {
        Some(match self.read(guard)? {
            Word::Boxed(series) => Current::Boxed(series),
            Word::Short(block) => Current::Short(ManuallyDrop::new(Series::of_short(
                ManuallyDrop::into_inner(block),
            ))),
        })
    }

    /// Calls `f` with the current version (`None` for none), read as
    /// [`load`](Self::load) reads it. A short series' version is made
    /// on this frame and lent to `f`: `load` returns it through the
    /// stack, 96 bytes the caller then reloads, which stalled on store
    /// forwarding once a series in every merge (see BENCHMARKS.md).
    #[inline]
    pub(crate) fn with_current<R>(&self, guard: &Guard, f: impl FnOnce(Option<&Series>) -> R) -> R {
        let short;
        let version = match self.read(guard) {
            None => None,
            Some(Word::Boxed(series)) => Some(series),
            Some(Word::Short(block)) => {
                short = ManuallyDrop::new(Series::of_short(ManuallyDrop::into_inner(block)));
                Some(&*short)
            }
        };
        f(version)
    }

    /// The value at `ts` of the current version: `load(guard)?.get(ts)`,
    /// without making a version on the stack for a short series (its
    /// one block is searched directly: the lookup of an index of many
    /// short series is mostly this).
    #[inline]
    pub(crate) fn get(&self, guard: &Guard, ts: i64) -> Option<u64> {
        match self.read(guard)? {
            Word::Boxed(series) => series.get(ts),
            Word::Short(block) => flat_value_at(&block, ts),
        }
    }

    /// Gives `sink` the current version's points with `ts` in `range`,
    /// ascending, at most `limit`; returns how many (0 for no version):
    /// as `get`, a short series' block is read without making a
    /// version.
    #[inline]
    pub(crate) fn scan(
        &self,
        guard: &Guard,
        range: impl std::ops::RangeBounds<i64>,
        limit: usize,
        sink: impl numatree_core::PointSink,
    ) -> usize {
        match self.read(guard) {
            None => 0,
            Some(Word::Boxed(series)) => series.scan(range, limit, sink),
            Some(Word::Short(block)) => flat_scan(&block, range, limit, sink),
        }
    }

    /// What the cell's word holds now, valid while `guard` is held: the
    /// one place a word is turned back into a version or a block.
    #[inline]
    fn read<'g>(&self, _guard: &'g Guard) -> Option<Word<'g>> {
        let word = self.word.load(Ordering::Acquire);
        if word.is_null() {
            return None;
        }
        if word.addr() & SHORT == 0 {
            // SAFETY: an untagged word is a pointer from
            // `Box::into_raw` in `store`; it is freed only by a
            // deferred destruction after a later store replaced it
            // (which waits for every guard pinned before, `_guard`
            // included) or by `Drop` (`&mut self`: no load running).
            return Some(Word::Boxed(unsafe { &*word.cast::<Series>() }));
        }
        // A short block's length word, timestamps and values follow
        // one another (after the piece's header), each read only once
        // the one before has arrived: start loading the two lines after
        // the first with it, which for the blocks of a few points that
        // most short series hold (10 points: 184 bytes) is all or most
        // of the block. Hints: past a block's end they load a wasted
        // line; in a larger block the value read may lie beyond them.
        let first = HotWords::start_of_raw(untagged(word));
        prefetch_line(first.wrapping_add(64));
        prefetch_line(first.wrapping_add(128));
        // SAFETY: a tagged word is a short series' block whose
        // reference the cell owns (`store`), kept alive while `_guard`
        // is held as a boxed version is; its word 0 was written before
        // the `Release` store of the cell that this `Acquire` load saw.
        // The handle is wrapped in `ManuallyDrop` and never dropped (a
        // version made of it is too), so it takes no reference and
        // gives none back.
        Some(Word::Short(ManuallyDrop::new(unsafe { short_block(word) })))
    }

    /// Starts loading what the cell points at (a short series' block,
    /// or a boxed version), without waiting for it: the merge's warm-up
    /// issues these for a whole run before it reads any of them. A
    /// hint: a relaxed look at the word, nothing dereferenced.
    #[inline]
    pub(crate) fn prefetch(&self) {
        let word = self.word.load(Ordering::Relaxed);
        let target = if word.addr() & SHORT != 0 {
            HotWords::start_of_raw(untagged(word))
        } else {
            word.cast_const().cast()
        };
        prefetch_line(target);
    }

    /// Whether the cell holds a short series' block (its version is the
    /// block alone: nothing further to warm up). A hint, as `prefetch`.
    #[inline]
    pub(crate) fn is_short(&self) -> bool {
        self.word.load(Ordering::Relaxed).addr() & SHORT != 0
    }

    /// Publishes `version` (`Release`) and retires the one it replaces,
    /// destroyed once every reader that could hold it has unpinned.
    pub(crate) fn store(&self, version: Series, guard: &Guard) {
        if let Some(old) = self.swap(Self::word_of(version)) {
            defer_destroy(old, guard);
        }
    }

    /// [`store`](Self::store), the replaced version going into
    /// `retired` (the caller finishes the list).
    pub(crate) fn store_retiring(&self, version: Series, guard: &Guard, retired: &mut Retired) {
        retired.push(self.swap(Self::word_of(version)), guard);
    }

    /// Publishes `block` (a flat block, its points published, at least
    /// one) as a short series' version, as [`store`](Self::store) does
    /// `Series::of_short(block)`, without making that version first.
    /// (The merge stores through `store_short_retiring`.)
    #[cfg(test)]
    pub(crate) fn store_short(&self, block: HotWords, guard: &Guard) {
        if let Some(old) = self.swap(Self::short_word(block)) {
            defer_destroy(old, guard);
        }
    }

    /// Publishes `block` as `store_short` (tests only) does, the
    /// replaced version going into `retired` (the caller finishes the
    /// list).
    pub(crate) fn store_short_retiring(
        &self,
        block: HotWords,
        guard: &Guard,
        retired: &mut Retired,
    ) {
        retired.push(self.swap(Self::short_word(block)), guard);
    }

    /// The cell's word for `version`: a short block's, or a box's.
    fn word_of(version: Series) -> *mut () {
        match version.into_short() {
            Ok(block) => Self::short_word(block),
            Err(version) => Box::into_raw(Box::new(version)).cast::<()>(),
        }
    }

    /// The cell's word for a short series' `block`, tagged.
    fn short_word(block: HotWords) -> *mut () {
        debug_assert!(
            block[0].load(Ordering::Relaxed) > 0,
            "a short series' block holds a point"
        );
        let words = block.into_raw();
        debug_assert_eq!(words.addr() & SHORT, 0, "a block's piece is aligned");
        words.map_addr(|a| a | SHORT)
    }

    /// The short series' block the cell holds, if it holds one: for the
    /// shard's merge, the only thread that stores, so the block stays
    /// the cell's until the merge's next store (and alive while
    /// `guard` is held after it).
    #[inline]
    pub(crate) fn short_words<'g>(&self, _guard: &'g Guard) -> Option<ShortWords<'g>> {
        let word = self.word.load(Ordering::Acquire);
        if word.addr() & SHORT == 0 {
            return None;
        }
        // SAFETY: as in `read`: a tagged word is a short series' block
        // whose reference the cell owns, alive while `_guard` is held
        // (the result borrows it); the handle is never dropped.
        let words = ManuallyDrop::new(unsafe { short_block(word) });
        Some(ShortWords {
            words,
            _guard: PhantomData,
        })
    }

    /// Stores `word` (a tagged block or a boxed version, written in
    /// full) and returns the word it replaced, if any: no longer
    /// reachable through the cell (only the shard's merge stores), so
    /// only readers pinned before the swap can hold it.
    fn swap(&self, word: *mut ()) -> Option<ptr::NonNull<()>> {
        ptr::NonNull::new(self.word.swap(word, Ordering::AcqRel))
    }
}

/// Destroys `old`, a word a cell's `swap` replaced, once every reader
/// pinned now has unpinned.
fn defer_destroy(old: ptr::NonNull<()>, guard: &Guard) {
    let old = old.as_ptr();
    // SAFETY: only readers pinned before the swap can hold `old`; the
    // deferred destruction runs after all of them have unpinned (on
    // whichever thread collects: a `Series` and a block are `Send`),
    // once.
    unsafe { guard.defer_unchecked(move || destroy(old, &mut ReturnBatch::default())) };
}

impl Drop for SeriesCell {
    fn drop(&mut self) {
        let word = *self.word.get_mut();
        if !word.is_null() {
            // SAFETY: `&mut self`: no reader can load the cell any
            // more, and `word` was stored by `store`, replaced by
            // nothing: it is destroyed exactly once, here.
            unsafe { destroy(word, &mut ReturnBatch::default()) };
        }
    }
}

/// Frees what a cell's `word` owns: a boxed version, or a short
/// series' block reference (its piece into `batch` if this was the
/// block's last reference).
///
/// # Safety
/// `word` was made by a cell's store, no reader can still hold it, and
/// it is destroyed once.
pub(super) unsafe fn destroy(word: *mut (), batch: &mut ReturnBatch) {
    if word.addr() & SHORT == 0 {
        // SAFETY: the caller's contract; the word is `Box::into_raw`'s.
        drop(unsafe { Box::from_raw(word.cast::<Series>()) });
    } else {
        // SAFETY: the caller's contract; giving the handle back gives
        // the cell's reference back.
        unsafe { short_block(word) }.release_into(batch);
    }
}

/// The block handle that a short cell's `word` holds the reference of
/// (without taking one: the caller drops it to give the cell's back, or
/// never).
///
/// # Safety
/// `word` was made by `SeriesCell::store` from a short series' block
/// (`HotWords::into_raw` of a flat block), and the block is still
/// alive.
#[inline]
unsafe fn short_block(word: *mut ()) -> HotWords {
    // SAFETY: the caller's contract: `untagged(word)` is what
    // `into_raw` made, and its reference is given back by the caller
    // once, or never.
    unsafe { HotWords::from_raw(untagged(word)) }
}

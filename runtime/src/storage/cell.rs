//! A series' cell in the directory: where its current version is published.
//!
//! Most series of a high-cardinality index are short: one flat hot block,
//! nothing frozen. Publishing such a version as a `Series` object of its
//! own would cost an allocation (48 bytes) beside the block for every
//! series, and a dependent cache miss on every read. So the cell holds
//! either a pointer to a boxed `Series` (tag bit 0), or, for a short
//! series, a pointer to its block's words alone (tag bit 1: the block's
//! `HotWords` handle, whose reference the cell owns; a handle is one
//! pointer, its length in its top bits, `arena::piece`); the version's
//! lower bound is the block's first point (`Series::short_block`
//! publishes a version this way only then).
//!
//! The protocol is `Published`'s: the merge (one thread per shard) writes
//! the version, or the block, in full, then stores the cell (`Release`);
//! a reader loads it (`Acquire`) under an epoch guard; what a store
//! replaces is destroyed (a box freed, a block reference dropped) once
//! every reader pinned before the store has unpinned. A lookup or a scan
//! of a short cell reads the block straight from the cell's word
//! (`SeriesCell::get`, `SeriesCell::scan`: half the time of a lookup that
//! first made a `Series` over the block on its stack, measured on
//! cache-resident short series); other readers (and the merge, past its
//! short path below) see the series through such a `Series`, which they
//! never drop. Either way the cell's reference keeps the block alive while
//! the reader is pinned.
//!
//! The merge appends to a short series' block through the cell
//! (`SeriesCell::short_words`, `SeriesCell::store_short_retiring`;
//! `storage::append`): in place, published by the block's length, or into
//! a new block stored into the cell, as a new version would be.
//!
//! What a merge run replaces goes into its [`Retired`] list rather than
//! to the collector one by one (`store_retiring`): the list is deferred
//! 512 words at a time (and what is left at the end of the run), and the
//! short blocks in each such part go back to their arena in one batch. A
//! run of many short series replaces one block for nearly every record;
//! deferring each and giving each piece back alone took ~35% of the
//! merging threads' samples at 1,000,000 x 10 (BENCHMARKS.md).
//!
//! Under a model checker the cell is a `Published<Series>` (every version
//! boxed): the short form changes where a version's words are, not the
//! order in which they are written and published. The merge's short path
//! runs there too, on the block of a boxed short version.

#[cfg(not(any(loom, shuttle)))]
mod imp {
    use std::marker::PhantomData;
    use std::mem::ManuallyDrop;
    use std::ops::Deref;
    use std::ptr;
    use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

    use crate::storage::arena::{HotWords, ReturnBatch};
    use crate::storage::block::{flat_scan, flat_value_at};
    use crate::storage::prefetch::prefetch_line;
    use crate::storage::series::Series;
    use crate::sync::Guard;

    /// The tag of a short series' cell (in the pointer's lowest bit: both
    /// a `Series` and a block's words are word-aligned).
    const SHORT: usize = 1;

    /// Cells' words a merge run replaced (`store_retiring`), destroyed
    /// together once no reader can hold them: a deferred destruction for
    /// every [`Retired::CHUNK`] of them (not one each), the short blocks
    /// among them given back to their arena in one batch (see the module
    /// docs). Words not deferred yet when the list is dropped leak (a
    /// panic's path): they are never freed while a reader may hold them.
    #[derive(Debug, Default)]
    pub(crate) struct Retired {
        /// Gathered, not deferred yet.
        words: Vec<ptr::NonNull<()>>,
        /// Words gathered, and deferred destructions made, since the list
        /// was made.
        gathered: usize,
        deferred: usize,
    }

    // SAFETY: the words are what cells owned: boxed `Series` and short
    // blocks' handles, both `Send`; the list is their only owner.
    unsafe impl Send for Retired {}

    impl Retired {
        /// Words one deferred destruction frees at most: it runs within
        /// one collection, on whichever thread collects (a reader's too),
        /// which the collector otherwise keeps to a few bags of 64.
        const CHUNK: usize = 512;

        /// Adds `word`, which a store just swapped out of its cell (under
        /// `guard`); a full chunk is deferred at once.
        fn push(&mut self, word: Option<ptr::NonNull<()>>, guard: &Guard) {
            let Some(word) = word else {
                return;
            };
            self.words.push(word);
            self.gathered += 1;
            if self.words.len() == Self::CHUNK {
                self.defer_gathered(guard);
            }
        }

        /// Defers what is gathered and not deferred yet; returns the words
        /// the list gathered and the deferred destructions it made, in all.
        pub(crate) fn finish(mut self, guard: &Guard) -> (usize, usize) {
            self.defer_gathered(guard);
            (self.gathered, self.deferred)
        }

        /// Hands the gathered words to `guard`'s collector: destroyed after
        /// every reader pinned now has unpinned.
        fn defer_gathered(&mut self, guard: &Guard) {
            if self.words.is_empty() {
                return;
            }
            let words = std::mem::take(&mut self.words);
            self.deferred += 1;
            // SAFETY: each word was swapped out of its cell before now, so
            // no load made after this finds it, and only readers pinned
            // before now can hold it; the destruction runs after all of
            // them have unpinned (on whichever thread collects: a `Series`
            // and a block are `Send`), once (the words move into it).
            unsafe {
                guard.defer_unchecked(move || {
                    let mut batch = ReturnBatch::default();
                    for word in words {
                        destroy(word.as_ptr(), &mut batch);
                    }
                });
            }
        }
    }

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
        pub(crate) fn with_current<R>(
            &self,
            guard: &Guard,
            f: impl FnOnce(Option<&Series>) -> R,
        ) -> R {
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
    unsafe fn destroy(word: *mut (), batch: &mut ReturnBatch) {
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
}

#[cfg(any(loom, shuttle))]
mod imp {
    use std::ops::Deref;

    use crate::storage::arena::HotWords;
    use crate::sync::{AtomicU64, Guard};

    /// Every version boxed (see the module docs).
    pub(crate) type SeriesCell = crate::sync::Published<crate::storage::series::Series>;

    /// Nothing is gathered here: each store retires its version itself
    /// (the other `imp` gathers a run's; readers see the same either way).
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
        /// Nothing to start loading (see the other `imp`).
        pub(crate) fn prefetch(&self) {}

        /// No version is short here.
        pub(crate) fn is_short(&self) -> bool {
            false
        }

        /// The block of the cell's version when that version is a short
        /// series' (`Series::short_block`): what the other `imp`'s cell
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

        /// `store` (see the other `imp`).
        pub(crate) fn store_retiring(
            &self,
            version: crate::storage::series::Series,
            guard: &Guard,
            _retired: &mut Retired,
        ) {
            self.store(version, guard);
        }

        /// `store_short` (see the other `imp`).
        pub(crate) fn store_short_retiring(
            &self,
            block: HotWords,
            guard: &Guard,
            _retired: &mut Retired,
        ) {
            self.store_short(block, guard);
        }

        /// Calls `f` with the current version (see the other `imp`).
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

        /// The current version's points in `range` (see the other `imp`).
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
}

pub(crate) use imp::{Retired, SeriesCell};

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use numatree_core::Point;

    use super::imp::Current;
    use super::{Retired, SeriesCell};
    use crate::storage::arena::Arena;
    use crate::storage::block::Block;
    use crate::storage::frozen::Encoder;
    use crate::storage::series::{BlockRef, Series, Stored};
    use crate::sync::pin;

    fn block_of(ts: impl IntoIterator<Item = i64>) -> Block {
        let points: Vec<Point> = ts
            .into_iter()
            .map(|t| Point::new(t, t as u64 * 3))
            .collect();
        Block::flat_of(&Arena::default(), points.into_iter())
    }

    fn version(blocks: Vec<(i64, Block)>) -> Series {
        let refs = blocks.into_iter().map(|(first_ts, b)| BlockRef {
            first_ts,
            block: Stored::Hot(b),
        });
        Series::from_blocks(refs, &mut Encoder::default())
    }

    fn strong(block: &Block) -> usize {
        match block {
            Block::Flat(words) => words.refs() as usize,
            Block::Segmented(_) => unreachable!("the tests make flat blocks"),
        }
    }

    #[test]
    fn a_short_series_is_published_as_its_block_and_read_back_whole() {
        let block = block_of(10..20);
        let cell = SeriesCell::default();
        let guard = pin();
        cell.store(version(vec![(10, block.clone())]), &guard);
        // The cell holds the block's one other reference, and no version.
        assert_eq!(strong(&block), 2);
        {
            let current = cell.load(&guard).expect("published");
            assert!(matches!(current, Current::Short(_)));
            assert_eq!(current.points(), 10);
            assert_eq!(current.get(15), Some(45));
            assert_eq!(current.get(9), None);
            assert_eq!(current.footprint().bytes, block.bytes());
            assert_eq!(current.validate(), Ok(10));
        }
        // Reading took no reference.
        assert_eq!(strong(&block), 2);
        drop(guard);
        drop(cell);
        assert_eq!(
            strong(&block),
            1,
            "dropping the cell gives its reference back"
        );
    }

    #[test]
    fn lookups_and_scans_through_the_cell_find_what_the_version_holds() {
        // Short (a block of even timestamps), boxed (two blocks; a lower
        // bound before its first point), empty: `get` and `scan` on the
        // cell answer as on the loaded version, for present, absent, before
        // and after timestamps and ranges, and read no reference.
        let guard = pin();
        let block = block_of((10..30).step_by(2));
        let cases = [
            version(vec![(10, block.clone())]),
            version(vec![(0, block_of(0..4)), (4, block_of(4..8))]),
            version(vec![(-5, block_of(0..4))]),
        ];
        let cell = SeriesCell::default();
        assert_eq!(cell.get(&guard, 10), None, "an empty cell");
        assert_eq!(cell.scan(&guard, .., usize::MAX, |_, _| ()), 0);
        for (k, v) in cases.into_iter().enumerate() {
            cell.store(v, &guard);
            let current = cell.load(&guard).expect("published");
            let mut found = 0;
            for ts in -10..40 {
                let want = current.get(ts);
                found += usize::from(want.is_some());
                assert_eq!(cell.get(&guard, ts), want, "case {k} at {ts}");
            }
            assert!(found > 0, "case {k}");
            // Scans: bounds in and around the points, every limit kind.
            for (lo, hi) in [(-10, 40), (11, 17), (12, 12), (14, 13), (0, 5)] {
                for limit in [0, 1, 3, usize::MAX] {
                    use std::ops::Bound::{Excluded, Included, Unbounded};
                    for range in [
                        (Included(lo), Excluded(hi)),
                        (Included(lo), Included(hi)),
                        (Excluded(lo), Included(hi)),
                        (Unbounded, Included(hi)),
                        (Included(lo), Unbounded),
                    ] {
                        let mut want = Vec::new();
                        let n = current.scan(range, limit, |t, v| want.push((t, v)));
                        let mut got = Vec::new();
                        let m = cell.scan(&guard, range, limit, |t, v| got.push((t, v)));
                        assert_eq!((m, n), (got.len(), want.len()));
                        assert_eq!(got, want, "case {k}, {range:?}, limit {limit}");
                    }
                }
            }
            if k == 0 {
                assert_eq!(strong(&block), 2, "the test's and the cell's");
            }
        }
    }

    #[test]
    fn the_merge_reads_a_short_block_without_a_reference_and_replaces_it() {
        // A collector of the test's own: nothing else pins it, so what the
        // store retires is destroyed within a few flushes.
        let collector = crossbeam_epoch::Collector::new();
        let handle = collector.register();
        let (old, new) = (block_of(10..20), block_of(10..21));
        let cell = SeriesCell::default();
        let guard = handle.pin();
        assert!(cell.short_words(&guard).is_none(), "an empty cell");
        cell.store(version(vec![(10, old.clone())]), &guard);
        {
            let words = cell.short_words(&guard).expect("a short cell");
            let Block::Flat(held) = &old else {
                unreachable!("block_of makes flat blocks")
            };
            assert_eq!(words.as_ptr(), held.as_ptr(), "the cell's block");
            assert_eq!(strong(&old), 2, "reading took no reference");
        }
        assert_eq!(strong(&old), 2, "and dropping the read gave none back");
        let Block::Flat(words) = new.clone() else {
            unreachable!("block_of makes flat blocks")
        };
        cell.store_short(words, &guard);
        assert_eq!(strong(&new), 2, "the cell holds the new block");
        assert_eq!(cell.get(&guard, 20), Some(60));
        drop(guard);
        for _ in 0..8 {
            handle.pin().flush();
        }
        assert_eq!(strong(&old), 1, "the cell's old reference was given back");
        let guard = handle.pin();
        assert!(cell.short_words(&guard).is_some());
        cell.store(
            version(vec![(0, block_of(0..4)), (4, block_of(4..8))]),
            &guard,
        );
        assert!(cell.short_words(&guard).is_none(), "a boxed version");
    }

    #[test]
    fn a_runs_retired_versions_are_destroyed_together_after_its_readers() {
        // A collector of the test's own, as above.
        let collector = crossbeam_epoch::Collector::new();
        let (merge, reader) = (collector.register(), collector.register());
        let (short, first, second) = (block_of(10..20), block_of(0..4), block_of(4..8));
        let boxed = || version(vec![(0, first.clone()), (4, second.clone())]);
        let cells = [SeriesCell::default(), SeriesCell::default()];
        let guard = merge.pin();
        cells[0].store(version(vec![(10, short.clone())]), &guard);
        cells[1].store(boxed(), &guard);
        let old = [strong(&short), strong(&first)];
        assert_eq!(old, [2, 2]);
        let pinned = reader.pin();
        let mut retired = Retired::default();
        let Block::Flat(grown) = block_of(10..21) else {
            unreachable!("block_of makes flat blocks")
        };
        cells[0].store_short_retiring(grown, &guard, &mut retired);
        cells[1].store_retiring(version(vec![(0, block_of(0..9))]), &guard, &mut retired);
        assert_eq!(
            (cells[0].get(&guard, 20), cells[1].get(&guard, 8)),
            (Some(60), Some(24))
        );
        assert_eq!(retired.finish(&guard), (2, 1), "two words, one destruction");
        drop(guard);
        for _ in 0..8 {
            merge.pin().flush();
        }
        assert_eq!(
            [strong(&short), strong(&first), strong(&second)],
            [2, 2, 2],
            "a reader pinned before the stores still holds them"
        );
        drop(pinned);
        for _ in 0..8 {
            merge.pin().flush();
        }
        assert_eq!(
            [strong(&short), strong(&first), strong(&second)],
            [1, 1, 1],
            "the short block and the boxed version are destroyed"
        );
    }

    #[test]
    fn the_warm_up_hint_tells_short_cells_from_boxed_ones() {
        let guard = pin();
        let cell = SeriesCell::default();
        cell.prefetch(); // an empty cell: a hint at null, harmless
        assert!(!cell.is_short());
        cell.store(version(vec![(10, block_of(10..20))]), &guard);
        cell.prefetch();
        assert!(cell.is_short());
        cell.store(
            version(vec![(0, block_of(0..4)), (4, block_of(4..8))]),
            &guard,
        );
        cell.prefetch();
        assert!(!cell.is_short());
    }

    #[test]
    fn a_version_that_is_not_short_is_boxed() {
        let guard = pin();
        let cases = [
            // Two blocks.
            version(vec![(0, block_of(0..4)), (4, block_of(4..8))]),
            // A lower bound before its first point (a cut block's).
            version(vec![(-5, block_of(0..4))]),
            // No point.
            Series::default(),
        ];
        for (k, v) in cases.into_iter().enumerate() {
            let points = v.points();
            let cell = SeriesCell::default();
            cell.store(v, &guard);
            let current = cell.load(&guard).expect("published");
            assert!(matches!(current, Current::Boxed(_)), "case {k}");
            assert_eq!(current.points(), points, "case {k}");
        }
    }

    #[test]
    fn a_cell_goes_from_short_to_boxed_and_back() {
        let guard = pin();
        let cell = SeriesCell::default();
        assert!(cell.load(&guard).is_none());
        cell.store(version(vec![(0, block_of(0..3))]), &guard);
        cell.store(
            version(vec![(0, block_of(0..4)), (4, block_of(4..6))]),
            &guard,
        );
        assert!(matches!(cell.load(&guard), Some(Current::Boxed(_))));
        cell.store(version(vec![(1, block_of(1..9))]), &guard);
        let current = cell.load(&guard).expect("published");
        assert!(matches!(current, Current::Short(_)));
        assert_eq!(current.points(), 8);
        assert_eq!(current.get(8), Some(24));
    }
}

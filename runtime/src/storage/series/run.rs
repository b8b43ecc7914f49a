//! A series' frozen run: the index of its frozen blocks, oldest first,
//! shared by every version that has them, and appended to in place.
//!
//! A version holds the run's index and how many of its slots are its own
//! (`len`). A merge that freezes a block claims the index's next free
//! slots (an atomic count, moved from exactly the version's `len`: a
//! slot is claimed once), writes the blocks into them and only then
//! builds the version that counts them, which is published as every
//! version is (`Release`, read `Acquire`): a reader that finds the
//! version finds its slots written, and no slot below a claim is written
//! again. Readers of an older version never look past their `len`. So a
//! freeze costs the same however long the series is. Before, each freeze
//! copied the run: a new reference to every frozen block (a cache miss on
//! each block's header) and, when the old run went, one given back for
//! each: at 1,024 x 100,000 points that halved the ingest.
//!
//! The index is copied only when it is full (into one half again as
//! large: a constant number of copies per block, amortized), when its
//! next slots were claimed already (an older version extended again,
//! which the merge never does), and when blocks are thawed or dropped (a
//! run built anew, `FrozenRun::new`).

use smallvec::SmallVec;

use super::super::frozen::{self, FrozenBlock};
use crate::sync::{Arc, AtomicUsize, Ordering, UnsafeCell};

/// A frozen block of a run (16 bytes: the run's index is a sixteenth of
/// what its blocks hold at ~1 byte a point).
#[derive(Clone, Debug)]
pub(crate) struct FrozenRef {
    pub(super) first_ts: i64,
    pub(super) bytes: FrozenBlock,
}

/// Blocks a merge froze, to append to a series' frozen run (usually one:
/// the block the series' points just filled).
pub(crate) type NewlyFrozen = SmallVec<[FrozenRef; 2]>;

/// A slot of a run's index: empty until claimed and written, then never
/// written again (16 bytes: the block's pointer is never null).
struct Slot(UnsafeCell<Option<FrozenRef>>);

#[cfg(not(any(loom, shuttle)))]
const _: () = assert!(size_of::<Slot>() == 16);

// SAFETY: a slot is written once, by the thread that claimed it, before
// any version that counts it exists; every other access is a read through
// such a version, ordered after the write by the version's publication
// (see the module docs). What it holds is `Send` and `Sync`.
unsafe impl Sync for Slot {}
// SAFETY: as above; moving the index moves `FrozenRef`s, which are `Send`.
unsafe impl Send for Slot {}

// A slot is never seen half-written: a write is one move, after which the
// slot is only read.
impl std::panic::RefUnwindSafe for Slot {}

impl Slot {
    /// The block, if written (`None` only past every published version).
    ///
    /// # Safety
    /// The slot is below the `len` of a run the caller holds.
    #[inline]
    unsafe fn read(&self) -> Option<&FrozenRef> {
        // SAFETY: the caller's promise: the slot was written before the
        // run that counts it was built, and is never written again.
        self.0.with(|p| unsafe { (*p).as_ref() })
    }

    /// Writes `block` into the slot.
    ///
    /// # Safety
    /// The caller claimed the slot (`FrozenRun::claim`) and has not
    /// published a run that counts it.
    unsafe fn write(&self, block: FrozenRef) {
        // SAFETY: the caller's promise: no other thread reads or writes a
        // claimed slot before a run counting it is published.
        self.0.with_mut(|p| unsafe { *p = Some(block) });
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Slot")
    }
}

/// A series' frozen blocks as one version sees them: the first `len`
/// slots of a shared index, with their totals (in the version, where a
/// reader finds the slots without another load).
#[derive(Clone, Debug)]
pub(super) struct FrozenRun {
    slots: Arc<[Slot]>,
    /// How many of `slots` are claimed (only merges touch it: apart from
    /// the slots, so a reader's lines hold blocks only).
    claimed: Arc<AtomicUsize>,
    len: usize,
    /// The first block's lower bound, kept here too: a lookup's
    /// interpolation over the run starts from it, and reading it from the
    /// index would be one more dependent miss before the slot it picks.
    first_ts: i64,
    /// Bytes and points of the run's blocks.
    pub(super) bytes: usize,
    pub(super) points: usize,
}

impl FrozenRun {
    /// A run of `blocks` (ascending), which hold `points` points (counted
    /// by the caller, who knows them without reading the blocks), in a new
    /// index with room to grow.
    pub(super) fn new(blocks: Vec<FrozenRef>, points: usize) -> FrozenRun {
        let len = blocks.len();
        let bytes = bytes_of(&blocks);
        let first_ts = blocks.first().map_or(i64::MIN, |b| b.first_ts);
        let capacity = capacity_for(len);
        let mut blocks = blocks.into_iter();
        let slots = (0..capacity)
            .map(|_| Slot(UnsafeCell::new(blocks.next())))
            .collect();
        FrozenRun {
            slots,
            claimed: Arc::new(AtomicUsize::new(len)),
            len,
            first_ts,
            bytes,
            points,
        }
    }

    /// `run` (none: an empty one) with `newly` frozen blocks after its
    /// own, holding `newly_points`: in the same index when its next slots
    /// can be claimed, else in a copy.
    pub(super) fn extend(
        run: Option<&FrozenRun>,
        newly: NewlyFrozen,
        newly_points: usize,
    ) -> FrozenRun {
        let Some(run) = run else {
            return FrozenRun::new(newly.into_vec(), newly_points);
        };
        let points = run.points + newly_points;
        if !run.claim(newly.len()) {
            let blocks = run.iter().cloned().chain(newly).collect();
            return FrozenRun::new(blocks, points);
        }
        let len = run.len + newly.len();
        let bytes = run.bytes + bytes_of(&newly);
        // An empty run (never a version's) has no first bound yet.
        let first_ts = match newly.first() {
            Some(first) if run.len == 0 => first.first_ts,
            _ => run.first_ts,
        };
        for (slot, block) in run.slots[run.len..len].iter().zip(newly) {
            // SAFETY: `claim` gave this thread the slots after `run.len`,
            // and the run that counts them is built below, after this.
            unsafe { slot.write(block) };
        }
        FrozenRun {
            slots: Arc::clone(&run.slots),
            claimed: Arc::clone(&run.claimed),
            len,
            first_ts,
            bytes,
            points,
        }
    }

    /// Claims the `n` slots after this run's, if the index has them and
    /// no other run claimed them: the count moves from exactly `len`, and
    /// only forward, so a slot is claimed once.
    fn claim(&self, n: usize) -> bool {
        self.len + n <= self.slots.len()
            && self
                .claimed
                .compare_exchange(self.len, self.len + n, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Number of blocks.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Block `i` (below `len`).
    #[inline]
    pub(super) fn block(&self, i: usize) -> &FrozenRef {
        assert!(i < self.len, "frozen block {i} of {}", self.len);
        // SAFETY: `i` is below this run's `len`.
        match unsafe { self.slots[i].read() } {
            Some(block) => block,
            None => unset(i),
        }
    }

    /// The lower bound of block `i` (below `len`), without a load of the
    /// index for the first.
    #[inline]
    pub(super) fn first_ts_of(&self, i: usize) -> i64 {
        if i == 0 {
            self.first_ts
        } else {
            self.block(i).first_ts
        }
    }

    /// The block whose time line holds `ts`, and the lower bound of the
    /// block after it (`upper` after the last): a lookup's way to its
    /// frozen block, core's `series::locate_below` over the run's bounds.
    /// `upper` is the lower bound of the block after the run (the
    /// version's first hot block), and `ts` is below it; the run is a
    /// version's, so it is not empty. A `ts` before the run's first bound
    /// gives the first block (which has no point there).
    #[inline]
    pub(super) fn locate(&self, ts: i64, upper: i64) -> (usize, i64) {
        debug_assert!(
            self.len > 0 && ts < upper,
            "locate({ts}, {upper}) in {}",
            self.len
        );
        numatree_core::series::locate_below(self.len, |i| self.first_ts_of(i), upper, ts)
    }

    /// Block `i`, if the run has it.
    #[inline]
    pub(super) fn get(&self, i: usize) -> Option<&FrozenRef> {
        (i < self.len).then(|| self.block(i))
    }

    /// The blocks, oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &FrozenRef> {
        (0..self.len).map(|i| self.block(i))
    }

    /// Bytes of the run's index (not its blocks), which every version
    /// sharing it counts: a version replaced by one over the same index
    /// frees none of it.
    pub(super) fn own_bytes(&self) -> usize {
        // Each `Arc`'s two counts, the slots and the claim count.
        4 * size_of::<usize>() + size_of_val(&*self.slots) + size_of::<AtomicUsize>()
    }

    /// Whether `other` is over the same index (tests).
    #[cfg(all(test, not(any(loom, shuttle))))]
    pub(super) fn shares_index(&self, other: &FrozenRun) -> bool {
        Arc::ptr_eq(&self.slots, &other.slots)
    }
}

/// A slot read through a run that counts it, but empty: a run built
/// before its slots were written (a bug).
#[cold]
#[inline(never)]
fn unset(i: usize) -> ! {
    panic!("frozen block {i} of a published run is not set")
}

/// Slots for a run of `len` blocks: one half again, and two, for the
/// blocks it will freeze next.
fn capacity_for(len: usize) -> usize {
    len + len / 2 + 2
}

/// Bytes of frozen `blocks`.
pub(super) fn bytes_of<'a>(blocks: impl IntoIterator<Item = &'a FrozenRef>) -> usize {
    blocks
        .into_iter()
        .map(|b| frozen::frozen_bytes(&b.bytes))
        .sum()
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::*;
    use crate::storage::frozen::Encoder;
    use numatree_core::Point;

    /// A frozen block of `n` points from `first`, one a second.
    fn block(encoder: &mut Encoder, first: i64, n: i64) -> FrozenRef {
        FrozenRef {
            first_ts: first,
            bytes: encoder.freeze_points((first..first + n).map(|t| Point::new(t, t as u64))),
        }
    }

    fn firsts(run: &FrozenRun) -> Vec<i64> {
        run.iter().map(|b| b.first_ts).collect()
    }

    #[test]
    fn extending_appends_in_place_and_older_versions_keep_their_blocks() {
        let mut encoder = Encoder::default();
        let first = FrozenRun::new(vec![block(&mut encoder, 0, 10)], 10);
        let mut runs = vec![first];
        for k in 1..12 {
            let newly: NewlyFrozen = [block(&mut encoder, 10 * k, 10)].into_iter().collect();
            let next = FrozenRun::extend(runs.last(), newly, 10);
            runs.push(next);
        }
        let mut copies = 0;
        for (k, pair) in runs.windows(2).enumerate() {
            let (older, newer) = (&pair[0], &pair[1]);
            assert_eq!(newer.len(), older.len() + 1);
            assert_eq!(newer.points, 10 * (k + 2));
            assert_eq!(newer.bytes, bytes_of(newer.iter()));
            if !newer.shares_index(older) {
                copies += 1;
            }
        }
        // Three slots for the first block; copies at the 4th block (into 8
        // slots) and the 9th (15): two in eleven freezes.
        assert_eq!(copies, 2);
        for (k, run) in runs.iter().enumerate() {
            let expected: Vec<i64> = (0..=k as i64).map(|b| 10 * b).collect();
            assert_eq!(firsts(run), expected, "version {k} sees its own blocks");
            let bounds: Vec<i64> = (0..run.len()).map(|i| run.first_ts_of(i)).collect();
            assert_eq!(
                bounds, expected,
                "version {k}'s kept first bound is its first block's"
            );
            assert!(run.get(run.len()).is_none());
        }
    }

    #[test]
    fn an_empty_run_extended_takes_its_first_bound_from_the_new_blocks() {
        let mut encoder = Encoder::default();
        let empty = FrozenRun::new(Vec::new(), 0);
        let newly = [block(&mut encoder, 40, 10)].into_iter().collect();
        let run = FrozenRun::extend(Some(&empty), newly, 10);
        assert!(run.shares_index(&empty));
        assert_eq!((run.len(), run.first_ts_of(0)), (1, 40));
    }

    #[test]
    fn an_older_version_extended_again_is_copied_not_overwritten() {
        let mut encoder = Encoder::default();
        let base = FrozenRun::new(vec![block(&mut encoder, 0, 10)], 10);
        let newer = FrozenRun::extend(
            Some(&base),
            [block(&mut encoder, 10, 10)].into_iter().collect(),
            10,
        );
        assert!(newer.shares_index(&base));
        let sibling = FrozenRun::extend(
            Some(&base),
            [block(&mut encoder, 100, 5)].into_iter().collect(),
            5,
        );
        assert!(!sibling.shares_index(&base));
        assert_eq!(firsts(&newer), [0, 10]);
        assert_eq!(firsts(&sibling), [0, 100]);
        assert_eq!(sibling.points, 15);
    }

    #[test]
    fn every_block_is_given_back_when_the_last_version_goes() {
        let mut encoder = Encoder::default();
        let kept = block(&mut encoder, 0, 10);
        let later = block(&mut encoder, 10, 10);
        let base = FrozenRun::new(vec![kept.clone()], 10);
        let newer = FrozenRun::extend(Some(&base), [later.clone()].into_iter().collect(), 10);
        // The index holds one reference to each, whatever the versions.
        assert_eq!(kept.bytes.refs(), 2);
        assert_eq!(later.bytes.refs(), 2);
        drop(base);
        assert_eq!(later.bytes.refs(), 2);
        drop(newer);
        assert_eq!((kept.bytes.refs(), later.bytes.refs()), (1, 1));
    }

    /// `locate` hands core's search (`series::locate_below`, tested there
    /// against a walk over the bounds) the run's bounds and the one after
    /// it: the answers here are written out by hand, over uneven blocks
    /// (so that some take the binary search), at and around each bound.
    #[test]
    fn locating_a_timestamp_finds_its_block_and_the_next_bound() {
        let mut encoder = Encoder::default();
        let bounds = [0, 1, 2, 3, 1_000, 1_001, 50_000];
        let upper = 50_010;
        let blocks = bounds.iter().map(|&f| block(&mut encoder, f, 1)).collect();
        let run = FrozenRun::new(blocks, bounds.len());
        let expected = [
            (-5, (0, 1)),
            (0, (0, 1)),
            (2, (2, 3)),
            (999, (3, 1_000)),
            (1_000, (4, 1_001)),
            (1_001, (5, 50_000)),
            (49_999, (5, 50_000)),
            (50_000, (6, upper)),
            (upper - 1, (6, upper)),
        ];
        for (ts, located) in expected {
            assert_eq!(run.locate(ts, upper), located, "ts {ts}");
        }
    }

    #[test]
    fn a_run_past_its_slots_panics() {
        let mut encoder = Encoder::default();
        let run = FrozenRun::new(vec![block(&mut encoder, 0, 10)], 10);
        assert!(run.get(1).is_none());
        let caught = std::panic::catch_unwind(|| run.block(1).first_ts);
        assert!(caught.is_err());
    }
}

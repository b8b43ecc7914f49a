//! Model tests of the storage's publication protocol (`crate::storage`):
//! a reader scanning a series while merges append to its tail block,
//! rewrite a block for a late point, grow a segmented tail, freeze blocks
//! into the series' frozen run, thaw them, drop them for retention, or
//! freeze an idle series whole, sees every point whole (never an unwritten
//! one, never another series'), ascending, and never loses a point an
//! earlier scan returned (unless retention dropped it).

use numatree_core::Record;

use super::rt::{check, spawn};
use crate::plan::ShardRule;
use crate::sync::Arc;

/// The series the storage models read and write: its cell is a direct one
/// (rank 7 < 16 under a checker, `storage::directory`).
const SERIES: u32 = 7;

/// A series whose cell is found through the directory's hash table (rank
/// 40 >= 16, the direct ranks under a checker).
const TABLE_SERIES: u32 = 40;

/// How every failed check of [`scan_and_check`] starts: a negative control
/// whose planted bug can break a scan more than one way expects this.
const BROKEN_SCAN: &str = "a reader's scan broke";

/// A reader's scan of `series` in the storage models: every point whole
/// (its value is `1000 + ts`, as written), ascending, and every point of the
/// previous scan `seen` still there unless `may_vanish(ts)`. Returns the
/// scan. Each failure's message starts with [`BROKEN_SCAN`], then names
/// what broke.
fn scan_and_check(
    storage: &crate::storage::ShardStorage,
    series: u32,
    seen: &[(i64, u64)],
    may_vanish: impl Fn(i64) -> bool,
) -> Vec<(i64, u64)> {
    let mut now = Vec::new();
    storage.scan(series, .., usize::MAX, |ts, value| now.push((ts, value)));
    for &(ts, value) in &now {
        assert_eq!(
            value,
            1000 + ts as u64,
            "{BROKEN_SCAN}: a point seen before it was written: {now:?}"
        );
    }
    for w in now.windows(2) {
        assert!(
            w[0].0 < w[1].0,
            "{BROKEN_SCAN}: scan not ascending: {now:?}"
        );
    }
    for p in seen {
        assert!(
            may_vanish(p.0) || now.contains(p),
            "{BROKEN_SCAN}: {p:?} vanished: {seen:?} then {now:?}"
        );
    }
    now
}

/// Spawns the storage models' reader of `series`: twice, a scan checked by
/// `scan_and_check` (a point of the previous scan may vanish only where
/// `may_vanish` says), then the model's own `check`. Returns what joins it.
fn spawn_reader(
    storage: &Arc<crate::storage::ShardStorage>,
    series: u32,
    may_vanish: fn(i64) -> bool,
    check: impl Fn(&crate::storage::ShardStorage) + Send + 'static,
) -> impl FnOnce() {
    let storage = Arc::clone(storage);
    let reader = spawn(move || {
        let mut seen: Vec<(i64, u64)> = Vec::new();
        for _ in 0..2 {
            seen = scan_and_check(&storage, series, &seen, may_vanish);
            check(&storage);
        }
    });
    move || reader.join().unwrap()
}

/// Merges [`SERIES`]' first `n` points (at 10, 20, ..., valued `1000 + ts`,
/// as `scan_and_check` expects) as one run.
fn merge_first_points(storage: &crate::storage::ShardStorage, n: i64) {
    merge_first_points_of(storage, SERIES, n);
}

/// Merges `series`' first `n` points, as [`merge_first_points`].
fn merge_first_points_of(storage: &crate::storage::ShardStorage, series: u32, n: i64) {
    let run: Vec<Record> = (1..=n)
        .map(|k| Record::new(series, k * 10, 1000 + k as u64 * 10))
        .collect();
    storage.merge_run(&run);
}

/// The storage's publication protocol: one merge appends to a series in
/// place (its 7 points sit in an 8-point block), then rewrites the block for
/// a late point and regrows it for a new one, while a reader scans it
/// twice. Every point the reader sees must be whole (its value is the one
/// written for its timestamp), the scans ascending, and the second scan must
/// hold every point of the first.
fn reader_during_appends_and_rewrites(series: u32, publish_first: bool) {
    use crate::storage::ShardStorage;
    let storage = Arc::new(ShardStorage::default());
    let v = |ts: i64| 1000 + ts as u64;
    merge_first_points_of(&storage, series, 7);
    if publish_first {
        storage.set_mutant_publish_first();
    }
    let join_reader = spawn_reader(
        &storage,
        series,
        |_| false,
        move |storage| {
            // A bounded scan, past the series' end when it starts: points
            // appended meanwhile below the bound stay out.
            let mut late = Vec::new();
            storage.scan(series, 85.., usize::MAX, |ts, value| late.push((ts, value)));
            assert!(
                late.iter().all(|&(ts, _)| ts >= 85),
                "a scan of 85.. returned {late:?}"
            );
        },
    );
    // In place: the eighth point fills the block.
    storage.merge_run(&[Record::new(series, 80, v(80))]);
    // A late point rewrites the block (split in two), a new one is appended.
    storage.merge_run(&[
        Record::new(series, 15, v(15)),
        Record::new(series, 90, v(90)),
    ]);
    join_reader();
    assert_eq!(storage.validate(), Ok(10));
}

#[test]
fn model_readers_see_whole_points_while_merges_append_and_rewrite() {
    check("reader_during_appends_and_rewrites", || {
        reader_during_appends_and_rewrites(SERIES, false)
    });
}

/// The same through the directory's hash table (a sparse id's cell): the
/// slot is published after the cell it leads to.
#[test]
fn model_readers_see_whole_points_of_a_table_series_while_merges_append_and_rewrite() {
    check("reader_during_appends_and_rewrites_table", || {
        reader_during_appends_and_rewrites(TABLE_SERIES, false)
    });
}

/// One shard's storage with freezing on (and `freeze_idle_after(age)`).
fn freezing_storage(freeze_idle: Option<i64>) -> Arc<crate::storage::ShardStorage> {
    use crate::storage::{ShardStorage, StorageConfig};
    Arc::new(ShardStorage::new(
        ShardRule::new(1, 1),
        StorageConfig {
            freeze: true,
            retain: None,
            freeze_idle,
            huge_pages: false,
        },
    ))
}

/// Frozen blocks and retention under the same protocol (blocks of 8 points
/// under a model checker): a merge fills a block and starts the next, which
/// freezes the first; a late point thaws, rewrites and refreezes it; a
/// retention drop cuts the series at 35, while a reader scans and looks
/// points up. Every point seen must be whole, scans ascending, and a point
/// may vanish between two scans only if it lies below the cutoff.
fn reader_during_freezing_and_retention() {
    let storage = freezing_storage(None);
    let v = |ts: i64| 1000 + ts as u64;
    merge_first_points(&storage, 7);
    let join_reader = spawn_reader(
        &storage,
        SERIES,
        |ts| ts < 35,
        |storage| {
            if let Some(value) = storage.get(SERIES, 60) {
                assert_eq!(value, 1060, "get of a frozen point");
            }
        },
    );
    // The first block fills, the next starts: the first freezes.
    storage.merge_run(&[
        Record::new(SERIES, 80, v(80)),
        Record::new(SERIES, 90, v(90)),
    ]);
    // A late point into the frozen block: thawed, rewritten, refrozen.
    storage.merge_run(&[Record::new(SERIES, 15, v(15))]);
    // Retention cuts the series at 35.
    assert_eq!(storage.drop_before(35), 4);
    join_reader();
    assert_eq!(storage.validate(), Ok(6));
    assert!(storage.frozen().1 > 0, "nothing froze");
}

/// A frozen tail made into another series' new tail (`storage::segmented`,
/// `Spare`) under the same protocol: series 7 fills two blocks (the
/// second a segmented tail), a reader scans it, and a point more freezes
/// that tail, which the merge keeps; series 8 then needs a segmented tail
/// of its own, made of the kept one only if no version still holds it.
/// Every point the reader sees must be series 7's, whole (series 8's
/// values differ), and none may vanish.
fn reader_during_tail_reuse(reuse_held: bool) {
    let storage = freezing_storage(None);
    merge_first_points(&storage, 16);
    if reuse_held {
        storage.set_mutant_reuse_held();
    }
    let join_reader = spawn_reader(&storage, SERIES, |_| false, |_| {});
    // Series 7's tail is full: a point more freezes it (kept for reuse).
    storage.merge_run(&[Record::new(SERIES, 170, 1170)]);
    // Series 8's first 8 points fill a flat block; the next ones need a
    // segmented tail.
    let other: Vec<Record> = (1..=10)
        .map(|k| Record::new(8, k * 10 + 5, 5000 + k as u64))
        .collect();
    storage.merge_run(&other);
    join_reader();
    assert_eq!(storage.validate(), Ok(27));
}

#[test]
fn model_readers_never_see_a_frozen_tail_reused_while_a_version_holds_it() {
    check("reader_during_tail_reuse", || {
        reader_during_tail_reuse(false)
    });
}

/// Negative control: a tail reused while a version holds it shows its
/// reader another series' points (whose values the check takes for
/// unwritten ones), or fewer points than its previous scan (which the
/// check sees vanish): whichever the schedule trips first, so it expects
/// any of `scan_and_check`'s failures.
#[test]
// The text of `BROKEN_SCAN` (an attribute cannot name the constant).
#[should_panic(expected = "a reader's scan broke")]
fn model_negative_control_reusing_a_held_tail() {
    check("negative_control_reuse_held", || {
        reader_during_tail_reuse(true)
    });
}

#[test]
fn model_readers_see_whole_points_while_blocks_freeze_thaw_and_drop() {
    check("reader_during_freezing_and_retention", || {
        reader_during_freezing_and_retention()
    });
}

/// A frozen run appended to in place (`storage::series::run`) under the
/// same protocol: series 7's first block froze when its second started;
/// while a reader scans and looks points up, the second and third blocks
/// fill and freeze, each set in the run's next free slot (the index
/// shared with the version the reader may hold) before the version that
/// counts it is published. Every point seen must be whole and none may
/// vanish; a slot read through a version before it was set panics.
fn reader_during_run_appends() {
    let storage = freezing_storage(None);
    let v = |ts: i64| 1000 + ts as u64;
    merge_first_points(&storage, 9);
    assert_eq!(storage.frozen().1, 8, "the first block froze");
    let join_reader = spawn_reader(
        &storage,
        SERIES,
        |_| false,
        |storage| {
            assert_eq!(storage.get(SERIES, 20), Some(1020), "get of a frozen point");
            let second = storage.get(SERIES, 120);
            assert!(
                matches!(second, None | Some(1120)),
                "get of 120: {second:?}"
            );
        },
    );
    // The second block fills and the third starts: the second freezes.
    storage.merge_run(
        &(10..=17)
            .map(|k| Record::new(SERIES, k * 10, v(k * 10)))
            .collect::<Vec<_>>(),
    );
    // The third fills and the fourth starts: the third freezes.
    storage.merge_run(
        &(18..=25)
            .map(|k| Record::new(SERIES, k * 10, v(k * 10)))
            .collect::<Vec<_>>(),
    );
    join_reader();
    assert_eq!(storage.validate(), Ok(25));
    assert_eq!(storage.frozen().1, 24, "three blocks froze");
}

#[test]
fn model_readers_see_whole_points_while_a_frozen_run_grows_in_place() {
    check("reader_during_run_appends", reader_during_run_appends);
}

/// Idle freezing under the same protocol: series 7 falls behind the
/// shard's horizon (series 8 moves it on) and its newest block is frozen
/// while a reader scans and looks it up; the next append thaws it. Every
/// point seen must be whole, and none may vanish.
fn reader_during_idle_freezing() {
    let storage = freezing_storage(Some(20));
    let v = |ts: i64| 1000 + ts as u64;
    storage.merge_run(&[10, 20, 30].map(|ts| Record::new(SERIES, ts, v(ts))));
    assert_eq!(storage.frozen().1, 0, "series 7 is not idle yet");
    let join_reader = spawn_reader(
        &storage,
        SERIES,
        |_| false,
        |storage| {
            assert_eq!(storage.get(SERIES, 20), Some(1020), "get of an idle point");
        },
    );
    // The horizon moves to 100: series 7 (newest 30) is idle, frozen whole.
    storage.merge_run(&[Record::new(8, 100, v(100))]);
    assert_eq!(storage.frozen().1, 3, "series 7's newest block froze");
    // An append to series 7 thaws it.
    storage.merge_run(&[Record::new(SERIES, 110, v(110))]);
    join_reader();
    assert_eq!(storage.validate(), Ok(5));
    assert_eq!(storage.frozen().1, 0, "series 7 thawed");
}

#[test]
fn model_readers_see_whole_points_while_idle_series_freeze_and_thaw() {
    check("reader_during_idle_freezing", || {
        reader_during_idle_freezing()
    });
}

/// A segmented tail (freezing on) grows in place under the same protocol:
/// series 7 fills its first block (8 points under a model checker), then
/// its next block, segmented (segments of 1, 1, 2 and 4 points), takes
/// appends that allocate its segments one by one, with no new version,
/// while a reader scans and looks points up. Every point seen must be whole
/// and none may vanish; the bytes the segments take are counted.
fn reader_during_segment_growth(publish_first: bool) {
    let storage = freezing_storage(None);
    let v = |ts: i64| 1000 + ts as u64;
    merge_first_points(&storage, 8);
    // The next block starts (the first freezes): its head segment.
    storage.merge_run(&[Record::new(SERIES, 90, v(90))]);
    if publish_first {
        storage.set_mutant_publish_first();
    }
    let bytes = storage.bytes();
    let join_reader = spawn_reader(
        &storage,
        SERIES,
        |_| false,
        move |storage| {
            // (The negative control scans only: a lookup may trip on the
            // unwritten point first, with another message.)
            if !publish_first {
                assert_eq!(storage.get(SERIES, 90), Some(1090), "get of a head point");
                let grown = storage.get(SERIES, 110);
                assert!(matches!(grown, None | Some(1110)), "get of 110: {grown:?}");
            }
        },
    );
    storage.merge_run(&[100, 110].map(|ts| Record::new(SERIES, ts, v(ts))));
    storage.merge_run(&[120, 130].map(|ts| Record::new(SERIES, ts, v(ts))));
    join_reader();
    assert_eq!(storage.validate(), Ok(13));
    assert!(storage.bytes() > bytes, "the segments are counted");
}

#[test]
fn model_readers_see_whole_points_while_a_segmented_tail_grows() {
    check("reader_during_segment_growth", || {
        reader_during_segment_growth(false)
    });
}

/// Negative control for segmented tails: a length published before the
/// point is written shows a reader a point that was never written.
#[test]
#[should_panic(expected = "a point seen before it was written")]
fn model_negative_control_segmented_publishing_before_writing() {
    check("negative_control_segmented_publish_first", || {
        reader_during_segment_growth(true)
    });
}

/// Negative control: a block whose length is published before its points
/// are written shows a reader a point that was never written.
#[test]
#[should_panic(expected = "a point seen before it was written")]
fn model_negative_control_publishing_before_writing_shows_unwritten_points() {
    check("negative_control_publish_first", || {
        reader_during_appends_and_rewrites(SERIES, true)
    });
}

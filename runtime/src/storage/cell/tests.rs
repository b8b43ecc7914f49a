use numatree_core::Point;

use super::tagged::Current;
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

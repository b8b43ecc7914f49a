//! Column-block storage against a `BTreeMap` oracle: random batches of
//! records (late points, duplicates, series 0 and `u32::MAX`), each sorted
//! as a slot is and merged; after every batch every key, scans with random
//! bounds and limits, the point count and the invariants must match. Run
//! over the fixed array store (one block size, tiny blocks so splits are
//! frequent) and over a store with size classes (a short series gets a
//! short block that regrows), as the runtime's. The size-class store's
//! scan views refuse to read a value outside the scan's range
//! (`BlockSource::block_within`: a store may decode only those).

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

use numatree_core::{
    sort_dedup, ArrayBlockStore, BlockId, BlockRead, BlockSource, BlockStore, BlockWrite, Error,
    Point, Record, SeriesIndex,
};
use proptest::prelude::*;

/// A heap store with size classes 1, 2, 3, 4, 6, 8 points (8 the largest)
/// and an optional block limit; retired blocks are counted, not reused.
#[derive(Default)]
struct ClassStore {
    blocks: Vec<Block>,
    limit: Option<usize>,
    retired: usize,
}

#[derive(Default)]
struct Block {
    points: Vec<Point>,
    capacity: usize,
    len: usize,
}

impl BlockRead for &Block {
    fn len(&self) -> usize {
        self.len
    }
    fn ts(&self, i: usize) -> i64 {
        assert!(i < self.len, "read of an unpublished point");
        self.points[i].ts
    }
    fn value(&self, i: usize) -> u64 {
        assert!(i < self.len, "read of an unpublished point");
        self.points[i].value
    }
}

impl BlockRead for &mut Block {
    fn len(&self) -> usize {
        self.len
    }
    fn ts(&self, i: usize) -> i64 {
        self.points[i].ts
    }
    fn value(&self, i: usize) -> u64 {
        self.points[i].value
    }
}

impl BlockWrite for &mut Block {
    fn capacity(&self) -> usize {
        self.capacity
    }
    fn write(&mut self, i: usize, point: Point) {
        assert!(
            i >= self.len && i < self.capacity,
            "write to {i} of {}/{}",
            self.len,
            self.capacity
        );
        self.points[i] = point;
    }
    fn publish(&mut self, len: usize) {
        assert!(self.len <= len && len <= self.capacity);
        self.len = len;
    }
}

const CLASSES: [usize; 6] = [1, 2, 3, 4, 6, 8];

/// A block as the store hands it out; a scan's view (`block_within`)
/// refuses to read a value outside the scan's range, as a store that
/// decodes only those values could not give it.
struct View<'a> {
    block: &'a Block,
    within: Option<(Bound<i64>, Bound<i64>)>,
}

impl BlockRead for View<'_> {
    fn len(&self) -> usize {
        self.block.len()
    }
    fn ts(&self, i: usize) -> i64 {
        self.block.ts(i)
    }
    fn value(&self, i: usize) -> u64 {
        if let Some(range) = self.within {
            let ts = self.block.ts(i);
            assert!(
                range.contains(&ts),
                "a scan over {range:?} read the value at {ts}"
            );
        }
        self.block.value(i)
    }
}

impl BlockSource for ClassStore {
    type Block<'a> = View<'a>;
    fn block(&self, id: BlockId) -> View<'_> {
        View {
            block: &self.blocks[id.0 as usize],
            within: None,
        }
    }
    fn block_within(&self, id: BlockId, range: (Bound<i64>, Bound<i64>)) -> View<'_> {
        View {
            block: &self.blocks[id.0 as usize],
            within: Some(range),
        }
    }
}

impl BlockStore for ClassStore {
    type BlockMut<'a> = &'a mut Block;
    fn max_points(&self) -> usize {
        8
    }
    fn capacity_for(&self, points: usize) -> usize {
        *CLASSES.iter().find(|&&c| c >= points).unwrap()
    }
    fn alloc(&mut self, points: usize) -> Option<BlockId> {
        if self.available() == 0 {
            return None;
        }
        let capacity = self.capacity_for(points);
        self.blocks.push(Block {
            points: vec![Point::default(); capacity],
            capacity,
            len: 0,
        });
        Some(BlockId(self.blocks.len() as u32 - 1))
    }
    fn available(&self) -> usize {
        self.limit.map_or(usize::MAX, |l| {
            l.saturating_sub(self.blocks.len() - self.retired)
        })
    }
    fn block_mut(&mut self, id: BlockId) -> &mut Block {
        &mut self.blocks[id.0 as usize]
    }
    fn pair(&mut self, from: BlockId, to: BlockId) -> (View<'_>, &mut Block) {
        let (from, to) = (from.0 as usize, to.0 as usize);
        assert!(from < to, "new blocks come after old ones");
        let (low, high) = self.blocks.split_at_mut(to);
        let view = View {
            block: &low[from],
            within: None,
        };
        (view, &mut high[0])
    }
    fn retire(&mut self, id: BlockId) {
        self.retired += 1;
        self.blocks[id.0 as usize].len = 0; // a reader of a retired block must not matter here
    }
}

type Oracle = BTreeMap<(u32, i64), u64>;

/// Sorts a batch as a slot is sorted: ascending keys, the later insert of a key wins.
fn sorted(mut batch: Vec<Record>) -> Vec<Record> {
    let mut scratch = vec![Record::ZERO; batch.len()];
    let mut counts = vec![0u32; 64];
    let len = sort_dedup(&mut batch, &mut scratch, &mut counts, |_| 0).unwrap();
    batch.truncate(len);
    batch
}

fn series_of(i: u32) -> u32 {
    match i % 4 {
        0 => 0,
        1 => u32::MAX,
        _ => i,
    }
}

fn arb_batches() -> impl Strategy<Value = Vec<Vec<Record>>> {
    let record =
        (0u32..6, -40i64..200, any::<u64>()).prop_map(|(s, t, v)| Record::new(series_of(s), t, v));
    let n = if cfg!(miri) { 12 } else { 60 };
    proptest::collection::vec(
        proptest::collection::vec(record, 0..n),
        1..if cfg!(miri) { 3 } else { 8 },
    )
}

/// Merges each batch, sorted as a slot is, into `index` and into an
/// oracle; after each, the merge's counts and [`check`].
fn merge_and_check<S: BlockStore, const N: usize, const B: usize>(
    index: &mut SeriesIndex<S, N, B>,
    batches: Vec<Vec<Record>>,
    probes: &[(u32, i64, i64, usize)],
) -> Result<(), TestCaseError> {
    let mut oracle = Oracle::new();
    for batch in batches {
        let run = sorted(batch);
        let stats = index.merge_run(&run).unwrap();
        let before = oracle.len();
        for r in &run {
            oracle.insert((r.key.series, r.key.ts), r.value);
        }
        prop_assert_eq!(stats.inserted, oracle.len() - before);
        prop_assert_eq!(stats.inserted + stats.replaced, run.len());
        check(index, &oracle, probes)?;
    }
    Ok(())
}

/// Every key, every series' full scan, random scans and the invariants.
fn check<S: BlockStore, const N: usize, const B: usize>(
    index: &SeriesIndex<S, N, B>,
    oracle: &Oracle,
    probes: &[(u32, i64, i64, usize)],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(index.validate(), Ok(oracle.len()));
    prop_assert_eq!(index.len(), oracle.len());
    for (&(s, t), &v) in oracle {
        prop_assert_eq!(index.get(s, t), Some(v), "get({}, {})", s, t);
        prop_assert_eq!(index.get(s, t + 1), oracle.get(&(s, t + 1)).copied());
    }
    // Whole series with no limit (`usize::MAX`, as `scan_into` asks).
    for s in (0..6).map(series_of) {
        let mut got = Vec::new();
        index.scan(s, .., usize::MAX, |t, v| got.push((t, v)));
        let want: Vec<(i64, u64)> = oracle
            .range((s, i64::MIN)..=(s, i64::MAX))
            .map(|(k, v)| (k.1, *v))
            .collect();
        prop_assert_eq!(got, want, "full scan of {}", s);
    }
    // Each probe with its limit and with none.
    let probes = probes
        .iter()
        .flat_map(|&(s, a, b, limit)| [(s, a, b, limit), (s, a, b, usize::MAX)]);
    for (s, a, b, limit) in probes {
        let s = series_of(s);
        let ranges = [
            (Bound::Included(a), Bound::Excluded(b)),
            (Bound::Excluded(a), Bound::Included(b)),
            (Bound::Unbounded, Bound::Included(b)),
            (Bound::Included(a), Bound::Unbounded),
        ];
        for range in ranges {
            let mut got = Vec::new();
            let n = index.scan(s, range, limit, |t, v| got.push((t, v)));
            let lo = match range.0 {
                Bound::Included(t) => Bound::Included((s, t)),
                Bound::Excluded(t) => Bound::Excluded((s, t)),
                Bound::Unbounded => Bound::Included((s, i64::MIN)),
            };
            let hi = match range.1 {
                Bound::Included(t) => Bound::Included((s, t)),
                Bound::Excluded(t) => Bound::Excluded((s, t)),
                Bound::Unbounded => Bound::Included((s, i64::MAX)),
            };
            let want: Vec<(i64, u64)> =
                if a > b && !matches!(range, (Bound::Unbounded, _) | (_, Bound::Unbounded)) {
                    Vec::new()
                } else {
                    oracle
                        .range((lo, hi))
                        .map(|(k, v)| (k.1, *v))
                        .take(limit)
                        .collect()
                };
            prop_assert_eq!(n, got.len());
            prop_assert_eq!(&got, &want, "scan {} {:?} limit {}", s, range, limit);
        }
    }
    Ok(())
}

fn arb_probes() -> impl Strategy<Value = Vec<(u32, i64, i64, usize)>> {
    proptest::collection::vec((0u32..6, -50i64..210, -50i64..210, 0usize..40), 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]

    #[test]
    fn array_store_index_matches_the_oracle(batches in arb_batches(), probes in arb_probes()) {
        // 4-point blocks: every few records split or start a block.
        let mut index: SeriesIndex<ArrayBlockStore<4096, 4>, 8, 512> = SeriesIndex::new(ArrayBlockStore::new());
        merge_and_check(&mut index, batches, &probes)?;
    }

    #[test]
    fn long_blocks_index_matches_the_oracle(batches in arb_batches(), probes in arb_probes()) {
        // 64-point blocks: late points rewrite blocks longer than the
        // merge's copy chunk (32 points), in several chunks.
        let mut index: SeriesIndex<ArrayBlockStore<256, 64>, 8, 512> = SeriesIndex::new(ArrayBlockStore::new());
        merge_and_check(&mut index, batches, &probes)?;
    }

    #[test]
    fn size_class_store_index_matches_the_oracle(batches in arb_batches(), probes in arb_probes()) {
        let mut index: SeriesIndex<ClassStore, 8, 4096> = SeriesIndex::new(ClassStore::default());
        merge_and_check(&mut index, batches, &probes)?;
    }

    /// With the store limited, a merge stops at `Full { applied }` with
    /// exactly the first `applied` records merged and nothing else changed.
    #[test]
    fn a_full_store_merges_an_exact_prefix(batches in arb_batches(), limit in 1usize..24) {
        let mut index: SeriesIndex<ClassStore, 8, 4096> = SeriesIndex::new(ClassStore { limit: Some(limit), ..ClassStore::default() });
        let mut oracle = Oracle::new();
        'batches: for batch in batches {
            let run = sorted(batch);
            match index.merge_run(&run) {
                Ok(_) => {
                    for r in &run {
                        oracle.insert((r.key.series, r.key.ts), r.value);
                    }
                }
                Err(Error::Full { applied }) => {
                    for r in &run[..applied] {
                        oracle.insert((r.key.series, r.key.ts), r.value);
                    }
                    check(&index, &oracle, &[])?;
                    break 'batches;
                }
                Err(e) => panic!("{e}"),
            }
            check(&index, &oracle, &[])?;
        }
    }
}

#[test]
fn unsorted_runs_are_refused_and_change_nothing() {
    let mut index: SeriesIndex<ArrayBlockStore<16, 4>, 4, 8> =
        SeriesIndex::new(ArrayBlockStore::new());
    index.merge_run(&[Record::new(1, 5, 5)]).unwrap();
    let bad = [Record::new(1, 7, 7), Record::new(1, 6, 6)];
    assert_eq!(index.merge_run(&bad), Err(Error::Unsorted { index: 1 }));
    assert_eq!(index.len(), 1);
}

#[test]
fn in_order_appends_fill_blocks_without_rewriting() {
    let mut index: SeriesIndex<ClassStore, 4, 64> = SeriesIndex::new(ClassStore::default());
    for ts in 0..100 {
        index.merge_run(&[Record::new(3, ts, ts as u64)]).unwrap();
    }
    assert_eq!(index.validate(), Ok(100));
    // 100 points in blocks of at most 8: 12 full blocks plus a tail. Only
    // the first block regrew (1 -> 2 -> 3 -> 4 -> 6 -> 8, retiring 5); once
    // the series filled a largest block, each new block got 8 at once.
    let store = index.store();
    assert_eq!(store.blocks.len() - store.retired, 13);
    assert_eq!(store.retired, 5);
    assert!(store.blocks[6..].iter().all(|b| b.capacity == 8));
}

//! Property tests: any sequence of merged runs leaves a valid tree whose
//! lookups and range scans agree exactly with a `BTreeMap` oracle.

use std::collections::BTreeMap;

use numatree_core::{sort_dedup, Node, NodeStore, Record, Tree, TreeNodeId};
use proptest::prelude::*;

/// A growable store for tests (the runtime has its own).
#[derive(Default)]
struct VecStore<const L: usize, const I: usize> {
    nodes: Vec<Node<L, I>>,
}

impl<const L: usize, const I: usize> NodeStore<L, I> for VecStore<L, I> {
    fn alloc(&mut self, node: Node<L, I>) -> Result<TreeNodeId, Node<L, I>> {
        self.nodes.push(node);
        Ok(TreeNodeId(self.nodes.len() as u32 - 1))
    }
    fn free(&mut self, _: TreeNodeId) {}
    fn get(&self, id: TreeNodeId) -> &Node<L, I> {
        &self.nodes[id.index()]
    }
    fn get_mut(&mut self, id: TreeNodeId) -> &mut Node<L, I> {
        &mut self.nodes[id.index()]
    }
    fn available(&self) -> usize {
        usize::MAX
    }
    fn allocated(&self) -> usize {
        self.nodes.len()
    }
    fn bytes(&self) -> usize {
        self.nodes.capacity() * size_of::<Node<L, I>>()
    }
}

type Oracle = BTreeMap<(u32, i64), u64>;

/// Workload sizes shrink under Miri, which checks for undefined behaviour
/// (where size adds nothing) at ~1000x the cost of a native run.
const fn scaled(n: usize) -> usize {
    if cfg!(miri) {
        n / 50 + 1
    } else {
        n
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// Sorts raw inserts the way a slot is sorted before merging.
fn sorted_run(mut raw: Vec<Record>) -> Vec<Record> {
    let mut scratch = vec![Record::ZERO; raw.len()];
    let mut counts = vec![0u32; 1024];
    let len = sort_dedup(&mut raw, &mut scratch, &mut counts, |_| 0).unwrap();
    raw.truncate(len);
    raw
}

fn check_against_oracle<S: NodeStore<L, I>, const L: usize, const I: usize>(
    tree: &Tree<S, L, I>,
    oracle: &Oracle,
    probes: &[(u32, i64, i64)],
) {
    tree.validate().unwrap();
    assert_eq!(tree.len(), oracle.len());
    let all: Vec<(u32, i64, u64)> = tree
        .iter()
        .map(|r| (r.key.series, r.key.ts, r.value))
        .collect();
    let expected: Vec<(u32, i64, u64)> = oracle.iter().map(|(&(s, t), &v)| (s, t, v)).collect();
    assert_eq!(all, expected);
    for (&(s, t), &v) in oracle {
        assert_eq!(tree.get(s, t), Some(v), "get({s}, {t})");
    }
    for &(s, t0, t1) in probes {
        assert_eq!(
            tree.get(s, t0),
            oracle.get(&(s, t0)).copied(),
            "probe get({s}, {t0})"
        );
        let got: Vec<(i64, u64)> = tree.range(s, t0..t1).map(|r| (r.key.ts, r.value)).collect();
        let want: Vec<(i64, u64)> = if t0 <= t1 {
            oracle
                .range((s, t0)..(s, t1))
                .map(|(&(_, t), &v)| (t, v))
                .collect()
        } else {
            Vec::new()
        };
        assert_eq!(got, want, "range({s}, {t0}..{t1})");
        let inclusive = tree.range(s, t0..=t1).count();
        let want_inclusive = if t0 <= t1 {
            oracle.range((s, t0)..=(s, t1)).count()
        } else {
            0
        };
        assert_eq!(inclusive, want_inclusive, "range({s}, {t0}..={t1})");
    }
}

fn run_merges<const L: usize, const I: usize>(runs: Vec<Vec<Record>>, probes: &[(u32, i64, i64)]) {
    let mut tree: Tree<VecStore<L, I>, L, I> = Tree::new(VecStore::default());
    let mut oracle = Oracle::new();
    for raw in runs {
        for r in &raw {
            oracle.insert((r.key.series, r.key.ts), r.value);
        }
        let run = sorted_run(raw);
        let before = tree.len();
        let stats = tree.merge_run(&run).unwrap();
        assert_eq!(stats.inserted + stats.replaced, run.len());
        assert_eq!(
            tree.len(),
            before + stats.inserted,
            "len_after == len_before + new keys"
        );
        check_against_oracle(&tree, &oracle, probes);
    }
}

/// Raw inserts: `series` distinct series, timestamps in `-ts..ts` plus the extremes.
fn raw_records(series: u32, ts: i64, max_len: usize) -> impl Strategy<Value = Vec<Record>> {
    let timestamp = prop_oneof![
        8 => -ts..ts,
        1 => Just(i64::MIN),
        1 => Just(i64::MAX),
    ];
    prop::collection::vec(
        (0..series, timestamp, any::<u64>()).prop_map(|(s, t, v)| Record::new(s, t, v)),
        0..max_len,
    )
}

fn probes(series: u32, ts: i64) -> impl Strategy<Value = Vec<(u32, i64, i64)>> {
    prop::collection::vec((0..series + 1, -ts - 2..ts + 2, -ts - 2..ts + 2), 0..20)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn small_nodes_many_series_with_duplicates_and_late_points(
        runs in prop::collection::vec(raw_records(50, 40, scaled(200)), 1..6),
        probes in probes(50, 40),
    ) {
        run_merges::<4, 4>(runs, &probes);
    }

    #[test]
    fn small_nodes_one_series(
        runs in prop::collection::vec(raw_records(1, 500, scaled(300)), 1..6),
        probes in probes(1, 500),
    ) {
        run_merges::<4, 5>(runs, &probes);
    }

    #[test]
    fn default_nodes_thousands_of_series(
        runs in prop::collection::vec(raw_records(5000, 1000, scaled(3000)), 1..4),
        probes in probes(5000, 1000),
    ) {
        run_merges::<64, 64>(runs, &probes);
    }
}

#[test]
fn ascending_appends_fill_leaves_completely() {
    // 4 series, each appended in time order in slot-sized runs.
    let mut tree: Tree<VecStore<64, 64>> = Tree::new(VecStore::default());
    let points = scaled(10_000) as i64;
    for round in 0..(points / 100).max(1) {
        let raw: Vec<Record> = (0..4u32)
            .flat_map(|s| (0..100).map(move |i| Record::new(s, round * 100 + i, s as u64)))
            .collect();
        tree.merge_run(&sorted_run(raw)).unwrap();
    }
    tree.validate().unwrap();
    let total = 4 * 100 * (points / 100).max(1) as usize;
    assert_eq!(tree.len(), total);
    let min_leaves = total.div_ceil(64);
    // Allow one partial leaf per series, plus inner nodes.
    assert!(
        tree.store().allocated() <= min_leaves + 4 + min_leaves / 32 + 2,
        "{} nodes",
        tree.store().allocated()
    );
}

#[test]
fn scrape_rounds_across_many_series_keep_leaves_mostly_full() {
    // Each run holds a few rounds of one point per series: appends in the
    // middle of the key space, the shape of real scrape ingestion.
    let mut tree: Tree<VecStore<64, 64>> = Tree::new(VecStore::default());
    let series = scaled(1024) as u32;
    let batches = scaled(100) as i64;
    for batch in 0..batches {
        let raw: Vec<Record> = (0..4)
            .flat_map(|r| (0..series).map(move |s| Record::new(s, batch * 4 + r, 1)))
            .collect();
        tree.merge_run(&sorted_run(raw)).unwrap();
    }
    tree.validate().unwrap();
    assert_eq!(tree.len(), series as usize * 4 * batches as usize);
    let leaf_bytes = tree.store().allocated() * size_of::<Node<64, 64>>();
    let raw_bytes = tree.len() * size_of::<Record>();
    let ratio = leaf_bytes as f64 / raw_bytes as f64;
    // Miri's shrunken run is too small for a fill figure: a few partial
    // leaves dominate it. Natively it is the 1.3x memory goal.
    if !cfg!(miri) {
        assert!(ratio <= 1.3, "tree holds {ratio:.2}x the raw record bytes");
    }
}

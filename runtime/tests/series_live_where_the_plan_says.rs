//! The partition rule exists once (the plan's) and the pipelines follow it:
//! every series is stored in, and looked up from, the node and shard that
//! `Plan::route` names.

use std::collections::BTreeMap;

use numatree::{Index, TopologySource};

#[test]
fn every_series_is_stored_in_the_shard_the_plan_routes_it_to() {
    for topology in ["pack:1 numa:1 core:4 pu:1", "pack:2 numa:2 core:4 pu:1"] {
        let index = Index::builder()
            .topology(TopologySource::Synthetic(topology.into()))
            .shards_per_node(7)
            .slot_capacity(64)
            .build()
            .unwrap();
        // Series s gets s % 5 + 1 points, so shards end up with different
        // key counts and a shard swap would show.
        let series: Vec<u32> = (0..500).chain([u32::MAX - 3, u32::MAX]).collect();
        let mut w = index.writer();
        let mut expected: BTreeMap<(usize, usize), usize> = BTreeMap::new();
        for &s in &series {
            let points = s as usize % 5 + 1;
            for ts in 0..points as i64 {
                w.insert(s, ts, u64::from(s)).unwrap();
            }
            *expected.entry(index.plan().route(s)).or_default() += points;
        }
        drop(w);
        index.flush().unwrap();
        let stored: BTreeMap<(usize, usize), usize> = index
            .shard_lengths()
            .into_iter()
            .filter(|&(_, _, keys)| keys > 0)
            .map(|(node, shard, keys)| ((node, shard), keys))
            .collect();
        assert_eq!(
            stored, expected,
            "shards hold other series than the plan says ({topology})"
        );
        for &s in &series {
            assert_eq!(index.scan(s, ..).len(), s as usize % 5 + 1, "series {s}");
            assert_eq!(index.get(s, 0), Some(u64::from(s)));
        }
    }
}

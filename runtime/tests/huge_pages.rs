//! Blocks' chunks (frozen blocks, hot blocks' words) are mapped by
//! numatree itself (Linux), outside the global allocator, and
//! `numatree::mapped_bytes` counts them from mapping to unmapping, less
//! what is given back meanwhile (chunks none of whose pieces is live);
//! with huge pages on
//! (the default) a shard's arena maps 2 MiB chunks past its first ones.
//! One test in this file: the count is process-wide.

use numatree::{mapped_bytes, Index, TopologySource};

/// Ingests 16 series x 20,000 points of random values (~1.6 MB frozen,
/// past the arena's ~500 KiB of small chunks)
/// into a one-shard index, and checks every point.
fn ingest(index: &Index) {
    let value = |s: u32, i: i64| {
        let x = ((u64::from(s) << 40) ^ i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        x ^ (x >> 29)
    };
    let mut writer = index.writer();
    for i in 0..20_000 {
        for s in 0..16 {
            writer.insert(s, i * 10, value(s, i)).unwrap();
        }
    }
    writer.flush().unwrap();
    drop(writer);
    index.flush().unwrap();
    for (s, i) in [(0, 0), (7, 12_345), (15, 19_999)] {
        assert_eq!(index.get(s, i * 10), Some(value(s, i)));
    }
    assert_eq!(index.len(), 320_000);
}

fn one_shard() -> numatree::Builder {
    Index::builder()
        .topology(TopologySource::Synthetic(
            "pack:1 numa:1 core:2 pu:1".into(),
        ))
        .shards_per_node(1)
}

#[test]
fn huge_chunks_are_mapped_counted_and_unmapped_with_the_index() {
    assert_eq!(mapped_bytes(), 0, "nothing mapped before an index");
    let index = one_shard().build().unwrap();
    assert!(index.huge_pages(), "on by default");
    ingest(&index);
    let mapped = mapped_bytes();
    let (frozen, tree) = (
        index.stats().total.frozen_bytes,
        index.stats().total.tree_bytes,
    );
    if cfg!(target_os = "linux") {
        // 16 + 32 + 64 + 128 + 256 KiB, then 2 MiB chunks (their sizes
        // are the arena's unit tests'): at least the frozen blocks, and
        // less than every block and a huge chunk more (some small chunks
        // are given back: they held hot blocks that series outgrew).
        let small = (16 + 32 + 64 + 128 + 256) << 10;
        assert!(mapped >= frozen, "mapped {mapped}, frozen {frozen}");
        // Whole chunks: 2 MiB ones (one at least: the blocks outgrow the
        // small ones) and some of the small ones.
        assert!(
            mapped >= 2 << 20 && mapped % (2 << 20) <= small && mapped.is_multiple_of(16 << 10),
            "mapped {mapped}: 2 MiB chunks and small ones"
        );
        assert!(
            mapped < tree + small + (2 << 20),
            "mapped {mapped}, blocks {tree}"
        );
    } else {
        assert_eq!(mapped, 0, "the allocator makes chunks here");
    }
    index.close().unwrap();
    drop(index);
    // Versions the index retired hold frozen blocks, and their chunks,
    // until the epoch collector frees them: drive it (as the bench's
    // memory phase does) until it has.
    for _ in 0..100_000 {
        if mapped_bytes() == 0 {
            break;
        }
        crossbeam_epoch::pin().flush();
    }
    assert_eq!(
        mapped_bytes(),
        0,
        "every chunk unmapped once the index is gone"
    );

    // Turned off: chunks stop growing at 256 KiB.
    let index = one_shard().huge_pages(false).build().unwrap();
    assert!(!index.huge_pages());
    ingest(&index);
    if cfg!(target_os = "linux") {
        // 16 + 32 + 64 + 128 KiB, then chunks of 256 KiB only (whole
        // ones, fewer than 2 MiB of blocks would take in huge chunks).
        // Besides the blocks, chunks hold the holes hot blocks left that
        // series outgrew between frozen ones: 2.59 MB for 1.63 MB of
        // blocks here, measured; half again is the bound.
        let mapped = mapped_bytes();
        let small = (16 + 32 + 64 + 128) << 10;
        let stats = index.stats().total;
        assert!(
            mapped >= stats.frozen_bytes
                && mapped.is_multiple_of(16 << 10)
                && mapped < stats.tree_bytes * 3 / 2 + small + (256 << 10),
            "mapped {mapped}, blocks {}",
            stats.tree_bytes
        );
    }
}

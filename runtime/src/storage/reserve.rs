//! What a shard sets aside before ingest: full-size hot blocks, touched
//! on the node while the caller is pinned there, and arena chunks for the
//! frozen bytes they will become, so that a cold ingest does not pay for
//! first touches of fresh memory (page faults bound it on a VM: see
//! BENCHMARKS.md) and the builder can say beforehand what a reserve takes.

use super::block::{self, Block, MAX_POINTS};
use super::{arena, lock, Ordering, ShardStorage};

/// Frozen bytes a point that [`ShardStorage::reserve`] sets aside in the
/// arena: a frozen block of 256 raw values with regular timestamps takes
/// ~8.2 bytes a point with its headers. Compressible values take less (the
/// rest of the reserve serves later blocks); irregular timestamps take more
/// (faulted in as the merge carves them).
pub(super) const RESERVED_FROZEN_BYTES_PER_POINT: usize = 9;

/// Full-size hot blocks a reserve holds for each series it is told of,
/// with freezing on: an ingest of 1,024 series x 10,000 points at 1
/// writer took ~2.3 a series from a reserve of one per 256 points (the
/// rest of it, ~94%, stayed unused); tails past the reserve are allocated
/// as they are without one.
pub(super) const RESERVED_TAILS_PER_SERIES: usize = 4;

impl ShardStorage {
    /// Allocates and touches full-size blocks for about `points` more
    /// points of at most `series` series (when known: see
    /// [`reserved_blocks`]) and, when the shard freezes blocks, arena
    /// chunks for their frozen bytes (raw values with regular timestamps:
    /// [`RESERVED_FROZEN_BYTES_PER_POINT`]); call from a thread pinned to
    /// the node.
    pub(crate) fn reserve(&self, points: usize, series: Option<usize>) {
        let mut reserve = lock(&self.reserve);
        let blocks = reserved_blocks(points, series, self.config.freeze);
        reserve.blocks.reserve(blocks);
        for _ in 0..blocks {
            let block = Block::reserved(&self.arena, self.config.freeze);
            reserve.blocks.push(block);
        }
        let frozen = if self.config.freeze {
            self.arena
                .reserve(points.saturating_mul(RESERVED_FROZEN_BYTES_PER_POINT))
        } else {
            0
        };
        self.bytes.fetch_add(
            blocks * block::reserved_bytes(self.config.freeze) + frozen,
            Ordering::Relaxed,
        );
    }

    /// Bytes `reserve(points, series)` takes in a shard that freezes
    /// blocks or not, or `None` past `usize`.
    pub(crate) fn reserved_bytes(
        points: usize,
        series: Option<usize>,
        freeze: bool,
    ) -> Option<usize> {
        let hot =
            reserved_blocks(points, series, freeze).checked_mul(block::reserved_bytes(freeze))?;
        let frozen = if freeze {
            arena::reserved_size(points.checked_mul(RESERVED_FROZEN_BYTES_PER_POINT)?)
        } else {
            0
        };
        hot.checked_add(frozen)
    }

    /// Frees the blocks and segments the merge kept to reuse (see
    /// `segmented::Spare`): they speed sustained ingest up, and are not in
    /// the shard's byte count. `Index::flush` calls it. A merge under way
    /// (ingest goes on) keeps them: this never waits.
    pub(crate) fn release_spare(&self) {
        if let Ok(mut reserve) = self.reserve.try_lock() {
            reserve.release_spare();
        }
    }
}

/// One shard's share of a node's reserve of `records` records of at most
/// `series` series, split evenly (rounding up) over its `shards`: what
/// `NodePipeline::reserve` gives each shard, and what the builder's
/// estimate counts.
pub(crate) fn shard_share(
    records: usize,
    series: Option<usize>,
    shards: usize,
) -> (usize, Option<usize>) {
    (records.div_ceil(shards), series.map(|n| n.div_ceil(shards)))
}

/// Full-size hot blocks reserved for `points` points of at most `series`
/// series. One per [`MAX_POINTS`] points: without freezing every full
/// block stays. With freezing on, a series' full tail is frozen and its
/// memory becomes a later tail's once no reader holds it (`Spare`), so a
/// series takes only the tails reclamation lags behind: at most
/// [`RESERVED_TAILS_PER_SERIES`] a series when their number is known.
fn reserved_blocks(points: usize, series: Option<usize>, freeze: bool) -> usize {
    let per_point = points.div_ceil(MAX_POINTS);
    match series {
        Some(series) if freeze => per_point.min(series.saturating_mul(RESERVED_TAILS_PER_SERIES)),
        _ => per_point,
    }
}

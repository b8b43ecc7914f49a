//! Freezing idle series: with
//! [`Builder::freeze_idle_after`](crate::Builder::freeze_idle_after), a
//! series whose newest point is older than the shard's newest merged
//! timestamp minus that age has its newest block frozen too. A series that
//! stopped reporting then holds ~1 byte a point instead of keeping a hot
//! block (16 bytes a point of capacity, up to 4 KiB) for good. The next
//! point merged into it thaws the block again, as a late point into a
//! frozen block does (`merge::thaw`).
//!
//! Runs under the shard's merge lock, from the merge (as `retain` does),
//! and publishes whole new versions: readers see the series hot or frozen,
//! with the same points either way.

use super::directory::DirectoryWriter;
use super::merge::Reserve;
use super::Change;

/// Freezes the newest block of every series of the directory whose newest
/// point is older than `cutoff`; returns what changed and how many series
/// froze (each publishes a version and retires one).
pub(crate) fn sweep(
    directory: &mut DirectoryWriter<'_>,
    cutoff: i64,
    reserve: &mut Reserve,
) -> (Change, usize) {
    super::republish(directory, |series| {
        series.frozen_when_idle(cutoff, &mut reserve.encoder)
    })
}

//! What a shard holds, counted: its bytes (blocks, versions, directory,
//! reserve), its frozen bytes and points, and what retention freed, kept
//! from the footprints of the versions each merge or sweep publishes and
//! replaces ([`Change`]), and checked against what the versions really
//! hold (`validate`). Not on the readers' path.

use super::block::Block;
use super::series::{Footprint, Stored};
use super::{BlockMemory, ShardStorage};
use crate::sync::{lock, AtomicUsize, Ordering};

impl ShardStorage {
    /// Bytes retention has freed in this shard so far.
    pub(crate) fn retention_freed(&self) -> usize {
        self.retention_freed.load(Ordering::Relaxed)
    }

    pub(super) fn count_freed(&self, change: &Change) {
        let freed = (change.before.bytes + change.from_reserve)
            .saturating_sub(change.after.bytes + change.grown);
        self.retention_freed.fetch_add(freed, Ordering::Relaxed);
    }

    pub(super) fn account(&self, change: &Change) {
        let add = |counter: &AtomicUsize, up: usize, down: usize| {
            if up >= down {
                counter.fetch_add(up - down, Ordering::Relaxed);
            } else {
                counter.fetch_sub(down - up, Ordering::Relaxed);
            }
        };
        // Reserved arena chunks the merge or the sweep started carving
        // blocks from: counted in the blocks' footprints now.
        let started = self.arena.take_reserved_started();
        add(
            &self.bytes,
            change.after.bytes + change.grown,
            change.before.bytes + change.from_reserve + started,
        );
        add(
            &self.frozen_bytes,
            change.after.frozen_bytes,
            change.before.frozen_bytes,
        );
        add(
            &self.frozen_points,
            change.after.frozen_points,
            change.before.frozen_points,
        );
    }

    /// Adds `added` points and takes `removed` away (the caller holds the
    /// reserve's lock: see `ShardStorage::points`).
    pub(super) fn count_points(&self, added: usize, removed: usize) {
        if added >= removed {
            self.points.fetch_add(added - removed, Ordering::Release);
        } else {
            self.points.fetch_sub(removed - added, Ordering::Release);
        }
    }

    /// Points the shard holds: its distinct keys.
    pub(crate) fn points(&self) -> usize {
        self.points.load(Ordering::Acquire)
    }

    /// Bytes of memory the shard holds (blocks, versions, directory, and
    /// the reserve: hot blocks and arena chunks not started yet).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Checks every series' invariants, the shard's byte counts (which
    /// must equal what its versions, blocks, directory and reserve hold)
    /// and its key count (its points); returns the shard's point count.
    /// Waits for the run being merged.
    ///
    /// # Errors
    /// The first violation found.
    pub(crate) fn validate(&self) -> Result<usize, String> {
        let reserve = lock(&self.reserve);
        let mut points = 0;
        let mut result = Ok(());
        let mut held = Footprint::default();
        self.directory.for_each(|id, series| {
            let f = series.footprint();
            held.bytes += f.bytes;
            held.frozen_bytes += f.frozen_bytes;
            held.frozen_points += f.frozen_points;
            match series.validate() {
                Ok(n) => points += n,
                Err(e) if result.is_ok() => result = Err(format!("series {id}: {e}")),
                Err(_) => {}
            }
        });
        result?;
        held.bytes += self.directory.bytes()
            + reserve.blocks.iter().map(Block::bytes).sum::<usize>()
            + self.arena.reserved_left();
        let counted = Footprint {
            bytes: self.bytes(),
            frozen_bytes: self.frozen_bytes.load(Ordering::Relaxed),
            frozen_points: self.frozen_points.load(Ordering::Relaxed),
        };
        if counted != held {
            return Err(format!("the shard counts {counted:?} but holds {held:?}"));
        }
        // Compared under the lock, which every change of the count holds.
        if self.points() != points {
            return Err(format!(
                "the shard holds {points} points but counts {} keys",
                self.points()
            ));
        }
        Ok(points)
    }

    /// Bytes and points of frozen blocks.
    pub(crate) fn frozen(&self) -> (usize, usize) {
        (
            self.frozen_bytes.load(Ordering::Relaxed),
            self.frozen_points.load(Ordering::Relaxed),
        )
    }

    /// Calls `f` with every block of every series, and every reserved block.
    pub(crate) fn for_each_block(&self, mut f: impl FnMut(BlockMemory<'_>)) {
        self.directory.for_each(|_, series| {
            for b in series.blocks() {
                match &b.block {
                    Stored::Hot(words) => f(BlockMemory::Hot(words.first_words())),
                    Stored::Frozen(bytes) => f(BlockMemory::Frozen(bytes)),
                }
            }
        });
        for words in lock(&self.reserve).blocks.iter() {
            f(BlockMemory::Hot(words.first_words()));
        }
    }
}

/// What a merge or a sweep changed in a shard's footprint.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Change {
    /// Footprints of the versions replaced, and of those that replaced them.
    pub(super) before: Footprint,
    pub(super) after: Footprint,
    /// Bytes outside the footprints of the versions replaced and
    /// replacing: the directory's growth, and segments a merge added to a
    /// published tail in place.
    pub(super) grown: usize,
    /// Bytes of reserved blocks taken (counted when reserved).
    pub(super) from_reserve: usize,
}

impl Change {
    pub(crate) fn replace(&mut self, before: Option<Footprint>, after: Footprint) {
        if let Some(b) = before {
            self.before.bytes += b.bytes;
            self.before.frozen_bytes += b.frozen_bytes;
            self.before.frozen_points += b.frozen_points;
        }
        self.after.bytes += after.bytes;
        self.after.frozen_bytes += after.frozen_bytes;
        self.after.frozen_points += after.frozen_points;
    }

    pub(super) fn add(&mut self, other: &Change) {
        self.replace(Some(other.before), other.after);
        self.grown += other.grown;
        self.from_reserve += other.from_reserve;
    }
}

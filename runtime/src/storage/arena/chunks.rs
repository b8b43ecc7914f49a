//! An arena's bookkeeping, under its mutex: its chunks, where the merge
//! carves, the free pieces of each size, and the chunks given back.
//!
//! Why chunks are given back: a short series' hot block regrows (a new,
//! larger piece, the old one freed), and a million series growing side by
//! side free a million pieces of each of their old sizes, which no later
//! block of those sizes takes. Left on the free lists they held 3.8 times
//! the index's live bytes (the bench's 1,000,000 x 10 shape: 74 bytes a
//! point against 19 from the system allocator, which merges neighbouring
//! free memory). So each chunk counts its pieces handed out; a chunk whose
//! last one comes back (other than the one being carved) is given back:
//! its pages are returned to the system (`MADV_DONTNEED` on Linux, the
//! mapping and its binding kept), its entries on the free lists go stale
//! (each names its chunk's generation), and the merge carves it again,
//! before mapping a new one, when it next needs a chunk.
//!
//! But not every emptied chunk's pages are returned: up to
//! [`KEPT_CHUNKS`] emptied chunks keep theirs, and the merge carves those
//! first. Series regrowing side by side empty the chunks of their old
//! blocks as fast as their new blocks fill others: returning each one's
//! pages to fault them in again for the next blocks cost a `madvise` and
//! a page fault for every 4 KiB a short series' block ever took (the
//! 1,000,000 x 10 shape's ingest: 2,661 calls and 114 K page faults for
//! 196 MB of blocks, against 1,032 and 16 K keeping four; BENCHMARKS.md).
//! The price: an arena holds up to four chunks' pages (1 MiB) beyond its
//! blocks, even after retention emptied it.

use std::ptr::NonNull;

use super::bound::MAX_LEN;
use super::{mapped, GRAIN, HEADER};

/// A piece's chunk index when its chunk is not counted (the first
/// 65,535 chunks are, indices 0 to 65,534: 16 GiB of 256 KiB chunks or
/// slices a shard): such a chunk is never given back.
pub(super) const UNTRACKED: u16 = u16::MAX;

/// Stale entries tolerated before the free lists are swept: at least
/// this many, and half of all entries (fewer under Miri, so that its run
/// of the sweep's test stays short).
pub(super) const STALE_SWEEP: usize = if cfg!(miri) { 64 } else { 4096 };

/// Emptied chunks an arena keeps the pages of, to carve again before any
/// other (at most 1 MiB of 256 KiB chunks or slices: what a shard holds
/// beyond its blocks, whatever it held before).
pub(super) const KEPT_CHUNKS: usize = 4;

/// One chunk of the arena.
#[derive(Debug)]
struct Chunk {
    start: NonNull<u8>,
    size: usize,
    /// Pieces of it handed out and not yet freed.
    live: usize,
    /// Its entries on the free lists (current generation).
    free: usize,
    /// Bumped when the chunk is given back or carved again from its
    /// start: older free entries are stale.
    generation: u32,
    /// Counted out of the mapped bytes when given back (its pages were
    /// returned: `madvise` did not refuse).
    counted_out: bool,
    /// Given back with its pages kept (see [`KEPT_CHUNKS`]).
    kept: bool,
    /// A slice of the node's huge chunks (`huge`), which the node
    /// unmaps, not the arena.
    sliced: bool,
}

/// A free piece: where, and the chunk generation it was freed in.
#[derive(Clone, Copy, Debug)]
struct Free {
    piece: NonNull<u8>,
    chunk: u16,
    generation: u32,
}

/// The arena's chunks and free pieces (see the module docs).
#[derive(Debug, Default)]
pub(super) struct State {
    chunks: Vec<Chunk>,
    /// The chunk being carved, and how many of its bytes are handed out.
    carving: Option<usize>,
    used: usize,
    /// Free pieces by size: `free[i]` holds pieces of `(i + 1) * GRAIN`
    /// bytes.
    free: Vec<Vec<Free>>,
    /// Entries on the free lists, and how many of them are stale.
    entries: usize,
    stale: usize,
    /// Chunks given back, to carve again (those whose pages were kept
    /// first).
    given_back: Vec<usize>,
    /// How many of them kept their pages.
    kept: usize,
    /// Chunks emptied whose pages are to be returned (`take_emptied`),
    /// outside the lock: nothing carves them meanwhile.
    emptied: Vec<usize>,
    /// The largest chunk started so far (the next new one doubles it).
    pub(super) largest: usize,
    /// Chunks of `MAX_CHUNK` bytes reserved ahead (bound and touched,
    /// `Arena::reserve`), which `carve` takes before allocating.
    pub(super) reserved: Vec<NonNull<u8>>,
    /// Bytes of reserved chunks `carve` started using since
    /// `Arena::take_reserved_started` last asked.
    pub(super) reserved_started: usize,
}

impl State {
    /// A free piece of `size` bytes, counted as handed out, and its
    /// chunk's index.
    pub(super) fn take_free(&mut self, size: usize) -> Option<(NonNull<u8>, u16)> {
        let list = self.free.get_mut(size / GRAIN - 1)?;
        while let Some(f) = list.pop() {
            self.entries -= 1;
            if f.chunk == UNTRACKED {
                return Some((f.piece, UNTRACKED));
            }
            let chunk = &mut self.chunks[usize::from(f.chunk)];
            if chunk.generation != f.generation {
                self.stale -= 1;
                continue;
            }
            chunk.free -= 1;
            chunk.live += 1;
            return Some((f.piece, f.chunk));
        }
        None
    }

    /// `size` bytes of the chunk being carved, if it has room, counted as
    /// handed out.
    pub(super) fn carve(&mut self, size: usize) -> Option<(NonNull<u8>, u16)> {
        let c = self.carving?;
        let chunk = &mut self.chunks[c];
        if chunk.size - self.used < size {
            return None;
        }
        // SAFETY: `used + size <= chunk.size`: inside the chunk.
        let piece = unsafe { chunk.start.add(self.used) };
        self.used += size;
        chunk.live += 1;
        Some((piece, index(c)))
    }

    /// Stops carving the current chunk: what is left of it goes on the
    /// free lists, in pieces of the largest sizes it holds; or, when none
    /// of its pieces is handed out, the chunk is given back whole.
    pub(super) fn stop_carving(&mut self) {
        let Some(c) = self.carving.take() else {
            return;
        };
        if self.chunks[c].live == 0 && index(c) != UNTRACKED {
            self.give_back(c);
            return;
        }
        let (start, size) = (self.chunks[c].start, self.chunks[c].size);
        let mut at = self.used;
        // A piece holds its header at least: a shorter rest is left.
        while size - at >= HEADER {
            let piece = (size - at).min(MAX_LEN + HEADER) / GRAIN * GRAIN;
            // SAFETY: `at + piece <= size`: inside the chunk.
            let p = unsafe { start.add(at) };
            self.push_free(p, piece, index(c));
            at += piece;
        }
    }

    /// Carves the chunk being carved again from its start, when none of
    /// its pieces is handed out and it holds `size` bytes: its free
    /// entries go stale, and its pages stay (giving them back to fault
    /// them in again at once would cost twice). Returns whether.
    pub(super) fn restart_carving(&mut self, size: usize) -> bool {
        let Some(c) = self.carving else {
            return false;
        };
        let chunk = &mut self.chunks[c];
        if chunk.live != 0 || chunk.size < size || index(c) == UNTRACKED {
            return false;
        }
        self.make_entries_stale(c);
        self.used = 0;
        true
    }

    /// Carves a given-back chunk of at least `size` bytes from now on,
    /// if there is one; returns whether.
    pub(super) fn carve_given_back(&mut self, size: usize) -> bool {
        let fits = |c: usize| self.chunks[c].size >= size;
        let kept = self
            .given_back
            .iter()
            .position(|&c| fits(c) && self.chunks[c].kept);
        let Some(k) = kept.or_else(|| self.given_back.iter().position(|&c| fits(c))) else {
            return false;
        };
        let c = self.given_back.swap_remove(k);
        let chunk = &mut self.chunks[c];
        if std::mem::take(&mut chunk.counted_out) {
            mapped::taken_again(chunk.size);
        }
        if std::mem::take(&mut chunk.kept) {
            self.kept -= 1;
        }
        self.carving = Some(c);
        self.used = 0;
        true
    }

    /// Carves `start` (`size` bytes, new or reserved, or a slice of the
    /// node's huge chunks when `sliced`) from now on.
    pub(super) fn carve_new(&mut self, start: NonNull<u8>, size: usize, sliced: bool) {
        self.chunks.push(Chunk {
            start,
            size,
            live: 0,
            free: 0,
            generation: 0,
            counted_out: false,
            kept: false,
            sliced,
        });
        self.largest = self.largest.max(size);
        self.carving = Some(self.chunks.len() - 1);
        self.used = 0;
    }

    /// Takes back a piece (`size` bytes, of chunk `chunk`) whose last
    /// handle is gone; gives its chunk back when it was the chunk's last
    /// piece handed out.
    pub(super) fn put(&mut self, piece: NonNull<u8>, size: usize, chunk: u16) {
        self.push_free(piece, size, chunk);
        if chunk == UNTRACKED {
            return;
        }
        let c = usize::from(chunk);
        self.chunks[c].live -= 1;
        if self.chunks[c].live == 0 && self.carving != Some(c) {
            self.give_back(c);
        }
    }

    fn push_free(&mut self, piece: NonNull<u8>, size: usize, chunk: u16) {
        let class = size / GRAIN - 1;
        if self.free.len() <= class {
            self.free.resize_with(class + 1, Vec::new);
        }
        let generation = if chunk == UNTRACKED {
            0
        } else {
            let c = &mut self.chunks[usize::from(chunk)];
            c.free += 1;
            c.generation
        };
        self.free[class].push(Free {
            piece,
            chunk,
            generation,
        });
        self.entries += 1;
    }

    /// Gives chunk `c` back (none of its pieces is handed out): its free
    /// entries go stale, and it is carved again with its pages kept
    /// (while fewer than [`KEPT_CHUNKS`] are), or its pages are returned
    /// to the system by whoever took the lock, once it lets go
    /// (`take_emptied`).
    fn give_back(&mut self, c: usize) {
        self.make_entries_stale(c);
        if self.kept < KEPT_CHUNKS {
            self.kept += 1;
            self.chunks[c].kept = true;
            self.given_back.push(c);
            self.sweep_if_stale();
        } else {
            self.emptied.push(c);
        }
    }

    /// The chunks emptied since the last call, for their pages to be
    /// returned outside the lock (a `madvise` shoots down TLB entries:
    /// neither a merge nor a reader freeing a block should wait on
    /// another's), then handed to [`returned`](Self::returned). Their
    /// start and size; empty (no allocation) almost always.
    #[inline]
    pub(super) fn take_emptied(&mut self) -> Vec<(usize, NonNull<u8>, usize)> {
        if self.emptied.is_empty() {
            // Every lock let go asks: no allocation, no iterator, no call.
            return Vec::new();
        }
        self.take_emptied_now()
    }

    #[cold]
    fn take_emptied_now(&mut self) -> Vec<(usize, NonNull<u8>, usize)> {
        let emptied = std::mem::take(&mut self.emptied);
        let chunks = &self.chunks;
        emptied
            .into_iter()
            .map(|c| (c, chunks[c].start, chunks[c].size))
            .collect()
    }

    /// Chunk `c`, emptied, had its pages returned (`counted_out`: the
    /// system took them): it is carved again before a new one is mapped.
    pub(super) fn returned(&mut self, c: usize, counted_out: bool) {
        self.chunks[c].counted_out = counted_out;
        self.given_back.push(c);
        self.sweep_if_stale();
    }

    /// Sweeps the free lists once enough of their entries are stale.
    fn sweep_if_stale(&mut self) {
        if self.stale >= STALE_SWEEP && 2 * self.stale >= self.entries {
            self.sweep();
        }
    }

    /// Makes chunk `c`'s entries on the free lists stale: they are never
    /// handed out, and the next sweep drops them.
    fn make_entries_stale(&mut self, c: usize) {
        if self.chunks[c].generation == u32::MAX {
            // The next generation wraps to one an entry left unswept
            // since 2^32 generations ago names: drop every stale entry
            // first, so that none can match again.
            self.sweep();
        }
        let chunk = &mut self.chunks[c];
        chunk.generation = chunk.generation.wrapping_add(1);
        self.stale += std::mem::take(&mut chunk.free);
    }

    /// Drops the stale entries from the free lists, and the lists'
    /// memory that they no longer need (heap memory: a million series
    /// growing side by side put a million entries on a list once, 16 MB).
    fn sweep(&mut self) {
        let chunks = &self.chunks;
        for list in &mut self.free {
            list.retain(|f| {
                f.chunk == UNTRACKED || chunks[usize::from(f.chunk)].generation == f.generation
            });
            if list.capacity() > 2 * list.len() + 64 {
                list.shrink_to(list.len() + list.len() / 2);
            }
        }
        self.entries -= self.stale;
        self.stale = 0;
    }

    /// Every chunk started (given back or not), oldest first: where it
    /// starts, and its size.
    pub(super) fn chunks(&self) -> impl Iterator<Item = (NonNull<u8>, usize)> + '_ {
        self.chunks.iter().map(|c| (c.start, c.size))
    }

    /// The chunks the arena made itself (not slices of its node's huge
    /// chunks): those it frees.
    pub(super) fn own_chunks(&self) -> impl Iterator<Item = (NonNull<u8>, usize)> + '_ {
        let own = self.chunks.iter().filter(|c| !c.sliced);
        own.map(|c| (c.start, c.size))
    }

    /// Bytes of the chunks given back now.
    #[cfg(test)]
    pub(super) fn given_back_bytes(&self) -> usize {
        self.given_back.iter().map(|&c| self.chunks[c].size).sum()
    }

    /// Bytes of the chunks given back now with their pages kept.
    #[cfg(test)]
    pub(super) fn kept_bytes(&self) -> usize {
        let kept: Vec<usize> = self
            .given_back
            .iter()
            .copied()
            .filter(|&c| self.chunks[c].kept)
            .collect();
        assert_eq!(kept.len(), self.kept, "the count follows the flags");
        assert_eq!(
            self.chunks.iter().filter(|c| c.kept).count(),
            self.kept,
            "only chunks given back are kept"
        );
        kept.iter().map(|&c| self.chunks[c].size).sum()
    }

    /// Bytes of the chunks given back now and counted out of the mapped
    /// bytes (`Shared::drop` counts them in again before unmapping).
    pub(super) fn counted_out_bytes(&self) -> usize {
        let out = self.chunks.iter().filter(|c| c.counted_out);
        out.map(|c| c.size).sum()
    }

    /// Test hooks: chunk `c`'s free entries made stale (as a give-back or
    /// a restart does), and its generation set (as if that many went by).
    #[cfg(test)]
    pub(super) fn make_stale_for_test(&mut self, c: usize) {
        self.make_entries_stale(c);
    }
    #[cfg(test)]
    pub(super) fn set_generation_for_test(&mut self, c: usize, generation: u32) {
        self.chunks[c].generation = generation;
    }

    /// Entries on the free lists, and the capacity the lists hold.
    #[cfg(test)]
    pub(super) fn free_entries(&self) -> (usize, usize) {
        (self.entries, self.free.iter().map(Vec::capacity).sum())
    }

    /// Bytes of the chunk being carved (0: none).
    #[cfg(test)]
    pub(super) fn carving_size(&self) -> usize {
        self.carving.map_or(0, |c| self.chunks[c].size)
    }

    /// Bytes the chunk being carved has left.
    #[cfg(test)]
    pub(super) fn carving_room(&self) -> usize {
        self.carving.map_or(0, |c| self.chunks[c].size - self.used)
    }
}

/// Chunk `c`'s index in a piece's header.
fn index(c: usize) -> u16 {
    u16::try_from(c).unwrap_or(UNTRACKED)
}

//! Node-bound memory for a shard's blocks: its merge carves frozen blocks
//! (immutable byte strings, tens to thousands of bytes) and hot blocks'
//! words (`HotWords`: a flat block, a segmented block's head or one of its
//! segments, 16 bytes to about 4 KiB) out of page-aligned chunks bound to
//! the shard's NUMA node before their first touch, as slot buffers are.
//! A bound area is also one that Linux's automatic NUMA balancing leaves
//! where it is, however often another node's threads read it.
//!
//! Why not the heap: a frozen block used to be an `Arc<[u8]>` from the
//! system allocator, made by the node's pinned merge thread. But blocks
//! are freed by whichever thread drops the last version that holds them
//! (readers collecting epoch garbage, any node's), and glibc's per-thread
//! cache gives a thread's next allocation of a size the chunk of that size
//! it freed last: a node's merge could be given memory of another node, so
//! their placement could be reported but not checked. Here a block's memory
//! comes from its shard's chunks only, whoever frees it. Hot blocks
//! followed in the sixteenth session, for that reason and because the
//! kernel's NUMA balancing moved heap blocks that another node read.
//!
//! Chunks are mapped directly (`mmap`, Linux), never taken from the
//! allocator: it serves sizes below its mapping threshold (which glibc
//! raises to the largest mapping a process frees) from memory freed
//! earlier, whose pages are where they were (binding moves no page
//! already there). A second index in one process got node 1's old pages
//! for node 0's first chunks that way (the 4-node guest's
//! `huge-chunk-pages` check found it). Elsewhere, and under Miri, the
//! allocator makes them.
//!
//! A block is one piece (`piece`): a 16-byte header (reference count,
//! length, its chunk's index, the arena), then its bytes (or words),
//! rounded up to [`GRAIN`]. A piece whose last reference is dropped goes
//! on its arena's free list for its size, and the merge takes pieces from
//! there before carving new ones. Each chunk counts its pieces handed out;
//! one with none left (but the chunk being carved) is given back to the
//! system (but for up to four at a time, which keep their pages and are
//! carved again first) and carved again before a new chunk is mapped
//! (`chunks`: why, and how its stale free entries are told apart). The bookkeeping is
//! under one mutex (`shared`), which a thread freeing a block does not
//! wait for to put the block back: any thread frees blocks (readers and
//! merges of any shard, when they collect epoch garbage), so a freed piece
//! goes on a lock-free stack that whoever holds the mutex next puts on
//! the free lists (a merge run's replaced blocks are pushed as one chain;
//! only a thread whose piece emptied a chunk takes the
//! mutex once more, after returning the chunk's pages). Its system
//! calls run outside it too: a chunk's pages are returned (`madvise`)
//! after the lock is let go, by whoever emptied it, and a new chunk is
//! mapped and bound before the merge takes the lock back; neither a
//! merge nor a reader waits on the other's system calls. The chunks are
//! unmapped when the arena and every piece are gone (an arena with live
//! pieces is kept alive by them). Memory freed in chunks that still hold
//! live pieces (by retention, or a hot block replaced) is reused by later
//! blocks of the shard, not returned.
//!
//! Past its first few chunks (16 KiB doubling to 256 KiB: a small index
//! stays small), an arena that may use huge pages carves 256 KiB slices
//! of its node's 2 MiB chunks (`huge`: the node's shards share them, so
//! a node leaves at most one such chunk partly unused, not one a shard),
//! 2 MiB aligned and advised `MADV_HUGEPAGE` before their first touch:
//! one page fault and one TLB entry where 512 of each were. A cold ingest
//! of 10.24 M points took ~24 K page faults, ~20 K of them this arena's;
//! with huge chunks ~4 K (BENCHMARKS.md). The advice is the kernel's to
//! follow: where transparent huge pages are off, or none is free, the
//! chunk is ordinary pages. `Builder::huge_pages(false)` turns it off.
//!
//! An arena can be given chunks ahead of need (`Arena::reserve`, for
//! `Builder::reserve_records`): bound and touched by the node's pinned
//! thread when the index is built, so that an ingest's frozen blocks take
//! no page fault (with freezing on they are most of an ingest's new
//! memory). The merge starts a reserved chunk before one given back (whose
//! pages it would fault in again, unless they were kept) or a new one; the
//! shard counts reserved chunks in its bytes until they are started
//! (`Arena::take_reserved_started`), and those never started are freed
//! with the arena.
//!
//! Under a model checker a frozen block is a plain `Arc<[u8]>` and a hot
//! block's words an `Arc` of the checker's atomics: the models check the
//! publication of versions and blocks, not this allocator, whose own tests
//! run under Miri (data races, leaks and provenance included).

#[cfg(not(any(loom, shuttle)))]
pub(crate) use bound::{reserved_size, Arena, FrozenBlock, HotWords, NodeMemory};
#[cfg(not(any(loom, shuttle)))]
pub(crate) use piece::ReturnBatch;
#[cfg(any(loom, shuttle))]
pub(crate) use plain::{reserved_size, Arena, FrozenBlock, HotWords, NodeMemory};

/// Bytes of arena chunks mapped and not given back now, in the whole
/// process: memory the
/// global allocator never sees (see [`mapped_bytes`]).
static MAPPED_BYTES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Bytes of memory numatree maps itself now, in this process, outside
/// the global allocator: the chunks hot and frozen blocks are carved from
/// (16 KiB to 2 MiB each, a node's 2 MiB ones sliced for its shards,
/// counted whole from their mapping to their unmapping, less the chunks
/// and slices given back to the system meanwhile, whose pages it no
/// longer holds; Linux only, 0 elsewhere). A program that
/// counts its heap through the allocator adds this to see all of it.
pub fn mapped_bytes() -> usize {
    MAPPED_BYTES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Pieces are multiples of this many bytes (their header included).
const GRAIN: usize = 8;

/// Bytes a piece holding `len` bytes takes: its header and its bytes,
/// rounded up to [`GRAIN`].
pub(crate) const fn piece_bytes(len: usize) -> usize {
    (HEADER + len).div_ceil(GRAIN) * GRAIN
}

/// Header bytes before a piece's bytes.
const HEADER: usize = 16;

#[cfg(not(any(loom, shuttle)))]
mod bound;
#[cfg(not(any(loom, shuttle)))]
mod chunks;
#[cfg(not(any(loom, shuttle)))]
mod huge;
#[cfg(not(any(loom, shuttle)))]
mod mapped;
#[cfg(not(any(loom, shuttle)))]
mod piece;
#[cfg(not(any(loom, shuttle)))]
mod shared;

#[cfg(any(loom, shuttle))]
mod plain {
    use std::sync::Arc;

    use crate::sync::AtomicU64;

    /// A frozen block under a model checker: an `Arc<[u8]>`.
    pub(crate) type FrozenBlock = Arc<[u8]>;

    /// A hot block's words under a model checker: an `Arc` of the
    /// checker's atomics.
    pub(crate) type HotWords = Arc<[AtomicU64]>;

    /// The heap, under a model checker: nothing to reserve.
    #[derive(Clone, Debug, Default)]
    pub(crate) struct Arena(());

    /// No node's memory under a model checker.
    #[derive(Clone, Debug, Default)]
    pub(crate) struct NodeMemory(());

    impl NodeMemory {
        pub(crate) fn new(_binder: crate::slot::Binder, _huge_pages: bool) -> Self {
            NodeMemory(())
        }
    }

    impl Arena {
        pub(crate) fn new(_node: &NodeMemory) -> Self {
            Arena(())
        }

        pub(crate) fn reserve(&self, _bytes: usize) -> usize {
            0
        }

        pub(crate) fn reserved_left(&self) -> usize {
            0
        }

        pub(crate) fn take_reserved_started(&self) -> usize {
            0
        }

        pub(crate) fn alloc(&self, bytes: &[u8]) -> FrozenBlock {
            Arc::from(bytes)
        }

        pub(crate) fn alloc_words(&self, words: usize) -> HotWords {
            (0..words).map(|_| AtomicU64::new(0)).collect()
        }

        /// Poisoned here (every bit set): a model that reads a word the
        /// merge never wrote sees a value no test writes, where the real
        /// arena's old bytes could look right.
        pub(crate) fn alloc_words_unzeroed(&self, words: usize) -> HotWords {
            (0..words).map(|_| AtomicU64::new(u64::MAX)).collect()
        }
    }

    /// Nothing is reserved under a model checker.
    pub(crate) fn reserved_size(_bytes: usize) -> usize {
        0
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests;

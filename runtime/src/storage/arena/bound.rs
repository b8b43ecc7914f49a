use std::alloc::{self, Layout};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

use super::huge::HugeChunks;
use super::piece::Piece;
pub(crate) use super::piece::{FrozenBlock, HotWords};
use super::shared::{Shared, StateGuard};
use super::{mapped, piece_bytes, GRAIN, HEADER};
use crate::slot::Binder;

/// Chunks are page aligned, so binding covers them whole.
const PAGE: usize = 4096;
/// An arena's first chunk; each next one is twice the last, up to
/// [`MAX_CHUNK`] (a small index keeps a small arena), then slices of
/// its node's [`HUGE_CHUNK`]s when the arena may use huge pages.
const FIRST_CHUNK: usize = 4 * PAGE;
/// 256 KiB: the largest chunk without huge pages, and the size of
/// reserved ones.
pub(super) const MAX_CHUNK: usize = 64 * PAGE;
/// 2 MiB: the chunks a node slices for its shards' arenas when they may
/// use huge pages (x86-64's and most of arm64's huge page size; where
/// the kernel's is another, the advice is simply worth less).
pub(super) const HUGE_CHUNK: usize = 512 * PAGE;
/// The longest byte string a piece holds: a quarter of a
/// [`MAX_CHUNK`] (a frozen block of 256 points takes at most about 4
/// KiB).
pub(crate) const MAX_LEN: usize = MAX_CHUNK / 4 - HEADER;

/// A piece's header, at the start of its memory.
#[repr(C)]
pub(super) struct Header {
    /// Handles to the piece ([`FrozenBlock`]s or [`HotWords`]).
    pub(super) refs: AtomicU32,
    /// Bytes after the header that are the block (at most [`MAX_LEN`]).
    pub(super) len: u16,
    /// The piece's chunk, an index into the arena's (`chunks::UNTRACKED`:
    /// one past the first 65,534, never given back).
    pub(super) chunk: u16,
    /// The arena the piece returns to: one strong count of its `Arc`,
    /// taken when the piece was handed out (`Arc::into_raw`). Once the
    /// piece's last handle is gone and it waits on the arena's returned
    /// stack (`shared`), the next piece on the stack instead.
    pub(super) arena: *const Shared,
}

const _: () = assert!(size_of::<Header>() == HEADER && align_of::<Header>() <= GRAIN);
// No padding in the header: writing one leaves none of a piece's bytes
// uninitialized (a restarted chunk's pieces can lie where a header was,
// and their words are read unzeroed: `Arena::alloc_words_unzeroed`).
const _: () =
    assert!(size_of::<AtomicU32>() + 2 * size_of::<u16>() + size_of::<*const Shared>() == HEADER);
const _: () = assert!(MAX_LEN <= u16::MAX as usize);

/// A chunk's layout where the allocator makes chunks (Miri, outside
/// Linux): page aligned, or huge-page aligned when it is a
/// [`HUGE_CHUNK`] (a huge page maps an aligned 2 MiB only).
fn chunk_layout(size: usize) -> Layout {
    let align = if size >= HUGE_CHUNK { HUGE_CHUNK } else { PAGE };
    Layout::from_size_align(size, align).expect("chunk sizes are page multiples")
}

/// Gives back a chunk `new_chunk(size)` made.
///
/// # Safety
/// `chunk` came from `new_chunk(size)`, is given back once, and
/// nothing reaches into it any more.
pub(super) unsafe fn free_chunk(chunk: NonNull<u8>, size: usize) {
    if mapped::MAPPED {
        // SAFETY: the caller's promise; `mapped::map(size)` made it.
        unsafe { mapped::unmap(chunk, size) }
    } else {
        // SAFETY: the caller's promise; the allocator made it with
        // this layout.
        unsafe { alloc::dealloc(chunk.as_ptr(), chunk_layout(size)) }
    }
}

/// One shard's block memory (hot and frozen), used by its merge (through the
/// merge's `Encoder`); the shard keeps a second handle to count its
/// reserve.
#[derive(Clone)]
pub(crate) struct Arena {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.state();
        f.debug_struct("Arena")
            .field("chunks", &state.chunks().count())
            .field("reserved", &state.reserved.len())
            .finish_non_exhaustive()
    }
}

impl Default for Arena {
    /// An arena on no node in particular (first touch places it).
    fn default() -> Self {
        Arena::new(&NodeMemory::default())
    }
}

/// What the arenas of one node's shards share: the binder of the node's
/// memory and, when they may use huge pages, the node's [`HugeChunks`]
/// (see `huge`). Clones share the huge chunks.
#[derive(Clone, Default)]
pub(crate) struct NodeMemory {
    binder: Binder,
    huge: Option<Arc<HugeChunks>>,
}

impl NodeMemory {
    /// Memory that `binder` binds to its node, in huge pages past each
    /// arena's first chunks when `huge_pages`.
    pub(crate) fn new(binder: Binder, huge_pages: bool) -> Self {
        let huge = huge_pages.then(|| Arc::new(HugeChunks::new(binder.clone())));
        NodeMemory { binder, huge }
    }

    /// The node's huge chunks, if its arenas use huge pages.
    #[cfg(test)]
    pub(crate) fn huge_chunks(&self) -> Option<&HugeChunks> {
        self.huge.as_deref()
    }
}

impl Arena {
    /// An empty arena of a shard of `node`.
    pub(crate) fn new(node: &NodeMemory) -> Self {
        Arena {
            shared: Arc::new(Shared::new(node.clone())),
        }
    }

    /// Bytes of chunks the arena holds (used, free or not yet handed
    /// out).
    #[cfg(test)]
    pub(crate) fn chunk_bytes(&self) -> usize {
        self.chunk_sizes().iter().sum()
    }

    /// Sizes of the arena's started chunks, oldest first.
    #[cfg(test)]
    pub(crate) fn chunk_sizes(&self) -> Vec<usize> {
        self.shared.state().chunks().map(|(_, s)| s).collect()
    }

    /// Addresses of the arena's started chunks of `size` bytes.
    #[cfg(test)]
    pub(crate) fn chunk_starts(&self, size: usize) -> Vec<usize> {
        let state = self.shared.state();
        let sized = state.chunks().filter(|&(_, s)| s == size);
        sized.map(|(chunk, _)| chunk.as_ptr() as usize).collect()
    }

    /// Entries on the free lists, and the capacity the lists hold.
    #[cfg(test)]
    pub(crate) fn free_entries(&self) -> (usize, usize) {
        self.shared.state().free_entries()
    }

    /// Bytes the chunk being carved has left.
    #[cfg(test)]
    pub(crate) fn carving_room(&self) -> usize {
        self.shared.state().carving_room()
    }

    /// Test hook: `f` on the arena's state, under its lock.
    #[cfg(test)]
    pub(super) fn with_state<R>(&self, f: impl FnOnce(&mut super::chunks::State) -> R) -> R {
        f(&mut self.shared.state())
    }

    /// Bytes of the chunk being carved (0: none).
    #[cfg(test)]
    pub(crate) fn carving_size(&self) -> usize {
        self.shared.state().carving_size()
    }

    /// Whether no freed piece waits on the returned stack.
    #[cfg(test)]
    pub(crate) fn nothing_returned_pending(&self) -> bool {
        self.shared.nothing_returned_pending()
    }

    /// Bytes of chunks given back now (to the system, or with their pages
    /// kept), to be carved again.
    #[cfg(test)]
    pub(crate) fn given_back_bytes(&self) -> usize {
        self.shared.state().given_back_bytes()
    }

    /// Allocates as many chunks of [`MAX_CHUNK`] bytes as `bytes`
    /// fills (rounded down: a reserve never holds more than asked),
    /// binds them and touches every page (from the calling thread: the
    /// reserve's pinned one), so that frozen blocks carved from them
    /// take no page fault. Returns the bytes reserved.
    pub(crate) fn reserve(&self, bytes: usize) -> usize {
        let reserved = reserved_size(bytes);
        for _ in 0..reserved / MAX_CHUNK {
            let chunk = new_chunk(&self.shared.node.binder, MAX_CHUNK);
            for page in (0..MAX_CHUNK).step_by(PAGE) {
                // SAFETY: `page < MAX_CHUNK`: inside the chunk, which
                // nothing else reaches yet.
                unsafe { chunk.as_ptr().add(page).write(0) };
            }
            self.shared.state().reserved.push(chunk);
        }
        reserved
    }

    /// Bytes of reserved chunks not started yet.
    pub(crate) fn reserved_left(&self) -> usize {
        self.shared.state().reserved.len() * MAX_CHUNK
    }

    /// Bytes of reserved chunks started since the last call: what
    /// moved from the shard's reserve into its frozen blocks.
    pub(crate) fn take_reserved_started(&self) -> usize {
        std::mem::take(&mut self.shared.state().reserved_started)
    }

    /// A frozen block holding a copy of `bytes`.
    ///
    /// # Panics
    /// If `bytes` is longer than [`MAX_LEN`] (a frozen block of at
    /// most 256 points is never that long).
    pub(crate) fn alloc(&self, bytes: &[u8]) -> FrozenBlock {
        let piece = self.piece(bytes.len());
        // SAFETY: `piece` was handed out just now: `bytes.len()` bytes
        // after its header, which no other handle reaches.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), piece.data(), bytes.len());
        }
        FrozenBlock::new(piece)
    }

    /// A hot block's `words` words, all 0: every page they lie on touched
    /// (a reserve's blocks, made ahead of need). Its pages are the arena's,
    /// bound to the shard's node whoever writes or frees it.
    ///
    /// # Panics
    /// If `words` words are longer than [`MAX_LEN`] bytes (a hot block of
    /// 256 points takes 4,104).
    pub(crate) fn alloc_words(&self, words: usize) -> HotWords {
        let piece = self.words_piece(words);
        let data = piece.data().cast::<u64>();
        // SAFETY: `piece` was handed out just now: `words` 8-byte words
        // after its header (8-aligned: the header is GRAIN bytes, the
        // piece GRAIN-aligned), which no other handle reaches.
        unsafe { std::ptr::write_bytes(data, 0, words) };
        HotWords::new(piece)
    }

    /// Like [`alloc_words`](Self::alloc_words), but the words keep what
    /// the piece held before (0 in a fresh chunk; a freed block's bytes in
    /// a reused piece): for every hot block the merge makes, whose words
    /// are read only below a published length, and every point below it
    /// is written before the length is published (the caller sets a length
    /// word itself), as in the segments a merge keeps and reuses
    /// (`SpareSegments`). Zeroing them was ~2% of a merge at the bench's
    /// default shape.
    ///
    /// # Panics
    /// As [`alloc_words`](Self::alloc_words).
    pub(crate) fn alloc_words_unzeroed(&self, words: usize) -> HotWords {
        HotWords::new(self.words_piece(words))
    }

    /// A piece for `words` words.
    fn words_piece(&self, words: usize) -> Piece {
        assert!(words >= 1, "a hot block has a length word");
        self.piece(words * size_of::<u64>())
    }

    /// A piece for `len` bytes, its header written (one handle), its bytes
    /// not: a free one of its size, else carved.
    fn piece(&self, len: usize) -> Piece {
        assert!(
            len <= MAX_LEN,
            "a block of {len} bytes is longer than the {MAX_LEN} a piece holds"
        );
        let size = piece_bytes(len);
        // The guard's drop returns emptied chunks' pages (outside the
        // lock) and puts back pieces returned meanwhile.
        let (piece, chunk) = {
            let mut state = self.shared.state();
            match state.take_free(size) {
                Some(reused) => reused,
                None => self.carve(state, size).0,
            }
        };
        let header = Header {
            refs: AtomicU32::new(1),
            len: u16::try_from(len).expect("MAX_LEN fits in u16"),
            chunk,
            arena: Arc::into_raw(Arc::clone(&self.shared)),
        };
        // SAFETY: `piece` is `size` bytes of a chunk of this arena,
        // GRAIN-aligned, that no handle reaches: carved just now, or
        // popped from the free list, where it was put after the last
        // handle's drop (its count reached zero, `Acquire`, then the
        // returned stack's `Release` push and `Acquire` take, under the
        // mutex): that drop's reads happen before these writes. `size` holds
        // the header and `len` bytes.
        unsafe {
            piece.cast::<Header>().as_ptr().write(header);
            Piece::new(piece, len)
        }
    }

    /// `size` bytes carved from the chunk being carved, after starting it
    /// again from its start when nothing in it is live, or starting
    /// another: a reserved one (bound and touched ahead: no page fault),
    /// else one given back (one that kept its pages first), else a new one
    /// (twice the largest so far, up
    /// to [`MAX_CHUNK`], then slices of the node's [`HUGE_CHUNK`]s when
    /// the arena may use huge pages). Hot and frozen blocks share chunks: carving them apart (two
    /// chunks being carved) changed neither shape's bytes a point in the
    /// bench (9.5 and 19.7) and doubled a small index's chunks. Returns
    /// the piece and its chunk's index, and the lock.
    ///
    /// A new chunk is mapped and bound with the lock let go: a reader
    /// freeing a block does not wait on those system calls. Only the
    /// shard's merge allocates (under the shard's merge lock), so no other
    /// chunk is started meanwhile (were one, it would be stopped).
    fn carve<'a>(
        &'a self,
        mut state: StateGuard<'a>,
        size: usize,
    ) -> ((NonNull<u8>, u16), StateGuard<'a>) {
        if let Some(carved) = state.carve(size) {
            return (carved, state);
        }
        if !state.restart_carving(size) {
            state.stop_carving();
            if let Some(chunk) = state.reserved.pop() {
                // A MAX_CHUNK: every piece fits.
                state.reserved_started += MAX_CHUNK;
                state.carve_new(chunk, MAX_CHUNK, false);
            } else if !state.carve_given_back(size) {
                let node = &self.shared.node;
                let huge = node.huge.as_ref().filter(|_| state.largest >= MAX_CHUNK);
                let mut next = match state.largest {
                    0 => FIRST_CHUNK,
                    s => (2 * s).min(MAX_CHUNK),
                };
                // A piece is at most a quarter of a MAX_CHUNK.
                while next < size {
                    next *= 2;
                }
                drop(state);
                // A slice is MAX_CHUNK bytes whatever `next` says: the
                // arena must never carve (or give back) past it, into
                // another arena's slice of the same huge chunk.
                let (chunk, size, sliced) = match huge {
                    Some(huge) => (huge.slice(), MAX_CHUNK, true),
                    None => (new_chunk(&node.binder, next), next, false),
                };
                state = self.shared.state();
                state.stop_carving();
                state.carve_new(chunk, size, sliced);
            }
        }
        let carved = state
            .carve(size)
            .expect("a chunk just started holds any piece");
        (carved, state)
    }
}

/// `size` bytes of fresh, zeroed memory (a page multiple), bound by `binder`
/// to its node before anything touches it, so that whoever writes a
/// piece of it, its pages are on the node; advised huge pages first
/// when it is a [`HUGE_CHUNK`].
pub(super) fn new_chunk(binder: &Binder, size: usize) -> NonNull<u8> {
    let layout = chunk_layout(size);
    let raw = if mapped::MAPPED {
        mapped::map(size)
    } else {
        // Zeroed, as a fresh mapping is: every byte of an arena is
        // initialized from the start (`alloc_words_unzeroed` relies on
        // it).
        // SAFETY: the layout's size is not zero.
        unsafe { alloc::alloc_zeroed(layout) }
    };
    let Some(chunk) = NonNull::new(raw) else {
        alloc::handle_alloc_error(layout)
    };
    // A handle keeps its length in the top 16 bits of a 64-bit
    // pointer (`piece`), and takes them off to reach the piece: the
    // chunk must lie below 2^48, as user space does on x86-64 and
    // arm64 Linux unless asked for more.
    assert!(
        usize::BITS < 64 || (chunk.as_ptr() as u64 + size as u64) >> 48 == 0,
        "an arena chunk mapped above 2^48, where handles cannot tag it"
    );
    // SAFETY: `chunk` is `size` bytes, allocated just now.
    let area = unsafe { std::slice::from_raw_parts(chunk.as_ptr(), size) };
    binder.bind(area);
    chunk
}

/// Bytes [`Arena::reserve`] takes for `bytes`: the whole chunks of
/// [`MAX_CHUNK`] they fill.
pub(crate) fn reserved_size(bytes: usize) -> usize {
    bytes / MAX_CHUNK * MAX_CHUNK
}

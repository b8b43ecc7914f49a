//! Node-bound memory for frozen blocks: each shard's merge carves its
//! frozen blocks (immutable byte strings, tens to thousands of bytes) out
//! of page-aligned chunks bound to the shard's NUMA node before their
//! first touch, as slot buffers are.
//!
//! Why not the heap: a frozen block used to be an `Arc<[u8]>` from the
//! system allocator, made by the node's pinned merge thread. But blocks
//! are freed by whichever thread drops the last version that holds them
//! (readers collecting epoch garbage, any node's), and glibc's per-thread
//! cache gives a thread's next allocation of a size the chunk of that size
//! it freed last: a node's merge could be given memory of another node, so
//! their placement could be reported but not checked. Here a block's memory
//! comes from its shard's chunks only, whoever frees it.
//!
//! A block is one piece: a 16-byte header (reference count, length, the
//! arena), then its bytes, rounded up to [`GRAIN`]. A piece whose last
//! reference is dropped goes on its arena's free list for its size, and
//! the merge takes pieces from there before carving new ones; the chunks
//! are returned to the system when the arena and every piece are gone (an
//! arena with live pieces is kept alive by them). Memory freed by
//! retention is reused by later frozen blocks of the shard, not returned.
//!
//! Under a model checker a frozen block is a plain `Arc<[u8]>`: the models
//! check the publication of versions and blocks, not this allocator, whose
//! own tests run under Miri (data races, leaks and provenance included).

#[cfg(not(any(loom, shuttle)))]
pub(crate) use bound::{Arena, FrozenBlock};
#[cfg(any(loom, shuttle))]
pub(crate) use plain::{Arena, FrozenBlock};

/// Pieces are multiples of this many bytes (their header included).
const GRAIN: usize = 16;

/// Bytes a piece holding `len` bytes takes: its header and its bytes,
/// rounded up to [`GRAIN`].
pub(crate) const fn piece_bytes(len: usize) -> usize {
    (HEADER + len).div_ceil(GRAIN) * GRAIN
}

/// Header bytes before a piece's bytes.
const HEADER: usize = 16;

#[cfg(not(any(loom, shuttle)))]
mod bound {
    use std::alloc::{self, Layout};
    use std::ops::Deref;
    use std::ptr::NonNull;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

    use super::{piece_bytes, GRAIN, HEADER};
    use crate::slot::Binder;

    /// Chunks are page aligned, so binding covers them whole.
    const PAGE: usize = 4096;
    /// An arena's first chunk; each next one is twice the last, up to
    /// [`MAX_CHUNK`] (a small index keeps a small arena).
    const FIRST_CHUNK: usize = 4 * PAGE;
    /// 256 KiB: above glibc's initial threshold for serving an allocation
    /// with a fresh mapping (128 KiB), whose pages nobody touched before
    /// the binding; smaller chunks come from the heap, where memory freed
    /// earlier may already be placed (binding moves no page).
    pub(super) const MAX_CHUNK: usize = 64 * PAGE;
    /// The longest byte string a piece holds: a quarter of the largest
    /// chunk (a frozen block of 256 points takes at most about 4 KiB).
    pub(crate) const MAX_LEN: usize = MAX_CHUNK / 4 - HEADER;

    /// A piece's header, at the start of its memory.
    #[repr(C)]
    struct Header {
        /// Handles to the piece ([`FrozenBlock`]s).
        refs: AtomicU32,
        /// Bytes after the header that are the block.
        len: u32,
        /// The arena the piece returns to: one strong count of its `Arc`,
        /// taken when the piece was handed out (`Arc::into_raw`).
        arena: *const Shared,
    }

    const _: () = assert!(size_of::<Header>() == HEADER && align_of::<Header>() <= GRAIN);

    /// What the merge and the freeing threads share: the chunks, the
    /// position in the newest one, and the free pieces of each size.
    #[derive(Debug, Default)]
    struct State {
        /// Every chunk and its size, to return them when the arena goes.
        chunks: Vec<(NonNull<u8>, usize)>,
        /// Bytes of the newest chunk handed out.
        used: usize,
        /// Free pieces by size: `free[i]` holds pieces of `(i + 1) *
        /// GRAIN` bytes.
        free: Vec<Vec<NonNull<u8>>>,
        /// Chunks of [`MAX_CHUNK`] bytes reserved ahead (bound and touched,
        /// [`Arena::reserve`]), which `carve` takes before allocating.
        reserved: Vec<NonNull<u8>>,
        /// Bytes of reserved chunks `carve` started using since
        /// [`Arena::take_reserved_started`] last asked.
        reserved_started: usize,
    }

    struct Shared {
        binder: Binder,
        state: Mutex<State>,
    }

    // SAFETY: `State`'s pointers are to chunks this arena owns (allocated
    // in `new_chunk`, freed in `drop` only), started or reserved, and to
    // free pieces in them, which
    // no handle reaches any more; they are read and written under the
    // mutex only. `Binder` is `Send + Sync`.
    unsafe impl Send for Shared {}
    // SAFETY: as above: all shared mutable state is behind the mutex.
    unsafe impl Sync for Shared {}

    impl Shared {
        fn state(&self) -> MutexGuard<'_, State> {
            // A panic while holding the lock leaves the lists consistent:
            // every change to them is a single push, pop or assignment.
            self.state.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }

    impl Drop for Shared {
        fn drop(&mut self) {
            let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
            for &(chunk, size) in &state.chunks {
                // SAFETY: allocated in `new_chunk` with this layout; the
                // last piece holding the arena is gone (each holds a
                // count), so nothing points into the chunk any more.
                unsafe { alloc::dealloc(chunk.as_ptr(), chunk_layout(size)) };
            }
            for &chunk in &state.reserved {
                // SAFETY: allocated in `new_chunk` with this layout by
                // `reserve`, and never handed out (no piece is in it).
                unsafe { alloc::dealloc(chunk.as_ptr(), chunk_layout(MAX_CHUNK)) };
            }
        }
    }

    fn chunk_layout(size: usize) -> Layout {
        Layout::from_size_align(size, PAGE).expect("chunk sizes are page multiples")
    }

    /// One shard's frozen-block memory, used by its merge (through the
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
                .field("chunks", &state.chunks.len())
                .field("used", &state.used)
                .finish_non_exhaustive()
        }
    }

    impl Default for Arena {
        /// An arena on no node in particular (first touch places it).
        fn default() -> Self {
            Arena::new(Binder::default())
        }
    }

    impl Arena {
        /// An empty arena whose chunks `binder` binds to its node.
        pub(crate) fn new(binder: Binder) -> Self {
            Arena {
                shared: Arc::new(Shared {
                    binder,
                    state: Mutex::new(State::default()),
                }),
            }
        }

        /// Bytes of chunks the arena holds (used, free or not yet handed
        /// out).
        #[cfg(test)]
        pub(crate) fn chunk_bytes(&self) -> usize {
            self.shared
                .state()
                .chunks
                .iter()
                .map(|&(_, size)| size)
                .sum()
        }

        /// Allocates chunks of [`MAX_CHUNK`] bytes for at least `bytes`,
        /// binds them and touches every page (from the calling thread: the
        /// reserve's pinned one), so that frozen blocks carved from them
        /// take no page fault. Returns the bytes reserved.
        pub(crate) fn reserve(&self, bytes: usize) -> usize {
            let chunks = bytes.div_ceil(MAX_CHUNK);
            for _ in 0..chunks {
                let chunk = self.new_chunk(MAX_CHUNK);
                for page in (0..MAX_CHUNK).step_by(PAGE) {
                    // SAFETY: `page < MAX_CHUNK`: inside the chunk, which
                    // nothing else reaches yet.
                    unsafe { chunk.as_ptr().add(page).write(0) };
                }
                self.shared.state().reserved.push(chunk);
            }
            chunks * MAX_CHUNK
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
            assert!(
                bytes.len() <= MAX_LEN,
                "a frozen block of {} bytes is longer than the {MAX_LEN} a piece holds",
                bytes.len()
            );
            let size = piece_bytes(bytes.len());
            let piece = {
                let mut state = self.shared.state();
                let reused = state.free.get_mut(size / GRAIN - 1).and_then(Vec::pop);
                reused.unwrap_or_else(|| self.carve(&mut state, size))
            };
            let header = Header {
                refs: AtomicU32::new(1),
                len: u32::try_from(bytes.len()).expect("MAX_LEN fits in u32"),
                arena: Arc::into_raw(Arc::clone(&self.shared)),
            };
            // SAFETY: `piece` is `size` bytes of a chunk of this arena,
            // GRAIN-aligned, that no handle reaches: carved just now, or
            // popped from the free list, where the last handle's drop put
            // it (after its count reached zero, `Acquire`); the mutex
            // orders that drop's reads before these writes. `size` holds
            // the header and the bytes.
            unsafe {
                piece.cast::<Header>().as_ptr().write(header);
                let data = piece.as_ptr().add(HEADER);
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len());
            }
            FrozenBlock {
                tagged: tag(piece, bytes.len()),
            }
        }

        /// `size` bytes at the end of the newest chunk, after a new chunk
        /// if it has no room.
        fn carve(&self, state: &mut State, size: usize) -> NonNull<u8> {
            let room = state.chunks.last().map_or(0, |&(_, s)| s - state.used);
            if room < size {
                let mut next = state
                    .chunks
                    .last()
                    .map_or(FIRST_CHUNK, |&(_, s)| (2 * s).min(MAX_CHUNK));
                // A piece is at most a quarter of the largest chunk.
                while next < size {
                    next *= 2;
                }
                // What is left of the old chunk goes on the free lists, in
                // pieces of the largest sizes it holds.
                if let Some(&(chunk, s)) = state.chunks.last() {
                    let mut at = state.used;
                    while s - at >= GRAIN {
                        let piece = (s - at).min(MAX_LEN + HEADER) / GRAIN * GRAIN;
                        // SAFETY: `at + piece <= s`: inside the chunk.
                        let p = unsafe { chunk.add(at) };
                        push_free(state, p, piece);
                        at += piece;
                    }
                }
                // A reserved chunk first (the largest size: every piece
                // fits), else a new one.
                let chunk = match state.reserved.pop() {
                    Some(chunk) => {
                        next = MAX_CHUNK;
                        state.reserved_started += MAX_CHUNK;
                        chunk
                    }
                    None => self.new_chunk(next),
                };
                state.chunks.push((chunk, next));
                state.used = 0;
            }
            let &(chunk, _) = state.chunks.last().expect("a chunk with room");
            // SAFETY: `used + size <= chunk size`, checked above.
            let piece = unsafe { chunk.add(state.used) };
            state.used += size;
            piece
        }
    }

    impl Arena {
        /// `size` bytes of fresh memory (a page multiple), bound to the
        /// arena's node before anything touches it, so that whoever writes
        /// a piece of it, its pages are on the node.
        fn new_chunk(&self, size: usize) -> NonNull<u8> {
            let layout = chunk_layout(size);
            // SAFETY: the layout's size is not zero.
            let raw = unsafe { alloc::alloc(layout) };
            let Some(chunk) = NonNull::new(raw) else {
                alloc::handle_alloc_error(layout)
            };
            // SAFETY: `chunk` is `size` bytes, allocated just now.
            let area = unsafe { std::slice::from_raw_parts(chunk.as_ptr(), size) };
            self.shared.binder.bind(area);
            chunk
        }
    }

    /// Puts `piece` (`size` bytes) on its free list.
    fn push_free(state: &mut State, piece: NonNull<u8>, size: usize) {
        let class = size / GRAIN - 1;
        if state.free.len() <= class {
            state.free.resize_with(class + 1, Vec::new);
        }
        state.free[class].push(piece);
    }

    /// A frozen block's bytes, shared by every version that indexes it:
    /// one pointer to a piece of its shard's arena, reference counted like
    /// an `Arc<[u8]>`.
    ///
    /// The pointer carries the block's length in its top 16 bits (which
    /// user-space addresses leave clear on x86-64 and arm64 Linux; a piece
    /// is under 64 KiB), so a reader knows it without loading the piece: a
    /// lookup prefetches the line its value likely sits on (a share of the
    /// length) while the header's line is still on its way, where reading
    /// the length from the header would make one miss wait for the other.
    /// Where the address or the length does not fit (a 32-bit target, an
    /// address above 2^48), the tag is 0 and the header says.
    pub(crate) struct FrozenBlock {
        tagged: NonNull<u8>,
    }

    /// Where the length sits in the tagged pointer.
    const TAG_SHIFT: u32 = 48;

    /// Tags `piece` with `len` when both fit (else leaves it untagged).
    fn tag(piece: NonNull<u8>, len: usize) -> NonNull<u8> {
        let addr = piece.addr().get() as u64;
        if usize::BITS < 64 || len == 0 || len >> 16 != 0 || addr >> TAG_SHIFT != 0 {
            return piece;
        }
        // 64-bit (checked above): the tagged address fits `usize`.
        piece.map_addr(|a| a | (((len as u64) << TAG_SHIFT) as usize))
    }

    // SAFETY: the bytes are never written while a handle exists, and the
    // count is atomic: a handle is as shareable as an `Arc<[u8]>`.
    unsafe impl Send for FrozenBlock {}
    // SAFETY: as above.
    unsafe impl Sync for FrozenBlock {}

    impl FrozenBlock {
        /// The piece, untagged.
        #[inline]
        fn piece(&self) -> NonNull<u8> {
            if usize::BITS < 64 {
                return self.tagged;
            }
            let mask = ((1u64 << TAG_SHIFT) - 1) as usize;
            self.tagged.map_addr(|a| {
                std::num::NonZeroUsize::new(a.get() & mask).expect("a piece's address is not 0")
            })
        }

        /// The length the pointer carries (0: none).
        #[cfg(test)]
        pub(super) fn tagged_len(&self) -> usize {
            (self.tagged.addr().get() as u64 >> TAG_SHIFT) as usize
        }

        /// Handles to the piece now.
        #[cfg(test)]
        pub(crate) fn refs(&self) -> u32 {
            self.header().refs.load(Ordering::Relaxed)
        }

        fn header(&self) -> &Header {
            // SAFETY: the header was written by `Arena::alloc` and stays
            // while this handle holds its count.
            unsafe { self.piece().cast::<Header>().as_ref() }
        }
    }

    impl Deref for FrozenBlock {
        type Target = [u8];

        #[inline]
        fn deref(&self) -> &[u8] {
            let len = match self.tagged.addr().get() as u64 >> TAG_SHIFT {
                0 => self.header().len as usize,
                tagged => tagged as usize,
            };
            // SAFETY: `Arena::alloc` wrote `len` bytes after the header
            // (and tagged the pointer with `len`, or not at all); they are
            // not written again while a handle exists.
            unsafe { std::slice::from_raw_parts(self.piece().as_ptr().add(HEADER), len) }
        }
    }

    impl Clone for FrozenBlock {
        fn clone(&self) -> Self {
            // Relaxed, as `Arc::clone`: the new handle comes from one that
            // keeps the piece alive meanwhile.
            let old = self.header().refs.fetch_add(1, Ordering::Relaxed);
            assert!(old < u32::MAX / 2, "a frozen block has too many handles");
            FrozenBlock {
                tagged: self.tagged,
            }
        }
    }

    impl Drop for FrozenBlock {
        fn drop(&mut self) {
            if self.header().refs.fetch_sub(1, Ordering::Release) != 1 {
                return;
            }
            // Every other handle's reads happen before the piece is reused
            // (`Release` above, `Acquire` here, as `Arc::drop`).
            std::sync::atomic::fence(Ordering::Acquire);
            let header = self.header();
            let size = piece_bytes(header.len as usize);
            // SAFETY: the pointer came from `Arc::into_raw` in
            // `Arena::alloc`, and this is the piece's last handle: the
            // count it carried is given back here, once.
            let arena = unsafe { Arc::from_raw(header.arena) };
            push_free(&mut arena.state(), self.piece(), size);
        }
    }

    impl std::fmt::Debug for FrozenBlock {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "FrozenBlock({} bytes)", self.len())
        }
    }
}

#[cfg(any(loom, shuttle))]
mod plain {
    use std::sync::Arc;

    /// A frozen block under a model checker: an `Arc<[u8]>`.
    pub(crate) type FrozenBlock = Arc<[u8]>;

    /// The heap, under a model checker: nothing to reserve.
    #[derive(Clone, Debug, Default)]
    pub(crate) struct Arena(());

    impl Arena {
        pub(crate) fn new(_binder: crate::slot::Binder) -> Self {
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
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests {
    use super::bound::{MAX_CHUNK, MAX_LEN};
    use super::*;

    /// `len` bytes that differ with `seed`.
    fn bytes(len: usize, seed: u8) -> Vec<u8> {
        let mut out = vec![seed; len];
        // A few marks, not every byte (Miri runs these tests).
        for i in (0..len).step_by(61) {
            out[i] = (i as u8).wrapping_mul(31) ^ seed;
        }
        out
    }

    #[test]
    fn a_block_holds_its_bytes_and_its_clones_share_them() {
        let arena = Arena::default();
        let want = bytes(100, 7);
        let block = arena.alloc(&want);
        let copy = block.clone();
        assert_eq!(&*block, &want[..]);
        assert_eq!(copy.as_ptr(), block.as_ptr());
        drop(block);
        assert_eq!(&*copy, &want[..]);
        assert!(arena.alloc(&[]).is_empty());
    }

    #[test]
    fn a_freed_piece_is_reused_for_the_same_size_only() {
        let arena = Arena::default();
        let first = arena.alloc(&bytes(100, 1));
        let at = first.as_ptr();
        let copy = first.clone();
        drop(first);
        // Still held by the copy: not reused.
        let other = arena.alloc(&bytes(100, 2));
        assert_ne!(other.as_ptr(), at);
        drop(copy);
        // A size of another piece size: not reused either.
        let longer = arena.alloc(&bytes(100 + GRAIN, 3));
        assert_ne!(longer.as_ptr(), at);
        // The same piece size (97..=112 bytes with the header): reused.
        let again = arena.alloc(&bytes(97, 4));
        assert_eq!(again.as_ptr(), at);
        assert_eq!(&*again, &bytes(97, 4)[..]);
    }

    #[test]
    fn pieces_never_overlap_as_chunks_fill_and_grow() {
        let arena = Arena::default();
        let mut live: Vec<(FrozenBlock, Vec<u8>)> = Vec::new();
        let mut round = 0u8;
        for len in (0..300).map(|i| (i * 397) % (MAX_LEN + 1)) {
            let want = bytes(len, round);
            live.push((arena.alloc(&want), want));
            round = round.wrapping_add(1);
            if live.len().is_multiple_of(5) {
                // Free every third one, so that later ones reuse pieces.
                let mut i = 0;
                live.retain(|_| {
                    i += 1;
                    i % 3 != 0
                });
            }
        }
        for (block, want) in &live {
            assert_eq!(&**block, &want[..]);
        }
        let chunks = arena.chunk_bytes();
        let held: usize = live.iter().map(|(b, _)| piece_bytes(b.len())).sum();
        assert!(chunks >= held, "{chunks} bytes of chunks hold {held}");
    }

    #[test]
    fn chunks_double_up_to_the_largest_size() {
        let arena = Arena::default();
        let mut sizes = Vec::new();
        let mut blocks = Vec::new();
        let piece = bytes(4000, 0);
        while sizes.len() < 6 {
            blocks.push(arena.alloc(&piece));
            let now = arena.chunk_bytes();
            if sizes.last() != Some(&now) {
                sizes.push(now);
            }
        }
        let grown: Vec<usize> = sizes.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(sizes[0], 16 << 10);
        assert_eq!(grown, [32 << 10, 64 << 10, 128 << 10, 256 << 10, 256 << 10]);
        // The longest piece in a new arena: its first chunk holds it.
        let arena = Arena::default();
        let longest = arena.alloc(&bytes(MAX_LEN, 1));
        assert_eq!(&*longest, &bytes(MAX_LEN, 1)[..]);
        assert!(arena.chunk_bytes() >= piece_bytes(MAX_LEN));
    }

    #[test]
    fn reserved_chunks_are_carved_first_and_counted_once_started() {
        let arena = Arena::default();
        assert_eq!(arena.reserve(MAX_CHUNK + 1), 2 * MAX_CHUNK);
        assert_eq!(arena.reserved_left(), 2 * MAX_CHUNK);
        assert_eq!((arena.chunk_bytes(), arena.take_reserved_started()), (0, 0));
        // The first piece starts a reserved chunk (the largest size, not
        // the first size of a new arena's growth).
        let mut blocks = vec![arena.alloc(&bytes(MAX_LEN, 1))];
        assert_eq!(arena.chunk_bytes(), MAX_CHUNK);
        assert_eq!(arena.reserved_left(), MAX_CHUNK);
        assert_eq!(arena.take_reserved_started(), MAX_CHUNK);
        assert_eq!(arena.take_reserved_started(), 0, "counted once");
        // Four of the longest pieces fill a chunk: the fifth starts the
        // second reserved one, the ninth a new chunk.
        for i in 2..=9 {
            blocks.push(arena.alloc(&bytes(MAX_LEN, i)));
            let reserved_started = arena.take_reserved_started();
            assert_eq!(
                reserved_started,
                if i == 5 { MAX_CHUNK } else { 0 },
                "piece {i}"
            );
        }
        assert_eq!(arena.reserved_left(), 0);
        assert_eq!(arena.chunk_bytes(), 3 * MAX_CHUNK);
        for (i, b) in blocks.iter().enumerate() {
            assert_eq!(&**b, &bytes(MAX_LEN, i as u8 + 1)[..]);
        }
        // A reserve never started is freed with the arena (Miri reports a
        // leak otherwise).
        let unused = Arena::default();
        unused.reserve(1);
        drop(unused);
    }

    #[test]
    fn blocks_outlive_their_arena_and_free_its_chunks_last() {
        let arena = Arena::default();
        let want = bytes(300, 9);
        let block = arena.alloc(&want);
        drop(arena);
        assert_eq!(&*block, &want[..]);
        // Dropping the last block frees the chunks (Miri reports a leak
        // otherwise).
        drop(block);
    }

    #[test]
    fn blocks_dropped_on_other_threads_return_to_the_arena() {
        let arena = Arena::default();
        let blocks: Vec<FrozenBlock> = (0..64).map(|i| arena.alloc(&bytes(40, i))).collect();
        let at: Vec<usize> = blocks.iter().map(|b| b.as_ptr() as usize).collect();
        std::thread::scope(|s| {
            let mut blocks = blocks.into_iter();
            for start in [0, 32] {
                let half: Vec<FrozenBlock> = blocks.by_ref().take(32).collect();
                s.spawn(move || {
                    for (i, b) in half.into_iter().enumerate() {
                        assert_eq!(&*b, &bytes(40, i as u8 + start)[..]);
                        drop(b);
                    }
                });
            }
        });
        let again: Vec<FrozenBlock> = (0..64).map(|i| arena.alloc(&bytes(40, i))).collect();
        let mut reused: Vec<usize> = again.iter().map(|b| b.as_ptr() as usize).collect();
        let mut before = at;
        reused.sort_unstable();
        before.sort_unstable();
        assert_eq!(reused, before, "every freed piece is handed out again");
    }

    #[test]
    fn the_length_in_the_pointer_is_the_headers() {
        let arena = Arena::default();
        for len in [0, 1, 100, 4096, MAX_LEN] {
            let want = bytes(len, 3);
            let block = arena.alloc(&want);
            assert_eq!(block.len(), len);
            assert_eq!(&*block, &want[..]);
            assert_eq!(block.clone().len(), len);
            // Tagged on this 64-bit target (a 0 length needs no tag).
            assert_eq!(block.tagged_len(), len);
        }
    }

    #[test]
    #[should_panic(expected = "longer than")]
    fn a_block_longer_than_a_piece_holds_is_refused() {
        Arena::default().alloc(&bytes(MAX_LEN + 1, 0));
    }
}

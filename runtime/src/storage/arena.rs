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
//! Chunks are mapped directly (`mmap`, Linux), never taken from the
//! allocator: it serves sizes below its mapping threshold (which glibc
//! raises to the largest mapping a process frees) from memory freed
//! earlier, whose pages are where they were (binding moves no page
//! already there). A second index in one process got node 1's old pages
//! for node 0's first chunks that way (the 4-node guest's
//! `huge-chunk-pages` check found it). Elsewhere, and under Miri, the
//! allocator makes them.
//!
//! A block is one piece: a 16-byte header (reference count, length, the
//! arena), then its bytes, rounded up to [`GRAIN`]. A piece whose last
//! reference is dropped goes on its arena's free list for its size, and
//! the merge takes pieces from there before carving new ones; the chunks
//! are returned to the system when the arena and every piece are gone (an
//! arena with live pieces is kept alive by them). Memory freed by
//! retention is reused by later frozen blocks of the shard, not returned.
//!
//! Past its first few chunks (16 KiB doubling to 256 KiB: a small index
//! stays small), an arena that may use huge pages takes 2 MiB chunks, 2
//! MiB aligned and advised `MADV_HUGEPAGE` before their first touch: one
//! page fault and one TLB entry where 512 of each were. A cold ingest of
//! 10.24 M points took ~24 K page faults, ~20 K of them this arena's;
//! with huge chunks ~4 K (BENCHMARKS.md). The
//! advice is the kernel's to follow: where transparent huge pages are
//! off, or none is free, the chunk is ordinary pages.
//! `Builder::huge_pages(false)` turns it off.
//!
//! An arena can be given chunks ahead of need (`Arena::reserve`, for
//! `Builder::reserve_records`): bound and touched by the node's pinned
//! thread when the index is built, so that an ingest's frozen blocks take
//! no page fault (with freezing on they are most of an ingest's new
//! memory). The merge starts a reserved chunk before allocating one; the
//! shard counts reserved chunks in its bytes until they are started
//! (`Arena::take_reserved_started`), and those never started are freed
//! with the arena.
//!
//! Under a model checker a frozen block is a plain `Arc<[u8]>`: the models
//! check the publication of versions and blocks, not this allocator, whose
//! own tests run under Miri (data races, leaks and provenance included).

#[cfg(not(any(loom, shuttle)))]
pub(crate) use bound::{reserved_size, Arena, FrozenBlock};
#[cfg(any(loom, shuttle))]
pub(crate) use plain::{reserved_size, Arena, FrozenBlock};

/// Bytes of arena chunks mapped now, in the whole process: memory the
/// global allocator never sees (see [`mapped_bytes`]).
static MAPPED_BYTES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Bytes of memory numatree maps itself now, in this process, outside
/// the global allocator: the chunks frozen blocks are carved from (16 KiB
/// to 2 MiB each, counted whole from their mapping to their unmapping;
/// Linux only, 0 elsewhere). A program that counts its heap through the
/// allocator adds this to see all of it.
pub fn mapped_bytes() -> usize {
    MAPPED_BYTES.load(std::sync::atomic::Ordering::Relaxed)
}

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
    /// [`MAX_CHUNK`] (a small index keeps a small arena), then
    /// [`HUGE_CHUNK`]s when the arena may use huge pages.
    const FIRST_CHUNK: usize = 4 * PAGE;
    /// 256 KiB: the largest chunk without huge pages, and the size of
    /// reserved ones.
    pub(super) const MAX_CHUNK: usize = 64 * PAGE;
    /// 2 MiB: the chunks after a [`MAX_CHUNK`] one when the arena may use
    /// huge pages (x86-64's and most of arm64's huge page size; where the
    /// kernel's is another, the advice is simply worth less).
    pub(super) const HUGE_CHUNK: usize = 512 * PAGE;
    /// The longest byte string a piece holds: a quarter of a
    /// [`MAX_CHUNK`] (a frozen block of 256 points takes at most about 4
    /// KiB).
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
        /// Whether chunks after a [`MAX_CHUNK`] one are [`HUGE_CHUNK`]s.
        huge_pages: bool,
        state: Mutex<State>,
    }

    // SAFETY: `State`'s pointers are to chunks this arena owns, started or
    // reserved (allocated in `new_chunk`, freed in `drop` only), and to
    // free pieces in them, which no handle reaches any more; they are read
    // and written under the mutex only. `Binder` is `Send + Sync`.
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
                // SAFETY: made by `new_chunk(size)`; the last piece
                // holding the arena is gone (each holds a count), so
                // nothing points into the chunk any more.
                unsafe { free_chunk(chunk, size) };
            }
            for &chunk in &state.reserved {
                // SAFETY: made by `new_chunk(MAX_CHUNK)` in `reserve`, and
                // never handed out (no piece is in it).
                unsafe { free_chunk(chunk, MAX_CHUNK) };
            }
        }
    }

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
    unsafe fn free_chunk(chunk: NonNull<u8>, size: usize) {
        if mapped::MAPPED {
            // SAFETY: the caller's promise; `mapped::map(size)` made it.
            unsafe { mapped::unmap(chunk, size) }
        } else {
            // SAFETY: the caller's promise; the allocator made it with
            // this layout.
            unsafe { alloc::dealloc(chunk.as_ptr(), chunk_layout(size)) }
        }
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
                .field("reserved", &state.reserved.len())
                .finish_non_exhaustive()
        }
    }

    impl Default for Arena {
        /// An arena on no node in particular (first touch places it).
        fn default() -> Self {
            Arena::new(Binder::default(), false)
        }
    }

    impl Arena {
        /// An empty arena whose chunks `binder` binds to its node, in
        /// huge pages past the first few when `huge_pages`.
        pub(crate) fn new(binder: Binder, huge_pages: bool) -> Self {
            Arena {
                shared: Arc::new(Shared {
                    binder,
                    huge_pages,
                    state: Mutex::new(State::default()),
                }),
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
            self.shared.state().chunks.iter().map(|&(_, s)| s).collect()
        }

        /// Addresses of the arena's started chunks of `size` bytes.
        #[cfg(test)]
        pub(crate) fn chunk_starts(&self, size: usize) -> Vec<usize> {
            let state = self.shared.state();
            let sized = state.chunks.iter().filter(|&&(_, s)| s == size);
            sized.map(|&(chunk, _)| chunk.as_ptr() as usize).collect()
        }

        /// Allocates as many chunks of [`MAX_CHUNK`] bytes as `bytes`
        /// fills (rounded down: a reserve never holds more than asked),
        /// binds them and touches every page (from the calling thread: the
        /// reserve's pinned one), so that frozen blocks carved from them
        /// take no page fault. Returns the bytes reserved.
        pub(crate) fn reserve(&self, bytes: usize) -> usize {
            let reserved = reserved_size(bytes);
            for _ in 0..reserved / MAX_CHUNK {
                let chunk = self.new_chunk(MAX_CHUNK);
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
                let mut next = state.chunks.last().map_or(FIRST_CHUNK, |&(_, s)| {
                    if s >= MAX_CHUNK && self.shared.huge_pages {
                        HUGE_CHUNK
                    } else {
                        (2 * s).min(MAX_CHUNK)
                    }
                });
                // A piece is at most a quarter of a MAX_CHUNK.
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
                // A reserved chunk first (a MAX_CHUNK: every piece
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
        /// a piece of it, its pages are on the node; advised huge pages
        /// first when it is a [`HUGE_CHUNK`].
        fn new_chunk(&self, size: usize) -> NonNull<u8> {
            let layout = chunk_layout(size);
            let raw = if mapped::MAPPED {
                mapped::map(size)
            } else {
                // SAFETY: the layout's size is not zero.
                unsafe { alloc::alloc(layout) }
            };
            let Some(chunk) = NonNull::new(raw) else {
                alloc::handle_alloc_error(layout)
            };
            // SAFETY: `chunk` is `size` bytes, allocated just now.
            let area = unsafe { std::slice::from_raw_parts(chunk.as_ptr(), size) };
            self.shared.binder.bind(area);
            chunk
        }
    }

    /// Chunks mapped directly (Linux): fresh pages every time; huge ones
    /// 2 MiB aligned and advised huge pages.
    #[cfg(all(target_os = "linux", not(miri)))]
    mod mapped {
        use super::super::MAPPED_BYTES;
        use super::HUGE_CHUNK;
        use std::ptr::{self, NonNull};
        use std::sync::atomic::Ordering;

        /// Whether `map` makes chunks (else the allocator does).
        pub(super) const MAPPED: bool = true;

        /// A fresh mapping of `len` bytes, or null when there is no
        /// memory to map.
        fn map_anonymous(len: usize) -> *mut u8 {
            // SAFETY: an anonymous private mapping at an address the
            // kernel picks: it touches no existing memory.
            let raw = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if raw == libc::MAP_FAILED {
                ptr::null_mut()
            } else {
                raw.cast()
            }
        }

        /// A fresh chunk of `size` bytes (a page multiple), or null when
        /// the system has no memory to map. A [`HUGE_CHUNK`] is 2 MiB
        /// aligned (twice its size is mapped, and what lies outside the
        /// aligned middle unmapped) and advised `MADV_HUGEPAGE`.
        pub(super) fn map(size: usize) -> *mut u8 {
            if size != HUGE_CHUNK {
                let chunk = map_anonymous(size);
                if !chunk.is_null() {
                    MAPPED_BYTES.fetch_add(size, Ordering::Relaxed);
                }
                return chunk;
            }
            let len = 2 * HUGE_CHUNK;
            let raw = map_anonymous(len);
            if raw.is_null() {
                return raw;
            }
            let start = raw as usize;
            let head = start.next_multiple_of(HUGE_CHUNK) - start;
            let tail = len - head - HUGE_CHUNK;
            // SAFETY: `head + HUGE_CHUNK + tail == len`: the three parts
            // of the mapping just made, which nothing else knows of; the
            // two ends are unmapped whole, the middle kept.
            let chunk = unsafe {
                if head > 0 {
                    libc::munmap(raw.cast(), head);
                }
                if tail > 0 {
                    libc::munmap(raw.add(head + HUGE_CHUNK).cast(), tail);
                }
                raw.add(head)
            };
            // Advice only: refused (no transparent huge pages here) it
            // changes nothing, so its result is not looked at.
            // SAFETY: the chunk is mapped and ours; the advice changes how
            // the kernel backs it, never its contents or its validity.
            unsafe { libc::madvise(chunk.cast(), HUGE_CHUNK, libc::MADV_HUGEPAGE) };
            MAPPED_BYTES.fetch_add(HUGE_CHUNK, Ordering::Relaxed);
            chunk
        }

        /// Unmaps a chunk `map(size)` made.
        ///
        /// # Safety
        /// `chunk` came from `map(size)`, is unmapped once, and nothing
        /// reaches into it any more.
        pub(super) unsafe fn unmap(chunk: NonNull<u8>, size: usize) {
            // SAFETY: the caller's promise: a whole mapping of `size`
            // bytes that `map` kept.
            unsafe { libc::munmap(chunk.as_ptr().cast(), size) };
            MAPPED_BYTES.fetch_sub(size, Ordering::Relaxed);
        }
    }

    /// Elsewhere (and under Miri, which models no `mmap`) the allocator
    /// makes chunks, huge ones 2 MiB aligned, with no advice.
    #[cfg(not(all(target_os = "linux", not(miri))))]
    mod mapped {
        use std::ptr::NonNull;

        pub(super) const MAPPED: bool = false;

        pub(super) fn map(_size: usize) -> *mut u8 {
            unreachable!("chunks are the allocator's here")
        }

        pub(super) unsafe fn unmap(_chunk: NonNull<u8>, _size: usize) {
            unreachable!("chunks are the allocator's here")
        }
    }

    /// Bytes [`Arena::reserve`] takes for `bytes`: the whole chunks of
    /// [`MAX_CHUNK`] they fill.
    pub(crate) fn reserved_size(bytes: usize) -> usize {
        bytes / MAX_CHUNK * MAX_CHUNK
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
        pub(crate) fn new(_binder: crate::slot::Binder, _huge_pages: bool) -> Self {
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

    /// Nothing is reserved under a model checker.
    pub(crate) fn reserved_size(_bytes: usize) -> usize {
        0
    }
}

#[cfg(all(test, not(any(loom, shuttle))))]
mod tests;

//! Handles to an arena's pieces: a [`Piece`] is one reference to a piece,
//! counted like an `Arc`; a [`FrozenBlock`] reads it as bytes, a
//! [`HotWords`] as atomic words. Whoever drops the last handle puts the
//! piece on its arena's free list, so its memory stays the shard's.

use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::bound::Header;
use super::shared::Shared;
use super::HEADER;

/// One handle to a piece of an arena, reference counted like an `Arc`.
///
/// The pointer carries the piece's length in its top 16 bits (which
/// user-space addresses leave clear on x86-64 and arm64 Linux; a piece
/// is under 64 KiB), so a reader knows it without loading the piece: a
/// lookup prefetches the line its value likely sits on (a share of the
/// length) while the header's line is still on its way, where reading
/// the length from the header would make one miss wait for the other.
/// Where the length does not fit (a 32-bit target, a piece of no bytes),
/// the tag is 0 and the header says; chunks lie below 2^48 (asserted when
/// one is mapped), so the address always fits.
pub(super) struct Piece {
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

/// `tagged` with its tag cleared: where the piece starts.
#[inline]
fn untag(tagged: NonNull<u8>) -> NonNull<u8> {
    if usize::BITS < 64 {
        return tagged;
    }
    let mask = ((1u64 << TAG_SHIFT) - 1) as usize;
    tagged.map_addr(|a| std::num::NonZeroUsize::new(a.get() & mask).expect("a piece is not at 0"))
}

// SAFETY: the count is atomic, and what the handles share is read and
// written as `FrozenBlock` and `HotWords` say: a piece is as shareable as
// an `Arc` of them.
unsafe impl Send for Piece {}
// SAFETY: as above.
unsafe impl Sync for Piece {}

impl Piece {
    /// The first handle to `piece`, whose header says it holds `len`
    /// bytes.
    ///
    /// # Safety
    /// `piece` is a piece its arena handed out just now, header written,
    /// one count in it for this handle.
    pub(super) unsafe fn new(piece: NonNull<u8>, len: usize) -> Piece {
        Piece {
            tagged: tag(piece, len),
        }
    }

    /// Where the piece starts, untagged.
    #[inline]
    fn start(&self) -> NonNull<u8> {
        untag(self.tagged)
    }

    fn header(&self) -> &Header {
        // SAFETY: the header was written by `Arena::piece` and stays
        // while this handle holds its count.
        unsafe { self.start().cast::<Header>().as_ref() }
    }

    /// The bytes after the header (where a block's contents go).
    #[inline]
    pub(super) fn data(&self) -> *mut u8 {
        // SAFETY: a piece is at least its header long.
        unsafe { self.start().as_ptr().add(HEADER) }
    }

    /// Bytes after the header.
    #[inline]
    fn len(&self) -> usize {
        match self.tagged.addr().get() as u64 >> TAG_SHIFT {
            0 => self.header().len as usize,
            tagged => tagged as usize,
        }
    }

    /// Handles to the piece now.
    #[cfg(test)]
    fn refs(&self) -> u32 {
        self.header().refs.load(Ordering::Relaxed)
    }
}

impl Clone for Piece {
    fn clone(&self) -> Self {
        // Relaxed, as `Arc::clone`: the new handle comes from one that
        // keeps the piece alive meanwhile.
        let old = self.header().refs.fetch_add(1, Ordering::Relaxed);
        assert!(old < u32::MAX / 2, "a block has too many handles");
        Piece {
            tagged: self.tagged,
        }
    }
}

impl Piece {
    /// Lets go of this handle; if it was the piece's last, takes the
    /// arena's count the piece held and returns it with the piece, whose
    /// header then belongs to the caller.
    ///
    /// # Safety
    /// Called once for a handle, which is neither used nor dropped after.
    unsafe fn release(&mut self) -> Option<(Arc<Shared>, NonNull<u8>)> {
        if self.header().refs.fetch_sub(1, Ordering::Release) != 1 {
            return None;
        }
        // Every other handle's reads happen before the piece is reused
        // (`Release` above, `Acquire` here, as `Arc::drop`).
        std::sync::atomic::fence(Ordering::Acquire);
        // SAFETY: the pointer came from `Arc::into_raw` in
        // `Arena::piece`, and this is the piece's last handle: the
        // count it carried is given back here, once.
        let arena = unsafe { Arc::from_raw(self.header().arena) };
        Some((arena, self.start()))
    }
}

impl Drop for Piece {
    fn drop(&mut self) {
        // SAFETY: `drop` runs once, and the handle is gone after it.
        if let Some((arena, piece)) = unsafe { self.release() } {
            // SAFETY: the piece is the arena's, this was its last handle
            // (every other's accesses happen before: `release`'s fence),
            // and no reference to its header is held any more.
            unsafe { arena.give_back_piece(piece) };
        }
    }
}

/// Pieces whose last handle went, gathered to go back to their arena
/// together: one push of them all on its returned stack and one look at
/// its lock (`shared`), where dropping each handle pushes and looks once
/// a piece. A merge of many short series retires a block for nearly every
/// record it merges (`storage::cell::Retired` frees them through one of
/// these).
///
/// The pieces gathered are of one arena at a time (a piece of another
/// sends the gathered ones back first); dropping the batch sends back the
/// rest.
#[derive(Default)]
pub(crate) struct ReturnBatch {
    /// The arena (one of the pieces' counts: it outlives the chain), and
    /// the chain's first and last piece, linked through their headers'
    /// `arena` words as the returned stack is.
    chain: Option<(Arc<Shared>, NonNull<u8>, NonNull<u8>)>,
}

impl ReturnBatch {
    /// Adds `piece`, whose last handle `Piece::release` just let go, and
    /// the arena's count it held.
    fn add(&mut self, arena: Arc<Shared>, piece: NonNull<u8>) {
        match &mut self.chain {
            Some((same, first, _)) if Arc::ptr_eq(same, &arena) => {
                let header = piece.cast::<Header>().as_ptr();
                // SAFETY: `release` made the header this batch's (the
                // piece's last handle is gone); a raw place, no reference.
                unsafe { (*header).arena = first.as_ptr().cast_const().cast() };
                *first = piece;
                // The chain's own count keeps the arena until it is sent.
                drop(arena);
            }
            _ => {
                self.send();
                self.chain = Some((arena, piece, piece));
            }
        }
    }

    /// Sends the gathered pieces back to their arena.
    pub(crate) fn send(&mut self) {
        if let Some((arena, first, last)) = self.chain.take() {
            // SAFETY: every piece of the chain is its arena's, its last
            // handle gone (`release`: every other's accesses happen
            // before), nothing refers to it, and `add` linked the chain
            // from `first` to `last`.
            unsafe { arena.give_back_chain(first, last) };
        }
    }
}

impl Drop for ReturnBatch {
    fn drop(&mut self) {
        self.send();
    }
}

/// A frozen block's bytes, shared by every version that indexes it:
/// one pointer to a piece of its shard's arena, reference counted like
/// an `Arc<[u8]>`, its length in the pointer (see [`Piece`]).
#[derive(Clone)]
pub(crate) struct FrozenBlock(Piece);

impl FrozenBlock {
    /// The block `piece` holds, its bytes written.
    pub(super) fn new(piece: Piece) -> Self {
        FrozenBlock(piece)
    }

    /// The length the pointer carries (0: none).
    #[cfg(test)]
    pub(super) fn tagged_len(&self) -> usize {
        (self.0.tagged.addr().get() as u64 >> TAG_SHIFT) as usize
    }

    /// Handles to the piece now.
    #[cfg(test)]
    pub(crate) fn refs(&self) -> u32 {
        self.0.refs()
    }
}

impl Deref for FrozenBlock {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        // SAFETY: `Arena::alloc` wrote `len` bytes after the header; they
        // are not written again while a handle exists.
        unsafe { std::slice::from_raw_parts(self.0.data(), self.0.len()) }
    }
}

impl std::fmt::Debug for FrozenBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FrozenBlock({} bytes)", self.len())
    }
}

/// A hot block's words (a flat block, or one segment of a segmented
/// block), shared by every version that indexes it: a piece of its
/// shard's arena read as `[AtomicU64]`, reference counted like an
/// `Arc<[AtomicU64]>`. Its words are only ever accessed atomically (the
/// block's publication protocol, `super::super::block`).
#[derive(Clone)]
pub(crate) struct HotWords(Piece);

impl HotWords {
    /// The words `piece` holds (initialized: see `deref`).
    pub(super) fn new(piece: Piece) -> Self {
        HotWords(piece)
    }

    /// The handle as one pointer (tagged: its lowest bit is clear, a piece
    /// being GRAIN-aligned), for a short series' cell; `from_raw` takes it
    /// back.
    pub(crate) fn into_raw(self) -> *mut () {
        let this = std::mem::ManuallyDrop::new(self);
        this.0.tagged.as_ptr().cast()
    }

    /// Lets go of this handle like `drop`, but a piece whose last handle
    /// this was goes into `batch` rather than back to its arena at once.
    pub(crate) fn release_into(self, batch: &mut ReturnBatch) {
        let mut this = std::mem::ManuallyDrop::new(self);
        // SAFETY: the handle is released once here, and never dropped
        // (`ManuallyDrop`) nor used after.
        if let Some((arena, piece)) = unsafe { this.0.release() } {
            batch.add(arena, piece);
        }
    }

    /// The handle `into_raw` made `raw` of.
    ///
    /// # Safety
    /// `raw` came from [`into_raw`](Self::into_raw), and its handle is
    /// taken back once (or the result is never dropped).
    pub(crate) unsafe fn from_raw(raw: *mut ()) -> HotWords {
        let tagged = NonNull::new(raw.cast::<u8>()).expect("into_raw's pointers are not null");
        HotWords(Piece { tagged })
    }

    /// Where the piece starts (its header, then its words: a hint's
    /// target) for a pointer `into_raw` made; nothing is dereferenced.
    #[inline]
    pub(crate) fn start_of_raw(raw: *const ()) -> *const u8 {
        match NonNull::new(raw.cast_mut().cast::<u8>()) {
            Some(tagged) => untag(tagged).as_ptr(),
            None => std::ptr::null(),
        }
    }

    /// Handles to the words now.
    #[cfg(test)]
    pub(crate) fn refs(&self) -> u32 {
        self.0.refs()
    }
}

impl Deref for HotWords {
    type Target = [AtomicU64];

    #[inline]
    fn deref(&self) -> &[AtomicU64] {
        let words = self.0.len() / size_of::<u64>();
        // SAFETY: the `words` words after the header (8-aligned) are
        // initialized: `Arena::alloc_words` wrote them, or
        // (`alloc_words_unzeroed`) they hold what the piece held before,
        // and nothing un-initializes an arena's bytes: its chunks start
        // zeroed (fresh mappings, or `alloc_zeroed`), pages given back
        // (Linux) read as zero again, a header has no padding (asserted
        // in `bound`), and a freed piece is never written but in its
        // header (the free lists are indexes). While a handle exists the
        // words are accessed only through this atomic view.
        unsafe { std::slice::from_raw_parts(self.0.data().cast::<AtomicU64>(), words) }
    }
}

impl std::fmt::Debug for HotWords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HotWords({} words)", self.len())
    }
}

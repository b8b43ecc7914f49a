//! What an arena's handles share: its bookkeeping behind a mutex, and the
//! pieces returned to it that are not on its free lists yet.
//!
//! Why pieces are returned without the lock: a piece's last handle goes
//! wherever a version holding it is reclaimed, by whichever thread the
//! epoch collector runs on, for any shard. A million short series regrow
//! a block per merge, and on the 16-core device machine the threads that
//! merged (8 merge threads, and writers helping) spent ~22% of their time
//! waiting on the arenas' mutexes, in the kernel's futex paths, freeing
//! those blocks while each shard's merge allocated under the same mutex
//! (BENCHMARKS.md, "16 cores again"). So a freed piece is pushed on a
//! lock-free stack (`returned`, linked through the pieces' headers), and
//! the stack is put on the free lists by whoever holds the mutex next: the
//! freeing thread itself when the mutex is free (`try_lock`), else the
//! holder, after it lets go.
//!
//! Pieces freed together (`piece::ReturnBatch`: the short blocks a merge
//! run replaced, destroyed up to 512 in one deferred call) go on the stack as one
//! chain, one compare-exchange for all of them, and their thread then
//! tries the lock once, as for one piece. At a million short series this
//! took the pushes and the looks at the lock off nearly every record
//! (BENCHMARKS.md).
//!
//! No piece is stranded on the stack: every thread that lets go of the
//! mutex then looks at the stack, and every thread that pushed then tries
//! the mutex, each with a `SeqCst` fence between its write and its read.
//! Of a pusher whose `try_lock` failed and the holder it failed on, at
//! least one sees the other's write (the fences are totally ordered): the
//! holder sees the piece, or the pusher's `try_lock` sees the mutex free
//! (and takes it, unless a third thread did, which then looks in turn).
//! This takes `try_lock` to fail only when the mutex is held, and letting
//! go to be an atomic store: std's mutex on Linux (a futex word, a
//! compare-exchange and a swap) is both; were a `try_lock` to fail
//! spuriously, a piece would wait on the stack until the next lock
//! (`Shared::drop` checks in debug builds that none is left).
//!
//! Whoever holds the mutex puts back every piece pushed meanwhile, and
//! loops while more come: under a steady stream of frees one thread may
//! put back others' pieces for a while (the trade of combining their
//! work under one lock instead of having each wait for it).

use std::ptr::{self, NonNull};
use std::sync::atomic::{fence, AtomicPtr, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

use super::bound::{free_chunk, Header, NodeMemory, MAX_CHUNK};
use super::chunks::State;
use super::{mapped, piece_bytes};

pub(in crate::storage::arena) struct Shared {
    pub(super) node: NodeMemory,
    state: Mutex<State>,
    /// Pieces whose last handle is gone, not yet on the free lists: the
    /// newest, whose header's `arena` word holds the next (null: none).
    returned: AtomicPtr<u8>,
}

// SAFETY: `State`'s pointers are to chunks this arena carves, started or
// reserved (allocated in `new_chunk` and freed in `drop` only, or slices
// of the node's huge chunks, which the node frees after every arena of
// it), and to free pieces in them, which no handle reaches any more;
// they are read and written under the mutex only. `returned` links pieces no handle
// reaches, read only by whoever takes the whole stack. `NodeMemory` is
// `Send + Sync`.
unsafe impl Send for Shared {}
// SAFETY: as above: all shared mutable state is behind the mutex or in
// the atomic stack.
unsafe impl Sync for Shared {}

/// The arena's state, locked. When it goes, the pieces returned while it
/// was held are put on the free lists (see the module docs).
pub(in crate::storage::arena) struct StateGuard<'a> {
    shared: &'a Shared,
    guard: Option<MutexGuard<'a, State>>,
}

impl std::ops::Deref for StateGuard<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        self.guard.as_ref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.guard.as_mut().expect("held until dropped")
    }
}

impl Drop for StateGuard<'_> {
    /// Lets go of the lock, then returns the pages of chunks emptied
    /// meanwhile (`State::take_emptied`: a `madvise`, which neither a
    /// merge nor a thread freeing a block should wait on under the lock),
    /// then puts back what was returned meanwhile.
    fn drop(&mut self) {
        let emptied = self.guard.as_mut().map(|g| g.take_emptied());
        drop(self.guard.take());
        self.shared.give_back_emptied(emptied.unwrap_or_default());
        self.shared.put_back_returned();
    }
}

impl Shared {
    pub(super) fn new(node: NodeMemory) -> Self {
        Shared {
            node,
            state: Mutex::new(State::default()),
            returned: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The state, locked, with the pieces returned so far on its free
    /// lists.
    pub(super) fn state(&self) -> StateGuard<'_> {
        let mut guard = self.lock();
        self.take_returned(&mut guard);
        StateGuard {
            shared: self,
            guard: Some(guard),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock (none is expected: every index
        // is one the state made) can leave a count off by one, which only
        // keeps a chunk from being given back: never a piece handed out
        // twice, as the lists and chunks stay well formed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lock, if no other thread holds it.
    fn try_lock(&self) -> Option<MutexGuard<'_, State>> {
        match self.state.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Takes back `piece`, whose last handle is gone, without waiting
    /// for the lock: it goes on the stack, and on the free lists now if
    /// the lock is free, else when its holder lets go.
    ///
    /// # Safety
    /// `piece` is a piece of this arena (its header written by
    /// `Arena::piece`), returned once, after every access of every handle
    /// to it (the caller's `Acquire` fence after the count reached zero);
    /// nothing reads or writes it until the stack is taken.
    pub(super) unsafe fn give_back_piece(&self, piece: NonNull<u8>) {
        // SAFETY: the caller's promise, for a chain of one.
        unsafe { self.give_back_chain(piece, piece) }
    }

    /// Takes back a chain of pieces at once, as [`give_back_piece`]
    /// takes back one: one push for all of them, then one look at the
    /// lock (see `piece::ReturnBatch`, which makes such chains).
    ///
    /// # Safety
    /// Every piece of the chain is as `give_back_piece` asks; the chain
    /// starts at `first`, each piece's header `arena` word holds the next
    /// one, up to `last` (whose word this call writes).
    ///
    /// [`give_back_piece`]: Self::give_back_piece
    pub(super) unsafe fn give_back_chain(&self, first: NonNull<u8>, last: NonNull<u8>) {
        let header = last.cast::<Header>().as_ptr();
        let mut next = self.returned.load(Ordering::Relaxed);
        loop {
            // The header's `arena` word links the stack: the count it
            // stood for was taken back by the caller.
            // SAFETY: the caller's promise: the header is this call's to
            // write (a raw place: no reference to the header is made).
            unsafe { (*header).arena = next.cast_const().cast() };
            // `Release`: the headers written, and the handles' accesses
            // before them, happen before whoever takes the stack reads it.
            match self.returned.compare_exchange_weak(
                next,
                first.as_ptr(),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => next = now,
            }
        }
        self.put_back_returned();
    }

    /// Puts the returned pieces on the free lists while the lock is free
    /// (after every push, and every time the lock is let go): see the
    /// module docs for why none is left behind.
    fn put_back_returned(&self) {
        loop {
            fence(Ordering::SeqCst);
            if self.returned.load(Ordering::Relaxed).is_null() {
                return;
            }
            let Some(mut state) = self.try_lock() else {
                return;
            };
            self.take_returned(&mut state);
            let emptied = state.take_emptied();
            drop(state);
            self.give_back_emptied(emptied);
        }
    }

    /// Whether the returned stack is empty (quiescent tests only).
    #[cfg(test)]
    pub(super) fn nothing_returned_pending(&self) -> bool {
        self.returned.load(Ordering::SeqCst).is_null()
    }

    /// Moves every returned piece onto the free lists (the lock held).
    fn take_returned(&self, state: &mut State) {
        // Mostly empty: a load leaves the line shared where a swap would
        // take it.
        if self.returned.load(Ordering::Relaxed).is_null() {
            return;
        }
        // `Acquire`: pairs with each push's `Release`.
        let mut next = self.returned.swap(ptr::null_mut(), Ordering::Acquire);
        while let Some(piece) = NonNull::new(next) {
            let header = piece.cast::<Header>().as_ptr();
            // SAFETY: a piece pushed by `give_back_chain` (alone, or in a
            // chain `ReturnBatch` linked), its header written before the
            // push's `Release`; taking the stack made it this thread's
            // alone (raw places: no reference to the header).
            let (len, chunk, link) = unsafe { ((*header).len, (*header).chunk, (*header).arena) };
            state.put(piece, piece_bytes(usize::from(len)), chunk);
            next = link.cast_mut().cast();
        }
    }

    /// Returns the pages of chunks emptied under the lock (from
    /// `State::take_emptied`) to the system, outside it, then lets the
    /// merge carve them again. Its callers then put back what was
    /// returned meanwhile.
    #[inline]
    fn give_back_emptied(&self, emptied: Vec<(usize, NonNull<u8>, usize)>) {
        if !emptied.is_empty() {
            self.give_back_emptied_now(emptied);
        }
    }

    #[cold]
    fn give_back_emptied_now(&self, emptied: Vec<(usize, NonNull<u8>, usize)>) {
        for (c, start, size) in emptied {
            // SAFETY: no piece of the chunk is handed out, its free
            // entries are stale (never handed out again), and it is on no
            // list the merge carves from until `returned`: nothing reads
            // or writes its memory meanwhile.
            let counted_out = unsafe { mapped::give_back(start, size) };
            self.lock().returned(c, counted_out);
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // No piece waits on the stack: whoever pushed one then tried the
        // lock, or its holder looked (module docs). Were one left, it is
        // in a chunk freed below or by the node: nothing reads it.
        debug_assert!(
            self.returned.get_mut().is_null(),
            "a freed piece was left on the returned stack"
        );
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        // What is given back was counted out then; `free_chunk` counts
        // every chunk out whole. Slices of the node's huge chunks are its
        // to unmap, whole.
        mapped::taken_again(state.counted_out_bytes());
        for (chunk, size) in state.own_chunks() {
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

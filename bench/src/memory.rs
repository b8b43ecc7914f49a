//! How much memory a contender holds: live heap bytes, counted by a global
//! allocator over a window the harness opens for an untimed measurement.
//!
//! Each contender allocates its own way (numatree's column blocks and slot
//! buffers, `BTreeMap` nodes, skip-list towers, one `Vec` per series), and
//! only the allocator sees all of it alike. [`CountingAlloc`] forwards every
//! call to [`System`] (the allocator Rust uses by default) and, only while
//! a [`Window`] is open, adds the bytes of each allocation and subtracts
//! those of each free. Outside a window each allocation and free costs one
//! relaxed load of a flag that does not change, so the timed phases run as
//! with the default allocator.
//!
//! The counter sees the bytes callers ask for: the allocator's own
//! per-allocation overhead (8-16 bytes in glibc's malloc) is not in it,
//! which is why [`Usage::allocations`] is reported beside it. Memory a
//! structure maps itself (thread stacks, `mmap`) is not seen either; none of
//! the contenders keeps its data there.
//!
//! The binary installs the allocator (`#[global_allocator]` in `main.rs`);
//! where it is not installed (the library's own tests, another binary),
//! [`Window::open`] says so by returning `None`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

/// Whether allocations are counted now.
static COUNTING: AtomicBool = AtomicBool::new(false);
/// Bytes allocated minus bytes freed while counting. Signed: a window may
/// free memory allocated before it opened.
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
/// Allocations made minus allocations freed while counting.
static LIVE_ALLOCATIONS: AtomicIsize = AtomicIsize::new(0);
/// Set by every counted call: tells [`Window::open`] that [`CountingAlloc`]
/// is installed.
static SEEN: AtomicBool = AtomicBool::new(false);
/// One window at a time.
static WINDOW: Mutex<()> = Mutex::new(());

/// The global allocator of the bench binary: [`System`], counting live bytes
/// while a [`Window`] is open.
#[derive(Debug, Default)]
pub struct CountingAlloc;

#[inline]
fn count(bytes: isize, allocations: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed);
        LIVE_ALLOCATIONS.fetch_add(allocations, Ordering::Relaxed);
        SEEN.store(true, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged and returns its result, so `System`'s guarantees are ours; the
// counting touches only atomics and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract (a
        // non-zero-sized layout), which is `System.alloc`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize, 1);
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize, 1);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller passes a block this allocator (that is,
        // `System`) allocated, with the layout it was allocated with.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize), -1);
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller passes a block `System` allocated with
        // `layout` and a valid non-zero `new_size`, as `System.realloc` requires.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize, 0);
        }
        p
    }
}

/// What a window counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Bytes allocated minus bytes freed since the window opened.
    pub bytes: isize,
    /// Allocations made minus allocations freed since the window opened.
    pub allocations: isize,
}

/// An open counting window: allocations anywhere in the process count from
/// [`open`](Window::open) until the window is dropped.
#[derive(Debug)]
pub struct Window {
    base: Usage,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

impl Window {
    /// Starts counting; `None` when [`CountingAlloc`] is not the global
    /// allocator (a probe allocation is not seen). Blocks while another
    /// window is open.
    pub fn open() -> Option<Window> {
        let guard = WINDOW.lock().unwrap_or_else(|e| e.into_inner());
        SEEN.store(false, Ordering::SeqCst);
        COUNTING.store(true, Ordering::SeqCst);
        drop(std::hint::black_box(Box::new([0u8; 64])));
        if !SEEN.load(Ordering::SeqCst) {
            COUNTING.store(false, Ordering::SeqCst);
            return None;
        }
        Some(Window {
            base: Self::now(),
            _one_at_a_time: guard,
        })
    }

    fn now() -> Usage {
        Usage {
            bytes: LIVE_BYTES.load(Ordering::SeqCst),
            allocations: LIVE_ALLOCATIONS.load(Ordering::SeqCst),
        }
    }

    /// Live bytes and allocations since the window opened.
    pub fn usage(&self) -> Usage {
        let now = Self::now();
        Usage {
            bytes: now.bytes - self.base.bytes,
            allocations: now.allocations - self.base.allocations,
        }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        COUNTING.store(false, Ordering::SeqCst);
    }
}

/// Whether [`CountingAlloc`] is the global allocator of this process.
pub fn installed() -> bool {
    Window::open().is_some()
}

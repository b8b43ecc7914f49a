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
//! structure maps itself (thread stacks, `mmap`) is not seen by it either:
//! numatree maps the chunks its blocks are carved from itself, and counts
//! them at each `mmap` and `munmap`, less the chunks it gives back to the
//! system ([`numatree::mapped_bytes`]), which a window adds to its bytes
//! (whole chunks, as mapped); no other
//! contender keeps its data outside the allocator.
//!
//! Memory that a structure retires to an epoch collector (numatree's
//! replaced block versions, the skip list's replaced nodes, both to
//! `crossbeam-epoch`'s global collector) is freed later, by whichever thread
//! pins next: inside another contender's window, where it would subtract
//! from that contender's count. [`settle`] drives the collector until it
//! frees nothing more; the memory phase calls it before each window opens
//! and before it reads the count, and reports what settling freed (memory
//! retired but not yet reclaimed when the ingest returned).
//!
//! The binary installs the allocator (`#[global_allocator]` in `main.rs`);
//! where it is not installed (the library's own tests, another binary),
//! [`Window::open`] says so by returning `None`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

/// Whether allocations are counted now: the one word every allocation and
/// free reads. It has a cache-line pair of its own, so no write to a
/// neighbouring static (the counters below, or another crate's) can evict
/// it from the cores that read it.
static COUNTING: CacheLines<AtomicBool> = CacheLines(AtomicBool::new(false));
/// What the counted calls add up: bytes allocated minus bytes freed (signed:
/// a window may free memory allocated before it opened), allocations made
/// minus allocations freed, and whether any call was counted (which tells
/// [`Window::open`] that [`CountingAlloc`] is installed).
static COUNTS: CacheLines<Counts> = CacheLines(Counts {
    bytes: AtomicIsize::new(0),
    allocations: AtomicIsize::new(0),
    seen: AtomicBool::new(false),
});

/// The live counters.
struct Counts {
    bytes: AtomicIsize,
    allocations: AtomicIsize,
    seen: AtomicBool,
}

/// A value alone in its cache-line pair.
#[repr(align(128))]
struct CacheLines<T>(T);

/// One window at a time.
static WINDOW: Mutex<()> = Mutex::new(());

/// The global allocator of the bench binary: [`System`], counting live bytes
/// while a [`Window`] is open.
#[derive(Debug, Default)]
pub struct CountingAlloc;

#[inline]
fn count(bytes: isize, allocations: isize) {
    if COUNTING.0.load(Ordering::Relaxed) {
        let c = &COUNTS.0;
        c.bytes.fetch_add(bytes, Ordering::Relaxed);
        c.allocations.fetch_add(allocations, Ordering::Relaxed);
        c.seen.store(true, Ordering::Relaxed);
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
    /// Bytes allocated minus bytes freed since the window opened, with
    /// the bytes numatree mapped minus those it unmapped.
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
        COUNTS.0.seen.store(false, Ordering::SeqCst);
        COUNTING.0.store(true, Ordering::SeqCst);
        drop(std::hint::black_box(Box::new([0u8; 64])));
        if !COUNTS.0.seen.load(Ordering::SeqCst) {
            COUNTING.0.store(false, Ordering::SeqCst);
            return None;
        }
        Some(Window {
            base: Self::now(),
            _one_at_a_time: guard,
        })
    }

    fn now() -> Usage {
        let mapped = isize::try_from(numatree::mapped_bytes()).unwrap_or(isize::MAX);
        Usage {
            bytes: COUNTS.0.bytes.load(Ordering::SeqCst) + mapped,
            allocations: COUNTS.0.allocations.load(Ordering::SeqCst),
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
        COUNTING.0.store(false, Ordering::SeqCst);
    }
}

/// Whether [`CountingAlloc`] is the global allocator of this process.
pub fn installed() -> bool {
    Window::open().is_some()
}

/// Drives `crossbeam-epoch`'s global collector until 64 pins in a row
/// free nothing more (the count sets no new low; a pin may allocate and
/// free a little of its own) or 1,000,000 pins were made; returns the
/// bytes it saw freed while `window` counts (0 without a window). Each pin
/// may advance the epoch (nothing else is pinned between measurements) and
/// frees a few bags of garbage retired two epochs before.
pub fn settle(window: Option<&Window>) -> isize {
    const QUIET_PINS: usize = 64;
    let before = window.map_or(0, |w| w.usage().bytes);
    let mut low = before;
    let mut quiet = 0;
    for _ in 0..1_000_000 {
        crossbeam_epoch::pin().flush();
        let now = window.map_or(0, |w| w.usage().bytes);
        if now < low {
            low = now;
            quiet = 0;
        } else {
            quiet += 1;
            if quiet == QUIET_PINS {
                break;
            }
        }
    }
    before - low
}

/// Frees what dropped contenders left to the epoch collector, before the
/// next measurement starts, so that no timed phase pays for an earlier
/// contender's garbage (numatree leaves its replaced block versions there,
/// up to 100 bytes a point at high cardinality). Settles through a window
/// where the counting allocator is installed, else pins a fixed 4,096 times.
pub fn reclaim() {
    match Window::open() {
        Some(w) => {
            settle(Some(&w));
        }
        None => {
            for _ in 0..4_096 {
                crossbeam_epoch::pin().flush();
            }
        }
    }
    trim_heap();
}

/// Gives the heap's free memory back to the system (glibc keeps what a
/// dropped contender freed, and the next ingest would reuse those pages
/// already faulted in: a "cold" ingest after a big one would be partly
/// warm, by how much depending on what ran before it).
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns free heap pages to the system; it
    // is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

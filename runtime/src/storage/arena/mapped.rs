//! Where an arena's chunks come from: mapped directly on Linux (fresh
//! pages every time), else the allocator (see the `arena` module docs).

#[cfg(all(target_os = "linux", not(miri)))]
pub(super) use linux::{give_back, map, taken_again, unmap, MAPPED};
#[cfg(not(all(target_os = "linux", not(miri))))]
pub(super) use other::{give_back, map, taken_again, unmap, MAPPED};

/// Chunks mapped directly (Linux): fresh pages every time; huge ones
/// 2 MiB aligned and advised huge pages.
#[cfg(all(target_os = "linux", not(miri)))]
mod linux {
    use super::super::bound::HUGE_CHUNK;
    use super::super::MAPPED_BYTES;
    use std::ptr::{self, NonNull};
    use std::sync::atomic::Ordering;

    /// Whether `map` makes chunks (else the allocator does).
    pub(in crate::storage::arena) const MAPPED: bool = true;

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
    pub(in crate::storage::arena) fn map(size: usize) -> *mut u8 {
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

    /// Returns a chunk's pages (or a page-aligned part of them) to the
    /// system (`MADV_DONTNEED`: the
    /// mapping stays, with its binding and its huge-page advice, and
    /// reads as zeros, faulted in again where it is written), and counts
    /// its bytes out of [`mapped_bytes`](crate::mapped_bytes) until
    /// [`taken_again`].
    ///
    /// # Safety
    /// Nothing reads or writes the chunk until it is carved again.
    /// Returns whether it was counted out (the advice was taken).
    pub(in crate::storage::arena) unsafe fn give_back(chunk: NonNull<u8>, size: usize) -> bool {
        // SAFETY: the caller's promise: nothing uses the chunk's contents.
        let done = unsafe { libc::madvise(chunk.as_ptr().cast(), size, libc::MADV_DONTNEED) };
        // Refused (locked memory, say), the pages simply stay, counted.
        if done == 0 {
            MAPPED_BYTES.fetch_sub(size, Ordering::Relaxed);
        }
        done == 0
    }

    /// Counts a chunk given back in again (it is carved again).
    pub(in crate::storage::arena) fn taken_again(size: usize) {
        MAPPED_BYTES.fetch_add(size, Ordering::Relaxed);
    }

    /// Unmaps a chunk `map(size)` made.
    ///
    /// # Safety
    /// `chunk` came from `map(size)`, is unmapped once, and nothing
    /// reaches into it any more.
    pub(in crate::storage::arena) unsafe fn unmap(chunk: NonNull<u8>, size: usize) {
        // SAFETY: the caller's promise: a whole mapping of `size`
        // bytes that `map` kept.
        unsafe { libc::munmap(chunk.as_ptr().cast(), size) };
        MAPPED_BYTES.fetch_sub(size, Ordering::Relaxed);
    }
}

/// Elsewhere (and under Miri, which models no `mmap`) the allocator
/// makes chunks, huge ones 2 MiB aligned, with no advice.
#[cfg(not(all(target_os = "linux", not(miri))))]
mod other {
    use std::ptr::NonNull;

    pub(in crate::storage::arena) const MAPPED: bool = false;

    pub(in crate::storage::arena) fn map(_size: usize) -> *mut u8 {
        unreachable!("chunks are the allocator's here")
    }

    pub(in crate::storage::arena) unsafe fn unmap(_chunk: NonNull<u8>, _size: usize) {
        unreachable!("chunks are the allocator's here")
    }

    /// The allocator's chunks stay as they are: nothing to return.
    pub(in crate::storage::arena) unsafe fn give_back(_chunk: NonNull<u8>, _size: usize) -> bool {
        false
    }

    /// Nothing is counted here.
    pub(in crate::storage::arena) fn taken_again(_size: usize) {}
}

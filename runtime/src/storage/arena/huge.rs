//! A node's huge chunks, sliced for its shards' arenas.
//!
//! Why one per node, not one per shard: an arena that took 2 MiB chunks
//! of its own left the unused tail of its last one mapped (and, in huge
//! pages, resident), up to 2 MiB a shard. A node of the 16-core device
//! machine has 32 shards: ~46 MiB of such tails in a 10.24 M point index
//! (15.5 bytes a point where 11.1 were used), 1.47x of 16 bytes at
//! 1,000,000 x 10. So the node maps the 2 MiB chunks (aligned, advised
//! huge pages, bound to the node before their first touch) and hands its
//! shards' arenas [`MAX_CHUNK`] slices of them: a page walk still ends in
//! a huge page, and what a node leaves unused is at most one huge chunk's
//! slices, plus the rest of the slice each arena is carving.
//!
//! Arenas go with their node (the node's shards are dropped together), so
//! a dropped arena's slices are not handed out again. A shard built on its
//! own (`ShardStorage::new`: tests, and a `Default` shard) has huge chunks
//! of its own, and so up to one partly used 2 MiB chunk.
//!
//! An arena treats a slice as one of its chunks (it counts the slice's
//! pieces, and gives its pages back to the system when it empties: a
//! `madvise` that splits the huge page, rarely), but never unmaps it: the
//! huge chunks are unmapped whole when the last arena of the node holding
//! them is gone (each holds the [`HugeChunks`] by an `Arc`).

use std::ptr::NonNull;
use std::sync::{Mutex, PoisonError};

use super::bound::{free_chunk, new_chunk, HUGE_CHUNK, MAX_CHUNK};
use crate::slot::Binder;

/// The huge chunks of one node, and how far the newest is sliced.
pub(crate) struct HugeChunks {
    binder: Binder,
    state: Mutex<Sliced>,
}

#[derive(Default)]
struct Sliced {
    /// Every huge chunk mapped, oldest first.
    chunks: Vec<NonNull<u8>>,
    /// Bytes of the newest chunk handed out as slices.
    used: usize,
}

// SAFETY: the pointers are to huge chunks this value maps (in `slice`)
// and unmaps (in `drop`) only; it never reads or writes their memory,
// and reaches its list under the mutex only. `Binder` is `Send + Sync`.
unsafe impl Send for HugeChunks {}
// SAFETY: as above: the list is behind the mutex.
unsafe impl Sync for HugeChunks {}

impl HugeChunks {
    /// No chunk yet; the chunks mapped later are bound by `binder`.
    pub(crate) fn new(binder: Binder) -> Self {
        HugeChunks {
            binder,
            state: Mutex::new(Sliced::default()),
        }
    }

    /// A fresh [`MAX_CHUNK`] slice of a huge chunk, mapping (and binding)
    /// a new huge chunk when the newest is all handed out. Only merges
    /// call this (once per slice an arena starts), so a merge of another
    /// shard of the node that needs a slice while a chunk is mapped waits
    /// for that system call; readers never do.
    pub(crate) fn slice(&self) -> NonNull<u8> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let newest = match state.chunks.last() {
            Some(&chunk) if state.used < HUGE_CHUNK => chunk,
            _ => {
                let chunk = new_chunk(&self.binder, HUGE_CHUNK);
                state.chunks.push(chunk);
                state.used = 0;
                chunk
            }
        };
        // SAFETY: `used + MAX_CHUNK <= HUGE_CHUNK` (a multiple of it):
        // inside the newest chunk, and never handed out before.
        let slice = unsafe { newest.add(state.used) };
        state.used += MAX_CHUNK;
        slice
    }

    /// Where each huge chunk starts, oldest first.
    #[cfg(test)]
    pub(crate) fn starts(&self) -> Vec<usize> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.chunks.iter().map(|c| c.as_ptr() as usize).collect()
    }
}

impl Drop for HugeChunks {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        for &chunk in &state.chunks {
            // SAFETY: made by `new_chunk(HUGE_CHUNK)`; every arena that
            // was handed slices of it is gone (each held this value), and
            // with it every piece in them, so nothing points into it.
            unsafe { free_chunk(chunk, HUGE_CHUNK) };
        }
    }
}

const _: () = assert!(HUGE_CHUNK.is_multiple_of(MAX_CHUNK));

//! A merge run's replaced cell words, destroyed together (see the
//! parent module's docs): one deferred destruction per chunk of them,
//! their short blocks back to the arena in one batch.

use std::ptr;

use super::tagged::destroy;
use crate::storage::arena::ReturnBatch;
use crate::sync::Guard;

/// Cells' words a merge run replaced (`store_retiring`), destroyed
/// together once no reader can hold them: a deferred destruction for
/// every [`Retired::CHUNK`] of them (not one each), the short blocks
/// among them given back to their arena in one batch (see the cell
/// docs). Words not deferred yet when the list is dropped leak (a
/// panic's path): they are never freed while a reader may hold them.
#[derive(Debug, Default)]
pub(crate) struct Retired {
    /// Gathered, not deferred yet.
    words: Vec<ptr::NonNull<()>>,
    /// Words gathered, and deferred destructions made, since the list
    /// was made.
    gathered: usize,
    deferred: usize,
}

// SAFETY: the words are what cells owned: boxed `Series` and short
// blocks' handles, both `Send`; the list is their only owner.
unsafe impl Send for Retired {}

impl Retired {
    /// Words one deferred destruction frees at most: it runs within
    /// one collection, on whichever thread collects (a reader's too),
    /// which the collector otherwise keeps to a few bags of 64.
    const CHUNK: usize = 512;

    /// Adds `word`, which a store just swapped out of its cell (under
    /// `guard`); a full chunk is deferred at once.
    pub(super) fn push(&mut self, word: Option<ptr::NonNull<()>>, guard: &Guard) {
        let Some(word) = word else {
            return;
        };
        self.words.push(word);
        self.gathered += 1;
        if self.words.len() == Self::CHUNK {
            self.defer_gathered(guard);
        }
    }

    /// Defers what is gathered and not deferred yet; returns the words
    /// the list gathered and the deferred destructions it made, in all.
    pub(crate) fn finish(mut self, guard: &Guard) -> (usize, usize) {
        self.defer_gathered(guard);
        (self.gathered, self.deferred)
    }

    /// Hands the gathered words to `guard`'s collector: destroyed after
    /// every reader pinned now has unpinned.
    fn defer_gathered(&mut self, guard: &Guard) {
        if self.words.is_empty() {
            return;
        }
        let words = std::mem::take(&mut self.words);
        self.deferred += 1;
        // SAFETY: each word was swapped out of its cell before now, so
        // no load made after this finds it, and only readers pinned
        // before now can hold it; the destruction runs after all of
        // them have unpinned (on whichever thread collects: a `Series`
        // and a block are `Send`), once (the words move into it).
        unsafe {
            guard.defer_unchecked(move || {
                let mut batch = ReturnBatch::default();
                for word in words {
                    destroy(word.as_ptr(), &mut batch);
                }
            });
        }
    }
}

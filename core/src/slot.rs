//! Fixed-capacity slot buffers: where a writer appends records before they
//! are sealed, sorted and merged.
//!
//! A slot never grows and never allocates. A push into a full (or sealed)
//! slot hands the record back instead of panicking, so the caller decides
//! what "full" means (the runtime seals the slot and takes a fresh one).
//!
//! The buffer is generic over where its records live, so one type serves
//! both kinds of user: an embedded user keeps `N` records inline
//! ([`ArraySlot<N>`](ArraySlot), capacity fixed at compile time), and the
//! runtime hands it a node-bound heap buffer whose length is the capacity
//! chosen at run time (`SlotBuffer<Box<[Record]>>`). The push, seal and
//! sort code is the same for both.

use crate::error::Error;
use crate::record::Record;
use crate::sort::{sort_dedup, sort_dedup_either, SortScratch, Sorted};

/// A buffer of at most `capacity` records, filled by one writer. `S` holds
/// the records; its length is the capacity.
///
/// States: *filling* (accepts pushes) -> *sealed* (read-only, ready to
/// sort and merge) -> cleared back to *filling*.
#[derive(Clone, Debug, Default)]
pub struct SlotBuffer<S> {
    storage: S,
    /// Records held: `storage[..len]`.
    len: usize,
    sealed: bool,
}

/// A slot of `N` records stored inline: no heap, capacity fixed at compile time.
pub type ArraySlot<const N: usize> = SlotBuffer<[Record; N]>;

impl<const N: usize> SlotBuffer<[Record; N]> {
    /// An empty slot of `N` inline records, in the filling state.
    pub const fn new() -> Self {
        SlotBuffer {
            storage: [Record::ZERO; N],
            len: 0,
            sealed: false,
        }
    }

    /// Seals the slot, sorts its records by key and drops all but the last
    /// insert of each key (a later insert of the same key wins). Returns the
    /// sorted, strictly ascending run, ready for [`Tree::merge_run`](crate::Tree::merge_run).
    pub fn sort(&mut self, scratch: &mut SortScratch<N>) -> &[Record] {
        let (records, counts) = scratch.parts();
        // Scratch is typed to N, so it is never too small.
        match self.sort_with(records, counts, |_| 0) {
            Ok(_) => self.as_slice(),
            Err(_) => unreachable!("scratch of N records sorts a slot of N"),
        }
    }
}

impl<S: AsRef<[Record]> + AsMut<[Record]>> SlotBuffer<S> {
    /// An empty slot over `storage`, whose length is the capacity. What
    /// `storage` holds is ignored and overwritten by pushes.
    pub fn with_storage(storage: S) -> Self {
        SlotBuffer {
            storage,
            len: 0,
            sealed: false,
        }
    }

    /// Appends a record. Returns it back as `Err` when the slot is full or sealed.
    #[inline]
    pub fn push(&mut self, record: Record) -> Result<(), Record> {
        let storage = self.storage.as_mut();
        if self.sealed || self.len >= storage.len() {
            return Err(record);
        }
        storage[self.len] = record;
        self.len += 1;
        Ok(())
    }

    /// Appends as many of `records` as fit, in order; returns how many.
    /// A sealed slot takes none.
    pub fn extend_from_slice(&mut self, records: &[Record]) -> usize {
        if self.sealed {
            return 0;
        }
        let storage = self.storage.as_mut();
        let n = records.len().min(storage.len() - self.len);
        storage[self.len..self.len + n].copy_from_slice(&records[..n]);
        self.len += n;
        n
    }

    /// Records held, in insertion order until a sort runs.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the slot holds no record.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether another push would be refused for lack of room.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len >= self.capacity()
    }

    /// The fixed capacity, in records.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.storage.as_ref().len()
    }

    /// Stops accepting pushes: the slot is ready to be sorted and merged.
    pub fn seal(&mut self) {
        self.sealed = true;
    }

    /// Whether [`seal`](Self::seal) was called since the last clear.
    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// The records, in their current order.
    pub fn as_slice(&self) -> &[Record] {
        &self.storage.as_ref()[..self.len]
    }

    /// The whole storage, held records and free room alike (to find where
    /// its pages are, or to touch them all before use).
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Seals the slot and sorts it with caller-provided scratch, as
    /// [`sort_dedup`] does: records ordered by `(group(series), key)`, only
    /// the last insert of each key kept. Returns the run left in the slot.
    ///
    /// # Errors
    /// [`Error::ScratchTooSmall`] when `scratch` is shorter than the slot's
    /// records; the slot is then sealed but unsorted.
    pub fn sort_with(
        &mut self,
        scratch: &mut [Record],
        counts: &mut [u32],
        group: impl Fn(u32) -> u8,
    ) -> Result<&[Record], Error> {
        self.sealed = true;
        let records = &mut self.storage.as_mut()[..self.len];
        self.len = sort_dedup(records, scratch, counts, group)?;
        Ok(self.as_slice())
    }

    /// [`sort_with`](Self::sort_with), with `scratch` of the slot's own
    /// storage type: where the sort leaves its run in the scratch (the
    /// common case: a counting sort, no key twice), the slot and the
    /// scratch trade storage instead of copying the run back. The slot's
    /// capacity is then the scratch's length, so give a scratch as long as
    /// the slot (a longer one is copied from, not traded: the capacity
    /// stays). Returns the run left in the slot.
    ///
    /// # Errors
    /// [`Error::ScratchTooSmall`] when `scratch` is shorter than the slot's
    /// records; the slot is then sealed but unsorted.
    pub fn sort_swapping(
        &mut self,
        scratch: &mut S,
        counts: &mut [u32],
        group: impl Fn(u32) -> u8,
    ) -> Result<&[Record], Error> {
        self.sealed = true;
        let capacity = self.capacity();
        let records = &mut self.storage.as_mut()[..self.len];
        self.len = match sort_dedup_either(records, scratch.as_mut(), counts, group)? {
            Sorted::InRecords(len) => len,
            Sorted::InScratch(len) if scratch.as_ref().len() == capacity => {
                core::mem::swap(&mut self.storage, scratch);
                len
            }
            Sorted::InScratch(len) => {
                records[..len].copy_from_slice(&scratch.as_ref()[..len]);
                len
            }
        };
        Ok(self.as_slice())
    }

    /// Empties the slot and returns it to the filling state.
    pub fn clear(&mut self) {
        self.len = 0;
        self.sealed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    #[test]
    fn push_reports_full_instead_of_panicking() {
        let mut slot: ArraySlot<2> = SlotBuffer::new();
        assert!(slot.push(Record::new(1, 1, 1)).is_ok());
        assert!(slot.push(Record::new(1, 2, 2)).is_ok());
        assert!(slot.is_full());
        assert_eq!(slot.push(Record::new(1, 3, 3)), Err(Record::new(1, 3, 3)));
        assert_eq!(slot.len(), 2);
    }

    #[test]
    fn sealed_slot_refuses_pushes_until_cleared() {
        let mut slot: ArraySlot<4> = SlotBuffer::new();
        slot.seal();
        assert!(slot.push(Record::new(1, 1, 1)).is_err());
        assert_eq!(slot.extend_from_slice(&[Record::new(1, 1, 1)]), 0);
        slot.clear();
        assert!(!slot.is_sealed());
        assert!(slot.push(Record::new(1, 1, 1)).is_ok());
    }

    #[test]
    fn a_heap_slot_takes_its_capacity_from_its_storage() {
        let mut slot = SlotBuffer::with_storage(vec![Record::ZERO; 3].into_boxed_slice());
        assert_eq!(slot.capacity(), 3);
        assert!(slot.is_empty());
        let batch = [Record::new(1, 1, 1), Record::new(1, 2, 2)];
        assert_eq!(slot.extend_from_slice(&batch), 2);
        assert_eq!(slot.extend_from_slice(&batch), 1);
        assert!(slot.is_full());
        assert_eq!(slot.as_slice(), &[batch[0], batch[1], batch[0]]);
        assert_eq!(slot.storage().len(), 3);
    }

    #[test]
    fn sort_with_a_short_scratch_is_an_error_not_a_panic() {
        let mut slot = SlotBuffer::with_storage([Record::ZERO; 4]);
        slot.push(Record::new(2, 0, 0)).unwrap();
        slot.push(Record::new(1, 0, 0)).unwrap();
        let mut scratch = [Record::ZERO; 1];
        assert_eq!(
            slot.sort_with(&mut scratch, &mut [], |_| 0),
            Err(Error::ScratchTooSmall {
                needed: 2,
                provided: 1
            })
        );
        assert_eq!(slot.len(), 2);
    }

    #[test]
    fn a_swapping_sort_trades_storage_only_with_a_scratch_of_its_capacity() {
        let rounds = [
            Record::new(2, 0, 1),
            Record::new(1, 0, 2),
            Record::new(2, 1, 3),
            Record::new(1, 1, 4),
        ];
        let sorted = [rounds[1], rounds[3], rounds[0], rounds[2]];
        let fill = || {
            let mut slot = SlotBuffer::with_storage(vec![Record::ZERO; 4].into_boxed_slice());
            assert_eq!(slot.extend_from_slice(&rounds), 4);
            slot
        };
        let mut counts = [0u32; 8];
        // Same capacity: traded, the slot's old buffer is the scratch now.
        let mut slot = fill();
        let mut scratch = vec![Record::ZERO; 4].into_boxed_slice();
        let (slot_buf, scratch_buf) = (slot.storage().as_ptr(), scratch.as_ptr());
        assert_eq!(
            slot.sort_swapping(&mut scratch, &mut counts, |_| 0),
            Ok(&sorted[..])
        );
        assert_eq!(
            (slot.storage().as_ptr(), scratch.as_ptr()),
            (scratch_buf, slot_buf)
        );
        assert!(slot.is_sealed());
        // A longer scratch: copied from, the capacity stays.
        let mut slot = fill();
        let mut scratch = vec![Record::ZERO; 6].into_boxed_slice();
        let slot_buf = slot.storage().as_ptr();
        assert_eq!(
            slot.sort_swapping(&mut scratch, &mut counts, |_| 0),
            Ok(&sorted[..])
        );
        assert_eq!((slot.storage().as_ptr(), slot.capacity()), (slot_buf, 4));
        // A key twice: deduplicated into the slot, nothing traded.
        let mut slot = fill();
        slot.clear();
        assert_eq!(slot.extend_from_slice(&rounds[..3]), 3);
        slot.push(Record::new(2, 1, 9)).unwrap();
        let mut scratch = vec![Record::ZERO; 4].into_boxed_slice();
        let slot_buf = slot.storage().as_ptr();
        let run = slot
            .sort_swapping(&mut scratch, &mut counts, |_| 0)
            .unwrap();
        assert_eq!(run, &[rounds[1], rounds[0], Record::new(2, 1, 9)]);
        assert_eq!(slot.storage().as_ptr(), slot_buf);
        // Too short: an error, nothing moved.
        let mut slot = fill();
        let mut scratch = vec![Record::ZERO; 3].into_boxed_slice();
        assert!(slot
            .sort_swapping(&mut scratch, &mut counts, |_| 0)
            .is_err());
        assert_eq!(slot.as_slice(), &rounds);
    }

    #[test]
    fn sort_orders_by_key_and_keeps_the_last_insert_of_a_key() {
        let mut slot: ArraySlot<8> = SlotBuffer::new();
        for r in [
            Record::new(2, 5, 1),
            Record::new(1, 9, 2),
            Record::new(2, 5, 3),
            Record::new(1, -4, 4),
            Record::new(2, 5, 5),
        ] {
            slot.push(r).unwrap();
        }
        let mut scratch = SortScratch::new();
        let run = slot.sort(&mut scratch);
        assert_eq!(
            run,
            &[
                Record::new(1, -4, 4),
                Record::new(1, 9, 2),
                Record::new(2, 5, 5)
            ]
        );
        assert!(slot.is_sealed());
    }

    /// Regression: series 0 and `u32::MAX` in one slot overflowed the
    /// span computation of the counting sort on 32-bit targets.
    #[test]
    fn series_zero_and_u32_max_in_one_slot_sort_without_overflow() {
        let mut slot: ArraySlot<8> = SlotBuffer::new();
        for r in [
            Record::new(u32::MAX, 2, 1),
            Record::new(0, 1, 2),
            Record::new(u32::MAX, 1, 3),
            Record::new(0, 1, 4),
        ] {
            slot.push(r).unwrap();
        }
        let mut scratch = SortScratch::new();
        assert_eq!(
            slot.sort(&mut scratch),
            &[
                Record::new(0, 1, 4),
                Record::new(u32::MAX, 1, 3),
                Record::new(u32::MAX, 2, 1)
            ]
        );
    }
}

//! Fixed-capacity slot buffers: where a writer appends records before they
//! are sealed, sorted and merged.
//!
//! A slot never grows and never allocates. A push into a full (or sealed)
//! slot hands the record back instead of panicking, so the caller decides
//! what "full" means (the runtime seals the slot and takes a fresh one).

use crate::record::Record;
use crate::sort::{sort_dedup, SortScratch};

/// A buffer of at most `N` records, filled by one writer.
///
/// States: *filling* (accepts pushes) -> *sealed* (read-only, ready to
/// sort and merge) -> cleared back to *filling*.
#[derive(Clone, Debug, Default)]
pub struct SlotBuffer<const N: usize> {
    records: heapless::Vec<Record, N>,
    sealed: bool,
}

impl<const N: usize> SlotBuffer<N> {
    /// An empty slot in the filling state.
    pub const fn new() -> Self {
        SlotBuffer {
            records: heapless::Vec::new(),
            sealed: false,
        }
    }

    /// Appends a record. Returns it back as `Err` when the slot is full or sealed.
    #[inline]
    pub fn push(&mut self, record: Record) -> Result<(), Record> {
        if self.sealed {
            return Err(record);
        }
        self.records.push(record)
    }

    /// Records held, in insertion order until [`sort`](Self::sort) runs.
    #[inline]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the slot holds no record.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Whether another push would be refused for lack of room.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.records.len() == N
    }

    /// The fixed capacity, in records.
    #[inline]
    pub const fn capacity(&self) -> usize {
        N
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
        &self.records
    }

    /// Seals the slot, sorts its records by key and drops all but the last
    /// insert of each key (a later insert of the same key wins). Returns the
    /// sorted, strictly ascending run, ready for [`Tree::merge_run`](crate::Tree::merge_run).
    pub fn sort(&mut self, scratch: &mut SortScratch<N>) -> &[Record] {
        self.sealed = true;
        let (records, counts) = scratch.parts();
        // Scratch is typed to N, so it is never too small.
        let len = match sort_dedup(&mut self.records, records, counts, |_| 0) {
            Ok(len) => len,
            Err(_) => self.records.len(),
        };
        self.records.truncate(len);
        &self.records
    }

    /// Empties the slot and returns it to the filling state.
    pub fn clear(&mut self) {
        self.records.clear();
        self.sealed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_reports_full_instead_of_panicking() {
        let mut slot: SlotBuffer<2> = SlotBuffer::new();
        assert!(slot.push(Record::new(1, 1, 1)).is_ok());
        assert!(slot.push(Record::new(1, 2, 2)).is_ok());
        assert!(slot.is_full());
        assert_eq!(slot.push(Record::new(1, 3, 3)), Err(Record::new(1, 3, 3)));
        assert_eq!(slot.len(), 2);
    }

    #[test]
    fn sealed_slot_refuses_pushes_until_cleared() {
        let mut slot: SlotBuffer<4> = SlotBuffer::new();
        slot.seal();
        assert!(slot.push(Record::new(1, 1, 1)).is_err());
        slot.clear();
        assert!(!slot.is_sealed());
        assert!(slot.push(Record::new(1, 1, 1)).is_ok());
    }

    #[test]
    fn sort_orders_by_key_and_keeps_the_last_insert_of_a_key() {
        let mut slot: SlotBuffer<8> = SlotBuffer::new();
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
}

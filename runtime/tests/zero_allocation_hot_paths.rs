//! The per-record path allocates nothing: a counting global allocator shows
//! that a full 4,096-record slot sorts and merges into a fixed-store tree
//! with zero heap allocations, and that inserts into an open runtime slot
//! allocate nothing either. The count is per thread, so merge threads
//! starting in the background do not blur it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use numatree::Index;
use numatree_core::{ArrayStore, Record, SlotBuffer, Tree};

struct Counting;

thread_local! {
    /// Allocations made by this thread (const-initialised: reading it never allocates).
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; it only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn full_slot_sort_and_merge_and_runtime_inserts_allocate_nothing() {
    // The runtime's slot type: a heap buffer whose length is the capacity.
    let mut slot = SlotBuffer::with_storage(vec![Record::ZERO; 4096].into_boxed_slice());
    let mut scratch = vec![Record::ZERO; 4096];
    let mut counts = vec![0u32; 1 << 16];
    let mut tree: Box<Tree<ArrayStore<160>>> = Box::new(Tree::new(ArrayStore::new()));
    // 64 series; every 7th point arrives late, re-sending an earlier timestamp.
    let record = |i: u32| {
        Record::new(
            i % 64,
            i64::from(i / 64) - i64::from(i.is_multiple_of(7)),
            u64::from(i),
        )
    };
    let distinct: std::collections::HashSet<_> = (0..4096).map(|i| record(i).key).collect();
    let n = allocations_during(|| {
        for i in 0..4096u32 {
            slot.push(record(i)).unwrap();
        }
        let run = slot.sort_with(&mut scratch, &mut counts, |_| 0).unwrap();
        tree.merge_run(run).unwrap();
    });
    assert_eq!(n, 0, "core sort + merge of a full slot allocated");
    tree.validate().unwrap();
    assert_eq!(tree.len(), distinct.len());

    // The merge threads' way: a scratch of the slot's own storage type,
    // traded with the slot when the sorted run ends in it.
    let mut swap_scratch = vec![Record::ZERO; 4096].into_boxed_slice();
    for late in [false, true] {
        slot.clear();
        let n = allocations_during(|| {
            for i in 0..4096u32 {
                let r = record(i);
                let ts = if late { r.key.ts } else { i64::from(i / 64) };
                slot.push(Record::new(r.key.series, ts, r.value)).unwrap();
            }
            let run = slot
                .sort_swapping(&mut swap_scratch, &mut counts, |_| 0)
                .unwrap();
            assert!(run.windows(2).all(|w| w[0].key < w[1].key));
        });
        assert_eq!(
            n, 0,
            "a swapping sort of a full slot allocated (late points: {late})"
        );
    }

    let index = Index::builder().slot_capacity(8192).build().unwrap();
    let mut w = index.writer();
    w.insert(0, -1, 0).unwrap(); // takes the slot: the one allocation per slot
    let n = allocations_during(|| {
        for ts in 0..8000 {
            w.insert((ts % 100) as u32, ts, 1).unwrap();
        }
    });
    assert_eq!(n, 0, "inserts into an open slot allocated");
}

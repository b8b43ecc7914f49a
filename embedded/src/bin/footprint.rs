//! What the core costs on a Cortex-M4F: the workload ingested through a slot,
//! a sort and a tree over a fixed array store until the store is full, with
//! instructions counted per phase and the worst-case stack of `merge_run`
//! measured (see `numatree_embedded::measure`). Flash and RAM come from this
//! ELF compared with `baseline`'s.
#![no_std]
#![no_main]

use core::mem::size_of;

use cortex_m_rt::entry;
use numatree_core::{ArraySlot, ArrayStore, Error, Record, SortScratch, Tree};
use numatree_embedded::clock::InstructionClock;
use numatree_embedded::measure::{self, Pipeline};
use numatree_embedded::{SLOT_RECORDS, STORE_NODES};

type StoreTree = Tree<ArrayStore<STORE_NODES>>;

/// The core, wired as an embedded user wires it: everything in statics.
struct Core {
    slot: &'static mut ArraySlot<SLOT_RECORDS>,
    scratch: &'static mut SortScratch<SLOT_RECORDS>,
    tree: &'static mut StoreTree,
}

impl Pipeline for Core {
    fn push(&mut self, record: Record) -> Result<(), Record> {
        self.slot.push(record)
    }

    fn sort(&mut self) -> usize {
        self.slot.sort(self.scratch).len()
    }

    fn merge(&mut self) -> Result<(), usize> {
        // After `sort` the slot holds the sorted run.
        match self.tree.merge_run(self.slot.as_slice()) {
            Ok(_) => Ok(()),
            Err(Error::Full { applied }) => Err(applied),
            Err(e) => panic!("merge_run of a sorted run failed: {e}"),
        }
    }

    fn clear_slot(&mut self) {
        self.slot.clear();
    }

    fn reset(&mut self) {
        self.slot.clear();
        self.tree.clear();
    }

    fn get(&self, series: u32, ts: i64) -> Option<u64> {
        self.tree.get(series, ts)
    }

    fn scan(&self, series: u32, lo: i64, hi: i64) -> usize {
        self.tree.range(series, lo..hi).count()
    }

    fn height(&self) -> usize {
        self.tree.height()
    }

    fn ram_bytes(&self) -> [(&'static str, usize); 3] {
        [
            ("slot", size_of::<ArraySlot<SLOT_RECORDS>>()),
            ("scratch", size_of::<SortScratch<SLOT_RECORDS>>()),
            ("tree", size_of::<StoreTree>()),
        ]
    }
}

#[entry]
fn main() -> ! {
    let peripherals = cortex_m::Peripherals::take().expect("main runs once");
    let clock = InstructionClock::start(peripherals.SYST);
    let mut core = Core {
        slot: cortex_m::singleton!(: ArraySlot<SLOT_RECORDS> = ArraySlot::new())
            .expect("main runs once"),
        scratch: cortex_m::singleton!(: SortScratch<SLOT_RECORDS> = SortScratch::new())
            .expect("main runs once"),
        tree: cortex_m::singleton!(: StoreTree = Tree::new(ArrayStore::new()))
            .expect("main runs once"),
    };
    measure::run(&mut core, &clock)
}

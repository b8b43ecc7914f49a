//! `footprint` without the core: the same harness, printing and workload
//! with a stand-in pipeline that only touches the records. Built, never run:
//! `footprint`'s sections minus this ELF's are the core's own flash and RAM.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use numatree_core::Record;
use numatree_embedded::clock::InstructionClock;
use numatree_embedded::measure::{self, Pipeline};
use numatree_embedded::SLOT_RECORDS;

/// Counts and checksums records, so the workload is not optimized away.
struct StandIn {
    len: usize,
    checksum: u64,
}

impl Pipeline for StandIn {
    fn push(&mut self, record: Record) -> Result<(), Record> {
        if self.len == SLOT_RECORDS {
            return Err(record);
        }
        self.len += 1;
        self.checksum = self.checksum.rotate_left(5) ^ record.value;
        Ok(())
    }

    fn sort(&mut self) -> usize {
        self.len
    }

    fn merge(&mut self) -> Result<(), usize> {
        core::hint::black_box(self.checksum);
        Ok(())
    }

    fn clear_slot(&mut self) {
        self.len = 0;
    }

    fn reset(&mut self) {
        self.len = 0;
    }

    fn get(&self, series: u32, ts: i64) -> Option<u64> {
        core::hint::black_box(self.checksum ^ u64::from(series) ^ ts as u64).checked_sub(1)
    }

    fn scan(&self, series: u32, lo: i64, hi: i64) -> usize {
        core::hint::black_box((self.checksum ^ u64::from(series)) as usize ^ (hi - lo) as usize)
    }

    fn height(&self) -> usize {
        0
    }

    fn ram_bytes(&self) -> [(&'static str, usize); 3] {
        [("slot", 0), ("scratch", 0), ("tree", 0)]
    }
}

#[entry]
fn main() -> ! {
    let peripherals = cortex_m::Peripherals::take().expect("main runs once");
    let clock = InstructionClock::start(peripherals.SYST);
    measure::run(
        &mut StandIn {
            len: 0,
            checksum: 0,
        },
        &clock,
    )
}

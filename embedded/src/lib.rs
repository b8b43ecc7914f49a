//! numatree-core on a Cortex-M4F, as an embedded user runs it: the shared
//! parts of the firmware that `cargo xtask embedded` builds for
//! `thumbv7em-none-eabihf` and runs in QEMU (`mps2-an386`).
//!
//! Three binaries share this library:
//! - `check`: records pushed into a slot, sorted, merged into a tree over a
//!   fixed array store until the store reports full, then every point lookup
//!   and a set of range scans compared with an oracle computed from the
//!   workload's definition, never from the tree. One `PASS`/`FAIL` line per
//!   check, a summary line, and a semihosting exit status QEMU passes on.
//! - `footprint`: the same ingest path with the stack painted around every
//!   `merge_run` (worst-case stack) and instructions counted per phase
//!   (`FOOTPRINT` lines).
//! - `baseline`: the `footprint` harness without any call into the core; the
//!   difference of the two ELFs' sections is the core's own flash and RAM.
//!
//! Why an emulator: the core is 32-bit clean only if it is *run* on a 32-bit
//! target, and a user asks what it costs on a microcontroller-class CPU.
//! No heap anywhere: nothing here links an allocator.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod clock;
pub mod measure;
pub mod report;
pub mod stack;
pub mod workload;

use cortex_m_rt::{exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hprintln};

/// Records one slot holds: the `N` of `ArraySlot<N>` and `SortScratch<N>`.
pub const SLOT_RECORDS: usize = 256;

/// Nodes of the main tree's `ArrayStore<CAP>`. With the default 64-record
/// leaves and 64-child inner nodes, 80 nodes let the tree reach height 3
/// (the root splits at 65 leaves), so the ingest runs every merge path:
/// append, in-leaf merge, leaf split, inner split and new root.
pub const STORE_NODES: usize = 80;

/// Prints `FAIL panic: ..` and exits with a failure status: a panic in the
/// core (an overflow, an index out of bounds) fails the run with its message
/// instead of hanging until the timeout.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    hprintln!("FAIL panic: {}", info);
    exit(false)
}

/// A fault (a bad memory access, an undefined instruction) fails the run
/// with the faulting frame instead of hanging until the timeout.
#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    hprintln!("FAIL hard-fault: {:?}", frame);
    exit(false)
}

/// Ends the program through semihosting: QEMU exits with status 0 when
/// `success`, 1 otherwise.
pub fn exit(success: bool) -> ! {
    debug::exit(if success {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Only reached without a semihosting host (a debugger that ignores exit).
    loop {
        cortex_m::asm::bkpt();
    }
}

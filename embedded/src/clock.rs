//! Counting instructions with SysTick under QEMU's `-icount shift=0`.
//!
//! Wall time in an emulator says nothing about a microcontroller, but with
//! `-icount shift=0` QEMU advances its virtual clock by exactly 1 ns per
//! executed instruction, and SysTick (core clock, 25 MHz on mps2-an386)
//! counts that virtual time: one tick per 40 instructions. The ratio is not
//! assumed: [`InstructionClock::start`] measures it on a loop of known
//! length (`cortex_m::asm::delay(n)` executes `2 * (n + 1)` instructions:
//! `subs`, `bne`), so a run without `-icount` shows up as a wrong ratio.

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;

/// SysTick is a 24-bit down-counter.
const SYST_MASK: u32 = 0x00FF_FFFF;

/// Iterations of the calibration loop (2,000,002 instructions).
const CALIBRATION_LOOPS: u32 = 1_000_000;

/// SysTick running free from the core clock, with a measured
/// instructions-per-tick ratio.
pub struct InstructionClock {
    /// Instructions per tick, times 1,000 (40,000 under `-icount shift=0`).
    milli_instructions_per_tick: u64,
}

/// A point in time, in ticks (SysTick's current value).
#[derive(Clone, Copy, Debug)]
pub struct Instant(u32);

impl InstructionClock {
    /// Starts SysTick (no interrupt) and calibrates it.
    pub fn start(mut syst: SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(SYST_MASK);
        syst.clear_current();
        syst.enable_counter();
        let mut clock = InstructionClock {
            milli_instructions_per_tick: 1_000,
        };
        let start = clock.now();
        cortex_m::asm::delay(CALIBRATION_LOOPS);
        let ticks = clock.ticks_since(start).max(1);
        let instructions = 2 * (CALIBRATION_LOOPS as u64 + 1);
        clock.milli_instructions_per_tick = instructions * 1_000 / ticks;
        clock
    }

    /// Now.
    #[inline(always)]
    pub fn now(&self) -> Instant {
        Instant(SYST::get_current())
    }

    /// Ticks since `start`; valid for intervals under 2^24 ticks (about
    /// 670 million instructions).
    #[inline(always)]
    pub fn ticks_since(&self, start: Instant) -> u64 {
        (start.0.wrapping_sub(SYST::get_current()) & SYST_MASK) as u64
    }

    /// Instructions executed since `start`, to within one tick.
    #[inline(always)]
    pub fn instructions_since(&self, start: Instant) -> u64 {
        self.ticks_since(start) * self.milli_instructions_per_tick / 1_000
    }

    /// The calibrated ratio, in instructions per tick times 1,000.
    pub fn milli_instructions_per_tick(&self) -> u64 {
        self.milli_instructions_per_tick
    }
}

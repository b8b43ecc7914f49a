//! Stack painting: how deep a call goes, measured rather than estimated.
//!
//! [`paint`] fills a window of the free stack below the caller's stack
//! pointer with a pattern; after the call under test, [`Painted::used`]
//! finds the lowest word no longer holding the pattern. The distance from
//! the stack pointer at painting time to that word is the call's stack
//! high-water mark (exact to a word, unless the call happened to write the
//! pattern itself, which could only under-report by the words after it).

use core::ptr;

/// The pattern painted on free stack.
const PAINT: u32 = 0xDEAD_C0DE;

/// Bytes left unpainted just below the stack pointer: room for `paint`'s own
/// use of the stack, if any.
const GUARD: usize = 64;

/// Bytes painted below the guard; a call deeper than this is reported as
/// an overflow of the window, not measured.
pub const WINDOW: usize = 32 * 1024;

extern "C" {
    /// End of `.bss`/`.uninit` (cortex-m-rt's link.x): the stack may grow
    /// down to here and no further; below it lie the program's statics.
    static __sheap: u32;
}

/// A painted window of stack, from `bottom` up to `top` (exclusive).
#[derive(Clone, Copy, Debug)]
pub struct Painted {
    sp: usize,
    bottom: usize,
    top: usize,
}

/// Paints [`WINDOW`] bytes of free stack below the caller's stack pointer.
/// Inlined, so the stack pointer is the caller's; no exception may be
/// enabled while a window is painted and measured (this firmware enables
/// none: SysTick runs without its interrupt).
#[inline(always)]
pub fn paint() -> Painted {
    let sp = cortex_m::register::msp::read() as usize;
    let top = (sp - GUARD) & !3;
    let bottom = top - WINDOW;
    let limit = ptr::addr_of!(__sheap) as usize;
    assert!(
        bottom >= limit,
        "stack window {bottom:#x}..{top:#x} reaches below the end of the statics at {limit:#x}"
    );
    let mut addr = bottom;
    while addr < top {
        // SAFETY: `addr` is 4-aligned and lies in `__sheap..sp - GUARD`: RAM
        // between the end of the statics (checked above) and the stack
        // pointer. Nothing live is there: there is no heap, the stack grows
        // down from above `sp`, and no exception handler runs (none is
        // enabled), so no frame exists below `sp` while this loop runs.
        unsafe { ptr::write_volatile(addr as *mut u32, PAINT) };
        addr += 4;
    }
    Painted { sp, bottom, top }
}

impl Painted {
    /// Bytes of stack below the painting stack pointer that were written
    /// since [`paint`]: `None` if the whole window was (the call went
    /// deeper than [`WINDOW`] and was not measured).
    pub fn used(&self) -> Option<usize> {
        let mut addr = self.bottom;
        while addr < self.top {
            // SAFETY: the same words `paint` wrote: 4-aligned RAM between the
            // end of the statics and the stack pointer, read after the call
            // under test returned, so no frame lives there now.
            let word = unsafe { ptr::read_volatile(addr as *const u32) };
            if word != PAINT {
                return (addr != self.bottom).then_some(self.sp - addr);
            }
            addr += 4;
        }
        // Nothing below the guard was touched.
        Some(self.sp - self.top)
    }
}

//! Software prefetch: a hint to start loading a cache line that a later
//! step will read, so that independent misses overlap instead of each
//! stalling in turn.

/// Starts loading the line at `p` into every cache level. A hint only: it
/// reads nothing the program sees and cannot fault, whatever `p` is (a
/// stale or dangling pointer costs a wasted load, nothing else).
#[inline]
pub(crate) fn prefetch_line<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` dereferences nothing: it cannot fault and
    // has no effect the program can observe, for any address.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

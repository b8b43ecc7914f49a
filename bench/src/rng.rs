//! Small deterministic random numbers for the generator: SplitMix64 and the
//! value hash. The workload needs reproducibility, not cryptographic quality,
//! so the crate carries its own ten lines instead of depending on `rand`.

/// The SplitMix64 finaliser: a cheap bijective 64-bit mix.
#[inline]
pub const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64: one 64-bit word of state, passes BigCrush, trivially seedable.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose whole future is fixed by `seed`.
    pub const fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// A generator for stream `stream` of `seed`: independent enough for
    /// per-series and per-thread streams.
    pub const fn stream(seed: u64, stream: u64) -> Self {
        SplitMix64::new(mix64(
            seed ^ mix64(stream.wrapping_add(0x9E37_79B9_7F4A_7C15)),
        ))
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }

    /// A number in `0..n` (`n > 0`), by multiply-shift; the bias is below
    /// `n / 2^64`, irrelevant here.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `threshold / 2^64` (see [`percent_threshold`]).
    #[inline]
    pub fn chance(&mut self, threshold: u64) -> bool {
        threshold != 0 && self.next_u64() < threshold
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// The [`SplitMix64::chance`] threshold for a probability given in percent
/// (clamped to `0..=100`).
pub fn percent_threshold(pct: f64) -> u64 {
    let p = (pct / 100.0).clamp(0.0, 1.0);
    if p >= 1.0 {
        u64::MAX
    } else {
        (p * 18_446_744_073_709_551_616.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_same_sequence_and_streams_differ() {
        let a: Vec<u64> = {
            let mut r = SplitMix64::new(7);
            (0..8).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = SplitMix64::new(7);
            (0..8).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(
            SplitMix64::stream(7, 1).next_u64(),
            SplitMix64::stream(7, 2).next_u64()
        );
    }

    #[test]
    fn below_stays_in_range_and_chance_matches_percent() {
        let mut r = SplitMix64::new(1);
        assert!((0..10_000).all(|_| r.below(17) < 17));
        let t = percent_threshold(10.0);
        let hits = (0..100_000).filter(|_| r.chance(t)).count();
        assert!((9_000..11_000).contains(&hits), "{hits}");
        assert!(!r.chance(percent_threshold(0.0)));
    }
}

//! Column blocks: one series' points in time order, timestamps and values
//! in separate columns (16 bytes a point, no series id per point).
//!
//! A block is read through [`BlockRead`] and filled through [`BlockWrite`],
//! so the same algorithms run over a plain array (embedded users) and over
//! the runtime's shared, atomically published memory. A block only ever
//! grows at its end: points below [`BlockWrite::published`] are never
//! written again (a change to them builds a new block), which is what lets
//! readers in the runtime read a block while a merge appends to it.
//!
//! Search within a block is by interpolation on the timestamp column (the
//! timestamps of a series are nearly linear in time), corrected by a short
//! linear scan, and falls back to binary search when the guess is far off.

/// One point of a series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Point {
    /// Timestamp.
    pub ts: i64,
    /// Value (store `f64` with `to_bits`).
    pub value: u64,
}

impl Point {
    /// A point at `ts` with `value`.
    #[inline]
    pub const fn new(ts: i64, value: u64) -> Self {
        Point { ts, value }
    }
}

/// Read access to a block's published points, ascending by timestamp.
pub trait BlockRead {
    /// Points readable now.
    fn len(&self) -> usize;
    /// Timestamp of point `i < len()`.
    fn ts(&self, i: usize) -> i64;
    /// Value of point `i < len()`.
    fn value(&self, i: usize) -> u64;

    /// Whether the block holds no point.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f(ts, value)` for points `from..to` (`to <= len()`), in
    /// order: what scans stream. A block whose reads dispatch on its kind
    /// overrides it to dispatch once, not per point.
    #[inline]
    fn visit(&self, from: usize, to: usize, f: &mut impl FnMut(i64, u64))
    where
        Self: Sized,
    {
        for i in from..to {
            f(self.ts(i), self.value(i));
        }
    }

    /// Points `from..to` (`to <= len()`) as two plain columns, if the block
    /// holds them so (a decoded block): scans hand them to a
    /// [`PointSink`] whole. Default: `None` (scans [`visit`](Self::visit)).
    #[inline]
    fn columns(&self, from: usize, to: usize) -> Option<(&[i64], &[u64])> {
        let _ = (from, to);
        None
    }
}

/// Where a scan puts the points it finds, in order: any `FnMut(i64, u64)`,
/// or a sink that also takes whole runs of points as two columns (a
/// decoded block's), to copy them in bulk.
pub trait PointSink {
    /// Takes the next point.
    fn point(&mut self, ts: i64, value: u64);

    /// Takes the next `ts.len()` points (`values` as long as `ts`).
    /// Default: [`point`](Self::point) for each.
    #[inline]
    fn columns(&mut self, ts: &[i64], values: &[u64]) {
        for (&t, &v) in ts.iter().zip(values) {
            self.point(t, v);
        }
    }
}

impl<F: FnMut(i64, u64)> PointSink for F {
    #[inline(always)]
    fn point(&mut self, ts: i64, value: u64) {
        self(ts, value);
    }
}

/// Filling a block: points are written beyond the published ones, then
/// published together.
pub trait BlockWrite: BlockRead {
    /// Points the block can hold.
    fn capacity(&self) -> usize;
    /// Writes point `i`, which must lie in `len()..capacity()` (never a
    /// published point).
    fn write(&mut self, i: usize, point: Point);
    /// Writes `records`' points as points `from..from + records.len()`
    /// (all in `len()..capacity()`), as [`write`](Self::write) one by one
    /// would; a block whose writes have a cost per call (a lookup of where
    /// point `i` lives) overrides it to pay it once per run.
    #[inline]
    fn write_records(&mut self, from: usize, records: &[crate::Record]) {
        for (i, r) in records.iter().enumerate() {
            self.write(from + i, Point::new(r.key.ts, r.value));
        }
    }
    /// Publishes the points written so far: `len()` becomes `len`, which
    /// must be at most `capacity()` and at least `len()`.
    fn publish(&mut self, len: usize);
}

/// Where in a block a timestamp is: `Ok(i)` when point `i` has it, else
/// `Err(i)` with `i` the position it would be inserted at (as
/// `slice::binary_search`).
#[inline]
pub fn find<B: BlockRead + ?Sized>(block: &B, ts: i64) -> Result<usize, usize> {
    search(block.len(), |i| block.ts(i), ts)
}

/// `(ts - first) * steps / (last - first)`, for `first < ts < last`: in
/// 64 bits when the product fits (timestamps a few blocks apart always
/// do), else in 128. A 128-bit division is a library call of tens of
/// cycles, on every lookup's two searches when it was the only path.
#[inline]
pub(crate) fn interpolate(first: i64, last: i64, ts: i64, steps: usize) -> usize {
    // Both differences are positive and below 2^64 (`first < ts < last`).
    let span = last.wrapping_sub(first) as u64;
    let offset = ts.wrapping_sub(first) as u64;
    let guess = match offset.checked_mul(steps as u64) {
        Some(product) => product / span,
        None => (u128::from(offset) * steps as u128 / u128::from(span)) as u64,
    };
    // `offset < span`, so `guess < steps`: it fits a usize.
    guess as usize
}

/// [`find`] over any ascending sequence of `len` timestamps read with `at`:
/// interpolation between the first and the last, a short linear walk from
/// the guess, binary search when the guess is far off.
pub(crate) fn search(len: usize, at: impl Fn(usize) -> i64, ts: i64) -> Result<usize, usize> {
    if len == 0 {
        return Err(0);
    }
    let (first, last) = (at(0), at(len - 1));
    if ts <= first {
        return if ts == first { Ok(0) } else { Err(0) };
    }
    if ts > last {
        return Err(len);
    }
    if ts == last {
        return Ok(len - 1);
    }
    // first < ts < last: interpolate.
    let guess = interpolate(first, last, ts, len - 1);
    // A short linear walk from the guess; far off, binary search.
    const WALK: usize = 8;
    if at(guess) < ts {
        let end = (guess + 1 + WALK).min(len);
        for i in guess + 1..end {
            let t = at(i);
            if t >= ts {
                return if t == ts { Ok(i) } else { Err(i) };
            }
        }
        binary(&at, ts, end, len)
    } else {
        // at(guess) >= ts > at(0), so guess > 0.
        let start = guess.saturating_sub(WALK);
        let mut i = guess;
        while i > start {
            if at(i - 1) < ts {
                return if at(i) == ts { Ok(i) } else { Err(i) };
            }
            i -= 1;
        }
        binary(&at, ts, 0, start + 1)
    }
}

/// Binary search for `ts` among positions `lo..=hi` of `at`, knowing every
/// position before `lo` is below `ts` and position `hi` (if any, `< len`)
/// is at least `ts`; `hi` may be the length.
pub(crate) fn binary(
    at: &impl Fn(usize) -> i64,
    ts: i64,
    mut lo: usize,
    mut hi: usize,
) -> Result<usize, usize> {
    // Invariant: answer in lo..=hi.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if at(mid) < ts {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    // `lo` is the first position with at(lo) >= ts; it is a valid position
    // whenever ts <= last, which the callers established.
    if at(lo) == ts {
        Ok(lo)
    } else {
        Err(lo)
    }
}

/// The first position whose timestamp is `>= ts` (`> ts` when `after`).
pub fn lower_bound<B: BlockRead + ?Sized>(block: &B, ts: i64, after: bool) -> usize {
    match find(block, ts) {
        Ok(i) if after => i + 1,
        Ok(i) | Err(i) => i,
    }
}

/// A block of up to `N` points stored inline: the embedded user's block, and
/// the scratch block the algorithms' tests use.
#[derive(Clone, Debug)]
pub struct ArrayBlock<const N: usize> {
    ts: [i64; N],
    values: [u64; N],
    len: usize,
}

impl<const N: usize> ArrayBlock<N> {
    /// An empty block.
    pub const fn new() -> Self {
        ArrayBlock {
            ts: [0; N],
            values: [0; N],
            len: 0,
        }
    }

    /// The timestamp column of the published points.
    pub fn timestamps(&self) -> &[i64] {
        &self.ts[..self.len]
    }

    /// The value column of the published points.
    pub fn values(&self) -> &[u64] {
        &self.values[..self.len]
    }

    /// Empties the block (for reuse by a store).
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

impl<const N: usize> Default for ArrayBlock<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> BlockRead for ArrayBlock<N> {
    #[inline]
    fn len(&self) -> usize {
        self.len
    }
    #[inline]
    fn ts(&self, i: usize) -> i64 {
        self.timestamps()[i]
    }
    #[inline]
    fn value(&self, i: usize) -> u64 {
        self.values()[i]
    }
}

impl<const N: usize> BlockWrite for ArrayBlock<N> {
    fn capacity(&self) -> usize {
        N
    }
    fn write(&mut self, i: usize, point: Point) {
        debug_assert!(i >= self.len, "point {i} is published");
        self.ts[i] = point.ts;
        self.values[i] = point.value;
    }
    fn publish(&mut self, len: usize) {
        debug_assert!(self.len <= len && len <= N);
        self.len = len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn block_of(ts: &[i64]) -> ArrayBlock<512> {
        let mut b = ArrayBlock::new();
        for (i, &t) in ts.iter().enumerate() {
            b.write(i, Point::new(t, t as u64));
        }
        b.publish(ts.len());
        b
    }

    proptest! {
        #[test]
        fn find_agrees_with_binary_search(
            mut ts in proptest::collection::btree_set(any::<i64>(), 0..if cfg!(miri) { 20 } else { 300 }),
            probes in proptest::collection::vec(any::<i64>(), 0..20),
        ) {
            let ts: Vec<i64> = core::mem::take(&mut ts).into_iter().collect();
            let block = block_of(&ts);
            for probe in probes.into_iter().chain(ts.iter().copied()).chain(ts.iter().map(|t| t.wrapping_add(1))) {
                prop_assert_eq!(find(&block, probe), ts.binary_search(&probe), "probe {}", probe);
            }
        }

        #[test]
        fn find_on_nearly_regular_timestamps(
            start in -1_000_000i64..1_000_000,
            step in 1i64..100,
            jitter in proptest::collection::vec(0i64..3, 1..if cfg!(miri) { 20 } else { 400 }),
        ) {
            let mut ts = Vec::new();
            let mut t = start;
            for j in jitter {
                t += step + j;
                ts.push(t);
            }
            let block = block_of(&ts);
            for probe in (ts[0] - 5)..(ts[ts.len() - 1] + 5) {
                prop_assert_eq!(find(&block, probe), ts.binary_search(&probe));
            }
        }
    }

    proptest! {
        /// The 64-bit path and the 128-bit fallback give the guess the
        /// 128-bit formula gives, wide spans and long blocks included.
        #[test]
        fn interpolation_agrees_with_128_bits(
            a in any::<i64>(),
            b in any::<i64>(),
            c in any::<i64>(),
            steps in prop_oneof![1usize..600, Just(usize::MAX >> 1), any::<usize>()],
        ) {
            let mut t = [a, b, c];
            t.sort_unstable();
            let [first, ts, last] = t;
            prop_assume!(first < ts && ts < last);
            // Both differences are below 2^64 and `steps` is: the product
            // fits a u128.
            let offset = (i128::from(ts) - i128::from(first)) as u128;
            let span = (i128::from(last) - i128::from(first)) as u128;
            let want = offset * steps as u128 / span;
            prop_assert_eq!(interpolate(first, last, ts, steps) as u128, want);
        }
    }

    #[test]
    fn extreme_timestamps_do_not_overflow_the_interpolation() {
        let ts = [i64::MIN, -1, 0, 1, i64::MAX - 1, i64::MAX];
        let block = block_of(&ts);
        for probe in [
            i64::MIN,
            i64::MIN + 1,
            -2,
            -1,
            0,
            1,
            2,
            i64::MAX - 2,
            i64::MAX - 1,
            i64::MAX,
        ] {
            assert_eq!(find(&block, probe), ts.binary_search(&probe), "{probe}");
        }
        assert_eq!(find(&ArrayBlock::<4>::new(), 7), Err(0));
    }

    #[test]
    fn lower_bound_includes_or_excludes_the_bound() {
        let block = block_of(&[10, 20, 30]);
        assert_eq!(lower_bound(&block, 20, false), 1);
        assert_eq!(lower_bound(&block, 20, true), 2);
        assert_eq!(lower_bound(&block, 25, true), 2);
        assert_eq!(lower_bound(&block, 5, false), 0);
        assert_eq!(lower_bound(&block, 35, false), 3);
    }
}

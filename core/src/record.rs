//! Keys and records: the 24-byte unit that flows through every buffer and leaf.
//!
//! A key orders by series first, then timestamp, so one series is one
//! contiguous key range: a range scan of a series reads consecutive leaves.

use core::cmp::Ordering;

/// The key of a record: a series id and a timestamp, ordered by `(series, ts)`.
///
/// Aligned to 8 bytes on every target (also where `i64` is 4-aligned, as on
/// i686), so a key is 16 bytes and a record 24 everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(C, align(8))]
pub struct Key {
    /// Series id.
    pub series: u32,
    /// Timestamp, in whatever unit the caller uses (ns, ms, ...); negative is fine.
    pub ts: i64,
}

impl Key {
    /// The smallest key.
    pub const MIN: Key = Key {
        series: 0,
        ts: i64::MIN,
    };
    /// The largest key.
    pub const MAX: Key = Key {
        series: u32::MAX,
        ts: i64::MAX,
    };

    /// A key for `series` at `ts`.
    #[inline]
    pub const fn new(series: u32, ts: i64) -> Self {
        Key { series, ts }
    }

    /// The key as one unsigned integer with the same order: series in the
    /// high 32 bits, the timestamp with its sign bit flipped in the low 64.
    /// Radix sorting works on this form.
    #[inline]
    pub const fn to_bits(self) -> u128 {
        ((self.series as u128) << 64) | ((self.ts as u64) ^ (1 << 63)) as u128
    }
}

impl Ord for Key {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        (self.series, self.ts).cmp(&(other.series, other.ts))
    }
}

impl PartialOrd for Key {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One time-series point: a key and a 64-bit value (store `f64` with `to_bits`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(C, align(8))]
pub struct Record {
    /// Where the record sorts.
    pub key: Key,
    /// The payload; any bit pattern round-trips, NaN payloads included.
    pub value: u64,
}

impl Record {
    /// An all-zero record, handy for initialising scratch arrays.
    pub const ZERO: Record = Record {
        key: Key { series: 0, ts: 0 },
        value: 0,
    };

    /// A record for `series` at `ts` holding `value`.
    #[inline]
    pub const fn new(series: u32, ts: i64, value: u64) -> Self {
        Record {
            key: Key { series, ts },
            value,
        }
    }
}

/// Size of one record in every buffer and leaf, in bytes.
pub const RECORD_BYTES: usize = core::mem::size_of::<Record>();

const _: () = assert!(core::mem::size_of::<Key>() == 16);
const _: () = assert!(core::mem::size_of::<Record>() == 24);
const _: () = assert!(core::mem::align_of::<Record>() == 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_orders_by_series_then_timestamp() {
        let mut keys = [
            Key::new(2, -5),
            Key::new(1, i64::MAX),
            Key::new(1, i64::MIN),
            Key::new(2, 7),
            Key::new(0, 0),
        ];
        keys.sort();
        assert_eq!(
            keys,
            [
                Key::new(0, 0),
                Key::new(1, i64::MIN),
                Key::new(1, i64::MAX),
                Key::new(2, -5),
                Key::new(2, 7)
            ]
        );
    }

    #[test]
    fn key_bits_preserve_order_including_negative_timestamps() {
        let keys = [
            Key::MIN,
            Key::new(0, -1),
            Key::new(0, 0),
            Key::new(0, i64::MAX),
            Key::new(1, i64::MIN),
            Key::new(u32::MAX, 3),
            Key::MAX,
        ];
        for w in keys.windows(2) {
            assert!(w[0] < w[1]);
            assert!(w[0].to_bits() < w[1].to_bits(), "{:?} vs {:?}", w[0], w[1]);
        }
    }
}

//! Arbitrary bytes into `codec::header`, `codec::decode`, `codec::find` and
//! `codec::decode_timestamps` with `decode_range`:
//! each returns a value or a `DecodeError`, never panics, and they agree
//! (a header error is the decode error; a block that decodes has the
//! header's point count, re-encodes, and `find` agrees with its columns).
//!
//! The first input byte picks how much output room to give `decode`, so
//! `OutputTooSmall` is reached too.
//!
//! Run: `cd core/fuzz && cargo +nightly fuzz run codec_decode -- -max_total_time=60`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use numatree_core::codec;

fuzz_target!(|data: &[u8]| {
    let Some((&room, bytes)) = data.split_first() else {
        return;
    };
    let room = usize::from(room) * 8;
    let (mut t, mut v) = (vec![0i64; room], vec![0u64; room]);
    let header = codec::header(bytes);
    let decoded = codec::decode(bytes, &mut t, &mut v);
    match (&header, &decoded) {
        (Err(h), Err(d)) => assert_eq!(h, d),
        (Err(h), Ok(n)) => panic!("header failed ({h}) but decode returned {n} points"),
        (Ok(h), Ok(n)) => assert_eq!(h.points, *n),
        (Ok(_), Err(_)) => {}
    }
    let _ = codec::find(bytes, 0);
    // Timestamps, then the values of a range the input picks: never a
    // panic, and the same values as the whole decode where that succeeded.
    let mut t2 = vec![0i64; room];
    if let Ok(column) = codec::decode_timestamps(bytes, &mut t2) {
        let n = column.points();
        let from = usize::from(data.get(1).copied().unwrap_or(0)) % (n + 1);
        let mut v2 = vec![0u64; n];
        let part = column.decode_range(from..n, &mut v2);
        if let Ok(n) = decoded {
            assert_eq!(part, Ok(()), "a range of a block that decodes whole");
            assert_eq!(t2[..n], t[..n]);
            assert_eq!(v2[from..n], v[from..n], "values {from}..{n}");
        }
    }
    if let Ok(n) = decoded {
        let (t, v) = (&t[..n], &v[..n]);
        for (i, &probe) in t.iter().enumerate().step_by((n / 8).max(1)) {
            let first = t.iter().position(|&x| x == probe).unwrap_or(i);
            assert_eq!(
                codec::find(bytes, probe),
                Ok(Some(v[first])),
                "find {probe}"
            );
        }
        let mut buf = vec![0u8; codec::max_encoded_len(n)];
        let len = codec::encode(t, v, &mut buf).expect("max_encoded_len is enough");
        let (mut t2, mut v2) = (vec![0i64; n], vec![0u64; n]);
        assert_eq!(codec::decode(&buf[..len], &mut t2, &mut v2), Ok(n));
        assert!(t2 == t && v2 == v, "re-encoded block differs");
    } else if let Ok(h) = header {
        // A good header over bad sections: find may still answer, but only
        // from bytes inside the block.
        assert!(h.encoded_len <= bytes.len());
    }
});

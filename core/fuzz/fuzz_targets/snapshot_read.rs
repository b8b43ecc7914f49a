//! Arbitrary bytes given to the snapshot parser: it must return an error or
//! a snapshot, never panic, and a snapshot it returns must hold what its
//! totals say (every section, series record and block walked).
//!
//! Half the inputs are made into a well-formed prefix first (a valid
//! header and meta section, then the fuzzer's bytes), so the fuzzer gets
//! past the magic and the header checksum into section parsing.
//!
//! Run: `cd core/fuzz && cargo +nightly fuzz run snapshot_read -- -max_total_time=60`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use numatree_core::snapshot::{
    encode_meta, frame, header, meta_len, section_kind, Snapshot, StoredBlock,
};

fn check(bytes: &[u8]) {
    for parsed in [Snapshot::parse(bytes), Snapshot::parse_skipping_checksums(bytes)] {
        let Ok(snapshot) = parsed else { continue };
        let meta = snapshot.meta();
        let _ = (meta.retention_floor(), meta.fields().count(), meta.field(1));
        let (mut series, mut blocks, mut points) = (0u64, 0u64, 0u64);
        let mut last = None;
        for record in snapshot.records() {
            if last != Some(record.id) {
                series += 1;
                last = Some(record.id);
            }
            for block in record.blocks {
                blocks += 1;
                points += u64::from(block.points());
                if let StoredBlock::Raw(raw) = block {
                    assert_eq!(raw.ts().count(), raw.values().count());
                    assert_eq!(raw.ts().len(), raw.len());
                    let _ = raw.ts().max();
                }
            }
        }
        let totals = snapshot.totals();
        assert_eq!((series, blocks, points), (totals.series, totals.blocks, totals.points));
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some((&first, rest)) = data.split_first() {
        if first & 1 == 1 {
            let mut bytes = header().to_vec();
            let mut meta = vec![0; meta_len(1).unwrap()];
            encode_meta(&mut meta, i64::from(first), &[(1, 2)]).unwrap();
            bytes.extend_from_slice(&frame(section_kind::META, &meta));
            bytes.extend_from_slice(&meta);
            // With `first & 2`, the rest is one series section, framed
            // with a valid checksum, then an end section of the fuzzer's.
            if first & 2 == 2 && rest.len() >= 32 {
                let (series, end) = rest.split_at(rest.len() - 32);
                bytes.extend_from_slice(&frame(section_kind::SERIES, series));
                bytes.extend_from_slice(series);
                bytes.extend_from_slice(&frame(section_kind::END, end));
                bytes.extend_from_slice(end);
            } else {
                bytes.extend_from_slice(rest);
            }
            check(&bytes);
        }
    }
});

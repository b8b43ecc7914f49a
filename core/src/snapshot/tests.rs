use super::*;
use proptest::prelude::*;
use std::vec;
use std::vec::Vec;

/// A block as a test owns it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Owned {
    Raw(Vec<i64>, Vec<u64>),
    Encoded(u32, Vec<u8>),
}

impl Owned {
    fn block(&self) -> Block<'_> {
        match self {
            Owned::Raw(ts, values) => Block::Raw { ts, values },
            Owned::Encoded(points, bytes) => Block::Encoded {
                points: *points,
                bytes,
            },
        }
    }

    fn of(b: StoredBlock<'_>) -> Owned {
        match b {
            StoredBlock::Raw(raw) => Owned::Raw(raw.ts().collect(), raw.values().collect()),
            StoredBlock::Encoded { points, bytes } => Owned::Encoded(points, bytes.to_vec()),
        }
    }
}

type Series = Vec<(u32, Vec<Owned>)>;

fn push_section(out: &mut Vec<u8>, kind: u32, payload: &[u8]) {
    out.extend_from_slice(&frame(kind, payload));
    out.extend_from_slice(payload);
}

/// A snapshot of `series`, a new series section whenever one passes
/// `target` bytes (a whole record per section, as the tests need no split).
fn build(floor: i64, fields: &[(u32, u64)], series: &Series, target: usize) -> Vec<u8> {
    let mut out = header().to_vec();
    let mut meta = vec![0; meta_len(fields.len()).unwrap()];
    encode_meta(&mut meta, floor, fields).unwrap();
    push_section(&mut out, section_kind::META, &meta);
    let mut totals = Totals {
        sections: 1,
        ..Totals::default()
    };
    let mut payload = Vec::new();
    for (id, blocks) in series {
        let blocks: Vec<Block<'_>> = blocks.iter().map(Owned::block).collect();
        let at = payload.len();
        payload.resize(at + series_len(&blocks).unwrap(), 0);
        encode_series(&mut payload[at..], *id, &blocks).unwrap();
        totals.series += 1;
        totals.blocks += blocks.len() as u64;
        totals.points += blocks
            .iter()
            .map(|b| u64::from(b.points().unwrap()))
            .sum::<u64>();
        if payload.len() >= target {
            push_section(&mut out, section_kind::SERIES, &payload);
            payload.clear();
            totals.sections += 1;
        }
    }
    if !payload.is_empty() {
        push_section(&mut out, section_kind::SERIES, &payload);
        totals.sections += 1;
    }
    push_section(&mut out, section_kind::END, &encode_end(&totals));
    out
}

fn read_back(s: &Snapshot<'_>) -> Series {
    s.records()
        .map(|r| (r.id, r.blocks.map(Owned::of).collect()))
        .collect()
}

fn small() -> Series {
    vec![
        (
            7,
            vec![
                Owned::Raw(vec![-3, 1, 2], vec![30, 10, u64::MAX]),
                Owned::Encoded(5, vec![0xAB; 9]),
            ],
        ),
        (u32::MAX, vec![Owned::Raw(vec![i64::MIN], vec![0])]),
        (0, vec![]),
    ]
}

#[test]
fn a_snapshot_reads_back_what_was_written() {
    let series = small();
    let fields = [(meta_key::POINTS, 9), (meta_key::SERIES, 3), (99, 1)];
    let bytes = build(-42, &fields, &series, SECTION_TARGET);
    let s = Snapshot::parse(&bytes).unwrap();
    assert_eq!(read_back(&s), series);
    assert_eq!(s.meta().retention_floor(), -42);
    assert_eq!(s.meta().fields().collect::<Vec<_>>(), fields);
    assert_eq!(s.meta().field(meta_key::SERIES), Some(3));
    assert_eq!(s.meta().field(5), None);
    assert_eq!(
        s.totals(),
        Totals {
            series: 3,
            blocks: 3,
            points: 9,
            sections: 2
        }
    );
}

#[test]
fn unaligned_bytes_parse_the_same() {
    let bytes = build(0, &[], &small(), 1);
    let mut shifted = vec![0u8; bytes.len() + 1];
    shifted[1..].copy_from_slice(&bytes);
    let s = Snapshot::parse(&shifted[1..]).unwrap();
    assert_eq!(read_back(&s), small());
    assert_eq!(s.totals().sections, 4);
}

#[test]
fn consecutive_records_of_one_id_are_one_series() {
    let mut series = small();
    series.insert(1, (7, vec![Owned::Raw(vec![9], vec![9])]));
    let bytes = build(0, &[], &series, 1);
    // `build` counted 4 series; the file holds 3 runs of one id.
    let err = Snapshot::parse(&bytes).unwrap_err();
    assert_eq!(
        err,
        ParseError::TotalsMismatch {
            what: "series",
            recorded: 4,
            counted: 3
        }
    );
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = build(5, &[(1, 2)], &small(), 40);
    assert!(Snapshot::parse(&bytes).is_ok());
    for len in 0..bytes.len() {
        let err = Snapshot::parse(&bytes[..len]).unwrap_err();
        let expected = if len == 0 {
            matches!(err, ParseError::NotASnapshot)
        } else {
            matches!(err, ParseError::Truncated { len: l, .. } if l == len as u64)
        };
        assert!(expected, "cut at {len}: {err}");
    }
}

#[test]
fn every_byte_flip_is_detected() {
    let bytes = build(5, &[(1, 2)], &small(), 40);
    let mut copy = bytes.clone();
    for at in 0..bytes.len() {
        for bit in if cfg!(miri) { 0..1 } else { 0..8 } {
            copy[at] ^= 1 << bit;
            let err = Snapshot::parse(&copy).expect_err("flip not detected");
            assert!(
                matches!(
                    err,
                    ParseError::NotASnapshot
                        | ParseError::UnsupportedVersion { .. }
                        | ParseError::ChecksumMismatch { .. }
                        | ParseError::Truncated { .. }
                ),
                "flip of bit {bit} at {at}: {err}"
            );
            copy[at] = bytes[at];
        }
    }
}

#[test]
fn foreign_files_are_not_snapshots() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
    for bytes in [&png[..], b"", b"hello, world\n", b"\x89N", &[0u8; 64]] {
        let err = Snapshot::parse(bytes).unwrap_err();
        if bytes == b"\x89N" {
            // A prefix of the magic is a snapshot cut short.
            assert!(matches!(err, ParseError::Truncated { .. }), "{err}");
        } else {
            assert_eq!(err, ParseError::NotASnapshot);
            assert!(err.to_string().starts_with("not a numatree snapshot"));
        }
    }
}

#[test]
fn a_future_version_is_unsupported() {
    let mut bytes = build(0, &[], &small(), SECTION_TARGET);
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    let err = Snapshot::parse(&bytes).unwrap_err();
    assert_eq!(
        err,
        ParseError::UnsupportedVersion {
            found: 2,
            supported: 1
        }
    );
    assert_eq!(
        err.to_string(),
        "unsupported snapshot format version 2: this reader reads version 1"
    );
}

fn reheader(bytes: &mut [u8]) {
    let crc = checksum(&bytes[..20], &[]);
    bytes[20..24].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn unknown_flags_are_refused() {
    let mut bytes = build(0, &[], &small(), SECTION_TARGET);
    bytes[12] = 4;
    reheader(&mut bytes);
    assert_eq!(
        Snapshot::parse(&bytes).unwrap_err(),
        ParseError::UnsupportedFlags { found: 4, known: 0 }
    );
}

/// The sections of `bytes` after the header, as (kind, payload).
fn sections(bytes: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut at = HEADER_LEN;
    let mut out = Vec::new();
    while at < bytes.len() {
        let kind = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let len = u64::from_le_bytes(bytes[at + 4..at + 12].try_into().unwrap()) as usize;
        out.push((kind, bytes[at + 16..at + 16 + len].to_vec()));
        at += 16 + len;
    }
    out
}

fn assemble(parts: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = header().to_vec();
    for (kind, payload) in parts {
        push_section(&mut out, *kind, payload);
    }
    out
}

#[test]
fn optional_sections_are_skipped_and_unknown_ones_refused() {
    let bytes = build(0, &[], &small(), SECTION_TARGET);
    let mut parts = sections(&bytes);
    let end = parts.len() - 1;
    // The end section counts sections before it: one more.
    let mut totals = Snapshot::parse(&bytes).unwrap().totals();
    totals.sections += 1;
    parts[end].1 = encode_end(&totals).to_vec();
    parts.insert(1, (section_kind::OPTIONAL | 77, b"later".to_vec()));
    let with_optional = assemble(&parts);
    let s = Snapshot::parse(&with_optional).unwrap();
    assert_eq!(read_back(&s), small());

    parts[1].0 = 77;
    let offset = (HEADER_LEN + FRAME_LEN + parts[0].1.len()) as u64;
    assert_eq!(
        Snapshot::parse(&assemble(&parts)).unwrap_err(),
        ParseError::UnknownSection {
            kind: 77,
            section: 1,
            offset
        }
    );
}

#[test]
fn structure_errors_with_valid_checksums_are_corrupt() {
    let bytes = build(0, &[], &small(), SECTION_TARGET);
    let parts = sections(&bytes);
    let corrupt = |parts: &[(u32, Vec<u8>)]| match Snapshot::parse(&assemble(parts)) {
        Err(ParseError::Corrupt { what, .. }) => what,
        other => panic!("expected Corrupt, got {other:?}"),
    };
    // Series first, meta missing.
    assert_eq!(
        corrupt(&parts[1..]),
        "first section is not the meta section"
    );
    // Two meta sections.
    let mut two = parts.clone();
    two.insert(1, parts[0].clone());
    assert_eq!(corrupt(&two), "a second meta section");
    // A record whose block count runs past its section (series 0, alone
    // in the last series section).
    let mut long = sections(&build(0, &[], &small(), 1));
    long[3].1[4] += 1;
    assert_eq!(corrupt(&long), "block header runs past its section");
    // An unknown block tag.
    let mut tag = parts.clone();
    tag[1].1[8] = 9;
    assert_eq!(corrupt(&tag), "unknown block tag");
    // An empty block.
    let mut empty = parts.clone();
    empty[1].1[12..16].copy_from_slice(&0u32.to_le_bytes());
    assert_eq!(corrupt(&empty), "block with no points");
    // Meta keys out of order.
    let mut meta = vec![0; meta_len(2).unwrap()];
    encode_meta(&mut meta, 0, &[(1, 1), (2, 2)]).unwrap();
    meta[12] = 3;
    let mut keys = parts.clone();
    keys[0].1 = meta;
    assert_eq!(corrupt(&keys), "meta field keys not strictly ascending");
    // Bytes after the end section.
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        Snapshot::parse(&trailing),
        Err(ParseError::Corrupt {
            what: "bytes after the end section",
            ..
        })
    ));
}

#[test]
fn totals_that_do_not_match_are_refused() {
    let bytes = build(0, &[], &small(), SECTION_TARGET);
    let mut parts = sections(&bytes);
    let last = parts.len() - 1;
    let mut totals = Snapshot::parse(&bytes).unwrap().totals();
    totals.points += 1;
    parts[last].1 = encode_end(&totals).to_vec();
    let err = Snapshot::parse(&assemble(&parts)).unwrap_err();
    assert_eq!(
        err,
        ParseError::TotalsMismatch {
            what: "points",
            recorded: 10,
            counted: 9
        }
    );
}

#[test]
fn encoding_refuses_what_the_format_cannot_hold() {
    let ts = [1i64, 2];
    let mut out = [0u8; 64];
    let differ = Block::Raw {
        ts: &ts,
        values: &[1],
    };
    assert_eq!(
        differ.encode(&mut out),
        Err(EncodeError::ColumnsDiffer { ts: 2, values: 1 })
    );
    let empty = Block::Raw {
        ts: &[],
        values: &[],
    };
    assert_eq!(empty.encode(&mut out), Err(EncodeError::EmptyBlock));
    let small = Block::Raw {
        ts: &ts,
        values: &[1, 2],
    };
    assert_eq!(
        encode_series(&mut out[..20], 1, &[small]),
        Err(EncodeError::BufferTooSmall {
            needed: 48,
            provided: 20
        })
    );
    assert_eq!(
        encode_meta(&mut out, 0, &[(2, 0), (2, 1)]),
        Err(EncodeError::MetaKeysUnsorted { key: 2 })
    );
}

#[test]
fn raw_points_copy_into_columns() {
    let bytes = build(0, &[], &small(), SECTION_TARGET);
    let s = Snapshot::parse(&bytes).unwrap();
    let Some(StoredBlock::Raw(raw)) = s.records().next().unwrap().blocks.next() else {
        panic!("first block is raw");
    };
    let (mut ts, mut values) = ([0i64; 4], [0u64; 2]);
    assert_eq!(raw.copy_to(&mut ts, &mut values), 2);
    assert_eq!((ts, values), ([-3, 1, 0, 0], [30, 10]));
    assert_eq!(raw.ts_bytes().len(), 24);
}

fn owned_block() -> impl Strategy<Value = Owned> {
    prop_oneof![
        proptest::collection::vec(any::<(i64, u64)>(), 1..20).prop_map(|p| Owned::Raw(
            p.iter().map(|x| x.0).collect(),
            p.iter().map(|x| x.1).collect()
        )),
        (1u32..1000, proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(n, b)| Owned::Encoded(n, b)),
    ]
}

proptest! {
    // Under Miri, no failure file: finding it needs `getcwd`, which Miri's
    // isolation refuses (the project's Miri step disables isolation anyway).
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 2 } else { 256 },
        failure_persistence: if cfg!(miri) { None } else { ProptestConfig::default().failure_persistence },
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_series_round_trip(
        ids in proptest::collection::btree_set(any::<u32>(), 0..if cfg!(miri) { 4 } else { 40 }),
        blocks in proptest::collection::vec(
            proptest::collection::vec(owned_block(), 0..4),
            if cfg!(miri) { 4 } else { 40 },
        ),
        target in 1usize..4000,
        floor in any::<i64>(),
    ) {
        let series: Series = ids.into_iter().zip(blocks).collect();
        let bytes = build(floor, &[(1, 2)], &series, target);
        let s = Snapshot::parse(&bytes).unwrap();
        prop_assert_eq!(read_back(&s), series);
        prop_assert_eq!(s.meta().retention_floor(), floor);
        // The walk without checksums sees the same.
        let fast = Snapshot::parse_skipping_checksums(&bytes).unwrap();
        prop_assert_eq!(read_back(&fast), read_back(&s));
    }
}

/// A version-1 file written by an independent encoder (Python's `struct`
/// and `zlib.crc32`, from the layout tables of the module docs): this
/// crate must read it, and write the same bytes for the same contents. A
/// change to the layout fails here; it needs a new version (module docs,
/// "Versions").
#[test]
fn the_version_1_layout_is_pinned_by_a_file_written_elsewhere() {
    let golden = include_bytes!("golden-v1.snap");
    let s = Snapshot::parse(golden).unwrap();
    assert_eq!(read_back(&s), small());
    assert_eq!(s.meta().retention_floor(), -42);
    assert_eq!(s.meta().fields().collect::<Vec<_>>(), [(1, 9), (2, 3)]);
    // Series 7 and u32::MAX share the first series section; series 0 is
    // alone in the second (a section ends once it holds 100 bytes).
    assert_eq!(build(-42, &[(1, 9), (2, 3)], &small(), 100), golden);
}

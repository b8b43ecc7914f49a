//! Snapshots of a live index and restores from them: the restored index
//! passes the full oracle check on another topology, a snapshot taken
//! during ingest holds everything merged before it, the retention floor
//! carries over, bad files are clear errors (never a partial index), and a
//! process killed in the middle of a snapshot leaves the previous one whole.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use numatree::{Error, Index, Record, SnapshotError, TopologySource};

type Oracle = BTreeMap<(u32, i64), u64>;

/// A directory of this test's own, removed when dropped.
struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> TestDir {
        let dir =
            std::env::temp_dir().join(format!("numatree-snapshot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TestDir(dir)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ingest(index: &Index, streams: &[Vec<Record>]) {
    std::thread::scope(|s| {
        for stream in streams {
            s.spawn(move || {
                let mut w = index.writer();
                for r in stream {
                    w.insert(r.key.series, r.key.ts, r.value).unwrap();
                }
            });
        }
    });
    index.flush().unwrap();
}

fn two_nodes() -> TopologySource {
    TopologySource::Synthetic("pack:2 numa:1 core:2 pu:1".into())
}

#[test]
fn a_restored_index_holds_exactly_what_was_snapshotted_on_any_topology() {
    let dir = TestDir::new("round-trip");
    let path = dir.file("index.snap");
    for freeze in [true, false] {
        let index = Index::builder().freeze_blocks(freeze).build().unwrap();
        // 300 rounds: series fill and freeze blocks; late points and
        // duplicates land in frozen ones.
        let streams = common::scrape(200, 600, 2, 5, 2, 11);
        let oracle = common::oracle(&streams);
        ingest(&index, &streams);
        common::assert_matches_oracle(&index, &oracle);
        let written = index.snapshot(&path).unwrap();
        assert_eq!(written.points, oracle.len());
        assert_eq!(written.series, 200);
        assert!(written.bytes > 0);

        for restore_freeze in [true, false] {
            let restored = Index::builder()
                .topology(two_nodes())
                .freeze_blocks(restore_freeze)
                .restore(&path)
                .unwrap();
            common::assert_matches_oracle(&restored, &oracle);
            // Series were repartitioned to this topology's nodes.
            let on_node_1: usize = restored
                .shard_lengths()
                .iter()
                .filter(|(n, _, _)| *n == 1)
                .map(|x| x.2)
                .sum();
            assert!(on_node_1 > 0, "node 1 holds none of the restored series");
            // The restored index takes new writes.
            let mut w = restored.writer();
            w.insert(5, 1_000_000, 9).unwrap();
            w.flush().unwrap();
            drop(w);
            restored.flush().unwrap();
            assert_eq!(restored.get(5, 1_000_000), Some(9));
        }
    }
}

#[test]
fn a_snapshot_during_ingest_holds_everything_merged_before_it() {
    let dir = TestDir::new("live");
    let path = dir.file("live.snap");
    let index = Index::builder().slot_capacity(1024).build().unwrap();
    let first = common::scrape(64, 200, 1, 0, 0, 3);
    let oracle = common::oracle(&first);
    ingest(&index, &first);
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut w = index.writer();
            for round in 200..2_000i64 {
                for series in 0..64 {
                    let ts = round * 10;
                    w.insert(series, ts, common::value_of(series, ts, 0))
                        .unwrap();
                }
            }
        });
        // Snapshots while the writer goes on, each restored and checked:
        // the first ingest whole, later points with their own values only.
        for _ in 0..3 {
            index.snapshot(&path).unwrap();
            let restored = Index::builder().restore(&path).unwrap();
            assert_eq!(restored.validate(), Ok(restored.len()));
            for (&(s, t), &v) in &oracle {
                assert_eq!(restored.get(s, t), Some(v), "get({s}, {t})");
            }
            for s in 0..64 {
                for (t, v) in restored.scan(s, 2_000..) {
                    assert!(common::value_matches(s, t, v), "({s}, {t}) = {v:#x}");
                }
            }
        }
        writer.join().unwrap();
    });
}

#[test]
fn the_retention_floor_carries_over() {
    let dir = TestDir::new("floor");
    let path = dir.file("floor.snap");
    let index = Index::builder().build().unwrap();
    let streams = common::scrape(16, 400, 1, 0, 0, 5);
    let mut oracle = common::oracle(&streams);
    ingest(&index, &streams);
    index.drop_before(2_000);
    oracle.retain(|k, _| k.1 >= 2_000);
    index.snapshot(&path).unwrap();
    let restored = Index::builder().restore(&path).unwrap();
    common::assert_matches_oracle(&restored, &oracle);
    let mut w = restored.writer();
    w.insert(1, 1_000, 1).unwrap();
    w.flush().unwrap();
    drop(w);
    restored.flush().unwrap();
    assert_eq!(restored.get(1, 1_000), None, "below the restored floor");
    assert_eq!(restored.stats().total.records_expired, 1);
}

/// A series frozen whole for being idle (`freeze_idle_after`) is written
/// as its frozen bytes and restores exactly, into an index with or without
/// the setting, and takes new points there.
#[test]
fn an_idle_series_frozen_whole_restores_exactly() {
    let dir = TestDir::new("idle");
    let path = dir.file("idle.snap");
    let index = Index::builder()
        .nodes(1)
        .shards_per_node(1)
        .freeze_idle_after(1_000)
        .build()
        .unwrap();
    // Series 0 stops at 990; series 1 runs on to 29,990 and leaves it idle.
    let mut records: Vec<Record> = (0..100).map(|i| Record::new(0, i * 10, i as u64)).collect();
    records.extend((0..3_000).map(|i| Record::new(1, i * 10, 7 * i as u64)));
    let streams = [records];
    let oracle = common::oracle(&streams);
    ingest(&index, &streams);
    common::assert_matches_oracle(&index, &oracle);
    let frozen = index.stats().total.frozen_points;
    assert!(
        frozen >= 100 + 2_816,
        "series 0 froze whole, series 1 all but its newest block: {frozen}"
    );
    index.snapshot(&path).unwrap();
    for idle in [true, false] {
        let builder = Index::builder();
        let builder = if idle {
            builder.freeze_idle_after(1_000)
        } else {
            builder
        };
        let restored = builder.restore(&path).unwrap();
        common::assert_matches_oracle(&restored, &oracle);
        assert_eq!(restored.stats().total.frozen_points, frozen);
        ingest(&restored, &[vec![Record::new(0, 1_000, 42)]]);
        assert_eq!(restored.get(0, 1_000), Some(42));
        assert_eq!(restored.scan(0, ..).len(), 101);
        restored.stats().verify_accounting().unwrap();
    }
}

fn snapshot_error(result: Result<Index, Error>) -> String {
    match result {
        Err(Error::Snapshot(e)) => {
            assert!(
                matches!(
                    e.get(),
                    SnapshotError::Io { .. }
                        | SnapshotError::Format { .. }
                        | SnapshotError::Invalid { .. }
                ),
                "{e:?}"
            );
            e.to_string()
        }
        Err(e) => panic!("not a snapshot error: {e}"),
        Ok(_) => panic!("a bad file restored"),
    }
}

#[test]
fn bad_files_are_clear_errors_and_never_a_partial_index() {
    let dir = TestDir::new("bad");
    let path = dir.file("good.snap");
    let index = Index::builder().build().unwrap();
    let streams = common::scrape(32, 300, 1, 3, 1, 9);
    ingest(&index, &streams);
    index.snapshot(&path).unwrap();
    let good = std::fs::read(&path).unwrap();

    let bad = dir.file("bad.snap");
    // Truncated anywhere.
    for cut in [0, 7, 30, good.len() / 2, good.len() - 1] {
        std::fs::write(&bad, &good[..cut]).unwrap();
        let message = snapshot_error(Index::builder().restore(&bad));
        assert!(message.contains("bad.snap"), "{message}");
    }
    // A flipped byte in the middle (a series section).
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x40;
    std::fs::write(&bad, &flipped).unwrap();
    let message = snapshot_error(Index::builder().restore(&bad));
    assert!(message.contains("checksum"), "{message}");
    // A foreign file.
    std::fs::write(&bad, b"series,ts,value\n1,2,3\n").unwrap();
    let message = snapshot_error(Index::builder().restore(&bad));
    assert!(message.contains("not a numatree snapshot"), "{message}");
    // No file at all.
    let message = snapshot_error(Index::builder().restore(dir.file("missing.snap")));
    assert!(message.contains("missing.snap"), "{message}");
}

/// A well-formed file whose content is impossible: checksums cannot catch
/// it, the restore must.
#[test]
fn well_formed_files_with_impossible_content_are_refused() {
    use numatree_core::snapshot::{self as format, section_kind, Block, Totals};

    type Series<'a> = (u32, Vec<Block<'a>>);

    fn file(series: &[Series<'_>]) -> Vec<u8> {
        let mut out = format::header().to_vec();
        let meta_len = format::meta_len(0).unwrap();
        let mut meta = vec![0; meta_len];
        format::encode_meta(&mut meta, i64::MIN, &[]).unwrap();
        out.extend_from_slice(&format::frame(section_kind::META, &meta));
        out.extend_from_slice(&meta);
        let mut payload = Vec::new();
        let mut totals = Totals {
            sections: 2,
            ..Totals::default()
        };
        for (id, blocks) in series {
            let mut record = vec![0; format::series_len(blocks).unwrap()];
            format::encode_series(&mut record, *id, blocks).unwrap();
            payload.extend_from_slice(&record);
            totals.series += 1;
            totals.blocks += blocks.len() as u64;
            totals.points += blocks
                .iter()
                .map(|b| u64::from(b.points().unwrap()))
                .sum::<u64>();
        }
        out.extend_from_slice(&format::frame(section_kind::SERIES, &payload));
        out.extend_from_slice(&payload);
        let end = format::encode_end(&totals);
        out.extend_from_slice(&format::frame(section_kind::END, &end));
        out.extend_from_slice(&end);
        out
    }

    let dir = TestDir::new("impossible");
    let path = dir.file("x.snap");
    let cases: Vec<(&str, Vec<Series<'_>>)> = vec![
        (
            "not strictly ascending",
            vec![(
                1,
                vec![Block::Raw {
                    ts: &[5, 3],
                    values: &[1, 2],
                }],
            )],
        ),
        (
            "ascending",
            vec![(
                1,
                vec![
                    Block::Raw {
                        ts: &[5, 6],
                        values: &[1, 2],
                    },
                    Block::Raw {
                        ts: &[6, 7],
                        values: &[1, 2],
                    },
                ],
            )],
        ),
        (
            "points",
            vec![(
                1,
                vec![Block::Raw {
                    ts: &[0; 300],
                    values: &[0; 300],
                }],
            )],
        ),
        (
            "decode",
            vec![(
                1,
                vec![Block::Encoded {
                    points: 3,
                    bytes: &[1, 2, 3, 4],
                }],
            )],
        ),
    ];
    for (what, series) in cases {
        std::fs::write(&path, file(&series)).unwrap();
        let message = snapshot_error(Index::builder().restore(&path));
        assert!(message.contains("series 1"), "{what}: {message}");
    }
    // The same structure with possible content restores.
    std::fs::write(
        &path,
        file(&[(
            1,
            vec![Block::Raw {
                ts: &[5, 6],
                values: &[1, 2],
            }],
        )]),
    )
    .unwrap();
    let restored = Index::builder().restore(&path).unwrap();
    assert_eq!(restored.scan(1, ..), [(5, 1), (6, 2)]);
}

/// Set in the child of the kill test: where it writes its snapshots.
const CHILD_ENV: &str = "NUMATREE_SNAPSHOT_KILL_CHILD";

/// The kill test's data: `marker` extra points of series 0 below zero.
fn kill_workload(index: &Index, markers: std::ops::Range<i64>) {
    let mut w = index.writer();
    if markers.start == 0 {
        for ts in 0..2_000 {
            for s in 0..256 {
                // Random-looking values: blocks stay large, writing takes a while.
                let v = common::value_of(s, ts, 0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                w.insert(s, ts, v).unwrap();
            }
        }
    }
    for m in markers {
        w.insert(0, -1 - m, m as u64).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    index.flush().unwrap();
}

/// The child: snapshot #1, say so, then snapshot after snapshot (each with
/// one more marker point) until killed.
fn write_until_killed(path: &Path) -> ! {
    let index = Index::builder().build().unwrap();
    kill_workload(&index, 0..1);
    index.snapshot(path).unwrap();
    println!("first snapshot written");
    for m in 1.. {
        kill_workload(&index, m..m + 1);
        index.snapshot(path).unwrap();
    }
    unreachable!()
}

#[test]
fn a_process_killed_mid_snapshot_leaves_the_previous_snapshot_whole() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        write_until_killed(Path::new(&path));
    }
    let dir = TestDir::new("kill");
    let path = dir.file("kill.snap");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_process_killed_mid_snapshot_leaves_the_previous_snapshot_whole",
            "--nocapture",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("the child ended early").unwrap();
        if line.contains("first snapshot written") {
            break;
        }
    }
    // Kill it while a later snapshot's temporary file is being written.
    loop {
        let writing = std::fs::read_dir(&dir.0)
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().contains(".tmp-"));
        if writing {
            break;
        }
        std::thread::yield_now();
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // The file at `path` is one whole snapshot: the base data and the
    // markers 0..k of some complete snapshot k.
    let restored = Index::builder().restore(&path).unwrap();
    let markers = restored.scan(0, ..0);
    let k = markers.len() as i64;
    assert!(k >= 1, "snapshot #1 is there");
    let expected: Vec<(i64, u64)> = (0..k).rev().map(|m| (-1 - m, m as u64)).collect();
    assert_eq!(markers, expected, "markers of one snapshot, none torn");
    let reference = Index::builder().build().unwrap();
    kill_workload(&reference, 0..k);
    let mut oracle = Oracle::new();
    for s in 0..256 {
        for (t, v) in reference.scan(s, ..) {
            oracle.insert((s, t), v);
        }
    }
    common::assert_matches_oracle(&restored, &oracle);
}

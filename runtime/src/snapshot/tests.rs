use super::*;
use numatree_core::snapshot::{meta_key, HEADER_LEN};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// A directory of its own under the system temp dir, removed on drop.
struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> TestDir {
        let dir = std::env::temp_dir().join(format!(
            "numatree-snapshot-{name}-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TestDir(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Names of the files in the directory, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A block as the tests own it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Owned {
    Raw(Vec<i64>, Vec<u64>),
    Encoded(u32, Vec<u8>),
}

impl Owned {
    fn block(&self) -> SnapBlock<'_> {
        match self {
            Owned::Raw(ts, values) => SnapBlock::Raw { ts, values },
            Owned::Encoded(points, bytes) => SnapBlock::Encoded {
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

/// The blocks of series `id` in a snapshot made with `seed`: some raw
/// blocks of varied lengths and an encoded one; series 0 of seed 1 is
/// large enough to span several sections.
fn blocks_of(id: u32, seed: u64) -> Vec<Owned> {
    let mut blocks = Vec::new();
    let n_blocks = 1 + (id as usize + seed as usize) % 4;
    for b in 0..n_blocks {
        let len = if id == 0 && seed == 1 {
            50_000
        } else {
            1 + (id as usize * 7 + b * 13 + seed as usize) % 300
        };
        let base = i64::from(id) * 1_000_000 + b as i64 * 1000;
        let ts: Vec<i64> = (0..len as i64).map(|i| base + i).collect();
        let values = ts.iter().map(|&t| (t as u64) ^ (seed << 40)).collect();
        blocks.push(Owned::Raw(ts, values));
    }
    let codec: Vec<u8> = (0..(id % 50) as u8).map(|i| i ^ seed as u8).collect();
    blocks.push(Owned::Encoded(1 + id % 1000, codec));
    blocks
}

fn write_snapshot(path: &Path, series: u32, seed: u64) -> WriteStats {
    let mut meta = Meta {
        retention_floor: -(seed as i64),
        ..Meta::default()
    };
    meta.fields.insert(meta_key::SERIES, u64::from(series));
    meta.fields.insert(meta_key::POINTS, seed);
    let mut w = SnapshotWriter::create(path, &meta).unwrap();
    for id in 0..series {
        let owned = blocks_of(id, seed);
        let blocks: Vec<SnapBlock<'_>> = owned.iter().map(Owned::block).collect();
        w.series(id, &blocks).unwrap();
    }
    w.finish().unwrap()
}

/// Every series of `snapshot`, merged across records.
fn contents(snapshot: &Snapshot) -> Vec<(u32, Vec<Owned>)> {
    let mut out = Vec::new();
    snapshot.for_each_series(|id, blocks| out.push((id, blocks.map(Owned::of).collect())));
    out
}

/// Checks that `path` holds exactly the snapshot `write_snapshot` makes.
fn check_snapshot(path: &Path, series: u32, seed: u64) {
    let snapshot = read(path).unwrap();
    assert_eq!(snapshot.meta().retention_floor, -(seed as i64));
    assert_eq!(snapshot.meta().fields[&meta_key::SERIES], u64::from(series));
    assert_eq!(snapshot.meta().fields[&meta_key::POINTS], seed);
    let got = contents(&snapshot);
    assert_eq!(got.len(), series as usize);
    for (id, blocks) in got {
        assert_eq!(blocks, blocks_of(id, seed), "series {id}");
    }
}

#[test]
fn a_snapshot_reads_back_every_series_and_block() {
    let dir = TestDir::new("roundtrip");
    let path = dir.file("index.snap");
    let stats = write_snapshot(&path, 500, 1);
    check_snapshot(&path, 500, 1);
    // Series 0 (50 000-point blocks) spans several sections: split into
    // records, read back whole.
    let snapshot = read(&path).unwrap();
    assert!(snapshot.records().count() > 500);
    assert_eq!(snapshot.totals(), stats.totals);
    assert_eq!(stats.totals.series, 500);
    assert!(stats.totals.sections > 3, "{:?}", stats.totals);
    assert_eq!(stats.bytes, fs::metadata(&path).unwrap().len());
    let points: u64 = (0..500)
        .flat_map(|id| blocks_of(id, 1))
        .map(|b| u64::from(b.block().points().unwrap()))
        .sum();
    assert_eq!(stats.totals.points, points);
    // Only the snapshot is left: the temporary file was renamed.
    assert_eq!(dir.names(), ["index.snap"]);
}

#[test]
fn a_series_written_in_two_calls_is_one_series() {
    let dir = TestDir::new("two-calls");
    let path = dir.file("s");
    let a = Owned::Raw(vec![1, 2], vec![1, 2]);
    let b = Owned::Encoded(3, vec![9]);
    let mut w = SnapshotWriter::create(&path, &Meta::default()).unwrap();
    w.series(4, &[a.block()]).unwrap();
    w.series(4, &[b.block()]).unwrap();
    w.series(5, &[]).unwrap();
    let stats = w.finish().unwrap();
    assert_eq!((stats.totals.series, stats.totals.blocks), (2, 2));
    let snapshot = read(&path).unwrap();
    assert_eq!(contents(&snapshot), [(4, vec![a, b]), (5, vec![])]);
    assert_eq!(snapshot.meta(), &Meta::default());
}

#[test]
fn a_refused_series_leaves_the_snapshot_as_it_was() {
    let dir = TestDir::new("refused");
    let path = dir.file("s");
    let good = Owned::Raw(vec![1], vec![1]);
    let mut w = SnapshotWriter::create(&path, &Meta::default()).unwrap();
    w.series(1, &[good.block()]).unwrap();
    let bad = [
        good.block(),
        SnapBlock::Raw {
            ts: &[1, 2],
            values: &[1],
        },
    ];
    let err = w.series(2, &bad).unwrap_err();
    assert!(
        matches!(
            err,
            SnapshotError::Encode {
                series: 2,
                source: EncodeError::ColumnsDiffer { ts: 2, values: 1 },
                ..
            }
        ),
        "{err}"
    );
    assert!(err
        .to_string()
        .starts_with("cannot write series 2 to snapshot"));
    w.finish().unwrap();
    assert_eq!(contents(&read(&path).unwrap()), [(1, vec![good])]);
}

#[test]
fn a_dropped_writer_leaves_the_previous_snapshot_and_no_temporary_file() {
    let dir = TestDir::new("dropped");
    let path = dir.file("index.snap");
    write_snapshot(&path, 20, 1);
    let mut w = SnapshotWriter::create(&path, &Meta::default()).unwrap();
    for id in 0..300 {
        let owned = blocks_of(id, 2);
        let blocks: Vec<SnapBlock<'_>> = owned.iter().map(Owned::block).collect();
        w.series(id, &blocks).unwrap();
    }
    assert_eq!(
        dir.names().len(),
        2,
        "the temporary file is there while writing"
    );
    drop(w);
    assert_eq!(dir.names(), ["index.snap"]);
    check_snapshot(&path, 20, 1);
}

fn format_error(path: &Path) -> ParseError {
    match read(path) {
        Err(SnapshotError::Format { source, path: p }) => {
            assert_eq!(p, path);
            source
        }
        other => panic!("expected a format error, got {other:?}"),
    }
}

#[test]
fn every_truncated_or_flipped_file_is_refused() {
    let dir = TestDir::new("damaged");
    let path = dir.file("small");
    let mut w = SnapshotWriter::create(&path, &Meta::default()).unwrap();
    w.series(3, &[Owned::Raw(vec![5, 6], vec![7, 8]).block()])
        .unwrap();
    w.series(9, &[Owned::Encoded(2, vec![1, 2, 3]).block()])
        .unwrap();
    w.finish().unwrap();
    let bytes = fs::read(&path).unwrap();
    let damaged = dir.file("damaged");
    for len in 0..bytes.len() {
        fs::write(&damaged, &bytes[..len]).unwrap();
        let err = format_error(&damaged);
        assert!(
            matches!(err, ParseError::Truncated { .. } | ParseError::NotASnapshot),
            "cut at {len}: {err}"
        );
    }
    let mut flipped = bytes.clone();
    for at in 0..bytes.len() {
        flipped[at] ^= 0x10;
        fs::write(&damaged, &flipped).unwrap();
        let err = format_error(&damaged);
        assert!(
            matches!(
                err,
                ParseError::ChecksumMismatch { .. }
                    | ParseError::NotASnapshot
                    | ParseError::UnsupportedVersion { .. }
                    | ParseError::Truncated { .. }
            ),
            "flip at {at}: {err}"
        );
        flipped[at] = bytes[at];
    }
}

#[test]
fn foreign_files_and_future_versions_are_named_as_such() {
    let dir = TestDir::new("foreign");
    let path = dir.file("f");
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
    for bytes in [&png[..], b"", b"series,ts,value\n1,2,3\n"] {
        fs::write(&path, bytes).unwrap();
        assert_eq!(format_error(&path), ParseError::NotASnapshot);
        let message = read(&path).unwrap_err().to_string();
        assert!(message.contains("not a numatree snapshot"), "{message}");
    }
    write_snapshot(&path, 3, 5);
    let mut bytes = fs::read(&path).unwrap();
    bytes[8] = 7;
    fs::write(&path, &bytes).unwrap();
    assert_eq!(
        format_error(&path),
        ParseError::UnsupportedVersion {
            found: 7,
            supported: 1
        }
    );
}

#[test]
fn io_errors_name_the_operation_and_the_path() {
    let dir = TestDir::new("io");
    let missing = dir.file("missing");
    let err = read(&missing).unwrap_err();
    let SnapshotError::Io { op, path, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!((*op, path), ("read the snapshot", &missing));
    assert!(err.to_string().starts_with("cannot read the snapshot "));
    let err = SnapshotWriter::create(&dir.file("no-dir/s"), &Meta::default())
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            SnapshotError::Io {
                op: "create the temporary snapshot file",
                ..
            }
        ),
        "{err}"
    );
}

/// Set in the child of the kill test: the snapshot path it writes to.
const KILL_CHILD: &str = "NUMATREE_SNAPSHOT_KILL_CHILD";
/// The line the child prints once its temporary file has data.
const WRITING: &str = "snapshot child: writing";

/// The kill test's child: writes snapshot #2 over `path` and never finishes.
fn write_until_killed(path: &Path) -> ! {
    let mut w = SnapshotWriter::create(path, &Meta::default()).unwrap();
    let mut announced = false;
    for id in 0.. {
        let owned = blocks_of(id, 2);
        let blocks: Vec<SnapBlock<'_>> = owned.iter().map(Owned::block).collect();
        w.series(id, &blocks).unwrap();
        if !announced && w.totals.sections > 1 {
            let mut out = io::stdout().lock();
            writeln!(out, "{WRITING}").unwrap();
            out.flush().unwrap();
            announced = true;
        }
        // Bounded: past 64 MiB it waits to be killed, still unfinished.
        if w.bytes > 64 << 20 {
            break;
        }
    }
    loop {
        std::thread::park();
    }
}

#[test]
#[cfg_attr(miri, ignore = "spawns a process")]
fn a_killed_writer_leaves_the_previous_snapshot_whole() {
    if let Some(path) = std::env::var_os(KILL_CHILD) {
        write_until_killed(Path::new(&path));
    }
    let dir = TestDir::new("kill");
    let path = dir.file("index.snap");
    write_snapshot(&path, 100, 1);

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "snapshot::tests::a_killed_writer_leaves_the_previous_snapshot_whole",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KILL_CHILD, &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The harness prints `test <name> ... ` before the child's line, on
    // the same line. A watchdog, not a synchronisation: a child that parks
    // without announcing fails the test instead of hanging it.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let started = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.ends_with(WRITING));
        let _ = tx.send(started);
    });
    let started = rx.recv_timeout(std::time::Duration::from_secs(300));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        started,
        Ok(true),
        "the child did not announce writing ({status})"
    );

    // Snapshot #1, whole and verified; #2's partial temporary file beside
    // it is no snapshot.
    check_snapshot(&path, 100, 1);
    let names = dir.names();
    assert_eq!(names.len(), 2, "{names:?}");
    let tmp = dir.file(&names[1]);
    assert!(names[1].starts_with("index.snap.tmp-"), "{names:?}");
    assert!(fs::metadata(&tmp).unwrap().len() > HEADER_LEN as u64);
    assert!(matches!(format_error(&tmp), ParseError::Truncated { .. }));
}

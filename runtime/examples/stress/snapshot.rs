//! Snapshots in the stress run: in a drawn share of the ordinary and delay
//! phases a thread takes `index.snapshot(path)` while writers ingest,
//! readers verify and retention drops (once the writers have taken a drawn
//! number of steps); after the phase the file is restored into a fresh
//! index, on a topology and shape drawn from the seed (the machine's own,
//! the run's 2-node synthetic one, or a 4-node one; 1 to 4 shards per node;
//! freezing on or off), and checked against what was known when the call
//! began:
//! - every key flushed before the phase, and every key a writer accepted
//!   before a `Writer::flush` that returned before the snapshot thread's own
//!   `Index::flush` (made just before the call), is there with a value some
//!   writer wrote for it, unless retention racing the phase may have taken
//!   it (the readers' rule, `Expect::retention_may_take`);
//! - no key below the `drop_before` cutoff that had returned before the
//!   call, nor below the retention floor the model knew before the phase;
//!   no value that no writer wrote for its key, no series nobody wrote;
//! - `validate()` passes and equals `len()`, which equals the points the
//!   call reported; every series scans strictly ascending.
//!
//! The snapshot files live in a directory named with the pid under the
//! system's temporary directory; each is removed once checked, the
//! directory when the run ends (also when it fails, the watchdog's exit
//! included).

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

use numatree::{Index, Record, SnapshotInfo, TopologySource};
use rand::RngExt as _;

use crate::readers::Expect;
use crate::{ensure, Key, Rng};

/// The directory of this run's snapshot files.
pub(crate) fn dir_path() -> PathBuf {
    std::env::temp_dir().join(format!("numatree-stress-{}", std::process::id()))
}

/// This run's snapshot directory; removed when dropped.
pub(crate) struct SnapshotDir {
    dir: PathBuf,
    next: u64,
}

impl SnapshotDir {
    pub(crate) fn new() -> Result<SnapshotDir, String> {
        let dir = dir_path();
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        Ok(SnapshotDir { dir, next: 0 })
    }

    /// A fresh path for one snapshot.
    pub(crate) fn path(&mut self) -> PathBuf {
        self.next += 1;
        self.dir.join(format!("phase-{}.snap", self.next))
    }
}

impl Drop for SnapshotDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where a snapshot is restored.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Topo {
    /// The builder's default (`NUMATREE_TOPOLOGY`, else the machine).
    Default,
    /// The run's `pack:2 numa:1 core:2 pu:1`.
    TwoNodes,
    /// `pack:2 numa:2 core:1 pu:1`.
    FourNodes,
}

/// A phase's snapshot, drawn from the seed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    /// Taken once the writers have taken this many steps (or finished).
    pub(crate) at: u64,
    pub(crate) topo: Topo,
    pub(crate) shards: usize,
    pub(crate) freeze: bool,
}

pub(crate) fn draw(rng: &mut Rng, steps: u64) -> Plan {
    Plan {
        at: rng.random_range(0..=steps),
        topo: [Topo::Default, Topo::TwoNodes, Topo::FourNodes][rng.random_range(0..3) as usize],
        shards: rng.random_range(1..=4) as usize,
        freeze: rng.random_ratio(70, 100),
    }
}

/// What the snapshot thread knew when it made the call.
pub(crate) struct Taken {
    /// The highest `drop_before` cutoff that had returned before the call.
    pub(crate) floor: i64,
    /// Per writer thread: how many of its accepted records were sealed by
    /// a `Writer::flush` that returned before the thread's `Index::flush`.
    pub(crate) sealed: Vec<u64>,
    pub(crate) info: SnapshotInfo,
}

/// Waits until the writers took `at` steps (or finished), flushes what
/// they had sealed, then snapshots.
pub(crate) fn take(
    index: &Index,
    path: &Path,
    at: u64,
    progress: &AtomicU64,
    done: &AtomicUsize,
    sealed: &[AtomicU64],
    floor: &AtomicI64,
) -> Result<Taken, String> {
    while progress.load(Ordering::Relaxed) < at && done.load(Ordering::SeqCst) < sealed.len() {
        std::thread::yield_now();
    }
    let sealed: Vec<u64> = sealed.iter().map(|s| s.load(Ordering::SeqCst)).collect();
    index
        .flush()
        .map_err(|e| format!("Index::flush before the snapshot: {e}"))?;
    let floor = floor.load(Ordering::SeqCst);
    let info = index
        .snapshot(path)
        .map_err(|e| format!("snapshot {}: {e}", path.display()))?;
    Ok(Taken {
        floor,
        sealed,
        info,
    })
}

/// Restores `path` into a fresh index and checks it (see the module docs).
/// `accepted` holds, per writer thread, its accepted records in order.
/// With `demand_all` (the `snapshot-demands-later` negative control) every
/// key accepted in the phase is demanded, also those flushed only after
/// the snapshot: the run must fail. Returns how many keys of the phase
/// were demanded.
pub(crate) fn check(
    path: &Path,
    plan: Plan,
    taken: &Taken,
    expect: &Expect<'_>,
    accepted: &[Vec<Record>],
    demand_all: bool,
) -> Result<usize, String> {
    let mut builder = Index::builder()
        .merge_threads_per_node(1)
        .shards_per_node(plan.shards)
        .freeze_blocks(plan.freeze);
    builder = match plan.topo {
        Topo::Default => builder,
        Topo::TwoNodes => builder.topology(TopologySource::Synthetic(
            "pack:2 numa:1 core:2 pu:1".into(),
        )),
        Topo::FourNodes => builder.topology(TopologySource::Synthetic(
            "pack:2 numa:2 core:1 pu:1".into(),
        )),
    };
    let restored = builder
        .restore(path)
        .map_err(|e| format!("restore {} ({plan:?}): {e}", path.display()))?;
    let _ = std::fs::remove_file(path);
    let result = check_restored(&restored, taken, expect, accepted, demand_all);
    let closed = restored.close();
    let demanded = result.map_err(|e| format!("restored ({plan:?}): {e}"))?;
    closed.map_err(|e| format!("restored ({plan:?}): close: {e}"))?;
    Ok(demanded)
}

fn check_restored(
    restored: &Index,
    taken: &Taken,
    expect: &Expect<'_>,
    accepted: &[Vec<Record>],
    demand_all: bool,
) -> Result<usize, String> {
    let allowed = |k: &Key, v: u64| {
        expect.before.keys.get(k).is_some_and(|vs| vs.contains(&v))
            || expect.values.get(k).is_some_and(|vs| vs.contains(&v))
    };
    let points = restored
        .validate()
        .map_err(|e| format!("storage invariants: {e}"))?;
    ensure!(
        points == restored.len() && points == taken.info.points,
        "{points} points, len() = {}, the snapshot reported {}",
        restored.len(),
        taken.info.points
    );
    // Flushed before the phase.
    for &(s, ts) in expect.before.keys.keys() {
        match restored.get(s, ts) {
            None if expect.retention_may_take(s, ts) => {}
            None => {
                return Err(format!(
                    "key ({s}, {ts}) flushed before the phase is missing"
                ))
            }
            Some(v) => ensure!(
                allowed(&(s, ts), v),
                "({s}, {ts}) = {v}, a value never written for that key"
            ),
        }
    }
    // Accepted in the phase and flushed before the snapshot.
    let mut flushed: HashSet<Key> = HashSet::new();
    for (run, &n) in accepted.iter().zip(&taken.sealed) {
        let n = if demand_all { run.len() } else { n as usize };
        flushed.extend(run[..n].iter().map(|r| (r.key.series, r.key.ts)));
    }
    for &(s, ts) in &flushed {
        match restored.get(s, ts) {
            None if expect.retention_may_take(s, ts) => {}
            None => {
                return Err(format!(
                    "key ({s}, {ts}) accepted in the phase and flushed before the snapshot \
                     is missing{}",
                    if demand_all {
                        " (snapshot-demands-later: keys flushed after it demanded too)"
                    } else {
                        ""
                    }
                ))
            }
            Some(v) => ensure!(
                allowed(&(s, ts), v),
                "({s}, {ts}) = {v}, a value never written for that key"
            ),
        }
    }
    let series: BTreeSet<u32> = expect
        .before
        .written
        .iter()
        .copied()
        .chain(expect.values.keys().map(|k| k.0))
        .collect();
    let mut seen = 0;
    for s in series {
        let got = restored.scan(s, ..);
        seen += got.len();
        for w in got.windows(2) {
            ensure!(w[0].0 < w[1].0, "scan {s} not strictly ascending: {w:?}");
        }
        let gone = taken.floor.max(expect.before.retention.absent_below(s));
        for &(ts, v) in &got {
            ensure!(
                ts >= gone,
                "({s}, {ts}) below the floor {gone} known before the snapshot (drop_before \
                 returned: {})",
                taken.floor
            );
            ensure!(
                allowed(&(s, ts), v),
                "({s}, {ts}) = {v}, a value never written for that key"
            );
        }
    }
    ensure!(
        seen == restored.len(),
        "{} points, {seen} in the series written (a foreign series?)",
        restored.len()
    );
    Ok(flushed.len())
}

/// Per writer thread, the number of its accepted records known sealed.
pub(crate) fn counters(writers: usize) -> Vec<AtomicU64> {
    (0..writers).map(|_| AtomicU64::new(0)).collect()
}

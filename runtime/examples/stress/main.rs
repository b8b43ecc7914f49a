//! numatree's randomized stress run with fault injection, checked against
//! an oracle after every phase (the `db_stress` pattern).
//!
//! ```text
//! cargo run --release -p numatree --example stress -- --seconds 60 [--seed S] [--verbose]
//! cargo xtask stress --seconds 60 [--seed S]
//! ```
//!
//! Each phase draws, from the seed alone, a mix of writers (plain inserts,
//! batches, late points, duplicate keys within and across writers, writer
//! flushes, index flushes, writers dropped mid-batch and replaced),
//! concurrent readers and flushers, and at most one fault:
//! - **merge delay**: every merge blocks on a gate in the merge hook; the
//!   driver opens it once writers are seen waiting (backpressure), never
//!   after a sleep;
//! - **merge panic**: the merge hook panics on the k-th merge; every call
//!   must then return (no hang) and later flush/insert/close must return
//!   `Poisoned`; records in flight may be lost, so the index is replaced;
//! - **memory budget**: a fresh index with a small `memory_budget`; writers
//!   insert until `Error::MemoryBudget`, and everything accepted before it
//!   must be there.
//!
//! Storage and retention, also from the seed:
//! - **frozen blocks**: freezing is on in most indexes and off in about one
//!   in five (then nothing may be frozen); a third of the phases write a few
//!   series of thousands of points, so blocks fill (256 points) and freeze,
//!   and deep late points (up to 4,000 back) land in frozen blocks and thaw
//!   them. Each index's clock moves on between phases, so later phases also
//!   write into the frozen past of earlier ones.
//! - **retention** (module `retention`, which states the model): a fifth of
//!   the indexes have `retain(window)`; in ordinary and delay phases a
//!   thread calls `drop_before` and `drop_series` while writers ingest and
//!   readers verify, and some phases make one more call once the writers
//!   are done. Readers tolerate flushed keys below the phase's cutoffs (or
//!   the retain horizon) and of dropped series vanishing, but only as a
//!   prefix of a series, never a key at or above them, and never a point
//!   below a cutoff whose `drop_before` had returned. After the phase the
//!   model removes what must be gone, keeps what must be there, and
//!   observes once the keys a race left open (concurrent `drop_series`,
//!   the `retain` band between `newest - w - w/16` and `newest - w` of each
//!   shard).
//! - **snapshots** (module `snapshot`, which states the checks): in about
//!   15 % of the ordinary and delay phases a thread beside the retention
//!   thread calls `Index::flush` and then `Index::snapshot` while writers
//!   ingest, readers verify and retention drops. After the phase the file
//!   is restored into a fresh index on a topology (the default, the run's
//!   2-node one or a 4-node one), shard count and freezing drawn from the
//!   seed, and checked: `validate()` equals `len()` and the points written;
//!   every key flushed before the phase, or sealed by a `Writer::flush`
//!   that returned before the snapshot's `Index::flush`, is there with an
//!   allowed value unless the phase's retention may have taken it; nothing
//!   below a `drop_before` cutoff that had returned before the call or the
//!   floor known before the phase; no foreign values or series; scans
//!   strictly ascending.
//!
//! `NUMATREE_STRESS_MUTANT` selects a negative control; the run must fail:
//! `forget-drops` (the model keeps what retention removed),
//! `strict-readers` (readers do not tolerate keys vanishing under a
//! concurrent drop: proves the drops race the readers) or
//! `snapshot-demands-later` (the snapshot check also demands the phase's
//! keys flushed after the snapshot: proves snapshots race ingest and the
//! check of the phase's keys bites).
//!
//! After every phase: `flush`, then `validate()` (storage invariants and
//! byte counters), `len()` and the storage's point count equal the model's
//! keys, every `get` returns the value of the last accepted insert of one
//! of the writers that wrote the key (the winner between writers is
//! unspecified), every series ever written (dropped ones too) scans
//! strictly ascending, duplicate-free and exactly as the model, with no
//! point below its retention floor; `verify_accounting()` holds (expired
//! records included), `keys == inserted - dropped`, nothing is in flight. Readers running during the
//! phase check that scans are ascending, in range, hold only values some
//! writer wrote, and contain every key flushed before the phase began.
//! A watchdog fails the run when a phase takes longer than
//! `--phase-timeout` seconds (a hang). The seed is printed first; a failure
//! prints how to replay it: the same seed replays the same phases (thread
//! schedules differ).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use numatree::{Error, Index, Record, TopologySource, Writer};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt as _, SeedableRng as _};

mod retention;
mod snapshot;

use retention::{Mutant, Op, Ops, Retention};
use snapshot::SnapshotDir;

// ------------------------------------------------------------------ rng

/// The harness's seeded generator: `rand`'s xoshiro256++, the one the bench's
/// workload and the runtime's tests use. Every draw of a run comes from the
/// seed, so a failing seed replays the same phases.
type Rng = Xoshiro256PlusPlus;

// ------------------------------------------------------------------ args

struct Args {
    seconds: f64,
    seed: u64,
    phase_timeout: u64,
    verbose: bool,
}

const USAGE: &str = "usage: stress [--seconds N] [--seed S] [--phase-timeout SECS] [--verbose]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seconds: 10.0,
        seed: Instant::now().elapsed().as_nanos() as u64
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        phase_timeout: 60,
        verbose: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--seconds" => {
                args.seconds = value("--seconds")?
                    .parse()
                    .map_err(|e| format!("--seconds: {e}"))?
            }
            "--seed" => {
                args.seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            "--phase-timeout" => {
                args.phase_timeout = value("--phase-timeout")?
                    .parse()
                    .map_err(|e| format!("--phase-timeout: {e}"))?
            }
            "--verbose" | "-v" => args.verbose = true,
            "--help" | "-h" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(args)
}

// ------------------------------------------------------------------ plans

type Key = (u32, i64);

/// Marker in the payload of injected panics, which the panic hook silences.
const INJECTED: &str = "numatree-stress injected merge panic";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    /// Merges block on a gate until writers are seen waiting.
    Delay,
    /// The merge hook panics on this merge (0-based).
    Panic(usize),
    /// A fresh index with this memory budget, in bytes.
    Budget(usize),
}

#[derive(Clone, Debug)]
enum Step {
    Insert(Record),
    Batch(Vec<Record>),
    /// `Writer::flush`.
    Flush,
    /// `Index::flush`, from the writer's thread.
    IndexFlush,
    /// Drop the writer (sealing its partial slots) and take a new one.
    Reopen,
}

struct Phase {
    fault: Fault,
    writers: Vec<Vec<Step>>,
    /// Run the writers through `Index::run_writers` (per node) instead of
    /// plain scoped threads.
    run_writers: bool,
    readers: usize,
    flusher: bool,
    /// Every value each key may take during the phase.
    values: HashMap<Key, HashSet<u64>>,
    /// Retention calls made during and after the phase.
    ops: Ops,
    /// Whether the writers write few series of many points (blocks fill
    /// and freeze; late points thaw them).
    long: bool,
    /// A snapshot taken during the phase, then restored and checked.
    snapshot: Option<snapshot::Plan>,
}

/// The shape of the index a lifetime uses.
#[derive(Clone, Copy, Debug)]
struct Shape {
    slot_capacity: usize,
    slots_per_node: usize,
    shards_per_node: usize,
    /// `Builder::freeze_blocks`.
    freeze: bool,
    /// `Builder::retain`, in timestamp units.
    retain: Option<i64>,
}

fn draw_shape(rng: &mut Rng, budget: bool) -> Shape {
    Shape {
        slot_capacity: [64, 64, 128, 256, 1024][rng.random_range(0..5) as usize],
        slots_per_node: rng.random_range(1..=3) as usize,
        shards_per_node: rng.random_range(1..=4) as usize,
        freeze: rng.random_ratio(80, 100),
        retain: (!budget && rng.random_ratio(20, 100))
            .then(|| [64, 300, 1_000, 4_000][rng.random_range(0..4) as usize]),
    }
}

const NODES: usize = 2;

/// Draws a phase; its writers start near `base` (each index's clock moves
/// on from phase to phase, so retention cutoffs follow the data).
fn draw_phase(rng: &mut Rng, fault: Fault, shape: Shape, base: i64) -> Phase {
    let run_writers = fault != Fault::Delay && rng.random_ratio(20, 100);
    let writer_count = if run_writers {
        NODES * rng.random_range(1..=2) as usize
    } else {
        rng.random_range(1..=4) as usize
    };
    let error_possible = matches!(fault, Fault::Panic(_) | Fault::Budget(_));
    // Enough records that the pools run dry under a merge delay.
    let min_records = 4 * shape.slot_capacity * (shape.slots_per_node + writer_count + 1);
    // Long phases: a few series of thousands of points, so blocks fill
    // (256 points) and freeze, and deep late points land in frozen blocks.
    let long = rng.random_ratio(35, 100);
    let series_count = if long {
        rng.random_range(1..=3) as u32
    } else {
        rng.random_range(2..=24) as u32
    };
    let extra = if long { 8_000 } else { 4_000 };
    // With `retain`, one `i64::MAX` makes every other point expire: rare.
    let extremes = shape.retain.is_none() || rng.random_ratio(5, 100);
    let mut values: HashMap<Key, HashSet<u64>> = HashMap::new();
    let mut writers = Vec::new();
    for w in 0..writer_count {
        let least = (min_records / writer_count) as u64;
        let records = rng.random_range(least..=least + extra) as usize;
        let mut next_ts: HashMap<u32, i64> = HashMap::new();
        let mut steps = Vec::new();
        let mut batch: Vec<Record> = Vec::new();
        let mut written = 0;
        while written < records {
            // Mostly this writer's own series; some shared ones (a key
            // written by several writers keeps one of their values).
            let series = if rng.random_ratio(15, 100) {
                rng.random_range(0..2) as u32
            } else {
                2 + (w as u32)
                    + writer_count as u32 * rng.random_range(0..u64::from(series_count)) as u32
            };
            let head = next_ts
                .entry(series)
                .or_insert(base + rng.random_range(0..1000) as i64 - 500);
            let ts = match rng.random_range(0..100) {
                0..=79 => {
                    *head += 1 + rng.random_range(0..3) as i64;
                    *head
                }
                80..=85 => *head - rng.random_range(1..=200) as i64, // late point
                // Deep late point: into a frozen block of a long series.
                86..=89 => *head - rng.random_range(1..=4_000) as i64,
                98 if extremes => i64::MIN + rng.random_range(0..4) as i64,
                99 if extremes => i64::MAX - rng.random_range(0..4) as i64,
                _ => *head, // duplicate key, new value
            };
            let value = rng.random::<u64>();
            values.entry((series, ts)).or_default().insert(value);
            let record = Record::new(series, ts, value);
            written += 1;
            if !error_possible && rng.random_ratio(30, 100) {
                batch.push(record);
                if batch.len() >= rng.random_range(1..=300) as usize {
                    steps.push(Step::Batch(std::mem::take(&mut batch)));
                }
            } else {
                if !batch.is_empty() {
                    steps.push(Step::Batch(std::mem::take(&mut batch)));
                }
                steps.push(Step::Insert(record));
            }
            match rng.random_range(0..2_000) {
                0..=3 => steps.push(Step::Flush),
                4 if fault != Fault::Delay => steps.push(Step::IndexFlush),
                5..=6 if !run_writers => {
                    if !batch.is_empty() {
                        steps.push(Step::Batch(std::mem::take(&mut batch)));
                    }
                    steps.push(Step::Reopen);
                }
                _ => {}
            }
        }
        if !batch.is_empty() {
            steps.push(Step::Batch(batch));
        }
        writers.push(steps);
    }
    let steps = writers.iter().map(|w| w.len() as u64).sum();
    let ops = if matches!(fault, Fault::None | Fault::Delay) {
        let mut series: Vec<u32> = values.keys().map(|k| k.0).collect();
        series.sort_unstable();
        series.dedup();
        retention::draw_ops(rng, base, &series, steps)
    } else {
        Ops::default()
    };
    let snapshot = (matches!(fault, Fault::None | Fault::Delay) && rng.random_ratio(15, 100))
        .then(|| snapshot::draw(rng, steps));
    Phase {
        fault,
        writers,
        run_writers,
        readers: rng.random_range(0..3) as usize,
        flusher: fault != Fault::Delay && rng.random_ratio(40, 100),
        values,
        ops,
        long,
        snapshot,
    }
}

// ------------------------------------------------------------------ oracle

/// Keys flushed so far, each with the values it may hold: the last
/// accepted value of each writer that wrote it in the latest phase that did.
struct Oracle {
    keys: BTreeMap<Key, Vec<u64>>,
    /// What retention removed and will remove.
    retention: Retention,
    /// Every series written to the index (dropped ones too: each must scan
    /// as the model says, empty included).
    written: std::collections::BTreeSet<u32>,
}

impl Oracle {
    fn new(retain: Option<i64>, mutant: Mutant) -> Oracle {
        Oracle {
            keys: BTreeMap::new(),
            retention: Retention::new(retain, mutant),
            written: Default::default(),
        }
    }

    /// Applies a phase: `accepted` holds, per writer instance, its accepted
    /// records in order; `ops` the phase's retention calls. Returns the keys
    /// that may or may not be there (retention raced their writers).
    fn apply(&mut self, index: &Index, accepted: &[Vec<Record>], ops: &Ops) -> HashSet<Key> {
        let mut last: HashMap<Key, Vec<u64>> = HashMap::new();
        for instance in accepted {
            let mut mine: HashMap<Key, u64> = HashMap::new();
            for r in instance {
                mine.insert((r.key.series, r.key.ts), r.value);
            }
            for (k, v) in mine {
                last.entry(k).or_default().push(v);
            }
        }
        self.written.extend(last.keys().map(|k| k.0));
        self.retention.apply(index, &mut self.keys, last, ops)
    }
}

// ------------------------------------------------------------------ gate

/// What merges wait on in a delay phase; also counts stalled merges.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cond: Condvar,
    stalled: AtomicUsize,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        if !*open {
            self.stalled.fetch_add(1, Ordering::SeqCst);
        }
        while !*open {
            open = self.cond.wait(open).unwrap();
        }
    }
    fn set(&self, open: bool) {
        *self.open.lock().unwrap() = open;
        self.cond.notify_all();
    }
}

/// The fault a merge hook injects; shared by the hook of one index.
#[derive(Default)]
struct Injector {
    gate: Gate,
    /// Merge number to panic on (`usize::MAX`: none).
    panic_at: AtomicUsize,
    merges: AtomicUsize,
    fired: AtomicBool,
}

impl Injector {
    fn new() -> Arc<Injector> {
        let i = Injector::default();
        i.panic_at.store(usize::MAX, Ordering::SeqCst);
        i.gate.set(true);
        Arc::new(i)
    }
    fn on_merge(&self) {
        let n = self.merges.fetch_add(1, Ordering::SeqCst);
        if n == self.panic_at.load(Ordering::SeqCst) {
            self.fired.store(true, Ordering::SeqCst);
            panic!("{INJECTED} (merge #{n})");
        }
        self.gate.wait();
    }
}

// ------------------------------------------------------------------ totals

#[derive(Default)]
struct Totals {
    phases: u64,
    lifetimes: u64,
    records_accepted: u64,
    keys_verified: u64,
    scans_verified: u64,
    reader_scans: AtomicU64,
    delays: u64,
    delays_with_backpressure: u64,
    panics_armed: u64,
    panics_fired: u64,
    budget_phases: u64,
    budget_hits: u64,
    writers_reopened: u64,
    closes: u64,
    slowest_phase: Duration,
    long_phases: u64,
    /// Indexes with freezing off, and with `retain`.
    unfrozen_indexes: u64,
    retain_indexes: u64,
    /// The most frozen points one index held after a phase.
    most_frozen_points: usize,
    drop_befores: u64,
    drop_series: u64,
    /// Keys whose survival a race left open, and how many survived.
    maybe_keys: u64,
    maybe_survived: u64,
    points_dropped: u64,
    records_expired: u64,
    /// Snapshots taken during phases and checked after them; the points
    /// they held; the keys of their phases flushed before them (demanded);
    /// restores on another topology than the run's.
    snapshots: u64,
    snapshot_points: u64,
    snapshot_phase_keys: u64,
    restores_elsewhere: u64,
}

// ------------------------------------------------------------------ watchdog

struct Watchdog {
    current: Mutex<(u64, String, Instant)>,
}

impl Watchdog {
    fn start(seed: u64, seconds: f64, timeout: Duration) -> Arc<Watchdog> {
        let dog = Arc::new(Watchdog {
            current: Mutex::new((0, "startup".into(), Instant::now())),
        });
        let d = Arc::clone(&dog);
        std::thread::Builder::new()
            .name("stress-watchdog".into())
            .spawn(move || loop {
                // A timer, not synchronization: the run never waits for it.
                std::thread::sleep(Duration::from_millis(250));
                let (phase, label, started) = d.current.lock().unwrap().clone();
                if started.elapsed() > timeout {
                    eprintln!(
                        "numatree-stress: FAILED: phase {phase} ({label}) did not finish within {} s: \
                         a call hung\nreplay: cargo xtask stress --seed {seed} --seconds {seconds}",
                        timeout.as_secs()
                    );
                    // `exit` runs no destructors: remove the snapshots.
                    let _ = std::fs::remove_dir_all(snapshot::dir_path());
                    std::process::exit(3);
                }
            })
            .expect("spawn watchdog");
        dog
    }
    fn enter(&self, phase: u64, label: String) {
        *self.current.lock().unwrap() = (phase, label, Instant::now());
    }
}

// ------------------------------------------------------------------ progress

/// Progress every few seconds on stderr, as the bench reports it: a line
/// stamped with the time since the start, ending with what is done and the
/// time left; rewritten in place when stderr is a terminal, plain lines
/// otherwise (CI logs). The run is bounded by time, so the time left is the
/// deadline's, plus the final close.
struct Ticker {
    start: Instant,
    deadline: Duration,
    next: Duration,
    in_place: bool,
}

impl Ticker {
    /// How often a progress line is printed.
    const EVERY: Duration = Duration::from_secs(5);

    fn new(deadline: Duration) -> Ticker {
        use std::io::IsTerminal as _;
        Ticker {
            start: Instant::now(),
            deadline,
            next: Ticker::EVERY,
            in_place: std::io::stderr().is_terminal(),
        }
    }

    /// Prints a line, keeping the status line under it when in place.
    fn line(&self, msg: &str) {
        let stamp = self.start.elapsed().as_secs_f64();
        if self.in_place {
            eprint!("\r\x1b[2K");
        }
        eprintln!("[{stamp:>7.1}s] {msg}");
    }

    /// Reports progress if the last report is `EVERY` old.
    fn tick(&mut self, totals: &Totals) {
        let elapsed = self.start.elapsed();
        if elapsed < self.next {
            return;
        }
        self.next = elapsed + Ticker::EVERY;
        let msg = format!(
            "stress: {} phases on {} indexes, {} records accepted [{:.0}/{:.0} s done, about {:.0}s left]",
            totals.phases,
            totals.lifetimes,
            totals.records_accepted,
            elapsed.as_secs_f64().min(self.deadline.as_secs_f64()),
            self.deadline.as_secs_f64(),
            self.deadline.saturating_sub(elapsed).as_secs_f64()
        );
        if self.in_place {
            eprint!("\r\x1b[2K[{:>7.1}s] {msg}", elapsed.as_secs_f64());
        } else {
            self.line(&msg);
        }
    }

    /// Clears the status line.
    fn finish(&self) {
        if self.in_place {
            eprint!("\r\x1b[2K");
        }
    }
}

// ------------------------------------------------------------------ running

type Outcome = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}
pub(crate) use ensure;

struct Lifetime {
    index: Index,
    injector: Arc<Injector>,
    shape: Shape,
    oracle: Oracle,
    /// Where the next phase's writers start.
    clock: i64,
}

/// The budget an index of `shape` gets for a drawn `budget`: at least a
/// slot per node (2 nodes here), or `build` refuses it.
fn effective_budget(shape: Shape, budget: usize) -> usize {
    budget.max(2 * shape.slot_capacity * size_of::<numatree::Record>())
}

fn build(shape: Shape, budget: Option<usize>, mutant: Mutant) -> Result<Lifetime, String> {
    let injector = Injector::new();
    let hook = Arc::clone(&injector);
    let mut builder = Index::builder()
        .topology(TopologySource::Synthetic(
            "pack:2 numa:1 core:2 pu:1".into(),
        ))
        .merge_threads_per_node(1)
        .shards_per_node(shape.shards_per_node)
        .slot_capacity(shape.slot_capacity)
        .slots_per_node(shape.slots_per_node)
        .freeze_blocks(shape.freeze)
        .merge_hook(move |_| hook.on_merge());
    if let Some(bytes) = budget {
        builder = builder.memory_budget(effective_budget(shape, bytes));
    }
    if let Some(window) = shape.retain {
        builder = builder.retain(window);
    }
    let index = builder.build().map_err(|e| format!("build: {e}"))?;
    Ok(Lifetime {
        index,
        injector,
        shape,
        oracle: Oracle::new(shape.retain, mutant),
        clock: 0,
    })
}

/// What one writer thread did: its accepted records per writer instance,
/// and the error that stopped it.
#[derive(Default)]
struct WriterRun {
    accepted: Vec<Vec<Record>>,
    error: Option<Error>,
    reopened: u64,
}

/// Runs `steps` on `writer` (replacing it on `Reopen`); stops at the first
/// error, then flushes. Batches are only planned where no error is
/// expected, so an accepted batch is accepted whole.
fn run_steps(
    index: &Index,
    writer: &mut Writer,
    steps: &[Step],
    out: &mut WriterRun,
    progress: &AtomicU64,
    sealed: &AtomicU64,
) {
    out.accepted.push(Vec::new());
    let mut result = Ok(());
    // Records accepted so far, over every writer instance.
    let accepted = |out: &WriterRun| out.accepted.iter().map(|a| a.len() as u64).sum::<u64>();
    for step in steps {
        progress.fetch_add(1, Ordering::Relaxed);
        result = match step {
            Step::Insert(r) => writer
                .insert(r.key.series, r.key.ts, r.value)
                .map(|()| out.accepted.last_mut().unwrap().push(*r)),
            Step::Batch(rs) => writer
                .insert_batch(rs)
                .map(|()| out.accepted.last_mut().unwrap().extend_from_slice(rs)),
            Step::Flush => writer.flush().map(|()| {
                // Every record accepted so far is sealed (a snapshot's own
                // `Index::flush` after this makes them visible).
                sealed.store(accepted(out), Ordering::SeqCst);
            }),
            Step::IndexFlush => index.flush(),
            Step::Reopen => {
                // Dropping seals the old writer's partial slots.
                drop(std::mem::replace(writer, index.writer()));
                out.accepted.push(Vec::new());
                out.reopened += 1;
                Ok(())
            }
        };
        if result.is_err() {
            break;
        }
    }
    let flushed = writer.flush();
    if flushed.is_ok() {
        sealed.store(accepted(out), Ordering::SeqCst);
    }
    out.error = result.and(flushed).err();
}

/// What readers may see during a phase.
struct Expect<'a> {
    /// The keys flushed before the phase.
    before: &'a Oracle,
    /// Every value each key may take during the phase.
    values: &'a HashMap<Key, HashSet<u64>>,
    /// Per series: flushed keys below this may vanish (retention).
    vanish: HashMap<u32, i64>,
    /// Series dropped whole during the phase: any of their keys may vanish,
    /// and keys rewritten after the drop come back.
    dropped: HashSet<u32>,
    /// No point below this is visible: a `drop_before` to it returned.
    floor: AtomicI64,
    /// Where the phase's writers start: readers scan around it.
    base: i64,
    /// The `strict-readers` negative control: no key may vanish.
    strict: bool,
}

impl Expect<'_> {
    /// Whether the flushed key `(s, ts)` may be missing during the phase.
    fn may_vanish(&self, s: u32, ts: i64) -> bool {
        !self.strict && self.retention_may_take(s, ts)
    }

    /// Whether retention during the phase may take the flushed key
    /// `(s, ts)`, whatever the negative control (the snapshot check uses
    /// this: `strict-readers` is about readers only).
    fn retention_may_take(&self, s: u32, ts: i64) -> bool {
        self.dropped.contains(&s) || self.vanish.get(&s).is_some_and(|&b| ts < b)
    }
}

/// Checks a scan's shape and, against the oracle of flushed keys and the
/// phase's possible values, its contents; `floor` is the highest
/// `drop_before` cutoff that had returned before the scan began.
fn check_scan(
    series: u32,
    t0: i64,
    t1: i64,
    got: &[(i64, u64)],
    expect: &Expect<'_>,
    floor: i64,
) -> Outcome {
    let (before, values) = (expect.before, expect.values);
    for w in got.windows(2) {
        ensure!(
            w[0].0 < w[1].0,
            "scan {series} {t0}..={t1} not strictly ascending: {w:?}"
        );
    }
    let seen: HashMap<i64, u64> = got.iter().copied().collect();
    for &(ts, v) in got {
        ensure!(
            (t0..=t1).contains(&ts),
            "scan {series} {t0}..={t1} returned ts {ts}"
        );
        ensure!(
            ts >= floor,
            "scan {series} {t0}..={t1} returned ts {ts} after drop_before({floor}) returned"
        );
        let old = before.keys.get(&(series, ts));
        let ok = old.is_some_and(|vs| vs.contains(&v))
            || values.get(&(series, ts)).is_some_and(|vs| vs.contains(&v));
        ensure!(
            ok,
            "scan {series} returned ({ts}, {v}), a value never written for that key"
        );
    }
    // Retention removes a prefix of a series in one version: once a
    // flushed key is there, every later flushed key is (unless the series
    // was dropped whole and started again).
    let mut kept = None;
    for (&(s, ts), vs) in before.keys.range((series, t0)..=(series, t1)) {
        debug_assert_eq!(s, series);
        match seen.get(&ts) {
            None if !expect.may_vanish(s, ts) => {
                return Err(format!(
                    "scan {series} {t0}..={t1} misses flushed key ts {ts}"
                ))
            }
            None => {
                if let Some(k) = kept.filter(|_| !expect.dropped.contains(&s)) {
                    return Err(format!(
                        "scan {series} {t0}..={t1} misses flushed key ts {ts} but holds \
                         flushed ts {k}: retention removed more than a prefix"
                    ));
                }
            }
            Some(v) if !values.contains_key(&(s, ts)) && !vs.contains(v) => {
                return Err(format!(
                    "scan {series} ts {ts}: value {v}, expected one of {vs:?}"
                ))
            }
            Some(_) => kept = Some(ts),
        }
    }
    Ok(())
}

/// A reader: random range scans, each followed by point lookups of the
/// flushed keys in its range, until `stop`; every answer is checked against
/// the oracle while the writers ingest.
fn read_loop(
    index: &Index,
    expect: &Expect<'_>,
    series: &[u32],
    mut rng: Rng,
    stop: &AtomicBool,
    scans: &AtomicU64,
) -> Outcome {
    if series.is_empty() {
        return Ok(());
    }
    let (before, values) = (expect.before, expect.values);
    while !stop.load(Ordering::Relaxed) {
        let s = series[rng.random_range(0..series.len() as u64) as usize];
        let a = expect.base + rng.random_range(0..5_000) as i64 - 4_000;
        let (t0, t1) = if rng.random_ratio(10, 100) {
            (i64::MIN, i64::MAX)
        } else {
            (a, a + rng.random_range(0..500) as i64)
        };
        let floor = expect.floor.load(Ordering::SeqCst);
        let got = index.scan(s, t0..=t1);
        check_scan(s, t0, t1, &got, expect, floor)?;
        scans.fetch_add(1, Ordering::Relaxed);
        // Point lookups of keys flushed before the phase: each must be
        // found (unless retention may have taken it), with a value some
        // writer wrote for it.
        let flushed = before.keys.range((s, t0)..=(s, t1));
        for (&(s, ts), vs) in flushed.take(8) {
            let Some(v) = index.get(s, ts) else {
                if expect.may_vanish(s, ts) {
                    continue;
                }
                return Err(format!(
                    "get({s}, {ts}) = None during ingest: a flushed key vanished"
                ));
            };
            ensure!(
                vs.contains(&v) || values.get(&(s, ts)).is_some_and(|w| w.contains(&v)),
                "get({s}, {ts}) = {v} during ingest, a value never written for that key"
            );
        }
    }
    Ok(())
}

/// Full check of a quiescent index against the oracle; then fixes each
/// key's value to the one observed (the writer that won). Keys in `maybe`
/// (a retention call raced their writers) are observed first: absent, they
/// leave the oracle; present, their value must be allowed.
fn verify(
    life: &mut Lifetime,
    rng: &mut Rng,
    totals: &mut Totals,
    maybe: &HashSet<Key>,
) -> Outcome {
    let index = &life.index;
    let oracle = &mut life.oracle;
    for k in maybe {
        let vs = &oracle.keys[k];
        totals.maybe_keys += 1;
        match index.get(k.0, k.1) {
            None => {
                oracle.keys.remove(k);
            }
            Some(v) => {
                ensure!(
                    vs.contains(&v),
                    "get({}, {}) = {v} after a drop raced its writers, expected one of {vs:?}",
                    k.0,
                    k.1
                );
                totals.maybe_survived += 1;
            }
        }
    }
    let points = index
        .validate()
        .map_err(|e| format!("storage invariants: {e}"))?;
    ensure!(
        points == oracle.keys.len(),
        "storage holds {points} points, {} distinct keys were accepted",
        oracle.keys.len()
    );
    ensure!(
        index.len() == oracle.keys.len(),
        "len() = {} but {} distinct keys were accepted",
        index.len(),
        oracle.keys.len()
    );
    for (&(s, ts), vs) in oracle.keys.iter_mut() {
        let Some(v) = index.get(s, ts) else {
            return Err(format!("get({s}, {ts}) = None: accepted record lost"));
        };
        ensure!(
            vs.contains(&v),
            "get({s}, {ts}) = {v}, expected one of {vs:?}"
        );
        *vs = vec![v];
    }
    totals.keys_verified += oracle.keys.len() as u64;
    for &s in &oracle.written {
        let got = index.scan(s, ..);
        let gone = oracle.retention.absent_below(s);
        if let Some(&(ts, _)) = got.first() {
            ensure!(
                ts >= gone,
                "series {s} holds ts {ts}, below its retention floor {gone} (drop_before \
                 floor {}, retain {:?})",
                oracle.retention.floor,
                oracle.retention.window
            );
        }
        let want: Vec<(i64, u64)> = oracle
            .keys
            .range((s, i64::MIN)..=(s, i64::MAX))
            .map(|(k, vs)| (k.1, vs[0]))
            .collect();
        ensure!(
            got == want,
            "scan({s}, ..) differs from the oracle ({} vs {} records)",
            got.len(),
            want.len()
        );
        totals.scans_verified += 1;
    }
    for _ in 0..16 {
        let s = rng.random_range(0..40) as u32;
        let a = life.clock + rng.random_range(0..5_000) as i64 - 4_000;
        let b = a + rng.random_range(0..300) as i64 - 50; // sometimes inverted
        let got = index.scan(s, a..b);
        let want: Vec<(i64, u64)> = if a < b {
            oracle
                .keys
                .range((s, a)..(s, b))
                .map(|(k, vs)| (k.1, vs[0]))
                .collect()
        } else {
            Vec::new()
        };
        ensure!(got == want, "scan({s}, {a}..{b}) differs from the oracle");
        totals.scans_verified += 1;
    }
    let per_shard: usize = index.shard_lengths().iter().map(|x| x.2).sum();
    ensure!(
        per_shard == index.len(),
        "shard lengths sum to {per_shard}, len() = {}",
        index.len()
    );
    let stats = index.stats();
    stats.verify_accounting().map_err(|e| e.to_string())?;
    let t = &stats.total;
    ensure!(
        t.records_in_flight == 0,
        "{} records still in flight after a flush",
        t.records_in_flight
    );
    ensure!(
        t.keys == index.len()
            && t.records_inserted.checked_sub(t.points_dropped) == Some(t.keys as u64),
        "stats: keys {} = inserted {} - dropped {} expected, len() = {}",
        t.keys,
        t.records_inserted,
        t.points_dropped,
        index.len()
    );
    ensure!(
        life.shape.freeze || (t.frozen_points == 0 && t.frozen_bytes == 0),
        "freezing is off but {} points in {} bytes are frozen",
        t.frozen_points,
        t.frozen_bytes
    );
    totals.most_frozen_points = totals.most_frozen_points.max(t.frozen_points);
    Ok(())
}

/// What happens to an index after a phase.
#[derive(PartialEq, Eq)]
enum After {
    /// More phases may run on it.
    Keep,
    /// Close it (and check shutdown): a budget index has served its phase.
    Close,
    /// Poisoned: already closed with an error, replace it.
    Discard,
}

/// Runs one phase on `life` and checks it.
fn run_phase(
    life: &mut Lifetime,
    phase: &Phase,
    rng: &mut Rng,
    totals: &mut Totals,
    snaps: &mut SnapshotDir,
) -> Result<After, String> {
    let index = &life.index;
    let injector = &life.injector;
    match phase.fault {
        Fault::Delay => injector.gate.set(false),
        Fault::Panic(k) => {
            let now = injector.merges.load(Ordering::SeqCst);
            injector.panic_at.store(now + k, Ordering::SeqCst);
        }
        _ => {}
    }
    let stalls_before = injector.gate.stalled.load(Ordering::SeqCst);
    let waits_before = index.stats().total.backpressure_waits;
    let stop = AtomicBool::new(false);
    let series: Vec<u32> = {
        let mut s: Vec<u32> = phase.values.keys().map(|k| k.0).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let vanish = life.oracle.retention.vanish_bounds(
        index,
        &phase.values,
        life.oracle.written.iter().copied(),
        &phase.ops,
    );
    let expect = Expect {
        before: &life.oracle,
        values: &phase.values,
        vanish,
        dropped: phase
            .ops
            .during
            .iter()
            .map(|d| d.1)
            .chain(phase.ops.after)
            .filter_map(|op| match op {
                Op::DropSeries(s) => Some(s),
                Op::DropBefore(_) => None,
            })
            .collect(),
        floor: AtomicI64::new(life.oracle.retention.floor),
        base: life.clock,
        strict: life.oracle.retention.mutant == Mutant::StrictReaders,
    };
    let runs: Vec<Mutex<WriterRun>> = phase.writers.iter().map(|_| Mutex::default()).collect();
    let done = AtomicUsize::new(0);
    let progress = AtomicU64::new(0);
    let sealed = snapshot::counters(phase.writers.len());
    let snap_path = phase.snapshot.map(|_| snaps.path());
    let mut taken = None;
    let mut saw_backpressure = false;
    let mut problems: Vec<String> = Vec::new();
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..phase.readers)
            .map(|r| {
                let rng = Rng::seed_from_u64(rng.random::<u64>() ^ r as u64);
                let (stop, series, expect) = (&stop, &series, &expect);
                let scans = &totals.reader_scans;
                s.spawn(move || read_loop(index, expect, series, rng, stop, scans))
            })
            .collect();
        let reaper = (!phase.ops.during.is_empty()).then(|| {
            let (progress, done, floor) = (&progress, &done, &expect.floor);
            let writers = phase.writers.len();
            s.spawn(move || retention::reap(index, &phase.ops, progress, done, writers, floor))
        });
        // Beside the retention thread, while writers ingest and readers
        // verify.
        let snapshotter = phase
            .snapshot
            .zip(snap_path.as_deref())
            .map(|(plan, path)| {
                let (progress, done, floor, sealed) = (&progress, &done, &expect.floor, &sealed);
                s.spawn(move || snapshot::take(index, path, plan.at, progress, done, sealed, floor))
            });
        let flusher = phase.flusher.then(|| {
            let stop = &stop;
            s.spawn(move || -> Outcome {
                while !stop.load(Ordering::Relaxed) {
                    match index.flush() {
                        Ok(()) => {}
                        Err(Error::Poisoned(_)) if matches!(phase.fault, Fault::Panic(_)) => {
                            return Ok(())
                        }
                        Err(e) => return Err(format!("concurrent Index::flush: {e}")),
                    }
                    std::thread::yield_now();
                }
                Ok(())
            })
        });
        let (runs, done, progress, sealed) = (&runs, &done, &progress, &sealed);
        let ingest = s.spawn(move || {
            if phase.run_writers {
                let per_node = phase.writers.len() / NODES;
                let result = index.run_writers(per_node, |ctx, w| {
                    let mut run = WriterRun::default();
                    let steps = &phase.writers[ctx.global];
                    run_steps(index, w, steps, &mut run, progress, &sealed[ctx.global]);
                    let err = run.error.clone();
                    *runs[ctx.global].lock().unwrap() = run;
                    done.fetch_add(1, Ordering::SeqCst);
                    err.map_or(Ok(()), Err)
                });
                result.err()
            } else {
                std::thread::scope(|s2| {
                    for (i, steps) in phase.writers.iter().enumerate() {
                        s2.spawn(move || {
                            let mut run = WriterRun::default();
                            let w = &mut index.writer();
                            run_steps(index, w, steps, &mut run, progress, &sealed[i]);
                            *runs[i].lock().unwrap() = run;
                            done.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                });
                None
            }
        });
        if phase.fault == Fault::Delay {
            // Open the gate once merges are held and writers are seen
            // waiting for them (or have all finished without needing to).
            loop {
                let stalled = injector.gate.stalled.load(Ordering::SeqCst) > stalls_before;
                let waiting = index.stats().total.backpressure_waits > waits_before;
                if stalled && waiting {
                    saw_backpressure = true;
                    break;
                }
                if done.load(Ordering::SeqCst) == phase.writers.len() {
                    break;
                }
                std::thread::yield_now();
            }
            injector.gate.set(true);
        }
        match ingest.join() {
            Ok(Some(e)) if !matches!(phase.fault, Fault::Panic(_) | Fault::Budget(_)) => {
                problems.push(format!("run_writers: {e}"))
            }
            Ok(_) => {}
            Err(_) => problems.push("ingest thread panicked".into()),
        }
        if let Some(r) = reaper {
            match r.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => problems.push(format!("retention: {e}")),
                Err(_) => problems.push("retention thread panicked".into()),
            }
        }
        if let Some(t) = snapshotter {
            match t.join() {
                Ok(Ok(t)) => taken = Some(t),
                Ok(Err(e)) => problems.push(e),
                Err(_) => problems.push("snapshot thread panicked".into()),
            }
        }
        if let Some(op) = phase.ops.after {
            // Every record is sealed now (each writer flushed), so this
            // call's effect is exact.
            if let Err(e) = retention::apply(index, op, &expect.floor) {
                problems.push(format!("retention after ingest: {e}"));
            }
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            match r.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => problems.push(format!("reader: {e}")),
                Err(_) => problems.push("reader panicked".into()),
            }
        }
        if let Some(f) = flusher {
            match f.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => problems.push(e),
                Err(_) => problems.push("flusher panicked".into()),
            }
        }
    });
    if let Some(p) = problems.into_iter().next() {
        return Err(p);
    }
    let runs: Vec<WriterRun> = runs.into_iter().map(|m| m.into_inner().unwrap()).collect();
    let accepted: Vec<Vec<Record>> = runs
        .iter()
        .flat_map(|r| r.accepted.iter().cloned())
        .collect();
    totals.records_accepted += accepted.iter().map(|a| a.len() as u64).sum::<u64>();
    if let (Some(plan), Some(taken), Some(path)) = (phase.snapshot, &taken, &snap_path) {
        // Per writer thread, its accepted records in order.
        let per_thread: Vec<Vec<Record>> = runs.iter().map(|r| r.accepted.concat()).collect();
        let demand_all = life.oracle.retention.mutant == Mutant::SnapshotDemandsLater;
        let demanded = snapshot::check(path, plan, taken, &expect, &per_thread, demand_all)
            .map_err(|e| format!("snapshot: {e}"))?;
        totals.snapshots += 1;
        totals.snapshot_points += taken.info.points as u64;
        totals.snapshot_phase_keys += demanded as u64;
        totals.restores_elsewhere += u64::from(!matches!(plan.topo, snapshot::Topo::TwoNodes));
    }
    totals.writers_reopened += runs.iter().map(|r| r.reopened).sum::<u64>();
    match phase.fault {
        Fault::None | Fault::Delay => {
            if let Some(e) = runs.iter().find_map(|r| r.error.as_ref()) {
                return Err(format!("writer failed without a fault: {e}"));
            }
            if phase.fault == Fault::Delay {
                totals.delays += 1;
                totals.delays_with_backpressure += u64::from(saw_backpressure);
            }
            index.flush().map_err(|e| format!("flush: {e}"))?;
            for op in phase.ops.during.iter().map(|d| d.1).chain(phase.ops.after) {
                match op {
                    Op::DropBefore(_) => totals.drop_befores += 1,
                    Op::DropSeries(_) => totals.drop_series += 1,
                }
            }
            let maybe = life.oracle.apply(&life.index, &accepted, &phase.ops);
            verify(life, rng, totals, &maybe)?;
            Ok(After::Keep)
        }
        Fault::Budget(budget) => {
            totals.budget_phases += 1;
            for r in &runs {
                match &r.error {
                    None => {}
                    Some(Error::MemoryBudget { budget: b, used }) => {
                        let budget = effective_budget(life.shape, budget);
                        ensure!(
                            *b == budget && used >= b,
                            "MemoryBudget {{ budget: {b}, used: {used} }} for budget {budget}"
                        );
                        totals.budget_hits += 1;
                    }
                    Some(e) => return Err(format!("budget phase: unexpected error {e}")),
                }
            }
            index
                .flush()
                .map_err(|e| format!("flush after budget errors: {e}"))?;
            let maybe = life.oracle.apply(&life.index, &accepted, &phase.ops);
            verify(life, rng, totals, &maybe)?;
            Ok(After::Close)
        }
        Fault::Panic(_) => {
            totals.panics_armed += 1;
            let fired = injector.fired.load(Ordering::SeqCst);
            for r in &runs {
                match &r.error {
                    None => {}
                    Some(Error::Poisoned(msg)) if fired => {
                        ensure!(
                            msg.contains(INJECTED),
                            "Poisoned with a foreign message: {msg}"
                        )
                    }
                    Some(e) => {
                        return Err(format!(
                            "panic phase (fired: {fired}): unexpected error {e}"
                        ))
                    }
                }
            }
            match index.flush() {
                Ok(()) if !injector.fired.load(Ordering::SeqCst) => {
                    // The fault never came: an ordinary phase.
                    injector.panic_at.store(usize::MAX, Ordering::SeqCst);
                    let maybe = life.oracle.apply(&life.index, &accepted, &phase.ops);
                    verify(life, rng, totals, &maybe)?;
                    return Ok(After::Keep);
                }
                Ok(()) => return Err("flush returned Ok after a merge panic".into()),
                Err(Error::Poisoned(_)) => {}
                Err(e) => return Err(format!("flush after merge panic: {e}")),
            }
            totals.panics_fired += 1;
            // Every later call errors, none hangs.
            let mut w = index.writer();
            let mut refused = false;
            for ts in 0..=(life.shape.slot_capacity as i64 + 1) {
                match w.insert(7, ts, 0) {
                    Ok(()) => {}
                    Err(Error::Poisoned(_)) => {
                        refused = true;
                        break;
                    }
                    Err(e) => return Err(format!("insert after poison: {e}")),
                }
            }
            ensure!(
                refused,
                "a poisoned index accepted a slot's worth of inserts"
            );
            ensure!(
                matches!(w.flush(), Ok(()) | Err(Error::Poisoned(_))),
                "writer flush after poison"
            );
            drop(w);
            ensure!(
                matches!(index.close(), Err(Error::Poisoned(_))),
                "close after poison must be Poisoned"
            );
            // Records in flight may be lost; what was flushed before the
            // phase and not rewritten in it must still be there.
            for (k, vs) in &life.oracle.keys {
                // `retain` may have swept it during the phase.
                let swept = expect.vanish.get(&k.0).is_some_and(|&b| k.1 < b);
                if phase.values.contains_key(k) || swept {
                    continue;
                }
                let got = index.get(k.0, k.1);
                ensure!(
                    got.is_some_and(|v| vs.contains(&v)),
                    "after poison: get{k:?} = {got:?}, expected {vs:?}"
                );
            }
            Ok(After::Discard)
        }
    }
}

/// Closes the index and checks shutdown: Ok with every record accounted
/// for, inserts refused, close twice fine, queries still right.
fn close_and_check(life: &mut Lifetime, rng: &mut Rng, totals: &mut Totals) -> Outcome {
    let stats = life.index.close().map_err(|e| format!("close: {e}"))?;
    stats.verify_accounting().map_err(|e| e.to_string())?;
    totals.points_dropped += stats.total.points_dropped;
    totals.records_expired += stats.total.records_expired;
    let mut w = life.index.writer();
    ensure!(
        matches!(w.insert(1, 1, 1), Err(Error::Closed)),
        "insert after close must be Closed"
    );
    drop(w);
    life.index
        .close()
        .map_err(|e| format!("second close: {e}"))?;
    totals.closes += 1;
    verify(life, rng, totals, &HashSet::new())
}

fn draw_fault(rng: &mut Rng) -> Fault {
    match rng.random_range(0..100) {
        0..=54 => Fault::None,
        55..=74 => Fault::Delay,
        75..=89 => Fault::Panic(rng.random_range(0..12) as usize),
        _ => Fault::Budget(rng.random_range(32 << 10..=1 << 20) as usize),
    }
}

fn run(args: &Args) -> Outcome {
    let mutant = Mutant::from_env()?;
    if mutant != Mutant::None {
        println!("numatree-stress: negative control {mutant:?}: this run must fail");
    }
    let mut rng = Rng::seed_from_u64(args.seed);
    let mut totals = Totals::default();
    let mut snaps = SnapshotDir::new()?;
    let dog = Watchdog::start(
        args.seed,
        args.seconds,
        Duration::from_secs(args.phase_timeout),
    );
    let started = Instant::now();
    let deadline = Duration::from_secs_f64(args.seconds);
    let mut ticker = Ticker::new(deadline);
    let mut life: Option<Lifetime> = None;
    let mut phase_no = 0u64;
    while started.elapsed() < deadline {
        phase_no += 1;
        let fault = draw_fault(&mut rng);
        let budget = matches!(fault, Fault::Budget(_));
        if budget || life.is_none() {
            if let Some(mut old) = life.take() {
                dog.enter(phase_no, "close".into());
                close_and_check(&mut old, &mut rng, &mut totals)
                    .map_err(|e| format!("phase {phase_no} (close): {e}"))?;
            }
            let shape = draw_shape(&mut rng, budget);
            let b = if let Fault::Budget(bytes) = fault {
                Some(bytes)
            } else {
                None
            };
            life = Some(build(shape, b, mutant)?);
            totals.lifetimes += 1;
            totals.unfrozen_indexes += u64::from(!shape.freeze);
            totals.retain_indexes += u64::from(shape.retain.is_some());
        }
        let current = life.as_mut().expect("built above");
        let phase = draw_phase(&mut rng, fault, current.shape, current.clock);
        totals.long_phases += u64::from(phase.long);
        let label = format!(
            "{:?}, {} writers{}, {} readers{}, {} {}records{}{}, {:?}",
            fault,
            phase.writers.len(),
            if phase.run_writers {
                " (run_writers)"
            } else {
                ""
            },
            phase.readers,
            if phase.flusher { ", flusher" } else { "" },
            phase.values.len(),
            if phase.long { "long-series " } else { "" },
            if phase.ops.is_empty() {
                ""
            } else {
                ", retention "
            },
            phase.ops.label(),
            current.shape
        ) + &phase
            .snapshot
            .map_or(String::new(), |p| format!(", snapshot {p:?}"));
        dog.enter(phase_no, label.clone());
        let t = Instant::now();
        let end = run_phase(current, &phase, &mut rng, &mut totals, &mut snaps)
            .map_err(|e| format!("phase {phase_no} ({label}): {e}"))?;
        let took = t.elapsed();
        if let Some(life) = life.as_mut() {
            life.clock += rng.random_range(0..=2_000) as i64;
        }
        totals.slowest_phase = totals.slowest_phase.max(took);
        totals.phases += 1;
        if args.verbose {
            ticker.line(&format!("phase {phase_no}: {label}: ok in {took:.1?}"));
        }
        ticker.tick(&totals);
        let close = match end {
            After::Discard => {
                life = None;
                false
            }
            After::Close => true,
            After::Keep => rng.random_ratio(15, 100),
        };
        if close {
            let mut old = life.take().expect("present");
            dog.enter(phase_no, "close".into());
            close_and_check(&mut old, &mut rng, &mut totals)
                .map_err(|e| format!("phase {phase_no} (close): {e}"))?;
        }
    }
    if let Some(mut old) = life.take() {
        dog.enter(phase_no, "final close".into());
        close_and_check(&mut old, &mut rng, &mut totals)
            .map_err(|e| format!("final close: {e}"))?;
    }
    ticker.finish();
    let t = &totals;
    println!(
        "numatree-stress: seed {} passed: {} phases on {} indexes in {:.1} s (slowest phase {:.2?})",
        args.seed,
        t.phases,
        t.lifetimes,
        started.elapsed().as_secs_f64(),
        t.slowest_phase
    );
    println!(
        "  records accepted {}, keys verified {}, full/range scans verified {}, reader scans checked {}",
        t.records_accepted,
        t.keys_verified,
        t.scans_verified,
        t.reader_scans.load(Ordering::Relaxed)
    );
    println!(
        "  faults: merge delays {} ({} with writers seen waiting), merge panics {} fired / {} armed, \
         memory-budget phases {} ({} MemoryBudget errors); writers dropped mid-stream {}; closes {}",
        t.delays,
        t.delays_with_backpressure,
        t.panics_fired,
        t.panics_armed,
        t.budget_phases,
        t.budget_hits,
        t.writers_reopened,
        t.closes
    );
    println!(
        "  blocks: {} long-series phases, most frozen points in an index {}, {} indexes with \
         freezing off; retention: {} indexes with retain, {} drop_before, {} drop_series, \
         {} points dropped, {} records expired, {} keys raced by a drop ({} survived)",
        t.long_phases,
        t.most_frozen_points,
        t.unfrozen_indexes,
        t.retain_indexes,
        t.drop_befores,
        t.drop_series,
        t.points_dropped,
        t.records_expired,
        t.maybe_keys,
        t.maybe_survived
    );
    println!(
        "  snapshots: {} taken during ingest and restored ({} on another topology), {} points \
         restored, {} keys of their phases flushed before them demanded",
        t.snapshots, t.restores_elsewhere, t.snapshot_points, t.snapshot_phase_keys
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // Injected merge panics are expected: keep them out of the log.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if !msg.contains(INJECTED) {
            default_hook(info);
        }
    }));
    println!(
        "numatree-stress: seed {} for {} s (replay: cargo xtask stress --seed {} --seconds {})",
        args.seed, args.seconds, args.seed, args.seconds
    );
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "numatree-stress: FAILED with seed {}: {e}\nreplay: cargo xtask stress --seed {} --seconds {}",
                args.seed, args.seed, args.seconds
            );
            ExitCode::FAILURE
        }
    }
}

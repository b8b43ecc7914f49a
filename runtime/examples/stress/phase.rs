//! The phase driver: runs one drawn phase on an index. Writer threads
//! (plain or through `run_writers`) ingest their steps while readers, a
//! flusher, and the retention and snapshot threads run beside them, and a
//! delay fault's gate is opened once writers are seen waiting; then it
//! collects what every thread saw and checks the outcome the phase's fault
//! demands (the oracle's full check, the memory-budget errors, or poison
//! after a merge panic).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread::ScopedJoinHandle;

use numatree::{Error, Index, Record, Writer};
use rand::{RngExt as _, SeedableRng as _};

use crate::inject::{Injector, INJECTED};
use crate::lifetime::{effective_budget, Lifetime};
use crate::oracle::verify;
use crate::plan::{Fault, Phase, Step, NODES};
use crate::readers::{read_loop, Expect};
use crate::report::Totals;
use crate::retention::{self, Mutant, Op};
use crate::snapshot::{self, SnapshotDir, Taken};
use crate::{ensure, Outcome, Rng};

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

/// What happens to an index after a phase.
#[derive(PartialEq, Eq)]
pub(crate) enum After {
    /// More phases may run on it.
    Keep,
    /// Close it (and check shutdown): a budget index has served its phase.
    Close,
    /// Poisoned: already closed with an error, replace it.
    Discard,
}

/// Runs one phase on `life` and checks it.
pub(crate) fn run_phase(
    life: &mut Lifetime,
    phase: &Phase,
    rng: &mut Rng,
    totals: &mut Totals,
    snaps: &mut SnapshotDir,
) -> Result<After, String> {
    arm(&life.injector, phase.fault);
    let vanish = life.oracle.retention.vanish_bounds(
        &life.index,
        &phase.values,
        life.oracle.written.iter().copied(),
        &phase.ops,
    );
    let expect = expectation(life, phase, vanish);
    let snap_path = phase.snapshot.map(|_| snaps.path());
    let ran = run_threads(life, phase, &expect, rng, totals, snap_path.as_deref())?;
    let accepted: Vec<Vec<Record>> = ran
        .runs
        .iter()
        .flat_map(|r| r.accepted.iter().cloned())
        .collect();
    totals.records_accepted += accepted.iter().map(|a| a.len() as u64).sum::<u64>();
    if let (Some(plan), Some(taken), Some(path)) = (phase.snapshot, &ran.taken, &snap_path) {
        // Per writer thread, its accepted records in order.
        let per_thread: Vec<Vec<Record>> = ran.runs.iter().map(|r| r.accepted.concat()).collect();
        let demand_all = life.oracle.retention.mutant == Mutant::SnapshotDemandsLater;
        let demanded = snapshot::check(path, plan, taken, &expect, &per_thread, demand_all)
            .map_err(|e| format!("snapshot: {e}"))?;
        totals.snapshots += 1;
        totals.snapshot_points += taken.info.points as u64;
        totals.snapshot_phase_keys += demanded as u64;
        totals.restores_elsewhere += u64::from(!matches!(plan.topo, snapshot::Topo::TwoNodes));
    }
    totals.writers_reopened += ran.runs.iter().map(|r| r.reopened).sum::<u64>();
    match phase.fault {
        Fault::None | Fault::Delay => {
            if let Some(e) = ran.runs.iter().find_map(|r| r.error.as_ref()) {
                return Err(format!("writer failed without a fault: {e}"));
            }
            if phase.fault == Fault::Delay {
                totals.delays += 1;
                totals.delays_with_backpressure += u64::from(ran.saw_backpressure);
            }
            life.index.flush().map_err(|e| format!("flush: {e}"))?;
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
            check_budget_errors(life, budget, &ran.runs, totals)?;
            life.index
                .flush()
                .map_err(|e| format!("flush after budget errors: {e}"))?;
            let maybe = life.oracle.apply(&life.index, &accepted, &phase.ops);
            verify(life, rng, totals, &maybe)?;
            Ok(After::Close)
        }
        Fault::Panic(_) => {
            // Moved out: `expect` borrows `life`, which the check changes.
            let vanish = expect.vanish;
            check_panic(life, phase, &ran.runs, &accepted, &vanish, rng, totals)
        }
    }
}

/// Sets the injector up for the phase's fault: a closed gate for a delay,
/// the merge to panic on for a panic.
fn arm(injector: &Injector, fault: Fault) {
    match fault {
        Fault::Delay => injector.gate.set(false),
        Fault::Panic(k) => {
            let now = injector.merges.load(Ordering::SeqCst);
            injector.panic_at.store(now + k, Ordering::SeqCst);
        }
        _ => {}
    }
}

/// What readers may see during the phase: the keys flushed before it, the
/// values its writers may give each key, and what retention may remove
/// (`vanish`, from `Retention::vanish_bounds`).
fn expectation<'a>(life: &'a Lifetime, phase: &'a Phase, vanish: HashMap<u32, i64>) -> Expect<'a> {
    Expect {
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
    }
}

/// What the phase's threads left behind.
struct Ran {
    /// Each writer thread's run.
    runs: Vec<WriterRun>,
    /// The snapshot taken beside the writers, when the phase takes one.
    taken: Option<Taken>,
    /// A delay phase saw merges held and writers waiting at once.
    saw_backpressure: bool,
}

/// Runs the phase's threads (writers, readers, flusher, retention,
/// snapshot) to the end; the first problem any of them reports is the
/// error.
fn run_threads(
    life: &Lifetime,
    phase: &Phase,
    expect: &Expect<'_>,
    rng: &mut Rng,
    totals: &Totals,
    snap_path: Option<&Path>,
) -> Result<Ran, String> {
    let index = &life.index;
    let baseline = Stalls::now(life);
    let stop = AtomicBool::new(false);
    let series: Vec<u32> = {
        let mut s: Vec<u32> = phase.values.keys().map(|k| k.0).collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let runs: Vec<Mutex<WriterRun>> = phase.writers.iter().map(|_| Mutex::default()).collect();
    let done = AtomicUsize::new(0);
    let progress = AtomicU64::new(0);
    let sealed = snapshot::counters(phase.writers.len());
    let mut taken = None;
    let mut saw_backpressure = false;
    let mut problems: Vec<String> = Vec::new();
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..phase.readers)
            .map(|r| {
                let rng = Rng::seed_from_u64(rng.random::<u64>() ^ r as u64);
                let (stop, series) = (&stop, &series);
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
        let snapshotter = phase.snapshot.zip(snap_path).map(|(plan, path)| {
            let (progress, done, floor, sealed) = (&progress, &done, &expect.floor, &sealed);
            s.spawn(move || snapshot::take(index, path, plan.at, progress, done, sealed, floor))
        });
        let flusher = phase.flusher.then(|| {
            let stop = &stop;
            s.spawn(move || flush_loop(index, stop, phase.fault))
        });
        let (runs, done, progress, sealed) = (&runs, &done, &progress, &sealed);
        let ingest = s.spawn(move || ingest(index, phase, runs, done, progress, sealed));
        if phase.fault == Fault::Delay {
            saw_backpressure = open_gate(life, baseline, done, phase.writers.len());
        }
        match ingest.join() {
            Ok(Some(e)) if !matches!(phase.fault, Fault::Panic(_) | Fault::Budget(_)) => {
                problems.push(format!("run_writers: {e}"))
            }
            Ok(_) => {}
            Err(_) => problems.push("ingest thread panicked".into()),
        }
        if let Some(r) = reaper {
            problems.extend(joined(r, "retention: ", "retention thread panicked").err());
        }
        if let Some(t) = snapshotter {
            match joined(t, "", "snapshot thread panicked") {
                Ok(t) => taken = Some(t),
                Err(e) => problems.push(e),
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
            problems.extend(joined(r, "reader: ", "reader panicked").err());
        }
        if let Some(f) = flusher {
            problems.extend(joined(f, "", "flusher panicked").err());
        }
    });
    if let Some(p) = problems.into_iter().next() {
        return Err(p);
    }
    Ok(Ran {
        runs: runs.into_iter().map(|m| m.into_inner().unwrap()).collect(),
        taken,
        saw_backpressure,
    })
}

/// Merges held at the gate and writers' backpressure waits, counted since
/// the index was built.
#[derive(Clone, Copy)]
struct Stalls {
    merges: usize,
    writer_waits: u64,
}

impl Stalls {
    fn now(life: &Lifetime) -> Stalls {
        Stalls {
            merges: life.injector.gate.stalled.load(Ordering::SeqCst),
            writer_waits: life.index.stats().total.backpressure_waits,
        }
    }
}

/// A delay phase's gate: opens it once merges are held and writers are
/// seen waiting for them, both since `before` (or once all `writers` have
/// finished without needing to). Returns whether both were seen.
fn open_gate(life: &Lifetime, before: Stalls, done: &AtomicUsize, writers: usize) -> bool {
    let saw_backpressure = loop {
        let now = Stalls::now(life);
        if now.merges > before.merges && now.writer_waits > before.writer_waits {
            break true;
        }
        if done.load(Ordering::SeqCst) == writers {
            break false;
        }
        std::thread::yield_now();
    };
    life.injector.gate.set(true);
    saw_backpressure
}

/// A phase thread's result: its error with `prefix` in front, or
/// `panicked` if it panicked.
fn joined<T>(
    thread: ScopedJoinHandle<'_, Result<T, String>>,
    prefix: &str,
    panicked: &str,
) -> Result<T, String> {
    match thread.join() {
        Ok(result) => result.map_err(|e| format!("{prefix}{e}")),
        Err(_) => Err(panicked.to_string()),
    }
}

/// The writers' threads: through `run_writers` (per node) or plain threads
/// each with its own writer. Each leaves its run in `runs`; returns
/// `run_writers`' error.
fn ingest(
    index: &Index,
    phase: &Phase,
    runs: &[Mutex<WriterRun>],
    done: &AtomicUsize,
    progress: &AtomicU64,
    sealed: &[AtomicU64],
) -> Option<Error> {
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
        std::thread::scope(|s| {
            for (i, steps) in phase.writers.iter().enumerate() {
                s.spawn(move || {
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
}

/// The flusher thread: `Index::flush` in a loop until `stop`, beside the
/// writers (a panic phase's poison ends it early, as it should).
fn flush_loop(index: &Index, stop: &AtomicBool, fault: Fault) -> Outcome {
    while !stop.load(Ordering::Relaxed) {
        match index.flush() {
            Ok(()) => {}
            Err(Error::Poisoned(_)) if matches!(fault, Fault::Panic(_)) => return Ok(()),
            Err(e) => return Err(format!("concurrent Index::flush: {e}")),
        }
        std::thread::yield_now();
    }
    Ok(())
}

/// A budget phase: every writer error is the budget's, with the budget
/// the index was given and at least that much in use.
fn check_budget_errors(
    life: &Lifetime,
    budget: usize,
    runs: &[WriterRun],
    totals: &mut Totals,
) -> Outcome {
    totals.budget_phases += 1;
    for r in runs {
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
    Ok(())
}

/// A panic phase: if the armed panic fired, the index is poisoned for
/// good (every later call errors, none hangs) and what was flushed before
/// the phase is still readable; if it never fired, an ordinary phase.
fn check_panic(
    life: &mut Lifetime,
    phase: &Phase,
    runs: &[WriterRun],
    accepted: &[Vec<Record>],
    vanish: &HashMap<u32, i64>,
    rng: &mut Rng,
    totals: &mut Totals,
) -> Result<After, String> {
    totals.panics_armed += 1;
    let injector = &life.injector;
    let fired = injector.fired.load(Ordering::SeqCst);
    for r in runs {
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
    match life.index.flush() {
        Ok(()) if !injector.fired.load(Ordering::SeqCst) => {
            // The fault never came: an ordinary phase.
            injector.panic_at.store(usize::MAX, Ordering::SeqCst);
            let maybe = life.oracle.apply(&life.index, accepted, &phase.ops);
            verify(life, rng, totals, &maybe)?;
            return Ok(After::Keep);
        }
        Ok(()) => return Err("flush returned Ok after a merge panic".into()),
        Err(Error::Poisoned(_)) => {}
        Err(e) => return Err(format!("flush after merge panic: {e}")),
    }
    totals.panics_fired += 1;
    let index = &life.index;
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
    // Records in flight may be lost; what was flushed before the phase and
    // not rewritten in it must still be there.
    for (k, vs) in &life.oracle.keys {
        // `retain` may have swept it during the phase.
        let swept = vanish.get(&k.0).is_some_and(|&b| k.1 < b);
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

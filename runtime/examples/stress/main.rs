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
//!   write into the frozen past of earlier ones. A quarter of the phases
//!   spread their series ids over all of `u32` (found through the
//!   directory's hash table; the others' dense ids have direct cells).
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
//!
//! The harness by module, each drawn around one idea: `plan` draws every
//! phase from the seed; `phase` runs one and checks the outcome its fault
//! demands; `readers` verify while a phase runs; `oracle` models the
//! flushed keys and checks a quiescent index; `lifetime` builds an index
//! and checks its close; `inject` is the merge hook's faults; `retention`
//! and `snapshot` model and check those features; `report` holds the
//! totals, progress lines and watchdog. This file keeps the command line
//! and the loop of phases.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt as _, SeedableRng as _};

mod inject;
mod lifetime;
mod oracle;
mod phase;
mod plan;
mod readers;
mod report;
mod retention;
mod snapshot;

use inject::INJECTED;
use lifetime::{build, close_and_check, Lifetime};
use phase::{run_phase, After};
use plan::{draw_fault, draw_phase, draw_shape, Fault};
use report::{Ticker, Totals, Watchdog};
use retention::Mutant;
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

// ------------------------------------------------------------------ shared

type Key = (u32, i64);

type Outcome = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}
pub(crate) use ensure;

// ------------------------------------------------------------------ running

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
            totals.idle_indexes += u64::from(shape.freeze_idle.is_some());
        }
        let current = life.as_mut().expect("built above");
        let phase = draw_phase(&mut rng, fault, current.shape, current.clock);
        totals.long_phases += u64::from(phase.long);
        totals.sparse_phases += u64::from(phase.sparse);
        let label = phase.label(current.shape);
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
    totals.print_summary(args.seed, started.elapsed());
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

//! What the run counts and tells: the totals printed at the end, the
//! progress lines on stderr, and the watchdog that fails a phase that
//! hangs. None of it checks the index; it is kept apart so the driver in
//! `main.rs` reads as the loop of phases.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::snapshot;

// ------------------------------------------------------------------ totals

#[derive(Default)]
pub(crate) struct Totals {
    pub(crate) phases: u64,
    pub(crate) lifetimes: u64,
    pub(crate) records_accepted: u64,
    pub(crate) keys_verified: u64,
    pub(crate) scans_verified: u64,
    pub(crate) reader_scans: AtomicU64,
    pub(crate) delays: u64,
    pub(crate) delays_with_backpressure: u64,
    pub(crate) panics_armed: u64,
    pub(crate) panics_fired: u64,
    pub(crate) budget_phases: u64,
    pub(crate) budget_hits: u64,
    pub(crate) writers_reopened: u64,
    pub(crate) closes: u64,
    pub(crate) slowest_phase: Duration,
    pub(crate) long_phases: u64,
    /// Phases whose series ids are spread over `u32`.
    pub(crate) sparse_phases: u64,
    /// Indexes with freezing off, with `retain`, and with
    /// `freeze_idle_after`.
    pub(crate) unfrozen_indexes: u64,
    pub(crate) retain_indexes: u64,
    pub(crate) idle_indexes: u64,
    /// The most frozen points one index held after a phase.
    pub(crate) most_frozen_points: usize,
    pub(crate) drop_befores: u64,
    pub(crate) drop_series: u64,
    /// Keys whose survival a race left open, and how many survived.
    pub(crate) maybe_keys: u64,
    pub(crate) maybe_survived: u64,
    pub(crate) points_dropped: u64,
    pub(crate) records_expired: u64,
    /// Snapshots taken during phases and checked after them; the points
    /// they held; the keys of their phases flushed before them (demanded);
    /// restores on another topology than the run's.
    pub(crate) snapshots: u64,
    pub(crate) snapshot_points: u64,
    pub(crate) snapshot_phase_keys: u64,
    pub(crate) restores_elsewhere: u64,
}

impl Totals {
    /// The closing lines of a passed run: what was exercised, and how
    /// often.
    pub(crate) fn print_summary(&self, seed: u64, elapsed: Duration) {
        println!(
            "numatree-stress: seed {} passed: {} phases on {} indexes in {:.1} s (slowest phase {:.2?})",
            seed,
            self.phases,
            self.lifetimes,
            elapsed.as_secs_f64(),
            self.slowest_phase
        );
        println!(
            "  records accepted {}, keys verified {}, full/range scans verified {}, reader scans checked {}",
            self.records_accepted,
            self.keys_verified,
            self.scans_verified,
            self.reader_scans.load(Ordering::Relaxed)
        );
        println!(
            "  faults: merge delays {} ({} with writers seen waiting), merge panics {} fired / {} armed, \
             memory-budget phases {} ({} MemoryBudget errors); writers dropped mid-stream {}; closes {}",
            self.delays,
            self.delays_with_backpressure,
            self.panics_fired,
            self.panics_armed,
            self.budget_phases,
            self.budget_hits,
            self.writers_reopened,
            self.closes
        );
        println!(
            "  blocks: {} long-series phases, {} with sparse ids, most frozen points in an index {}, {} indexes with \
             freezing off, {} freezing idle series; retention: {} indexes with retain, {} \
             drop_before, {} drop_series, {} points dropped, {} records expired, {} keys raced by \
             a drop ({} survived)",
            self.long_phases,
            self.sparse_phases,
            self.most_frozen_points,
            self.unfrozen_indexes,
            self.idle_indexes,
            self.retain_indexes,
            self.drop_befores,
            self.drop_series,
            self.points_dropped,
            self.records_expired,
            self.maybe_keys,
            self.maybe_survived
        );
        println!(
            "  snapshots: {} taken during ingest and restored ({} on another topology), {} points \
             restored, {} keys of their phases flushed before them demanded",
            self.snapshots, self.restores_elsewhere, self.snapshot_points, self.snapshot_phase_keys
        );
    }
}

// ------------------------------------------------------------------ watchdog

pub(crate) struct Watchdog {
    pub(crate) current: Mutex<(u64, String, Instant)>,
}

impl Watchdog {
    pub(crate) fn start(seed: u64, seconds: f64, timeout: Duration) -> Arc<Watchdog> {
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
    pub(crate) fn enter(&self, phase: u64, label: String) {
        *self.current.lock().unwrap() = (phase, label, Instant::now());
    }
}

// ------------------------------------------------------------------ progress

/// Progress every few seconds on stderr, as the bench reports it: a line
/// stamped with the time since the start, ending with what is done and the
/// time left; rewritten in place when stderr is a terminal, plain lines
/// otherwise (CI logs). The run is bounded by time, so the time left is the
/// deadline's, plus the final close.
pub(crate) struct Ticker {
    pub(crate) start: Instant,
    pub(crate) deadline: Duration,
    pub(crate) next: Duration,
    pub(crate) in_place: bool,
}

impl Ticker {
    /// How often a progress line is printed.
    const EVERY: Duration = Duration::from_secs(5);

    pub(crate) fn new(deadline: Duration) -> Ticker {
        use std::io::IsTerminal as _;
        Ticker {
            start: Instant::now(),
            deadline,
            next: Ticker::EVERY,
            in_place: std::io::stderr().is_terminal(),
        }
    }

    /// Prints a line, keeping the status line under it when in place.
    pub(crate) fn line(&self, msg: &str) {
        let stamp = self.start.elapsed().as_secs_f64();
        if self.in_place {
            eprint!("\r\x1b[2K");
        }
        eprintln!("[{stamp:>7.1}s] {msg}");
    }

    /// Reports progress if the last report is `EVERY` old.
    pub(crate) fn tick(&mut self, totals: &Totals) {
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
    pub(crate) fn finish(&self) {
        if self.in_place {
            eprint!("\r\x1b[2K");
        }
    }
}

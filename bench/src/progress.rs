//! Progress of a run on stderr: how many of the planned measurements are
//! done and an estimate of the time left, so a half-hour run is not a wait
//! in the dark.
//!
//! # The estimate
//! Measurements differ by orders of magnitude (an ingest of 10M records into
//! a `RwLock<BTreeMap>` against 5,120 scans), so the time left is not
//! "elapsed / done x left". Each remaining measurement is estimated from
//! the measurements already done of the same shape, contender and phase, at the
//! most recent thread count seen (the run goes through thread counts in
//! ascending order, so that is the nearest one). For a higher thread count
//! it is extrapolated with the growth per doubling of threads seen between
//! the last two thread counts, clamped to 0.5..=2 (at most linear in the
//! threads): a `RwLock` under more readers slows down several-fold per
//! doubling in the mixed phase, and without this the estimate ran 20-30 %
//! short for the whole second half of a run. A measurement never seen yet is
//! estimated from its expected cost (records x phases, see
//! [`Planned::cost`]) at the rate the done measurements ran. A measurement's
//! time includes its untimed verification and building the contender; the
//! workload generation for each thread count is estimated from the last one.
//!
//! # Output
//! One line per measurement, stamped with the time since the start and
//! ending with `done/planned` and the time left. When stderr is a terminal,
//! a status line under them is rewritten in place; otherwise (CI logs) there
//! are only the plain lines. Every estimate is kept ([`EtaPoint`]), with the
//! real time left filled in at the end, and goes into the JSON report, so
//! the estimate's accuracy can be checked after any run
//! ([`EtaAccuracy::last_quarter`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{IsTerminal as _, Write as _};
use std::time::Instant;

use serde::Serialize;

use crate::config::{Phase, Shape};

/// One measurement the run will make.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    /// Shape (report section) it belongs to.
    pub shape: Shape,
    /// Thread count.
    pub threads: usize,
    /// Contender name.
    pub contender: String,
    /// Phase measured.
    pub phase: Phase,
    /// Expected cost in arbitrary units (roughly records touched), used only
    /// until a measurement of the same shape, contender and phase has been seen.
    pub cost: f64,
}

/// The estimate made after one measurement.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct EtaPoint {
    /// Measurements done.
    pub done: usize,
    /// Measurements planned.
    pub planned: usize,
    /// Seconds since the run started.
    pub elapsed_s: f64,
    /// Estimated seconds left (`None` before anything could be estimated).
    pub eta_s: Option<f64>,
    /// Seconds that were really left (filled in by [`Progress::finish`]).
    pub actual_left_s: Option<f64>,
}

/// How close the estimates came, over the last quarter of a run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct EtaAccuracy {
    /// Estimates made in the last quarter (by time) of the run while at
    /// least [`EtaAccuracy::min_left_s`] was left: in the last seconds a
    /// relative error is noise (0.4 s for 0.2 s left is "100 % off").
    pub points: usize,
    /// Estimates made with less time left, not counted in `worst_relative`.
    pub tail_points: usize,
    /// Largest |estimate - real| / real among them.
    pub worst_relative: f64,
    /// Largest |estimate - real| among them, seconds.
    pub worst_abs_s: f64,
    /// The estimate with the largest relative error.
    pub worst: EtaPoint,
    /// Seconds that must be left for an estimate's relative error to
    /// count: 1 s or 1 % of the run, whichever is more.
    pub min_left_s: f64,
}

impl EtaAccuracy {
    /// The accuracy of the estimates made after 75 % of the run's time;
    /// `None` when none was made with at least `min_left_s` left.
    pub fn last_quarter(points: &[EtaPoint]) -> Option<EtaAccuracy> {
        let end = points.last()?.elapsed_s + points.last()?.actual_left_s?;
        let min_left_s = (0.01 * end).max(1.0);
        let mut acc: Option<EtaAccuracy> = None;
        let mut tail_points = 0;
        for p in points {
            let (Some(eta), Some(real)) = (p.eta_s, p.actual_left_s) else {
                continue;
            };
            if p.elapsed_s < 0.75 * end {
                continue;
            }
            if real < min_left_s {
                tail_points += 1;
                continue;
            }
            let abs = (eta - real).abs();
            let rel = abs / real;
            let a = acc.get_or_insert(EtaAccuracy {
                points: 0,
                tail_points: 0,
                worst_relative: rel,
                worst_abs_s: abs,
                worst: *p,
                min_left_s,
            });
            a.points += 1;
            a.worst_abs_s = a.worst_abs_s.max(abs);
            if rel >= a.worst_relative {
                a.worst_relative = rel;
                a.worst = *p;
            }
        }
        acc.map(|a| EtaAccuracy { tail_points, ..a })
    }
}

/// The durations of one contender's phase at the latest thread count seen,
/// and the mean at the thread count before.
#[derive(Debug)]
struct Seen {
    threads: usize,
    seconds: Vec<f64>,
    previous: Option<(usize, f64)>,
}

/// Bounds of the growth per doubling of threads used to extrapolate.
const GROWTH_PER_DOUBLING: (f64, f64) = (0.5, 2.0);

impl Seen {
    fn mean(&self) -> f64 {
        self.seconds.iter().sum::<f64>() / self.seconds.len() as f64
    }

    /// Estimated seconds at `threads`: the latest mean, extrapolated to more
    /// threads with the growth per doubling seen between the last two
    /// thread counts.
    fn estimate(&self, threads: usize) -> f64 {
        let mean = self.mean();
        let Some((before, before_mean)) = self.previous else {
            return mean;
        };
        if threads <= self.threads || before >= self.threads || before_mean <= 0.0 {
            return mean;
        }
        let doublings_seen = (self.threads as f64 / before as f64).log2();
        let growth = (mean / before_mean)
            .powf(1.0 / doublings_seen)
            .clamp(GROWTH_PER_DOUBLING.0, GROWTH_PER_DOUBLING.1);
        mean * growth.powf((threads as f64 / self.threads as f64).log2())
    }
}

#[derive(Debug)]
struct State {
    start: Instant,
    last: Instant,
    plan: Vec<Planned>,
    done: usize,
    setups_planned: usize,
    setups_done: usize,
    last_setup_s: f64,
    seen: HashMap<(Shape, String, Phase), Seen>,
    cost_done: f64,
    seconds_done: f64,
    points: Vec<EtaPoint>,
    status: Option<String>,
}

/// Progress lines on stderr, stamped with the time since the run began,
/// and the estimate of the time left.
#[derive(Debug)]
pub struct Progress {
    quiet: bool,
    in_place: bool,
    state: RefCell<State>,
}

impl Progress {
    /// Progress printing to stderr (or nowhere when `quiet`); a status line
    /// is kept in place when stderr is a terminal.
    pub fn new(quiet: bool) -> Self {
        let in_place = !quiet && std::io::stderr().is_terminal();
        let now = Instant::now();
        Progress {
            quiet,
            in_place,
            state: RefCell::new(State {
                start: now,
                last: now,
                plan: Vec::new(),
                done: 0,
                setups_planned: 0,
                setups_done: 0,
                last_setup_s: 0.0,
                seen: HashMap::new(),
                cost_done: 0.0,
                seconds_done: 0.0,
                points: Vec::new(),
                status: None,
            }),
        }
    }

    /// Prints one line (above the status line, when there is one).
    pub fn line(&self, msg: &str) {
        if self.quiet {
            return;
        }
        let st = self.state.borrow();
        let stamp = st.start.elapsed().as_secs_f64();
        let mut err = std::io::stderr().lock();
        if self.in_place {
            let _ = write!(err, "\r\x1b[2K[{stamp:>7.1}s] {msg}\n");
            if let Some(status) = &st.status {
                let _ = write!(err, "{status}");
            }
            let _ = err.flush();
        } else {
            let _ = writeln!(err, "[{stamp:>7.1}s] {msg}");
        }
    }

    /// Starts counting: `plan` is every measurement in run order, `setups`
    /// the number of untimed preparation steps (workload generation per
    /// thread count) between them.
    pub fn start(&self, plan: Vec<Planned>, setups: usize) {
        let mut st = self.state.borrow_mut();
        st.plan = plan;
        st.setups_planned = setups;
        st.last = Instant::now();
    }

    /// Marks the end of a preparation step.
    pub fn setup_done(&self) {
        let mut st = self.state.borrow_mut();
        let now = Instant::now();
        st.last_setup_s = (now - st.last).as_secs_f64();
        st.setups_done += 1;
        st.last = now;
    }

    /// Marks the end of the next planned measurement (verification
    /// included) and returns the estimate made after it.
    pub fn measured(&self) -> EtaPoint {
        let mut st = self.state.borrow_mut();
        let now = Instant::now();
        let took = (now - st.last).as_secs_f64();
        st.last = now;
        st.record(took);
        let point = EtaPoint {
            done: st.done,
            planned: st.plan.len(),
            elapsed_s: (now - st.start).as_secs_f64(),
            eta_s: st.estimate_left(),
            actual_left_s: None,
        };
        st.points.push(point);
        if self.in_place {
            st.status = Some(format!(
                "  {}/{} measurements done, {} left",
                point.done,
                point.planned,
                eta_text(point.eta_s)
            ));
        }
        point
    }

    /// Ends the run: clears the status line and returns every estimate with
    /// the time that was really left when it was made.
    pub fn finish(&self) -> Vec<EtaPoint> {
        let mut st = self.state.borrow_mut();
        let end = st.start.elapsed().as_secs_f64();
        if st.status.take().is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
        st.points
            .iter()
            .map(|p| EtaPoint {
                actual_left_s: Some((end - p.elapsed_s).max(0.0)),
                ..*p
            })
            .collect()
    }
}

impl State {
    /// Counts the next planned measurement as done, in `took` seconds.
    fn record(&mut self, took: f64) {
        if let Some(p) = self.plan.get(self.done).cloned() {
            self.cost_done += p.cost;
            self.seconds_done += took;
            let seen = self
                .seen
                .entry((p.shape, p.contender, p.phase))
                .or_insert(Seen {
                    threads: p.threads,
                    seconds: Vec::new(),
                    previous: None,
                });
            if seen.threads != p.threads {
                seen.previous = Some((seen.threads, seen.mean()));
                seen.threads = p.threads;
                seen.seconds.clear();
            }
            seen.seconds.push(took);
        }
        self.done += 1;
    }

    /// Seconds left: every remaining measurement at its estimate, plus the
    /// remaining preparation steps at the last one's duration.
    fn estimate_left(&self) -> Option<f64> {
        let rate = (self.cost_done > 0.0).then(|| self.seconds_done / self.cost_done);
        let mut left = 0.0;
        for p in self.plan.iter().skip(self.done) {
            left += match self.seen.get(&(p.shape, p.contender.clone(), p.phase)) {
                Some(seen) => seen.estimate(p.threads),
                None => p.cost * rate?,
            };
        }
        let setups_left = self.setups_planned.saturating_sub(self.setups_done);
        Some(left + setups_left as f64 * self.last_setup_s)
    }
}

/// `12s`, `3m05s`, `1h02m`; `unknown` for `None`.
pub fn eta_text(eta_s: Option<f64>) -> String {
    let Some(s) = eta_s else {
        return "unknown".into();
    };
    let s = s.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3_599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3_600, s % 3_600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(threads: usize, contender: &str, phase: Phase, cost: f64) -> Planned {
        Planned {
            shape: Shape::Default,
            threads,
            contender: contender.into(),
            phase,
            cost,
        }
    }

    fn state(plan: Vec<Planned>) -> State {
        let p = Progress::new(true);
        let mut st = p.state.into_inner();
        st.plan = plan;
        st
    }

    #[test]
    fn unseen_measurements_are_weighted_by_cost_seen_ones_by_their_last_thread_count() {
        let mut st = state(vec![
            planned(1, "a", Phase::Insert, 100.0),
            planned(1, "a", Phase::Lookup, 10.0),
            planned(2, "a", Phase::Insert, 100.0),
            planned(2, "a", Phase::Lookup, 10.0),
            planned(4, "a", Phase::Insert, 100.0),
            planned(4, "a", Phase::Lookup, 10.0),
        ]);
        assert_eq!(st.estimate_left(), None, "nothing to estimate from");
        st.record(10.0); // insert at T=1: 0.1 s per cost unit
        let eta = st.estimate_left().unwrap();
        // lookup unseen: 10 x 0.1 = 1 s, twice; inserts 10 s each, twice.
        assert!(
            (eta - (1.0 + 10.0 + 1.0 + 10.0 + 1.0)).abs() < 1e-9,
            "{eta}"
        );
        st.record(3.0); // lookup at T=1 takes 3 s, not the 1 s its cost says
        st.record(6.0); // insert at T=2: the T=1 figure is replaced
        st.record(3.0); // lookup at T=2: no growth
        let eta = st.estimate_left().unwrap();
        // T=4 is one doubling on: the insert grew 0.6x per doubling, the lookup 1x.
        assert!((eta - (6.0 * 0.6 + 3.0)).abs() < 1e-9, "{eta}");
    }

    #[test]
    fn growth_per_doubling_of_threads_is_extrapolated_within_bounds() {
        let seen = |before: f64, after: f64| Seen {
            threads: 8,
            seconds: vec![after],
            previous: Some((2, before)),
        };
        // 1 s at 2 threads, 4 s at 8: x2 per doubling, so 8 s at 16, 16 s at 32.
        assert!((seen(1.0, 4.0).estimate(32) - 16.0).abs() < 1e-9);
        assert_eq!(
            seen(1.0, 4.0).estimate(8),
            4.0,
            "same thread count: the mean"
        );
        // x8 per doubling is clamped to x2 (at most linear in the threads).
        assert!((seen(1.0, 64.0).estimate(16) - 128.0).abs() < 1e-9);
        // Faster with more threads: at most halved per doubling.
        assert!((seen(16.0, 1.0).estimate(16) - 0.5).abs() < 1e-9);
        let first = Seen {
            threads: 1,
            seconds: vec![2.0, 4.0],
            previous: None,
        };
        assert_eq!(first.estimate(32), 3.0, "one thread count seen: no growth");
    }

    #[test]
    fn a_shape_is_estimated_from_its_own_measurements_only() {
        let shaped = |shape, cost| Planned {
            shape,
            ..planned(1, "a", Phase::Insert, cost)
        };
        let mut st = state(vec![
            shaped(Shape::Default, 100.0),
            shaped(Shape::Default, 100.0),
            shaped(Shape::HighCardinality, 10.0),
        ]);
        st.record(10.0); // 0.1 s per cost unit
        let eta = st.estimate_left().unwrap();
        // The default one again takes 10 s; the high-cardinality one is unseen: 10 x 0.1.
        assert!((eta - (10.0 + 1.0)).abs() < 1e-9, "{eta}");
    }

    #[test]
    fn remaining_setups_count_at_the_last_ones_duration() {
        let mut st = state(vec![planned(1, "a", Phase::Insert, 1.0)]);
        st.setups_planned = 3;
        st.setups_done = 1;
        st.last_setup_s = 2.0;
        assert_eq!(st.estimate_left(), None);
        st.record(1.0);
        assert_eq!(st.estimate_left(), Some(4.0));
    }

    #[test]
    fn accuracy_looks_at_the_last_quarter_and_leaves_out_the_last_second() {
        let point = |done, elapsed_s, eta_s, actual| EtaPoint {
            done,
            planned: 4,
            elapsed_s,
            eta_s: Some(eta_s),
            actual_left_s: Some(actual),
        };
        let points = [
            point(1, 10.0, 10.0, 90.0), // early and far off: ignored
            point(2, 80.0, 25.0, 20.0), // 25 % off
            point(3, 90.0, 9.0, 10.0),  // 10 % off
            point(4, 99.5, 0.1, 0.5),   // 80 % off, but under 1 s left: the tail
            point(4, 100.0, 0.0, 0.0),  // the end: the tail
        ];
        let acc = EtaAccuracy::last_quarter(&points).unwrap();
        assert_eq!((acc.points, acc.tail_points), (2, 2));
        assert_eq!(acc.min_left_s, 1.0);
        assert!((acc.worst_relative - 0.25).abs() < 1e-9);
        assert!((acc.worst_abs_s - 5.0).abs() < 1e-9);
        assert_eq!(acc.worst.done, 2);
    }

    #[test]
    fn eta_text_reads_as_minutes_and_hours() {
        assert_eq!(eta_text(None), "unknown");
        assert_eq!(eta_text(Some(7.4)), "7s");
        assert_eq!(eta_text(Some(185.0)), "3m05s");
        assert_eq!(eta_text(Some(3_720.0)), "1h02m");
    }
}

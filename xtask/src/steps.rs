//! A named list of steps, run in order with timing and a closing summary.
//!
//! `test` and `ci` build their work as a `Vec<Step>`; a later check (bench,
//! NUMA VM, loom/shuttle models, fuzzing) is one more `Step` pushed on the
//! list. The runner stops at the first failure, prints which steps passed,
//! were skipped, failed or never ran, and returns the failure.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use xshell::Shell;

use crate::deps;

/// What every step gets: the shell (already in the project root) and what
/// earlier steps found out.
pub(crate) struct Context {
    /// Shell whose current directory is the workspace root.
    pub(crate) sh: Shell,
    /// Result of the `deps` step, once it has run.
    pub(crate) deps: Option<deps::Report>,
}

/// How a step that did not fail ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The step ran and succeeded.
    Passed,
    /// The step chose not to run; the reason is shown in the summary.
    Skipped(String),
}

type Action = Box<dyn FnOnce(&mut Context) -> Result<Outcome>>;

/// One named unit of work.
pub(crate) struct Step {
    name: String,
    action: Action,
}

impl Step {
    /// A step called `name` that runs `action`.
    pub(crate) fn new(
        name: impl Into<String>,
        action: impl FnOnce(&mut Context) -> Result<Outcome> + 'static,
    ) -> Step {
        Step {
            name: name.into(),
            action: Box::new(action),
        }
    }

    /// The step's name, as the summary shows it.
    #[cfg(test)]
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

/// How a step ended, as recorded for the summary.
#[derive(Debug)]
enum Status {
    Passed,
    Skipped(String),
    Failed,
    NotRun,
}

/// Runs `steps` in order, stopping at the first failure, and prints a summary.
pub(crate) fn run_all(sh: Shell, steps: Vec<Step>) -> Result<()> {
    let mut cx = Context { sh, deps: None };
    let total = steps.len();
    let mut results: Vec<(String, Status, Duration)> = Vec::with_capacity(total);
    let mut failure = None;
    for (i, step) in steps.into_iter().enumerate() {
        if failure.is_some() {
            results.push((step.name, Status::NotRun, Duration::ZERO));
            continue;
        }
        eprintln!("\n==> [{}/{total}] {}", i + 1, step.name);
        let start = Instant::now();
        let Step { name, action } = step;
        let result = action(&mut cx);
        let elapsed = start.elapsed();
        let status = match result {
            Ok(Outcome::Passed) => Status::Passed,
            Ok(Outcome::Skipped(why)) => {
                eprintln!("{name}: skipped ({why})");
                Status::Skipped(why)
            }
            Err(err) => {
                failure = Some(err.context(format!("step `{name}` failed")));
                Status::Failed
            }
        };
        results.push((name, status, elapsed));
    }
    print!("{}", summary(&results));
    match failure {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

fn summary(results: &[(String, Status, Duration)]) -> String {
    let (mut passed, mut failed, mut skipped, mut not_run) = (0, 0, 0, 0);
    let mut out = String::from("\nsummary:\n");
    for (name, status, elapsed) in results {
        let secs = elapsed.as_secs_f64();
        let line = match status {
            Status::Passed => {
                passed += 1;
                format!("  pass  {secs:7.1}s  {name}")
            }
            Status::Skipped(why) => {
                skipped += 1;
                format!("  skip  {secs:7.1}s  {name} ({why})")
            }
            Status::Failed => {
                failed += 1;
                format!("  FAIL  {secs:7.1}s  {name}")
            }
            Status::NotRun => {
                not_run += 1;
                format!("  -               {name} (not run)")
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    if not_run > 0 {
        out.push_str(&format!("{not_run} step(s) not run after the failure\n"));
    }
    out.push_str(&format!(
        "steps: {passed} passed, {failed} failed, {skipped} skipped\n"
    ));
    out
}

/// The `deps` report, or an error if no `deps` step ran before this one.
pub(crate) fn deps_report(cx: &Context) -> Result<&deps::Report> {
    cx.deps
        .as_ref()
        .context("the `deps` step must run before this step")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_each_status_and_ends_with_the_totals_line() {
        let results = [
            ("deps".into(), Status::Passed, Duration::from_millis(1500)),
            (
                "miri".into(),
                Status::Skipped("--no-miri".into()),
                Duration::ZERO,
            ),
            ("clippy".into(), Status::Failed, Duration::from_secs(3)),
            ("test".into(), Status::NotRun, Duration::ZERO),
        ];
        let text = summary(&results);
        assert!(text.contains("  pass      1.5s  deps\n"), "{text}");
        assert!(text.contains("skip      0.0s  miri (--no-miri)"), "{text}");
        assert!(text.contains("FAIL      3.0s  clippy"), "{text}");
        assert!(text.contains("test (not run)"), "{text}");
        assert!(
            text.ends_with("steps: 1 passed, 1 failed, 1 skipped\n"),
            "{text}"
        );
    }

    #[test]
    fn runner_stops_at_the_first_failure_and_returns_it() {
        use std::cell::Cell;
        use std::rc::Rc;
        let ran_after = Rc::new(Cell::new(false));
        let flag = Rc::clone(&ran_after);
        let steps = vec![
            Step::new("ok", |_| Ok(Outcome::Passed)),
            Step::new("skip", |_| Ok(Outcome::Skipped("why".into()))),
            Step::new("boom", |_| anyhow::bail!("exploded")),
            Step::new("later", move |_| {
                flag.set(true);
                Ok(Outcome::Passed)
            }),
        ];
        let err = run_all(Shell::new().unwrap(), steps).unwrap_err();
        assert!(
            format!("{err:#}").contains("step `boom` failed: exploded"),
            "{err:#}"
        );
        assert!(!ran_after.get());
    }
}

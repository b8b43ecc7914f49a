//! Judging the guest's serial console: a pure function over its text, so
//! every way a run can go wrong is unit-tested without booting anything.
//!
//! The verifier prints one `PASS <name>: ..`, `FAIL <name>: ..` or
//! `SKIP <name>: ..` line per check and ends with
//! `numa-vm: N passed, M failed`. The run is good only when no check failed,
//! the summary is there, its counts agree with the lines seen (a console
//! that lost lines is not trusted), at least one check passed, and the
//! guest finished before the timeout.

use std::fmt::Write as _;
use std::time::Duration;

/// What a good run showed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Every `PASS`, `SKIP` line, in order.
    pub(crate) checks: Vec<String>,
    /// Checks passed, from the summary.
    pub(crate) passed: usize,
}

/// How many console lines an error quotes when there is no check line to
/// blame.
const TAIL_LINES: usize = 15;

/// Judges the console text of one guest run. `timed_out` is the timeout
/// when the guest had to be killed.
///
/// # Errors
/// A message that starts with the reason and quotes the failing check
/// lines, or the console's last lines when no check line explains it.
pub(crate) fn judge(console: &str, timed_out: Option<Duration>) -> Result<Verdict, String> {
    let lines: Vec<&str> = console.lines().map(|l| l.trim_end_matches('\r')).collect();
    let checks: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| ["PASS ", "FAIL ", "SKIP "].iter().any(|p| l.starts_with(p)))
        .collect();
    let failed: Vec<&str> = checks
        .iter()
        .copied()
        .filter(|l| l.starts_with("FAIL "))
        .collect();
    let seen_passed = checks.iter().filter(|l| l.starts_with("PASS ")).count();
    let summary = lines.iter().rev().find_map(|l| summary_counts(l));

    if !failed.is_empty() || timed_out.is_some() {
        let mut msg = String::new();
        if !failed.is_empty() {
            let _ = write!(
                msg,
                "{} check{} failed in the guest:",
                failed.len(),
                if failed.len() == 1 { "" } else { "s" }
            );
            for line in &failed {
                let _ = write!(msg, "\n  {line}");
            }
        }
        if let Some(limit) = timed_out {
            if !msg.is_empty() {
                msg.push('\n');
            }
            let _ = write!(
                msg,
                "the guest did not finish within {} s and was killed; {}",
                limit.as_secs(),
                match summary {
                    Some(_) => "its summary line had been printed".to_owned(),
                    None => format!("{seen_passed} check(s) had passed"),
                }
            );
            if failed.is_empty() {
                msg.push_str(&tail(&lines));
            }
        }
        return Err(msg);
    }
    let Some((passed, failed_count)) = summary else {
        return Err(format!(
            "the guest printed no `numa-vm: N passed, M failed` line (did the verifier \
             crash, or the kernel fail to start /init?){}",
            tail(&lines)
        ));
    };
    if passed != seen_passed || failed_count != 0 {
        return Err(format!(
            "the guest's summary says {passed} passed, {failed_count} failed, but the console \
             shows {seen_passed} PASS and 0 FAIL lines{}",
            tail(&lines)
        ));
    }
    if passed == 0 {
        return Err(format!("no check ran in the guest{}", tail(&lines)));
    }
    Ok(Verdict {
        checks: checks.into_iter().map(str::to_owned).collect(),
        passed,
    })
}

/// A console line without its line ending, carriage returns and terminal
/// escape sequences. A screen reset or clear also drops what came before it
/// on the line: the firmware clears the screen after printing a partial line
/// (`Booting from ROM..`), just before the kernel starts.
pub(crate) fn clean_line(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            // CSI (ESC [ parameters, then a final byte in '@'..='~'); any
            // other escape, such as ESC c (reset), is two characters.
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    let last = chars.by_ref().find(|c| ('@'..='~').contains(c));
                    if last == Some('J') {
                        out.clear();
                    }
                }
                Some('c') => out.clear(),
                _ => {}
            },
            '\r' | '\n' => {}
            c => out.push(c),
        }
    }
    out
}

/// `(N, M)` when `line` is exactly `numa-vm: N passed, M failed`.
fn summary_counts(line: &str) -> Option<(usize, usize)> {
    let rest = line.trim().strip_prefix("numa-vm: ")?;
    let (passed, failed) = rest.split_once(" passed, ")?;
    let failed = failed.strip_suffix(" failed")?;
    Some((passed.parse().ok()?, failed.parse().ok()?))
}

/// The console's last lines, for an error with no check line to quote.
fn tail(lines: &[&str]) -> String {
    let shown: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.trim().is_empty())
        .collect();
    if shown.is_empty() {
        return "\nthe console was empty".into();
    }
    let from = shown.len().saturating_sub(TAIL_LINES);
    let mut out = format!("\nlast {} console line(s):", shown.len() - from);
    for line in &shown[from..] {
        let _ = write!(out, "\n  | {line}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
[    0.000000] Linux version 6.1.0 (quiet boot)\r
# guest: kernel 6.1.0-56-amd64 up after 7.92 s\r
PASS topology: 2 nodes: node 0 cpus 0, node 1 cpus 1\r
PASS writer-affinity: 2 writer threads, each within its node's writer CPUs\r
SKIP bench-per-node: scripts/bench-per-node.sh is not in this checkout\r
numa-vm: 2 passed, 0 failed\r
# guest: verifier exited with status 0\r
";

    #[test]
    fn all_pass_with_a_matching_summary_is_ok() {
        let verdict = judge(GOOD, None).unwrap();
        assert_eq!(verdict.passed, 2);
        assert_eq!(verdict.checks.len(), 3);
        assert!(verdict.checks[2].starts_with("SKIP bench-per-node"));
        assert!(!verdict.checks[0].ends_with('\r'));
    }

    #[test]
    fn a_failed_check_is_an_error_quoting_its_line() {
        let console = GOOD
            .replace(
                "PASS writer-affinity: 2 writer threads, each within its node's writer CPUs",
                "FAIL writer-affinity: writer n0-0 may run on CPUs 1, outside node 0's writer CPUs 0",
            )
            .replace("2 passed, 0 failed", "1 passed, 1 failed");
        let err = judge(&console, None).unwrap_err();
        assert!(err.starts_with("1 check failed in the guest:"), "{err}");
        assert!(
            err.contains("\n  FAIL writer-affinity: writer n0-0 may run on CPUs 1"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_summary_is_an_error_showing_the_last_lines() {
        let console =
            "PASS topology: ok\nthread 'main' panicked at examples/numa_verify/main.rs:1:1\n";
        let err = judge(console, None).unwrap_err();
        assert!(
            err.contains("no `numa-vm: N passed, M failed` line"),
            "{err}"
        );
        assert!(err.contains("| thread 'main' panicked"), "{err}");
        let err = judge("", None).unwrap_err();
        assert!(err.contains("the console was empty"), "{err}");
    }

    #[test]
    fn a_timeout_is_an_error_even_when_everything_printed_passed() {
        let err = judge(GOOD, Some(Duration::from_secs(300))).unwrap_err();
        assert!(err.contains("did not finish within 300 s"), "{err}");
        let partial = "PASS topology: ok\nPASS plan: ok\n";
        let err = judge(partial, Some(Duration::from_secs(5))).unwrap_err();
        assert!(err.contains("2 check(s) had passed"), "{err}");
        assert!(err.contains("| PASS plan: ok"), "{err}");
    }

    #[test]
    fn a_summary_that_disagrees_with_the_lines_is_an_error() {
        let console = GOOD.replace("2 passed, 0 failed", "3 passed, 0 failed");
        let err = judge(&console, None).unwrap_err();
        assert!(err.contains("summary says 3 passed, 0 failed"), "{err}");
        assert!(judge("numa-vm: 0 passed, 0 failed\n", None).is_err());
    }

    #[test]
    fn clean_line_drops_escapes_and_line_endings() {
        assert_eq!(
            clean_line("\u{1b}c\u{1b}[?7l\u{1b}[2J# guest: kernel 6.1 up\r\n"),
            "# guest: kernel 6.1 up"
        );
        assert_eq!(clean_line("PASS plan: ok\r\r\n"), "PASS plan: ok");
        assert_eq!(
            clean_line("Booting from ROM..\u{1b}c\u{1b}[?7l\u{1b}[2JPASS topology: ok"),
            "PASS topology: ok"
        );
        assert_eq!(clean_line("\u{1b}[1;31mFAIL\u{1b}[0m x"), "FAIL x");
    }

    #[test]
    fn summary_must_be_the_exact_line() {
        assert_eq!(
            summary_counts("numa-vm: 11 passed, 0 failed"),
            Some((11, 0))
        );
        assert_eq!(
            summary_counts("numa-vm: 1 passed, 2 failed\r"),
            Some((1, 2))
        );
        assert_eq!(summary_counts("numa-vm: guest up"), None);
        assert_eq!(summary_counts("numa-vm: x passed, 0 failed"), None);
    }
}

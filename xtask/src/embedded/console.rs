//! Judging what the firmware printed through semihosting: pure functions
//! over its text, so every way a run can go wrong is unit-tested without
//! QEMU.
//!
//! `check` prints one `PASS <name>: ..` or `FAIL <name>: ..` line per check
//! and ends with `embedded: N passed, M failed`; a panic or a fault prints
//! `FAIL panic: ..` / `FAIL hard-fault: ..` and stops. A run is good only when
//! no check failed, the summary is there and agrees with the lines seen, at
//! least one check passed, QEMU exited with status 0 and before the timeout.
//! `footprint` prints `FOOTPRINT <name> <integer>` lines and
//! `footprint: done`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// How one QEMU run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// QEMU exited with this status (the semihosting exit code).
    Exited(i32),
    /// QEMU was killed by a signal.
    Killed,
    /// QEMU was still running at the timeout and was killed.
    TimedOut(Duration),
}

/// How many output lines an error quotes when there is no check line to blame.
const TAIL_LINES: usize = 15;

/// Judges the output of the `check` firmware; on success, its `PASS` lines.
///
/// # Errors
/// A message that starts with the reason and quotes the failing lines, or
/// the output's last lines when no check line explains it.
pub(crate) fn judge_checks(output: &str, ending: Ending) -> Result<Vec<String>, String> {
    let lines: Vec<&str> = output.lines().map(|l| l.trim_end_matches('\r')).collect();
    let failed = failed_checks(&lines);
    let passed: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("PASS "))
        .collect();
    let summary = lines.iter().rev().find_map(|l| summary_counts(l));
    if !failed.is_empty() {
        let mut msg = format!(
            "{} check{} failed on the emulated Cortex-M4:",
            failed.len(),
            if failed.len() == 1 { "" } else { "s" }
        );
        for line in &failed {
            let _ = write!(msg, "\n  {line}");
        }
        return Err(msg);
    }
    if let Ending::TimedOut(limit) = ending {
        return Err(format!(
            "the firmware did not exit within {} s and QEMU was killed (a hang, or a \
             fault with no handler); {} check(s) had passed{}",
            limit.as_secs(),
            passed.len(),
            tail(&lines)
        ));
    }
    let Some((summary_passed, summary_failed)) = summary else {
        return Err(format!(
            "the firmware printed no `embedded: N passed, M failed` line ({}){}",
            describe(ending),
            tail(&lines)
        ));
    };
    if summary_passed != passed.len() || summary_failed != 0 {
        return Err(format!(
            "the firmware's summary says {summary_passed} passed, {summary_failed} failed, \
             but the output shows {} PASS and 0 FAIL lines{}",
            passed.len(),
            tail(&lines)
        ));
    }
    if passed.is_empty() {
        return Err(format!("no check ran{}", tail(&lines)));
    }
    if ending != Ending::Exited(0) {
        return Err(format!(
            "every check passed but {}{}",
            describe(ending),
            tail(&lines)
        ));
    }
    Ok(passed.into_iter().map(str::to_owned).collect())
}

/// The `FOOTPRINT <name> <integer>` figures of a `footprint` run.
///
/// # Errors
/// When the run did not end with `footprint: done` and status 0, or a
/// figure line does not parse.
pub(crate) fn parse_footprint(
    output: &str,
    ending: Ending,
) -> Result<BTreeMap<String, u64>, String> {
    let lines: Vec<&str> = output.lines().map(|l| l.trim_end_matches('\r')).collect();
    let failed: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("FAIL "))
        .collect();
    if !failed.is_empty() {
        return Err(format!(
            "the footprint firmware failed:\n  {}",
            failed.join("\n  ")
        ));
    }
    if !lines.contains(&"footprint: done") || ending != Ending::Exited(0) {
        return Err(format!(
            "the footprint firmware did not finish (no `footprint: done` line, {}){}",
            describe(ending),
            tail(&lines)
        ));
    }
    let mut figures = BTreeMap::new();
    for line in lines {
        let Some(rest) = line.strip_prefix("FOOTPRINT ") else {
            continue;
        };
        let parsed = rest
            .split_once(' ')
            .and_then(|(name, value)| Some((name.to_owned(), value.trim().parse().ok()?)));
        match parsed {
            Some((name, value)) => {
                figures.insert(name, value);
            }
            None => return Err(format!("unreadable figure line `{line}`")),
        }
    }
    Ok(figures)
}

/// Each `FAIL` line with the lines that continue it (a panic message runs
/// over several lines), joined by newlines.
fn failed_checks(lines: &[&str]) -> Vec<String> {
    let starts_entry = |l: &str| {
        [
            "PASS ",
            "FAIL ",
            "# ",
            "embedded: ",
            "FOOTPRINT ",
            "footprint: ",
        ]
        .iter()
        .any(|p| l.starts_with(p))
    };
    let mut failed: Vec<String> = Vec::new();
    let mut in_failure = false;
    for line in lines {
        if line.starts_with("FAIL ") {
            failed.push((*line).to_owned());
            in_failure = true;
        } else if in_failure && !starts_entry(line) && !line.trim().is_empty() {
            let last = failed.last_mut().expect("in a failure");
            last.push_str("\n    ");
            last.push_str(line);
        } else {
            in_failure = false;
        }
    }
    failed
}

fn describe(ending: Ending) -> String {
    match ending {
        Ending::Exited(0) => "QEMU exited with status 0".into(),
        Ending::Exited(code) => format!("QEMU exited with status {code}"),
        Ending::Killed => "QEMU was killed by a signal".into(),
        Ending::TimedOut(limit) => format!("QEMU was killed after {} s", limit.as_secs()),
    }
}

/// `(N, M)` when `line` is exactly `embedded: N passed, M failed`.
fn summary_counts(line: &str) -> Option<(usize, usize)> {
    let rest = line.trim().strip_prefix("embedded: ")?;
    let (passed, failed) = rest.split_once(" passed, ")?;
    let failed = failed.strip_suffix(" failed")?;
    Some((passed.parse().ok()?, failed.parse().ok()?))
}

/// The output's last lines, for an error with no check line to quote.
fn tail(lines: &[&str]) -> String {
    let shown: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.trim().is_empty())
        .collect();
    if shown.is_empty() {
        return "\nthe firmware printed nothing".into();
    }
    let from = shown.len().saturating_sub(TAIL_LINES);
    let mut out = format!("\nlast {} line(s):", shown.len() - from);
    for line in &shown[from..] {
        let _ = write!(out, "\n  | {line}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
# numatree-core checks: slot 256 records, store 80 nodes
PASS slot-full: 4 pushes accepted, the 5th handed back
PASS point-lookups: 3194 present and 406 absent keys; 0 wrong
embedded: 2 passed, 0 failed
";

    #[test]
    fn all_pass_with_a_matching_summary_and_status_0_is_ok() {
        let passed = judge_checks(GOOD, Ending::Exited(0)).unwrap();
        assert_eq!(passed.len(), 2);
        assert!(passed[1].starts_with("PASS point-lookups"));
    }

    #[test]
    fn a_failed_check_is_an_error_quoting_its_line() {
        let output = GOOD
            .replace("PASS point-lookups: 3194", "FAIL point-lookups: 3194")
            .replace("2 passed, 0 failed", "1 passed, 1 failed");
        let err = judge_checks(&output, Ending::Exited(1)).unwrap_err();
        assert!(
            err.starts_with("1 check failed on the emulated Cortex-M4:"),
            "{err}"
        );
        assert!(err.contains("\n  FAIL point-lookups: 3194"), "{err}");
    }

    #[test]
    fn a_panic_fails_with_its_message_even_without_a_summary() {
        let output = "PASS slot-full: ok\nFAIL panic: panicked at core/src/sort.rs:92:16:\n\
                      attempt to add with overflow\n";
        let err = judge_checks(output, Ending::Exited(1)).unwrap_err();
        assert!(
            err.contains("FAIL panic: panicked at core/src/sort.rs:92:16:"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_summary_is_an_error_showing_the_last_lines() {
        let output = "PASS slot-full: ok\n";
        let err = judge_checks(output, Ending::Exited(0)).unwrap_err();
        assert!(err.contains("printed no `embedded: N passed"), "{err}");
        assert!(err.contains("| PASS slot-full: ok"), "{err}");
    }

    #[test]
    fn a_hang_is_an_error_naming_the_timeout() {
        let output = "PASS slot-full: ok\n";
        let err = judge_checks(output, Ending::TimedOut(Duration::from_secs(60))).unwrap_err();
        assert!(err.contains("did not exit within 60 s"), "{err}");
    }

    #[test]
    fn a_summary_that_disagrees_with_the_lines_or_a_bad_status_is_an_error() {
        let lost = GOOD.replace(
            "PASS slot-full: 4 pushes accepted, the 5th handed back\n",
            "",
        );
        assert!(judge_checks(&lost, Ending::Exited(0))
            .unwrap_err()
            .contains("summary says 2 passed"));
        let err = judge_checks(GOOD, Ending::Exited(1)).unwrap_err();
        assert!(err.contains("QEMU exited with status 1"), "{err}");
        let err = judge_checks("embedded: 0 passed, 0 failed\n", Ending::Exited(0)).unwrap_err();
        assert!(err.starts_with("no check ran"), "{err}");
    }

    #[test]
    fn footprint_figures_are_parsed_by_name() {
        let output =
            "FOOTPRINT tree_bytes 128224\nFOOTPRINT wide_ids.records 3328\nfootprint: done\n";
        let figures = parse_footprint(output, Ending::Exited(0)).unwrap();
        assert_eq!(figures["tree_bytes"], 128_224);
        assert_eq!(figures["wide_ids.records"], 3_328);
        assert!(parse_footprint("FOOTPRINT x 1\n", Ending::Exited(0)).is_err());
        assert!(parse_footprint("FOOTPRINT x y\nfootprint: done\n", Ending::Exited(0)).is_err());
    }
}

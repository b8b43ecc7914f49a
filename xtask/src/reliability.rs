//! The reliability suite's steps (RELIABILITY.md): loom and shuttle models
//! of the slot/flush/poison protocol, the randomized stress run with fault
//! injection, and fuzzing of `numatree-core` — plus `cargo xtask stress`
//! and the optional `cargo xtask tsan`.
//!
//! `test` runs each with a short budget, `ci` with the longer one. The
//! nightly-only fuzz step prints "skipped" with the reason when nightly or
//! cargo-fuzz is unavailable (CI installs cargo-fuzz).

use anyhow::Result;
use xshell::{cmd, Shell};

use crate::deps::{self, Nightly};
use crate::shell;
use crate::steps::{deps_report, Outcome, Step};

/// How long the randomized checks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Budget {
    /// `--seconds` of the stress run.
    pub(crate) stress_seconds: u32,
    /// `-max_total_time` of the fuzz run.
    pub(crate) fuzz_seconds: u32,
    /// Random and PCT schedules per shuttle model.
    pub(crate) shuttle_iterations: u32,
}

impl Budget {
    /// `cargo xtask test`: a couple of minutes in all, builds included.
    pub(crate) const TEST: Budget = Budget {
        stress_seconds: 10,
        fuzz_seconds: 10,
        shuttle_iterations: 1_000,
    };
    /// `cargo xtask ci`: 60 s of stress and of fuzzing (issue #6).
    pub(crate) const CI: Budget = Budget {
        stress_seconds: 60,
        fuzz_seconds: 60,
        shuttle_iterations: 10_000,
    };
}

/// Separate target directories: `--cfg` in RUSTFLAGS would otherwise
/// rebuild the whole main `target/` each time.
const LOOM_TARGET: &str = "target/loom";
const SHUTTLE_TARGET: &str = "target/shuttle";

/// The fuzz targets in `core/fuzz`: the B+-tree, the column-block index,
/// the block codecs and the snapshot parser.
const FUZZ_TARGETS: [&str; 5] = [
    "merge_runs",
    "series_runs",
    "codec_round_trip",
    "codec_decode",
    "snapshot_read",
];

/// The reliability steps, in order, with `budget`.
pub(crate) fn steps(budget: Budget) -> Vec<Step> {
    vec![
        Step::new("loom models", |cx| {
            model_test(
                &cx.sh,
                "loom",
                LOOM_TARGET,
                &[("LOOM_MAX_PREEMPTIONS", "2")],
            )
        }),
        Step::new(
            format!("shuttle models ({} schedules)", budget.shuttle_iterations),
            move |cx| {
                let n = budget.shuttle_iterations.to_string();
                model_test(
                    &cx.sh,
                    "shuttle",
                    SHUTTLE_TARGET,
                    &[("SHUTTLE_ITERATIONS", &n)],
                )
            },
        ),
        Step::new(format!("stress {} s", budget.stress_seconds), move |cx| {
            stress(
                &cx.sh,
                &["--seconds".into(), budget.stress_seconds.to_string()],
            )
            .map(|()| Outcome::Passed)
        }),
        Step::new(
            format!(
                "fuzz {} ({} s each)",
                FUZZ_TARGETS.join(", "),
                budget.fuzz_seconds
            ),
            move |cx| {
                if let Nightly::Unavailable(why) = &deps_report(cx)?.nightly {
                    return Ok(Outcome::Skipped(format!("needs nightly: {why}")));
                }
                if !has_cargo_fuzz(&cx.sh) {
                    if !deps::is_ci(std::env::var("CI").ok().as_deref()) {
                        return Ok(Outcome::Skipped(
                        "cargo-fuzz not installed (`cargo install cargo-fuzz --locked`, ~2 min)"
                            .into(),
                    ));
                    }
                    shell::run(cmd!(cx.sh, "cargo install cargo-fuzz --locked"))?;
                }
                for target in FUZZ_TARGETS {
                    fuzz(&cx.sh, target, budget.fuzz_seconds)?;
                }
                Ok(Outcome::Passed)
            },
        ),
    ]
}

/// `RUSTFLAGS="$RUSTFLAGS --cfg <checker>" cargo test -p numatree --release --lib model`.
fn model_test(sh: &Shell, checker: &str, target: &str, env: &[(&str, &str)]) -> Result<Outcome> {
    let rustflags = with_cfg(std::env::var("RUSTFLAGS").ok().as_deref(), checker);
    let mut vars = vec![
        ("RUSTFLAGS", rustflags.as_str()),
        ("CARGO_TARGET_DIR", target),
    ];
    vars.extend_from_slice(env);
    shell::run_with_env(
        cmd!(
            sh,
            "cargo test -p numatree --release --lib model -- --nocapture"
        ),
        &vars,
    )?;
    Ok(Outcome::Passed)
}

/// CI's own RUSTFLAGS (e.g. `-D warnings`) plus `--cfg <checker>`.
fn with_cfg(existing: Option<&str>, checker: &str) -> String {
    with_cfg_flag(existing, &format!("--cfg {checker}"))
}

/// `cargo xtask stress [args...]`: builds the stress example in release
/// mode and runs it with `args` (`--seconds N`, `--seed S`, `--verbose`).
pub(crate) fn stress(sh: &Shell, args: &[String]) -> Result<()> {
    shell::run(cmd!(
        sh,
        "cargo build --release -p numatree --example stress"
    ))?;
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let binary = format!("{target}/release/examples/stress");
    shell::run(cmd!(sh, "{binary} {args...}"))
}

/// The target ThreadSanitizer builds for (it needs `-Zbuild-std`).
const TSAN_TARGET: &str = "x86_64-unknown-linux-gnu";

/// `cargo xtask tsan [--seconds N]` (optional, nightly): the runtime's tests
/// and then the stress run for N seconds (default 30), built with
/// ThreadSanitizer into `target/tsan`. Any report fails the run.
pub(crate) fn tsan(sh: &Shell, seconds: u32) -> Result<()> {
    let seconds = seconds.to_string();
    let rustflags = with_cfg_flag(
        std::env::var("RUSTFLAGS").ok().as_deref(),
        "-Zsanitizer=thread",
    );
    let env = [
        ("RUSTFLAGS", rustflags.as_str()),
        ("CARGO_TARGET_DIR", "target/tsan"),
        ("TSAN_OPTIONS", "halt_on_error=1"),
    ];
    shell::run_with_env(
        cmd!(
            sh,
            "cargo +nightly test -Zbuild-std --target {TSAN_TARGET} -p numatree --tests"
        ),
        &env,
    )?;
    shell::run_with_env(
        cmd!(
            sh,
            "cargo +nightly build -Zbuild-std --target {TSAN_TARGET} -p numatree --example stress"
        ),
        &env,
    )?;
    let binary = format!("target/tsan/{TSAN_TARGET}/debug/examples/stress");
    shell::run_with_env(cmd!(sh, "{binary} --seconds {seconds}"), &env[2..])
}

/// `existing` flags plus `flag`.
fn with_cfg_flag(existing: Option<&str>, flag: &str) -> String {
    match existing.map(str::trim) {
        Some(flags) if !flags.is_empty() => format!("{flags} {flag}"),
        _ => flag.to_string(),
    }
}

fn has_cargo_fuzz(sh: &Shell) -> bool {
    shell::probe(cmd!(sh, "cargo +nightly fuzz --version"))
}

/// Fuzzes `target` for `seconds`, starting from its committed corpus.
fn fuzz(sh: &Shell, target: &str, seconds: u32) -> Result<()> {
    let _dir = sh.push_dir("core");
    let max_time = format!("-max_total_time={seconds}");
    shell::run(cmd!(
        sh,
        "cargo +nightly fuzz run {target} -- {max_time} -max_len=512 -print_final_stats=1"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_rustflags_keep_ci_flags_and_add_the_cfg() {
        assert_eq!(with_cfg(None, "loom"), "--cfg loom");
        assert_eq!(with_cfg(Some("  "), "loom"), "--cfg loom");
        assert_eq!(
            with_cfg(Some("-D warnings"), "shuttle"),
            "-D warnings --cfg shuttle"
        );
    }
}

//! `cargo xtask test`: every check a change must pass, as a list of steps.
//!
//! Order: cheapest and most likely to fail first (deps, formatting, clippy),
//! then the test suite, the runtime's examples (`--quick`), the docs with
//! warnings denied, the no_std builds of `numatree-core`, Miri on the
//! host and on a 32-bit target, and Miri on the runtime's `unsafe` (the
//! short-series cells, the block arena, the frozen runs' index).
//! `run` appends the reliability suite with its short budget (loom and
//! shuttle models, stress, fuzzing; `ci` uses the long one).

use anyhow::Result;
use xshell::{cmd, Shell};

use crate::deps::{self, Nightly, NO_STD_TARGETS};
use crate::embedded;
use crate::flags::TestFlags;
use crate::reliability::{self, Budget};
use crate::shell;
use crate::steps::{self, deps_report, Outcome, Step};

/// Runs the `test` steps, then the reliability suite with short budgets.
pub(crate) fn run(sh: Shell, flags: TestFlags) -> Result<()> {
    let mut steps = steps(flags);
    steps.extend(reliability::steps(Budget::TEST));
    steps::run_all(sh, steps)
}

/// The steps of `cargo xtask test`, in order; `ci` appends to this list.
pub(crate) fn steps(flags: TestFlags) -> Vec<Step> {
    let mut steps = vec![
        deps::step(),
        Step::new("fmt", |cx| {
            passed(shell::run(cmd!(cx.sh, "cargo fmt --all -- --check")))
        }),
        Step::new("clippy", |cx| {
            passed(shell::run(cmd!(
                cx.sh,
                "cargo clippy --workspace --all-targets -- -D warnings"
            )))
        }),
        // Not `--all-targets`: that would skip doctests, which the README's
        // and the crate docs' examples rely on.
        Step::new("test", |cx| {
            passed(shell::run(cmd!(cx.sh, "cargo test --workspace")))
        }),
    ];
    // Built by the test step already (`cargo test` builds examples); each
    // run checks its own results and takes about a second. No `-p numatree`:
    // alone, the runtime's dependencies resolve to other features than the
    // workspace's, and the step rebuilt hwlocality, proptest and the rest
    // into a second copy (a CI run once ran out of disk doing so).
    for example in RUNTIME_EXAMPLES {
        steps.push(Step::new(format!("example {example} --quick"), move |cx| {
            passed(shell::run(cmd!(
                cx.sh,
                "cargo run --example {example} -- --quick"
            )))
        }));
    }
    steps.push(Step::new("doc -D warnings", |cx| {
        let flags = rustdoc_flags(std::env::var("RUSTDOCFLAGS").ok().as_deref());
        passed(shell::run_with_env(
            cmd!(cx.sh, "cargo doc --workspace --no-deps"),
            &[("RUSTDOCFLAGS", flags.as_str())],
        ))
    }));
    for target in NO_STD_TARGETS {
        steps.push(Step::new(
            format!("build numatree-core --target {target}"),
            move |cx| {
                passed(shell::run(cmd!(
                    cx.sh,
                    "cargo build -p numatree-core --target {target}"
                )))
            },
        ));
    }
    // Running, not only building, on a 32-bit microcontroller.
    steps.push(embedded::step());
    steps.push(embedded::negative_control_step());
    steps.extend(miri_steps(flags));
    steps
}

/// The Miri steps: `numatree-core` (host and 32-bit), then the runtime's
/// `unsafe` (the directory cell, the arena, the frozen runs' index).
fn miri_steps(flags: TestFlags) -> Vec<Step> {
    let mut steps = vec![miri_core_step(flags)];
    // The runtime's pointer-tagging `unsafe` in a short series' directory
    // cell (`runtime/src/storage/cell/`), its unit tests under Miri.
    // Tree Borrows: crossbeam-epoch's own list trips Stacked Borrows (in
    // crossbeam, not here); its deferred garbage is never freed at exit.
    steps.push(Step::new("miri numatree storage::cell", move |cx| {
        if let Some(skipped) = miri_skipped(cx, flags.no_miri)? {
            return Ok(skipped);
        }
        passed(shell::run_with_env(
            cmd!(
                cx.sh,
                "cargo +nightly miri test -p numatree --lib storage::cell"
            ),
            &[("MIRIFLAGS", "-Zmiri-tree-borrows -Zmiri-ignore-leaks")],
        ))
    }));
    // The blocks' arena (`runtime/src/storage/arena.rs`, `arena/`): its
    // pieces, reference counts and cross-thread frees; and the frozen
    // runs' shared index (`storage/series/run.rs`), its slots written in
    // place. Miri's default checks (Stacked Borrows, and leaks: an arena
    // must free its chunks, an index its blocks).
    steps.push(Step::new(
        "miri numatree storage::{arena, series::run}",
        move |cx| {
            if let Some(skipped) = miri_skipped(cx, flags.no_miri)? {
                return Ok(skipped);
            }
            passed(shell::run(cmd!(
                cx.sh,
                "cargo +nightly miri test -p numatree --lib -- storage::arena storage::series::run"
            )))
        },
    ));
    steps
}

/// Miri on `numatree-core`'s tests, on the host and on a 32-bit target.
///
/// The host (64-bit) and a 32-bit target: a `usize` of 32 bits is where
/// series-id arithmetic overflows (the embedded targets are 32-bit), and
/// Miri runs a foreign target's tests with no cross linker or emulator.
/// Side by side: each Miri run interprets one thread at a time, so on
/// two cores both take the wall time of the longer (4.4 and 5.2 minutes
/// one after the other on a slow day of the 2-core VM); the 32-bit run
/// builds into a target directory of its own, so neither waits for the
/// other's build lock.
fn miri_core_step(flags: TestFlags) -> Step {
    Step::new(
        format!("miri numatree-core, host and --target {MIRI_32_BIT_TARGET} (32-bit) side by side"),
        move |cx| {
            if let Some(skipped) = miri_skipped(cx, flags.no_miri)? {
                return Ok(skipped);
            }
            // Each target's Miri sysroot, one at a time (no race on the
            // shared cache when it is first built).
            for target in [None, Some(MIRI_32_BIT_TARGET)] {
                let target_args = target.map(|t| ["--target", t]).into_iter().flatten();
                shell::run(cmd!(cx.sh, "cargo +nightly miri setup {target_args...}"))?;
            }
            let run = |label, target: Option<&str>| {
                let mut args: Vec<String> = ["+nightly", "miri", "test", "-p", "numatree-core"]
                    .map(String::from)
                    .into();
                let mut env = vec![
                    // Miri looks for undefined behaviour, not for inputs:
                    // the property tests search natively (hundreds of cases
                    // each, step `test`). With 8 cases the two Miri runs
                    // took 6-6.5 minutes each on a slow day of the 2-core
                    // VM, CI 30.4 minutes in all.
                    ("PROPTEST_CASES", "4".to_string()),
                    (
                        "MIRIFLAGS",
                        "-Zmiri-strict-provenance -Zmiri-disable-isolation".to_string(),
                    ),
                ];
                if let Some(t) = target {
                    args.extend(["--target".to_string(), t.to_string()]);
                    env.push(("CARGO_TARGET_DIR", "target/miri-32-bit".to_string()));
                }
                shell::Parallel {
                    label,
                    program: "cargo",
                    args,
                    env,
                }
            };
            passed(shell::run_side_by_side(
                &cx.sh,
                &cx.sh.current_dir().join("target/xtask-logs"),
                vec![
                    run("miri-core-host", None),
                    run("miri-core-32-bit", Some(MIRI_32_BIT_TARGET)),
                ],
            ))
        },
    )
}

/// Why a Miri step is skipped, if it is: `--no-miri`, or no nightly
/// toolchain with Miri.
fn miri_skipped(cx: &mut steps::Context, no_miri: bool) -> Result<Option<Outcome>> {
    if no_miri {
        return Ok(Some(Outcome::Skipped("--no-miri".into())));
    }
    if let Nightly::Unavailable(_) = deps_report(cx)?.nightly {
        return Ok(Some(Outcome::Skipped("nightly/miri not installed".into())));
    }
    Ok(None)
}

/// The runtime's examples for users, run with `--quick` after the tests.
const RUNTIME_EXAMPLES: [&str; 2] = ["quickstart", "scrape"];

/// The caller's RUSTDOCFLAGS with `-D warnings` added: a broken intra-doc
/// link or bad doc markup fails the step.
fn rustdoc_flags(existing: Option<&str>) -> String {
    match existing.map(str::trim) {
        Some(flags) if !flags.is_empty() => format!("{flags} -D warnings"),
        _ => "-D warnings".to_string(),
    }
}

/// The 32-bit target whose `usize` the core's tests run with under Miri.
const MIRI_32_BIT_TARGET: &str = "armv7-unknown-linux-gnueabihf";

fn passed(result: Result<()>) -> Result<Outcome> {
    result.map(|()| Outcome::Passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_step_denies_warnings_and_keeps_the_callers_flags() {
        assert_eq!(rustdoc_flags(None), "-D warnings");
        assert_eq!(rustdoc_flags(Some(" ")), "-D warnings");
        assert_eq!(
            rustdoc_flags(Some("--cfg docsrs")),
            "--cfg docsrs -D warnings"
        );
    }

    #[test]
    fn examples_and_docs_run_after_the_tests_and_before_the_no_std_builds() {
        let names: Vec<String> = steps(TestFlags::default())
            .iter()
            .map(|s| s.name().to_owned())
            .collect();
        let at = |n: &str| {
            names
                .iter()
                .position(|x| x == n)
                .unwrap_or_else(|| panic!("{n}: {names:?}"))
        };
        assert!(at("test") < at("example quickstart --quick"));
        assert!(at("example quickstart --quick") < at("example scrape --quick"));
        assert!(at("example scrape --quick") < at("doc -D warnings"));
        assert!(at("doc -D warnings") < at("build numatree-core --target thumbv7em-none-eabihf"));
    }
}

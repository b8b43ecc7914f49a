//! Project automation for numatree: `cargo xtask <command>`.
//!
//! The same commands run on a developer's machine and in CI (`.ci/run` calls
//! `cargo xtask ci`). Every external command is echoed before it runs, so a
//! log shows exactly what was executed. This crate must not depend on hwloc:
//! it is what installs hwloc (`cargo xtask deps`) before the runtime is built.
//!
//! One module per subcommand; `steps` holds the step runner they share and
//! `shell` the echoing helpers.

mod bench;
mod ci;
mod deps;
mod embedded;
mod flags;
mod numa_vm;
mod reliability;
mod shell;
mod steps;
mod test;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use xshell::Shell;

use crate::flags::Command;

/// Usage text printed by `cargo xtask help`.
const USAGE: &str = "\
Usage: cargo xtask <command> [flags]

Commands:
  deps              install what the build needs (hwloc, udev, pkg-config,
                    rustup targets, nightly + miri when possible); idempotent
  test [--no-miri]  deps, fmt check, clippy -D warnings, cargo test --workspace,
                    no_std builds of numatree-core (thumbv7em-none-eabihf,
                    x86_64-unknown-none), embedded and its negative control
                    (skipped without QEMU), Miri on numatree-core, then the
                    reliability suite with short budgets: loom and shuttle
                    models, stress 10 s, fuzz 10 s (RELIABILITY.md)
  ci [--no-miri]    what .ci/run runs: test with the long budgets (shuttle
                    10,000 schedules, stress 60 s, fuzz 60 s), then
                    bench --quick once the numatree-bench binary exists
  bench [args...]   deps, then the numatree-bench binary in release mode with
                    args forwarded (e.g. --quick, --scale 10, --threads 1,2,4)
  numa-vm [--nodes 2|4] [--cpus-per-node N] [--timeout S] [--mis-bind]
                    boot a NUMA Linux guest in QEMU (TCG) and check placement
                    inside it: affinity, page locations, an oracle ingest;
                    --mis-bind is the negative control (must fail)
  embedded [--timeout S] [--plant-wrong-expectation]
                    run numatree-core's checks on an emulated Cortex-M4F
                    (QEMU mps2-an386, fetched if missing) and print its flash,
                    RAM, merge_run stack and records/s per MHz;
                    --plant-wrong-expectation is the negative control (must fail)
  stress [args...]  the randomized stress run with fault injection, in
                    release mode: --seconds N, --seed S (replays a failure),
                    --phase-timeout SECS, --verbose
  tsan [--seconds N]
                    optional, nightly: the runtime's tests and N s (30) of
                    stress built with ThreadSanitizer (-Zbuild-std)
  help              this text
";

fn main() -> ExitCode {
    // Print the error chain ourselves: returning `Err` from `main` would add a
    // backtrace whenever RUST_BACKTRACE is set, burying the message.
    match try_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn try_main() -> Result<()> {
    let command = flags::parse(std::env::args().skip(1))?;
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    match command {
        Command::Help => {
            print!("{USAGE}");
            Ok(())
        }
        Command::Deps => deps::run(&sh).map(drop),
        Command::Test(flags) => test::run(sh, flags),
        Command::Ci(flags) => ci::run(sh, flags),
        Command::Bench(args) => bench::run(&sh, &args),
        Command::NumaVm(flags) => deps::run(&sh).and_then(|_| numa_vm::run(&sh, &flags)),
        Command::Stress(args) => reliability::stress(&sh, &args),
        Command::Tsan(args) => reliability::tsan(&sh, &args),
        Command::Embedded(flags) => deps::run(&sh).and_then(|_| embedded::run(&sh, &flags)),
    }
}

/// The workspace root: the parent of this crate's manifest directory.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

//! Project automation for numatree: `cargo xtask <command>`.
//!
//! The same commands run on a developer's machine and in CI (`.ci/run` calls
//! `cargo xtask ci`). Every external command is echoed before it runs, so a
//! log shows exactly what was executed. This crate must not depend on hwloc:
//! it is what installs hwloc (`cargo xtask deps`) before the runtime is built.
//!
//! One module per subcommand; `flags` declares the command line (clap, so
//! `cargo xtask help` is generated), `steps` holds the step runner they
//! share and `shell` the echoing helpers.

mod bench;
mod ci;
mod debs;
mod deps;
mod disk;
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

fn main() -> ExitCode {
    // A usage error exits with status 2 (help with 0), before any work.
    let command = flags::parse(std::env::args_os()).unwrap_or_else(|e| e.exit());
    // Print the error chain ourselves: returning `Err` from `main` would add a
    // backtrace whenever RUST_BACKTRACE is set, burying the message.
    match try_main(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn try_main(command: Command) -> Result<()> {
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    match command {
        Command::Deps => deps::run(&sh).map(drop),
        Command::Test(flags) => test::run(sh, flags),
        Command::Ci(flags) => ci::run(sh, flags),
        Command::Bench { args } => bench::run(&sh, &args),
        Command::NumaVm(flags) => deps::run(&sh).and_then(|_| numa_vm::run(&sh, &flags)),
        Command::Stress(flags) => reliability::stress(&sh, &flags.to_args()),
        Command::Tsan(flags) => reliability::tsan(&sh, flags.seconds),
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

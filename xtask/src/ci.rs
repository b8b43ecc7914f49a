//! `cargo xtask ci`: what `.ci/run` runs — the `test` steps, the
//! reliability suite with its long budgets, then the quick benchmark (which
//! itself checks that no record is lost) once it exists.

use anyhow::Result;
use xshell::Shell;

use crate::flags::TestFlags;
use crate::reliability::{self, Budget};
use crate::{bench, steps, test};

/// Runs the CI steps.
pub(crate) fn run(sh: Shell, flags: TestFlags) -> Result<()> {
    let mut steps = test::steps(flags);
    steps.extend(reliability::steps(Budget::CI));
    steps.push(bench::quick_step());
    steps::run_all(sh, steps)
}

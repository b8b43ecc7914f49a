//! `cargo xtask ci`: what `.ci/run` runs — the `test` steps, the NUMA
//! placement checks in 2- and 4-node VMs, the reliability suite with its
//! long budgets, then the quick benchmark (which
//! itself checks that no record is lost) once it exists.

use anyhow::Result;
use xshell::Shell;

use crate::flags::{NumaVmFlags, TestFlags};
use crate::reliability::{self, Budget};
use crate::{bench, numa_vm, steps, test};

/// Runs the CI steps.
pub(crate) fn run(sh: Shell, flags: TestFlags) -> Result<()> {
    let mut steps = test::steps(flags);
    for nodes in [2, 4] {
        steps.push(numa_vm::step(NumaVmFlags {
            nodes,
            ..NumaVmFlags::default()
        }));
    }
    steps.extend(reliability::steps(Budget::CI));
    steps.push(bench::quick_step());
    steps::run_all(sh, steps)
}

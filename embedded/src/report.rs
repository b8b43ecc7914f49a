//! Check lines in the format `cargo xtask embedded` judges: one
//! `PASS <name>: <detail>` or `FAIL <name>: <detail>` per check, then
//! `embedded: N passed, M failed`, then the exit status.

use core::fmt;

use cortex_m_semihosting::hprintln;

/// Tally of the checks run so far.
#[derive(Debug, Default)]
pub struct Checks {
    passed: u32,
    failed: u32,
}

impl Checks {
    /// No check run yet.
    pub const fn new() -> Self {
        Checks {
            passed: 0,
            failed: 0,
        }
    }

    /// Records and prints one check.
    pub fn check(&mut self, name: &str, ok: bool, detail: fmt::Arguments<'_>) {
        if ok {
            self.passed += 1;
            hprintln!("PASS {}: {}", name, detail);
        } else {
            self.failed += 1;
            hprintln!("FAIL {}: {}", name, detail);
        }
    }

    /// Prints the summary line and exits: success only when at least one
    /// check ran and none failed.
    pub fn finish(self) -> ! {
        hprintln!("embedded: {} passed, {} failed", self.passed, self.failed);
        crate::exit(self.failed == 0 && self.passed > 0)
    }
}

/// Prints a line the judge ignores (context for a reader of the log).
pub fn note(args: fmt::Arguments<'_>) {
    hprintln!("# {}", args);
}

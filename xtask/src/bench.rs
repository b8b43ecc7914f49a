//! `cargo xtask bench`: run the `numatree-bench` binary in release mode.
//!
//! The binary runs the predecessor's workload on numatree and its peers and
//! fails on any lost record; this module only builds and starts it, forwarding
//! every argument (`--quick`, `--scale N`, `--threads 1,2,4`, ...).

use std::path::Path;

use anyhow::{bail, Result};
use xshell::{cmd, Shell};

use crate::deps;
use crate::shell;
use crate::steps::{Outcome, Step};

/// Where the `numatree-bench` binary's source may live, relative to the root.
const BINARY_SOURCES: [&str; 3] = [
    "bench/src/main.rs",
    "bench/src/bin/numatree-bench.rs",
    "bench/src/bin/numatree-bench/main.rs",
];

/// Whether the bench crate has a `numatree-bench` binary yet.
fn binary_exists(root: &Path) -> bool {
    BINARY_SOURCES.iter().any(|p| root.join(p).is_file())
}

/// `cargo xtask bench [args...]`.
pub(crate) fn run(sh: &Shell, args: &[String]) -> Result<()> {
    if !binary_exists(&sh.current_dir()) {
        bail!("numatree-bench is not built yet (see issue 4)");
    }
    deps::run(sh)?;
    run_binary(sh, args)
}

fn run_binary<S: AsRef<std::ffi::OsStr>>(sh: &Shell, args: &[S]) -> Result<()> {
    shell::run(cmd!(
        sh,
        "cargo run --release -p numatree-bench --bin numatree-bench -- {args...}"
    ))
}

/// The `bench --quick` step of `ci`; skipped until the binary exists.
pub(crate) fn quick_step() -> Step {
    Step::new("bench --quick", |cx| {
        if !binary_exists(&cx.sh.current_dir()) {
            return Ok(Outcome::Skipped("not built yet".into()));
        }
        run_binary(&cx.sh, &["--quick"]).map(|()| Outcome::Passed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_is_found_at_either_conventional_path() {
        let root = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("bench/src/bin")).unwrap();
        assert!(!binary_exists(&root));
        std::fs::write(root.join("bench/src/bin/numatree-bench.rs"), "fn main() {}").unwrap();
        assert!(binary_exists(&root));
        std::fs::remove_dir_all(&root).unwrap();
    }
}

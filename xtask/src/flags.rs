//! Command-line parsing, by hand: the grammar is small enough that a parser
//! dependency would cost more than it saves.

use anyhow::{bail, Result};

/// A parsed `cargo xtask` invocation.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Command {
    /// `help`, `--help`, `-h` or no arguments.
    Help,
    /// `deps`.
    Deps,
    /// `test [--no-miri]`.
    Test(TestFlags),
    /// `ci [--no-miri]`.
    Ci(TestFlags),
    /// `bench [args...]`; every argument is forwarded to `numatree-bench`.
    Bench(Vec<String>),
    /// `stress [args...]`; every argument is forwarded to the stress run.
    Stress(Vec<String>),
    /// `tsan [--seconds N]`: ThreadSanitizer on the runtime (nightly).
    Tsan(Vec<String>),
}

/// Flags shared by `test` and `ci`.
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
pub(crate) struct TestFlags {
    /// Skip the Miri step even when nightly and Miri are installed.
    pub(crate) no_miri: bool,
}

/// Parses the arguments that follow `cargo xtask`.
pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Command> {
    let mut args = args.into_iter();
    let Some(sub) = args.next() else {
        return Ok(Command::Help);
    };
    let rest: Vec<String> = args.collect();
    match sub.as_str() {
        "help" | "-h" | "--help" => Ok(Command::Help),
        "bench" => Ok(Command::Bench(rest)),
        "stress" => Ok(Command::Stress(rest)),
        "tsan" => Ok(Command::Tsan(rest)),
        "deps" => {
            if wants_help(&rest) {
                return Ok(Command::Help);
            }
            if let Some(arg) = rest.first() {
                bail!("`deps` takes no arguments, got `{arg}`\n(run `cargo xtask help`)");
            }
            Ok(Command::Deps)
        }
        "test" | "ci" => {
            if wants_help(&rest) {
                return Ok(Command::Help);
            }
            let flags = test_flags(&sub, &rest)?;
            Ok(if sub == "test" {
                Command::Test(flags)
            } else {
                Command::Ci(flags)
            })
        }
        other => bail!("unknown command `{other}`\n(run `cargo xtask help`)"),
    }
}

fn wants_help(args: &[String]) -> bool {
    args.iter().any(|a| a == "-h" || a == "--help")
}

fn test_flags(sub: &str, args: &[String]) -> Result<TestFlags> {
    let mut flags = TestFlags::default();
    for arg in args {
        match arg.as_str() {
            "--no-miri" => flags.no_miri = true,
            other => bail!("unknown flag `{other}` for `{sub}`\n(run `cargo xtask help`)"),
        }
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn no_arguments_and_help_spellings_print_usage() {
        for args in [
            &[][..],
            &["help"],
            &["--help"],
            &["-h"],
            &["test", "--help"],
        ] {
            assert_eq!(p(args).unwrap(), Command::Help, "{args:?}");
        }
    }

    #[test]
    fn test_and_ci_accept_no_miri() {
        assert_eq!(
            p(&["test"]).unwrap(),
            Command::Test(TestFlags { no_miri: false })
        );
        assert_eq!(
            p(&["test", "--no-miri"]).unwrap(),
            Command::Test(TestFlags { no_miri: true })
        );
        assert_eq!(
            p(&["ci", "--no-miri"]).unwrap(),
            Command::Ci(TestFlags { no_miri: true })
        );
    }

    #[test]
    fn bench_forwards_every_argument_untouched() {
        let cmd = p(&[
            "bench",
            "--quick",
            "--scale",
            "10",
            "--threads",
            "1,2,4",
            "--help",
        ])
        .unwrap();
        let expected = ["--quick", "--scale", "10", "--threads", "1,2,4", "--help"];
        assert_eq!(cmd, Command::Bench(expected.map(String::from).to_vec()));
    }

    #[test]
    fn stress_forwards_every_argument_untouched() {
        let cmd = p(&["stress", "--seconds", "5", "--seed", "42"]).unwrap();
        let expected = ["--seconds", "5", "--seed", "42"];
        assert_eq!(cmd, Command::Stress(expected.map(String::from).to_vec()));
    }

    #[test]
    fn unknown_commands_and_flags_are_errors_that_point_to_help() {
        for args in [&["frobnicate"][..], &["test", "--release"], &["deps", "x"]] {
            let err = p(args).unwrap_err().to_string();
            assert!(err.contains("cargo xtask help"), "{args:?}: {err}");
        }
    }
}

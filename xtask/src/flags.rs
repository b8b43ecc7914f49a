//! Command-line parsing, by hand: the grammar is small enough that a parser
//! dependency would cost more than it saves.

use anyhow::{bail, Context as _, Result};

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
    /// `numa-vm [--nodes N] [--cpus-per-node N] [--timeout S] [--mis-bind]`.
    NumaVm(NumaVmFlags),
    /// `stress [args...]`; every argument is forwarded to the stress run.
    Stress(Vec<String>),
    /// `tsan [--seconds N]`: ThreadSanitizer on the runtime (nightly).
    Tsan(Vec<String>),
    /// `embedded [--timeout S] [--plant-wrong-expectation]`.
    Embedded(EmbeddedFlags),
}

/// Flags shared by `test` and `ci`.
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
pub(crate) struct TestFlags {
    /// Skip the Miri step even when nightly and Miri are installed.
    pub(crate) no_miri: bool,
}

/// Flags of `numa-vm`.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) struct NumaVmFlags {
    /// NUMA nodes of the guest, 1..=8 (default 2).
    pub(crate) nodes: usize,
    /// CPUs per node, 1..=4 (default 1).
    pub(crate) cpus_per_node: usize,
    /// Seconds before the guest is killed (default 300).
    pub(crate) timeout_s: u64,
    /// Negative control: the verifier binds a writer to the wrong node.
    pub(crate) mis_bind: bool,
}

impl Default for NumaVmFlags {
    fn default() -> Self {
        NumaVmFlags {
            nodes: 2,
            cpus_per_node: 1,
            timeout_s: 300,
            mis_bind: false,
        }
    }
}

impl NumaVmFlags {
    /// The timeout as a duration.
    pub(crate) fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_s)
    }
}

/// Flags of `embedded`.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) struct EmbeddedFlags {
    /// Seconds before a firmware run in QEMU is killed (default 60).
    pub(crate) timeout_s: u64,
    /// Negative control: one expectation of the check firmware is planted
    /// wrong, so the command must fail.
    pub(crate) plant_wrong_expectation: bool,
}

impl Default for EmbeddedFlags {
    fn default() -> Self {
        EmbeddedFlags {
            timeout_s: 60,
            plant_wrong_expectation: false,
        }
    }
}

impl EmbeddedFlags {
    /// The timeout as a duration.
    pub(crate) fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_s)
    }
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
        "numa-vm" => {
            if wants_help(&rest) {
                return Ok(Command::Help);
            }
            numa_vm_flags(&rest).map(Command::NumaVm)
        }
        "embedded" => {
            if wants_help(&rest) {
                return Ok(Command::Help);
            }
            embedded_flags(&rest).map(Command::Embedded)
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

fn numa_vm_flags(args: &[String]) -> Result<NumaVmFlags> {
    let mut flags = NumaVmFlags::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut number = |range: std::ops::RangeInclusive<u64>| -> Result<u64> {
            let value = it
                .next()
                .with_context(|| format!("`{arg}` needs a value\n(run `cargo xtask help`)"))?;
            match value.parse() {
                Ok(n) if range.contains(&n) => Ok(n),
                _ => bail!(
                    "`{arg} {value}` is invalid: must be in {}..={}",
                    range.start(),
                    range.end()
                ),
            }
        };
        match arg.as_str() {
            "--nodes" => flags.nodes = number(1..=8)? as usize,
            "--cpus-per-node" => flags.cpus_per_node = number(1..=4)? as usize,
            "--timeout" => flags.timeout_s = number(1..=86_400)?,
            "--mis-bind" => flags.mis_bind = true,
            other => bail!("unknown flag `{other}` for `numa-vm`\n(run `cargo xtask help`)"),
        }
    }
    if flags.mis_bind && flags.nodes < 2 {
        bail!("`--mis-bind` needs `--nodes` >= 2: a writer can only be bound to another node");
    }
    Ok(flags)
}

fn embedded_flags(args: &[String]) -> Result<EmbeddedFlags> {
    let mut flags = EmbeddedFlags::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--timeout" => {
                let value = it
                    .next()
                    .with_context(|| format!("`{arg}` needs a value\n(run `cargo xtask help`)"))?;
                flags.timeout_s = match value.parse() {
                    Ok(n) if (1..=3_600).contains(&n) => n,
                    _ => bail!("`{arg} {value}` is invalid: must be in 1..=3600"),
                };
            }
            "--plant-wrong-expectation" => flags.plant_wrong_expectation = true,
            other => bail!("unknown flag `{other}` for `embedded`\n(run `cargo xtask help`)"),
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

    #[test]
    fn numa_vm_takes_nodes_cpus_timeout_and_mis_bind() {
        assert_eq!(
            p(&["numa-vm"]).unwrap(),
            Command::NumaVm(NumaVmFlags::default())
        );
        let flags = NumaVmFlags {
            nodes: 4,
            cpus_per_node: 2,
            timeout_s: 60,
            mis_bind: true,
        };
        let args = [
            "numa-vm",
            "--nodes",
            "4",
            "--cpus-per-node",
            "2",
            "--timeout",
            "60",
            "--mis-bind",
        ];
        assert_eq!(p(&args).unwrap(), Command::NumaVm(flags));
    }

    #[test]
    fn numa_vm_rejects_out_of_range_values_naming_the_limit() {
        let err = p(&["numa-vm", "--nodes", "9"]).unwrap_err().to_string();
        assert!(
            err.contains("`--nodes 9` is invalid: must be in 1..=8"),
            "{err}"
        );
        let err = p(&["numa-vm", "--timeout"]).unwrap_err().to_string();
        assert!(err.contains("`--timeout` needs a value"), "{err}");
        let err = p(&["numa-vm", "--nodes", "1", "--mis-bind"]).unwrap_err();
        assert!(err.to_string().contains("--nodes` >= 2"), "{err}");
        assert!(p(&["numa-vm", "--kvm"]).is_err());
    }

    #[test]
    fn embedded_takes_a_timeout_and_the_negative_control() {
        assert_eq!(
            p(&["embedded"]).unwrap(),
            Command::Embedded(EmbeddedFlags::default())
        );
        assert_eq!(
            p(&["embedded", "--timeout", "30", "--plant-wrong-expectation"]).unwrap(),
            Command::Embedded(EmbeddedFlags {
                timeout_s: 30,
                plant_wrong_expectation: true
            })
        );
        let err = p(&["embedded", "--timeout", "0"]).unwrap_err().to_string();
        assert!(err.contains("must be in 1..=3600"), "{err}");
        assert!(p(&["embedded", "--fast"]).is_err());
    }
}

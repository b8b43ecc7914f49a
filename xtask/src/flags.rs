//! The `cargo xtask` command line, declared with clap (derive): `cargo xtask
//! help` and `cargo xtask <command> --help` are generated from these types,
//! every value is checked against its range while parsing, and a bad one is
//! an error naming the flag and what it allows, with exit status 2.

use std::ops::RangeInclusive;
use std::str::FromStr;

use clap::error::ErrorKind;
use clap::{CommandFactory as _, Parser, Subcommand};

/// `cargo xtask <command> [flags]`.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Project automation for numatree: the same commands run on a developer's machine and in CI",
    arg_required_else_help = true,
    allow_negative_numbers = true,
    after_help = "Every external command is echoed before it runs. `cargo xtask <command> --help` \
                  describes one command."
)]
pub(crate) struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// A parsed `cargo xtask` invocation.
#[derive(Debug, PartialEq, Subcommand)]
pub(crate) enum Command {
    /// Install what the build needs (hwloc, udev, pkg-config, rustup targets,
    /// nightly + miri when possible); does nothing when all is present
    Deps,
    /// deps, fmt check, clippy -D warnings, cargo test --workspace, the
    /// examples with --quick, cargo doc -D warnings, no_std builds of
    /// numatree-core, embedded and its negative control (skipped without
    /// QEMU), Miri on numatree-core and on the runtime's `unsafe`
    /// (directory cell, block arena), then the reliability suite
    /// with short budgets: loom and shuttle models, stress 10 s, fuzz 10 s
    Test(TestFlags),
    /// What .ci/run runs: test with the long budgets (shuttle 10,000
    /// schedules, stress 60 s, fuzz 60 s), numa-vm with 2 and 4 nodes, then
    /// bench --quick
    Ci(TestFlags),
    /// deps, then the numatree-bench binary in release mode with every
    /// argument forwarded (`cargo xtask bench --help` prints the bench's flags)
    #[command(disable_help_flag = true)]
    Bench {
        /// Arguments for numatree-bench (e.g. --quick, --scale 10, --threads 1,2,4)
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "BENCH ARGS"
        )]
        args: Vec<String>,
    },
    /// Boot a NUMA Linux guest in QEMU (TCG) and check placement inside it:
    /// affinity, page locations, an oracle ingest
    NumaVm(NumaVmFlags),
    /// Run numatree-core's checks on an emulated Cortex-M4F (QEMU
    /// mps2-an386, fetched if missing) and print its flash, RAM, merge_run
    /// stack and records/s per MHz
    Embedded(EmbeddedFlags),
    /// The randomized stress run with fault injection, in release mode; a
    /// failing seed replays with --seed
    Stress(StressFlags),
    /// Optional, nightly: the runtime's tests and the stress run built with
    /// ThreadSanitizer (-Zbuild-std)
    Tsan(TsanFlags),
}

/// Flags shared by `test` and `ci`.
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy, clap::Args)]
pub(crate) struct TestFlags {
    /// Skip the Miri steps even when nightly and Miri are installed [default: off]
    #[arg(long)]
    pub(crate) no_miri: bool,
}

/// Flags of `numa-vm`.
#[derive(Debug, PartialEq, Eq, Clone, Copy, clap::Args)]
pub(crate) struct NumaVmFlags {
    /// NUMA nodes of the guest [range: 1..=8]
    #[arg(long, value_name = "N", default_value_t = 2, allow_negative_numbers = true,
          value_parser = int_in::<usize>(1..=8))]
    pub(crate) nodes: usize,
    /// CPUs per node [range: 1..=4]
    #[arg(long, value_name = "N", default_value_t = 1, allow_negative_numbers = true,
          value_parser = int_in::<usize>(1..=4))]
    pub(crate) cpus_per_node: usize,
    /// Seconds before the guest is killed [range: 1..=86400]
    #[arg(long = "timeout", value_name = "S", default_value_t = 300,
          allow_negative_numbers = true,
          value_parser = int_in::<u64>(1..=86_400))]
    pub(crate) timeout_s: u64,
    /// Negative control: the verifier binds a writer to another node's CPU,
    /// so the command must fail on writer-affinity (needs --nodes >= 2) [default: off]
    #[arg(long)]
    pub(crate) mis_bind: bool,
    /// Negative control: each node's block arenas (hot and frozen blocks)
    /// are bound to the next node's memory, so the command must fail on
    /// tree-pages, pages-after-ingest, bound-pages-after-reads and
    /// huge-chunk-pages (needs --nodes >= 2) [default: off]
    #[arg(long)]
    pub(crate) mis_place_frozen: bool,
}

impl Default for NumaVmFlags {
    fn default() -> Self {
        NumaVmFlags {
            nodes: 2,
            cpus_per_node: 1,
            timeout_s: 300,
            mis_bind: false,
            mis_place_frozen: false,
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
#[derive(Debug, PartialEq, Eq, Clone, Copy, clap::Args)]
pub(crate) struct EmbeddedFlags {
    /// Seconds before a firmware run in QEMU is killed [range: 1..=3600]
    #[arg(long = "timeout", value_name = "S", default_value_t = 60,
          allow_negative_numbers = true,
          value_parser = int_in::<u64>(1..=3_600))]
    pub(crate) timeout_s: u64,
    /// Negative control: one expectation of the check firmware is planted
    /// wrong, so the command must fail [default: off]
    #[arg(long)]
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

/// Flags of `stress`, checked here and handed to the stress example.
#[derive(Debug, Default, PartialEq, Clone, Copy, clap::Args)]
pub(crate) struct StressFlags {
    /// How long to run, in seconds [default: 10] [range: 0.1..=86400]
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = seconds)]
    pub(crate) seconds: Option<f64>,
    /// Seed of every random decision; the same seed replays the same phases
    /// [default: drawn from the clock and printed first] [range: any u64]
    #[arg(long, value_name = "S", allow_negative_numbers = true,
          value_parser = int_in::<u64>(0..=u64::MAX))]
    pub(crate) seed: Option<u64>,
    /// A phase running longer than this is a hang and fails the run
    /// [default: 60] [range: 1..=3600]
    #[arg(long, value_name = "SECS", allow_negative_numbers = true,
          value_parser = int_in::<u64>(1..=3_600))]
    pub(crate) phase_timeout: Option<u64>,
    /// Print a line per phase [default: off]
    #[arg(long, short)]
    pub(crate) verbose: bool,
}

impl StressFlags {
    /// The stress example's arguments for these flags.
    pub(crate) fn to_args(self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(s) = self.seconds {
            args.extend(["--seconds".to_owned(), s.to_string()]);
        }
        if let Some(s) = self.seed {
            args.extend(["--seed".to_owned(), s.to_string()]);
        }
        if let Some(t) = self.phase_timeout {
            args.extend(["--phase-timeout".to_owned(), t.to_string()]);
        }
        if self.verbose {
            args.push("--verbose".to_owned());
        }
        args
    }
}

/// Flags of `tsan`.
#[derive(Debug, PartialEq, Eq, Clone, Copy, clap::Args)]
pub(crate) struct TsanFlags {
    /// Seconds of stress under ThreadSanitizer [range: 1..=86400]
    #[arg(long, value_name = "N", default_value_t = 30, allow_negative_numbers = true,
          value_parser = int_in::<u32>(1..=86_400))]
    pub(crate) seconds: u32,
}

/// A clap value parser for an integer in `range`: a negative, fractional or
/// out-of-range value is an error that names the range.
fn int_in<T>(range: RangeInclusive<T>) -> impl Fn(&str) -> Result<T, String> + Clone
where
    T: FromStr + PartialOrd + Copy + std::fmt::Display + Send + Sync + 'static,
{
    move |s: &str| match s.parse::<T>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!(
            "must be a whole number in {}..={}",
            range.start(),
            range.end()
        )),
    }
}

/// Seconds of a stress run: a number in `0.1..=86400`.
fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(n) if (0.1..=86_400.0).contains(&n) => Ok(n),
        _ => Err("must be a number of seconds in 0.1..=86400".into()),
    }
}

/// Parses the arguments (the program name first, as in `std::env::args`).
/// `Err` is clap's: [`clap::Error::exit`] prints it (or the help) and exits
/// with status 2 (0 for help).
pub(crate) fn parse<I, T>(args: I) -> Result<Command, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let command = Cli::try_parse_from(args)?.command;
    if let Command::NumaVm(f) = &command {
        if f.mis_bind && f.nodes < 2 {
            return Err(Cli::command().error(
                ErrorKind::ArgumentConflict,
                "--mis-bind needs --nodes >= 2: a writer can only be bound to another node",
            ));
        }
        if f.mis_place_frozen && f.nodes < 2 {
            return Err(Cli::command().error(
                ErrorKind::ArgumentConflict,
                "--mis-place-frozen needs --nodes >= 2: frozen blocks can only be bound to another node",
            ));
        }
    }
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, clap::Error> {
        parse(std::iter::once("xtask").chain(args.iter().copied()))
    }

    /// Expects a usage error (exit status 2) of `kind` whose message holds every needle.
    fn rejects(args: &[&str], kind: ErrorKind, needles: &[&str]) {
        let err = p(args).unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.kind(), kind, "{args:?}: {msg}");
        assert_eq!(err.exit_code(), 2, "{args:?}");
        for n in needles {
            assert!(msg.contains(n), "{args:?}: {n:?} not in {msg}");
        }
    }

    #[test]
    fn help_is_generated_for_the_tool_and_each_command_and_exits_0() {
        for args in [
            &["help"][..],
            &["--help"],
            &["-h"],
            &["test", "--help"],
            &["help", "numa-vm"],
        ] {
            let err = p(args).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::DisplayHelp, "{args:?}");
            assert_eq!(err.exit_code(), 0, "{args:?}");
        }
        let help = p(&["help"]).unwrap_err().to_string();
        for sub in [
            "deps", "test", "ci", "bench", "numa-vm", "embedded", "stress", "tsan", "help",
        ] {
            assert!(help.contains(&format!("  {sub}")), "{sub} missing:\n{help}");
        }
        let numa = p(&["numa-vm", "--help"]).unwrap_err().to_string();
        assert!(
            numa.contains("[default: 300]") && numa.contains("[range: 1..=86400]"),
            "{numa}"
        );
    }

    #[test]
    fn no_arguments_print_the_help_as_a_usage_error() {
        let err = p(&[]).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        );
        assert_eq!(err.exit_code(), 2);
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
    fn bench_forwards_every_argument_untouched_help_included() {
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
        assert_eq!(
            cmd,
            Command::Bench {
                args: expected.map(String::from).to_vec()
            }
        );
        assert_eq!(p(&["bench"]).unwrap(), Command::Bench { args: vec![] });
    }

    #[test]
    fn stress_flags_are_checked_and_forwarded() {
        let cmd = p(&["stress", "--seconds", "5", "--seed", "42", "-v"]).unwrap();
        let Command::Stress(flags) = cmd else {
            panic!("{cmd:?}")
        };
        assert_eq!(
            flags.to_args(),
            ["--seconds", "5", "--seed", "42", "--verbose"]
        );
        assert!(p(&["stress"])
            .map(|c| c == Command::Stress(StressFlags::default()))
            .unwrap());
    }

    #[test]
    fn numa_vm_takes_nodes_cpus_timeout_and_negative_controls() {
        assert_eq!(
            p(&["numa-vm"]).unwrap(),
            Command::NumaVm(NumaVmFlags::default())
        );
        let flags = NumaVmFlags {
            nodes: 4,
            cpus_per_node: 2,
            timeout_s: 60,
            mis_bind: true,
            mis_place_frozen: true,
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
            "--mis-place-frozen",
        ];
        assert_eq!(p(&args).unwrap(), Command::NumaVm(flags));
    }

    #[test]
    fn embedded_and_tsan_take_their_flags() {
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
        assert_eq!(
            p(&["tsan"]).unwrap(),
            Command::Tsan(TsanFlags { seconds: 30 })
        );
        assert_eq!(
            p(&["tsan", "--seconds", "5"]).unwrap(),
            Command::Tsan(TsanFlags { seconds: 5 })
        );
    }

    // One test per kind of bad command line: the message names the flag
    // and what it allows, the exit status is 2.

    #[test]
    fn unknown_command_is_rejected() {
        rejects(
            &["frobnicate"],
            ErrorKind::InvalidSubcommand,
            &["'frobnicate'"],
        );
    }

    #[test]
    fn unknown_flag_is_rejected_naming_it() {
        rejects(
            &["test", "--release"],
            ErrorKind::UnknownArgument,
            &["'--release'"],
        );
        rejects(
            &["numa-vm", "--kvm"],
            ErrorKind::UnknownArgument,
            &["'--kvm'"],
        );
    }

    #[test]
    fn deps_takes_no_arguments() {
        rejects(&["deps", "x"], ErrorKind::UnknownArgument, &["'x'"]);
    }

    #[test]
    fn out_of_range_nodes_are_rejected_naming_the_range() {
        rejects(
            &["numa-vm", "--nodes", "9"],
            ErrorKind::ValueValidation,
            &["'9'", "--nodes", "1..=8"],
        );
    }

    #[test]
    fn negative_timeout_is_rejected_naming_the_range() {
        rejects(
            &["numa-vm", "--timeout", "-5"],
            ErrorKind::ValueValidation,
            &["'-5'", "--timeout", "1..=86400"],
        );
        rejects(
            &["embedded", "--timeout", "0"],
            ErrorKind::ValueValidation,
            &["'0'", "--timeout", "1..=3600"],
        );
    }

    #[test]
    fn missing_value_is_rejected() {
        rejects(
            &["numa-vm", "--timeout"],
            ErrorKind::InvalidValue,
            &["--timeout"],
        );
    }

    #[test]
    fn mis_bind_on_one_node_is_rejected() {
        rejects(
            &["numa-vm", "--nodes", "1", "--mis-bind"],
            ErrorKind::ArgumentConflict,
            &["--mis-bind", "--nodes >= 2"],
        );
        rejects(
            &["numa-vm", "--nodes", "1", "--mis-place-frozen"],
            ErrorKind::ArgumentConflict,
            &["--mis-place-frozen", "--nodes >= 2"],
        );
    }

    #[test]
    fn bad_stress_values_are_rejected_before_building() {
        rejects(
            &["stress", "--seconds", "0"],
            ErrorKind::ValueValidation,
            &["--seconds", "0.1..=86400"],
        );
        rejects(
            &["stress", "--seed", "-1"],
            ErrorKind::ValueValidation,
            &["--seed", "0..=18446744073709551615"],
        );
        rejects(
            &["tsan", "--seconds", "lots"],
            ErrorKind::ValueValidation,
            &["'lots'", "--seconds", "1..=86400"],
        );
    }
}

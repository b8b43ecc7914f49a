//! `cargo xtask deps`: make sure everything the build needs is installed.
//!
//! First the free disk space (a warning when a CI run would not fit), then
//! three groups, each checked first so that a machine with everything present
//! only pays for a few quick probes:
//! - system packages for the runtime's hwloc binding (`libhwloc-dev`,
//!   `libudev-dev`, `pkg-config`) and the `hwloc-bind` tool (`hwloc`),
//!   installed with apt-get when running as root, otherwise reported with the
//!   exact command to run;
//! - the rustup targets the no_std builds of `numatree-core` need;
//! - optionally, a nightly toolchain with `miri` and `rust-src`. Its absence
//!   is not an error: it is recorded in the [`Report`] and the Miri steps
//!   print "skipped".

use anyhow::{bail, Context as _, Result};
use xshell::{cmd, Shell};

use crate::disk;
use crate::shell;
use crate::steps::{Outcome, Step};

/// Targets `numatree-core` must build for (see DESIGN.md, "core").
pub(crate) const NO_STD_TARGETS: [&str; 2] = ["thumbv7em-none-eabihf", "x86_64-unknown-none"];

/// Nightly components the Miri step needs.
const NIGHTLY_COMPONENTS: [&str; 2] = ["miri", "rust-src"];

/// The command that installs nightly for Miri, also shown to users.
const NIGHTLY_INSTALL: &str =
    "rustup toolchain install nightly --profile minimal --component miri,rust-src";

/// What `deps` found out that later steps depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Report {
    /// Whether `cargo +nightly miri` can run.
    pub(crate) nightly: Nightly,
}

/// Availability of the nightly toolchain with Miri.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Nightly {
    /// Nightly with `miri` and `rust-src` is installed.
    Ready,
    /// Nightly or one of its components is missing; the reason says which.
    Unavailable(String),
}

/// `cargo xtask deps`: installs what is missing and reports on nightly.
pub(crate) fn run(sh: &Shell) -> Result<Report> {
    match disk::free_bytes(sh) {
        Some(free) => match disk::low_space_warning(free) {
            Some(warning) => eprintln!("deps: WARNING: {warning}"),
            None => eprintln!("deps: {} GiB free on this disk", free >> 30),
        },
        None => eprintln!("deps: could not read free disk space (`df -Pk .`)"),
    }
    ensure_system_packages(sh)?;
    ensure_targets(sh)?;
    let nightly = ensure_nightly(sh);
    match &nightly {
        Nightly::Ready => eprintln!("deps: nightly with miri and rust-src is ready"),
        Nightly::Unavailable(why) => {
            eprintln!("deps: nightly unavailable: {why}; Miri steps will be skipped")
        }
    }
    Ok(Report { nightly })
}

/// The `deps` step, which stores its [`Report`] for later steps.
pub(crate) fn step() -> Step {
    Step::new("deps", |cx| {
        cx.deps = Some(run(&cx.sh)?);
        Ok(Outcome::Passed)
    })
}

// ---------------------------------------------------------------- system packages

/// Which system prerequisites were found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Probe {
    /// `command -v pkg-config` succeeded.
    pkg_config: bool,
    /// `pkg-config --exists hwloc` succeeded.
    hwloc: bool,
    /// `pkg-config --exists libudev` succeeded.
    libudev: bool,
    /// `command -v hwloc-bind` succeeded.
    hwloc_bind: bool,
}

fn probe_system(sh: &Shell) -> Probe {
    let pkg_config = has_command(sh, "pkg-config");
    // Without pkg-config the libraries cannot be detected; installing
    // pkg-config and the -dev packages together is the fix either way.
    let pc_exists = |lib: &str| pkg_config && shell::probe(cmd!(sh, "pkg-config --exists {lib}"));
    Probe {
        pkg_config,
        hwloc: pc_exists("hwloc"),
        libudev: pc_exists("libudev"),
        hwloc_bind: has_command(sh, "hwloc-bind"),
    }
}

fn has_command(sh: &Shell, name: &str) -> bool {
    let script = format!("command -v {name}");
    shell::probe(cmd!(sh, "sh -c {script}"))
}

/// Debian packages that provide what `probe` did not find.
fn missing_packages(probe: &Probe) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if !probe.hwloc {
        missing.push("libhwloc-dev");
    }
    if !probe.libudev {
        missing.push("libudev-dev");
    }
    if !probe.pkg_config {
        missing.push("pkg-config");
    }
    if !probe.hwloc_bind {
        missing.push("hwloc");
    }
    missing
}

/// What to do about missing system packages.
#[derive(Debug, PartialEq, Eq)]
enum InstallPlan {
    /// Everything is present.
    Nothing,
    /// Run `apt-get update` and `apt-get install -y` for these packages.
    Apt(Vec<&'static str>),
    /// We cannot install them ourselves; the message tells the user how.
    Manual(String),
}

fn install_plan(missing: &[&'static str], is_root: bool, has_apt: bool) -> InstallPlan {
    if missing.is_empty() {
        return InstallPlan::Nothing;
    }
    if is_root && has_apt {
        return InstallPlan::Apt(missing.to_vec());
    }
    let list = missing.join(" ");
    let how = if is_root {
        format!(
            "apt-get was not found: install the equivalent of `{}` with this system's package manager",
            apt_install_command(missing, false)
        )
    } else {
        format!(
            "not running as root; install them with:\n    {}",
            apt_install_command(missing, true)
        )
    };
    InstallPlan::Manual(format!(
        "missing system packages: {list}\n{how}\nthen run `cargo xtask deps` again"
    ))
}

fn apt_install_command(packages: &[&str], sudo: bool) -> String {
    let sudo = if sudo { "sudo " } else { "" };
    format!("{sudo}apt-get install -y {}", packages.join(" "))
}

/// Installs the system packages the runtime and the bench scripts need.
pub(crate) fn ensure_system_packages(sh: &Shell) -> Result<()> {
    let missing = missing_packages(&probe_system(sh));
    let plan = if missing.is_empty() {
        InstallPlan::Nothing
    } else {
        let is_root = shell::read(cmd!(sh, "id -u")).is_ok_and(|uid| uid.trim() == "0");
        install_plan(&missing, is_root, has_command(sh, "apt-get"))
    };
    match plan {
        InstallPlan::Nothing => {
            eprintln!("deps: system packages present (libhwloc-dev libudev-dev pkg-config hwloc)");
            Ok(())
        }
        InstallPlan::Manual(message) => bail!(message),
        InstallPlan::Apt(packages) => {
            eprintln!("deps: installing {}", packages.join(" "));
            shell::run(cmd!(sh, "apt-get update"))?;
            shell::run_with_env(
                cmd!(sh, "apt-get install -y {packages...}"),
                &[("DEBIAN_FRONTEND", "noninteractive")],
            )?;
            let still = missing_packages(&probe_system(sh));
            if !still.is_empty() {
                bail!("still missing after apt-get install: {}", still.join(" "));
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------- rustup targets

/// The required targets absent from `rustup target list --installed` output.
fn missing_targets(installed: &str) -> Vec<&'static str> {
    NO_STD_TARGETS
        .into_iter()
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect()
}

fn ensure_targets(sh: &Shell) -> Result<()> {
    let installed = shell::read(cmd!(sh, "rustup target list --installed")).with_context(|| {
        format!(
            "rustup is needed to install the targets {}",
            NO_STD_TARGETS.join(" ")
        )
    })?;
    let missing = missing_targets(&installed);
    if missing.is_empty() {
        eprintln!(
            "deps: rustup targets present ({})",
            NO_STD_TARGETS.join(" ")
        );
        return Ok(());
    }
    shell::run(cmd!(sh, "rustup target add {missing...}"))
}

// ---------------------------------------------------------------- nightly + miri

/// Whether `rustup toolchain list` output has the plain `nightly` toolchain
/// (what `cargo +nightly` resolves to), not only dated ones.
fn has_nightly(toolchains: &str) -> bool {
    toolchains
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .any(|name| {
            name.strip_prefix("nightly").is_some_and(|rest| {
                rest.is_empty()
                    || rest
                        .strip_prefix('-')
                        .is_some_and(|host| !host.starts_with(|c: char| c.is_ascii_digit()))
            })
        })
}

/// Components from [`NIGHTLY_COMPONENTS`] absent from
/// `rustup component list --installed` output (entries look like
/// `miri-x86_64-unknown-linux-gnu` or `rust-src`).
fn missing_components(installed: &str) -> Vec<&'static str> {
    NIGHTLY_COMPONENTS
        .into_iter()
        .filter(|c| {
            !installed
                .lines()
                .map(str::trim)
                .any(|l| l == *c || l.starts_with(&format!("{c}-")))
        })
        .collect()
}

/// Whether the `CI` environment variable asks for CI behaviour.
pub(crate) fn is_ci(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn ensure_nightly(sh: &Shell) -> Nightly {
    let toolchains = match shell::read(cmd!(sh, "rustup toolchain list")) {
        Ok(list) => list,
        Err(err) => return Nightly::Unavailable(format!("`rustup toolchain list` failed: {err}")),
    };
    if has_nightly(&toolchains) {
        let installed = shell::read(cmd!(
            sh,
            "rustup component list --installed --toolchain nightly"
        ))
        .unwrap_or_default();
        let missing = missing_components(&installed);
        if missing.is_empty() {
            return Nightly::Ready;
        }
        let components = &missing;
        return match shell::run(cmd!(
            sh,
            "rustup component add --toolchain nightly {components...}"
        )) {
            Ok(()) => Nightly::Ready,
            Err(err) => Nightly::Unavailable(format!("could not add {}: {err}", missing.join(" "))),
        };
    }
    if !is_ci(std::env::var("CI").ok().as_deref()) {
        return Nightly::Unavailable(format!(
            "no nightly toolchain (install it with `{NIGHTLY_INSTALL}`)"
        ));
    }
    let args: Vec<&str> = NIGHTLY_INSTALL.split_whitespace().skip(1).collect();
    match shell::run(cmd!(sh, "rustup {args...}")) {
        Ok(()) => Nightly::Ready,
        Err(err) => Nightly::Unavailable(format!("installing it failed: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Probe = Probe {
        pkg_config: true,
        hwloc: true,
        libudev: true,
        hwloc_bind: true,
    };

    #[test]
    fn nothing_is_installed_when_every_probe_succeeds() {
        assert!(missing_packages(&ALL).is_empty());
        assert_eq!(install_plan(&[], false, false), InstallPlan::Nothing);
    }

    #[test]
    fn each_failed_probe_maps_to_its_debian_package() {
        let no_bind = Probe {
            hwloc_bind: false,
            ..ALL
        };
        assert_eq!(missing_packages(&no_bind), ["hwloc"]);
        let no_udev = Probe {
            libudev: false,
            ..ALL
        };
        assert_eq!(missing_packages(&no_udev), ["libudev-dev"]);
        let nothing = Probe::default();
        assert_eq!(
            missing_packages(&nothing),
            ["libhwloc-dev", "libudev-dev", "pkg-config", "hwloc"]
        );
    }

    #[test]
    fn root_with_apt_installs_the_missing_packages() {
        let plan = install_plan(&["libhwloc-dev", "hwloc"], true, true);
        assert_eq!(plan, InstallPlan::Apt(vec!["libhwloc-dev", "hwloc"]));
    }

    #[test]
    fn non_root_is_told_the_exact_sudo_command() {
        let InstallPlan::Manual(msg) = install_plan(&["libhwloc-dev", "pkg-config"], false, true)
        else {
            panic!("expected a manual plan");
        };
        assert!(
            msg.contains("sudo apt-get install -y libhwloc-dev pkg-config"),
            "{msg}"
        );
        assert!(msg.contains("not running as root"), "{msg}");
    }

    #[test]
    fn root_without_apt_is_told_what_to_install() {
        let InstallPlan::Manual(msg) = install_plan(&["hwloc"], true, false) else {
            panic!("expected a manual plan");
        };
        assert!(msg.contains("apt-get was not found"), "{msg}");
        assert!(msg.contains("`apt-get install -y hwloc`"), "{msg}");
    }

    #[test]
    fn missing_targets_reads_rustup_output() {
        let out = "thumbv7em-none-eabihf\nx86_64-unknown-linux-gnu\n";
        assert_eq!(missing_targets(out), ["x86_64-unknown-none"]);
        assert!(missing_targets("x86_64-unknown-none\nthumbv7em-none-eabihf").is_empty());
    }

    #[test]
    fn plain_nightly_is_detected_but_dated_nightlies_are_not() {
        let list =
            "stable-x86_64-unknown-linux-gnu (active, default)\nnightly-x86_64-unknown-linux-gnu\n";
        assert!(has_nightly(list));
        assert!(!has_nightly("stable-x86_64-unknown-linux-gnu (default)\n"));
        assert!(!has_nightly(
            "nightly-2025-01-01-x86_64-unknown-linux-gnu\n"
        ));
        assert!(has_nightly("nightly (override)"));
    }

    #[test]
    fn missing_components_matches_host_suffixed_names() {
        let out = "cargo-x86_64-unknown-linux-gnu\nmiri-x86_64-unknown-linux-gnu\nrust-src\n";
        assert!(missing_components(out).is_empty());
        assert_eq!(
            missing_components("rust-std-x86_64-unknown-linux-gnu\n"),
            ["miri", "rust-src"]
        );
        assert_eq!(missing_components("rust-src\n"), ["miri"]);
    }

    #[test]
    fn ci_variable_counts_unless_empty_or_false() {
        assert!(is_ci(Some("true")));
        assert!(is_ci(Some("1")));
        assert!(!is_ci(None));
        assert!(!is_ci(Some("")));
        assert!(!is_ci(Some("false")));
    }
}

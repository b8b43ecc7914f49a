//! `qemu-system-arm`: the system's, or Debian's unpacked under the target
//! directory, the way `numa-vm` gets `qemu-system-x86`.
//!
//! `apt-get install qemu-system-arm` would be simpler, but on a machine
//! whose `qemu-utils` comes from backports apt *removes* it to install
//! Debian's QEMU. So nothing is installed: the package and the ones it needs
//! that the host lacks (from `apt-get install -s`, whose `Remv` lines are
//! ignored) are fetched with `apt-get download`, kept in `cache/debs`, and
//! unpacked with `dpkg-deb -x` into `cache/qemu`; the binary runs from there
//! with `LD_LIBRARY_PATH` pointing at the unpacked libraries.
//!
//! (The same steps live in `numa_vm.rs` for x86; they are repeated here
//! rather than shared so that the two commands evolve independently.)

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use xshell::{cmd, Shell};

use crate::shell;

/// The Debian package with the binary.
const PACKAGE: &str = "qemu-system-arm";
/// The binary.
const BINARY: &str = "qemu-system-arm";

/// The QEMU to run.
pub(crate) struct Qemu {
    /// Path of `qemu-system-arm`.
    pub(crate) binary: PathBuf,
    /// `LD_LIBRARY_PATH` for an unpacked QEMU; `None` for the system's.
    pub(crate) library_path: Option<String>,
}

/// The system's `qemu-system-arm`, else one unpacked under `cache`
/// (fetched on first use).
pub(crate) fn ensure(sh: &Shell, cache: &Path) -> Result<Qemu> {
    if let Some(binary) = find_command(sh, BINARY) {
        return Ok(Qemu {
            binary,
            library_path: None,
        });
    }
    let root = cache.join("qemu");
    let binary = root.join("usr/bin").join(BINARY);
    if !binary.is_file() {
        let mut apt = Apt::default();
        let packages = packages(sh, &mut apt)?;
        let debs = download(sh, &mut apt, cache, &packages)?;
        // Unpack beside the final place and rename, so an interrupted run
        // leaves no half-unpacked QEMU behind.
        let partial = cache.join("qemu.partial");
        if partial.exists() {
            sh.remove_path(&partial)?;
        }
        sh.create_dir(&partial)?;
        for deb in debs {
            shell::run(cmd!(sh, "dpkg-deb -x {deb} {partial}"))?;
        }
        if root.exists() {
            sh.remove_path(&root)?;
        }
        std::fs::rename(&partial, &root)?;
        if !binary.is_file() {
            bail!("{} is not in {PACKAGE}", binary.display());
        }
    }
    let multiarch = format!("{}-linux-gnu", std::env::consts::ARCH);
    let library_path = [format!("usr/lib/{multiarch}"), format!("lib/{multiarch}")]
        .map(|dir| root.join(dir).display().to_string())
        .join(":");
    Ok(Qemu {
        binary,
        library_path: Some(library_path),
    })
}

/// Runs `apt-get update` at most once, and only when something is missing.
#[derive(Default)]
struct Apt {
    updated: bool,
}

impl Apt {
    fn update(&mut self, sh: &Shell) -> Result<()> {
        if !self.updated && is_root(sh) {
            shell::run(cmd!(sh, "apt-get update"))?;
        }
        self.updated = true;
        Ok(())
    }
}

fn is_root(sh: &Shell) -> bool {
    shell::read(cmd!(sh, "id -u")).is_ok_and(|uid| uid.trim() == "0")
}

fn find_command(sh: &Shell, name: &str) -> Option<PathBuf> {
    let script = format!("command -v {name}");
    let path = shell::read(cmd!(sh, "sh -c {script}")).ok()?;
    let path = PathBuf::from(path.trim());
    path.is_absolute().then_some(path)
}

/// The package and every package it needs that is not installed, from
/// apt's simulation of installing it.
fn packages(sh: &Shell, apt: &mut Apt) -> Result<Vec<String>> {
    let simulate = |sh: &Shell| {
        shell::read(cmd!(
            sh,
            "apt-get install -s --no-install-recommends {PACKAGE}"
        ))
        .ok()
        .map(|out| parse_simulated_installs(&out))
        .filter(|packages| !packages.is_empty())
    };
    if let Some(packages) = simulate(sh) {
        return Ok(packages);
    }
    apt.update(sh)?;
    simulate(sh).with_context(|| {
        format!(
            "apt cannot resolve {PACKAGE}; install {BINARY} yourself \
             (Debian: apt-get install --no-install-recommends {PACKAGE})"
        )
    })
}

/// The packages an `apt-get install -s` would install (`Inst NAME ...`).
fn parse_simulated_installs(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("Inst "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The .deb of each of `packages` in `cache/debs`, downloaded with
/// `apt-get download` unless already there (kept for reruns).
fn download(sh: &Shell, apt: &mut Apt, cache: &Path, packages: &[String]) -> Result<Vec<PathBuf>> {
    let debs = cache.join("debs");
    sh.create_dir(&debs)?;
    let missing: Vec<&String> = packages
        .iter()
        .filter(|p| find_deb(&debs, p).is_none())
        .collect();
    if !missing.is_empty() {
        let _dir = sh.push_dir(&debs);
        // As root apt downloads as `_apt`, who may not write here.
        let get = |sh: &Shell| {
            let missing = &missing;
            shell::run(cmd!(
                sh,
                "apt-get download -o APT::Sandbox::User=root {missing...}"
            ))
        };
        if get(sh).is_err() {
            // Stale or missing package lists: refresh once and retry.
            apt.update(sh)?;
            get(sh)?;
        }
    }
    packages
        .iter()
        .map(|p| find_deb(&debs, p).with_context(|| format!("apt-get download {p} left no .deb")))
        .collect()
}

fn find_deb(dir: &Path, package: &str) -> Option<PathBuf> {
    let prefix = format!("{package}_");
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_are_the_simulated_installs_never_the_removals() {
        let out = "NOTE: This is only a simulation!\n\
                   Remv qemu-utils [1:10.0.2+ds-2+deb13u1~bpo12+1]\n\
                   Inst libfdt1 (1.6.1-4+b1 Debian:12.15/oldstable [amd64])\n\
                   Inst qemu-system-arm (1:7.2+dfsg-7+deb12u18+b3 Debian:12.15/oldstable [amd64])\n\
                   Conf libfdt1 (1.6.1-4+b1 Debian:12.15/oldstable [amd64])\n";
        assert_eq!(
            parse_simulated_installs(out),
            ["libfdt1", "qemu-system-arm"]
        );
    }
}

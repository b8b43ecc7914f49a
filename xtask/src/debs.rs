//! Debian packages fetched without installing them: `numa-vm` (QEMU for
//! x86, a kernel, busybox) and `embedded` (QEMU for Arm) take what they
//! need as `.deb` files unpacked under `target/`, because installing QEMU
//! here would remove a preinstalled package (`qemu-utils` from backports).
//!
//! `apt-get install -s` says which packages a tool needs that are not
//! installed; `apt-get download` fetches them (kept for reruns) and
//! `dpkg-deb -x` unpacks them.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use xshell::{cmd, Shell};

use crate::shell;

/// `apt-get update`, run at most once (and only as root).
#[derive(Debug, Default)]
pub(crate) struct Apt {
    updated: bool,
}

impl Apt {
    pub(crate) fn update(&mut self, sh: &Shell) -> Result<()> {
        if !self.updated && is_root(sh) {
            shell::run(cmd!(sh, "apt-get update"))?;
        }
        self.updated = true;
        Ok(())
    }
}

pub(crate) fn is_root(sh: &Shell) -> bool {
    shell::read(cmd!(sh, "id -u")).is_ok_and(|uid| uid.trim() == "0")
}

/// Where `name` is on the `PATH`, if it is.
pub(crate) fn find_command(sh: &Shell, name: &str) -> Option<PathBuf> {
    let script = format!("command -v {name}");
    let path = shell::read(cmd!(sh, "sh -c {script}")).ok()?;
    let path = PathBuf::from(path.trim());
    path.is_absolute().then_some(path)
}

/// `package` and every package it needs that is not installed, from apt's
/// simulation of installing it; `binary` names what the user could install
/// instead when apt cannot resolve it.
pub(crate) fn packages_to_fetch(
    sh: &Shell,
    apt: &mut Apt,
    package: &str,
    binary: &str,
) -> Result<Vec<String>> {
    let simulate = |sh: &Shell| {
        shell::read(cmd!(
            sh,
            "apt-get install -s --no-install-recommends {package}"
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
            "apt cannot resolve {package}; install {binary} yourself \
             (Debian: apt-get install --no-install-recommends {package})"
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
pub(crate) fn download(
    sh: &Shell,
    apt: &mut Apt,
    cache: &Path,
    packages: &[String],
) -> Result<Vec<PathBuf>> {
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

/// Unpacks `debs` into `cache/name` (replacing what was there) and returns
/// that folder. They go into `cache/name.partial` first and are renamed,
/// so an interrupted run leaves nothing half-unpacked behind.
pub(crate) fn unpack(sh: &Shell, debs: &[PathBuf], cache: &Path, name: &str) -> Result<PathBuf> {
    let root = cache.join(name);
    let partial = cache.join(format!("{name}.partial"));
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
    Ok(root)
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

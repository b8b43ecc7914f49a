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

use anyhow::{bail, Result};
use xshell::Shell;

use crate::debs::{self, download, find_command, Apt};

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
        let packages = debs::packages_to_fetch(sh, &mut apt, PACKAGE, BINARY)?;
        let debs = download(sh, &mut apt, cache, &packages)?;
        debs::unpack(sh, &debs, cache, "qemu")?;
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

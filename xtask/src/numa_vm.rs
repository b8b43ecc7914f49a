//! `cargo xtask numa-vm`: prove NUMA placement on a real multi-node Linux
//! kernel by booting one in QEMU.
//!
//! 1. Tools, fetched with `apt-get download` and unpacked into
//!    `target/numa-vm/` (cached there), so nothing on the host changes: a
//!    Debian kernel (only `boot/vmlinuz-*` is extracted: the host's `/boot`
//!    and bootloader are never touched), a static busybox, and, unless
//!    `qemu-system-x86_64` is already installed, Debian's `qemu-system-x86`
//!    with the packages it needs that the host lacks, run from there.
//!    (Installing `qemu-system-x86` with apt would be simpler, but on a
//!    machine whose `qemu-utils` comes from backports apt removes it.)
//! 2. The verifier, `runtime/examples/numa_verify/`, built in release mode
//!    against the real `numatree` runtime.
//! 3. An initramfs, written here as a newc cpio ([`cpio`]): the verifier,
//!    every shared library `ldd` lists for it (the dynamic loader, libhwloc,
//!    libudev and their dependencies), busybox, `/dev/console`, and an
//!    `/init` that mounts /proc, /sys and /dev, runs the verifier, and
//!    powers the guest off.
//! 4. QEMU with TCG (never KVM), `--nodes` NUMA nodes of `--cpus-per-node`
//!    CPUs each and 2 GiB split evenly between them; the serial console is
//!    QEMU's stdout, echoed as it arrives and judged by [`console::judge`].
//!    The guest is killed at `--timeout`; one whose kernel has not reached
//!    init after 90 s (a TCG boot hang: nothing of ours ran) is killed and
//!    booted once more, which the command says.
//!
//! Any failed check, a missing summary or a timeout makes the command fail,
//! naming the failing line.

mod console;
mod cpio;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use xshell::{cmd, Shell};

use crate::debs::{self, download, find_command, Apt};
use crate::flags::NumaVmFlags;
use crate::shell;
use crate::steps::{Outcome, Step};

/// Guest memory over all nodes, in MiB.
const GUEST_MEMORY_MIB: usize = 2048;
/// The per-node benchmark driver, run in the guest when it exists.
const BENCH_SCRIPT: &str = "scripts/bench-per-node.sh";
/// Where the verifier sits in the guest.
const GUEST_VERIFIER: &str = "/bin/numa_verify";

/// `cargo xtask numa-vm [flags]`.
pub(crate) fn run(sh: &Shell, flags: &NumaVmFlags) -> Result<()> {
    let started = Instant::now();
    let cache = target_dir(sh).join("numa-vm");
    sh.create_dir(&cache)?;
    let tools = Tools::ensure(sh, &cache)?;
    let bench_script = sh.current_dir().join(BENCH_SCRIPT);
    let bench_script = bench_script.is_file().then_some(bench_script);
    let verifier = build_verifier(sh, bench_script.is_some())?;
    let initramfs = cache.join(format!(
        "initramfs-{}x{}.cpio",
        flags.nodes, flags.cpus_per_node
    ));
    let image = initramfs_image(sh, &tools, &verifier, bench_script.as_deref(), flags)?;
    std::fs::write(&initramfs, &image)
        .with_context(|| format!("writing {}", initramfs.display()))?;
    eprintln!(
        "numa-vm: initramfs {} ({:.1} MiB)",
        initramfs.display(),
        image.len() as f64 / (1 << 20) as f64
    );
    let mut run = boot(&tools, &initramfs, flags)?;
    if run.boot_hung {
        // Nothing of ours ran: the kernel never reached init. TCG boots
        // hang now and then (seen once in ~15 boots on the development
        // VM, 2026-11-27); one more boot, said out loud.
        eprintln!(
            "numa-vm: the guest did not reach init within {} s (its kernel hung before any \
             check ran); booting it once more",
            boot_limit(flags.timeout()).as_secs()
        );
        run = boot(&tools, &initramfs, flags)?;
    }
    let booted = run.booted.map_or("never".to_owned(), |t| {
        format!("{:.1} s after launch", t.as_secs_f64())
    });
    let timing = format!(
        "{} node(s) x {} CPU(s): init started {booted}, guest ended after {:.1} s, \
         whole command {:.1} s",
        flags.nodes,
        flags.cpus_per_node,
        run.ended.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    if run.boot_hung {
        bail!(
            "numa-vm failed ({timing}): the guest's kernel did not reach init within {} s, \
             twice; none of the verifier's checks ran",
            boot_limit(flags.timeout()).as_secs()
        );
    }
    match console::judge(&run.console, run.timed_out.then_some(flags.timeout())) {
        Ok(verdict) => {
            eprintln!("\nnuma-vm checks:");
            for line in &verdict.checks {
                eprintln!("  {line}");
            }
            eprintln!("numa-vm: ok, {} checks passed ({timing})", verdict.passed);
            Ok(())
        }
        Err(why) => bail!("numa-vm failed ({timing}): {why}"),
    }
}

/// The `numa-vm` step of `ci`.
pub(crate) fn step(flags: NumaVmFlags) -> Step {
    Step::new(
        format!(
            "numa-vm --nodes {} --cpus-per-node {}",
            flags.nodes, flags.cpus_per_node
        ),
        move |cx| run(&cx.sh, &flags).map(|()| Outcome::Passed),
    )
}

fn target_dir(sh: &Shell) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => sh.current_dir().join(dir),
        None => sh.current_dir().join("target"),
    }
}

// ---------------------------------------------------------------- tools

/// What the guest is made of.
struct Tools {
    qemu: Qemu,
    kernel: PathBuf,
    busybox: PathBuf,
}

/// The QEMU to run: the system's, or one unpacked under the cache.
struct Qemu {
    binary: PathBuf,
    /// For an unpacked QEMU: its library directories (`LD_LIBRARY_PATH`)
    /// and its firmware directory (`-L`).
    private: Option<(String, PathBuf)>,
}

impl Tools {
    fn ensure(sh: &Shell, cache: &Path) -> Result<Tools> {
        let mut apt = Apt::default();
        let qemu = ensure_qemu(sh, &mut apt, cache)?;
        let kernel = cache.join("vmlinuz");
        if !kernel.is_file() {
            let package = kernel_package(sh, &mut apt)?;
            let pattern = "./boot/vmlinuz-*";
            let found = fetch_from_deb(sh, &mut apt, cache, &package, pattern)?;
            std::fs::rename(&found, &kernel)?;
        }
        let busybox = cache.join("busybox");
        if !busybox.is_file() {
            let found = fetch_from_deb(sh, &mut apt, cache, "busybox-static", "./bin/busybox")?;
            std::fs::rename(&found, &busybox)?;
        }
        eprintln!(
            "numa-vm: qemu {}, kernel {}, busybox {}",
            qemu.binary.display(),
            kernel.display(),
            busybox.display()
        );
        Ok(Tools {
            qemu,
            kernel,
            busybox,
        })
    }
}

fn ensure_qemu(sh: &Shell, apt: &mut Apt, cache: &Path) -> Result<Qemu> {
    if let Some(binary) = find_command(sh, "qemu-system-x86_64") {
        return Ok(Qemu {
            binary,
            private: None,
        });
    }
    let root = cache.join("qemu");
    let binary = root.join("usr/bin/qemu-system-x86_64");
    if !binary.is_file() {
        let packages = debs::packages_to_fetch(sh, apt, "qemu-system-x86", "qemu-system-x86_64")?;
        let debs = download(sh, apt, cache, &packages)?;
        debs::unpack(sh, &debs, cache, "qemu")?;
        if !binary.is_file() {
            bail!("{} is not in qemu-system-x86", binary.display());
        }
    }
    let libs = ["usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"]
        .map(|dir| root.join(dir).display().to_string())
        .join(":");
    Ok(Qemu {
        binary,
        private: Some((libs, root.join("usr/share/qemu"))),
    })
}

/// The versioned kernel package `linux-image-amd64` depends on.
fn kernel_package(sh: &Shell, apt: &mut Apt) -> Result<String> {
    let ask = |sh: &Shell| {
        shell::read(cmd!(sh, "apt-cache depends linux-image-amd64"))
            .ok()
            .and_then(|out| parse_kernel_depends(&out))
    };
    if let Some(package) = ask(sh) {
        return Ok(package);
    }
    apt.update(sh)?;
    ask(sh).context("`apt-cache depends linux-image-amd64` names no linux-image package")
}

/// The first `linux-image-*` dependency in `apt-cache depends` output.
fn parse_kernel_depends(out: &str) -> Option<String> {
    out.lines().find_map(|line| {
        let dep = line
            .trim()
            .trim_start_matches('|')
            .strip_prefix("Depends: ")?;
        dep.starts_with("linux-image-")
            .then(|| dep.trim().to_owned())
    })
}

/// Downloads `package`'s .deb into `cache/debs` (kept for reruns) and
/// extracts the one file matching `member` (a tar wildcard) into
/// `cache/root`; returns its path.
fn fetch_from_deb(
    sh: &Shell,
    apt: &mut Apt,
    cache: &Path,
    package: &str,
    member: &str,
) -> Result<PathBuf> {
    let deb = download(sh, apt, cache, &[package.to_owned()])?.remove(0);
    let root = cache.join("root");
    sh.create_dir(&root)?;
    let script = "dpkg-deb --fsys-tarfile \"$1\" | tar -x -C \"$2\" --wildcards \"$3\"";
    shell::run(cmd!(sh, "sh -c {script} sh {deb} {root} {member}"))?;
    let (dir, file) = member.rsplit_once('/').expect("member has a directory");
    let prefix = file.trim_end_matches('*');
    let dir = root.join(dir);
    std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .with_context(|| format!("{member} not found in {}", deb.display()))
}

// ---------------------------------------------------------------- verifier and initramfs

/// Binaries for the guest, built in release mode.
struct Verifier {
    verifier: PathBuf,
    /// `numatree-bench`, built only when the per-node script exists.
    bench: Option<PathBuf>,
}

fn build_verifier(sh: &Shell, with_bench: bool) -> Result<Verifier> {
    shell::run(cmd!(
        sh,
        "cargo build --release -p numatree --example numa_verify"
    ))?;
    let release = target_dir(sh).join("release");
    let bench = if with_bench {
        shell::run(cmd!(sh, "cargo build --release -p numatree-bench --bins"))?;
        Some(release.join("numatree-bench"))
    } else {
        None
    };
    Ok(Verifier {
        verifier: release.join("examples/numa_verify"),
        bench,
    })
}

/// The absolute paths of the shared objects in `ldd` output, the dynamic
/// loader included (the vDSO has no file and is skipped).
fn parse_ldd(out: &str) -> Result<Vec<String>> {
    let mut libs = Vec::new();
    for line in out.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.contains("not found") {
            bail!("ldd: {line}");
        }
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.trim(),
            None => line,
        };
        let path = path.split(" (").next().unwrap_or_default().trim();
        if path.starts_with('/') {
            libs.push(path.to_owned());
        }
    }
    Ok(libs)
}

/// Adds the ELF at `host` as `guest` with every library it needs.
fn add_binary(
    sh: &Shell,
    archive: &mut cpio::Archive,
    libs: &mut std::collections::BTreeSet<String>,
    host: &Path,
    guest: &str,
) -> Result<()> {
    let data = std::fs::read(host).with_context(|| format!("reading {}", host.display()))?;
    archive.file(guest, 0o755, &data);
    let out = shell::read(cmd!(sh, "ldd {host}"))?;
    for lib in parse_ldd(&out)? {
        if libs.insert(lib.clone()) {
            // Copy the content: links are resolved on the host.
            let data = std::fs::read(&lib).with_context(|| format!("reading {lib}"))?;
            archive.file(&lib, 0o755, &data);
        }
    }
    Ok(())
}

/// The `/init` script: mount, run the verifier, print its status, power off.
fn init_script(verifier_args: &str, library_dirs: &str) -> String {
    format!(
        "#!/bin/sh\n\
         export PATH=/bin:/usr/bin\n\
         export LD_LIBRARY_PATH={library_dirs}\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sysfs /sys\n\
         mount -t devtmpfs devtmpfs /dev\n\
         echo \"# guest: kernel $(uname -r) up after $(cut -d' ' -f1 /proc/uptime) s, \
         $(grep -c ^processor /proc/cpuinfo) CPUs, nodes: $(cat /sys/devices/system/node/online), \
         numa_balancing $(cat /proc/sys/kernel/numa_balancing 2>/dev/null || echo absent)\"\n\
         {GUEST_VERIFIER} {verifier_args}\n\
         echo \"# guest: verifier exited with status $?\"\n\
         echo \"# guest: $(grep -E '^numa_(pages_migrated|hint_faults) ' /proc/vmstat | tr '\\n' ' ')\"\n\
         poweroff -f\n"
    )
}

fn initramfs_image(
    sh: &Shell,
    tools: &Tools,
    built: &Verifier,
    bench_script: Option<&Path>,
    flags: &NumaVmFlags,
) -> Result<Vec<u8>> {
    let mut archive = cpio::Archive::default();
    for dir in ["proc", "sys", "dev", "tmp", "usr/bin"] {
        archive.dir(dir);
    }
    archive.char_device("/dev/console", 0o600, 5, 1);
    let busybox = std::fs::read(&tools.busybox)?;
    archive.file("/bin/busybox", 0o755, &busybox);
    // What a per-node driver is likely to call, each only if the host has it.
    let tools_for_script: Vec<(&str, PathBuf)> = match bench_script {
        Some(_) => ["bash", "hwloc-bind", "hwloc-calc", "numactl"]
            .into_iter()
            .filter_map(|tool| Some((tool, find_command(sh, tool)?)))
            .collect(),
        None => Vec::new(),
    };
    // Every busybox applet, so scripts find the usual commands (`--list`
    // names busybox itself too).
    let busybox_path = &tools.busybox;
    let applets = shell::read(cmd!(sh, "{busybox_path} --list"))?;
    for applet in applets.lines().map(str::trim) {
        let packed = applet == "busybox" || tools_for_script.iter().any(|(t, _)| t == &applet);
        if !applet.is_empty() && !packed {
            archive.symlink(&format!("/bin/{applet}"), "busybox");
        }
    }
    archive.symlink("/usr/bin/env", "/bin/busybox");
    let mut libs = std::collections::BTreeSet::new();
    add_binary(sh, &mut archive, &mut libs, &built.verifier, GUEST_VERIFIER)?;

    let mut args = format!(
        "--nodes {} --cpus-per-node {}",
        flags.nodes, flags.cpus_per_node
    );
    if flags.mis_bind {
        args.push_str(" --mis-bind");
    }
    if flags.mis_place_frozen {
        args.push_str(" --mis-place-frozen");
    }
    if let (Some(script), Some(bench)) = (bench_script, &built.bench) {
        archive.file(&format!("/{BENCH_SCRIPT}"), 0o755, &std::fs::read(script)?);
        add_binary(sh, &mut archive, &mut libs, bench, "/bin/numatree-bench")?;
        let merge = bench.with_file_name("numatree-bench-merge");
        add_binary(
            sh,
            &mut archive,
            &mut libs,
            &merge,
            "/bin/numatree-bench-merge",
        )?;
        for (tool, path) in &tools_for_script {
            add_binary(sh, &mut archive, &mut libs, path, &format!("/bin/{tool}"))?;
        }
        args.push_str(&format!(" --bench-script /{BENCH_SCRIPT}"));
    }
    let mut dirs: Vec<&str> = libs
        .iter()
        .filter_map(|l| l.rsplit_once('/').map(|(dir, _)| dir))
        .collect();
    dirs.sort_unstable();
    dirs.dedup();
    archive.file(
        "/init",
        0o755,
        init_script(&args, &dirs.join(":")).as_bytes(),
    );
    Ok(archive.finish())
}

// ---------------------------------------------------------------- QEMU

/// What one guest run printed and how it ended.
struct GuestRun {
    console: String,
    timed_out: bool,
    /// Killed because init had not started by [`boot_limit`].
    boot_hung: bool,
    /// When init's first line appeared, after launch.
    booted: Option<Duration>,
    /// When QEMU exited (or was killed), after launch.
    ended: Duration,
}

/// QEMU's arguments for `flags`: TCG, one socket and one memory backend per
/// node, the serial console on stdout.
fn qemu_args(kernel: &Path, initramfs: &Path, flags: &NumaVmFlags) -> Vec<String> {
    let (nodes, per) = (flags.nodes, flags.cpus_per_node);
    let memory = GUEST_MEMORY_MIB / nodes;
    let mut args: Vec<String> = [
        "-accel",
        "tcg,thread=multi",
        "-cpu",
        "max",
        "-nographic",
        "-no-reboot",
        "-nic",
        "none",
    ]
    .map(String::from)
    .to_vec();
    args.push("-m".into());
    args.push(format!("{}M", memory * nodes));
    args.push("-smp".into());
    args.push(format!(
        "{},sockets={nodes},cores={per},threads=1",
        nodes * per
    ));
    for node in 0..nodes {
        let cpus = match per {
            1 => format!("{node}"),
            _ => format!("{}-{}", node * per, node * per + per - 1),
        };
        args.push("-object".into());
        args.push(format!("memory-backend-ram,id=m{node},size={memory}M"));
        args.push("-numa".into());
        args.push(format!("node,nodeid={node},cpus={cpus},memdev=m{node}"));
    }
    args.push("-kernel".into());
    args.push(kernel.display().to_string());
    args.push("-initrd".into());
    args.push(initramfs.display().to_string());
    args.push("-append".into());
    args.push("console=ttyS0 quiet panic=-1".into());
    args
}

/// How long init may take to start: a TCG boot reaches it in 7-11 s here
/// (10.4 s on a CI machine), so this is a hang, not a slow boot; never
/// past the whole run's `timeout`.
const BOOT_LIMIT: Duration = Duration::from_secs(90);

/// [`BOOT_LIMIT`], or the run's `timeout` when that is shorter.
fn boot_limit(timeout: Duration) -> Duration {
    BOOT_LIMIT.min(timeout)
}

/// Until when to wait for the next console line, launched at `launched`:
/// the run's deadline, or the boot's while init has not started; and
/// whether that is the boot's.
fn wait_until(launched: Instant, booted: bool, timeout: Duration) -> (Instant, bool) {
    let run = launched + timeout;
    let boot = launched + boot_limit(timeout);
    if !booted && boot < run {
        (boot, true)
    } else {
        (run, false)
    }
}

/// Boots the guest, echoes its console, kills it at the timeout (or when
/// init has not started by [`boot_limit`]).
fn boot(tools: &Tools, initramfs: &Path, flags: &NumaVmFlags) -> Result<GuestRun> {
    let mut args = qemu_args(&tools.kernel, initramfs, flags);
    let mut command = Command::new(&tools.qemu.binary);
    let mut env = String::new();
    if let Some((libs, firmware)) = &tools.qemu.private {
        args.push("-L".into());
        args.push(firmware.display().to_string());
        command.env("LD_LIBRARY_PATH", libs);
        env = format!("LD_LIBRARY_PATH={libs} ");
    }
    eprintln!("$ {env}{} {}", tools.qemu.binary.display(), args.join(" "));
    let launched = Instant::now();
    let mut child = command
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", tools.qemu.binary.display()))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        while matches!(reader.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
            let line = console::clean_line(&String::from_utf8_lossy(&buf));
            if tx.send(line).is_err() {
                break;
            }
            buf.clear();
        }
    });
    let mut console = String::new();
    let mut booted = None;
    let mut timed_out = false;
    let mut boot_hung = false;
    loop {
        let (deadline, for_boot) = wait_until(launched, booted.is_some(), flags.timeout());
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if booted.is_none() && line.starts_with("# guest: kernel") {
                    booted = Some(launched.elapsed());
                }
                eprintln!("guest| {line}");
                console.push_str(&line);
                console.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                boot_hung = for_boot;
                eprintln!(
                    "numa-vm: killing the guest after {} s{}",
                    launched.elapsed().as_secs(),
                    if for_boot {
                        " (init never started)"
                    } else {
                        ""
                    }
                );
                let _ = child.kill();
                break;
            }
        }
    }
    let status = child.wait()?;
    let ended = launched.elapsed();
    let _ = reader.join();
    if !timed_out && !status.success() {
        eprintln!("numa-vm: qemu exited with {status}");
    }
    Ok(GuestRun {
        console,
        timed_out,
        boot_hung,
        booted,
        ended,
    })
}

#[cfg(test)]
mod tests;

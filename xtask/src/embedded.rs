//! `cargo xtask embedded`: `numatree-core` *running* on a Cortex-M4F, not
//! only building for it, and what it costs there.
//!
//! 1. The firmware crate `embedded/` (its own workspace, built into
//!    `target/embedded/`) is format-checked and linted for
//!    `thumbv7em-none-eabihf`.
//! 2. `qemu-system-arm`: the system's, or Debian's fetched and unpacked
//!    under `target/embedded/` without installing anything ([`qemu`]).
//! 3. The `check` firmware (release, overflow checks on) runs on QEMU's
//!    `mps2-an386` board (Cortex-M4F) with semihosting: one `PASS`/`FAIL`
//!    line per check, a summary, an exit status ([`console`]). Any failed
//!    check, panic, fault, missing summary, non-zero status or a run past
//!    `--timeout` fails the command. `--plant-wrong-expectation` builds it
//!    with one expectation planted wrong: the command must then fail, and
//!    [`negative_control_step`] proves in `test` and `ci` that it does.
//! 4. The `footprint` firmware (profile `footprint`: what a user ships,
//!    overflow checks off) runs with `-icount shift=0` (one instruction per
//!    virtual nanosecond, counted with SysTick), painting the stack around
//!    every `merge_run`; its flash and RAM, and the core's alone (minus the
//!    `baseline` firmware, the same harness without the core), come from
//!    the ELF section headers ([`elf`]). The figures are printed as the
//!    Markdown table the README quotes.

mod console;
mod elf;
mod qemu;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use xshell::{cmd, Shell};

use self::console::Ending;
use crate::deps;
use crate::flags::EmbeddedFlags;
use crate::shell;
use crate::steps::{Outcome, Step};

/// The firmware's manifest, relative to the workspace root.
const MANIFEST: &str = "embedded/Cargo.toml";
/// The firmware's target.
const TARGET: &str = "thumbv7em-none-eabihf";
/// QEMU's board with a Cortex-M4F.
const BOARD: &str = "mps2-an386";
/// The check that the planted wrong expectation must make fail.
const PLANTED_CHECK: &str = "FAIL point-lookups:";
/// SysTick ticks per instruction under `-icount shift=0` on mps2 (25 MHz
/// core clock, 1 ns per instruction): 40 instructions per tick, times 1,000.
const EXPECTED_MILLI_INSTRUCTIONS_PER_TICK: u64 = 40_000;

/// `cargo xtask embedded [flags]`.
pub(crate) fn run(sh: &Shell, flags: &EmbeddedFlags) -> Result<()> {
    let started = Instant::now();
    let cache = target_dir(sh).join("embedded");
    lint(sh, &cache)?;
    let qemu = qemu::ensure(sh, &cache)?;
    eprintln!("embedded: qemu {}", qemu.binary.display());
    let passed = run_checks(sh, &qemu, &cache, flags)?;
    let checks_done = started.elapsed();
    let report = measure(sh, &qemu, &cache, flags.timeout())?;
    eprintln!("\nembedded checks (thumbv7em-none-eabihf on QEMU {BOARD}):");
    for line in &passed {
        eprintln!("  {line}");
    }
    println!("\n{report}");
    eprintln!(
        "embedded: ok, {} checks passed; {:.1} s in all ({:.1} s to the checks' verdict)",
        passed.len(),
        started.elapsed().as_secs_f64(),
        checks_done.as_secs_f64()
    );
    Ok(())
}

/// The `embedded` step of `test` and `ci`. Where QEMU can neither be found
/// nor fetched it is skipped, except under CI (`CI` set), where it fails.
pub(crate) fn step() -> Step {
    Step::new("embedded (numatree-core on a Cortex-M4F in QEMU)", |cx| {
        if let Some(skipped) = qemu_or_skip(&cx.sh)? {
            return Ok(skipped);
        }
        run(&cx.sh, &EmbeddedFlags::default()).map(|()| Outcome::Passed)
    })
}

/// The negative control as a step: the `check` firmware with a planted wrong
/// expectation must fail on exactly that check.
pub(crate) fn negative_control_step() -> Step {
    Step::new("embedded --plant-wrong-expectation (must fail)", |cx| {
        if let Some(skipped) = qemu_or_skip(&cx.sh)? {
            return Ok(skipped);
        }
        let cache = target_dir(&cx.sh).join("embedded");
        let qemu = qemu::ensure(&cx.sh, &cache)?;
        let flags = EmbeddedFlags {
            plant_wrong_expectation: true,
            ..EmbeddedFlags::default()
        };
        match run_checks(&cx.sh, &qemu, &cache, &flags) {
            Ok(_) => {
                bail!("the planted wrong expectation went unnoticed: the check firmware passed")
            }
            Err(err) if is_planted_failure(&format!("{err:#}")) => {
                eprintln!("embedded: the negative control failed as it must:\n{err:#}");
                Ok(Outcome::Passed)
            }
            Err(err) => Err(err.context(format!(
                "the planted build failed, but not (only) with `{PLANTED_CHECK}`"
            ))),
        }
    })
}

/// `Some(Skipped)` when QEMU is unavailable outside CI; an error when it is
/// unavailable under CI; `None` when it is there (fetched if need be).
fn qemu_or_skip(sh: &Shell) -> Result<Option<Outcome>> {
    let cache = target_dir(sh).join("embedded");
    match qemu::ensure(sh, &cache) {
        Ok(_) => Ok(None),
        Err(err) if !deps::is_ci(std::env::var("CI").ok().as_deref()) => {
            Ok(Some(Outcome::Skipped(format!(
                "qemu-system-arm is not installed and could not be fetched: {err:#}"
            ))))
        }
        Err(err) => Err(err.context("CI is set, so the embedded checks must run")),
    }
}

/// Whether a failure of the planted build is the planted one: the
/// point-lookup check failed, and no panic or fault happened.
fn is_planted_failure(message: &str) -> bool {
    message.contains(PLANTED_CHECK)
        && !message.contains("FAIL panic")
        && !message.contains("FAIL hard-fault")
}

fn target_dir(sh: &Shell) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => sh.current_dir().join(dir),
        None => sh.current_dir().join("target"),
    }
}

/// `cargo fmt --check` and `cargo clippy -D warnings` on the firmware crate,
/// which the workspace-wide commands do not reach (it is excluded).
fn lint(sh: &Shell, cache: &Path) -> Result<()> {
    shell::run(cmd!(sh, "cargo fmt --manifest-path {MANIFEST} -- --check"))?;
    shell::run(cmd!(
        sh,
        "cargo clippy --manifest-path {MANIFEST} --target {TARGET} --target-dir {cache} --bins -- -D warnings"
    ))
}

/// Builds `bins` of the firmware with `profile` and `features`; returns
/// their paths in the same order.
fn build(
    sh: &Shell,
    cache: &Path,
    profile: &str,
    bins: &[&str],
    features: &[&str],
) -> Result<Vec<PathBuf>> {
    let bin_args = bins.iter().flat_map(|b| ["--bin", b]);
    let feature_args = features.iter().flat_map(|f| ["--features", f]);
    shell::run(cmd!(
        sh,
        "cargo build --manifest-path {MANIFEST} --target {TARGET} --target-dir {cache} --profile {profile} {bin_args...} {feature_args...}"
    ))?;
    let dir = cache.join(TARGET).join(profile);
    Ok(bins.iter().map(|b| dir.join(b)).collect())
}

/// Builds and runs the `check` firmware; the `PASS` lines when it passed.
fn run_checks(
    sh: &Shell,
    qemu: &qemu::Qemu,
    cache: &Path,
    flags: &EmbeddedFlags,
) -> Result<Vec<String>> {
    let features: &[&str] = if flags.plant_wrong_expectation {
        &["plant-wrong-expectation"]
    } else {
        &[]
    };
    let check = build(sh, cache, "release", &["check"], features)?.remove(0);
    let run = run_firmware(qemu, &check, false, flags.timeout())?;
    console::judge_checks(&run.output, run.ending).map_err(|why| {
        let planted = if flags.plant_wrong_expectation {
            " (--plant-wrong-expectation: this failure is the expected one)"
        } else {
            ""
        };
        anyhow::anyhow!(
            "embedded checks failed{planted} after {:.1} s: {why}",
            run.wall.as_secs_f64()
        )
    })
}

/// Builds `footprint` and `baseline`, runs `footprint` with instruction
/// counting, and renders the figures.
fn measure(sh: &Shell, qemu: &qemu::Qemu, cache: &Path, timeout: Duration) -> Result<String> {
    let elfs = build(sh, cache, "footprint", &["footprint", "baseline"], &[])?;
    let run = run_firmware(qemu, &elfs[0], true, timeout)?;
    let figures = console::parse_footprint(&run.output, run.ending)
        .map_err(|why| anyhow::anyhow!("footprint run failed: {why}"))?;
    let sizes = |path: &Path| -> Result<elf::Sizes> {
        let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        elf::sizes(&data).with_context(|| format!("reading the sections of {}", path.display()))
    };
    let footprint = sizes(&elfs[0])?;
    let baseline = sizes(&elfs[1])?;
    render(&Figures::new(figures)?, footprint, baseline)
}

/// The `FOOTPRINT` figures by name, with a helpful error for a missing one.
struct Figures(BTreeMap<String, u64>);

impl Figures {
    fn new(map: BTreeMap<String, u64>) -> Result<Figures> {
        let figures = Figures(map);
        let ratio = figures.get("milli_instructions_per_tick")?;
        if ratio.abs_diff(EXPECTED_MILLI_INSTRUCTIONS_PER_TICK) > 400 {
            bail!(
                "SysTick calibration gave {:.3} instructions per tick, not 40: QEMU's \
                 `-icount shift=0` is not in effect, so instruction counts would be wrong",
                ratio as f64 / 1000.0
            );
        }
        for workload in WORKLOADS.map(|(name, _)| name) {
            if figures.get(&format!("{workload}.merge_run_stack_window_overflowed"))? != 0 {
                bail!(
                    "merge_run went deeper than the painted window of {} bytes ({workload}); \
                     widen stack::WINDOW in embedded/src/stack.rs",
                    figures.get("stack_window_bytes")?
                );
            }
            if figures.get(&format!("{workload}.store_full"))? != 1 {
                bail!("the footprint workload {workload} never filled the store");
            }
        }
        Ok(figures)
    }

    fn get(&self, name: &str) -> Result<u64> {
        self.0
            .get(name)
            .copied()
            .with_context(|| format!("the footprint firmware printed no `FOOTPRINT {name}` line"))
    }
}

/// The workloads `footprint` measures: name in its output, and description.
const WORKLOADS: [(&str, &str); 2] = [
    (
        "wide_ids",
        "series ids 0 and u32::MAX in every slot (the sort's merge-sort path)",
    ),
    (
        "narrow_ids",
        "series ids 0..6 (the sort's counting-sort path)",
    ),
];

/// The report: the configuration and two Markdown tables.
fn render(figures: &Figures, footprint: elf::Sizes, baseline: elf::Sizes) -> Result<String> {
    let n = |v: u64| group_thousands(v);
    let core_flash = footprint.flash().saturating_sub(baseline.flash());
    let core_ram = footprint.ram().saturating_sub(baseline.ram());
    let (slot, scratch, tree) = (
        figures.get("slot_bytes")?,
        figures.get("scratch_bytes")?,
        figures.get("tree_bytes")?,
    );
    let mut out = format!(
        "Configuration: `thumbv7em-none-eabihf`, profile `footprint` of `embedded/Cargo.toml` \
         (opt-level \"s\", fat LTO, 1 codegen unit, overflow checks off); \
         `ArraySlot<{slot_records}>`, `SortScratch<{slot_records}>`, \
         `Tree<ArrayStore<{store_nodes}>>` with leaves of {leaf} records and inner nodes of \
         {fanout} children, all in statics.\n\n",
        slot_records = figures.get("slot_records")?,
        store_nodes = figures.get("store_nodes")?,
        leaf = figures.get("leaf_records")?,
        fanout = figures.get("inner_fanout")?,
    );
    out.push_str("| image | flash: text + rodata + data | RAM: data + bss |\n|---|---:|---:|\n");
    for (name, s) in [
        ("`footprint` firmware", footprint),
        ("`baseline` firmware (same harness, no core)", baseline),
    ] {
        out.push_str(&format!(
            "| {name} | {} B ({} + {} + {}) | {} B ({} + {}) |\n",
            n(s.flash()),
            n(s.text),
            n(s.rodata),
            n(s.data),
            n(s.ram()),
            n(s.data),
            n(s.bss)
        ));
    }
    out.push_str(&format!(
        "| **`numatree-core` alone** (difference) | **{} B** | **{} B** (slot {} + scratch {} + tree and store {}) |\n\n",
        n(core_flash),
        n(core_ram),
        n(slot),
        n(scratch),
        n(tree)
    ));
    out.push_str("| measured on the emulated Cortex-M4F | value |\n|---|---|\n");
    let stack = WORKLOADS
        .iter()
        .map(|(w, _)| figures.get(&format!("{w}.merge_run_stack_bytes")))
        .collect::<Result<Vec<u64>>>()?
        .into_iter()
        .max()
        .unwrap_or(0);
    let calls: u64 = WORKLOADS
        .iter()
        .map(|(w, _)| figures.get(&format!("{w}.merge_run_calls")))
        .sum::<Result<u64>>()?;
    let height = figures.get("wide_ids.tree_height")?;
    out.push_str(&format!(
        "| `merge_run` worst-case stack | {} B (painted; highest of {calls} calls filling the store \
         to height {height}: appends, in-leaf merges, leaf and inner splits, a new root, `Error::Full`) |\n",
        n(stack)
    ));
    for (workload, description) in WORKLOADS {
        let get = |what: &str| figures.get(&format!("{workload}.{what}"));
        let records = get("records")?.max(1);
        let (push, sort, merge) = (
            get("instructions_push")?,
            get("instructions_sort")?,
            get("instructions_merge")?,
        );
        let total = (push + sort + merge).max(1);
        out.push_str(&format!(
            "| ingest, {description} | {} instructions/record (push {}, sort {}, merge {}) over {} records: \
             **{} records/s per MHz** at 1 instruction per cycle |\n",
            n(total / records),
            n(push / records),
            n(sort / records),
            n(merge / records),
            n(records),
            n(records * 1_000_000 / total)
        ));
    }
    // Reads do not depend on how the series ids sort: quote one workload.
    let get = |what: &str| figures.get(&format!("wide_ids.{what}"));
    let (gets, found) = (get("gets")?.max(1), get("gets_found")?);
    out.push_str(&format!(
        "| point lookup `get` | {} instructions (mean of {} lookups of one series, {} found, tree height {height}) |\n",
        n(get("instructions_get")? / gets),
        n(gets),
        n(found)
    ));
    out.push_str(&format!(
        "| range scan `range(..).count()` | {} instructions per record (every series' whole range: {} records) |\n",
        n(get("instructions_scan")? / get("scanned_records")?.max(1)),
        n(get("scanned_records")?)
    ));
    Ok(out)
}

/// `1234567` as `1,234,567`.
fn group_thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What one firmware run printed and how it ended.
struct FirmwareRun {
    output: String,
    ending: Ending,
    wall: Duration,
}

/// QEMU's arguments: the board, semihosting to QEMU's stdout, no display,
/// monitor or serial port; with `icount`, one instruction per virtual ns.
fn qemu_args(elf: &Path, icount: bool) -> Vec<String> {
    let mut args: Vec<String> = [
        "-M",
        BOARD,
        "-cpu",
        "cortex-m4",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        "none",
        "-semihosting-config",
        "enable=on,target=native",
    ]
    .map(String::from)
    .to_vec();
    if icount {
        args.push("-icount".into());
        args.push("shift=0,align=off,sleep=off".into());
    }
    args.push("-kernel".into());
    args.push(elf.display().to_string());
    args
}

/// Runs `elf` in QEMU, echoing its output prefixed `m4| `; kills it at `timeout`.
fn run_firmware(
    qemu: &qemu::Qemu,
    elf: &Path,
    icount: bool,
    timeout: Duration,
) -> Result<FirmwareRun> {
    let args = qemu_args(elf, icount);
    let mut command = Command::new(&qemu.binary);
    let mut env = String::new();
    if let Some(libs) = &qemu.library_path {
        command.env("LD_LIBRARY_PATH", libs);
        env = format!("LD_LIBRARY_PATH={libs} ");
    }
    eprintln!("$ {env}{} {}", qemu.binary.display(), args.join(" "));
    let launched = Instant::now();
    let mut child = command
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", qemu.binary.display()))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        while matches!(reader.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
            let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
            if tx.send(line).is_err() {
                break;
            }
            buf.clear();
        }
    });
    let deadline = launched + timeout;
    let mut output = String::new();
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                eprintln!("m4| {line}");
                output.push_str(&line);
                output.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                eprintln!("embedded: killing QEMU after {} s", timeout.as_secs());
                let _ = child.kill();
                break;
            }
        }
    }
    let status = child.wait()?;
    let wall = launched.elapsed();
    let _ = reader.join();
    let ending = if timed_out {
        Ending::TimedOut(timeout)
    } else {
        status.code().map_or(Ending::Killed, Ending::Exited)
    };
    Ok(FirmwareRun {
        output,
        ending,
        wall,
    })
}

#[cfg(test)]
mod tests;

//! Echoing wrappers around `xshell`.
//!
//! `Cmd::run` already echoes `$ command` to stderr, but `read`/`output` do
//! not and neither shows environment variables. These helpers make every
//! command the xtask runs visible in the log, probes included.

use anyhow::Result;
use xshell::Cmd;

/// Runs `cmd` with inherited stdio; echoes it first (xshell does).
pub(crate) fn run(cmd: Cmd<'_>) -> Result<()> {
    cmd.run()?;
    Ok(())
}

/// Runs `cmd` with extra environment variables, echoing them with the command.
pub(crate) fn run_with_env(cmd: Cmd<'_>, env: &[(&str, &str)]) -> Result<()> {
    let prefix: String = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    eprintln!("$ {prefix}{cmd}");
    let mut cmd = cmd.quiet();
    for (k, v) in env {
        cmd = cmd.env(k, v);
    }
    cmd.run()?;
    Ok(())
}

/// Runs `cmd` and returns its stdout (trailing newline trimmed), echoing it first.
pub(crate) fn read(cmd: Cmd<'_>) -> Result<String> {
    eprintln!("$ {cmd}");
    Ok(cmd.quiet().read()?)
}

/// Runs `cmd` for its exit status only, output discarded, echoing it first.
/// A command that cannot be started counts as failed.
pub(crate) fn probe(cmd: Cmd<'_>) -> bool {
    eprintln!("$ {cmd}");
    cmd.quiet()
        .ignore_status()
        .ignore_stdout()
        .ignore_stderr()
        .output()
        .is_ok_and(|out| out.status.success())
}

/// A command of [`run_side_by_side`]: a label for its log, the program and
/// its arguments, and extra environment variables.
pub(crate) struct Parallel {
    pub(crate) label: &'static str,
    pub(crate) program: &'static str,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(&'static str, String)>,
}

/// Runs `commands` at once, in `sh`'s directory, each one's output into
/// `logs/<label>.log`, echoed first and printed whole as each ends (in
/// order); fails naming the ones that failed. For commands that each keep
/// one core busy (a Miri run interprets one thread at a time), so that on
/// two cores two of them take the wall time of the longer.
pub(crate) fn run_side_by_side(
    sh: &xshell::Shell,
    logs: &std::path::Path,
    commands: Vec<Parallel>,
) -> Result<()> {
    std::fs::create_dir_all(logs)?;
    let mut running = Vec::new();
    for c in commands {
        let prefix: String = c.env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        eprintln!("$ {prefix}{} {} &", c.program, c.args.join(" "));
        let path = logs.join(format!("{}.log", c.label));
        let log = std::fs::File::create(&path)?;
        let child = std::process::Command::new(c.program)
            .args(&c.args)
            .envs(c.env.iter().map(|(k, v)| (k, v)))
            .current_dir(sh.current_dir())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start `{}`: {e}", c.program))?;
        running.push((c.label, path, child));
    }
    let mut failed = Vec::new();
    for (label, path, mut child) in running {
        let status = child.wait()?;
        eprintln!("----- {label}: {status} (log {}) -----", path.display());
        eprint!("{}", std::fs::read_to_string(&path).unwrap_or_default());
        if !status.success() {
            failed.push(label);
        }
    }
    match failed.as_slice() {
        [] => Ok(()),
        _ => anyhow::bail!("failed side by side: {}", failed.join(", ")),
    }
}

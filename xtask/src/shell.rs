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

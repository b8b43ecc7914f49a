//! Free disk space, checked before anything is built.
//!
//! A full `cargo xtask ci` writes several build trees (debug, release, loom,
//! shuttle, Miri, fuzz, embedded, the NUMA VMs' initramfs): nearly 4 GiB
//! on a clean clone, [`CI_NEEDS_GIB`] GiB with what it installs. A CI run
//! once failed half-way with "No space left on device" inside rustc;
//! saying so up front, with the number, turns that into something a
//! person can act on.

use xshell::{cmd, Shell};

use crate::shell;

/// Room a clean `cargo xtask ci` needs: it wrote 3.8 GiB (`target/` 3.4,
/// the fuzz tree 0.3; 2026-11-26), plus the nightly toolchain, the apt
/// packages and the crates it downloads on a fresh machine.
pub(crate) const CI_NEEDS_GIB: u64 = 6;

/// Free bytes on the file system that holds the current directory, from
/// `df -Pk .`; `None` when `df` is missing or prints something unexpected.
pub(crate) fn free_bytes(sh: &Shell) -> Option<u64> {
    let out = shell::read(cmd!(sh, "df -Pk .")).ok()?;
    parse_df_available_kib(&out).map(|kib| kib * 1024)
}

/// The "Available" column (KiB) of `df -Pk`'s one data line.
fn parse_df_available_kib(df: &str) -> Option<u64> {
    let mut lines = df.lines();
    let header = lines.next()?;
    let column = header
        .split_whitespace()
        .position(|h| h.eq_ignore_ascii_case("available"))?;
    lines.next()?.split_whitespace().nth(column)?.parse().ok()
}

/// The warning to print when `free` bytes are less than a CI run needs.
pub(crate) fn low_space_warning(free: u64) -> Option<String> {
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let needed = CI_NEEDS_GIB << 30;
    (free < needed).then(|| {
        format!(
            "only {:.1} GiB free here; a full `cargo xtask ci` needs about \
             {CI_NEEDS_GIB} GiB (its builds and what it installs) and stops with \
             \"No space left on device\" when it runs out. Free space first \
             (`cargo clean` drops this tree's builds)",
            gib(free)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_available_column_of_posix_df() {
        let df = "Filesystem     1024-blocks     Used Available Capacity Mounted on\n\
                  /dev/vda         263174212 18874368  77594624      20% /\n";
        assert_eq!(parse_df_available_kib(df), Some(77_594_624));
        assert_eq!(
            parse_df_available_kib("Filesystem Used\n/dev/vda 1\n"),
            None
        );
        assert_eq!(parse_df_available_kib(""), None);
    }

    #[test]
    fn warns_below_what_a_ci_run_needs_and_not_above() {
        let warning = low_space_warning(2 << 30).expect("2 GiB is too little");
        assert!(warning.contains("only 2.0 GiB free"), "{warning}");
        assert!(warning.contains("cargo clean"), "{warning}");
        assert_eq!(low_space_warning((CI_NEEDS_GIB + 1) << 30), None);
    }
}

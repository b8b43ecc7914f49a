//! The built `numatree-bench` binary rejects every kind of bad command line
//! before doing any work: exit status 2, and a message on stderr that names
//! the flag and what it allows. `--help` is generated and exits 0.

use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_numatree-bench"))
        .args(args)
        .output()
        .expect("numatree-bench starts")
}

/// Runs `args`, expects status 2 and a stderr containing every `needle`.
fn rejects(args: &[&str], needles: &[&str]) {
    let out = bench(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{args:?}: {needle:?} not in {stderr}"
        );
    }
}

macro_rules! bad_flag_cases {
    ($($name:ident: [$($arg:expr),*] => [$($needle:expr),*];)*) => {$(
        #[test]
        fn $name() {
            rejects(&[$($arg),*], &[$($needle),*]);
        }
    )*};
}

bad_flag_cases! {
    negative_repeat_is_rejected: ["--repeat", "-3"]
        => ["'-3'", "--repeat", "must be a whole number in 1..=1000"];
    negative_scale_is_rejected: ["--scale=-1"]
        => ["'-1'", "--scale", "1..=1000000"];
    zero_threads_is_rejected: ["--threads", "0"]
        => ["'0'", "--threads", "1..=4096"];
    garbage_in_a_threads_list_is_rejected: ["--threads", "1,two,4"]
        => ["'two'", "--threads", "1..=4096"];
    an_empty_entry_in_a_threads_list_is_rejected: ["--threads", "1,,4"]
        => ["--threads", "1..=4096"];
    unknown_contender_is_rejected_listing_the_known_ones: ["--contenders", "numatree,redis"]
        => ["'redis'", "--contenders", "btree-rwlock", "vec-ceiling"];
    repeated_contender_is_rejected: ["--contenders", "skiplist,skiplist"]
        => ["--contenders", "'skiplist' twice"];
    unknown_phase_is_rejected_listing_the_known_ones: ["--phases", "lookup,sort"]
        => ["'sort'", "--phases", "lookup_absent", "mixed"];
    unknown_profile_is_rejected_listing_the_known_ones: ["--profile", "huge"]
        => ["'huge'", "--profile", "scale10"];
    percent_above_100_is_rejected: ["--dup-pct", "150"]
        => ["'150'", "--dup-pct", "0..=100"];
    negative_zipf_exponent_is_rejected: ["--zipf=-0.5"]
        => ["--zipf", "0..=100"];
    unknown_flag_is_rejected: ["--turbo"]
        => ["'--turbo'"];
    missing_value_is_rejected: ["--series"]
        => ["--series", "value is required"];
    quick_with_another_profile_is_rejected: ["--quick", "--profile", "default"]
        => ["--quick", "--profile"];
    too_many_timestamps_is_rejected_naming_the_flags: ["--series", "16777216", "--points", "1000000000"]
        => ["timestamps overflow", "--points"];
}

#[test]
fn help_is_generated_lists_every_flag_and_exits_0() {
    let out = bench(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--quick",
        "--profile",
        "--scale",
        "--series",
        "--points",
        "--threads",
        "--repeat",
        "--contenders",
        "--phases",
        "--late-pct",
        "--max-delay",
        "--dup-pct",
        "--zipf",
        "--lookups",
        "--absent-pct",
        "--scans",
        "--scan-len",
        "--batch",
        "--seed",
        "--json",
        "--no-plot",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help:\n{help}");
    }
    assert!(help.contains("[default:") && help.contains("[range:"));
}

/// A bad `NUMATREE_*` setting in the environment stops the bench before it
/// plans or measures anything, with the index's own message (it panicked
/// mid-run, after generating the workload, until the fifteenth session).
#[test]
fn a_bad_numatree_environment_variable_exits_2_before_any_work() {
    for (var, value, needle) in [
        ("NUMATREE_HUGE_PAGES", "maybe", "expected 0 (off) or 1 (on)"),
        ("NUMATREE_MERGE_NICE", "fast", "expected a nice value"),
        ("NUMATREE_NODES", "0,x", "expected node indexes"),
    ] {
        let mut bench = Command::new(env!("CARGO_BIN_EXE_numatree-bench"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("NUMATREE_") {
                bench.env_remove(name);
            }
        }
        let out = bench
            .args(["--quick", "--no-plot"])
            .env(var, value)
            .output()
            .expect("numatree-bench starts");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {stderr}");
        assert!(out.stdout.is_empty(), "{var}={value} printed to stdout");
        assert!(
            stderr.contains("numatree cannot be built here") && stderr.contains(var),
            "{var}={value}: {stderr}"
        );
        assert!(
            stderr.contains(needle),
            "{var}={value}: {needle:?} not in {stderr}"
        );
    }
}

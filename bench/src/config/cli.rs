//! The command line: [`Cli`] (clap derive), its value parsers, and how it
//! maps onto a profile's [`BenchConfig`].

use std::ffi::OsString;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;

use clap::error::ErrorKind;
use clap::{CommandFactory as _, Parser};

use super::{BenchConfig, Phase, Profile, Shape, MAX_THREADS};
use crate::oracle::ValueShape;
use crate::registry;

/// `numatree-bench`'s command line. Options left out keep the profile's value.
#[derive(Debug, Parser)]
#[command(
    name = "numatree-bench",
    allow_negative_numbers = true,
    about = "The predecessor's insert / lookup / scan benchmark on numatree and its peers",
    after_help = "Every run verifies every contender against the workload oracle and exits \
                  with status 1 if any record is lost, any lookup misses or any scan count is \
                  wrong; a bad flag exits with status 2.\nProgress (measurements done / planned \
                  and the time left) goes to stderr: one line per measurement, and a status \
                  line kept in place when stderr is a terminal."
)]
pub struct Cli {
    /// The tiny `ci` profile (same as `--profile ci`) [default: off]
    #[arg(long, conflicts_with = "profile")]
    pub quick: bool,
    /// The profile every other flag overrides
    #[arg(long, value_enum, value_name = "NAME", default_value_t = Profile::Default)]
    pub profile: Profile,
    /// Multiply points per series by N (10 = 102.4M records at default) [default: 1, scale10: 10] [range: 1..=1000000]
    #[arg(long, value_name = "N", value_parser = int_in::<u64>(1..=1_000_000))]
    pub scale: Option<u64>,
    /// Number of series [default: 1024, ci: 256] [range: 1..=16777216]
    #[arg(long, value_name = "N", value_parser = int_in::<u32>(1..=1 << 24))]
    pub series: Option<u32>,
    /// Points per series, before `--scale` [default: 10000, ci: 1000] [range: 1..=1000000000]
    #[arg(long, value_name = "N", value_parser = int_in::<u64>(1..=1_000_000_000))]
    pub points: Option<u64>,
    /// Thread counts to measure, comma-separated [default: 1,2,4,8,16,32, ci: 1,2,4] [range: each 1..=4096]
    #[arg(long, value_name = "LIST", value_delimiter = ',', num_args = 1,
          value_parser = int_in::<usize>(1..=MAX_THREADS))]
    pub threads: Option<Vec<usize>>,
    /// Repeats per measurement (median, min and max are reported) [default: 3, ci: 1] [range: 1..=1000]
    #[arg(long, value_name = "N", value_parser = int_in::<usize>(1..=1_000))]
    pub repeat: Option<usize>,
    /// Contenders to run, comma-separated, in this order
    #[arg(long, value_name = "LIST", value_delimiter = ',', num_args = 1,
          value_parser = contender_name, help = contenders_help())]
    pub contenders: Option<Vec<String>>,
    /// Phases to run, comma-separated; insert always runs [default: all]
    #[arg(
        long,
        value_enum,
        value_name = "LIST",
        value_delimiter = ',',
        num_args = 1
    )]
    pub phases: Option<Vec<Phase>>,
    /// Workload shapes to run, comma-separated, each a section of the report [default: default,high-cardinality,late]
    #[arg(
        long,
        value_enum,
        value_name = "LIST",
        value_delimiter = ',',
        num_args = 1
    )]
    pub shapes: Option<Vec<Shape>>,
    /// Thread counts of the shapes other than `default` [default: 1,2,32, ci: 1,2] [range: each 1..=4096]
    #[arg(long, value_name = "LIST", value_delimiter = ',', num_args = 1,
          value_parser = int_in::<usize>(1..=MAX_THREADS))]
    pub shape_threads: Option<Vec<usize>>,
    /// Repeats per measurement of the shapes other than `default` [default: 1] [range: 1..=1000]
    #[arg(long, value_name = "N", value_parser = int_in::<usize>(1..=1_000))]
    pub shape_repeat: Option<usize>,
    /// Percent of points emitted late [default: 0, ci: 1] [range: 0..=100]
    #[arg(long, value_name = "P", value_parser = percent)]
    pub late_pct: Option<f64>,
    /// A late point arrives 1..=R rounds late [default: 16, ci: 8] [range: 1..=1000000]
    #[arg(long, value_name = "R", value_parser = int_in::<u64>(1..=1_000_000))]
    pub max_delay: Option<u64>,
    /// Percent of points followed by a duplicate key with a new value [default: 0, ci: 1] [range: 0..=100]
    #[arg(long, value_name = "P", value_parser = percent)]
    pub dup_pct: Option<f64>,
    /// Zipf-skewed series volume with exponent THETA (`--zipf` alone: 1.0) [default: off] [range: 0..=100]
    #[arg(long, value_name = "THETA", num_args = 0..=1, require_equals = true,
          default_missing_value = "1.0", value_parser = zipf_theta)]
    pub zipf: Option<f64>,
    /// Lookups per lookup phase [default: 1024000, ci: 65536] [range: 1..=1000000000]
    #[arg(long, value_name = "N", value_parser = int_in::<usize>(1..=1_000_000_000))]
    pub lookups: Option<usize>,
    /// Percent of absent keys in the lookup_absent phase [default: 10] [range: 0..=100]
    #[arg(long, value_name = "P", value_parser = percent)]
    pub absent_pct: Option<f64>,
    /// Scans per scan phase [default: 5120, ci: 512] [range: 1..=1000000000]
    #[arg(long, value_name = "N", value_parser = int_in::<usize>(1..=1_000_000_000))]
    pub scans: Option<usize>,
    /// Most records per scan [default: 1000] [range: 1..=1000000000]
    #[arg(long, value_name = "N", value_parser = int_in::<u64>(1..=1_000_000_000))]
    pub scan_len: Option<u64>,
    /// Records per insert batch, for contenders that batch [default: 1024] [range: 1..=16777216]
    #[arg(long, value_name = "N", value_parser = int_in::<usize>(1..=1 << 24))]
    pub batch: Option<usize>,
    /// Workload seed [default: 7959388181780129125] [range: any u64]
    #[arg(long, value_name = "N", value_parser = int_in::<u64>(0..=u64::MAX))]
    pub seed: Option<u64>,
    /// Writers and readers of the block-life phases (compression, freeze_insert, frozen_scan, snapshot, retention) [default: 2] [range: 1..=4096]
    #[arg(long, value_name = "N", value_parser = int_in::<usize>(1..=MAX_THREADS))]
    pub life_threads: Option<usize>,
    /// Values of the workload the classic phases use (the block-life phases pick their own) [default: key]
    #[arg(long, value_enum, value_name = "SHAPE")]
    pub values: Option<ValueShape>,
    /// Write the JSON here, the SVG next to it [default: target/numatree-bench/TIMESTAMP.json, copied to latest.json]
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Skip the SVG plot [default: off]
    #[arg(long)]
    pub no_plot: bool,
}

/// A clap value parser for an integer in `range`; `_` separators allowed
/// (`1_024_000`), a negative or out-of-range value names the range.
fn int_in<T>(range: RangeInclusive<T>) -> impl Fn(&str) -> Result<T, String> + Clone
where
    T: FromStr + PartialOrd + Copy + std::fmt::Display + Send + Sync + 'static,
{
    move |s: &str| {
        let allowed = || {
            format!(
                "must be a whole number in {}..={}",
                range.start(),
                range.end()
            )
        };
        match s.replace('_', "").parse::<T>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(allowed()),
        }
    }
}

/// A percentage in `0..=100`.
fn percent(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err("must be a number in 0..=100 (a percentage)".into()),
    }
}

/// A Zipf exponent in `0..=100`.
fn zipf_theta(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if (0.0..=100.0).contains(&t) => Ok(t),
        _ => Err("must be a number in 0..=100 (the Zipf exponent)".into()),
    }
}

/// A registered contender's name.
fn contender_name(s: &str) -> Result<String, String> {
    let known = registry::names();
    if known.iter().any(|k| k == s) {
        Ok(s.to_owned())
    } else {
        Err(format!("unknown contender: known are {}", known.join(", ")))
    }
}

fn contenders_help() -> String {
    format!(
        "Contenders to run, comma-separated, in this order [default: all] [possible values: {}]",
        registry::names().join(", ")
    )
}

impl Cli {
    /// The configuration: the profile, then every flag given over it.
    pub fn into_config(self) -> Result<BenchConfig, String> {
        let profile = if self.quick {
            Profile::Ci
        } else {
            self.profile
        };
        let mut cfg = BenchConfig::from_profile(profile);
        let w = &mut cfg.workload;
        set(&mut w.series, self.series);
        set(&mut w.late_pct, self.late_pct);
        set(&mut w.max_delay, self.max_delay);
        set(&mut w.dup_pct, self.dup_pct);
        set(&mut w.seed, self.seed);
        w.zipf = self.zipf.or(w.zipf);
        set(&mut w.values, self.values);
        set(&mut cfg.life_threads, self.life_threads);
        set(&mut cfg.threads, self.threads);
        set(&mut cfg.repeat, self.repeat);
        set(&mut cfg.lookups, self.lookups);
        set(&mut cfg.absent_pct, self.absent_pct);
        set(&mut cfg.scans, self.scans);
        set(&mut cfg.scan_len, self.scan_len);
        set(&mut cfg.batch, self.batch);
        set(&mut cfg.shape_threads, self.shape_threads);
        set(&mut cfg.shape_repeat, self.shape_repeat);
        if let Some(list) = self.shapes {
            let mut shapes = Vec::new();
            for s in list {
                if shapes.contains(&s) {
                    return Err(format!("--shapes names '{}' twice", s.name()));
                }
                shapes.push(s);
            }
            cfg.shapes = shapes;
        }
        cfg.json = self.json;
        cfg.plot = !self.no_plot;
        if let Some(names) = self.contenders {
            let mut seen = Vec::new();
            for n in names {
                if seen.contains(&n) {
                    return Err(format!("--contenders names '{n}' twice"));
                }
                seen.push(n);
            }
            cfg.contenders = seen;
        }
        if let Some(list) = self.phases {
            let mut phases = vec![Phase::Insert];
            for p in list {
                if !phases.contains(&p) {
                    phases.push(p);
                }
            }
            cfg.phases = phases;
        }
        // `--points` is before scaling: the profile's scale applies to it,
        // and `--scale` replaces the profile's.
        if let Some(p) = self.points {
            cfg.workload.points = p.saturating_mul(cfg.scale);
        }
        if let Some(s) = self.scale {
            cfg.set_scale(s);
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

/// Parses the arguments (the program name first, as in `std::env::args`).
/// `Err` is clap's: [`clap::Error::exit`] prints it (or the help) and exits
/// with status 2 (0 for `--help`); combinations that no single flag can
/// reject are `ErrorKind::ValueValidation` errors too.
pub fn parse_args<I, T>(args: I) -> Result<BenchConfig, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    Cli::try_parse_from(args)?
        .into_config()
        .map_err(|msg| Cli::command().error(ErrorKind::ValueValidation, msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LATE_SHAPE_PCT, SHAPE_PHASES};
    use clap::ValueEnum as _;

    fn parse(s: &str) -> Result<BenchConfig, clap::Error> {
        parse_args(std::iter::once("numatree-bench").chain(s.split_whitespace()))
    }

    fn err(s: &str) -> (ErrorKind, String) {
        let e = parse(s).unwrap_err();
        (e.kind(), e.to_string())
    }

    #[test]
    fn flags_override_the_profile_in_either_order() {
        let c = parse("--threads 1,2 --quick --repeat=2 --zipf --dup-pct 5").unwrap();
        assert_eq!(c.profile, "ci");
        assert_eq!(c.threads, vec![1, 2]);
        assert_eq!(c.repeat, 2);
        assert_eq!(c.workload.zipf, Some(1.0));
        assert_eq!(c.workload.dup_pct, 5.0);
        assert_eq!(c.workload.series, 256);
        let d = parse("").unwrap();
        assert_eq!(d.profile, "default");
        assert_eq!(d.threads, vec![1, 2, 4, 8, 16, 32]);
        assert_eq!(d.workload.zipf, None);
        assert_eq!(parse("--profile quick").unwrap().profile, "ci");
    }

    #[test]
    fn scale_multiplies_points_per_series() {
        assert_eq!(parse("--scale 10").unwrap().workload.points, 100_000);
        assert_eq!(parse("--profile scale10").unwrap().workload.points, 100_000);
        assert_eq!(
            parse("--profile scale10 --scale 2")
                .unwrap()
                .workload
                .points,
            20_000
        );
        assert_eq!(parse("--points 50 --scale 3").unwrap().workload.points, 150);
        assert_eq!(parse("--zipf=0.5").unwrap().workload.zipf, Some(0.5));
        assert_eq!(parse("--lookups 1_000").unwrap().lookups, 1_000);
    }

    #[test]
    fn phases_accept_both_spellings_and_always_include_insert() {
        let c = parse("--phases lookup-absent,scan,lookup_absent").unwrap();
        assert_eq!(
            c.phases,
            vec![Phase::Insert, Phase::LookupAbsent, Phase::Scan]
        );
        for p in Phase::ALL {
            let v = p.to_possible_value().unwrap();
            assert_eq!(v.get_name(), p.name(), "CLI name = JSON name");
        }
    }

    #[test]
    fn bad_values_are_validation_errors_naming_the_flag_and_what_it_allows() {
        let cases = [
            ("--threads 0", "--threads", "1..=4096"),
            ("--threads 1,x,4", "--threads", "1..=4096"),
            ("--threads 1,,4", "--threads", "1..=4096"),
            ("--repeat -1", "--repeat", "1..=1000"),
            ("--scale 0", "--scale", "1..=1000000"),
            ("--late-pct 101", "--late-pct", "0..=100"),
            ("--zipf=-1", "--zipf", "0..=100"),
            ("--contenders numatree,nope", "--contenders", "btree-rwlock"),
            ("--seed -5", "--seed", "0..=18446744073709551615"),
        ];
        for (args, flag, allowed) in cases {
            let (kind, msg) = err(args);
            assert_eq!(kind, ErrorKind::ValueValidation, "{args}: {msg}");
            assert!(msg.contains(flag) && msg.contains(allowed), "{args}: {msg}");
        }
        let (kind, msg) = err("--phases lookup,nope");
        assert_eq!(kind, ErrorKind::InvalidValue, "{msg}");
        assert!(
            msg.contains("--phases") && msg.contains("lookup_absent"),
            "{msg}"
        );
        let (kind, msg) = err("--profile huge");
        assert_eq!(kind, ErrorKind::InvalidValue, "{msg}");
        assert!(msg.contains("scale10"), "{msg}");
        assert_eq!(err("--bogus").0, ErrorKind::UnknownArgument);
        assert_eq!(
            err("--quick --profile default").0,
            ErrorKind::ArgumentConflict
        );
        let (kind, msg) = err("--contenders skiplist,skiplist");
        assert_eq!(kind, ErrorKind::ValueValidation);
        assert!(msg.contains("twice"), "{msg}");
        // A combination no single flag can reject is a usage error too.
        let (kind, msg) = err("--series 16777216 --points 1000000000");
        assert_eq!(kind, ErrorKind::ValueValidation, "{msg}");
        assert!(msg.contains("--points"), "{msg}");
        for args in ["--threads 0", "--phases nope", "--bogus"] {
            assert_eq!(parse(args).unwrap_err().exit_code(), 2, "{args}");
        }
        assert_eq!(parse("--help").unwrap_err().exit_code(), 0);
    }

    #[test]
    fn every_flag_documents_its_default_and_every_numeric_flag_its_range() {
        let cmd = Cli::command();
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" {
                continue;
            }
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let shows_default = help.contains("[default:") || !arg.get_default_values().is_empty();
            assert!(shows_default, "--{id} does not say its default: {help}");
            if arg
                .get_value_names()
                .is_some_and(|n| n[0] == "N" || n[0] == "P")
            {
                assert!(
                    help.contains("[range:"),
                    "--{id} does not say its range: {help}"
                );
            }
        }
        cmd.debug_assert();
    }

    #[test]
    fn documented_defaults_are_the_profiles_values() {
        let cmd = Cli::command();
        let help = |id: &str| {
            let arg = cmd.get_arguments().find(|a| a.get_id() == id).unwrap();
            arg.get_help().unwrap().to_string()
        };
        let (d, ci) = (
            BenchConfig::from_profile(Profile::Default),
            BenchConfig::from_profile(Profile::Ci),
        );
        let list = |t: &[usize]| {
            t.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let expect = [
            ("seed", format!("[default: {}]", d.workload.seed)),
            (
                "threads",
                format!("[default: {}, ci: {}]", list(&d.threads), list(&ci.threads)),
            ),
            (
                "repeat",
                format!("[default: {}, ci: {}]", d.repeat, ci.repeat),
            ),
            (
                "series",
                format!(
                    "[default: {}, ci: {}]",
                    d.workload.series, ci.workload.series
                ),
            ),
            (
                "points",
                format!(
                    "[default: {}, ci: {}]",
                    d.workload.points, ci.workload.points
                ),
            ),
            (
                "lookups",
                format!("[default: {}, ci: {}]", d.lookups, ci.lookups),
            ),
            ("scans", format!("[default: {}, ci: {}]", d.scans, ci.scans)),
            ("scan_len", format!("[default: {}]", d.scan_len)),
            (
                "shape_threads",
                format!(
                    "[default: {}, ci: {}]",
                    list(&d.shape_threads),
                    list(&ci.shape_threads)
                ),
            ),
            ("shape_repeat", format!("[default: {}]", d.shape_repeat)),
            ("batch", format!("[default: {}]", d.batch)),
            ("absent_pct", format!("[default: {}]", d.absent_pct)),
            (
                "max_delay",
                format!(
                    "[default: {}, ci: {}]",
                    d.workload.max_delay, ci.workload.max_delay
                ),
            ),
        ];
        for (id, want) in expect {
            assert!(
                help(id).contains(&want),
                "--{id}: {} lacks {want}",
                help(id)
            );
        }
    }

    #[test]
    fn every_profile_runs_the_extra_shapes_with_their_own_threads_and_phases() {
        for (args, series, threads) in [
            ("", 1_000_000, vec![1, 2, 32]),
            ("--quick", 25_600, vec![1, 2]),
        ] {
            let c = parse(args).unwrap();
            assert_eq!(c.shapes, Shape::ALL, "{args}");
            let sections = c.sections();
            let names: Vec<Shape> = sections.iter().map(|s| s.shape).collect();
            assert_eq!(names, Shape::ALL);
            let (d, hc, late) = (&sections[0], &sections[1], &sections[2]);
            assert_eq!(
                (d.workload.series, &d.threads, d.repeat),
                (c.workload.series, &c.threads, c.repeat)
            );
            assert_eq!(d.phases, c.phases);
            assert_eq!((hc.workload.series, hc.workload.points), (series, 10));
            assert_eq!(late.workload.series, c.workload.series);
            assert_eq!(late.workload.late_pct, LATE_SHAPE_PCT);
            for extra in [hc, late] {
                assert_eq!((&extra.threads, extra.repeat), (&threads, 1), "{args}");
                assert_eq!(extra.phases, SHAPE_PHASES);
            }
        }
        let c = parse(
            "--shapes late,default --shape-threads 4 --shape-repeat 2 --phases scan --scale 3",
        )
        .unwrap();
        assert_eq!(c.shapes, vec![Shape::Late, Shape::Default]);
        let late = c.section(Shape::Late);
        assert_eq!((late.threads, late.repeat), (vec![4], 2));
        assert_eq!(late.phases, vec![Phase::Insert, Phase::Scan]);
        assert_eq!(late.workload.points, 30_000);
        assert_eq!(
            c.section(Shape::HighCardinality).workload.points,
            30,
            "scaled too"
        );
        assert_eq!(
            c.section(Shape::Default).phases,
            vec![Phase::Insert, Phase::Scan]
        );
        let (kind, msg) = err("--shapes late,late");
        assert_eq!(kind, ErrorKind::ValueValidation);
        assert!(msg.contains("twice"), "{msg}");
        let (kind, msg) = err("--shapes wide");
        assert_eq!(kind, ErrorKind::InvalidValue, "{msg}");
        assert!(msg.contains("high-cardinality"), "{msg}");
        assert_eq!(err("--shape-threads 0").0, ErrorKind::ValueValidation);
        // An extra shape's workload is validated like the default one.
        let mut c = BenchConfig::from_profile(Profile::Default);
        c.high_cardinality_points = u64::MAX / 4;
        let msg = c.validate().unwrap_err();
        assert!(
            msg.contains("high-cardinality") && msg.contains("overflow"),
            "{msg}"
        );
    }

    #[test]
    fn profile_names_round_trip() {
        for p in [Profile::Ci, Profile::Default, Profile::Scale10] {
            assert_eq!(BenchConfig::profile(p.name()).unwrap().profile, p.name());
        }
        assert!(BenchConfig::profile("huge").unwrap_err().contains("huge"));
    }
}

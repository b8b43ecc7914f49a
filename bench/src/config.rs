//! Run configuration: named profiles and the command line.
//!
//! The command line is declared once, as [`Cli`] (clap derive): `--help` is
//! generated from it, every value is checked against its range while parsing,
//! and a bad value is an error naming the flag and what it allows, with exit
//! status 2.
//!
//! Profiles (`--profile NAME`; `--quick` = `--profile ci`):
//!
//! | profile | workload | threads | repeat | lookups | scans |
//! |---|---|---|---|---|---|
//! | `ci` / `quick` | 256 series x 1,000 points, 1% late (max 8 rounds), 1% duplicates | 1,2,4 | 1 | 65,536 | 512 |
//! | `default` | 1,024 x 10,000 (the predecessor's), in order | 1,2,4,8,16,32 | 3 | 1,024,000 | 5,120 |
//! | `scale10` | `default` with `--scale 10` (1,024 x 100,000) | 1,2,4,8,16,32 | 3 | 1,024,000 | 5,120 |
//!
//! Every profile also runs the extra [`Shape`]s (`--shapes`), each a
//! section of the same report with its own tables: `high-cardinality`
//! (1,000,000 series x 10 points; `ci`: 25,600 x 10) and `late` (the
//! default shape's workload with 5% of the points late), at threads 1,2,32
//! (`ci`: 1,2), 1 repeat, phases insert, lookup, scan and memory.
//!
//! A scan measurement runs its scans pass after pass for at least 200 ms
//! (`ci`: one pass), so that the fastest contenders are timed over more
//! than the ~10 ms one pass of 5,120 scans takes them.
//!
//! Every other flag overrides the profile, wherever it stands on the line.

use std::ffi::OsString;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;

use clap::error::ErrorKind;
use clap::{CommandFactory as _, Parser, ValueEnum};
use serde::Serialize;

use crate::oracle::ValueShape;
use crate::registry;
use crate::workload::WorkloadConfig;

/// A measured phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Ingest into a fresh contender (always run: every other phase needs it).
    Insert,
    /// Ingest into a fresh contender built with reserved, pre-faulted memory.
    #[value(name = "insert_warm", alias = "insert-warm")]
    InsertWarm,
    /// Point lookups of present keys.
    Lookup,
    /// Point lookups with a share of absent keys.
    #[value(name = "lookup_absent", alias = "lookup-absent")]
    LookupAbsent,
    /// Range scans of one series.
    Scan,
    /// Writers ingest the second half while readers look up the first.
    Mixed,
    /// Live heap bytes after ingesting into a fresh contender, counted by
    /// the bench's allocator in an untimed measurement of its own.
    Memory,
    /// The life of a block, 1: numatree's bytes per point (overall, hot,
    /// frozen) after ingesting gauge, counter and random values with
    /// freezing on; checks gauge <= 3 bytes a point overall and random
    /// frozen <= 1.05 x 16 bytes.
    Compression,
    /// The life of a block, 2: cold insert of gauge values into numatree
    /// with freezing on and off, in the same run.
    #[value(name = "freeze_insert", alias = "freeze-insert")]
    FreezeInsert,
    /// The life of a block, 3: scans of gauge data, numatree frozen and
    /// not frozen against the peers.
    #[value(name = "frozen_scan", alias = "frozen-scan")]
    FrozenScan,
    /// The life of a block, 4: `Index::snapshot` of gauge data to a file
    /// and `Builder::restore` from it, freezing on and off, the restored
    /// index verified against the oracle.
    Snapshot,
    /// The life of a block, 5: `drop_before` half of the time range while
    /// writers ingest newer points and readers query.
    Retention,
}

impl Phase {
    /// Every phase, in run order.
    pub const ALL: [Phase; 12] = [
        Phase::Insert,
        Phase::InsertWarm,
        Phase::Lookup,
        Phase::LookupAbsent,
        Phase::Scan,
        Phase::Mixed,
        Phase::Memory,
        Phase::Compression,
        Phase::FreezeInsert,
        Phase::FrozenScan,
        Phase::Snapshot,
        Phase::Retention,
    ];

    /// The block-life phases: run once per run on the default shape's
    /// series and points, at [`BenchConfig::life_threads`], on values of
    /// their own shape (see [`crate::life`]).
    pub const LIFE: [Phase; 5] = [
        Phase::Compression,
        Phase::FreezeInsert,
        Phase::FrozenScan,
        Phase::Snapshot,
        Phase::Retention,
    ];

    /// The name used on the command line, in JSON and in progress lines.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Insert => "insert",
            Phase::InsertWarm => "insert_warm",
            Phase::Lookup => "lookup",
            Phase::LookupAbsent => "lookup_absent",
            Phase::Scan => "scan",
            Phase::Mixed => "mixed",
            Phase::Memory => "memory",
            Phase::Compression => "compression",
            Phase::FreezeInsert => "freeze_insert",
            Phase::FrozenScan => "frozen_scan",
            Phase::Snapshot => "snapshot",
            Phase::Retention => "retention",
        }
    }
}

/// A workload shape: each one the run reports gets a section of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// The profile's workload (1,024 x 10,000 at `default`), every phase,
    /// every thread count, every repeat.
    Default,
    /// Many short series: 1,000,000 series x 10 points (`ci`: 25,600 x 10),
    /// points times `--scale`; the other workload options as the default shape's.
    HighCardinality,
    /// The default shape's workload with [`LATE_SHAPE_PCT`] % of the points late.
    Late,
}

/// The most bytes per point numatree may hold for gauge values, frozen
/// and hot together (issue 11's target), checked by [`Phase::Compression`].
pub const GAUGE_MAX_BYTES_PER_POINT: f64 = 3.0;

/// The most a frozen block of random values may take over 16 bytes per
/// point, checked by [`Phase::Compression`].
pub const RANDOM_MAX_FROZEN_RATIO: f64 = 1.05;

/// Percent of points emitted late in the [`Shape::Late`] shape.
pub const LATE_SHAPE_PCT: f64 = 5.0;

/// The phases the extra shapes (all but [`Shape::Default`]) run, when
/// `--phases` selects them.
pub const SHAPE_PHASES: [Phase; 4] = [Phase::Insert, Phase::Lookup, Phase::Scan, Phase::Memory];

impl Shape {
    /// Every shape, in report order.
    pub const ALL: [Shape; 3] = [Shape::Default, Shape::HighCardinality, Shape::Late];

    /// The name used on the command line, in JSON and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Default => "default",
            Shape::HighCardinality => "high-cardinality",
            Shape::Late => "late",
        }
    }
}

/// A named starting point for the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// 256 series x 1,000 points (1% late, 1% duplicates), threads 1,2,4, 1 repeat
    #[value(alias = "quick")]
    Ci,
    /// The predecessor's 1,024 x 10,000 in order, threads 1..32, 3 repeats
    Default,
    /// `default` with `--scale 10` (1,024 x 100,000 = 102.4M records)
    Scale10,
}

impl Profile {
    /// The name written to the report.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Ci => "ci",
            Profile::Default => "default",
            Profile::Scale10 => "scale10",
        }
    }
}

/// The most threads one measurement may use (writers, or readers).
pub const MAX_THREADS: usize = 4_096;

/// Everything one benchmark run needs to know.
#[derive(Clone, Debug, Serialize)]
pub struct BenchConfig {
    /// Profile the run started from.
    pub profile: String,
    /// Workload parameters (`points` already multiplied by `scale`).
    pub workload: WorkloadConfig,
    /// Multiplier applied to the profile's points per series.
    pub scale: u64,
    /// Thread counts measured (writers; readers for query phases).
    pub threads: Vec<usize>,
    /// Repeats of every measurement (median, min and max reported).
    pub repeat: usize,
    /// Contender names to run; empty = all registered.
    pub contenders: Vec<String>,
    /// Lookups per lookup phase.
    pub lookups: usize,
    /// Percentage of absent keys in the absent-key lookup variant.
    pub absent_pct: f64,
    /// Scans per scan phase.
    pub scans: usize,
    /// Maximum records per scan (the range spans this many intervals).
    pub scan_len: u64,
    /// The least time a scan measurement runs: its scans are run again,
    /// pass after pass, until this much has passed (a pass of the default
    /// 5,120 scans takes ~10 ms for the fastest contenders, too short to
    /// measure on a shared machine). Every pass's counts are checked.
    pub scan_min_time: std::time::Duration,
    /// Records per `insert_batch` for contenders that batch.
    pub batch: usize,
    /// Phases to run (`Insert` is always included).
    pub phases: Vec<Phase>,
    /// Shapes run, in report order; each becomes a section of the report.
    pub shapes: Vec<Shape>,
    /// The shape this configuration measures: [`Shape::Default`] for the
    /// run's own configuration, another for a [`section`](Self::section).
    pub shape: Shape,
    /// Thread counts of the extra shapes.
    pub shape_threads: Vec<usize>,
    /// Repeats of the extra shapes' measurements.
    pub shape_repeat: usize,
    /// Series of the [`Shape::HighCardinality`] shape.
    pub high_cardinality_series: u32,
    /// Points per series of the [`Shape::HighCardinality`] shape, before `scale`.
    pub high_cardinality_points: u64,
    /// Writers (and readers) of the block-life phases.
    pub life_threads: usize,
    /// Where to write the JSON (default `<target>/numatree-bench/<timestamp>.json`).
    pub json: Option<PathBuf>,
    /// Write the SVG plot.
    pub plot: bool,
}

impl BenchConfig {
    /// The configuration of a named profile.
    pub fn from_profile(profile: Profile) -> Self {
        let base = BenchConfig {
            profile: Profile::Default.name().into(),
            workload: WorkloadConfig::default(),
            scale: 1,
            threads: vec![1, 2, 4, 8, 16, 32],
            repeat: 3,
            contenders: Vec::new(),
            lookups: 1_024_000,
            absent_pct: 10.0,
            scans: 5_120,
            scan_len: 1_000,
            scan_min_time: std::time::Duration::from_millis(200),
            batch: 1_024,
            phases: Phase::ALL.to_vec(),
            shapes: Shape::ALL.to_vec(),
            shape: Shape::Default,
            shape_threads: vec![1, 2, 32],
            shape_repeat: 1,
            high_cardinality_series: 1_000_000,
            high_cardinality_points: 10,
            life_threads: 2,
            json: None,
            plot: true,
        };
        match profile {
            Profile::Default => base,
            Profile::Ci => BenchConfig {
                profile: Profile::Ci.name().into(),
                workload: WorkloadConfig {
                    series: 256,
                    points: 1_000,
                    late_pct: 1.0,
                    max_delay: 8,
                    dup_pct: 1.0,
                    ..WorkloadConfig::default()
                },
                threads: vec![1, 2, 4],
                repeat: 1,
                lookups: 65_536,
                scans: 512,
                scan_min_time: std::time::Duration::ZERO,
                shape_threads: vec![1, 2],
                high_cardinality_series: 25_600,
                ..base
            },
            Profile::Scale10 => {
                let mut c = BenchConfig {
                    profile: Profile::Scale10.name().into(),
                    ..base
                };
                c.set_scale(10);
                c
            }
        }
    }

    /// The named profile: `ci` (alias `quick`), `default` or `scale10`.
    pub fn profile(name: &str) -> Result<Self, String> {
        Profile::from_str(name, false)
            .map(Self::from_profile)
            .map_err(|_| {
                format!("unknown profile '{name}': known are ci (quick), default, scale10")
            })
    }

    /// Multiplies the profile's points per series by `scale` (replacing any earlier scale).
    pub fn set_scale(&mut self, scale: u64) {
        self.workload.points = self.workload.points / self.scale.max(1) * scale;
        self.scale = scale;
    }

    /// Whether `phase` runs.
    pub fn runs(&self, phase: Phase) -> bool {
        phase == Phase::Insert || self.phases.contains(&phase)
    }

    /// The configuration of one section of the run: `shape`'s workload,
    /// and for the extra shapes their thread counts, repeats and the phases
    /// of [`SHAPE_PHASES`] that this run selects.
    pub fn section(&self, shape: Shape) -> BenchConfig {
        let mut c = self.clone();
        c.shape = shape;
        c.shapes = vec![shape];
        match shape {
            Shape::Default => return c,
            Shape::HighCardinality => {
                c.workload.series = self.high_cardinality_series;
                c.workload.points = self.high_cardinality_points.saturating_mul(self.scale);
            }
            Shape::Late => c.workload.late_pct = LATE_SHAPE_PCT,
        }
        c.threads.clone_from(&self.shape_threads);
        c.repeat = self.shape_repeat;
        c.phases.retain(|p| SHAPE_PHASES.contains(p));
        c
    }

    /// Every section of the run, in report order.
    pub fn sections(&self) -> Vec<BenchConfig> {
        self.shapes.iter().map(|&s| self.section(s)).collect()
    }

    /// Checks cross-field constraints (single values are checked by [`Cli`]).
    pub fn validate(&self) -> Result<(), String> {
        self.workload.validate()?;
        if self.threads.is_empty() || self.threads.contains(&0) {
            return Err("threads must be a non-empty list of counts >= 1".into());
        }
        if self.repeat == 0 || self.shape_repeat == 0 {
            return Err("repeat must be >= 1".into());
        }
        if self.shapes.is_empty() {
            return Err("shapes must name at least one shape".into());
        }
        if self.shape_threads.is_empty() || self.shape_threads.contains(&0) {
            return Err("shape-threads must be a non-empty list of counts >= 1".into());
        }
        for section in self.sections().iter().filter(|c| c.shape != self.shape) {
            section
                .workload
                .validate()
                .map_err(|e| format!("the {} shape: {e}", section.shape.name()))?;
        }
        if self.batch == 0 {
            return Err("batch must be >= 1".into());
        }
        if !(0.0..=100.0).contains(&self.absent_pct) {
            return Err("absent-pct must be in 0..=100".into());
        }
        Ok(())
    }
}

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

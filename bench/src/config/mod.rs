//! Run configuration: named profiles and the command line (`cli`).
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

use std::path::PathBuf;

use clap::ValueEnum;
use serde::Serialize;

use crate::workload::WorkloadConfig;

mod cli;

pub use cli::{parse_args, Cli};

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

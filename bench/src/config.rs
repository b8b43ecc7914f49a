//! Run configuration: named profiles and the command line.
//!
//! Profiles (`--profile NAME`; `--quick` = `--profile ci`):
//!
//! | profile | workload | threads | repeat | lookups | scans |
//! |---|---|---|---|---|---|
//! | `ci` / `quick` | 256 series x 1,000 points, 1% late (max 8 rounds), 1% duplicates | 1,2,4 | 1 | 65,536 | 512 |
//! | `default` | 1,024 x 10,000 (the predecessor's), in order | 1,2,4,8,16,32 | 3 | 1,024,000 | 5,120 |
//! | `scale10` | `default` with `--scale 10` (1,024 x 100,000) | 1,2,4,8,16,32 | 3 | 1,024,000 | 5,120 |
//!
//! Later flags override the profile.

use std::path::PathBuf;

use serde::Serialize;

use crate::workload::WorkloadConfig;

/// A measured phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Ingest into a fresh contender (always run: every other phase needs it).
    Insert,
    /// Ingest into a fresh contender built with reserved, pre-faulted memory.
    InsertWarm,
    /// Point lookups of present keys.
    Lookup,
    /// Point lookups with a share of absent keys.
    LookupAbsent,
    /// Range scans of one series.
    Scan,
    /// Writers ingest the second half while readers look up the first.
    Mixed,
}

impl Phase {
    /// Every phase, in run order.
    pub const ALL: [Phase; 6] = [
        Phase::Insert,
        Phase::InsertWarm,
        Phase::Lookup,
        Phase::LookupAbsent,
        Phase::Scan,
        Phase::Mixed,
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
        }
    }

    /// The phase called `name`.
    pub fn parse(name: &str) -> Option<Phase> {
        Phase::ALL
            .into_iter()
            .find(|p| p.name() == name || p.name().replace('_', "-") == name)
    }
}

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
    /// Records per `insert_batch` for contenders that batch.
    pub batch: usize,
    /// Phases to run (`Insert` is always included).
    pub phases: Vec<Phase>,
    /// Where to write the JSON (default `<target>/numatree-bench/<timestamp>.json`).
    pub json: Option<PathBuf>,
    /// Write the SVG plot.
    pub plot: bool,
}

impl BenchConfig {
    /// The named profile: `ci` (alias `quick`), `default` or `scale10`.
    pub fn profile(name: &str) -> Result<Self, String> {
        let base = BenchConfig {
            profile: "default".into(),
            workload: WorkloadConfig::default(),
            scale: 1,
            threads: vec![1, 2, 4, 8, 16, 32],
            repeat: 3,
            contenders: Vec::new(),
            lookups: 1_024_000,
            absent_pct: 10.0,
            scans: 5_120,
            scan_len: 1_000,
            batch: 1_024,
            phases: Phase::ALL.to_vec(),
            json: None,
            plot: true,
        };
        match name {
            "default" => Ok(base),
            "ci" | "quick" => Ok(BenchConfig {
                profile: "ci".into(),
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
                ..base
            }),
            "scale10" => {
                let mut c = BenchConfig {
                    profile: "scale10".into(),
                    ..base
                };
                c.set_scale(10);
                Ok(c)
            }
            other => Err(format!(
                "unknown profile '{other}': known are ci (quick), default, scale10"
            )),
        }
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

    /// Checks cross-field constraints.
    pub fn validate(&self) -> Result<(), String> {
        self.workload.validate()?;
        if self.threads.is_empty() || self.threads.contains(&0) {
            return Err("threads must be a non-empty list of counts >= 1".into());
        }
        if self.repeat == 0 {
            return Err("repeat must be >= 1".into());
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

/// Usage text for `--help`.
pub const USAGE: &str = "\
numatree-bench: the predecessor's insert / lookup / scan benchmark on numatree and its peers

USAGE: numatree-bench [--profile ci|default|scale10 | --quick] [OPTIONS]

  --quick               the tiny `ci` profile: 256 series x 1,000 points, threads 1,2,4, 1 repeat
  --profile NAME        ci (alias quick), default (1,024 x 10,000, threads 1..32, 3 repeats), scale10
  --scale N             multiply points per series by N (10 = 102.4M records at default)
  --series N            number of series
  --points N            points per series before scaling
  --threads LIST        thread counts, e.g. 1,2,4
  --repeat N            repeats per measurement (median [min..max] reported)
  --contenders LIST     e.g. numatree,btree-rwlock (default: all registered)
  --phases LIST         of insert_warm,lookup,lookup_absent,scan,mixed (insert always runs)
  --late-pct P          percent of points emitted late
  --max-delay R         a late point arrives 1..=R rounds late
  --dup-pct P           percent of points followed by a duplicate key with a new value
  --zipf[=THETA]        Zipf-skewed series volume (THETA default 1.0)
  --lookups N           lookups per lookup phase
  --absent-pct P        absent keys in the absent-key lookup variant (default 10)
  --scans N             scans per scan phase
  --scan-len N          max records per scan
  --batch N             records per insert batch
  --seed N              workload seed
  --json PATH           write the JSON here (the SVG goes next to it)
  --no-plot             skip the SVG plot
  -h, --help            this text

Every run verifies every contender against the workload oracle and exits
non-zero if any record is lost, any lookup misses or any scan count is wrong.
";

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Run the benchmark.
    Run(Box<BenchConfig>),
    /// Print [`USAGE`].
    Help,
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.replace('_', "")
        .parse()
        .map_err(|_| format!("{flag}: '{v}' is not a valid number"))
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses the arguments (without the program name). Accepts `--flag value`
/// and `--flag=value`.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut args: Vec<(String, Option<String>)> = args
        .into_iter()
        .map(|a| match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (a, None),
        })
        .collect();
    args.reverse();
    // The profile first, so that every other flag overrides it.
    let mut profile = "default".to_owned();
    let mut i = args.len();
    while i > 0 {
        i -= 1;
        match args[i].0.as_str() {
            "--quick" => profile = "ci".into(),
            "--profile" => {
                profile = match args[i].1.clone() {
                    Some(v) => v,
                    None if i > 0 => args[i - 1].0.clone(),
                    None => return Err("--profile needs a value".into()),
                }
            }
            _ => {}
        }
    }
    let mut cfg = BenchConfig::profile(&profile)?;
    let mut scale = None;
    let mut points = None;
    while let Some((flag, inline)) = args.pop() {
        let mut value = || -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args
                    .pop()
                    .map(|a| a.0)
                    .ok_or_else(|| format!("{flag} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--quick" => {}
            "--profile" => {
                value()?;
            }
            "--scale" => scale = Some(num::<u64>(&flag, &value()?)?),
            "--series" => cfg.workload.series = num(&flag, &value()?)?,
            "--points" => points = Some(num::<u64>(&flag, &value()?)?),
            "--threads" => {
                cfg.threads = list(&value()?)
                    .iter()
                    .map(|t| num(&flag, t))
                    .collect::<Result<_, _>>()?
            }
            "--repeat" => cfg.repeat = num(&flag, &value()?)?,
            "--contenders" => cfg.contenders = list(&value()?),
            "--phases" => {
                let mut phases = vec![Phase::Insert];
                for p in list(&value()?) {
                    let phase = Phase::parse(&p).ok_or_else(|| {
                        let names: Vec<_> = Phase::ALL.iter().map(|p| p.name()).collect();
                        format!(
                            "--phases: unknown phase '{p}': known are {}",
                            names.join(", ")
                        )
                    })?;
                    if !phases.contains(&phase) {
                        phases.push(phase);
                    }
                }
                cfg.phases = phases;
            }
            "--late-pct" => cfg.workload.late_pct = num(&flag, &value()?)?,
            "--max-delay" => cfg.workload.max_delay = num(&flag, &value()?)?,
            "--dup-pct" => cfg.workload.dup_pct = num(&flag, &value()?)?,
            "--zipf" => {
                cfg.workload.zipf = Some(match inline {
                    Some(v) => num(&flag, &v)?,
                    None => 1.0,
                })
            }
            "--lookups" => cfg.lookups = num(&flag, &value()?)?,
            "--absent-pct" => cfg.absent_pct = num(&flag, &value()?)?,
            "--scans" => cfg.scans = num(&flag, &value()?)?,
            "--scan-len" => cfg.scan_len = num(&flag, &value()?)?,
            "--batch" => cfg.batch = num(&flag, &value()?)?,
            "--seed" => cfg.workload.seed = num(&flag, &value()?)?,
            "--json" => cfg.json = Some(PathBuf::from(value()?)),
            "--no-plot" => cfg.plot = false,
            other => return Err(format!("unknown argument '{other}' (see --help)")),
        }
    }
    if let Some(p) = points {
        cfg.workload.points = p * cfg.scale;
    }
    if let Some(s) = scale {
        cfg.set_scale(s);
    }
    cfg.validate()?;
    Ok(Command::Run(Box::new(cfg)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<BenchConfig, String> {
        match parse_args(s.split_whitespace().map(str::to_owned))? {
            Command::Run(c) => Ok(*c),
            Command::Help => Err("help".into()),
        }
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
    }

    #[test]
    fn bad_input_is_an_error_naming_the_flag() {
        assert!(parse("--threads 0").unwrap_err().contains("threads"));
        assert!(parse("--bogus").unwrap_err().contains("--bogus"));
        assert!(parse("--repeat x").unwrap_err().contains("--repeat"));
        assert!(parse("--phases lookup,nope").unwrap_err().contains("nope"));
        assert!(parse("--profile huge").unwrap_err().contains("huge"));
    }
}

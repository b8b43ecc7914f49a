//! What a run prints and keeps: the header (machine, run, plans), a section
//! per shape with its workload and the predecessor-style tables plus the
//! memory table, and the JSON document with every raw figure. The tables
//! (rows = contender x threads, cells = median [min..max]) are `tables`';
//! the block-life tables and targets are `life`'s.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config::{BenchConfig, Phase, Shape};
use crate::contender::{Caps, ContenderFactory};
use crate::phases::{metric, Outcome, Sample, ShapeOutcome};

mod life;
mod tables;

pub use self::life::{life_tables, Target};
pub use self::tables::{best_peer, tables, Better};
use self::tables::{bytes_per_point, cell, count, num, Fmt, BPP_COLUMN};

/// The machine the run measured.
#[derive(Clone, Debug, Serialize)]
pub struct SystemInfo {
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Logical CPUs available to this process.
    pub cpus: usize,
    /// NUMA nodes under `/sys/devices/system/node` (`None` where unavailable).
    pub numa_nodes: Option<usize>,
    /// Kernel release.
    pub kernel: String,
}

impl SystemInfo {
    /// Reads `/proc` and `/sys`; missing files give "unknown" / `None`.
    pub fn collect() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let numa_nodes = std::fs::read_dir("/sys/devices/system/node").ok().map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    let n = e.file_name();
                    let n = n.to_string_lossy();
                    n.strip_prefix("node")
                        .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
                })
                .count()
        });
        SystemInfo {
            cpu_model,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            numa_nodes,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".into()),
        }
    }
}

/// Median, min and max of one metric over the repeats.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Stat {
    /// Median (mean of the middle two for an even count).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
    /// Repeats aggregated.
    pub n: usize,
}

impl Stat {
    /// Aggregates `values` (non-empty).
    pub fn of(values: &[f64]) -> Stat {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Stat {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        }
    }
}

/// The repeats of one (shape, phase, contender, threads) aggregated.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Shape (report section).
    pub shape: Shape,
    /// Phase.
    pub phase: Phase,
    /// Contender name.
    pub contender: String,
    /// Thread count.
    pub threads: usize,
    /// Every metric's statistics.
    pub metrics: BTreeMap<String, Stat>,
}

/// Groups samples by (shape, phase, contender, threads), keeping first-seen order.
pub fn summarize(samples: &[Sample]) -> Vec<Summary> {
    type Group<'a> = ((Shape, Phase, &'a str, usize), Vec<&'a Sample>);
    let mut groups: Vec<Group<'_>> = Vec::new();
    for s in samples {
        let key = (s.shape, s.phase, s.contender.as_str(), s.threads);
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) => g.1.push(s),
            None => groups.push((key, vec![s])),
        }
    }
    groups
        .into_iter()
        .map(|((shape, phase, contender, threads), ss)| {
            let mut values: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
            for s in &ss {
                for (k, v) in &s.metrics {
                    values.entry(k).or_default().push(*v);
                }
            }
            Summary {
                shape,
                phase,
                contender: contender.to_owned(),
                threads,
                metrics: values
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), Stat::of(&v)))
                    .collect(),
            }
        })
        .collect()
}

/// A contender's name and capabilities, as the report needs them.
#[derive(Clone, Debug, Serialize)]
pub struct ContenderInfo {
    /// Name.
    pub name: String,
    /// Capabilities.
    pub caps: Caps,
}

impl From<&ContenderFactory> for ContenderInfo {
    fn from(f: &ContenderFactory) -> Self {
        ContenderInfo {
            name: f.name().to_owned(),
            caps: f.caps(),
        }
    }
}

/// The report header: machine, the run's shapes and settings, and each
/// contender's plan.
pub fn header(info: &SystemInfo, cfg: &BenchConfig, outcome: &Outcome, created: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# numatree-bench ({} profile), {created}\n",
        cfg.profile
    );
    let nodes = info
        .numa_nodes
        .map_or_else(|| "unknown".to_owned(), |n| n.to_string());
    let _ = writeln!(
        out,
        "- CPU: {} ({} logical CPUs, {nodes} NUMA node(s), kernel {})",
        info.cpu_model, info.cpus, info.kernel
    );
    let shapes: Vec<&str> = outcome.shapes.iter().map(|s| s.shape.name()).collect();
    let _ = writeln!(
        out,
        "- shapes: {} (a section each below); batch {}, {} lookups ({}% absent in the variant), {} scans of <= {} records",
        shapes.join(", "),
        cfg.batch,
        count(cfg.lookups as f64),
        cfg.absent_pct,
        count(cfg.scans as f64),
        cfg.scan_len
    );
    let _ = writeln!(
        out,
        "- verification: every record, lookup and scan of every shape checked against the oracle"
    );
    if outcome.plans.is_empty() {
        let _ = writeln!(out, "- plan: (no contender reported a placement plan)");
    }
    for (name, plan) in &outcome.plans {
        let _ = writeln!(out, "- plan of {name}:\n\n```\n{}\n```", plan.trim_end());
    }
    out
}

/// A section's heading: its shape, workload and how it was measured.
pub fn section_heading(cfg: &BenchConfig, shape: &ShapeOutcome) -> String {
    let w = &shape.workload;
    let phases: Vec<&str> = shape.phases.iter().map(|p| p.name()).collect();
    format!(
        "\n## Shape `{}`\n\n- workload: {} series x {} points (scale {}) = {} records, {} distinct keys; \
         late {}% (max {} rounds), duplicates {}%, {}; series -> writer modulo; seed {:#x}\n\
         - threads {:?}, {} repeat(s) (median [min..max]); phases {}\n\
         - B/pt in the throughput tables: each contender's live heap bytes per point after an \
         ingest of this shape (the memory phase; \"—\" when it did not run)\n",
        shape.shape.name(),
        count(f64::from(w.series)),
        count(w.points as f64),
        cfg.scale,
        count(shape.records as f64),
        count(shape.distinct_keys as f64),
        w.late_pct,
        w.max_delay,
        w.dup_pct,
        w.zipf
            .map_or_else(|| "uniform series".to_owned(), |t| format!("Zipf theta {t}")),
        w.seed,
        shape.threads,
        shape.repeat,
        phases.join(", ")
    )
}

/// Every section of the run: its heading and its tables.
pub fn sections(
    cfg: &BenchConfig,
    outcome: &Outcome,
    contenders: &[ContenderInfo],
    summary: &[Summary],
) -> String {
    let mut out = String::new();
    for shape in &outcome.shapes {
        let section = cfg.section(shape.shape);
        out.push_str(&section_heading(&section, shape));
        out.push_str(&tables(&section, contenders, summary));
        out.push_str(&life_tables(&section, summary));
    }
    out
}

/// UTC time as (`20261125T141900Z`, `2026-11-25T14:19:00Z`).
pub fn utc_stamp(t: SystemTime) -> (String, String) {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (hh, mm, ss) = (rem / 3600, rem / 60 % 60, rem % 60);
    (
        format!("{y:04}{m:02}{d:02}T{hh:02}{mm:02}{ss:02}Z"),
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z"),
    )
}

/// `<target dir>/numatree-bench`: `$CARGO_TARGET_DIR` if set, else the
/// workspace's `target/`.
pub fn output_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap_or(Path::new("."))
                .join("target")
        });
    target.join("numatree-bench")
}

/// The JSON document of a run.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    /// Format version of this document.
    pub schema: u32,
    /// When the run started, UTC.
    pub created: &'a str,
    /// The machine.
    pub system: &'a SystemInfo,
    /// The run's configuration.
    pub config: &'a BenchConfig,
    /// Contenders in report order.
    pub contenders: &'a [ContenderInfo],
    /// Raw samples, failures and plans.
    pub outcome: &'a Outcome,
    /// Aggregates per (shape, phase, contender, threads).
    pub summary: &'a [Summary],
    /// The block-life figures against their goals.
    pub targets: &'a [Target],
}

/// Writes `report` as pretty JSON to `path`, creating parent folders.
pub fn write_json(path: &Path, report: &Report<'_>) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(path, json)
}

#[cfg(test)]
mod tests;

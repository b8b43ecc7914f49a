//! The block-life part of the report: a table per life phase
//! (compression, freezing's cost, frozen scans, snapshots, retention) and
//! each phase's figures set against their goals ([`Target`]).

use std::fmt::Write as _;

use serde::Serialize;

use crate::config::{BenchConfig, Phase};

use super::{bytes_per_point, cell, metric, num, Better, Fmt, Summary, BPP_COLUMN};

/// A block-life table: its phase, title and columns; rows are every
/// summary of the phase, in run order.
struct LifeTable {
    phase: Phase,
    title: &'static str,
    columns: &'static [(&'static str, &'static str, Fmt)],
    /// Ends with the bytes-per-point column (`bytes_per_point`).
    bpp: bool,
}

const LIFE_TABLES: &[LifeTable] = &[
    LifeTable {
        phase: Phase::Compression,
        title: "Compression: numatree's bytes per point by value shape, freezing on \
                (numatree's own statistics; hot = newest block of each series, indexes and \
                directories; every point verified)",
        columns: &[
            ("keys", metric::KEYS, Fmt::Count),
            ("bytes/point", metric::REPORTED_BYTES_PER_POINT, Fmt::Rate),
            ("hot B/pt", metric::HOT_BYTES_PER_POINT, Fmt::Rate),
            ("frozen B/pt", metric::FROZEN_BYTES_PER_POINT, Fmt::Rate),
            ("frozen points", metric::FROZEN_SHARE, Fmt::Pct),
            ("x 16 B", metric::RAW_RATIO, Fmt::Times),
            ("end-to-end Mops/s", metric::MOPS_E2E, Fmt::Rate),
        ],
        bpp: false,
    },
    LifeTable {
        phase: Phase::FreezeInsert,
        title:
            "Insert with freezing on (numatree/frozen) and off (numatree/hot), gauge values, cold",
        columns: &[
            ("records", metric::RECORDS, Fmt::Count),
            ("end-to-end Mops/s", metric::MOPS_E2E, Fmt::Rate),
            ("writer-only Mops/s", metric::MOPS_WRITER, Fmt::Rate),
            ("merge busy", metric::MERGE_CPU, Fmt::Pct),
            ("bytes/point", metric::REPORTED_BYTES_PER_POINT, Fmt::Rate),
            ("hot B/pt", metric::HOT_BYTES_PER_POINT, Fmt::Rate),
            ("frozen B/pt", metric::FROZEN_BYTES_PER_POINT, Fmt::Rate),
        ],
        bpp: false,
    },
    LifeTable {
        phase: Phase::FrozenScan,
        title: "Scans over gauge data: numatree frozen and not frozen, and the peers \
                (B/pt: numatree's own statistics after this ingest; a peer's live heap \
                after the memory phase's ingest, the same bytes whatever its values)",
        columns: &[
            ("scans", metric::SCANS, Fmt::Count),
            ("records returned", metric::SCANNED, Fmt::Count),
            ("Kops/s", metric::KOPS, Fmt::Rate),
            ("Mrecords/s", metric::MRECS, Fmt::Rate),
        ],
        bpp: true,
    },
    LifeTable {
        phase: Phase::Snapshot,
        title: "Snapshot and restore of gauge data, freezing on (numatree/frozen: frozen blocks \
                written as they are) and off (numatree/hot: raw blocks); GB/s of raw point data \
                = points x 16 B / seconds; restore timed end to end, the index's build included; \
                the file in the temporary directory, fsynced; every restored point verified",
        columns: &[
            ("points", metric::KEYS, Fmt::Count),
            ("file bytes", metric::SNAPSHOT_FILE_BYTES, Fmt::Count),
            (
                "file B/pt",
                metric::SNAPSHOT_FILE_BYTES_PER_POINT,
                Fmt::Rate,
            ),
            ("snapshot ms", metric::SNAPSHOT_MS, Fmt::Rate),
            ("snapshot GB/s", metric::SNAPSHOT_GBPS, Fmt::Rate),
            ("snapshot Mpoints/s", metric::SNAPSHOT_MPOINTS, Fmt::Rate),
            ("restore ms", metric::RESTORE_MS, Fmt::Rate),
            ("restore GB/s", metric::RESTORE_GBPS, Fmt::Rate),
            ("restore Mpoints/s", metric::RESTORE_MPOINTS, Fmt::Rate),
            ("restored B/pt", metric::REPORTED_BYTES_PER_POINT, Fmt::Rate),
        ],
        bpp: false,
    },
    LifeTable {
        phase: Phase::Retention,
        title: "Retention: drop_before(half the time range) while writers ingest newer points \
                and readers query (freed by the drop = bytes it freed, as the index counts \
                them / bytes before; net = 1 - bytes when the drop returned / bytes before, \
                the newer points merged meanwhile counted against it)",
        columns: &[
            ("points before", metric::KEYS, Fmt::Count),
            ("bytes before", metric::RETENTION_BYTES_BEFORE, Fmt::Count),
            (
                "bytes after drop",
                metric::RETENTION_BYTES_AFTER_DROP,
                Fmt::Count,
            ),
            ("freed by the drop", metric::RETENTION_FREED, Fmt::Pct),
            ("net", metric::RETENTION_NET_FREED, Fmt::Pct),
            ("bytes at end", metric::RETENTION_BYTES_AFTER, Fmt::Count),
            ("B/pt before", metric::REPORTED_BYTES_PER_POINT, Fmt::Rate),
            ("B/pt at end", metric::RETENTION_BPP_AFTER, Fmt::Rate),
            ("drop ms", metric::RETENTION_DROP_MS, Fmt::Rate),
            (
                "points dropped",
                metric::RETENTION_POINTS_DROPPED,
                Fmt::Count,
            ),
            ("writer Mops/s", metric::WRITER_MOPS, Fmt::Rate),
        ],
        bpp: false,
    },
];

/// Renders the block-life tables of `cfg`'s section and their targets.
pub fn life_tables(cfg: &BenchConfig, summary: &[Summary]) -> String {
    let mut out = String::new();
    for t in LIFE_TABLES {
        let rows: Vec<&Summary> = summary
            .iter()
            .filter(|s| s.shape == cfg.shape && s.phase == t.phase)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n### {}\n", t.title);
        let mut head = vec!["contender", "threads"];
        head.extend(t.columns.iter().map(|c| c.0));
        if t.bpp {
            head.push(BPP_COLUMN);
        }
        let _ = writeln!(out, "| {} |", head.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(head.len()));
        for s in rows {
            let mut row = vec![s.contender.clone(), s.threads.to_string()];
            row.extend(
                t.columns
                    .iter()
                    .map(|col| cell(s.metrics.get(col.1), col.2)),
            );
            if t.bpp {
                let b = bytes_per_point(summary, cfg.shape, &s.contender, Some(s));
                row.push(cell(b.as_ref(), Fmt::Rate));
            }
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        let targets: Vec<Target> = crate::life::targets(summary, cfg.shape)
            .into_iter()
            .filter(|x| x.phase == t.phase)
            .collect();
        if !targets.is_empty() {
            let _ = writeln!(out);
        }
        for x in targets {
            let _ = writeln!(out, "- {x}");
        }
    }
    out
}

/// A block-life figure set against its goal.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Target {
    /// The phase it comes from.
    pub phase: Phase,
    /// What is measured.
    pub what: String,
    /// The median measured.
    pub measured: f64,
    /// The goal, in the unit of `measured`.
    pub goal: f64,
    /// Whether `measured` must be at most (`Lower`) or at least (`Higher`) `goal`.
    pub better: Better,
    /// Whether the goal is an enforced check (a miss fails the run) or
    /// only reported.
    pub enforced: bool,
}

impl Target {
    /// Whether the measured median meets the goal.
    pub fn met(&self) -> bool {
        match self.better {
            Better::Higher => self.measured >= self.goal,
            Better::Lower => self.measured <= self.goal,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.better {
            Better::Higher => ">=",
            Better::Lower => "<=",
        };
        write!(
            f,
            "{}: {} (target {op} {}): {}{}",
            self.what,
            num(self.measured),
            num(self.goal),
            if self.met() { "met" } else { "**not met**" },
            if self.enforced {
                ", checked (a miss fails the run)"
            } else {
                ""
            }
        )
    }
}

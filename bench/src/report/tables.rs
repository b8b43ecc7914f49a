//! The predecessor-style tables: one per phase (rows = contender x
//! threads, cells = median [min..max]), the "x best peer" column, and how
//! each figure is written.

use std::fmt::Write as _;

use serde::Serialize;

use super::{ContenderInfo, Stat, Summary};
use crate::config::{BenchConfig, Phase, Shape};
use crate::phases::metric;
use crate::registry::{CEILINGS, TARGET};

/// Digits to show for a throughput-like figure.
pub(super) fn num(x: f64) -> String {
    let a = x.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// An integer with thousands separators.
pub(super) fn count(x: f64) -> String {
    let s = format!("{}", x.round() as i64);
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// How a column shows its metric.
#[derive(Clone, Copy)]
pub(super) enum Fmt {
    /// median [min..max], throughput precision.
    Rate,
    /// Integer, median only (deterministic counts).
    Count,
    /// Percentage of a 0..=1 ratio, median [min..max].
    Pct,
    /// A factor (`1.64x`), median [min..max].
    Times,
}

pub(super) fn cell(stat: Option<&Stat>, fmt: Fmt) -> String {
    let Some(s) = stat else { return "—".into() };
    let f = |x: f64| match fmt {
        Fmt::Rate => num(x),
        Fmt::Count => count(x),
        Fmt::Pct => format!("{:.1}%", x * 100.0),
        Fmt::Times => format!("{x:.2}x"),
    };
    if matches!(fmt, Fmt::Count) || s.n == 1 || s.min == s.max {
        f(s.median)
    } else {
        format!("{} [{}..{}]", f(s.median), f(s.min), f(s.max))
    }
}

/// Which way a figure is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Better {
    /// Throughput: the best peer has the largest.
    Higher,
    /// Memory: the best peer has the smallest.
    Lower,
}

pub(super) struct Table {
    phase: Phase,
    title: &'static str,
    columns: &'static [(&'static str, &'static str, Fmt)],
    /// Metric compared in the "x best peer" column.
    primary: &'static str,
    /// Which way `primary` is better.
    better: Better,
}

pub(super) const TABLES: &[Table] = &[
    Table {
        phase: Phase::Insert,
        title: "Insert (cold: fresh contender)",
        columns: &[
            ("records", metric::RECORDS, Fmt::Count),
            ("end-to-end Mops/s", metric::MOPS_E2E, Fmt::Rate),
            ("writer-only Mops/s", metric::MOPS_WRITER, Fmt::Rate),
            ("total ms", metric::TOTAL_MS, Fmt::Rate),
            ("merge busy", metric::MERGE_CPU, Fmt::Pct),
            ("waits", metric::WAITS, Fmt::Count),
            ("unaccounted", metric::UNACCOUNTED, Fmt::Count),
            ("page faults (K)", metric::PAGE_FAULTS_K, Fmt::Rate),
            ("kernel CPU", metric::KERNEL_CPU, Fmt::Pct),
        ],
        primary: metric::MOPS_E2E,
        better: Better::Higher,
    },
    Table {
        phase: Phase::InsertWarm,
        title: "Insert (warm: reserved, pre-faulted memory)",
        columns: &[
            ("records", metric::RECORDS, Fmt::Count),
            ("end-to-end Mops/s", metric::MOPS_E2E, Fmt::Rate),
            ("writer-only Mops/s", metric::MOPS_WRITER, Fmt::Rate),
            ("total ms", metric::TOTAL_MS, Fmt::Rate),
            ("merge busy", metric::MERGE_CPU, Fmt::Pct),
            ("waits", metric::WAITS, Fmt::Count),
            ("unaccounted", metric::UNACCOUNTED, Fmt::Count),
            ("page faults (K)", metric::PAGE_FAULTS_K, Fmt::Rate),
            ("kernel CPU", metric::KERNEL_CPU, Fmt::Pct),
        ],
        primary: metric::MOPS_E2E,
        better: Better::Higher,
    },
    Table {
        phase: Phase::Lookup,
        title: "Lookup (present keys)",
        columns: &[
            ("queries", metric::QUERIES, Fmt::Count),
            ("hits", metric::HITS, Fmt::Count),
            ("hit rate", metric::HIT_RATE, Fmt::Pct),
            ("Mops/s", metric::MOPS, Fmt::Rate),
        ],
        primary: metric::MOPS,
        better: Better::Higher,
    },
    Table {
        phase: Phase::LookupAbsent,
        title: "Lookup (with absent keys)",
        columns: &[
            ("queries", metric::QUERIES, Fmt::Count),
            ("present", metric::PRESENT, Fmt::Count),
            ("hits", metric::HITS, Fmt::Count),
            ("absent found", metric::ABSENT_FOUND, Fmt::Count),
            ("Mops/s", metric::MOPS, Fmt::Rate),
        ],
        primary: metric::MOPS,
        better: Better::Higher,
    },
    Table {
        phase: Phase::Scan,
        title: "Scan",
        columns: &[
            ("scans", metric::SCANS, Fmt::Count),
            ("records returned", metric::SCANNED, Fmt::Count),
            ("records/scan", metric::PER_SCAN, Fmt::Rate),
            ("Kops/s", metric::KOPS, Fmt::Rate),
            ("Mrecords/s", metric::MRECS, Fmt::Rate),
        ],
        primary: metric::MRECS,
        better: Better::Higher,
    },
    Table {
        phase: Phase::Mixed,
        title: "Mixed (writers ingest the second half while as many readers look up the first)",
        columns: &[
            ("records", metric::RECORDS, Fmt::Count),
            ("writer Mops/s", metric::WRITER_MOPS, Fmt::Rate),
            ("reader Mops/s", metric::READER_MOPS, Fmt::Rate),
            ("reader misses", metric::READER_MISSES, Fmt::Count),
        ],
        primary: metric::WRITER_MOPS,
        better: Better::Higher,
    },
    Table {
        phase: Phase::Memory,
        title: "Memory after ingest (live heap bytes counted by the allocator, untimed; \
                lower is better; + retired = freed by the epoch collector only after the \
                ingest returned, not in live; x 16 B = bytes per point over a raw (ts, value) \
                pair; vec-ceiling keeps every record as 24 bytes, duplicates included; \
                self-reported, hot and frozen bytes/point from numatree's own statistics)",
        columns: &[
            ("keys", metric::KEYS, Fmt::Count),
            ("live MiB", metric::LIVE_MIB, Fmt::Rate),
            ("+ retired MiB", metric::RETIRED_MIB, Fmt::Rate),
            ("allocations", metric::LIVE_ALLOCATIONS, Fmt::Count),
            ("bytes/point", metric::BYTES_PER_POINT, Fmt::Rate),
            ("x 16 B", metric::RAW_RATIO, Fmt::Times),
            (
                "self-reported bytes/point",
                metric::REPORTED_BYTES_PER_POINT,
                Fmt::Rate,
            ),
            ("hot B/pt", metric::HOT_BYTES_PER_POINT, Fmt::Rate),
            ("frozen B/pt", metric::FROZEN_BYTES_PER_POINT, Fmt::Rate),
            ("frozen points", metric::FROZEN_SHARE, Fmt::Pct),
        ],
        primary: metric::BYTES_PER_POINT,
        better: Better::Lower,
    },
];

pub(super) fn find<'a>(
    summary: &'a [Summary],
    shape: Shape,
    phase: Phase,
    contender: &str,
    threads: usize,
) -> Option<&'a Summary> {
    summary.iter().find(|s| {
        s.shape == shape && s.phase == phase && s.contender == contender && s.threads == threads
    })
}

/// The bytes per point `contender` held after an ingest of `shape`: its
/// own row's self-reported figure when `row` has one, else the memory
/// phase's live-heap count (measured at one thread count; a peer holds the
/// same bytes whatever its values). `None` when neither was measured.
pub(super) fn bytes_per_point(
    summary: &[Summary],
    shape: Shape,
    contender: &str,
    row: Option<&Summary>,
) -> Option<Stat> {
    row.and_then(|r| r.metrics.get(metric::REPORTED_BYTES_PER_POINT))
        .or_else(|| {
            summary
                .iter()
                .find(|s| s.shape == shape && s.phase == Phase::Memory && s.contender == contender)
                .and_then(|s| s.metrics.get(metric::BYTES_PER_POINT))
        })
        .copied()
}

/// Header of the bytes-per-point column the throughput tables end with.
pub(super) const BPP_COLUMN: &str = "B/pt";

/// The best peer's (name, median) of `metric` in `shape` at `threads`, the
/// largest or the smallest as `better` says: every contender except the
/// target and the ceilings.
pub fn best_peer<'a>(
    summary: &'a [Summary],
    shape: Shape,
    phase: Phase,
    threads: usize,
    metric: &str,
    better: Better,
) -> Option<(&'a str, f64)> {
    let peers = summary
        .iter()
        .filter(|s| s.shape == shape && s.phase == phase && s.threads == threads)
        .filter(|s| s.contender != TARGET && !CEILINGS.contains(&s.contender.as_str()))
        .filter_map(|s| {
            s.metrics
                .get(metric)
                .map(|m| (s.contender.as_str(), m.median))
        });
    match better {
        Better::Higher => peers.max_by(|a, b| a.1.total_cmp(&b.1)),
        Better::Lower => peers.min_by(|a, b| a.1.total_cmp(&b.1)),
    }
}

/// Renders every table of the section `cfg` (a [`BenchConfig::section`])
/// for the phases that ran, rows ordered contender then threads.
pub fn tables(cfg: &BenchConfig, contenders: &[ContenderInfo], summary: &[Summary]) -> String {
    let with_ratio = contenders.iter().any(|c| c.name == TARGET);
    let mut out = String::new();
    for t in TABLES {
        if !cfg.runs(t.phase) {
            continue;
        }
        let _ = writeln!(out, "\n### {}\n", t.title);
        let mut head = vec!["contender", "threads"];
        head.extend(t.columns.iter().map(|c| c.0));
        let bpp = t.phase != Phase::Memory;
        if bpp {
            head.push(BPP_COLUMN);
        }
        if with_ratio {
            head.push("x best peer");
        }
        let _ = writeln!(out, "| {} |", head.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(head.len()));
        for c in contenders {
            let na = match t.phase {
                Phase::InsertWarm if !c.caps.reserved => Some("n/a (no reserved mode: see cold)"),
                Phase::Lookup | Phase::LookupAbsent | Phase::Scan | Phase::Mixed
                    if !c.caps.queries =>
                {
                    Some("n/a (no queries)")
                }
                _ => None,
            };
            for &threads in &cfg.threads {
                let found = find(summary, cfg.shape, t.phase, &c.name, threads);
                if t.phase == Phase::Memory && found.is_none() {
                    // Measured at one thread count only.
                    continue;
                }
                let mut row = vec![c.name.clone(), threads.to_string()];
                match (na, found) {
                    (Some(why), _) => {
                        row.push(why.to_owned());
                        row.extend(std::iter::repeat_n(String::new(), t.columns.len() - 1));
                    }
                    (None, s) => row.extend(
                        t.columns
                            .iter()
                            .map(|col| cell(s.and_then(|s| s.metrics.get(col.1)), col.2)),
                    ),
                }
                if bpp {
                    // The memory phase's live heap (the same for every
                    // thread count and phase of a shape).
                    let b = bytes_per_point(summary, cfg.shape, &c.name, None);
                    row.push(cell(b.as_ref(), Fmt::Rate));
                }
                if with_ratio {
                    let ratio = (c.name == TARGET && na.is_none())
                        .then_some(found)
                        .flatten()
                        .and_then(|s| s.metrics.get(t.primary))
                        .zip(best_peer(
                            summary, cfg.shape, t.phase, threads, t.primary, t.better,
                        ))
                        .filter(|(_, (_, best))| *best > 0.0)
                        .map(|(m, (name, best))| format!("{:.2}x {name}", m.median / best));
                    row.push(ratio.unwrap_or_default());
                }
                let _ = writeln!(out, "| {} |", row.join(" | "));
            }
        }
    }
    out
}

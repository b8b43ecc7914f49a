//! The block-life figures against the goals, for the report's
//! targets table: the two compression limits (enforced as checks too),
//! insert and scan ratios, snapshot and restore GB/s, the share of bytes
//! retention frees. Goals other than the compression limits are reported,
//! not enforced: they say where numatree stands, not whether it is right.

use crate::config::{Phase, Shape, GAUGE_MAX_BYTES_PER_POINT, RANDOM_MAX_FROZEN_RATIO};
use crate::oracle::ValueShape;
use crate::phases::{metric, RAW_POINT_BYTES};
use crate::report::{Better, Summary, Target};

use super::{compression_row, FROZEN, GAUGE_CHECK_MIN_POINTS, HOT, SNAPSHOT_GOAL_GBPS};

/// The block-life figures of `shape` against their goals (issue 11): the
/// two compression limits are enforced checks as well (see
/// [`compression_checks`]); the rest are reported.
///
/// [`compression_checks`]: super::compression_checks
pub fn targets(summary: &[Summary], shape: Shape) -> Vec<Target> {
    let median = |phase: Phase, row: &str, m: &str| {
        summary
            .iter()
            .find(|s| s.shape == shape && s.phase == phase && s.contender == row)
            .and_then(|s| s.metrics.get(m))
            .map(|s| s.median)
    };
    let mut out = Vec::new();
    let mut push = |phase, what: String, measured: Option<f64>, goal, better, enforced| {
        if let Some(measured) = measured.filter(|m| m.is_finite()) {
            out.push(Target {
                phase,
                what,
                measured,
                goal,
                better,
                enforced,
            });
        }
    };
    let gauge = compression_row(ValueShape::Gauge);
    push(
        Phase::Compression,
        format!(
            "gauge bytes/point overall (codec bench anchor: 1.37; checked overall from \
             {GAUGE_CHECK_MIN_POINTS} points per series, frozen blocks only below)"
        ),
        median(Phase::Compression, &gauge, metric::REPORTED_BYTES_PER_POINT),
        GAUGE_MAX_BYTES_PER_POINT,
        Better::Lower,
        true,
    );
    push(
        Phase::Compression,
        "random frozen bytes/point".into(),
        median(
            Phase::Compression,
            &compression_row(ValueShape::Random),
            metric::FROZEN_BYTES_PER_POINT,
        ),
        RANDOM_MAX_FROZEN_RATIO * RAW_POINT_BYTES,
        Better::Lower,
        true,
    );
    let ratio =
        |a: Option<f64>, b: Option<f64>| a.zip(b).filter(|(_, b)| *b > 0.0).map(|(a, b)| a / b);
    push(
        Phase::FreezeInsert,
        "insert Mops/s, freezing on / off".into(),
        ratio(
            median(Phase::FreezeInsert, FROZEN, metric::MOPS_E2E),
            median(Phase::FreezeInsert, HOT, metric::MOPS_E2E),
        ),
        0.9,
        Better::Higher,
        false,
    );
    let frozen_scan = median(Phase::FrozenScan, FROZEN, metric::MRECS);
    let best = summary
        .iter()
        .filter(|s| s.shape == shape && s.phase == Phase::FrozenScan)
        .filter(|s| !s.contender.starts_with("numatree"))
        .filter_map(|s| {
            s.metrics
                .get(metric::MRECS)
                .map(|m| (s.contender.clone(), m.median))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((name, best)) = best {
        push(
            Phase::FrozenScan,
            format!("scan Mrecords/s, numatree frozen / best peer ({name})"),
            ratio(frozen_scan, Some(best)),
            1.5,
            Better::Higher,
            false,
        );
    }
    push(
        Phase::FrozenScan,
        "scan Mrecords/s, numatree frozen / not frozen".into(),
        ratio(frozen_scan, median(Phase::FrozenScan, HOT, metric::MRECS)),
        1.0,
        Better::Higher,
        false,
    );
    for (row, blocks) in [(FROZEN, "freezing on"), (HOT, "freezing off, raw blocks")] {
        for (what, m) in [
            ("snapshot", metric::SNAPSHOT_GBPS),
            ("restore (end to end, build included)", metric::RESTORE_GBPS),
        ] {
            push(
                Phase::Snapshot,
                format!("{what} GB/s of raw point data (16 B/point), {blocks}"),
                median(Phase::Snapshot, row, m),
                SNAPSHOT_GOAL_GBPS,
                Better::Higher,
                false,
            );
        }
    }
    push(
        Phase::Retention,
        "share of bytes freed by dropping half the time range".into(),
        median(Phase::Retention, FROZEN, metric::RETENTION_FREED),
        0.45,
        Better::Higher,
        false,
    );
    out
}

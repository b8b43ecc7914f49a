//! Phase 1, compression: numatree's bytes per point (overall, in hot and in
//! frozen blocks) after ingesting gauge, counter and random values with
//! freezing on, every point verified. It is what freezing saves, so its
//! limits fail the run rather than only being reported (see
//! [`compression_checks`]): gauge data must compress, and random values,
//! which the codec cannot predict, must not grow when frozen.

use numatree_core::Record;

use crate::config::{BenchConfig, Phase, GAUGE_MAX_BYTES_PER_POINT, RANDOM_MAX_FROZEN_RATIO};
use crate::contender::Contender;
use crate::memory;
use crate::numatree_adapter::NumatreeContender;
use crate::oracle::ValueShape;
use crate::phases::{block_metrics, insert_metrics, metric, per_us, Recorder, RAW_POINT_BYTES};
use crate::verify::{self, Mismatches, Problem};
use crate::workload::Workload;

use super::{
    compression_row, ctx, options, slices, FREEZE_CHECK_MIN_POINTS, GAUGE_CHECK_MIN_POINTS,
};

/// Ingests values `v` with freezing on, reports bytes per point, verifies
/// every point and checks the compression targets.
pub(super) fn compression(
    rec: &mut Recorder<'_>,
    cfg: &BenchConfig,
    w: &Workload,
    parts: &[Vec<Record>],
    v: ValueShape,
    repeat: usize,
) {
    let oracle = w.oracle();
    let row = compression_row(v);
    let ctx = ctx(cfg, &row, repeat);
    let c = NumatreeContender::with_freezing(true, &options(cfg, oracle));
    let t = c.ingest(&slices(parts), cfg.batch);
    let b = c.block_bytes().expect("numatree reports its blocks");
    let mut m = insert_metrics(oracle.records(), &t);
    m.extend(block_metrics(&b));
    m.push((metric::KEYS, b.points as f64));
    m.push((metric::RAW_RATIO, b.per_point() / RAW_POINT_BYTES));
    let note = format!(
        "{:.2} bytes/point ({:.2} hot, {:.2} frozen, {:.1}% of points frozen), {:.2} Mops/s",
        b.per_point(),
        b.hot_per_point(),
        b.frozen_per_point(),
        b.frozen_share() * 100.0,
        per_us(oracle.records() as f64, t.end_to_end)
    );
    rec.sample(&ctx, Phase::Compression, &m, c.extra(), note);
    let mut problems = verify::verify_timing(&t);
    problems.extend(verify::verify_index(&c, oracle));
    problems.extend(compression_checks(v, &b, w.config().points));
    rec.problems(&ctx, Phase::Compression, problems);
    drop(c);
    memory::reclaim();
}

/// The compression targets that fail the run: some points froze (from
/// [`FREEZE_CHECK_MIN_POINTS`] points per series); gauge data takes at
/// most [`GAUGE_MAX_BYTES_PER_POINT`] bytes a point overall (from
/// [`GAUGE_CHECK_MIN_POINTS`] points per series) or in its frozen blocks
/// (fewer); a frozen block of random values at most
/// [`RANDOM_MAX_FROZEN_RATIO`] x 16.
pub fn compression_checks(
    v: ValueShape,
    b: &crate::contender::BlockBytes,
    points_per_series: u64,
) -> Vec<Problem> {
    let whole = points_per_series >= GAUGE_CHECK_MIN_POINTS;
    let mut m = Mismatches::default();
    if b.frozen_points == 0 && points_per_series >= FREEZE_CHECK_MIN_POINTS {
        m.record(|| {
            format!(
                "no point froze: {} points, all in hot blocks, with freezing on",
                b.points
            )
        });
    }
    let gauge = if whole {
        b.per_point()
    } else {
        b.frozen_per_point()
    };
    if v == ValueShape::Gauge && gauge > GAUGE_MAX_BYTES_PER_POINT {
        m.record(|| {
            format!(
                "gauge values take {:.2} bytes/point overall ({:.2} hot, {:.2} frozen): \
                 the target is <= {GAUGE_MAX_BYTES_PER_POINT} {}",
                b.per_point(),
                b.hot_per_point(),
                b.frozen_per_point(),
                if whole {
                    "overall"
                } else {
                    "frozen (a small shape)"
                }
            )
        });
    }
    let random_max = RANDOM_MAX_FROZEN_RATIO * RAW_POINT_BYTES;
    if v == ValueShape::Random && b.frozen_per_point() > random_max {
        m.record(|| {
            format!(
                "frozen random values take {:.2} bytes/point: the limit is <= {random_max:.2} \
                 ({RANDOM_MAX_FROZEN_RATIO} x 16)",
                b.frozen_per_point()
            )
        });
    }
    m.into_problem("compression").into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contender::BlockBytes;

    #[test]
    fn compression_checks_enforce_the_gauge_and_random_limits() {
        let b = |bytes, frozen_bytes| BlockBytes {
            bytes,
            points: 1_000,
            frozen_bytes,
            frozen_points: 900,
        };
        // 2,900 bytes over 1,000 points, 900 of them frozen in 1,300 bytes.
        let big = GAUGE_CHECK_MIN_POINTS;
        assert!(compression_checks(ValueShape::Gauge, &b(2_900, 1_300), big).is_empty());
        let over = compression_checks(ValueShape::Gauge, &b(3_100, 1_300), big);
        assert_eq!(over.len(), 1);
        assert!(over[0].examples[0].contains("3.10"), "{over:?}");
        // A small shape checks the frozen blocks only.
        assert!(compression_checks(ValueShape::Gauge, &b(9_000, 1_300), 1_000).is_empty());
        assert!(!compression_checks(ValueShape::Gauge, &b(9_000, 2_800), 1_000).is_empty());
        let random = |frozen| compression_checks(ValueShape::Random, &b(20_000, frozen), big);
        assert!(random(15_120).is_empty(), "16.8 bytes/point is the limit");
        assert!(!random(15_130).is_empty());
        let none_frozen = BlockBytes {
            frozen_bytes: 0,
            frozen_points: 0,
            ..b(1_000, 0)
        };
        let p = compression_checks(ValueShape::Counter, &none_frozen, 1_000);
        assert!(p[0].examples[0].contains("no point froze"), "{p:?}");
        assert!(compression_checks(ValueShape::Counter, &none_frozen, 999).is_empty());
    }
}

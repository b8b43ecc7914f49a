//! The ingest measurements: a timed insert into a fresh contender, and the
//! untimed ingest whose live heap bytes the memory phase counts.

use crate::config::Phase;
use crate::contender::{BuildOptions, Contender, ContenderFactory};
use crate::cpu::CpuWindow;
use crate::memory::{self, Window};
use crate::verify;

use super::{
    block_metrics, insert_metrics, metric, ms, per_us, verify_state, Ctx, Recorder, Round,
    RAW_POINT_BYTES,
};

/// Builds, ingests, records and verifies one insert measurement; returns the
/// contender for the query phases.
pub(super) fn insert_phase(
    rec: &mut Recorder<'_>,
    round: &Round<'_>,
    f: &ContenderFactory,
    ctx: &Ctx<'_>,
    reserved: bool,
) -> Box<dyn Contender> {
    let phase = if reserved {
        Phase::InsertWarm
    } else {
        Phase::Insert
    };
    let records = round.oracle.records();
    let c = f.build(&BuildOptions {
        writers: round.threads,
        series: round.oracle.series(),
        expected_records: records as usize,
        reserved,
    });
    if let Some(plan) = c.plan() {
        rec.out.plans.entry(f.name().to_owned()).or_insert(plan);
    }
    let cpu = CpuWindow::open();
    let t = c.ingest(&round.parts, rec.cfg.batch);
    let mut m = insert_metrics(records, &t);
    if let Some(u) = cpu.as_ref().and_then(CpuWindow::usage) {
        m.push((metric::PAGE_FAULTS_K, u.faults as f64 / 1e3));
        m.extend(u.kernel_share().map(|s| (metric::KERNEL_CPU, s)));
    }
    let note = format!(
        "{:.1} ms end-to-end, {:.2} Mops/s ({:.2} writer-only)",
        ms(t.end_to_end),
        per_us(records as f64, t.end_to_end),
        per_us(records as f64, t.writer)
    );
    rec.sample(ctx, phase, &m, c.extra(), note);
    let mut problems = verify::verify_timing(&t);
    problems.extend(verify_state(&*c, f, round.oracle, records));
    rec.problems(ctx, phase, problems);
    c
}

/// Measures the memory a fresh contender holds after ingesting the
/// workload: an ingest of its own, untimed, with the allocation counter on
/// from building the contender until the ingest returned and the epoch
/// collector freed what it retired (see [`memory::settle`]); then the
/// contender is verified like any ingest and dropped with the counter on
/// again, to see that it gives back what was counted.
pub(super) fn memory_phase(
    rec: &mut Recorder<'_>,
    round: &Round<'_>,
    f: &ContenderFactory,
    ctx: &Ctx<'_>,
) {
    let records = round.oracle.records();
    let keys = round.oracle.distinct_keys();
    // What earlier contenders retired must not be freed inside this window.
    if let Some(w) = Window::open() {
        memory::settle(Some(&w));
    }
    let window = Window::open();
    let c = f.build(&BuildOptions {
        writers: round.threads,
        series: round.oracle.series(),
        expected_records: records as usize,
        reserved: false,
    });
    let t = c.ingest(&round.parts, rec.cfg.batch);
    let retired = memory::settle(window.as_ref());
    let usage = window.as_ref().map(Window::usage);
    drop(window);
    let reported = c.reported_bytes();
    let blocks = c.block_bytes();
    let extra = c.extra();
    let mut problems = verify::verify_timing(&t);
    problems.extend(verify_state(&*c, f, round.oracle, records));
    let window = Window::open();
    drop(c);
    memory::settle(window.as_ref());
    let freed = window.as_ref().map(|w| -w.usage().bytes);
    drop(window);

    let per_point = |bytes: f64| bytes / keys.max(1) as f64;
    let mut m = vec![
        (metric::RECORDS, records as f64),
        (metric::KEYS, keys as f64),
    ];
    if let Some(u) = usage {
        let b = u.bytes as f64;
        m.extend([
            (metric::LIVE_BYTES, b),
            (metric::LIVE_MIB, b / f64::from(1 << 20)),
            (metric::LIVE_ALLOCATIONS, u.allocations as f64),
            (metric::BYTES_PER_POINT, per_point(b)),
            (metric::RAW_RATIO, per_point(b) / RAW_POINT_BYTES),
            (metric::RETIRED_BYTES, retired as f64),
            (metric::RETIRED_MIB, retired as f64 / f64::from(1 << 20)),
        ]);
    }
    m.extend(freed.map(|b| (metric::FREED_ON_DROP, b as f64)));
    m.extend(reported.map(|b| (metric::REPORTED_BYTES_PER_POINT, per_point(b as f64))));
    m.extend(blocks.map_or_else(Vec::new, |b| block_metrics(&b).to_vec()));
    let note = match usage {
        Some(u) => format!(
            "{:.1} MiB live in {} allocations ({:.1} MiB more retired until reclaimed), \
             {:.1} bytes/point ({:.2}x of 16)",
            u.bytes as f64 / f64::from(1 << 20),
            u.allocations,
            retired as f64 / f64::from(1 << 20),
            per_point(u.bytes as f64),
            per_point(u.bytes as f64) / RAW_POINT_BYTES
        ),
        None => "not measured: the counting allocator is not installed".to_owned(),
    };
    rec.sample(ctx, Phase::Memory, &m, extra, note);
    rec.problems(ctx, Phase::Memory, problems);
}

//! `numatree-bench`: runs the predecessor's benchmark on every registered
//! contender, prints the tables, writes JSON and SVG, and exits non-zero if
//! any verification failed (status 1). `--help` lists the options; a bad
//! flag is an error naming it and what it allows (status 2).
//!
//! The binary's global allocator counts live heap bytes, but only inside
//! the memory phase's untimed window (see `numatree_bench::memory`).

use std::path::Path;
use std::process::ExitCode;
use std::time::SystemTime;

use numatree_bench::config::parse_args;
use numatree_bench::memory::CountingAlloc;
use numatree_bench::phases::{self, ShapeOutcome};
use numatree_bench::progress::{EtaAccuracy, EtaPoint, Progress};
use numatree_bench::report::{self, ContenderInfo, Report, Summary, SystemInfo};
use numatree_bench::verify::Failure;
use numatree_bench::{plot, registry};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn main() -> ExitCode {
    let cfg = parse_args(std::env::args_os()).unwrap_or_else(|e| e.exit());
    let factories = match registry::select(&cfg.contenders) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if factories.iter().any(|f| f.name() == "numatree") {
        if let Err(e) = numatree_bench::numatree_adapter::preflight() {
            eprintln!("error: numatree cannot be built here: {e}");
            return ExitCode::from(2);
        }
    }
    let (stamp, created) = report::utc_stamp(SystemTime::now());
    let progress = Progress::new(false);
    let outcome = match phases::run(&cfg, &factories, &progress) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let system = SystemInfo::collect();
    let contenders: Vec<ContenderInfo> = factories.iter().map(ContenderInfo::from).collect();
    let summary = report::summarize(&outcome.samples);
    println!("{}", report::header(&system, &cfg, &outcome, &created));
    println!(
        "{}",
        report::sections(&cfg, &outcome, &contenders, &summary)
    );

    let default_dir = cfg.json.is_none();
    let json = cfg
        .json
        .clone()
        .unwrap_or_else(|| report::output_dir().join(format!("{stamp}.json")));
    let doc = Report {
        schema: 2,
        created: &created,
        system: &system,
        config: &cfg,
        contenders: &contenders,
        outcome: &outcome,
        summary: &summary,
        targets: &numatree_bench::life::targets(&summary, numatree_bench::config::Shape::Default),
    };
    let mut io_failed = !write_json(&json, &doc, default_dir);
    let svg = json.with_extension("svg");
    // The plot shows the first section (the default shape, unless --shapes left it out).
    if let Some(first) = outcome.shapes.first().filter(|_| cfg.plot) {
        let title = format!(
            "numatree-bench {} ({}), {} shape, {created}",
            cfg.profile,
            system.cpu_model,
            first.shape.name()
        );
        io_failed |= !write_plot(&svg, &title, first, &contenders, &summary, default_dir);
    }
    println!("JSON: {}", json.display());
    if cfg.plot {
        println!("plot: {}", svg.display());
    }
    println!("wall time: {:.1} s", outcome.wall_s);
    print_eta_accuracy(&outcome.eta);

    verdict(&outcome.failures, io_failed)
}

/// Writes the report's JSON to `json` (and `latest.json` beside it in the
/// default directory); false, said on stderr, when the JSON could not be
/// written.
fn write_json(json: &Path, doc: &Report<'_>, default_dir: bool) -> bool {
    finish_output(report::write_json(json, doc), json, "writing", default_dir)
}

/// Plots `section`'s summary rows to `svg` (and `latest.svg` beside it in
/// the default directory); false, said on stderr, when it could not.
fn write_plot(
    svg: &Path,
    title: &str,
    section: &ShapeOutcome,
    contenders: &[ContenderInfo],
    summary: &[Summary],
    default_dir: bool,
) -> bool {
    let names: Vec<String> = contenders.iter().map(|c| c.name.clone()).collect();
    let shown: Vec<_> = summary
        .iter()
        .filter(|s| s.shape == section.shape)
        .cloned()
        .collect();
    let written = plot::write_svg(svg, title, &section.threads, &names, &shown);
    finish_output(written, svg, "plotting", default_dir)
}

/// Whether an output file was `written` to `path`; if so, in the default
/// directory, also copied to `latest.<its extension>` beside it (a warning
/// if that fails); if not, says so on stderr (`error: {doing} {path}`).
fn finish_output<E: std::fmt::Display>(
    written: Result<(), E>,
    path: &Path,
    doing: &str,
    default_dir: bool,
) -> bool {
    if let Err(e) = written {
        eprintln!("error: {doing} {}: {e}", path.display());
        return false;
    }
    if default_dir {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        let latest = format!("latest.{ext}");
        if let Err(e) = std::fs::copy(path, path.with_file_name(&latest)) {
            eprintln!("warning: could not write {latest}: {e}");
        }
    }
    true
}

/// Prints how far the progress line's time-left estimates were off over
/// the last quarter of the run (when there were enough of them).
fn print_eta_accuracy(eta: &[EtaPoint]) {
    let Some(acc) = EtaAccuracy::last_quarter(eta) else {
        return;
    };
    let w = acc.worst;
    println!(
        "time-left estimate over the last quarter of the run: {} estimates with >= {:.0} s \
         left, worst {:.0}% off (after {}/{}: estimated {:.1} s, really {:.1} s left), \
         worst absolute error {:.1} s ({} estimates with less left not counted)",
        acc.points,
        acc.min_left_s,
        acc.worst_relative * 100.0,
        w.done,
        w.planned,
        w.eta_s.unwrap_or(f64::NAN),
        w.actual_left_s.unwrap_or(f64::NAN),
        acc.worst_abs_s,
        acc.tail_points
    );
}

/// The run's exit status: failure, each failed check listed on stderr, if
/// any verification failed (the figures are then not to be trusted);
/// failure if an output could not be written; else success.
fn verdict(failures: &[Failure], io_failed: bool) -> ExitCode {
    if !failures.is_empty() {
        eprintln!(
            "\nVERIFICATION FAILED: {} check(s) failed; the figures above are not trustworthy:",
            failures.len()
        );
        for f in failures {
            eprint!("  {f}");
        }
        return ExitCode::FAILURE;
    }
    println!("verification: passed (every record found, every lookup and scan exact)");
    if io_failed {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

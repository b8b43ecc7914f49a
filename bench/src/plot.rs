//! The SVG plot: throughput (median over repeats, with a min..max whisker,
//! log scale) against thread count, one panel per phase figure, one line
//! per contender in a colour fixed by its place in the contender list.

use std::error::Error;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::config::Phase;
use crate::phases::metric;
use crate::report::Summary;

/// (phase, metric, panel title) of every panel, in order.
const PANELS: &[(Phase, &str, &str)] = &[
    (Phase::Insert, metric::MOPS_E2E, "insert end-to-end, Mops/s"),
    (
        Phase::Insert,
        metric::MOPS_WRITER,
        "insert writer-only, Mops/s",
    ),
    (
        Phase::InsertWarm,
        metric::MOPS_E2E,
        "insert warm (reserved) end-to-end, Mops/s",
    ),
    (Phase::Lookup, metric::MOPS, "lookup, Mops/s"),
    (
        Phase::LookupAbsent,
        metric::MOPS,
        "lookup with absent keys, Mops/s",
    ),
    (Phase::Scan, metric::MRECS, "scan, Mrecords/s"),
    (Phase::Mixed, metric::WRITER_MOPS, "mixed: writers, Mops/s"),
    (Phase::Mixed, metric::READER_MOPS, "mixed: readers, Mops/s"),
];

/// One line of a panel: contender and (thread index, median, min, max) points.
type Line<'a> = (&'a str, Vec<(f64, f64, f64, f64)>);

/// Draws every panel that has data into an SVG at `path`. `threads` gives
/// the x positions (evenly spaced, labelled with the thread counts) and
/// `contenders` the line order and colours.
pub fn write_svg(
    path: &Path,
    title: &str,
    threads: &[usize],
    contenders: &[String],
    summary: &[Summary],
) -> Result<(), Box<dyn Error>> {
    let panels = panels(threads, contenders, summary);
    let cols = 2usize;
    let rows = panels.len().div_ceil(cols).max(1);
    let root = SVGBackend::new(path, (1200, 60 + 380 * rows as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let areas = root.split_evenly((rows, cols));
    for ((ptitle, lines), area) in panels.iter().zip(areas.iter()) {
        draw_panel(area, ptitle, lines, threads, contenders)?;
    }
    root.present()?;
    Ok(())
}

/// The panels that have data: each a title and one line a contender with
/// points (the medians and ranges of its metric at each thread count).
fn panels<'a>(
    threads: &[usize],
    contenders: &'a [String],
    summary: &[Summary],
) -> Vec<(&'static str, Vec<Line<'a>>)> {
    PANELS
        .iter()
        .map(|&(phase, m, title)| {
            let lines = contenders
                .iter()
                .map(|c| {
                    let pts = threads
                        .iter()
                        .enumerate()
                        .filter_map(|(x, &t)| {
                            summary
                                .iter()
                                .find(|s| s.phase == phase && s.contender == *c && s.threads == t)
                                .and_then(|s| s.metrics.get(m))
                                .map(|st| (x as f64, st.median, st.min, st.max))
                        })
                        .collect::<Vec<_>>();
                    (c.as_str(), pts)
                })
                .filter(|(_, pts)| !pts.is_empty())
                .collect::<Vec<_>>();
            (title, lines)
        })
        .filter(|(_, lines)| !lines.is_empty())
        .collect()
}

/// Draws one panel into `area`: a log-scale chart of `lines` against the
/// thread counts, with min-max whiskers and a legend.
fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    ptitle: &str,
    lines: &[Line<'_>],
    threads: &[usize],
    contenders: &[String],
) -> Result<(), Box<dyn Error>> {
    let xmax = threads.len().saturating_sub(1) as f64;
    // Log scale: peers, numatree and the ceiling differ by orders of magnitude.
    let positive = || {
        lines
            .iter()
            .flat_map(|(_, p)| p.iter().flat_map(|q| [q.1, q.2, q.3]))
            .filter(|v| *v > 0.0)
    };
    let ymax = positive().fold(f64::MIN_POSITIVE, f64::max) * 1.6;
    // At least a decade, so the log axis has labelled ticks.
    let ymin = (positive().fold(ymax, f64::min) / 1.6).min(ymax / 12.0);
    let mut chart = ChartBuilder::on(area)
        .caption(ptitle, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(34)
        .y_label_area_size(56)
        .build_cartesian_2d(-0.3f64..xmax + 0.3, (ymin..ymax).log_scale())?;
    let label = |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < threads.len() {
            threads[i as usize].to_string()
        } else {
            String::new()
        }
    };
    let ylabel = |y: &f64| {
        if *y >= 10.0 {
            format!("{y:.0}")
        } else if *y >= 1.0 {
            format!("{y:.1}")
        } else {
            format!("{y:.2}")
        }
    };
    chart
        .configure_mesh()
        .x_desc("threads")
        .y_desc("log scale")
        .x_labels(threads.len() * 2 + 1)
        .x_label_formatter(&label)
        .y_labels(10)
        .y_label_formatter(&ylabel)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (name, pts) in lines {
        let pts: Vec<_> = pts.iter().filter(|p| p.1 > 0.0).copied().collect();
        let i = contenders.iter().position(|c| c == name).unwrap_or(0);
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                pts.iter().map(|p| (p.0, p.1)),
                color.stroke_width(2),
            ))?
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart.draw_series(
            pts.iter()
                .map(|p| Circle::new((p.0, p.1), 3, color.filled())),
        )?;
        chart.draw_series(
            pts.iter()
                .filter(|p| p.2 > 0.0)
                .map(|p| PathElement::new(vec![(p.0, p.2), (p.0, p.3)], color)),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

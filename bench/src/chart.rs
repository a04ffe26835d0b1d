//! The scale series as an SVG chart: each ratio row (pgcqrs against its
//! baseline, measured side by side) and each staleness p99 against the
//! number of orders, on a log scale.

use std::path::Path;

use plotters::prelude::*;

use crate::bench::SizeReport;

/// Rows drawn as ratios (left chart) and as staleness p99 (right chart),
/// by the start of their scenario.
const RATIOS: &[(&str, &str)] = &[
    ("create order (3 items): HTTP vs", "create order vs SQL"),
    ("get order by id (HTTP vs", "get order by id vs SQL"),
    (
        "customer's 20 newest: HTTP vs the same",
        "customer's 20 newest vs SQL",
    ),
    ("status-filtered first page: HTTP vs", "status page vs SQL"),
    ("write-path cost of triggers", "triggers vs bare inserts"),
];
const STALENESS: &str = "staleness under load: 202 → covered by ";

/// Write the chart of `reports` (two sizes or more) to `path`.
pub fn draw(reports: &[SizeReport], path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1100, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(560);
    let sizes: Vec<f64> = reports.iter().map(|r| r.orders as f64).collect();
    let (lo, hi) = (
        sizes.iter().copied().fold(f64::MAX, f64::min) / 1.5,
        sizes.iter().copied().fold(0.0, f64::max) * 1.5,
    );

    let ratios: Vec<(String, Vec<(f64, f64)>)> = RATIOS
        .iter()
        .map(|(start, label)| {
            let points = reports
                .iter()
                .filter_map(|r| {
                    let row = r.rows.iter().find(|x| x.scenario.starts_with(start))?;
                    Some((r.orders as f64, row.ratio?))
                })
                .collect();
            (label.to_string(), points)
        })
        .collect();
    let top = ratios
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.1))
        .fold(1.2, f64::max);
    series(
        &left,
        "pgcqrs / raw SQL, same run (higher is better)",
        (lo, hi),
        (0.0, top * 1.1),
        "ratio",
        &ratios,
    )?;

    let mut staleness: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in reports {
        for row in r.rows.iter().filter(|x| x.scenario.starts_with(STALENESS)) {
            let name = row.scenario[STALENESS.len()..]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            let Some(p99) = p99_seconds(&row.pgcqrs) else {
                continue;
            };
            match staleness.iter_mut().find(|(n, _)| *n == name) {
                Some((_, points)) => points.push((r.orders as f64, p99)),
                None => staleness.push((name, vec![(r.orders as f64, p99)])),
            }
        }
    }
    let top = staleness
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.1))
        .fold(1.5, f64::max);
    series(
        &right,
        "202 → visible in each read model, p99 under load",
        (lo, hi),
        (0.0, top * 1.1),
        "seconds",
        &staleness,
    )?;
    root.present()?;
    Ok(())
}

/// The p99 of a latency row's text ("p50 0.1 s, p99 0.2 s (n=…)").
fn p99_seconds(text: &str) -> Option<f64> {
    let after = text.split("p99 ").nth(1)?;
    after.split_whitespace().next()?.parse().ok()
}

fn series(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    x: (f64, f64),
    y: (f64, f64),
    y_label: &str,
    lines: &[(String, Vec<(f64, f64)>)],
) -> anyhow::Result<()> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d((x.0..x.1).log_scale(), y.0..y.1)?;
    chart
        .configure_mesh()
        .x_desc("orders")
        .y_desc(y_label)
        .x_label_formatter(&|v| format!("{}", *v as u64))
        .draw()?;
    for (i, (label, points)) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}

//! SVG plots: throughput against clients, and latency CDFs.

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

use crate::input::{Results, SYSTEMS};

const COLORS: [RGBColor; 3] = [RGBColor(0xd6, 0x27, 0x28), RGBColor(0x1f, 0x77, 0xb4), RGBColor(0x2c, 0xa0, 0x2c)];
const SIZE: (u32, u32) = (720, 440);

/// The plots drawn: `(file name, caption)`.
pub type Drawn = Vec<(String, String)>;

/// Draws every plot the results allow into `dir`.
pub fn draw_all(results: &Results, dir: &Path) -> anyhow::Result<Drawn> {
    let mut drawn = Vec::new();
    if results.write_workloads().len() > 1 {
        let name = "throughput-vs-clients.svg".to_string();
        throughput(results, &dir.join(&name))?;
        drawn.push((name, "Write throughput (SET / Put, 256-byte values) against clients".to_string()));
    }
    for workload in ["set-c64", "get-c64", "mix-c64"] {
        if SYSTEMS.iter().any(|s| results.get(s, workload).is_some()) {
            let name = format!("latency-cdf-{workload}.svg");
            cdf(results, workload, &dir.join(&name))?;
            drawn.push((name, format!("Latency CDF, {workload}")));
        }
    }
    Ok(drawn)
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing: {e}")
}

fn throughput(results: &Results, path: &Path) -> anyhow::Result<()> {
    let workloads = results.write_workloads();
    let series: Vec<(&str, Vec<(f64, f64)>)> = SYSTEMS
        .iter()
        .map(|s| {
            let points =
                workloads.iter().filter_map(|(c, w)| Some((*c as f64, results.get(s, w)?.throughput))).collect();
            (*s, points)
        })
        .collect();
    let y_max = series.iter().flat_map(|(_, p)| p.iter().map(|(_, y)| *y)).fold(1.0, f64::max) * 1.1;
    let x_max = workloads.last().map_or(2.0, |(c, _)| *c as f64 * 1.5);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Writes per second vs clients (3 replicas / 1 Redis, fsync on)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((0.8f64..x_max).log_scale(), 0f64..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("clients (log scale)")
        .y_desc("ops/s")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(err)?;
    for (i, (system, points)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(*system)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled()))).map_err(err)?;
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw().map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

fn cdf(results: &Results, workload: &str, path: &Path) -> anyhow::Result<()> {
    let series: Vec<(&str, Vec<(f64, f64)>)> = SYSTEMS
        .iter()
        .filter_map(|s| {
            let latency = results.get(s, workload)?.latency.get("all")?;
            Some((*s, latency.cdf.iter().map(|(p, us)| ((*us).max(1) as f64, *p)).collect()))
        })
        .collect();
    let x_max = series.iter().flat_map(|(_, p)| p.iter().map(|(x, _)| *x)).fold(10.0, f64::max) * 1.5;
    let x_min = series.iter().flat_map(|(_, p)| p.iter().map(|(x, _)| *x)).fold(f64::MAX, f64::min).max(1.0) / 1.5;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("Latency CDF, {workload}"), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((x_min..x_max).log_scale(), 0f64..100f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("latency, µs (log scale)")
        .y_desc("percentile")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(err)?;
    for (i, (system, points)) in series.iter().enumerate() {
        let color = COLORS[SYSTEMS.iter().position(|s| s == system).unwrap_or(i) % COLORS.len()];
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(*system)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

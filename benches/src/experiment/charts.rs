//! SVG charts of an experiment: start-up and response time per side and
//! cap as bars, CPU and memory over time as lines.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use plotters::prelude::*;

use super::report::median_startup;
use super::run::{Run, Variant};
use super::side::Side;

const WIDTH: u32 = 900;
const HEIGHT: u32 = 480;

/// Returns the colour of `side` in every chart.
fn colour(side: Side) -> RGBColor {
    match side {
        Side::Function => RGBColor(31, 119, 180),
        Side::Server => RGBColor(44, 160, 44),
        Side::Peer => RGBColor(214, 39, 40),
    }
}

/// One bar: its label, value and side.
struct Bar {
    label: String,
    value: f64,
    side: Side,
}

/// Draws every chart into `folder` and returns the files written.
///
/// # Errors
/// When a file cannot be written.
pub fn draw_all(
    folder: &Path,
    runs: &[Run],
    caps: &[usize],
    sides: &[Side],
) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let bars_of = |value: &dyn Fn(&[&Run]) -> Option<f64>| -> Vec<Bar> {
        let mut bars = Vec::new();
        for &cap in caps {
            for &side in sides {
                let chosen: Vec<&Run> = runs
                    .iter()
                    .filter(|run| run.cap == cap && run.side == side)
                    .collect();
                if let Some(value) = value(&chosen) {
                    let label = format!("{} cap {cap}", side.name());
                    bars.push(Bar { label, value, side });
                }
            }
        }
        bars
    };
    let full = |chosen: &[&Run]| {
        chosen
            .iter()
            .copied()
            .find(|run| run.get.is_some())
            .cloned()
    };

    let charts: [(&str, &str, &str, Vec<Bar>); 4] = [
        (
            "startup-scratch.svg",
            "Start-up, training from scratch",
            "seconds",
            bars_of(&|chosen| median_startup(chosen, Variant::Scratch)),
        ),
        (
            "startup-checkpoint.svg",
            "Start-up from a checkpoint (median)",
            "milliseconds",
            bars_of(&|chosen| median_startup(chosen, Variant::Checkpoint).map(|s| s * 1e3)),
        ),
        (
            "response-get.svg",
            "GET / (evaluate 10,000 images): ab mean time per request",
            "seconds",
            bars_of(&|chosen| Some(full(chosen)?.get?.mean_ms / 1e3)),
        ),
        (
            "response-predict.svg",
            "POST /predict (one image): ab mean time per request",
            "milliseconds",
            bars_of(&|chosen| Some(full(chosen)?.predict?.mean_ms)),
        ),
    ];
    for (name, title, unit, bars) in charts {
        let path = folder.join(name);
        draw_bars(&path, title, unit, &bars)?;
        written.push(path);
    }

    for &cap in caps {
        let series: Vec<&Run> = sides
            .iter()
            .filter_map(|side| {
                runs.iter()
                    .find(|run| run.cap == cap && run.side == *side && run.get.is_some())
            })
            .collect();
        let cpu = folder.join(format!("cpu-cap{cap}.svg"));
        let title = format!("CPU, cap {cap}: start from a checkpoint, idle, GET /, POST /predict");
        draw_lines(&cpu, &title, "% of one CPU", &series, &|s| s.cpu_percent)?;
        written.push(cpu);
        let memory = folder.join(format!("memory-cap{cap}.svg"));
        let title = format!("Resident memory, cap {cap}: same runs");
        draw_lines(&memory, &title, "MiB", &series, &|s| {
            s.rss_kib as f64 / 1024.0
        })?;
        written.push(memory);
    }
    Ok(written)
}

fn draw_bars(path: &Path, title: &str, unit: &str, bars: &[Bar]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let top = bars
        .iter()
        .map(|bar| bar.value)
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.15;
    let count = bars.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((0..count).into_segmented(), 0.0..top)
        .map_err(plot_error)?;
    let label = |value: &SegmentValue<usize>| match value {
        SegmentValue::CenterOf(index) => bars
            .get(*index)
            .map(|bar| bar.label.clone())
            .unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(count)
        .x_label_formatter(&label)
        .y_desc(unit)
        .draw()
        .map_err(plot_error)?;
    for (index, bar) in bars.iter().enumerate() {
        chart
            .draw_series(
                Histogram::vertical(&chart)
                    .style(colour(bar.side).filled())
                    .margin(16)
                    .data([(index, bar.value)]),
            )
            .map_err(plot_error)?;
        let text = format_value(bar.value);
        let position = (SegmentValue::CenterOf(index), bar.value + top * 0.02);
        chart
            .draw_series([Text::new(text, position, ("sans-serif", 14))])
            .map_err(plot_error)?;
    }
    root.present().map_err(plot_error)?;
    Ok(())
}

fn format_value(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

fn draw_lines(
    path: &Path,
    title: &str,
    unit: &str,
    runs: &[&Run],
    value: &dyn Fn(&super::sampler::Sample) -> f64,
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let samples = runs.iter().flat_map(|run| run.samples.iter());
    let (right, top) = samples.fold((1e-9f64, 1e-9f64), |(right, top), sample| {
        (right.max(sample.seconds), top.max(value(sample)))
    });
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..right, 0.0..top * 1.1)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the process started")
        .y_desc(unit)
        .draw()
        .map_err(plot_error)?;
    for run in runs {
        let points = run.samples.iter().map(|s| (s.seconds, value(s)));
        let style = colour(run.side);
        chart
            .draw_series(LineSeries::new(points, style.stroke_width(2)))
            .map_err(plot_error)?
            .label(run.side.label())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)?;
    root.present().map_err(plot_error)?;
    Ok(())
}

fn plot_error<E: std::fmt::Display>(error: E) -> anyhow::Error {
    anyhow!("cannot draw a chart: {error}")
}

//! SVG charts of training runs, drawn with `plotters`: loss and accuracy per
//! epoch, a confusion matrix, and accuracy against wall-clock time.

use std::path::Path;

use anyhow::Context;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One epoch's values on the training-curve chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochPoint {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Training accuracy, 0 to 1.
    pub train_accuracy: f64,
    /// Validation accuracy, 0 to 1, when the run held images out.
    pub validation_accuracy: Option<f64>,
    /// Test accuracy, 0 to 1, when the run evaluated it after the epoch.
    pub test_accuracy: Option<f64>,
}

/// A named line of the accuracy-against-time chart: (minutes, accuracy in
/// percent) points.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSeries {
    /// Legend text.
    pub name: String,
    /// Points in time order.
    pub points: Vec<(f64, f64)>,
}

const FONT: &str = "sans-serif";
const PALETTE: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

/// Reads one accuracy of an epoch, if the run measured it.
type AccuracyOf = fn(&EpochPoint) -> Option<f64>;

fn plot_error(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{error}")
}

/// Draws the loss (left) and the accuracies (right) per epoch into `path`.
///
/// # Errors
/// When the SVG cannot be drawn or written.
pub fn draw_training_curves(path: &Path, points: &[EpochPoint]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (960, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let (left, right) = root.split_horizontally(480);
    let last = points.iter().map(|p| p.epoch).max().unwrap_or(1) as f64;
    let epochs = 0.5..last + 0.5;

    let max_loss = points.iter().map(|p| p.loss).fold(0.0, f64::max).max(0.1) * 1.1;
    let mut loss = ChartBuilder::on(&left)
        .caption("training loss", (FONT, 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(epochs.clone(), 0.0..max_loss)
        .map_err(plot_error)?;
    loss.configure_mesh()
        .x_desc("epoch")
        .y_desc("loss")
        .draw()
        .map_err(plot_error)?;
    let series = points.iter().map(|p| (p.epoch as f64, p.loss));
    loss.draw_series(LineSeries::new(series, PALETTE[0].stroke_width(2)).point_size(3))
        .map_err(plot_error)?;

    let mut accuracy = ChartBuilder::on(&right)
        .caption("accuracy", (FONT, 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(epochs, 0.0..100.0)
        .map_err(plot_error)?;
    accuracy
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("accuracy (%)")
        .draw()
        .map_err(plot_error)?;
    let lines: [(&str, AccuracyOf); 3] = [
        ("training", |p| Some(p.train_accuracy)),
        ("validation", |p| p.validation_accuracy),
        ("test", |p| p.test_accuracy),
    ];
    for (index, (name, value)) in lines.into_iter().enumerate() {
        let series: Vec<(f64, f64)> = points
            .iter()
            .filter_map(|p| value(p).map(|v| (p.epoch as f64, 100.0 * v)))
            .collect();
        if series.is_empty() {
            continue;
        }
        draw_named_line(&mut accuracy, series, name, (PALETTE[index], 3))?;
    }
    draw_legend(&mut accuracy)?;
    save_chart(&root, path)
}

/// Draws `confusion[label][predicted]` as a grid of counts, darker for
/// larger shares of the true class, into `path`.
///
/// # Errors
/// When the SVG cannot be drawn or written.
pub fn draw_confusion(
    path: &Path,
    confusion: &[Vec<usize>],
    class_names: &[String],
) -> anyhow::Result<()> {
    let classes = confusion.len();
    let root = SVGBackend::new(path, (720, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let name = |index: usize| {
        class_names
            .get(index)
            .cloned()
            .unwrap_or_else(|| index.to_string())
    };
    let mut chart = ChartBuilder::on(&root)
        .caption("test confusion matrix (rows: true class)", (FONT, 18))
        .margin(12)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(0.0..classes as f64, classes as f64..0.0)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(classes * 2 + 1)
        .y_labels(classes * 2 + 1)
        .x_label_formatter(&|x| centre_label(*x, classes, &name))
        .y_label_formatter(&|y| centre_label(*y, classes, &name))
        .x_desc("predicted class")
        .draw()
        .map_err(plot_error)?;
    for (label, row) in confusion.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        for (predicted, &count) in row.iter().enumerate() {
            let share = count as f64 / total;
            let shade = (255.0 * (1.0 - share)).round() as u8;
            let fill = RGBColor(shade, shade, 255);
            let (x, y) = (predicted as f64, label as f64);
            chart
                .draw_series([Rectangle::new([(x, y), (x + 1.0, y + 1.0)], fill.filled())])
                .map_err(plot_error)?;
            let color = if share > 0.5 { WHITE } else { BLACK };
            let style = TextStyle::from((FONT, 13))
                .color(&color)
                .pos(Pos::new(HPos::Center, VPos::Center));
            chart
                .draw_series([Text::new(count.to_string(), (x + 0.5, y + 0.5), style)])
                .map_err(plot_error)?;
        }
    }
    save_chart(&root, path)
}

/// Names the class whose cell is centred at `value`, and nothing at cell
/// edges.
fn centre_label(value: f64, classes: usize, name: &dyn Fn(usize) -> String) -> String {
    let cell = value - 0.5;
    let index = cell.round();
    if (cell - index).abs() < 1e-6 && index >= 0.0 && (index as usize) < classes {
        name(index as usize)
    } else {
        String::new()
    }
}

/// Draws test accuracy against minutes of training, one line per series,
/// with a horizontal line at each of `targets` (percent).
///
/// # Errors
/// When the SVG cannot be drawn or written.
pub fn draw_accuracy_vs_time(
    path: &Path,
    series: &[TimeSeries],
    targets: &[f64],
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_error)?;
    let points = series.iter().flat_map(|s| s.points.iter());
    let max_minutes = points.clone().map(|p| p.0).fold(1.0, f64::max) * 1.05;
    let min_accuracy = points.map(|p| p.1).fold(100.0, f64::min).min(50.0);
    let mut chart = ChartBuilder::on(&root)
        .caption("test accuracy against training time", (FONT, 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..max_minutes, (min_accuracy - 5.0).floor()..85.0)
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc("training wall-clock time (minutes)")
        .y_desc("test accuracy (%)")
        .draw()
        .map_err(plot_error)?;
    for &target in targets {
        let line = [(0.0, target), (max_minutes, target)];
        chart
            .draw_series(LineSeries::new(line, BLACK.mix(0.3)))
            .map_err(plot_error)?;
    }
    for (index, line) in series.iter().enumerate() {
        let style = (PALETTE[index % PALETTE.len()], 4);
        draw_named_line(&mut chart, line.points.clone(), &line.name, style)?;
    }
    draw_legend(&mut chart)?;
    save_chart(&root, path)
}

/// A chart with `f64` axes.
type F64Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws `points` as a line with dots of `style.1` pixels in colour
/// `style.0`, entered in the legend as `name`.
fn draw_named_line<'a, DB: DrawingBackend + 'a>(
    chart: &mut F64Chart<'a, DB>,
    points: Vec<(f64, f64)>,
    name: &str,
    style: (RGBColor, u32),
) -> anyhow::Result<()> {
    let (color, dots) = style;
    chart
        .draw_series(LineSeries::new(points, color.stroke_width(2)).point_size(dots))
        .map_err(plot_error)?
        .label(name)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    Ok(())
}

/// Draws the legend of the named lines in the lower right corner.
fn draw_legend<'a, DB: DrawingBackend + 'a>(chart: &mut F64Chart<'a, DB>) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)
}

/// Writes the drawing out to `path`.
fn save_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    path: &Path,
) -> anyhow::Result<()> {
    root.present()
        .map_err(plot_error)
        .with_context(|| format!("failed to write the chart {}", path.display()))
}

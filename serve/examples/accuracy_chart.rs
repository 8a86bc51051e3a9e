//! Draws test accuracy against training time from `train` run records.
//!
//! ```sh
//! cargo run --release -p cifaas-serve --example accuracy_chart -- OUT.svg \
//!     "study=study.ckpt.run.json" "fast 5 min=fast5.ckpt.run.json"
//! ```
//!
//! Each `NAME=FILE` argument is one line, from a run record (`OUT.run.json`)
//! or a metrics file (`OUT.metrics.jsonl`, which also exists for a run that
//! was stopped before its end). A run that evaluated the test set
//! after each epoch (`--test-each-epoch`) gives a point per epoch at its
//! elapsed time; any other run gives one point, its final test accuracy at
//! its training time. `peer=NAME:EPOCH_SECONDS:E1/A1,E2/A2,...` adds a line
//! for a peer measured elsewhere, at E epochs × EPOCH_SECONDS.

use std::path::Path;

use anyhow::{bail, Context};
use cifaas_serve::charts::{draw_accuracy_vs_time, TimeSeries};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((out, specs)) = args.split_first() else {
        bail!("usage: accuracy_chart OUT.svg NAME=RUN.json ... [peer=NAME:EPOCH_SECONDS:E/A,...]");
    };
    let mut series = Vec::new();
    for spec in specs {
        let (name, value) = spec
            .split_once('=')
            .with_context(|| format!("argument {spec:?} is not NAME=FILE"))?;
        series.push(if name == "peer" {
            peer_series(value)?
        } else {
            run_series(name, Path::new(value))?
        });
    }
    draw_accuracy_vs_time(Path::new(out), &series, &[70.0, 75.0])?;
    println!("wrote {out}");
    Ok(())
}

/// Reads the points of one run record.
fn run_series(name: &str, path: &Path) -> anyhow::Result<TimeSeries> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let record: serde_json::Value = if path.extension().is_some_and(|e| e == "jsonl") {
        let epochs = text
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<Vec<serde_json::Value>, _>>()?;
        serde_json::json!({ "epochs": epochs })
    } else {
        serde_json::from_str(&text)?
    };
    let mut points: Vec<(f64, f64)> = record["epochs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|epoch| {
            let accuracy = epoch["test_accuracy"].as_f64()?;
            Some((epoch["elapsed_seconds"].as_f64()? / 60.0, 100.0 * accuracy))
        })
        .collect();
    if points.is_empty() {
        let seconds = record["training_seconds"]
            .as_f64()
            .context("no training_seconds")?;
        let accuracy = record["test"]["accuracy"]
            .as_f64()
            .context("no test accuracy")?;
        points.push((seconds / 60.0, 100.0 * accuracy));
    }
    Ok(TimeSeries {
        name: name.to_owned(),
        points,
    })
}

/// Parses `NAME:EPOCH_SECONDS:E1/A1,E2/A2`.
fn peer_series(value: &str) -> anyhow::Result<TimeSeries> {
    let mut parts = value.splitn(3, ':');
    let (Some(name), Some(seconds), Some(points)) = (parts.next(), parts.next(), parts.next())
    else {
        bail!("peer {value:?} is not NAME:EPOCH_SECONDS:E/A,...");
    };
    let seconds: f64 = seconds.parse().context("EPOCH_SECONDS")?;
    let points = points
        .split(',')
        .map(|point| {
            let (epochs, accuracy) = point.split_once('/').context("point is not E/A")?;
            Ok((
                epochs.parse::<f64>()? * seconds / 60.0,
                accuracy.parse::<f64>()?,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(TimeSeries {
        name: name.to_owned(),
        points,
    })
}

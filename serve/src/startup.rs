//! Start-up: open the dataset, load or train the network, run one warm-up
//! inference, and log how long each phase took.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use data::Cifar10;
use model::{EpochReport, Network, TrainConfig};

use crate::app::{App, LoadedModel, Settings};
use crate::fetch;
use crate::UsageError;

/// Prepares the model on the calling thread inside the app's compute pool.
///
/// # Errors
/// A [`UsageError`] for a dataset or checkpoint that cannot be read, any
/// other error when training fails.
pub fn prepare(app: &App) -> anyhow::Result<LoadedModel> {
    app.pool.install(|| prepare_in_pool(&app.settings))
}

fn prepare_in_pool(settings: &Settings) -> anyhow::Result<LoadedModel> {
    let dataset = match &settings.data {
        Some(plan) => Some(open_dataset(
            &fetch::fetch(plan)?,
            settings.unpack_dir.as_deref(),
        )?),
        None => None,
    };

    let network = match &settings.model {
        Some(path) => load(path)?,
        None if settings.builtin_model => crate::builtin::load()?,
        None => {
            // `fetch::plan_data` rejects a run with neither a model nor a dataset.
            let dataset = dataset.as_ref().context("no dataset to train on")?;
            train_from_scratch(settings, dataset)?
        }
    };

    warm_up(&network)?;
    let class_names = class_names(dataset.as_ref());
    Ok(LoadedModel {
        network,
        dataset,
        class_names,
    })
}

/// Opens a dataset folder or archive and logs its size. An archive is
/// unpacked into `unpack_dir` when given, else next to itself.
///
/// # Errors
/// A [`UsageError`] naming the path.
pub fn open_dataset(path: &Path, unpack_dir: Option<&Path>) -> anyhow::Result<Cifar10> {
    let started = Instant::now();
    let opened = match unpack_dir {
        Some(dir) => Cifar10::open_with_cache(path, dir),
        None => Cifar10::open(path),
    };
    let dataset = opened.map_err(|error| {
        UsageError::new(format!(
            "failed to open the dataset {} (--data): {error}",
            path.display()
        ))
    })?;
    log::info!(
        "opened dataset {}: {} training and {} test records in {}",
        path.display(),
        dataset.train.len(),
        dataset.test.len(),
        format_duration(started.elapsed())
    );
    Ok(dataset)
}

fn load(path: &Path) -> anyhow::Result<Network> {
    let started = Instant::now();
    let network = model::load_checkpoint(path).map_err(|error| {
        UsageError::new(format!(
            "failed to load the model {}: {error}; pass a checkpoint written by `train --out` or `serve --save`",
            path.display()
        ))
    })?;
    log::info!(
        "loaded checkpoint {} in {}",
        path.display(),
        format_duration(started.elapsed())
    );
    Ok(network)
}

fn train_from_scratch(settings: &Settings, dataset: &Cifar10) -> anyhow::Result<Network> {
    let config = TrainConfig {
        epochs: settings.epochs,
        seed: settings.seed,
        ..TrainConfig::default()
    };
    let epochs = config.epochs;
    log::info!(
        "training from scratch: {epochs} {}, {} images, seed {}",
        plural(epochs, "epoch"),
        dataset.train.len(),
        config.seed
    );

    let started = Instant::now();
    let network = model::train(&config, dataset, &mut |report| {
        log::info!("{}", describe_epoch(report, epochs));
    })
    .context("training failed")?;
    log::info!(
        "trained {epochs} {} in {}",
        plural(epochs, "epoch"),
        format_duration(started.elapsed())
    );

    if let Some(path) = &settings.save {
        model::save_checkpoint(&network, path)
            .with_context(|| format!("failed to save the checkpoint {}", path.display()))?;
        log::info!("saved checkpoint {}", path.display());
    }
    Ok(network)
}

fn warm_up(network: &Network) -> anyhow::Result<()> {
    let started = Instant::now();
    let image = [0_u8; data::IMAGE_BYTES];
    network
        .predict(&image)
        .context("warm-up inference failed")?;
    log::info!(
        "warm-up inference in {}",
        format_duration(started.elapsed())
    );
    Ok(())
}

fn class_names(dataset: Option<&Cifar10>) -> Vec<String> {
    match dataset {
        Some(dataset) if dataset.class_names.len() == model::CLASSES => dataset.class_names.clone(),
        _ => model::CLASS_NAMES
            .iter()
            .map(|&name| name.to_owned())
            .collect(),
    }
}

/// Formats one line about a finished epoch, as `serve` logs it and `train` prints it.
pub fn describe_epoch(report: &EpochReport, epochs: usize) -> String {
    let test = report.test.as_ref().map_or_else(
        || "not evaluated".to_owned(),
        |evaluation| format!("{:.2}%", 100.0 * evaluation.accuracy()),
    );
    format!(
        "epoch {}/{epochs}: loss {:.4}, train accuracy {:.2}%, test accuracy {test}, {:.1} s, {:.0} images/s",
        report.epoch,
        report.loss,
        100.0 * report.train_accuracy,
        report.seconds,
        report.images_per_second
    )
}

/// Formats a phase duration in ms below one second and in s above.
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds < 1.0 {
        format!("{:.1} ms", seconds * 1e3)
    } else {
        format!("{seconds:.1} s")
    }
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        noun.to_owned()
    } else {
        format!("{noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_units() {
        assert_eq!(format_duration(Duration::from_micros(3200)), "3.2 ms");
        assert_eq!(format_duration(Duration::from_millis(81_040)), "81.0 s");
    }

    #[test]
    fn epoch_line() {
        let report = EpochReport {
            epoch: 2,
            loss: 1.23456,
            train_accuracy: 0.5,
            test: Some(model::Evaluation {
                correct: 3,
                total: 4,
                seconds: 0.1,
                per_class: [model::ClassCount::default(); model::CLASSES],
                confusion: [[0; model::CLASSES]; model::CLASSES],
            }),
            validation: None,
            lr: 0.01,
            steps_taken: 1563,
            total_steps: 2345,
            seconds: 12.34,
            images_per_second: 4051.9,
        };
        assert_eq!(
            describe_epoch(&report, 3),
            "epoch 2/3: loss 1.2346, train accuracy 50.00%, test accuracy 75.00%, 12.3 s, 4052 images/s"
        );
    }
}

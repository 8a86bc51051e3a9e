//! Progress of a training run: a progress bar on a terminal, one line per
//! epoch on stdout, the metrics file, and the training state after each
//! epoch.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use cifaas_serve::UsageError;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use model::{EpochReport, Evaluation, StepProgress, TrainConfig, TrainObserver, TrainState};

use crate::run_record::EpochRecord;

/// Receives the training loop's steps and epochs.
pub struct Observer {
    state_path: PathBuf,
    metrics_path: PathBuf,
    metrics: File,
    bar: Option<ProgressBar>,
    started: Instant,
    epochs: Vec<EpochRecord>,
    planned_epochs: usize,
    /// The first error writing the state or the metrics, reported at the end.
    error: Option<anyhow::Error>,
}

impl Observer {
    /// Creates the metrics file, and a progress bar when stderr is a
    /// terminal.
    ///
    /// # Errors
    /// A [`UsageError`] when the metrics file cannot be created.
    pub fn new(
        state_path: &Path,
        metrics_path: &Path,
        config: &TrainConfig,
    ) -> anyhow::Result<Self> {
        let metrics = File::create(metrics_path).map_err(|error| {
            UsageError::new(format!(
                "failed to create the metrics file {} (--metrics): {error}",
                metrics_path.display()
            ))
        })?;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let template = "{bar:30} {pos}/{len} steps {msg} [{elapsed_precise}, {eta} left]";
            bar.set_style(ProgressStyle::with_template(template).expect("valid template"));
            bar.enable_steady_tick(Duration::from_millis(500));
            bar
        });
        Ok(Self {
            state_path: state_path.to_path_buf(),
            metrics_path: metrics_path.to_path_buf(),
            metrics,
            bar,
            started: Instant::now(),
            epochs: Vec::new(),
            planned_epochs: config.epochs,
            error: None,
        })
    }

    /// Ends the progress bar and returns the epochs' records.
    ///
    /// # Errors
    /// The first failure to write the training state or the metrics.
    pub fn finish(self) -> anyhow::Result<Vec<EpochRecord>> {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        match self.error {
            Some(error) => Err(error),
            None => Ok(self.epochs),
        }
    }

    fn write_metrics(&mut self, record: &EpochRecord) -> anyhow::Result<()> {
        let line = serde_json::to_string(record).context("failed to encode the metrics")?;
        writeln!(self.metrics, "{line}")
            .and_then(|()| self.metrics.flush())
            .with_context(|| {
                format!(
                    "failed to write the metrics file {}",
                    self.metrics_path.display()
                )
            })
    }
}

impl TrainObserver for Observer {
    fn on_step(&mut self, progress: &StepProgress) {
        let Some(bar) = &self.bar else {
            return;
        };
        bar.set_length(progress.total_steps);
        bar.set_position(progress.steps_taken);
        bar.set_message(format!(
            "epoch {}: loss {:.4}, accuracy {:.2}%, {:.0} images/s",
            progress.epoch,
            progress.loss,
            100.0 * progress.train_accuracy,
            progress.images as f64 / progress.epoch_seconds.max(1e-9)
        ));
    }

    fn on_epoch(&mut self, report: &EpochReport, state: &TrainState) {
        let steps_per_epoch = report.steps_taken.div_ceil(report.epoch as u64).max(1);
        let planned = report.total_steps.div_ceil(steps_per_epoch) as usize;
        let epochs = if report.total_steps == u64::MAX {
            self.planned_epochs
        } else {
            planned.max(report.epoch)
        };
        let line = describe_epoch(report, epochs);
        match &self.bar {
            Some(bar) => bar.println(&line),
            None => say!("{line}"),
        }
        let record = EpochRecord::new(report, self.started.elapsed().as_secs_f64());
        if let Err(error) = self.write_metrics(&record) {
            self.error.get_or_insert(error);
        }
        self.epochs.push(record);
        if let Err(error) = model::save_train_state(state, &self.state_path) {
            let message = format!(
                "failed to write the training state {} (--state): {error}",
                self.state_path.display()
            );
            self.error.get_or_insert(UsageError::new(message).into());
        }
    }
}

/// Formats the line printed after an epoch.
pub fn describe_epoch(report: &EpochReport, epochs: usize) -> String {
    let percent = |evaluation: &Evaluation| format!("{:.2}%", 100.0 * evaluation.accuracy());
    let mut line = format!(
        "epoch {}/{epochs}: loss {:.4}, train accuracy {:.2}%",
        report.epoch,
        report.loss,
        100.0 * report.train_accuracy
    );
    if let Some(validation) = &report.validation {
        line += &format!(", validation accuracy {}", percent(validation));
    }
    if let Some(test) = &report.test {
        line += &format!(", test accuracy {}", percent(test));
    }
    line += &format!(
        ", lr {:.4}, {:.1} s, {:.0} images/s",
        report.lr, report.seconds, report.images_per_second
    );
    line
}

//! The record a training run writes next to its checkpoint: options, code
//! version, machine, results per epoch, final test accuracy, and the
//! command that repeats the run.

use std::path::{Path, PathBuf};

use model::{EpochReport, Evaluation, TrainConfig, CLASSES};
use serde::Serialize;

/// Git commit the binary was built from, or `unknown` when git was missing.
pub const GIT_COMMIT: &str = env!("CIFAAS_GIT_COMMIT");

/// Whether the work tree had uncommitted changes at build time: `clean`,
/// `dirty` or `unknown`.
pub const GIT_TREE: &str = env!("CIFAAS_GIT_TREE");

/// The whole run record, written as pretty JSON to `OUT.run.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// The recipe the options started from.
    pub recipe: String,
    /// The options the run trained with, after every override.
    pub config: ConfigRecord,
    /// The seed of the run (also in `config`).
    pub seed: u64,
    /// Threads of the compute pool.
    pub threads: usize,
    /// The code the binary was built from.
    pub code: CodeVersion,
    /// The CPU model from `/proc/cpuinfo`, or `unknown`.
    pub cpu: String,
    /// UTC start time, RFC 3339.
    pub started_at: String,
    /// The command line as typed.
    pub command_line: Vec<String>,
    /// A command that trains the same checkpoint bit for bit from the same
    /// dataset, with every option spelled out.
    pub reproduce: String,
    /// Results of each epoch.
    pub epochs: Vec<EpochRecord>,
    /// Wall-clock seconds from the first step to the last.
    pub training_seconds: f64,
    /// Test-set result at the end of the run.
    pub test: Option<TestRecord>,
}

/// The training options of a run.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigRecord {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub dropout: f32,
    pub seed: u64,
    pub schedule: String,
    pub warmup_epochs: f32,
    pub label_smoothing: f32,
    pub augment: bool,
    pub val_split: usize,
    pub steps: Option<u64>,
    pub time_budget_seconds: Option<f64>,
    pub test_each_epoch: bool,
}

impl ConfigRecord {
    /// Copies the options of `config`.
    pub fn new(config: &TrainConfig, time_budget: Option<f64>) -> Self {
        Self {
            epochs: config.epochs,
            batch_size: config.batch_size,
            lr: config.lr,
            momentum: config.momentum,
            weight_decay: config.weight_decay,
            dropout: config.dropout,
            seed: config.seed,
            schedule: config.schedule.to_string(),
            warmup_epochs: config.warmup_epochs,
            label_smoothing: config.label_smoothing,
            augment: config.augment,
            val_split: config.validation,
            steps: config.max_steps,
            time_budget_seconds: time_budget,
            test_each_epoch: config.evaluate_each_epoch,
        }
    }
}

/// The commit and state of the work tree at build time.
#[derive(Debug, Clone, Serialize)]
pub struct CodeVersion {
    pub commit: String,
    pub tree: String,
    pub version: String,
}

impl CodeVersion {
    /// The version compiled into this binary.
    pub fn current() -> Self {
        Self {
            commit: GIT_COMMIT.to_owned(),
            tree: GIT_TREE.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// The results of one epoch, also the line of the metrics file.
#[derive(Debug, Clone, Serialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub loss: f64,
    pub train_accuracy: f64,
    pub validation_accuracy: Option<f64>,
    pub test_accuracy: Option<f64>,
    pub lr: f32,
    pub steps: u64,
    pub total_steps: u64,
    pub seconds: f64,
    /// Seconds since the run's first step, evaluations included.
    pub elapsed_seconds: f64,
    pub images_per_second: f64,
}

impl EpochRecord {
    /// Copies `report`; `elapsed` is the time since the run began.
    pub fn new(report: &EpochReport, elapsed: f64) -> Self {
        Self {
            epoch: report.epoch,
            loss: report.loss,
            train_accuracy: report.train_accuracy,
            validation_accuracy: report.validation.as_ref().map(Evaluation::accuracy),
            test_accuracy: report.test.as_ref().map(Evaluation::accuracy),
            lr: report.lr,
            steps: report.steps_taken,
            total_steps: report.total_steps,
            seconds: report.seconds,
            elapsed_seconds: elapsed,
            images_per_second: report.images_per_second,
        }
    }
}

/// The test-set evaluation at the end of a run.
#[derive(Debug, Clone, Serialize)]
pub struct TestRecord {
    pub accuracy: f64,
    pub correct: usize,
    pub total: usize,
    pub per_class: Vec<ClassRecord>,
    /// `confusion[label][predicted]`.
    pub confusion: Vec<Vec<usize>>,
}

/// The test result of one class.
#[derive(Debug, Clone, Serialize)]
pub struct ClassRecord {
    pub class: String,
    pub correct: usize,
    pub total: usize,
    pub accuracy: f64,
}

impl TestRecord {
    /// Copies `evaluation`, naming each class from `class_names`.
    pub fn new(evaluation: &Evaluation, class_names: &[String]) -> Self {
        let per_class = (0..CLASSES)
            .map(|class| {
                let count = evaluation.per_class[class];
                ClassRecord {
                    class: class_names.get(class).cloned().unwrap_or_default(),
                    correct: count.correct,
                    total: count.total,
                    accuracy: count.correct as f64 / count.total.max(1) as f64,
                }
            })
            .collect();
        Self {
            accuracy: evaluation.accuracy(),
            correct: evaluation.correct,
            total: evaluation.total,
            per_class,
            confusion: evaluation
                .confusion
                .iter()
                .map(|row| row.to_vec())
                .collect(),
        }
    }
}

/// Returns `path` with `suffix` appended to its file name.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Returns the `train` command that repeats a run of `config` with every
/// option spelled out. A time budget becomes the `--steps` it chose, so the
/// command repeats the run bit for bit however fast the machine is.
pub fn reproduce_command(config: &TrainConfig, data: &Path, out: &Path, threads: usize) -> String {
    let mut parts = vec![
        "train".to_owned(),
        format!("--data {}", shell_quote(&data.display().to_string())),
        format!("--out {}", shell_quote(&out.display().to_string())),
        format!("--threads {threads}"),
        format!("--seed {}", config.seed),
        format!("--epochs {}", config.epochs),
        format!("--batch-size {}", config.batch_size),
        format!("--lr {}", config.lr),
        format!("--momentum {}", config.momentum),
        format!("--weight-decay {}", config.weight_decay),
        format!("--dropout {}", config.dropout),
        format!("--schedule {}", config.schedule),
        format!("--warmup-epochs {}", config.warmup_epochs),
        format!("--label-smoothing {}", config.label_smoothing),
        if config.augment {
            "--augment"
        } else {
            "--no-augment"
        }
        .to_owned(),
        format!("--val-split {}", config.validation),
    ];
    if let Some(steps) = config.max_steps {
        parts.push(format!("--steps {steps}"));
    }
    if config.evaluate_each_epoch {
        parts.push("--test-each-epoch".to_owned());
    }
    parts.join(" ")
}

/// Quotes `text` for a POSIX shell when it holds anything but safe characters.
fn shell_quote(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:+,".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Returns the model name of the first processor in `/proc/cpuinfo`.
pub fn cpu_model() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    cpuinfo
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == "model name").then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Writes `record` as pretty JSON to `path`.
///
/// # Errors
/// When the file cannot be written.
pub fn write(record: &RunRecord, path: &Path) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(record)?;
    text.push('\n');
    std::fs::write(path, text).map_err(|error| {
        anyhow::anyhow!("failed to write the run record {}: {error}", path.display())
    })
}

/// Returns the current UTC time as RFC 3339, to the second.
pub fn utc_now() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian date, by Howard
/// Hinnant's `civil_from_days` algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_791), (2026, 12, 4));
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("/tmp/a.ckpt"), "/tmp/a.ckpt");
        assert_eq!(shell_quote("my file"), "'my file'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}

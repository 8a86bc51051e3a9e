//! `train`: trains the cifaas network from scratch and writes a checkpoint.
#![forbid(unsafe_code)]

/// Writes one line to standard output as `println!` does, but ignores a
/// failed write, such as a pipe whose reader has exited (`train | head`):
/// the run goes on and still saves its checkpoint and records.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod charts;
mod progress;
mod report;
mod run_record;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use cifaas_serve::cli::{parse_epochs, parse_threads, DownloadArgs};
use cifaas_serve::fetch::{self, Need};
use cifaas_serve::plural;
use cifaas_serve::recipe::Recipe;
use cifaas_serve::startup::{format_duration, open_dataset};
use cifaas_serve::{exit_code_for, threads, UsageError};
use clap::Parser;
use model::{Schedule, TrainConfig};
use run_record::{CodeVersion, ConfigRecord, RunRecord, TestRecord};

/// Options of the `train` binary.
#[derive(Debug, Parser)]
#[command(
    name = "train",
    version,
    about = "Train the cifaas CIFAR-10 network and write a checkpoint",
    args_override_self = true
)]
struct Args {
    /// CIFAR-10 binary folder or .tar.gz archive [default: the default data folder, $CIFAAS_DATA_DIR, $XDG_DATA_HOME/cifaas or ~/.local/share/cifaas].
    #[arg(long, short = 'd', value_name = "PATH")]
    data: Option<PathBuf>,

    /// Dataset download options.
    #[command(flatten)]
    download: DownloadArgs,

    /// Folder to unpack a .tar.gz --data archive into [default: next to the archive, or the per-user cache folder when that is read-only].
    #[arg(long, value_name = "DIR")]
    unpack_dir: Option<PathBuf>,

    /// Preset of training options, which the options below override: `study` (Nesterov 0.9, constant learning rate 0.01, batch 64, dropout 0.25, no augmentation) or `fast` (accuracy per minute: augmentation, one-cycle schedule, weight decay, label smoothing).
    #[arg(long, value_name = "NAME", default_value = "study")]
    recipe: Recipe,

    /// Passes over the training split [default: 1 for study, 10 for fast].
    #[arg(long, short = 'e', value_name = "N", value_parser = parse_epochs, allow_negative_numbers = true)]
    epochs: Option<usize>,

    /// Stop after N SGD steps, and fit the schedule to them, instead of after --epochs.
    #[arg(long, value_name = "N", value_parser = parse_steps, conflicts_with = "time_budget")]
    steps: Option<u64>,

    /// Wall-clock training time after which the run stops, such as 300s or 15m. The speed measured during the warm-up sets the step count, and the schedule ends with it.
    #[arg(long, value_name = "DURATION", value_parser = parse_budget)]
    time_budget: Option<Duration>,

    /// Threads of the compute pool [default: the CPUs this process may use].
    #[arg(long, short = 't', value_name = "N", value_parser = parse_threads, allow_negative_numbers = true)]
    threads: Option<usize>,

    /// Training state to continue from, as written after each epoch (see --state).
    #[arg(long, value_name = "FILE")]
    resume: Option<PathBuf>,

    /// File the training state is written to after each epoch, for --resume [default: the --out path with `.state` appended].
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,

    /// File to write the checkpoint to; the run record goes to FILE.run.json.
    #[arg(long, short = 'o', value_name = "FILE")]
    out: PathBuf,

    /// File the per-epoch metrics are written to, one JSON object a line [default: the --out path with `.metrics.jsonl` appended].
    #[arg(long, value_name = "FILE")]
    metrics: Option<PathBuf>,

    /// Seed of the initial parameters, the shuffle, the dropout masks and the augmentation.
    #[arg(long, value_name = "SEED", default_value_t = 0)]
    seed: u64,

    /// Images per SGD step [default: 64].
    #[arg(long, value_name = "N", value_parser = parse_batch_size)]
    batch_size: Option<usize>,

    /// Peak SGD learning rate, greater than 0 [default: 0.01 for study, 0.02 for fast].
    #[arg(long, value_name = "RATE", value_parser = parse_lr)]
    lr: Option<f32>,

    /// Learning-rate schedule: constant, cosine or onecycle [default: constant for study, onecycle for fast].
    #[arg(long, value_name = "NAME")]
    schedule: Option<Schedule>,

    /// Epochs of linear learning-rate warm-up; fractions count [default: 0 for study, 0.3 for fast].
    #[arg(long, value_name = "EPOCHS", value_parser = parse_non_negative)]
    warmup_epochs: Option<f32>,

    /// Nesterov momentum, in [0, 1) [default: 0.9].
    #[arg(long, value_name = "M", value_parser = parse_unit_interval)]
    momentum: Option<f32>,

    /// L2 weight decay added to the gradient, >= 0 [default: 0 for study, 5e-4 for fast].
    #[arg(long, value_name = "DECAY", value_parser = parse_non_negative)]
    weight_decay: Option<f32>,

    /// Dropout probability, in [0, 1) [default: 0.25 for study, 0.1 for fast].
    #[arg(long, value_name = "P", value_parser = parse_unit_interval)]
    dropout: Option<f32>,

    /// Label smoothing of the cross-entropy, in [0, 1) [default: 0 for study, 0.1 for fast].
    #[arg(long, value_name = "EPSILON", value_parser = parse_unit_interval)]
    label_smoothing: Option<f32>,

    /// Randomly crop (4 pixels of black padding) and flip each training image [default: off for study, on for fast].
    #[arg(long, overrides_with = "no_augment")]
    augment: bool,

    /// Turn augmentation off.
    #[arg(long, overrides_with = "augment")]
    no_augment: bool,

    /// Training images held out as a validation set, evaluated after each epoch; tune options on it, never on the test set.
    #[arg(long, value_name = "N", default_value_t = 0)]
    val_split: usize,

    /// Also evaluate the test set after each epoch, as the study's schedule reported it.
    #[arg(long)]
    test_each_epoch: bool,
}

fn parse_batch_size(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) | Err(_) => Err("expected a positive integer number of images per step".into()),
        Ok(size) => Ok(size),
    }
}

fn parse_lr(value: &str) -> Result<f32, String> {
    match value.parse::<f32>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err("expected a finite learning rate greater than 0, such as 0.01".into()),
    }
}

fn parse_non_negative(value: &str) -> Result<f32, String> {
    match value.parse::<f32>() {
        Ok(number) if number.is_finite() && number >= 0.0 => Ok(number),
        _ => Err("expected a finite number of 0 or more".into()),
    }
}

fn parse_steps(value: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(0) | Err(_) => Err("expected a positive integer number of SGD steps".into()),
        Ok(steps) => Ok(steps),
    }
}

fn parse_budget(value: &str) -> Result<Duration, String> {
    match cifaas_serve::cli::parse_duration(value) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => Err("the time budget must be above 0; pass a duration such as 300s or 15m".into()),
        Err(error) => Err(error),
    }
}

fn parse_unit_interval(value: &str) -> Result<f32, String> {
    match value.parse::<f32>() {
        Ok(number) if (0.0..1.0).contains(&number) => Ok(number),
        _ => Err("expected a number from 0 up to but not including 1".into()),
    }
}

fn main() -> ExitCode {
    if let Err(code) = cifaas_serve::cpu::check_cpu("train") {
        return code;
    }
    let args = Args::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", cifaas_serve::describe_error(&error));
            exit_code_for(&error)
        }
    }
}

/// Returns the training options of `args`: the recipe's, overridden by
/// each option given.
fn resolve_config(args: &Args) -> TrainConfig {
    let recipe = args.recipe.config();
    let augment = match (args.augment, args.no_augment) {
        (true, _) => true,
        (_, true) => false,
        _ => recipe.augment,
    };
    TrainConfig {
        epochs: args.epochs.unwrap_or(recipe.epochs),
        batch_size: args.batch_size.unwrap_or(recipe.batch_size),
        lr: args.lr.unwrap_or(recipe.lr),
        momentum: args.momentum.unwrap_or(recipe.momentum),
        weight_decay: args.weight_decay.unwrap_or(recipe.weight_decay),
        dropout: args.dropout.unwrap_or(recipe.dropout),
        seed: args.seed,
        evaluate_each_epoch: args.test_each_epoch,
        schedule: args.schedule.unwrap_or(recipe.schedule),
        warmup_epochs: args.warmup_epochs.unwrap_or(recipe.warmup_epochs),
        label_smoothing: args.label_smoothing.unwrap_or(recipe.label_smoothing),
        augment,
        validation: args.val_split,
        max_steps: args.steps,
        time_budget: args.time_budget.map(|budget| budget.as_secs_f64()),
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    cifaas_serve::check_writable(&args.out, "--out")?;
    cifaas_serve::check_writable(&state_path(args), "--state")?;
    cifaas_serve::check_writable(&metrics_path(args), "--metrics")?;
    let threads = threads::resolve_threads(args.threads);
    let pool = threads::build_pool(threads)?;
    let config = resolve_config(args);
    pool.install(|| train(args, &config, threads))
}

fn train(args: &Args, config: &TrainConfig, threads: usize) -> anyhow::Result<()> {
    let plan = fetch::plan_data(
        args.data.as_deref(),
        args.download.download,
        &args.download.source(),
        Need::Train,
    )?
    .context("no dataset to train on")?;
    let data_path = fetch::fetch(&plan)?;
    let dataset = open_dataset(&data_path, args.unpack_dir.as_deref())?;
    let length = match (config.time_budget, config.max_steps) {
        (Some(seconds), _) => format!(
            "a time budget of {}",
            format_duration(Duration::from_secs_f64(seconds))
        ),
        (None, Some(steps)) => format!("{steps} steps"),
        (None, None) => plural(config.epochs, "epoch"),
    };
    say!(
        "training on {} images for {length} with {}, recipe {}",
        dataset.train.len() - config.validation.min(dataset.train.len()),
        plural(threads, "thread"),
        args.recipe
    );
    if config.validation > 0 {
        say!(
            "holding out {} training images for validation",
            config.validation
        );
    }

    let resume = match &args.resume {
        Some(path) => {
            let state = model::load_train_state(path).map_err(|error| {
                UsageError::new(format!(
                    "failed to load the training state {} (--resume): {error}",
                    path.display()
                ))
            })?;
            say!(
                "resuming after epoch {} from {}",
                state.epochs_done,
                path.display()
            );
            Some(state)
        }
        None => None,
    };
    let state_file = state_path(args);
    let mut observer = progress::Observer::new(&state_file, &metrics_path(args), config)?;
    let started = Instant::now();
    let started_at = run_record::utc_now();
    let (network, ended) =
        model::train_run(config, &dataset, resume, &mut observer).map_err(|error| match error {
            model::ModelError::Config(message) => anyhow::Error::new(UsageError::new(format!(
                "invalid training option: {message}"
            ))),
            other => anyhow::Error::new(other).context("training failed"),
        })?;
    let epochs = observer.finish()?;
    let training_seconds = started.elapsed().as_secs_f64();
    say!("trained in {}", format_duration(started.elapsed()));

    let evaluation = model::evaluate(&network, &dataset.test, 256).context("evaluation failed")?;
    let class_names = dataset.class_names.clone();
    say!(
        "test accuracy {:.2}% ({} of {})",
        100.0 * evaluation.accuracy(),
        evaluation.correct,
        evaluation.total
    );
    say!(
        "{}",
        report::per_class_table(&evaluation, &class_names).trim_end()
    );

    model::save_checkpoint(&network, &args.out).map_err(|error| {
        UsageError::new(format!(
            "failed to write the checkpoint {}: {error}; pass a writable path with --out",
            args.out.display()
        ))
    })?;
    say!("saved checkpoint {}", args.out.display());
    say!("saved training state {}", state_file.display());

    let record = RunRecord {
        recipe: args.recipe.to_string(),
        config: ConfigRecord::new(&ended, config.time_budget),
        seed: config.seed,
        threads,
        code: CodeVersion::current(),
        cpu: run_record::cpu_model(),
        started_at,
        command_line: std::env::args().collect(),
        reproduce: run_record::reproduce_command(&ended, &data_path, &args.out, threads),
        epochs,
        training_seconds,
        test: Some(TestRecord::new(&evaluation, &class_names)),
    };
    let record_path = run_record::sibling(&args.out, ".run.json");
    run_record::write(&record, &record_path)?;
    say!("saved run record {}", record_path.display());
    for path in charts::draw(&record, &args.out)? {
        say!("saved chart {}", path.display());
    }
    Ok(())
}

/// Returns the --state path, or the --out path with `.state` appended.
fn state_path(args: &Args) -> PathBuf {
    args.state
        .clone()
        .unwrap_or_else(|| run_record::sibling(&args.out, ".state"))
}

/// Returns the --metrics path, or the --out path with `.metrics.jsonl` appended.
fn metrics_path(args: &Args) -> PathBuf {
    args.metrics
        .clone()
        .unwrap_or_else(|| run_record::sibling(&args.out, ".metrics.jsonl"))
}

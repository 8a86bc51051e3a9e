//! `train`: trains the cifaas network from scratch and writes a checkpoint.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use cifaas_serve::cli::{parse_epochs, parse_threads, DownloadArgs};
use cifaas_serve::fetch::{self, Need};
use cifaas_serve::plural;
use cifaas_serve::startup::{describe_epoch, format_duration, open_dataset};
use cifaas_serve::{exit_code_for, threads, UsageError};
use clap::Parser;
use model::TrainConfig;

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

    /// Passes over the training split.
    #[arg(long, short = 'e', value_name = "N", default_value_t = 1, value_parser = parse_epochs, allow_negative_numbers = true)]
    epochs: usize,

    /// Threads of the compute pool [default: the CPUs this process may use].
    #[arg(long, short = 't', value_name = "N", value_parser = parse_threads, allow_negative_numbers = true)]
    threads: Option<usize>,

    /// Training state to continue from, as written after each epoch (see --state).
    #[arg(long, value_name = "FILE")]
    resume: Option<PathBuf>,

    /// File the training state is written to after each epoch, for --resume [default: the --out path with `.state` appended].
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,

    /// File to write the checkpoint to.
    #[arg(long, short = 'o', value_name = "FILE")]
    out: PathBuf,

    /// Seed of the initial parameters, the shuffle and the dropout masks.
    #[arg(long, value_name = "SEED", default_value_t = 0)]
    seed: u64,

    /// Images per SGD step.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = parse_batch_size)]
    batch_size: usize,

    /// SGD learning rate, greater than 0.
    #[arg(long, value_name = "RATE", default_value_t = 0.01, value_parser = parse_lr)]
    lr: f32,

    /// Nesterov momentum, in [0, 1).
    #[arg(long, value_name = "M", default_value_t = 0.9, value_parser = parse_unit_interval)]
    momentum: f32,

    /// Dropout probability, in [0, 1).
    #[arg(long, value_name = "P", default_value_t = 0.25, value_parser = parse_unit_interval)]
    dropout: f32,
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

fn run(args: &Args) -> anyhow::Result<()> {
    cifaas_serve::check_writable(&args.out, "--out")?;
    cifaas_serve::check_writable(&state_path(args), "--state")?;
    let threads = threads::resolve_threads(args.threads);
    let pool = threads::build_pool(threads)?;
    let config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        momentum: args.momentum,
        dropout: args.dropout,
        seed: args.seed,
        ..TrainConfig::default()
    };
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
    let dataset = open_dataset(&fetch::fetch(&plan)?, args.unpack_dir.as_deref())?;
    println!(
        "training on {} images for {} with {}",
        dataset.train.len(),
        plural(config.epochs, "epoch"),
        plural(threads, "thread")
    );

    let resume = match &args.resume {
        Some(path) => {
            let state = model::load_train_state(path).map_err(|error| {
                UsageError::new(format!(
                    "failed to load the training state {} (--resume): {error}",
                    path.display()
                ))
            })?;
            println!(
                "resuming after epoch {} from {}",
                state.epochs_done,
                path.display()
            );
            Some(state)
        }
        None => None,
    };
    let state_file = state_path(args);
    let mut save_error = None;
    let started = Instant::now();
    let network = model::train_resumable(config, &dataset, resume, &mut |report, state| {
        println!("{}", describe_epoch(report, config.epochs));
        if let Err(error) = model::save_train_state(state, &state_file) {
            save_error.get_or_insert(error);
        }
    })
    .map_err(|error| match error {
        model::ModelError::Config(message) => anyhow::Error::new(UsageError::new(format!(
            "invalid training option: {message}"
        ))),
        other => anyhow::Error::new(other).context("training failed"),
    })?;
    if let Some(error) = save_error {
        return Err(UsageError::new(format!(
            "failed to write the training state {} (--state): {error}",
            state_file.display()
        ))
        .into());
    }
    println!("trained in {}", format_duration(started.elapsed()));

    let evaluation = model::evaluate(&network, &dataset.test, 256).context("evaluation failed")?;
    println!(
        "test accuracy {:.2}% ({} of {})",
        100.0 * evaluation.accuracy(),
        evaluation.correct,
        evaluation.total
    );

    model::save_checkpoint(&network, &args.out).map_err(|error| {
        UsageError::new(format!(
            "failed to write the checkpoint {}: {error}; pass a writable path with --out",
            args.out.display()
        ))
    })?;
    println!("saved checkpoint {}", args.out.display());
    println!("saved training state {}", state_file.display());
    Ok(())
}

/// Returns the --state path, or the --out path with `.state` appended.
fn state_path(args: &Args) -> PathBuf {
    args.state.clone().unwrap_or_else(|| {
        let mut path = args.out.clone().into_os_string();
        path.push(".state");
        PathBuf::from(path)
    })
}

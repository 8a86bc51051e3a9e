//! `cifaas-perf`: measures cifaas training and inference on the real
//! CIFAR-10 files and prints one JSON object per line, for the PyTorch
//! comparison in `benches/peer/`.
//!
//! ```sh
//! cifaas-perf locate --data cifar-10-binary.tar.gz
//! cifaas-perf train --data cifar-10-binary.tar.gz --steps 100 --threads 1
//! cifaas-perf infer --data cifar-10-binary.tar.gz --threads 2
//! ```

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{ensure, Context};
use cifaas_benches::{peak_rss_kib, pool, train_config, BATCH};
use clap::{Args, Parser, Subcommand};
use data::{shuffled_indices, ChannelStats, Cifar10};
use model::{evaluate, Network, Trainer};
use serde_json::json;

/// Options of the `cifaas-perf` binary.
#[derive(Debug, Parser)]
#[command(
    name = "cifaas-perf",
    about = "Measure cifaas training and inference; prints JSON lines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the folder of the unpacked .bin files.
    Locate(DataArgs),
    /// Time training steps of batch 64 on the training split.
    Train {
        #[command(flatten)]
        data: DataArgs,
        /// Timed steps.
        #[arg(long, value_name = "N", default_value_t = 100)]
        steps: usize,
        /// Untimed steps before the timed ones.
        #[arg(long, value_name = "N", default_value_t = 10)]
        warmup: usize,
        /// Threads of the rayon pool.
        #[arg(long, value_name = "N", default_value_t = 1)]
        threads: usize,
    },
    /// Time batch-1 predictions and evaluations of the test split.
    Infer {
        #[command(flatten)]
        data: DataArgs,
        /// Batch-1 predictions to time, one test image each.
        #[arg(long, value_name = "N", default_value_t = 200)]
        latency_runs: usize,
        /// Batch sizes at which to evaluate the whole test split.
        #[arg(
            long,
            value_name = "N",
            value_delimiter = ',',
            default_value = "100,1000"
        )]
        eval_batches: Vec<usize>,
        /// Threads of the rayon pool.
        #[arg(long, value_name = "N", default_value_t = 1)]
        threads: usize,
    },
}

#[derive(Debug, Args)]
struct DataArgs {
    /// CIFAR-10 binary folder or .tar.gz archive.
    #[arg(long, value_name = "PATH")]
    data: PathBuf,
    /// Folder to unpack a .tar.gz archive into [default: next to the
    /// archive, or the per-user cache folder when that is read-only].
    #[arg(long, value_name = "DIR")]
    unpack_dir: Option<PathBuf>,
}

impl DataArgs {
    fn open(&self) -> anyhow::Result<Cifar10> {
        let opened = match &self.unpack_dir {
            Some(cache) => Cifar10::open_with_cache(&self.data, cache),
            None => Cifar10::open(&self.data),
        };
        opened.with_context(|| format!("cannot open the dataset {}", self.data.display()))
    }
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Locate(data) => {
            let dataset = data.open()?;
            println!("{}", json!({"folder": dataset.folder}));
        }
        Command::Train {
            data,
            steps,
            warmup,
            threads,
        } => measure_training(&data.open()?, steps, warmup, threads)?,
        Command::Infer {
            data,
            latency_runs,
            eval_batches,
            threads,
        } => measure_inference(&data.open()?, latency_runs, &eval_batches, threads)?,
    }
    Ok(())
}

/// Prints one line: images per second over `steps` steps of batch 64
/// after `warmup` untimed ones, in the order of the first epoch's shuffle.
fn measure_training(
    dataset: &Cifar10,
    steps: usize,
    warmup: usize,
    threads: usize,
) -> anyhow::Result<()> {
    ensure!(steps > 0, "--steps is 0; time at least 1 step");
    ensure!(threads > 0, "--threads is 0; pass at least 1");
    let train = &dataset.train;
    let config = train_config();
    let order = shuffled_indices(train.len(), config.seed, 1);
    let batches: Vec<&[usize]> = order.chunks_exact(BATCH).collect();
    ensure!(
        batches.len() >= warmup + steps,
        "the training split has {} batches of {BATCH}; ask for at most that many steps",
        batches.len()
    );

    let mut network = Network::new(config.seed, config.dropout, ChannelStats::compute(train))?;
    let mut trainer = Trainer::new(&config, &network)?;
    let (seconds, loss) = pool(threads).install(|| -> anyhow::Result<(f64, f32)> {
        for batch in &batches[..warmup] {
            trainer.step(&mut network, train, batch)?;
        }
        let start = Instant::now();
        let mut loss = 0.0;
        for batch in &batches[warmup..warmup + steps] {
            loss = trainer.step(&mut network, train, batch)?.loss;
        }
        Ok((start.elapsed().as_secs_f64(), loss))
    })?;

    let line = json!({
        "side": "cifaas",
        "measure": "train",
        "threads": threads,
        "steps": steps,
        "batch": BATCH,
        "seconds": seconds,
        "images_per_second": (steps * BATCH) as f64 / seconds,
        "last_loss": loss,
        "peak_rss_kib": peak_rss_kib(),
    });
    println!("{line}");
    Ok(())
}

/// Prints one line per measurement: the median batch-1 latency of
/// `Network::predict` over `latency_runs` test images, and one line per
/// evaluation batch size with the seconds `model::evaluate` took on the
/// whole test split. The network has its seeded initial parameters, which
/// cost the same time as trained ones.
fn measure_inference(
    dataset: &Cifar10,
    latency_runs: usize,
    eval_batches: &[usize],
    threads: usize,
) -> anyhow::Result<()> {
    ensure!(
        latency_runs > 0,
        "--latency-runs is 0; time at least 1 prediction"
    );
    ensure!(threads > 0, "--threads is 0; pass at least 1");
    let test = &dataset.test;
    ensure!(!test.is_empty(), "the test split has no records");
    let network = Network::new(0, 0.25, ChannelStats::compute(&dataset.train))?;
    let pool = pool(threads);

    let mut latencies = pool.install(|| -> anyhow::Result<Vec<f64>> {
        // One untimed prediction pages in the code and the first image.
        network.predict(test.image(0))?;
        let mut latencies = Vec::with_capacity(latency_runs);
        for run in 0..latency_runs {
            let image = test.image(run % test.len());
            let start = Instant::now();
            network.predict(image)?;
            latencies.push(start.elapsed().as_secs_f64());
        }
        Ok(latencies)
    })?;
    latencies.sort_by(f64::total_cmp);
    let line = json!({
        "side": "cifaas",
        "measure": "latency_batch1",
        "threads": threads,
        "runs": latency_runs,
        "median_ms": 1e3 * latencies[latencies.len() / 2],
        "peak_rss_kib": peak_rss_kib(),
    });
    println!("{line}");

    for &batch in eval_batches {
        ensure!(
            batch > 0,
            "an --eval-batches entry is 0; pass sizes of at least 1"
        );
        let evaluation = pool.install(|| evaluate(&network, test, batch))?;
        let line = json!({
            "side": "cifaas",
            "measure": "evaluate",
            "threads": threads,
            "batch": batch,
            "images": evaluation.total,
            "seconds": evaluation.seconds,
            "accuracy": evaluation.accuracy(),
            "peak_rss_kib": peak_rss_kib(),
        });
        println!("{line}");
    }
    Ok(())
}

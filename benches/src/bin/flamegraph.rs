//! `flamegraph`: profiles training steps with pprof and writes a flame
//! graph SVG.
//!
//! ```sh
//! cargo run --release -p cifaas-benches --bin flamegraph -- --out target/flamegraph.svg
//! ```

use std::fs::File;
use std::path::PathBuf;

use anyhow::{ensure, Context};
use cifaas_benches::{pool, synthetic_dataset, train_config, BATCH};
use clap::Parser;
use data::{shuffled_indices, ChannelStats, Cifar10};
use model::{Network, Trainer};

/// Options of the `flamegraph` binary.
#[derive(Debug, Parser)]
#[command(
    name = "flamegraph",
    about = "Profile cifaas training steps and write a flame graph SVG"
)]
struct Args {
    /// SVG file to write.
    #[arg(long, value_name = "FILE", default_value = "target/flamegraph.svg")]
    out: PathBuf,

    /// Training steps of batch 64 to profile, after 3 unprofiled warm-up steps.
    #[arg(long, value_name = "N", default_value_t = 40)]
    steps: usize,

    /// Threads of the rayon pool.
    #[arg(long, value_name = "N", default_value_t = 2)]
    threads: usize,

    /// Samples per second of CPU time.
    #[arg(long, value_name = "HZ", default_value_t = 999)]
    frequency: i32,

    /// CIFAR-10 binary folder or .tar.gz archive [default: a synthetic set
    /// of 640 training images in a temporary folder].
    #[arg(long, value_name = "PATH")]
    data: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.steps > 0, "--steps is 0; profile at least 1 step");
    ensure!(args.threads > 0, "--threads is 0; pass at least 1");

    // Keeps the temporary folder of a synthetic set alive until the end.
    let synthetic;
    let dataset: &Cifar10 = match &args.data {
        Some(path) => {
            &Cifar10::open(path).with_context(|| format!("cannot open {}", path.display()))?
        }
        None => {
            synthetic = synthetic_dataset(128);
            &synthetic.dataset
        }
    };
    let train = &dataset.train;
    ensure!(
        train.len() >= BATCH,
        "the training split has fewer than {BATCH} images"
    );

    let config = train_config();
    let mut network = Network::new(config.seed, config.dropout, ChannelStats::compute(train))?;
    let mut trainer = Trainer::new(&config, &network)?;
    let order = shuffled_indices(train.len(), config.seed, 1);
    let batches: Vec<&[usize]> = order.chunks_exact(BATCH).collect();
    let pool = pool(args.threads);

    let report = pool.install(|| -> anyhow::Result<pprof::Report> {
        for batch in batches.iter().cycle().take(3) {
            trainer.step(&mut network, train, batch)?;
        }
        let guard = pprof::ProfilerGuardBuilder::default()
            .frequency(args.frequency)
            .blocklist(&["libc", "libgcc", "pthread", "vdso"])
            .build()
            .context("cannot start the profiler")?;
        for batch in batches.iter().cycle().take(args.steps) {
            trainer.step(&mut network, train, batch)?;
        }
        guard
            .report()
            .build()
            .context("cannot build the profile report")
    })?;

    let samples: isize = report.data.values().sum();
    let file =
        File::create(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    report
        .flamegraph(file)
        .with_context(|| format!("cannot write the flame graph to {}", args.out.display()))?;
    println!(
        "wrote {} ({} samples over {} steps at {} threads)",
        args.out.display(),
        samples,
        args.steps,
        args.threads
    );
    Ok(())
}

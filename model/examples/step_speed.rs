//! Times training steps at batch 64, the evaluation of 10,000 images at
//! batch 100 and the latency of a one-image `predict`, on synthetic data.
//!
//! Run with `cargo run --release -p cifaas-model --example step_speed --
//! [threads] [rounds]`; the thread count defaults to 2 and the rounds to 5.
//! Each figure is the median over the rounds, so one noisy round does not
//! decide it.

use std::time::Instant;

use data::Cifar10;
use model::{evaluate, Network, TrainConfig, Trainer, IMAGE_BYTES};

const BATCH: usize = 64;
const STEPS_PER_ROUND: usize = 20;
const WARMUP_STEPS: usize = 3;
const RECORDS: usize = 10_000;
const LATENCY_CALLS: usize = 200;

/// Returns the CPU seconds this process has used on all its threads, from
/// the user and system times in `/proc/self/stat` (Linux, in units of
/// 1/100 s), or `None` where that file cannot be read.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the parenthesised command name start at field 3.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let user: f64 = fields.get(11)?.parse().ok()?;
    let system: f64 = fields.get(12)?.parse().ok()?;
    Some((user + system) / 100.0)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn parse_arg(index: usize, default: usize, name: &str) -> usize {
    match std::env::args().nth(index) {
        Some(arg) => arg
            .parse()
            .unwrap_or_else(|_| panic!("the {name} must be a positive integer, got {arg:?}")),
        None => default,
    }
}

fn main() {
    let threads = parse_arg(1, 2, "thread count");
    let rounds = parse_arg(2, 5, "round count").max(1);
    let dir = tempfile::tempdir().expect("failed to create a temporary folder");
    data::write_synthetic(dir.path(), RECORDS, 1).expect("failed to write synthetic data");
    let dataset = Cifar10::open(dir.path()).expect("failed to open synthetic data");
    let stats = data::ChannelStats::compute(&dataset.train);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("failed to build the thread pool");

    let config = TrainConfig {
        batch_size: BATCH,
        ..TrainConfig::default()
    };
    let mut network = Network::new(1, config.dropout, stats).expect("valid network");
    let mut trainer = Trainer::new(&config, &network).expect("valid trainer");
    let order = data::shuffled_indices(dataset.train.len(), 1, 1);
    let mut batches = order.chunks_exact(BATCH).cycle();

    let (mut train_rates, mut eval_seconds, mut latencies) = (Vec::new(), Vec::new(), Vec::new());
    let mut cpu_rates = Vec::new();
    pool.install(|| {
        for _ in 0..WARMUP_STEPS {
            let batch = batches.next().expect("cycle never ends");
            trainer.step(&mut network, &dataset.train, batch).unwrap();
        }
        for _ in 0..rounds {
            let (start, cpu_start) = (Instant::now(), cpu_seconds());
            for _ in 0..STEPS_PER_ROUND {
                let batch = batches.next().expect("cycle never ends");
                trainer.step(&mut network, &dataset.train, batch).unwrap();
            }
            let seconds = start.elapsed().as_secs_f64();
            train_rates.push((STEPS_PER_ROUND * BATCH) as f64 / seconds);
            if let (Some(before), Some(after)) = (cpu_start, cpu_seconds()) {
                cpu_rates.push((STEPS_PER_ROUND * BATCH) as f64 / (after - before).max(0.01));
            }

            let evaluation = evaluate(&network, &dataset.test, 100).unwrap();
            eval_seconds.push(evaluation.seconds);

            let image = &dataset.test.image(0)[..IMAGE_BYTES];
            let start = Instant::now();
            for _ in 0..LATENCY_CALLS {
                network.predict(image).unwrap();
            }
            latencies.push(start.elapsed().as_secs_f64() * 1e3 / LATENCY_CALLS as f64);
        }
    });

    let per_cpu = if cpu_rates.is_empty() {
        String::new()
    } else {
        format!(" ({:.0} per CPU second)", median(cpu_rates))
    };
    println!(
        "{threads} threads, median of {rounds} rounds: training {:.0} images/s{per_cpu} \
         ({STEPS_PER_ROUND} steps at batch {BATCH}), evaluation of {RECORDS} images {:.2} s \
         at batch 100, predict of 1 image {:.3} ms",
        median(train_rates),
        median(eval_seconds),
        median(latencies)
    );
}

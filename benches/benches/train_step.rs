//! One full training step (`Trainer::step`: batch fill, forward, loss,
//! backward, Nesterov SGD) at batch 64 on synthetic data, in images per
//! second, at 1 and 2 threads.

use cifaas_benches::{
    pool, slow_criterion_config, synthetic_dataset, train_config, BATCH, THREAD_COUNTS,
};
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use data::{shuffled_indices, ChannelStats};
use model::{Network, Trainer};

/// Synthetic records per batch file. The training split gets five times
/// as many, ten batches of 64.
const RECORDS_PER_FILE: usize = 128;

fn train_step(c: &mut Criterion) {
    let synthetic = synthetic_dataset(RECORDS_PER_FILE);
    let train = &synthetic.dataset.train;
    let config = train_config();
    let stats = ChannelStats::compute(train);
    let order = shuffled_indices(train.len(), config.seed, 1);
    let batches: Vec<&[usize]> = order.chunks_exact(BATCH).collect();

    let mut group = c.benchmark_group("train_step_batch64_images");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(BATCH as u64));
    for threads in THREAD_COUNTS {
        let pool = pool(threads);
        let mut network =
            Network::new(config.seed, config.dropout, stats).expect("the default dropout is valid");
        let mut trainer = Trainer::new(&config, &network).expect("the default config is valid");
        group.bench_function(BenchmarkId::new("cifaas", threads), |b| {
            let mut step = 0;
            pool.install(|| {
                b.iter(|| {
                    let batch = batches[step % batches.len()];
                    step += 1;
                    trainer
                        .step(&mut network, train, batch)
                        .expect("the synthetic batch is valid")
                })
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = slow_criterion_config();
    targets = train_step
}
criterion_main!(benches);

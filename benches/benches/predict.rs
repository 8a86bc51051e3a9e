//! Inference with `Network::predict` (normalisation, forward with dropout
//! off, softmax) at batch 1 and batch 1000, in images per second, at 1 and
//! 2 threads.

use std::hint::black_box;

use cifaas_benches::{pool, slow_criterion_config, synthetic_dataset, THREAD_COUNTS};
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use data::ChannelStats;
use model::{Network, IMAGE_BYTES};

/// Batch sizes of one `predict` call.
const BATCHES: [usize; 2] = [1, 1000];

/// Synthetic records per batch file. The test split must hold the largest
/// batch.
const RECORDS_PER_FILE: usize = 1000;

fn predict(c: &mut Criterion) {
    let synthetic = synthetic_dataset(RECORDS_PER_FILE);
    let test = &synthetic.dataset.test;
    let stats = ChannelStats::compute(&synthetic.dataset.train);
    let network = Network::new(0, 0.25, stats).expect("0.25 is a valid dropout");

    for batch in BATCHES {
        let images: Vec<u8> = (0..batch).flat_map(|i| test.image(i).to_vec()).collect();
        assert_eq!(images.len(), batch * IMAGE_BYTES);

        let mut group = c.benchmark_group(format!("predict_batch{batch}_images"));
        if batch > 1 {
            group.sampling_mode(SamplingMode::Flat);
        }
        group.throughput(Throughput::Elements(batch as u64));
        for threads in THREAD_COUNTS {
            let pool = pool(threads);
            group.bench_function(BenchmarkId::new("cifaas", threads), |b| {
                pool.install(|| {
                    b.iter(|| network.predict(black_box(&images)).expect("whole images"))
                });
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = slow_criterion_config();
    targets = predict
}
criterion_main!(benches);

//! The element-wise kernels at the network's real shapes, batch 64, in
//! GB/s, at 1 and 2 threads.
//!
//! Throughput counts the bytes each call must read and write once (4 per
//! `f32` or `u32`, 8 per `usize` label), not the traffic caches add.

use std::hint::black_box;

use cifaas_benches::{criterion_config, pool, seeded_values, BATCH, THREAD_COUNTS};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kernels::{
    dropout_backward, dropout_forward, maxpool2d_backward, maxpool2d_forward, relu_backward,
    relu_forward, softmax_cross_entropy, Dropout, Phase, Pool2dGeometry, Sgd, Shape4,
};
use model::{parameter_count, CLASSES};

/// The activations that ReLU, dropout and the pools see: the outputs of
/// conv1 (and conv2) and of conv3 (and conv4).
const ACTIVATIONS: [(&str, Shape4); 2] = [
    ("32x32x32", Shape4::new(BATCH, 32, 32, 32)),
    ("64x16x16", Shape4::new(BATCH, 64, 16, 16)),
];

/// Bytes of `count` values of 4 bytes.
fn bytes(count: usize) -> u64 {
    4 * count as u64
}

fn relu(c: &mut Criterion) {
    for (name, shape) in ACTIVATIONS {
        let len = shape.len();
        let input = seeded_values(len, 31);
        let grad_output = seeded_values(len, 32);
        let mut output = vec![0.0; len];
        let mut grad_input = vec![0.0; len];

        let mut group = c.benchmark_group(format!("relu_{name}_bytes"));
        for threads in THREAD_COUNTS {
            let pool = pool(threads);
            group.throughput(Throughput::BytesDecimal(bytes(2 * len)));
            group.bench_function(BenchmarkId::new("forward", threads), |b| {
                pool.install(|| {
                    b.iter(|| relu_forward(black_box(&input), &mut output).expect("lengths match"))
                });
            });
            group.throughput(Throughput::BytesDecimal(bytes(3 * len)));
            group.bench_function(BenchmarkId::new("backward", threads), |b| {
                pool.install(|| {
                    b.iter(|| {
                        relu_backward(black_box(&output), &grad_output, &mut grad_input)
                            .expect("lengths match")
                    })
                });
            });
        }
        group.finish();
    }
}

fn dropout(c: &mut Criterion) {
    let dropout = Dropout::new(0.25).expect("0.25 is a valid drop probability");
    for (name, shape) in ACTIVATIONS {
        let len = shape.len();
        let input = seeded_values(len, 33);
        let grad_output = seeded_values(len, 34);
        let mut output = vec![0.0; len];
        let mut mask = vec![0.0; len];
        let mut grad_input = vec![0.0; len];

        // Forward reads the input and writes the output and the mask.
        let mut group = c.benchmark_group(format!("dropout_{name}_bytes"));
        for threads in THREAD_COUNTS {
            let pool = pool(threads);
            group.throughput(Throughput::BytesDecimal(bytes(3 * len)));
            group.bench_function(BenchmarkId::new("forward", threads), |b| {
                let mut seed = 0;
                pool.install(|| {
                    b.iter(|| {
                        seed += 1;
                        let phase = Phase::Train { seed };
                        dropout_forward(&dropout, phase, black_box(&input), &mut output, &mut mask)
                            .expect("lengths match")
                    })
                });
            });
            group.throughput(Throughput::BytesDecimal(bytes(3 * len)));
            group.bench_function(BenchmarkId::new("backward", threads), |b| {
                pool.install(|| {
                    b.iter(|| {
                        dropout_backward(black_box(&mask), &grad_output, &mut grad_input)
                            .expect("lengths match")
                    })
                });
            });
        }
        group.finish();
    }
}

fn maxpool(c: &mut Criterion) {
    for (name, shape) in ACTIVATIONS {
        let geometry = Pool2dGeometry::new(shape, 2, 2).expect("2x2 pools fit");
        let (in_len, out_len) = (shape.len(), geometry.output().len());
        let input = seeded_values(in_len, 35);
        let grad_output = seeded_values(out_len, 36);
        let mut output = vec![0.0; out_len];
        let mut argmax = vec![0u32; out_len];
        let mut grad_input = vec![0.0; in_len];

        // Both passes touch the input-sized plane once and the output-sized
        // value and argmax planes once each.
        let mut group = c.benchmark_group(format!("maxpool_{name}_bytes"));
        group.throughput(Throughput::BytesDecimal(bytes(in_len + 2 * out_len)));
        for threads in THREAD_COUNTS {
            let pool = pool(threads);
            group.bench_function(BenchmarkId::new("forward", threads), |b| {
                pool.install(|| {
                    b.iter(|| {
                        maxpool2d_forward(&geometry, black_box(&input), &mut output, &mut argmax)
                            .expect("lengths match")
                    })
                });
            });
            group.bench_function(BenchmarkId::new("backward", threads), |b| {
                pool.install(|| {
                    b.iter(|| {
                        maxpool2d_backward(
                            &geometry,
                            black_box(&grad_output),
                            &argmax,
                            &mut grad_input,
                        )
                        .expect("lengths match")
                    })
                });
            });
        }
        group.finish();
    }
}

fn sgd(c: &mut Criterion) {
    let len = parameter_count();
    let sgd = Sgd {
        lr: 0.01,
        momentum: 0.9,
        weight_decay: 0.0,
        nesterov: true,
    };
    let mut params = seeded_values(len, 37);
    let grads = seeded_values(len, 38);
    let mut momentum = vec![0.0; len];

    // Reads parameters, gradients and momentum, and writes parameters and
    // momentum.
    let mut group = c.benchmark_group("sgd_all_parameters_bytes");
    group.throughput(Throughput::BytesDecimal(bytes(5 * len)));
    for threads in THREAD_COUNTS {
        let pool = pool(threads);
        group.bench_function(BenchmarkId::new("nesterov_step", threads), |b| {
            pool.install(|| {
                b.iter(|| {
                    sgd.step(&mut params, black_box(&grads), &mut momentum)
                        .expect("lengths match")
                })
            });
        });
    }
    group.finish();
}

fn softmax_xent(c: &mut Criterion) {
    let logits = seeded_values(BATCH * CLASSES, 39);
    let labels: Vec<usize> = (0..BATCH).map(|row| row % CLASSES).collect();
    let mut grad_logits = vec![0.0; BATCH * CLASSES];

    // Reads the logits and the labels, writes the logit gradient.
    let mut group = c.benchmark_group("softmax_xent_batch64_bytes");
    let traffic = bytes(2 * BATCH * CLASSES) + 8 * BATCH as u64;
    group.throughput(Throughput::BytesDecimal(traffic));
    for threads in THREAD_COUNTS {
        let pool = pool(threads);
        group.bench_function(BenchmarkId::new("loss_and_gradient", threads), |b| {
            pool.install(|| {
                b.iter(|| {
                    softmax_cross_entropy(black_box(&logits), &labels, CLASSES, &mut grad_logits)
                        .expect("lengths match")
                })
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = criterion_config();
    targets = relu, dropout, maxpool, sgd, softmax_xent
}
criterion_main!(benches);

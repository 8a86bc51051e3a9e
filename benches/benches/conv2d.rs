//! Forward and backward of each convolution at batch 64, in GFLOP/s, next
//! to the plain-sgemm ceiling of the same GEMMs, at 1 and 2 threads.
//!
//! Criterion prints throughput in elements per second; here one element is
//! one FLOP (a multiply-add counts as two), so `Gelem/s` reads as GFLOP/s.

use std::hint::black_box;

use cifaas_benches::{
    conv_backward_ceiling, conv_forward_ceiling, criterion_config, pool, seeded_values,
    ConvCeiling, ConvLayer, BATCH, CONV_LAYERS, THREAD_COUNTS,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kernels::{conv2d_backward, conv2d_forward, Conv2dGrads};

/// Seeded inputs and output buffers of one layer at batch 64.
struct Buffers {
    input: Vec<f32>,
    weight: Vec<f32>,
    bias: Vec<f32>,
    output: Vec<f32>,
    grad_input: Vec<f32>,
    grad_weight: Vec<f32>,
    grad_bias: Vec<f32>,
}

impl Buffers {
    fn new(layer: &ConvLayer) -> Self {
        let geometry = layer.geometry(BATCH);
        Self {
            input: seeded_values(geometry.input().len(), 11),
            weight: seeded_values(geometry.weight_len(), 12),
            bias: seeded_values(geometry.bias_len(), 13),
            output: seeded_values(geometry.output().len(), 14),
            grad_input: vec![0.0; geometry.input().len()],
            grad_weight: vec![0.0; geometry.weight_len()],
            grad_bias: vec![0.0; geometry.bias_len()],
        }
    }
}

fn forward(c: &mut Criterion) {
    for layer in CONV_LAYERS {
        let geometry = layer.geometry(BATCH);
        let mut buffers = Buffers::new(&layer);
        let mut ceiling = ConvCeiling::new(layer, BATCH);
        let mut group = c.benchmark_group(format!("{}_forward_flop", layer.name));
        group.throughput(Throughput::Elements(layer.forward_flops(BATCH)));

        for threads in THREAD_COUNTS {
            let pool = pool(threads);
            group.bench_function(BenchmarkId::new("cifaas", threads), |b| {
                pool.install(|| {
                    b.iter(|| {
                        let Buffers {
                            input,
                            weight,
                            bias,
                            output,
                            ..
                        } = &mut buffers;
                        conv2d_forward(&geometry, black_box(input), weight, bias, output)
                            .expect("shapes match");
                    })
                });
            });
            group.bench_function(BenchmarkId::new("sgemm", threads), |b| {
                pool.install(|| b.iter(|| conv_forward_ceiling(black_box(&mut ceiling))));
            });
        }
        group.finish();
    }
}

fn backward(c: &mut Criterion) {
    for layer in CONV_LAYERS {
        let geometry = layer.geometry(BATCH);
        let mut buffers = Buffers::new(&layer);
        let mut ceiling = ConvCeiling::new(layer, BATCH);
        let mut group = c.benchmark_group(format!("{}_backward_flop", layer.name));
        group.throughput(Throughput::Elements(layer.backward_flops(BATCH)));

        for threads in THREAD_COUNTS {
            let pool = pool(threads);
            group.bench_function(BenchmarkId::new("cifaas", threads), |b| {
                pool.install(|| {
                    b.iter(|| {
                        let Buffers {
                            input,
                            weight,
                            output,
                            grad_input,
                            grad_weight,
                            grad_bias,
                            ..
                        } = &mut buffers;
                        // As in the network, the first layer skips the
                        // input gradient.
                        let grads = Conv2dGrads {
                            input: (!layer.first).then_some(grad_input.as_mut_slice()),
                            weight: grad_weight,
                            bias: grad_bias,
                        };
                        conv2d_backward(&geometry, black_box(input), weight, output, grads)
                            .expect("shapes match");
                    })
                });
            });
            group.bench_function(BenchmarkId::new("sgemm", threads), |b| {
                pool.install(|| b.iter(|| conv_backward_ceiling(black_box(&mut ceiling))));
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = criterion_config();
    targets = forward, backward
}
criterion_main!(benches);

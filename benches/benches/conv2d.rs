//! Forward and backward of each convolution at batch 64, in GFLOP/s, next
//! to the plain-sgemm ceiling of the same GEMMs, at 1 and 2 threads.
//!
//! The cifaas side runs the passes as training does: the batch in chunks of
//! 8 images, one rayon task per chunk, each with its own scratch, through
//! the serial kernels (the direct path on AVX-512 CPUs).
//!
//! Criterion prints throughput in elements per second; here one element is
//! one FLOP (a multiply-add counts as two), so `Gelem/s` reads as GFLOP/s.

use std::hint::black_box;

use cifaas_benches::{
    conv_backward_ceiling, conv_forward_ceiling, criterion_config, pool, seeded_values,
    ConvCeiling, ConvLayer, BATCH, CONV_LAYERS, THREAD_COUNTS,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kernels::{conv2d_backward_serial, conv2d_forward_serial, ConvScratch};
use rayon::prelude::*;

/// Images per chunk, as in training.
const CHUNK: usize = 8;

/// Seeded inputs and output buffers of one chunk of one layer.
struct Chunk {
    input: Vec<f32>,
    output: Vec<f32>,
    grad_input: Vec<f32>,
    grad_weight: Vec<f32>,
    scratch: ConvScratch,
}

/// The weights of one layer and the chunks of a batch of 64.
struct Buffers {
    weight: Vec<f32>,
    bias: Vec<f32>,
    chunks: Vec<Chunk>,
}

impl Buffers {
    fn new(layer: &ConvLayer) -> Self {
        let geometry = layer.geometry(CHUNK);
        let chunk = |seed: u64| Chunk {
            input: seeded_values(geometry.input().len(), seed),
            output: seeded_values(geometry.output().len(), seed + 1),
            grad_input: vec![0.0; geometry.input().len()],
            grad_weight: vec![0.0; geometry.weight_len()],
            scratch: ConvScratch::new(&[geometry]),
        };
        Self {
            weight: seeded_values(geometry.weight_len(), 12),
            bias: seeded_values(geometry.bias_len(), 13),
            chunks: (0..BATCH / CHUNK)
                .map(|i| chunk(20 + 2 * i as u64))
                .collect(),
        }
    }
}

fn forward(c: &mut Criterion) {
    for layer in CONV_LAYERS {
        let geometry = layer.geometry(CHUNK);
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
                            weight,
                            bias,
                            chunks,
                        } = &mut buffers;
                        chunks.par_iter_mut().for_each(|chunk| {
                            let Chunk {
                                input,
                                output,
                                scratch,
                                ..
                            } = chunk;
                            let input = black_box(&input[..]);
                            conv2d_forward_serial(
                                &geometry,
                                input,
                                &weight[..],
                                bias,
                                output,
                                scratch,
                            )
                            .expect("shapes match");
                        });
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
        let geometry = layer.geometry(CHUNK);
        let mut buffers = Buffers::new(&layer);
        let mut ceiling = ConvCeiling::new(layer, BATCH);
        let mut group = c.benchmark_group(format!("{}_backward_flop", layer.name));
        group.throughput(Throughput::Elements(layer.backward_flops(BATCH)));

        for threads in THREAD_COUNTS {
            let pool = pool(threads);
            group.bench_function(BenchmarkId::new("cifaas", threads), |b| {
                pool.install(|| {
                    b.iter(|| {
                        let Buffers { weight, chunks, .. } = &mut buffers;
                        chunks.par_iter_mut().for_each(|chunk| {
                            let Chunk {
                                input,
                                output,
                                grad_input,
                                grad_weight,
                                scratch,
                            } = chunk;
                            // As in the network, the first layer skips the
                            // input gradient. Each chunk's weight gradient
                            // is its partial sum, as in a training step.
                            let grad_input = (!layer.first).then_some(grad_input.as_mut_slice());
                            let input = black_box(&input[..]);
                            conv2d_backward_serial(
                                &geometry,
                                input,
                                &weight[..],
                                output,
                                grad_input,
                                grad_weight,
                                scratch,
                            )
                            .expect("shapes match");
                        });
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

//! Forward and backward of the fully connected layer (4096 -> 10) at batch
//! 64, in GFLOP/s, next to the plain-sgemm ceiling, at 1 and 2 threads.
//!
//! One criterion element is one FLOP (a multiply-add counts as two), so
//! `Gelem/s` reads as GFLOP/s.

use std::hint::black_box;

use cifaas_benches::{
    criterion_config, linear_ceiling, linear_geometry, pool, seeded_values, LinearCeiling, BATCH,
    FC_IN, FC_OUT, THREAD_COUNTS,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kernels::{linear_backward, linear_forward, LinearGrads};

/// FLOPs of one `[BATCH, FC_IN] x [FC_IN, FC_OUT]` product.
const GEMM_FLOPS: u64 = 2 * (BATCH * FC_IN * FC_OUT) as u64;

fn linear(c: &mut Criterion) {
    let geometry = linear_geometry(BATCH);
    let input = seeded_values(BATCH * FC_IN, 21);
    let weight = seeded_values(FC_OUT * FC_IN, 22);
    let bias = seeded_values(FC_OUT, 23);
    let mut output = seeded_values(BATCH * FC_OUT, 24);
    let mut grad_input = vec![0.0; BATCH * FC_IN];
    let mut grad_weight = vec![0.0; FC_OUT * FC_IN];
    let mut grad_bias = vec![0.0; FC_OUT];
    let mut ceiling = LinearCeiling::new(BATCH);

    let mut group = c.benchmark_group("fc_forward_flop");
    group.throughput(Throughput::Elements(GEMM_FLOPS));
    for threads in THREAD_COUNTS {
        let pool = pool(threads);
        group.bench_function(BenchmarkId::new("cifaas", threads), |b| {
            pool.install(|| {
                b.iter(|| {
                    linear_forward(&geometry, black_box(&input), &weight, &bias, &mut output)
                        .expect("shapes match");
                })
            });
        });
        group.bench_function(BenchmarkId::new("sgemm", threads), |b| {
            pool.install(|| b.iter(|| linear_ceiling(black_box(&mut ceiling), false)));
        });
    }
    group.finish();

    // The input gradient and the weight gradient are one product each.
    let mut group = c.benchmark_group("fc_backward_flop");
    group.throughput(Throughput::Elements(2 * GEMM_FLOPS));
    for threads in THREAD_COUNTS {
        let pool = pool(threads);
        group.bench_function(BenchmarkId::new("cifaas", threads), |b| {
            pool.install(|| {
                b.iter(|| {
                    let grads = LinearGrads {
                        input: Some(&mut grad_input),
                        weight: &mut grad_weight,
                        bias: &mut grad_bias,
                    };
                    linear_backward(&geometry, black_box(&input), &weight, &output, grads)
                        .expect("shapes match");
                })
            });
        });
        group.bench_function(BenchmarkId::new("sgemm", threads), |b| {
            pool.install(|| b.iter(|| linear_ceiling(black_box(&mut ceiling), true)));
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = criterion_config();
    targets = linear
}
criterion_main!(benches);

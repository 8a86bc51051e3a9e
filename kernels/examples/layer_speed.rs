//! Times each convolution of the network, forward and backward at batch 64
//! in chunks of 8 images, against plain `matrixmultiply::sgemm` calls of
//! the same GEMM shapes on buffers of the same sizes.
//!
//! Run with `cargo run --release -p cifaas-kernels --example layer_speed --
//! [threads]`; the thread count defaults to 2. The ratio printed is the
//! sgemm time over the convolution time, so 1.0 means the convolution costs
//! no more than its GEMMs alone.

use std::time::Instant;

use kernels::{conv2d_backward_serial, conv2d_forward_serial, Conv2dGeometry, ConvScratch, Shape4};
use rayon::prelude::*;

const BATCH: usize = 64;
const CHUNK: usize = 8;
const RUNS: usize = 7;

/// Returns the median of `RUNS` timings of `work`, in milliseconds.
fn median_ms(mut work: impl FnMut()) -> f64 {
    work();
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[RUNS / 2]
}

/// Computes `c = a * b` for row-major `a` `[m, k]` and `b` `[k, n]`.
fn sgemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    let stride = |s: usize| s as isize;
    // SAFETY: the assert above shows that every element read from `a` and
    // `b` and written to `c` lies inside its slice, and `c` is a distinct
    // `&mut` slice, so it overlaps neither input.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            stride(k),
            1,
            b.as_ptr(),
            stride(n),
            1,
            0.0,
            c.as_mut_ptr(),
            stride(n),
            1,
        );
    }
}

/// Buffers of one chunk of one layer.
struct Chunk {
    input: Vec<f32>,
    output: Vec<f32>,
    grad_input: Vec<f32>,
    grad_weight: Vec<f32>,
    scratch: ConvScratch,
    columns: Vec<f32>,
}

fn main() {
    let threads = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .expect("the thread count must be a positive integer"),
        None => 2,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("failed to build the thread pool");
    let layers = [
        ("conv1", 3, 32, 32),
        ("conv2", 32, 32, 32),
        ("conv3", 32, 64, 16),
        ("conv4", 64, 64, 16),
    ];

    for (name, c_in, c_out, side) in layers {
        let geometry = Conv2dGeometry::new(Shape4::new(CHUNK, c_in, side, side), c_out, 3, 1, 1)
            .expect("the layer geometry is valid");
        let weight = vec![0.01; geometry.weight_len()];
        let bias = vec![0.1; geometry.bias_len()];
        let (taps, positions) = (c_in * 9, side * side);
        let mut chunks: Vec<Chunk> = (0..BATCH / CHUNK)
            .map(|_| Chunk {
                input: (0..geometry.input().len())
                    .map(|i| (i % 7) as f32 * 0.1)
                    .collect(),
                output: vec![0.001; geometry.output().len()],
                grad_input: vec![0.0; geometry.input().len()],
                grad_weight: vec![0.0; geometry.weight_len()],
                scratch: ConvScratch::new(&[geometry]),
                columns: vec![0.5; taps * positions],
            })
            .collect();
        let first_layer = name == "conv1";

        let (conv, plain) = pool.install(|| {
            let conv = median_ms(|| {
                chunks.par_iter_mut().for_each(|chunk| {
                    let Chunk {
                        input,
                        output,
                        grad_input,
                        grad_weight,
                        scratch,
                        ..
                    } = chunk;
                    conv2d_forward_serial(&geometry, input, &weight, &bias, output, scratch)
                        .unwrap();
                    let grad_input = (!first_layer).then_some(&mut grad_input[..]);
                    conv2d_backward_serial(
                        &geometry,
                        input,
                        &weight,
                        output,
                        grad_input,
                        grad_weight,
                        scratch,
                    )
                    .unwrap();
                });
            });
            let plain = median_ms(|| {
                chunks.par_iter_mut().for_each(|chunk| {
                    let out_len = c_out * positions;
                    for image in 0..CHUNK {
                        let out = &mut chunk.output[image * out_len..][..out_len];
                        sgemm(c_out, taps, positions, &weight, &chunk.columns, out);
                        sgemm(
                            c_out,
                            positions,
                            taps,
                            out,
                            &chunk.columns,
                            &mut chunk.grad_weight,
                        );
                        if !first_layer {
                            sgemm(taps, c_out, positions, &weight, out, &mut chunk.columns);
                        }
                    }
                });
            });
            (conv, plain)
        });
        println!(
            "{name} [{BATCH}, {c_in}, {side}, {side}] -> {c_out}, {threads} threads: forward + backward \
             {conv:.2} ms, plain sgemm of the same shapes {plain:.2} ms, ratio {:.2}",
            plain / conv
        );
    }
}

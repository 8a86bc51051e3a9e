//! Times the forward and backward pass of the network's second convolution,
//! `[64, 32, 32, 32]` to 32 channels with a 3x3 kernel and padding 1.
//!
//! Run with `cargo run --release -p cifaas-kernels --example conv_speed --
//! [threads]`; the thread count defaults to 2.

use std::time::Instant;

use kernels::{conv2d_backward, conv2d_forward, Conv2dGeometry, Conv2dGrads, Shape4};

const WARMUP: usize = 2;
const RUNS: usize = 10;

fn main() {
    let threads = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .expect("the thread count must be a positive integer"),
        None => 2,
    };
    let geometry = Conv2dGeometry::new(Shape4::new(64, 32, 32, 32), 32, 3, 1, 1)
        .expect("the conv2 geometry is valid");
    let input: Vec<f32> = (0..geometry.input().len())
        .map(|i| (i % 7) as f32 * 0.1)
        .collect();
    let weight = vec![0.01; geometry.weight_len()];
    let bias = vec![0.1; geometry.bias_len()];
    let grad_output = vec![0.001; geometry.output().len()];
    let mut output = vec![0.0; geometry.output().len()];
    let mut grad_input = vec![0.0; input.len()];
    let mut grad_weight = vec![0.0; weight.len()];
    let mut grad_bias = vec![0.0; bias.len()];

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("failed to build the thread pool");
    let (mut forward, mut backward) = (0.0, 0.0);
    pool.install(|| {
        for run in 0..WARMUP + RUNS {
            let start = Instant::now();
            conv2d_forward(&geometry, &input, &weight, &bias, &mut output).unwrap();
            let middle = Instant::now();
            let grads = Conv2dGrads {
                input: Some(&mut grad_input),
                weight: &mut grad_weight,
                bias: &mut grad_bias,
            };
            conv2d_backward(&geometry, &input, &weight, &grad_output, grads).unwrap();
            if run >= WARMUP {
                forward += (middle - start).as_secs_f64();
                backward += middle.elapsed().as_secs_f64();
            }
        }
    });

    let ms = |seconds: f64| seconds * 1e3 / RUNS as f64;
    println!(
        "conv2 [64, 32, 32, 32] -> 32, 3x3 pad 1, {threads} threads: forward {:.1} ms, \
         backward {:.1} ms, total {:.1} ms per batch (mean of {RUNS})",
        ms(forward),
        ms(backward),
        ms(forward + backward)
    );
}

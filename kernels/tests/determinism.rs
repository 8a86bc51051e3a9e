//! Gradients and masks must be bit-identical whatever the thread count.

mod common;

use common::Rng;
use kernels::*;

fn in_pool<T: Send>(threads: usize, work: impl FnOnce() -> T + Send) -> T {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(work)
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|x| x.to_bits()).collect()
}

/// Returns the input, weight and bias gradients of a 13-image batch, which
/// spans several gradient chunks and a partial last one.
fn conv_grads() -> [Vec<u32>; 3] {
    let geometry = Conv2dGeometry::new(Shape4::new(13, 3, 9, 7), 5, 3, 1, 1).unwrap();
    let mut rng = Rng::new(11);
    let input = rng.values(geometry.input().len());
    let weight = rng.values(geometry.weight_len());
    let grad_output = rng.values(geometry.output().len());
    let mut grad_input = vec![f32::NAN; input.len()];
    let mut grad_weight = vec![f32::NAN; weight.len()];
    let mut grad_bias = vec![f32::NAN; geometry.bias_len()];
    let grads = Conv2dGrads {
        input: Some(&mut grad_input),
        weight: &mut grad_weight,
        bias: &mut grad_bias,
    };
    conv2d_backward(&geometry, &input, &weight, &grad_output, grads).unwrap();
    [bits(&grad_input), bits(&grad_weight), bits(&grad_bias)]
}

/// Returns the input, weight and bias gradients of a 70-row linear layer,
/// which spans several gradient chunks and a partial last one.
fn linear_grads() -> [Vec<u32>; 3] {
    let geometry = LinearGeometry::new(70, 33, 10).unwrap();
    let mut rng = Rng::new(12);
    let input = rng.values(70 * 33);
    let weight = rng.values(10 * 33);
    let grad_output = rng.values(70 * 10);
    let mut grad_input = vec![f32::NAN; input.len()];
    let mut grad_weight = vec![f32::NAN; weight.len()];
    let mut grad_bias = vec![f32::NAN; 10];
    let grads = LinearGrads {
        input: Some(&mut grad_input),
        weight: &mut grad_weight,
        bias: &mut grad_bias,
    };
    linear_backward(&geometry, &input, &weight, &grad_output, grads).unwrap();
    [bits(&grad_input), bits(&grad_weight), bits(&grad_bias)]
}

#[test]
fn conv2d_grads_thread_independent() {
    let one_thread = in_pool(1, conv_grads);
    let three_threads = in_pool(3, conv_grads);
    assert_eq!(one_thread[0], three_threads[0], "grad_input");
    assert_eq!(one_thread[1], three_threads[1], "grad_weight");
    assert_eq!(one_thread[2], three_threads[2], "grad_bias");
}

#[test]
fn linear_grads_thread_independent() {
    let one_thread = in_pool(1, linear_grads);
    let three_threads = in_pool(3, linear_grads);
    assert_eq!(one_thread[0], three_threads[0], "grad_input");
    assert_eq!(one_thread[1], three_threads[1], "grad_weight");
    assert_eq!(one_thread[2], three_threads[2], "grad_bias");
}

#[test]
fn dropout_mask_thread_independent() {
    let mask = || {
        let dropout = Dropout::new(0.5).unwrap();
        let input = vec![1.0; 100_003];
        let mut output = vec![f32::NAN; input.len()];
        let mut mask = vec![f32::NAN; input.len()];
        dropout_forward(
            &dropout,
            Phase::Train { seed: 5 },
            &input,
            &mut output,
            &mut mask,
        )
        .unwrap();
        bits(&mask)
    };
    assert_eq!(in_pool(1, mask), in_pool(3, mask));
}

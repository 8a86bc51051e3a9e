//! Cases small enough to work out by hand: pooling ties, dropout at
//! p = 0.25, three Nesterov steps and cross-entropy at extreme logits.

mod common;

use common::Rng;
use kernels::*;

fn pool(input: Shape4, size: usize, stride: usize, values: &[f32]) -> (Vec<f32>, Vec<u32>) {
    let geometry = Pool2dGeometry::new(input, size, stride).unwrap();
    let mut output = vec![f32::NAN; geometry.output().len()];
    let mut argmax = vec![u32::MAX; output.len()];
    maxpool2d_forward(&geometry, values, &mut output, &mut argmax).unwrap();
    (output, argmax)
}

#[test]
fn maxpool_tie_picks_first() {
    let shape = Shape4::new(1, 1, 2, 2);
    let (output, argmax) = pool(shape, 2, 2, &[3.0; 4]);
    assert_eq!(output, [3.0]);
    assert_eq!(argmax, [0]);

    let geometry = Pool2dGeometry::new(shape, 2, 2).unwrap();
    let mut grad_input = [f32::NAN; 4];
    maxpool2d_backward(&geometry, &[1.5], &argmax, &mut grad_input).unwrap();
    assert_eq!(grad_input, [1.5, 0.0, 0.0, 0.0]);
    assert_eq!(grad_input.iter().filter(|&&g| g != 0.0).count(), 1);
}

#[test]
fn maxpool_tie_after_relu_zeros() {
    // A window of zeros, as ReLU leaves them, with a later larger value in
    // the next window: each window's first maximum wins.
    let shape = Shape4::new(1, 1, 2, 4);
    let values = [0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 2.0, 0.0];
    let (output, argmax) = pool(shape, 2, 2, &values);
    assert_eq!(output, [0.0, 2.0]);
    assert_eq!(argmax, [0, 3]);
}

#[test]
fn maxpool_overlapping_windows_accumulate() {
    // Size 2, stride 1 on a 2x3 plane of equal values: both windows pick
    // their own first element, and a larger centre value collects both.
    let shape = Shape4::new(1, 1, 2, 3);
    let (_, argmax) = pool(shape, 2, 1, &[1.0; 6]);
    assert_eq!(argmax, [0, 1]);

    let values = [0.0, 5.0, 0.0, 0.0, 0.0, 0.0];
    let (output, argmax) = pool(shape, 2, 1, &values);
    assert_eq!(output, [5.0, 5.0]);
    assert_eq!(argmax, [1, 1]);
    let geometry = Pool2dGeometry::new(shape, 2, 1).unwrap();
    let mut grad_input = [f32::NAN; 6];
    maxpool2d_backward(&geometry, &[1.0, 2.0], &argmax, &mut grad_input).unwrap();
    assert_eq!(grad_input, [0.0, 3.0, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn maxpool_nan_is_max() {
    let (output, argmax) = pool(Shape4::new(1, 1, 2, 2), 2, 2, &[1.0, f32::NAN, 7.0, 2.0]);
    assert!(output[0].is_nan());
    assert_eq!(argmax, [1]);
}

#[test]
fn maxpool_all_negative_infinity() {
    let (output, argmax) = pool(Shape4::new(1, 1, 2, 2), 2, 2, &[f32::NEG_INFINITY; 4]);
    assert_eq!(output, [f32::NEG_INFINITY]);
    assert_eq!(argmax, [0]);
}

fn dropout_mask(p: f32, phase: Phase, input: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let dropout = Dropout::new(p).unwrap();
    let mut output = vec![f32::NAN; input.len()];
    let mut mask = vec![f32::NAN; input.len()];
    dropout_forward(&dropout, phase, input, &mut output, &mut mask).unwrap();
    (output, mask)
}

#[test]
fn dropout_quarter_scale_and_fraction() {
    const LEN: usize = 100_000;
    let input = Rng::new(7).values(LEN);
    let (output, mask) = dropout_mask(0.25, Phase::Train { seed: 42 }, &input);
    let scale = 4.0f32 / 3.0;
    assert_eq!(Dropout::new(0.25).unwrap().scale(), scale);
    assert!(mask.iter().all(|&m| m == 0.0 || m == scale));
    for ((&x, &m), &y) in input.iter().zip(&mask).zip(&output) {
        assert_eq!(y, x * m);
    }

    // The kept fraction has a standard deviation of 0.0014 at this length.
    let kept = mask.iter().filter(|&&m| m != 0.0).count() as f64 / LEN as f64;
    assert!((kept - 0.75).abs() < 0.01, "kept fraction {kept}");
}

#[test]
fn dropout_seed_fixes_mask() {
    let input = vec![1.0; 4096];
    let (_, first) = dropout_mask(0.25, Phase::Train { seed: 1 }, &input);
    let (_, again) = dropout_mask(0.25, Phase::Train { seed: 1 }, &input);
    let (_, other) = dropout_mask(0.25, Phase::Train { seed: 2 }, &input);
    assert_eq!(first, again);

    // Two independent masks differ in 2 * 0.75 * 0.25 = 37.5 % of elements.
    let differ = first.iter().zip(&other).filter(|(a, b)| a != b).count();
    assert!(differ > 4096 / 4, "only {differ} elements differ");
}

#[test]
fn dropout_eval_is_identity() {
    let input = Rng::new(3).values(1000);
    let (output, mask) = dropout_mask(0.25, Phase::Eval, &input);
    assert_eq!(output, input);
    assert!(mask.iter().all(|&m| m == 1.0));
}

#[test]
fn dropout_zero_keeps_everything() {
    let input = Rng::new(4).values(1000);
    let (output, mask) = dropout_mask(0.0, Phase::Train { seed: 9 }, &input);
    assert_eq!(output, input);
    assert!(mask.iter().all(|&m| m == 1.0));
}

/// Runs three steps on 9 identical parameters (one vector and a scalar
/// tail) and returns the parameter and buffer after each step.
fn three_steps(sgd: &Sgd) -> Vec<(f32, f32)> {
    let mut params = [1.0f32; 9];
    let mut buffer = [0.0f32; 9];
    let mut history = Vec::new();
    for grad in [1.0, 0.5, -1.0] {
        sgd.step(&mut params, &[grad; 9], &mut buffer).unwrap();
        assert!(params.iter().all(|&p| p == params[0]), "lanes disagree");
        assert!(buffer.iter().all(|&b| b == buffer[0]), "lanes disagree");
        history.push((params[0], buffer[0]));
    }
    history
}

#[test]
fn nesterov_three_steps() {
    let sgd = Sgd {
        lr: 0.5,
        momentum: 0.5,
        weight_decay: 0.0,
        nesterov: true,
    };
    // buf = 0.5 * buf + g; p -= 0.5 * (g + 0.5 * buf), with g = 1, 0.5, -1:
    // step 1: buf 1, p = 1 - 0.5 * 1.5 = 0.25
    // step 2: buf 1, p = 0.25 - 0.5 * 1 = -0.25
    // step 3: buf -0.5, p = -0.25 - 0.5 * (-1.25) = 0.375
    let expected = [(0.25, 1.0), (-0.25, 1.0), (0.375, -0.5)];
    assert_eq!(three_steps(&sgd), expected);
}

#[test]
fn nesterov_three_steps_weight_decay() {
    let sgd = Sgd {
        lr: 0.5,
        momentum: 0.5,
        weight_decay: 0.5,
        nesterov: true,
    };
    // g = grad + 0.5 * p, then as above:
    // step 1: g 1.5, buf 1.5, p = 1 - 0.5 * 2.25 = -0.125
    // step 2: g 0.4375, buf 1.1875, p = -0.125 - 0.5 * 1.03125 = -0.640625
    // step 3: g -1.3203125, buf -0.7265625,
    //         p = -0.640625 - 0.5 * (-1.68359375) = 0.201171875
    let expected = [
        (-0.125, 1.5),
        (-0.640625, 1.1875),
        (103.0 / 512.0, -0.7265625),
    ];
    assert_eq!(three_steps(&sgd), expected);
}

#[test]
fn plain_momentum_three_steps() {
    let sgd = Sgd {
        lr: 0.5,
        momentum: 0.5,
        weight_decay: 0.0,
        nesterov: false,
    };
    // p -= 0.5 * buf: buf 1, 1, -0.5, so p = 0.5, 0, 0.25.
    let expected = [(0.5, 1.0), (0.0, 1.0), (0.25, -0.5)];
    assert_eq!(three_steps(&sgd), expected);
}

#[test]
fn cross_entropy_extreme_logits() {
    // Row 0 is confidently right (loss 0), row 1 confidently wrong (loss
    // 2e4), so the mean is exactly 1e4.
    let logits = [1e4, -1e4, 1e4, -1e4];
    let mut grad = [f32::NAN; 4];
    let loss = softmax_cross_entropy(&logits, &[0, 1], 2, &mut grad).unwrap();
    assert_eq!(loss, 1e4);
    assert_eq!(grad, [0.0, 0.0, 0.5, -0.5]);

    let mut probabilities = [f32::NAN; 4];
    softmax(&logits, 2, &mut probabilities).unwrap();
    assert_eq!(probabilities, [1.0, 0.0, 1.0, 0.0]);
}

#[test]
fn cross_entropy_equal_large_logits() {
    for value in [1e4, -1e4, 3e38] {
        let logits = [value; 10];
        let mut grad = [f32::NAN; 10];
        let loss = softmax_cross_entropy(&logits, &[3], 10, &mut grad).unwrap();
        assert_eq!(loss, 10f32.ln(), "logit {value}");
        for (class, &g) in grad.iter().enumerate() {
            let expected = if class == 3 { 0.1 - 1.0 } else { 0.1 };
            assert!(
                (g - expected).abs() <= 1e-7,
                "logit {value}, class {class}: {g}"
            );
        }
    }
}

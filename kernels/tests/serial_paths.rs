//! Property tests of the serial and fused kernels against the plain-loop
//! twins in `kernels::reference`, on random shapes. Outputs start as NaN,
//! so an element a kernel never writes fails the comparison.
//!
//! Inputs lie in `[-1, 1)`, with the bounds of `against_reference.rs`: a sum
//! of `terms` f32 products is off by at most about `2e-6 * terms`.

mod common;

use common::{assert_close, nan_vec, to_f64, Rng};
use kernels::reference;
use kernels::*;
use proptest::prelude::*;

fn sum_tolerance(terms: usize) -> f64 {
    2e-6 * terms as f64
}

const REL: f64 = 1e-4;

/// One random convolution layer with its inputs.
#[derive(Debug)]
struct Layer {
    geometry: Conv2dGeometry,
    input: Vec<f32>,
    weight: Vec<f32>,
    bias: Vec<f32>,
    grad_output: Vec<f32>,
}

impl Layer {
    fn new(batch: usize, c_in: usize, c_out: usize, hw: (usize, usize), seed: u64) -> Self {
        let input = Shape4::new(batch, c_in, hw.0, hw.1);
        let geometry = Conv2dGeometry::new(input, c_out, 3, 1, 1).unwrap();
        let mut rng = Rng::new(seed);
        Self {
            input: rng.values(geometry.input().len()),
            weight: rng.values(geometry.weight_len()),
            bias: rng.values(geometry.bias_len()),
            grad_output: rng.values(geometry.output().len()),
            geometry,
        }
    }

    /// Returns the reference `conv(input) + bias` in f64.
    fn reference_output(&self) -> Vec<f64> {
        let (x, w, b) = (
            to_f64(&self.input),
            to_f64(&self.weight),
            to_f64(&self.bias),
        );
        reference::conv2d_forward(&self.geometry, &x, &w, &b)
    }

    fn taps(&self) -> usize {
        self.geometry.input().channels * 9
    }
}

/// Widths of 16 and 32 give output rows that the direct convolution serves
/// on AVX-512 CPUs; the others take the im2col path.
fn layer() -> impl Strategy<Value = Layer> {
    let width = prop_oneof![2..=9usize, Just(16usize), Just(32usize)];
    let shape = (1..=3usize, 1..=6usize, 1..=20usize, 2..=9usize, width);
    (shape, any::<u64>())
        .prop_map(|((batch, c_in, c_out, h, w), seed)| Layer::new(batch, c_in, c_out, (h, w), seed))
}

/// Returns the dropout of `p = 0.25` seen from element `first_index`.
fn chunk_mask(seed: u64, first_index: usize) -> ChunkMask {
    ChunkMask {
        dropout: Dropout::new(0.25).unwrap(),
        seed,
        first_index,
    }
}

/// Returns the reference mask of elements `first..first + len` of a pass.
fn reference_mask(mask: &ChunkMask, first: usize, len: usize) -> Vec<f64> {
    let phase = Phase::Train { seed: mask.seed };
    let ones = vec![1.0; first + len];
    let (_, full) = reference::dropout_forward(&mask.dropout, phase, &ones);
    full[first..].to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn forward_serial_matches_reference(layer in layer()) {
        let mut scratch = ConvScratch::new(&[layer.geometry]);
        let mut output = nan_vec(layer.geometry.output().len());
        let l = &layer;
        conv2d_forward_serial(&l.geometry, &l.input, &l.weight, &l.bias, &mut output, &mut scratch)
            .unwrap();
        let tolerance = sum_tolerance(layer.taps() + 1);
        assert_close("output", &output, &layer.reference_output(), tolerance, REL);
    }

    #[test]
    fn relu_dropout_forward_matches_reference(
        layer in layer(),
        train in any::<bool>(),
        first_index in 0..5000usize,
    ) {
        let mask = chunk_mask(layer.geometry.input().len() as u64, first_index);
        let mask = train.then_some(mask);
        let mut scratch = ConvScratch::new(&[layer.geometry]);
        let mut output = nan_vec(layer.geometry.output().len());
        let l = &layer;
        conv2d_relu_dropout_forward(
            &l.geometry, &l.input, &l.weight, &l.bias, mask.as_ref(), &mut output, &mut scratch,
        )
        .unwrap();

        let mut expected = reference::relu_forward(&layer.reference_output());
        if let Some(mask) = &mask {
            let factors = reference_mask(mask, first_index, expected.len());
            expected.iter_mut().zip(factors).for_each(|(y, m)| *y *= m);
        }
        let tolerance = 2.0 * sum_tolerance(layer.taps() + 1);
        assert_close("output", &output, &expected, tolerance, REL);
    }

    #[test]
    fn conv_maxpool_forward_matches_reference(layer in layer(), size in 2..=3usize) {
        let pool = Pool2dGeometry::new(layer.geometry.output(), size, 2);
        prop_assume!(pool.is_ok());
        let pool = pool.unwrap();
        let mut scratch = ConvScratch::new(&[layer.geometry]);
        let mut pooled = nan_vec(pool.output().len());
        let mut argmax = vec![u32::MAX; pool.output().len()];
        let l = &layer;
        let outputs = (&mut pooled[..], &mut argmax[..]);
        conv2d_maxpool2d_forward(&l.geometry, &pool, &l.input, &l.weight, &l.bias, outputs, &mut scratch)
            .unwrap();

        let (expected, expected_argmax) = reference::maxpool2d_forward(&pool, &layer.reference_output());
        let tolerance = sum_tolerance(layer.taps() + 1);
        assert_close("pooled", &pooled, &expected, tolerance, REL);
        // Near-ties may resolve either way after rounding, so the argmax is
        // only checked where the winner is clear.
        for (i, (&index, &reference_index)) in argmax.iter().zip(&expected_argmax).enumerate() {
            let plane = pool.input().height * pool.input().width;
            assert!((index as usize) < plane, "argmax[{i}] = {index} outside the plane");
            if index != reference_index {
                let output = layer.reference_output();
                let base = i / (pool.output().height * pool.output().width) * plane;
                let gap = (output[base + index as usize] - output[base + reference_index as usize]).abs();
                assert!(gap <= tolerance, "argmax[{i}]: {index} vs {reference_index}, gap {gap}");
            }
        }
    }

    #[test]
    fn backward_serial_matches_reference(layer in layer(), with_input in any::<bool>()) {
        let mut scratch = ConvScratch::new(&[layer.geometry]);
        let mut grad_input = nan_vec(layer.input.len());
        let mut grad_weight = nan_vec(layer.weight.len());
        let l = &layer;
        let grad_input_arg = with_input.then_some(&mut grad_input[..]);
        conv2d_backward_serial(
            &l.geometry, &l.input, &l.weight, &l.grad_output, grad_input_arg, &mut grad_weight,
            &mut scratch,
        )
        .unwrap();

        let (x, w, dy) = (to_f64(&l.input), to_f64(&l.weight), to_f64(&l.grad_output));
        let expected = reference::conv2d_backward(&l.geometry, &x, &w, &dy);
        let positions = l.geometry.output().len() / l.geometry.c_out();
        let input_terms = l.geometry.c_out() * 9;
        assert_close("grad_weight", &grad_weight, &expected.weight, sum_tolerance(positions), REL);
        if with_input {
            assert_close("grad_input", &grad_input, &expected.input, sum_tolerance(input_terms), REL);
        } else {
            assert!(grad_input.iter().all(|x| x.is_nan()), "grad_input was written");
        }
    }

    #[test]
    fn maxpool_backward_bias_matches_reference(
        batch in 1..=3usize,
        channels in 1..=5usize,
        h in 2..=9usize,
        w in 2..=9usize,
        seed in any::<u64>(),
    ) {
        let pool = Pool2dGeometry::new(Shape4::new(batch, channels, h, w), 2, 2).unwrap();
        let mut rng = Rng::new(seed);
        let input = rng.values(pool.input().len());
        let (_, argmax) = reference::maxpool2d_forward(&pool, &to_f64(&input));
        let grad_output = rng.values(pool.output().len());
        let mut grad_input = nan_vec(input.len());
        let mut grad_bias = nan_vec(channels);
        maxpool2d_backward_bias(&pool, &grad_output, &argmax, &mut grad_input, &mut grad_bias)
            .unwrap();

        let dy = to_f64(&grad_output);
        let expected = reference::maxpool2d_backward(&pool, &dy, &argmax);
        assert_close("grad_input", &grad_input, &expected, 0.0, 0.0);
        let plane = pool.input().height * pool.input().width;
        let mut expected_bias = vec![0.0; channels];
        for (index, plane) in expected.chunks_exact(plane).enumerate() {
            expected_bias[index % channels] += plane.iter().sum::<f64>();
        }
        assert_close("grad_bias", &grad_bias, &expected_bias, sum_tolerance(batch * plane), REL);
    }

    #[test]
    fn relu_dropout_backward_bias_matches_reference(
        batch in 1..=3usize,
        channels in 1..=5usize,
        plane in prop_oneof![Just(1usize), Just(7), Just(8), Just(9), Just(33)],
        seed in any::<u64>(),
    ) {
        let shape = Shape4::new(batch, channels, plane, 1);
        let dropout = Dropout::new(0.25).unwrap();
        let mut rng = Rng::new(seed);
        let pre = rng.values(shape.len());
        let (mut relu, mut output, mut mask) = (nan_vec(pre.len()), nan_vec(pre.len()), nan_vec(pre.len()));
        relu_forward(&pre, &mut relu).unwrap();
        dropout_forward(&dropout, Phase::Train { seed }, &relu, &mut output, &mut mask).unwrap();
        let grad_output = rng.values(shape.len());
        let mut grad = grad_output.clone();
        let mut grad_bias = nan_vec(channels);
        relu_dropout_backward_bias(shape, &dropout, &output, &mut grad, &mut grad_bias).unwrap();

        let through_dropout = reference::dropout_backward(&to_f64(&mask), &to_f64(&grad_output));
        let expected = reference::relu_backward(&to_f64(&relu), &through_dropout);
        assert_close("grad", &grad, &expected, 0.0, 1e-6);
        let mut expected_bias = vec![0.0; channels];
        for (index, values) in expected.chunks_exact(plane).enumerate() {
            expected_bias[index % channels] += values.iter().sum::<f64>();
        }
        assert_close("grad_bias", &grad_bias, &expected_bias, sum_tolerance(batch * plane * 2), REL);
    }

    #[test]
    fn linear_serial_matches_reference(
        batch in 1..=20usize,
        in_features in 1..=40usize,
        out_features in 1..=12usize,
        seed in any::<u64>(),
    ) {
        let geometry = LinearGeometry::new(batch, in_features, out_features).unwrap();
        let mut rng = Rng::new(seed);
        let input = rng.values(batch * in_features);
        let weight = rng.values(out_features * in_features);
        let bias = rng.values(out_features);
        let grad_output = rng.values(batch * out_features);
        let mut output = nan_vec(batch * out_features);
        linear_forward_serial(&geometry, &input, &weight, &bias, &mut output).unwrap();
        let (x, w) = (to_f64(&input), to_f64(&weight));
        let expected = reference::linear_forward(&geometry, &x, &w, &to_f64(&bias));
        assert_close("output", &output, &expected, sum_tolerance(in_features + 1), REL);

        let mut grad_input = nan_vec(input.len());
        let mut grad_weight = nan_vec(weight.len());
        let mut grad_bias = nan_vec(bias.len());
        let grads = LinearGrads {
            input: Some(&mut grad_input),
            weight: &mut grad_weight,
            bias: &mut grad_bias,
        };
        linear_backward_serial(&geometry, &input, &weight, &grad_output, grads).unwrap();
        let expected = reference::linear_backward(&geometry, &x, &w, &to_f64(&grad_output));
        assert_close("grad_input", &grad_input, &expected.input, sum_tolerance(out_features), REL);
        assert_close("grad_weight", &grad_weight, &expected.weight, sum_tolerance(batch), REL);
        assert_close("grad_bias", &grad_bias, &expected.bias, sum_tolerance(batch), REL);
    }

    #[test]
    fn softmax_cross_entropy_sum_matches_mean(
        rows in 1..=9usize,
        classes in 1..=12usize,
        seed in any::<u64>(),
    ) {
        let mut rng = Rng::new(seed);
        let logits = rng.values(rows * classes);
        let labels: Vec<usize> = (0..rows).map(|_| (rng.next_u64() % classes as u64) as usize).collect();
        let mut mean_grad = nan_vec(logits.len());
        let mean = softmax_cross_entropy(&logits, &labels, classes, &mut mean_grad).unwrap();
        let mut sum_grad = nan_vec(logits.len());
        let scale = 1.0 / rows as f64;
        let sum = softmax_cross_entropy_sum(&logits, &labels, classes, scale, &mut sum_grad).unwrap();
        assert_eq!((sum * scale) as f32, mean);
        assert_eq!(sum_grad, mean_grad);

        let mut smoothed_grad = nan_vec(logits.len());
        let smoothed =
            softmax_cross_entropy_smoothed_sum(&logits, &labels, classes, 0.0, scale, &mut smoothed_grad)
                .unwrap();
        assert_eq!(smoothed.to_bits(), sum.to_bits());
        assert_eq!(smoothed_grad, sum_grad);
    }

    #[test]
    fn sgd_partial_sums_match_step(
        len in prop_oneof![Just(0usize), Just(1), Just(7), Just(8), Just(9), Just(100)],
        chunks in 1..=4usize,
        seed in any::<u64>(),
    ) {
        let sgd = Sgd { lr: 0.1, momentum: 0.9, weight_decay: 0.01, nesterov: true };
        let mut rng = Rng::new(seed);
        let params = rng.values(len);
        let momentum = rng.values(len);
        let partials = rng.values(chunks * len);
        let mut sum = vec![0.0f32; len];
        for partial in partials.chunks(len.max(1)).take(chunks) {
            sum.iter_mut().zip(partial).for_each(|(s, &g)| *s += g);
        }
        let (mut expected_params, mut expected_momentum) = (params.clone(), momentum.clone());
        sgd.step(&mut expected_params, &sum, &mut expected_momentum).unwrap();
        let (mut fused_params, mut fused_momentum) = (params, momentum);
        sgd.step_partial_sums(&mut fused_params, &partials, &mut fused_momentum).unwrap();
        assert_eq!(fused_params, expected_params);
        assert_eq!(fused_momentum, expected_momentum);
    }
}

#[test]
fn chunk_masks_match_whole_pass() {
    // Two chunks of one pass see the same masks as the pass in one piece.
    let layer = Layer::new(4, 2, 3, (5, 6), 11);
    let mut scratch = ConvScratch::new(&[layer.geometry]);
    let whole_mask = chunk_mask(99, 0);
    let mut whole = nan_vec(layer.geometry.output().len());
    let l = &layer;
    conv2d_relu_dropout_forward(
        &l.geometry,
        &l.input,
        &l.weight,
        &l.bias,
        Some(&whole_mask),
        &mut whole,
        &mut scratch,
    )
    .unwrap();

    let half = layer.geometry.with_batch(2);
    let (in_half, out_half) = (half.input().len(), half.output().len());
    let mut parts = nan_vec(whole.len());
    for (index, out) in parts.chunks_exact_mut(out_half).enumerate() {
        let input = &layer.input[index * in_half..][..in_half];
        let mask = chunk_mask(99, index * out_half);
        conv2d_relu_dropout_forward(
            &half,
            input,
            &l.weight,
            &l.bias,
            Some(&mask),
            out,
            &mut scratch,
        )
        .unwrap();
    }
    assert_eq!(parts, whole);
}

#[test]
fn scratch_too_small_is_length_error() {
    let small = Layer::new(1, 1, 1, (2, 2), 1);
    let large = Layer::new(1, 2, 2, (4, 4), 2);
    let mut scratch = ConvScratch::new(&[small.geometry]);
    let mut output = nan_vec(large.geometry.output().len());
    let l = &large;
    let error = conv2d_forward_serial(
        &l.geometry,
        &l.input,
        &l.weight,
        &l.bias,
        &mut output,
        &mut scratch,
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            KernelError::Length {
                name: "scratch columns",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn forward_only_scratch_serves_forward() {
    let layer = Layer::new(2, 3, 4, (5, 16), 7);
    let mut scratch = ConvScratch::forward_only(&[layer.geometry]);
    let mut output = nan_vec(layer.geometry.output().len());
    let l = &layer;
    conv2d_forward_serial(
        &l.geometry,
        &l.input,
        &l.weight,
        &l.bias,
        &mut output,
        &mut scratch,
    )
    .unwrap();
    let tolerance = sum_tolerance(layer.taps() + 1);
    assert_close("output", &output, &layer.reference_output(), tolerance, REL);

    // Where the forward pass needs less scratch than the backward pass (the
    // direct path), the backward pass reports the shortfall instead of
    // writing past the buffers.
    let mut grad_weight = nan_vec(l.weight.len());
    let result = conv2d_backward_serial(
        &l.geometry,
        &l.input,
        &l.weight,
        &l.grad_output,
        None,
        &mut grad_weight,
        &mut scratch,
    );
    if let Err(error) = result {
        assert!(matches!(error, KernelError::Length { .. }), "{error}");
    }
}

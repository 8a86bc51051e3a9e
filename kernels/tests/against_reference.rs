//! Property tests: every fast kernel against its plain-loop f64 twin in
//! `kernels::reference`, on random shapes. Outputs start as NaN, so an
//! element a kernel never writes fails the comparison.
//!
//! Inputs lie in `[-1, 1)`. A sum of `terms` f32 products then carries a
//! rounding error of at most about `terms * 6e-8`, so the absolute bound is
//! `2e-6 * terms` and the relative one `1e-4`.

mod common;

use common::{assert_close, nan_vec, to_f64, Rng};
use kernels::reference;
use kernels::*;
use proptest::prelude::*;

/// Absolute bound for a sum of `terms` products of values in `[-1, 1)`.
fn sum_tolerance(terms: usize) -> f64 {
    2e-6 * terms as f64
}

const REL: f64 = 1e-4;

#[derive(Debug, Clone)]
struct ConvProblem {
    batch: usize,
    c_in: usize,
    c_out: usize,
    h: usize,
    w: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    seed: u64,
}

impl ConvProblem {
    fn geometry(&self) -> Result<Conv2dGeometry> {
        let input = Shape4::new(self.batch, self.c_in, self.h, self.w);
        Conv2dGeometry::new(input, self.c_out, self.kernel, self.stride, self.padding)
    }

    fn fits(&self) -> bool {
        self.kernel <= self.h.min(self.w) + 2 * self.padding
    }

    /// Checks the forward pass and all three gradients.
    fn check(&self) {
        let geometry = match self.geometry() {
            Ok(geometry) => geometry,
            Err(error) => {
                assert!(!self.fits(), "a fitting kernel was rejected: {error}");
                assert!(matches!(error, KernelError::Geometry { .. }), "{error}");
                return;
            }
        };
        assert!(
            self.fits(),
            "a kernel larger than the padded input was accepted"
        );

        let mut rng = Rng::new(self.seed);
        let input = rng.values(geometry.input().len());
        let weight = rng.values(geometry.weight_len());
        let bias = rng.values(geometry.bias_len());
        let grad_output = rng.values(geometry.output().len());
        let taps = self.c_in * self.kernel * self.kernel;

        let mut output = nan_vec(geometry.output().len());
        conv2d_forward(&geometry, &input, &weight, &bias, &mut output).unwrap();
        let (x, w, b) = (to_f64(&input), to_f64(&weight), to_f64(&bias));
        let expected = reference::conv2d_forward(&geometry, &x, &w, &b);
        assert_close("output", &output, &expected, sum_tolerance(taps + 1), REL);

        let mut grad_input = nan_vec(input.len());
        let mut grad_weight = nan_vec(weight.len());
        let mut grad_bias = nan_vec(bias.len());
        let grads = Conv2dGrads {
            input: Some(&mut grad_input),
            weight: &mut grad_weight,
            bias: &mut grad_bias,
        };
        conv2d_backward(&geometry, &input, &weight, &grad_output, grads).unwrap();
        let expected = reference::conv2d_backward(&geometry, &x, &w, &to_f64(&grad_output));
        let per_image = geometry.output().image_len() / self.c_out;
        let summed = self.batch * per_image;
        let input_terms = self.c_out * self.kernel * self.kernel;
        assert_close(
            "grad_input",
            &grad_input,
            &expected.input,
            sum_tolerance(input_terms),
            REL,
        );
        assert_close(
            "grad_weight",
            &grad_weight,
            &expected.weight,
            sum_tolerance(summed),
            REL,
        );
        assert_close(
            "grad_bias",
            &grad_bias,
            &expected.bias,
            sum_tolerance(summed),
            REL,
        );
    }
}

fn conv_problem() -> impl Strategy<Value = ConvProblem> {
    let shape = (1..=4usize, 1..=8usize, 1..=8usize, 1..=12usize, 1..=12usize);
    let window = (1..=5usize, 1..=2usize, 0..=2usize, any::<u64>());
    (shape, window)
        .prop_filter("h and w must differ", |((_, _, _, h, w), _)| h != w)
        .prop_map(
            |((batch, c_in, c_out, h, w), (kernel, stride, padding, seed))| ConvProblem {
                batch,
                c_in,
                c_out,
                h,
                w,
                kernel,
                stride,
                padding,
                seed,
            },
        )
}

#[derive(Debug, Clone)]
struct PoolProblem {
    batch: usize,
    channels: usize,
    h: usize,
    w: usize,
    size: usize,
    stride: usize,
    /// Draw inputs from `{0, 1, 2}` so windows have ties.
    ties: bool,
    seed: u64,
}

impl PoolProblem {
    fn check(&self) {
        let input_shape = Shape4::new(self.batch, self.channels, self.h, self.w);
        let geometry = match Pool2dGeometry::new(input_shape, self.size, self.stride) {
            Ok(geometry) => geometry,
            Err(error) => {
                assert!(
                    self.size > self.h.min(self.w),
                    "a fitting window was rejected"
                );
                assert!(matches!(error, KernelError::Geometry { .. }), "{error}");
                return;
            }
        };

        let mut rng = Rng::new(self.seed);
        let input = if self.ties {
            rng.levels(input_shape.len(), 3)
        } else {
            rng.values(input_shape.len())
        };
        let out_len = geometry.output().len();
        let mut output = nan_vec(out_len);
        let mut argmax = vec![u32::MAX; out_len];
        maxpool2d_forward(&geometry, &input, &mut output, &mut argmax).unwrap();
        let (expected, expected_argmax) = reference::maxpool2d_forward(&geometry, &to_f64(&input));
        assert_close("output", &output, &expected, 0.0, 0.0);
        assert_eq!(argmax, expected_argmax, "argmax");

        let grad_output = rng.values(out_len);
        let mut grad_input = nan_vec(input.len());
        maxpool2d_backward(&geometry, &grad_output, &argmax, &mut grad_input).unwrap();
        let expected = reference::maxpool2d_backward(&geometry, &to_f64(&grad_output), &argmax);
        let overlaps = self.size.div_ceil(self.stride).pow(2);
        assert_close(
            "grad_input",
            &grad_input,
            &expected,
            sum_tolerance(overlaps),
            REL,
        );
    }
}

fn pool_problem() -> impl Strategy<Value = PoolProblem> {
    let shape = (1..=4usize, 1..=8usize, 1..=12usize, 1..=12usize);
    let window = (1..=4usize, 1..=3usize, any::<bool>(), any::<u64>());
    (shape, window)
        .prop_filter("h and w must differ", |((_, _, h, w), _)| h != w)
        .prop_map(
            |((batch, channels, h, w), (size, stride, ties, seed))| PoolProblem {
                batch,
                channels,
                h,
                w,
                size,
                stride,
                ties,
                seed,
            },
        )
}

/// Lengths around the vector width (8) and the parallel task size (16384).
fn element_len() -> impl Strategy<Value = usize> {
    prop_oneof![0..=40usize, 16_375..=16_393usize]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn conv2d_matches_reference(problem in conv_problem()) {
        problem.check();
    }

    #[test]
    fn conv2d_pointwise_matches_reference(
        batch in 1..=4usize,
        c_in in 1..=8usize,
        c_out in 1..=8usize,
        h in 1..=12usize,
        w in 1..=12usize,
        seed in any::<u64>(),
    ) {
        prop_assume!(h != w);
        let problem =
            ConvProblem { batch, c_in, c_out, h, w, kernel: 1, stride: 1, padding: 0, seed };
        problem.check();
    }

    #[test]
    fn maxpool2d_matches_reference(problem in pool_problem()) {
        problem.check();
    }

    #[test]
    fn relu_matches_reference(len in element_len(), seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let input = rng.values(len);
        let mut output = nan_vec(len);
        relu_forward(&input, &mut output).unwrap();
        let expected = reference::relu_forward(&to_f64(&input));
        assert_close("output", &output, &expected, 0.0, 0.0);

        let grad_output = rng.values(len);
        let mut grad_input = nan_vec(len);
        relu_backward(&output, &grad_output, &mut grad_input).unwrap();
        let expected = reference::relu_backward(&to_f64(&output), &to_f64(&grad_output));
        assert_close("grad_input", &grad_input, &expected, 0.0, 0.0);
    }

    #[test]
    fn dropout_matches_reference(
        len in element_len(),
        p in prop_oneof![Just(0.0f32), Just(0.1), Just(0.5), Just(0.9)],
        train in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let dropout = Dropout::new(p).unwrap();
        let phase = if train { Phase::Train { seed } } else { Phase::Eval };
        let mut rng = Rng::new(seed);
        let input = rng.values(len);
        let mut output = nan_vec(len);
        let mut mask = nan_vec(len);
        dropout_forward(&dropout, phase, &input, &mut output, &mut mask).unwrap();
        let (expected, expected_mask) = reference::dropout_forward(&dropout, phase, &to_f64(&input));
        assert_close("mask", &mask, &expected_mask, 0.0, 0.0);
        assert_close("output", &output, &expected, 0.0, 1e-6);

        let grad_output = rng.values(len);
        let mut grad_input = nan_vec(len);
        dropout_backward(&mask, &grad_output, &mut grad_input).unwrap();
        let expected = reference::dropout_backward(&to_f64(&mask), &to_f64(&grad_output));
        assert_close("grad_input", &grad_input, &expected, 0.0, 1e-6);
    }

    #[test]
    fn linear_matches_reference(
        batch in 1..=40usize,
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
        linear_forward(&geometry, &input, &weight, &bias, &mut output).unwrap();
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
        linear_backward(&geometry, &input, &weight, &grad_output, grads).unwrap();
        let expected = reference::linear_backward(&geometry, &x, &w, &to_f64(&grad_output));
        assert_close("grad_input", &grad_input, &expected.input, sum_tolerance(out_features), REL);
        assert_close("grad_weight", &grad_weight, &expected.weight, sum_tolerance(batch), REL);
        assert_close("grad_bias", &grad_bias, &expected.bias, sum_tolerance(batch), REL);
    }

    #[test]
    fn softmax_cross_entropy_matches_reference(
        batch in 1..=6usize,
        classes in 1..=12usize,
        scale in prop_oneof![Just(1.0f32), Just(30.0), Just(1e4)],
        seed in any::<u64>(),
    ) {
        let mut rng = Rng::new(seed);
        let logits: Vec<f32> = rng.values(batch * classes).iter().map(|x| x * scale).collect();
        let labels: Vec<usize> = (0..batch).map(|_| (rng.next_u64() as usize) % classes).collect();
        let mut grad = nan_vec(logits.len());
        let loss = softmax_cross_entropy(&logits, &labels, classes, &mut grad).unwrap();
        let (expected_loss, expected_grad) =
            reference::softmax_cross_entropy(&to_f64(&logits), &labels, classes);
        assert_close("loss", &[loss], &[expected_loss], 1e-6, 1e-6);
        assert_close("grad_logits", &grad, &expected_grad, 1e-7, 1e-5);

        let mut probabilities = nan_vec(logits.len());
        softmax(&logits, classes, &mut probabilities).unwrap();
        let expected = reference::softmax(&to_f64(&logits), classes);
        assert_close("probabilities", &probabilities, &expected, 1e-7, 1e-5);
    }

    #[test]
    fn smoothed_cross_entropy_matches_reference(
        batch in 1..=6usize,
        classes in 1..=12usize,
        smoothing in prop_oneof![Just(0.0f32), Just(0.1), Just(0.5), Just(1.0), 0.0f32..1.0],
        scale in prop_oneof![Just(1.0f32), Just(30.0), Just(1e4)],
        seed in any::<u64>(),
    ) {
        let mut rng = Rng::new(seed);
        let logits: Vec<f32> = rng.values(batch * classes).iter().map(|x| x * scale).collect();
        let labels: Vec<usize> = (0..batch).map(|_| (rng.next_u64() as usize) % classes).collect();
        let mut grad = nan_vec(logits.len());
        let grad_scale = 1.0 / batch as f64;
        let sum = softmax_cross_entropy_smoothed_sum(
            &logits, &labels, classes, smoothing, grad_scale, &mut grad,
        )
        .unwrap();
        let (expected_loss, expected_grad) = reference::softmax_cross_entropy_smoothed(
            &to_f64(&logits), &labels, classes, f64::from(smoothing),
        );
        let loss_tolerance = 1e-6 * f64::from(scale);
        assert_close("loss", &[(sum * grad_scale) as f32], &[expected_loss], loss_tolerance, 1e-6);
        assert_close("grad_logits", &grad, &expected_grad, 1e-7, 1e-5);
    }

    #[test]
    fn sgd_matches_reference(
        len in 0..=40usize,
        momentum in prop_oneof![Just(0.0f32), Just(0.9)],
        weight_decay in prop_oneof![Just(0.0f32), Just(5e-4)],
        nesterov in any::<bool>(),
        seed in any::<u64>(),
    ) {
        prop_assume!(momentum > 0.0 || !nesterov);
        let sgd = Sgd { lr: 0.05, momentum, weight_decay, nesterov };
        let mut rng = Rng::new(seed);
        let mut params = rng.values(len);
        let mut buffer = vec![0.0; len];
        let mut expected_params = to_f64(&params);
        let mut expected_buffer = vec![0.0; len];

        // Three steps, so the momentum buffer takes part.
        for _ in 0..3 {
            let grads = rng.values(len);
            sgd.step(&mut params, &grads, &mut buffer).unwrap();
            reference::sgd_step(&sgd, &mut expected_params, &to_f64(&grads), &mut expected_buffer);
        }
        assert_close("params", &params, &expected_params, 1e-6, 1e-5);
        assert_close("momentum_buffer", &buffer, &expected_buffer, 1e-6, 1e-5);
    }
}

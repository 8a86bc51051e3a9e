//! Gradient checks: each fast backward pass against central finite
//! differences of a scalar loss, computed in f64 through the reference
//! forward pass.
//!
//! The loss is `sum(output * r)` for random weights `r`, so the gradient of
//! the output is `r`. Unless a test states otherwise, the step is `1e-3`.
//! Convolution, linear and dropout are linear in each argument, so their
//! differences are exact up to f64 rounding (about `1e-12`), and the bound
//! `1e-4 + 1e-4 * |numeric|` covers the f32 rounding of the fast backward.

mod common;

use common::{assert_close, numeric_grad, to_f64, weighted_sum, Rng};
use kernels::reference;
use kernels::*;
use proptest::prelude::*;

const STEP: f64 = 1e-3;
const ABS: f64 = 1e-4;
const REL: f64 = 1e-4;

/// Compares the analytic gradients of the input, weight and bias with
/// central differences of `loss(input, weight, bias)`.
fn check_three(
    args: [&[f32]; 3],
    analytic: [&[f32]; 3],
    loss: impl Fn(&[f64], &[f64], &[f64]) -> f64,
) {
    let [x, w, b] = args.map(to_f64);
    let numeric = [
        numeric_grad(&x, STEP, |x| loss(x, &w, &b)),
        numeric_grad(&w, STEP, |w| loss(&x, w, &b)),
        numeric_grad(&b, STEP, |b| loss(&x, &w, b)),
    ];
    let names = ["grad_input", "grad_weight", "grad_bias"];
    for ((name, analytic), numeric) in names.iter().zip(analytic).zip(&numeric) {
        assert_close(name, analytic, numeric, ABS, REL);
    }
}

fn conv_gradcheck(geometry: &Conv2dGeometry, seed: u64) {
    let mut rng = Rng::new(seed);
    let input = rng.values(geometry.input().len());
    let weight = rng.values(geometry.weight_len());
    let bias = rng.values(geometry.bias_len());
    let r = rng.values(geometry.output().len());

    let mut grad_input = vec![f32::NAN; input.len()];
    let mut grad_weight = vec![f32::NAN; weight.len()];
    let mut grad_bias = vec![f32::NAN; bias.len()];
    let grads = Conv2dGrads {
        input: Some(&mut grad_input),
        weight: &mut grad_weight,
        bias: &mut grad_bias,
    };
    conv2d_backward(geometry, &input, &weight, &r, grads).unwrap();

    check_three(
        [&input, &weight, &bias],
        [&grad_input, &grad_weight, &grad_bias],
        |x, w, b| weighted_sum(&reference::conv2d_forward(geometry, x, w, b), &r),
    );
}

fn linear_gradcheck(geometry: &LinearGeometry, seed: u64) {
    let mut rng = Rng::new(seed);
    let input = rng.values(geometry.batch * geometry.in_features);
    let weight = rng.values(geometry.out_features * geometry.in_features);
    let bias = rng.values(geometry.out_features);
    let r = rng.values(geometry.batch * geometry.out_features);

    let mut grad_input = vec![f32::NAN; input.len()];
    let mut grad_weight = vec![f32::NAN; weight.len()];
    let mut grad_bias = vec![f32::NAN; bias.len()];
    let grads = LinearGrads {
        input: Some(&mut grad_input),
        weight: &mut grad_weight,
        bias: &mut grad_bias,
    };
    linear_backward(geometry, &input, &weight, &r, grads).unwrap();

    check_three(
        [&input, &weight, &bias],
        [&grad_input, &grad_weight, &grad_bias],
        |x, w, b| weighted_sum(&reference::linear_forward(geometry, x, w, b), &r),
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn conv2d_backward_gradcheck(
        batch in 1..=2usize,
        c_in in 1..=3usize,
        c_out in 1..=3usize,
        h in 2..=6usize,
        w in 2..=6usize,
        kernel in 1..=3usize,
        stride in 1..=2usize,
        padding in 0..=1usize,
        seed in any::<u64>(),
    ) {
        prop_assume!(h != w && kernel <= h.min(w) + 2 * padding);
        let input = Shape4::new(batch, c_in, h, w);
        let geometry = Conv2dGeometry::new(input, c_out, kernel, stride, padding).unwrap();
        conv_gradcheck(&geometry, seed);
    }

    #[test]
    fn linear_backward_gradcheck(
        batch in 1..=20usize,
        in_features in 1..=12usize,
        out_features in 1..=6usize,
        seed in any::<u64>(),
    ) {
        let geometry = LinearGeometry::new(batch, in_features, out_features).unwrap();
        linear_gradcheck(&geometry, seed);
    }

    /// Inputs are a shuffled ladder with spacing 0.1, far wider than the
    /// step, so no window's maximum changes under the perturbation.
    #[test]
    fn maxpool2d_backward_gradcheck(
        channels in 1..=3usize,
        h in 2..=7usize,
        w in 2..=7usize,
        size in 1..=3usize,
        stride in 1..=2usize,
        seed in any::<u64>(),
    ) {
        prop_assume!(h != w && size <= h.min(w));
        let shape = Shape4::new(2, channels, h, w);
        let geometry = Pool2dGeometry::new(shape, size, stride).unwrap();
        let mut rng = Rng::new(seed);
        let input: Vec<f32> =
            rng.permutation(shape.len()).iter().map(|&i| i as f32 * 0.1 - 1.0).collect();
        let r = rng.values(geometry.output().len());

        let mut output = vec![f32::NAN; r.len()];
        let mut argmax = vec![u32::MAX; r.len()];
        maxpool2d_forward(&geometry, &input, &mut output, &mut argmax).unwrap();
        let mut grad_input = vec![f32::NAN; input.len()];
        maxpool2d_backward(&geometry, &r, &argmax, &mut grad_input).unwrap();

        let numeric = numeric_grad(&to_f64(&input), STEP, |x| {
            weighted_sum(&reference::maxpool2d_forward(&geometry, x).0, &r)
        });
        assert_close("grad_input", &grad_input, &numeric, ABS, REL);
    }

    /// Inputs keep at least 0.05 away from the kink at zero, far wider than
    /// the step.
    #[test]
    fn relu_backward_gradcheck(len in 1..=64usize, seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let input: Vec<f32> = rng
            .values(len)
            .iter()
            .map(|&x| if x >= 0.0 { x + 0.05 } else { x - 0.05 })
            .collect();
        let r = rng.values(len);
        let mut output = vec![f32::NAN; len];
        relu_forward(&input, &mut output).unwrap();
        let mut grad_input = vec![f32::NAN; len];
        relu_backward(&output, &r, &mut grad_input).unwrap();

        let numeric = numeric_grad(&to_f64(&input), STEP, |x| {
            weighted_sum(&reference::relu_forward(x), &r)
        });
        assert_close("grad_input", &grad_input, &numeric, ABS, REL);
    }

    /// The seed fixes the mask, so the loss is linear in the input.
    #[test]
    fn dropout_backward_gradcheck(len in 1..=64usize, seed in any::<u64>()) {
        let dropout = Dropout::new(0.3).unwrap();
        let phase = Phase::Train { seed };
        let mut rng = Rng::new(seed);
        let input = rng.values(len);
        let r = rng.values(len);
        let mut output = vec![f32::NAN; len];
        let mut mask = vec![f32::NAN; len];
        dropout_forward(&dropout, phase, &input, &mut output, &mut mask).unwrap();
        let mut grad_input = vec![f32::NAN; len];
        dropout_backward(&mask, &r, &mut grad_input).unwrap();

        let numeric = numeric_grad(&to_f64(&input), STEP, |x| {
            weighted_sum(&reference::dropout_forward(&dropout, phase, x).0, &r)
        });
        assert_close("grad_input", &grad_input, &numeric, ABS, REL);
    }

    /// The loss is the mean cross-entropy itself. It is smooth, so the step
    /// `1e-4` leaves a truncation error near `1e-8`. Each gradient element
    /// is at most 1, and the bound is `1e-6 + 1e-4 * |numeric|`.
    #[test]
    fn softmax_cross_entropy_gradcheck(
        batch in 1..=4usize,
        classes in 1..=10usize,
        seed in any::<u64>(),
    ) {
        let mut rng = Rng::new(seed);
        let logits: Vec<f32> = rng.values(batch * classes).iter().map(|x| 4.0 * x).collect();
        let labels: Vec<usize> = (0..batch).map(|_| (rng.next_u64() as usize) % classes).collect();
        let mut grad = vec![f32::NAN; logits.len()];
        softmax_cross_entropy(&logits, &labels, classes, &mut grad).unwrap();

        let numeric = numeric_grad(&to_f64(&logits), 1e-4, |x| {
            reference::softmax_cross_entropy(x, &labels, classes).0
        });
        assert_close("grad_logits", &grad, &numeric, 1e-6, 1e-4);
    }

    /// As `softmax_cross_entropy_gradcheck`, with label smoothing: the
    /// gradient of the summed loss times `1 / batch` against central
    /// differences of the reference's mean loss.
    #[test]
    fn smoothed_cross_entropy_gradcheck(
        batch in 1..=4usize,
        classes in 1..=10usize,
        smoothing in 0.0f32..=1.0,
        seed in any::<u64>(),
    ) {
        let mut rng = Rng::new(seed);
        let logits: Vec<f32> = rng.values(batch * classes).iter().map(|x| 4.0 * x).collect();
        let labels: Vec<usize> = (0..batch).map(|_| (rng.next_u64() as usize) % classes).collect();
        let mut grad = vec![f32::NAN; logits.len()];
        let scale = 1.0 / batch as f64;
        softmax_cross_entropy_smoothed_sum(&logits, &labels, classes, smoothing, scale, &mut grad)
            .unwrap();

        let smoothing = f64::from(smoothing);
        let numeric = numeric_grad(&to_f64(&logits), 1e-4, |x| {
            reference::softmax_cross_entropy_smoothed(x, &labels, classes, smoothing).0
        });
        assert_close("grad_logits", &grad, &numeric, 1e-6, 1e-4);
    }
}

//! Convolution passes against the plain-loop reference on shapes whose
//! output rows are a multiple of 16 wide. On AVX-512 CPUs the direct kernel
//! computes them: the forward pass, and the input gradient where the input
//! rows are a multiple of 16 wide too. The shapes cover kernel sizes 1 to
//! 5, paddings 0 to 2, channel counts that are not a multiple of 8, and a
//! lone 16-position half tile when the output has an odd number of 16-wide
//! rows.

mod common;

use common::{assert_close, nan_vec, to_f64, Rng};
use kernels::reference;
use kernels::*;
use proptest::prelude::*;

/// Returns the stride-1 convolution whose output is `out_h` rows of `out_w`
/// with a `kernel x kernel` filter and `padding` zeros on each side.
fn geometry(
    (batch, c_in, c_out): (usize, usize, usize),
    (out_h, out_w): (usize, usize),
    kernel: usize,
    padding: usize,
) -> Option<Conv2dGeometry> {
    let h = (out_h + kernel - 1).checked_sub(2 * padding)?;
    let w = (out_w + kernel - 1).checked_sub(2 * padding)?;
    if h == 0 || w == 0 {
        return None;
    }
    Conv2dGeometry::new(Shape4::new(batch, c_in, h, w), c_out, kernel, 1, padding).ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn direct_forward_matches_reference(
        counts in (1..=2usize, 1..=7usize, 1..=19usize),
        out_h in 1..=5usize,
        out_w in prop_oneof![Just(16usize), Just(32), Just(48)],
        kernel in 1..=5usize,
        padding in 0..=2usize,
        seed in any::<u64>(),
    ) {
        let geometry = geometry(counts, (out_h, out_w), kernel, padding);
        prop_assume!(geometry.is_some());
        let geometry = geometry.unwrap();
        prop_assert_eq!(geometry.output().height, out_h);
        prop_assert_eq!(geometry.output().width, out_w);
        let mut rng = Rng::new(seed);
        let input = rng.values(geometry.input().len());
        let weight = rng.values(geometry.weight_len());
        let bias = rng.values(geometry.bias_len());

        // The scratch is sized for a batch of three, more than the pass uses.
        let mut scratch = ConvScratch::new(&[geometry, geometry.with_batch(3)]);
        let mut output = nan_vec(geometry.output().len());
        conv2d_forward_serial(&geometry, &input, &weight, &bias, &mut output, &mut scratch)
            .unwrap();

        let expected = reference::conv2d_forward(
            &geometry, &to_f64(&input), &to_f64(&weight), &to_f64(&bias),
        );
        let terms = geometry.input().channels * kernel * kernel + 1;
        assert_close("output", &output, &expected, 2e-6 * terms as f64, 1e-4);
    }

    #[test]
    fn direct_backward_matches_reference(
        counts in (1..=2usize, 1..=7usize, 1..=19usize),
        out_h in 1..=4usize,
        out_w in prop_oneof![Just(16usize), Just(32)],
        kernel in 1..=5usize,
        padding in 0..=2usize,
        seed in any::<u64>(),
    ) {
        let geometry = geometry(counts, (out_h, out_w), kernel, padding);
        prop_assume!(geometry.is_some());
        let geometry = geometry.unwrap();
        let mut rng = Rng::new(seed);
        let input = rng.values(geometry.input().len());
        let weight = rng.values(geometry.weight_len());
        let grad_output = rng.values(geometry.output().len());
        let mut scratch = ConvScratch::new(&[geometry]);
        let mut grad_input = nan_vec(input.len());
        let mut grad_weight = nan_vec(weight.len());
        conv2d_backward_serial(
            &geometry, &input, &weight, &grad_output, Some(&mut grad_input), &mut grad_weight,
            &mut scratch,
        )
        .unwrap();

        let (x, w, dy) = (to_f64(&input), to_f64(&weight), to_f64(&grad_output));
        let expected = reference::conv2d_backward(&geometry, &x, &w, &dy);
        let input_terms = geometry.c_out() * kernel * kernel;
        assert_close("grad_input", &grad_input, &expected.input, 2e-6 * input_terms as f64, 1e-4);
        let positions = geometry.output().height * geometry.output().width * counts.0;
        assert_close("grad_weight", &grad_weight, &expected.weight, 2e-6 * positions as f64, 1e-4);
    }

    #[test]
    fn shared_scratch_keeps_borders_zero(seed in any::<u64>()) {
        // Two layers of different padded sizes share one scratch, in both
        // orders, as the network's chunks do.
        let wide = Conv2dGeometry::new(Shape4::new(1, 3, 32, 32), 8, 3, 1, 1).unwrap();
        let narrow = Conv2dGeometry::new(Shape4::new(1, 5, 16, 16), 9, 3, 1, 1).unwrap();
        let mut scratch = ConvScratch::new(&[wide, narrow]);
        let mut rng = Rng::new(seed);
        for geometry in [wide, narrow, wide] {
            let input = rng.values(geometry.input().len());
            let weight = rng.values(geometry.weight_len());
            let bias = rng.values(geometry.bias_len());
            let mut output = nan_vec(geometry.output().len());
            conv2d_forward_serial(&geometry, &input, &weight, &bias, &mut output, &mut scratch)
                .unwrap();
            let expected = reference::conv2d_forward(
                &geometry, &to_f64(&input), &to_f64(&weight), &to_f64(&bias),
            );
            let terms = geometry.input().channels * 9 + 1;
            assert_close("output", &output, &expected, 2e-6 * terms as f64, 1e-4);
        }
    }
}

/// Returns the largest difference between `a` and `b` relative to the
/// largest magnitude in `b`.
fn relative_gap(a: &[f32], b: &[f32]) -> f64 {
    let scale = b.iter().fold(0f64, |m, &x| m.max(f64::from(x).abs()));
    let gap = a.iter().zip(b).fold(0f64, |m, (&x, &y)| {
        m.max((f64::from(x) - f64::from(y)).abs())
    });
    gap / scale
}

#[test]
fn network_shapes_match_im2col_path() {
    // The four convolutions of the network at a chunk of 8 images, against
    // the batch-parallel passes, which always use im2col and GEMM.
    let layers = [(3, 32, 32), (32, 32, 32), (32, 64, 16), (64, 64, 16)];
    let mut rng = Rng::new(11);
    for (c_in, c_out, side) in layers {
        let geometry =
            Conv2dGeometry::new(Shape4::new(8, c_in, side, side), c_out, 3, 1, 1).unwrap();
        let input = rng.values(geometry.input().len());
        let weight = rng.values(geometry.weight_len());
        let bias = rng.values(geometry.bias_len());
        let grad_output = rng.values(geometry.output().len());
        let mut scratch = ConvScratch::new(&[geometry]);

        let mut output = nan_vec(geometry.output().len());
        conv2d_forward_serial(&geometry, &input, &weight, &bias, &mut output, &mut scratch)
            .unwrap();
        let mut expected = nan_vec(geometry.output().len());
        conv2d_forward(&geometry, &input, &weight, &bias, &mut expected).unwrap();
        let gap = relative_gap(&output, &expected);
        assert!(
            gap < 1e-5,
            "forward {c_in}->{c_out} at {side}: relative gap {gap}"
        );

        let mut grad_input = nan_vec(input.len());
        let mut grad_weight = nan_vec(weight.len());
        conv2d_backward_serial(
            &geometry,
            &input,
            &weight,
            &grad_output,
            Some(&mut grad_input),
            &mut grad_weight,
            &mut scratch,
        )
        .unwrap();
        let mut expected_input = nan_vec(input.len());
        let mut expected_weight = nan_vec(weight.len());
        let mut expected_bias = nan_vec(bias.len());
        let grads = Conv2dGrads {
            input: Some(&mut expected_input),
            weight: &mut expected_weight,
            bias: &mut expected_bias,
        };
        conv2d_backward(&geometry, &input, &weight, &grad_output, grads).unwrap();
        let gap = relative_gap(&grad_input, &expected_input);
        assert!(
            gap < 1e-5,
            "grad_input {c_in}->{c_out} at {side}: relative gap {gap}"
        );
        let gap = relative_gap(&grad_weight, &expected_weight);
        assert!(
            gap < 1e-5,
            "grad_weight {c_in}->{c_out} at {side}: relative gap {gap}"
        );
    }
}

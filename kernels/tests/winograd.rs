//! The serial convolution passes against the plain-loop reference on 3x3,
//! stride-1, padding-1 shapes whose 2x2 output tiles come in multiples of
//! 32 and whose rows are a multiple of 16 wide. On AVX-512 CPUs the
//! Winograd path computes their forward pass and input gradient when they
//! have 8 or more input channels, and with multiples of 32 channels in and
//! 16 out their weight gradient. The shapes cover one and several blocks
//! of tiles per image, rows of 8, 16 and 24 tiles, and channel counts on
//! both sides of those limits.

mod common;

use common::{assert_close, nan_vec, to_f64, Rng};
use kernels::reference;
use kernels::*;
use proptest::prelude::*;

/// Output sizes `(height, width)` with a multiple of 32 tiles of 2x2.
fn output_size() -> impl Strategy<Value = (usize, usize)> {
    prop_oneof![
        Just((4usize, 32usize)),
        Just((8, 16)),
        Just((8, 32)),
        Just((16, 16)),
        Just((8, 48)),
        Just((12, 32)),
        Just((32, 32)),
    ]
}

fn geometry(counts: (usize, usize, usize), (h, w): (usize, usize)) -> Conv2dGeometry {
    let (batch, c_in, c_out) = counts;
    Conv2dGeometry::new(Shape4::new(batch, c_in, h, w), c_out, 3, 1, 1).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn winograd_forward_matches_reference(
        counts in (1..=2usize, 1..=19usize, 1..=19usize),
        size in output_size(),
        seed in any::<u64>(),
    ) {
        let geometry = geometry(counts, size);
        let mut rng = Rng::new(seed);
        let input = rng.values(geometry.input().len());
        let weight = rng.values(geometry.weight_len());
        let bias = rng.values(geometry.bias_len());

        let mut scratch = ConvScratch::forward_only(&[geometry]);
        let mut output = nan_vec(geometry.output().len());
        conv2d_forward_serial(&geometry, &input, &weight, &bias, &mut output, &mut scratch)
            .unwrap();

        let expected = reference::conv2d_forward(
            &geometry, &to_f64(&input), &to_f64(&weight), &to_f64(&bias),
        );
        let terms = geometry.input().channels * 9 + 1;
        assert_close("output", &output, &expected, 4e-6 * terms as f64, 1e-4);
    }

    #[test]
    fn winograd_input_gradient_matches_reference(
        counts in (1..=2usize, 1..=19usize, 1..=19usize),
        size in output_size(),
        seed in any::<u64>(),
    ) {
        let geometry = geometry(counts, size);
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
        let terms = geometry.c_out() * 9;
        assert_close("grad_input", &grad_input, &expected.input, 4e-6 * terms as f64, 1e-4);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn winograd_weight_gradient_matches_reference(
        batch in 1..=4usize,
        c_in in prop_oneof![Just(32usize), Just(64), Just(7)],
        c_out in prop_oneof![Just(16usize), Just(48), Just(9)],
        size in output_size(),
        seed in any::<u64>(),
    ) {
        // Multiples of 32 channels in and 16 out take the Winograd weight
        // gradient; the other counts take the direct one.
        let geometry = geometry((batch, c_in, c_out), size);
        let mut rng = Rng::new(seed);
        let input = rng.values(geometry.input().len());
        let weight = rng.values(geometry.weight_len());
        let grad_output = rng.values(geometry.output().len());

        let mut scratch = ConvScratch::new(&[geometry]);
        let mut grad_weight = nan_vec(weight.len());
        conv2d_backward_serial(
            &geometry, &input, &weight, &grad_output, None, &mut grad_weight, &mut scratch,
        )
        .unwrap();

        let (x, w, dy) = (to_f64(&input), to_f64(&weight), to_f64(&grad_output));
        let expected = reference::conv2d_backward(&geometry, &x, &w, &dy);
        let terms = geometry.output().len() / geometry.c_out();
        assert_close("grad_weight", &grad_weight, &expected.weight, 4e-6 * terms as f64, 1e-4);
    }
}

#[test]
fn winograd_handles_values_far_from_one() {
    // Large and small magnitudes in one image: the transforms add and
    // subtract neighbours, so the error must stay relative to the inputs.
    let geometry = geometry((1, 8, 9), (8, 16));
    let mut rng = Rng::new(5);
    let input: Vec<f32> = rng
        .values(geometry.input().len())
        .iter()
        .enumerate()
        .map(|(i, x)| if i % 3 == 0 { x * 1e3 } else { x * 1e-3 })
        .collect();
    let weight = rng.values(geometry.weight_len());
    let bias = vec![0.0; geometry.bias_len()];
    let mut scratch = ConvScratch::forward_only(&[geometry]);
    let mut output = nan_vec(geometry.output().len());
    conv2d_forward_serial(&geometry, &input, &weight, &bias, &mut output, &mut scratch).unwrap();
    let expected =
        reference::conv2d_forward(&geometry, &to_f64(&input), &to_f64(&weight), &to_f64(&bias));
    assert_close("output", &output, &expected, 4e-6 * 8.0 * 9.0 * 1e3, 1e-4);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn winograd_pooling_matches_separate_passes(
        counts in (1..=2usize, 8..=19usize, 1..=19usize),
        size in output_size(),
        seed in any::<u64>(),
        ties in any::<bool>(),
    ) {
        // The fused pass pools the Winograd output tiles in registers. It
        // must give the values and argmax of the convolution followed by
        // the plain pooling pass, bit for bit. Inputs of few levels and
        // zero weights make ties, which the first of a window wins.
        let geometry = geometry(counts, size);
        let pool = Pool2dGeometry::new(geometry.output(), 2, 2).unwrap();
        let mut rng = Rng::new(seed);
        let input = if ties { rng.levels(geometry.input().len(), 3) } else { rng.values(geometry.input().len()) };
        let mut weight = rng.values(geometry.weight_len());
        if ties {
            weight.iter_mut().step_by(3).for_each(|w| *w = 0.0);
        }
        let bias = rng.values(geometry.bias_len());
        let mut scratch = ConvScratch::new(&[geometry]);

        let mut pooled = nan_vec(pool.output().len());
        let mut argmax = vec![u32::MAX; pool.output().len()];
        let outputs = (&mut pooled[..], &mut argmax[..]);
        conv2d_maxpool2d_forward(&geometry, &pool, &input, &weight, &bias, outputs, &mut scratch)
            .unwrap();

        let mut conv = nan_vec(geometry.output().len());
        conv2d_forward_serial(&geometry, &input, &weight, &bias, &mut conv, &mut scratch).unwrap();
        let mut expected = nan_vec(pool.output().len());
        let mut expected_argmax = vec![u32::MAX; pool.output().len()];
        maxpool2d_forward(&pool, &conv, &mut expected, &mut expected_argmax).unwrap();
        prop_assert_eq!(pooled, expected);
        prop_assert_eq!(argmax, expected_argmax);
    }
}

//! Weights packed once with `PackedConv` give the serial passes exactly the
//! results of plain weights. The shapes take each path on AVX-512 CPUs:
//! Winograd, direct and im2col. Packed weights are rejected by a pass or
//! geometry they were not made for.

mod common;

use common::{nan_vec, Rng};
use kernels::*;
use proptest::prelude::*;

/// Geometries `(c_in, c_out, side, kernel, padding)`: 3x3 padding 1 at
/// widths 16 and 32 with 8 or more input channels (Winograd), 3 channels
/// or a 5x5 kernel at width 16 or 32 (direct), and width 10 (im2col).
fn shapes() -> impl Strategy<Value = (usize, usize, usize, usize, usize)> {
    prop_oneof![
        Just((8usize, 8usize, 32usize, 3usize, 1usize)),
        Just((9, 5, 16, 3, 1)),
        Just((3, 8, 32, 3, 1)),
        Just((4, 6, 16, 5, 2)),
        Just((3, 5, 10, 3, 1)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn packed_weights_match_plain_weights(
        (c_in, c_out, side, kernel, padding) in shapes(),
        batch in 1..=3usize,
        seed in any::<u64>(),
    ) {
        let geometry =
            Conv2dGeometry::new(Shape4::new(batch, c_in, side, side), c_out, kernel, 1, padding)
                .unwrap();
        let mut rng = Rng::new(seed);
        let input = rng.values(geometry.input().len());
        let weight = rng.values(geometry.weight_len());
        let bias = rng.values(geometry.bias_len());
        let grad_output = rng.values(geometry.output().len());
        // Packed at batch 1 and used at the batch of the pass.
        let single = geometry.with_batch(1);
        let forward = PackedConv::forward(&single, &weight).unwrap();
        let backward = PackedConv::input_gradient(&single, &weight).unwrap();
        let mut scratch = ConvScratch::new(&[geometry]);

        let mut plain = nan_vec(geometry.output().len());
        conv2d_forward_serial(&geometry, &input, &weight, &bias, &mut plain, &mut scratch)
            .unwrap();
        let mut packed = nan_vec(geometry.output().len());
        conv2d_forward_serial(&geometry, &input, &forward, &bias, &mut packed, &mut scratch)
            .unwrap();
        prop_assert_eq!(&plain, &packed);

        let mut plain_input = nan_vec(input.len());
        let mut plain_weight = nan_vec(weight.len());
        conv2d_backward_serial(
            &geometry, &input, &weight, &grad_output, Some(&mut plain_input),
            &mut plain_weight, &mut scratch,
        )
        .unwrap();
        let mut packed_input = nan_vec(input.len());
        let mut packed_weight = nan_vec(weight.len());
        conv2d_backward_serial(
            &geometry, &input, &backward, &grad_output, Some(&mut packed_input),
            &mut packed_weight, &mut scratch,
        )
        .unwrap();
        prop_assert_eq!(plain_input, packed_input);
        prop_assert_eq!(plain_weight, packed_weight);
    }
}

#[test]
fn packed_weights_refuse_another_pass_or_geometry() {
    let geometry = Conv2dGeometry::new(Shape4::new(2, 3, 16, 16), 8, 3, 1, 1).unwrap();
    let other = Conv2dGeometry::new(Shape4::new(2, 3, 32, 32), 8, 3, 1, 1).unwrap();
    let weight = vec![0.5; geometry.weight_len()];
    let bias = vec![0.0; geometry.bias_len()];
    let input = vec![1.0; geometry.input().len()];
    let mut output = vec![0.0; geometry.output().len()];
    let mut scratch = ConvScratch::new(&[geometry, other]);

    let gradient = PackedConv::input_gradient(&geometry, &weight).unwrap();
    let error = conv2d_forward_serial(
        &geometry,
        &input,
        &gradient,
        &bias,
        &mut output,
        &mut scratch,
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("PackedConv::forward"), "{message}");

    let wide = PackedConv::forward(&other, &weight).unwrap();
    let error = conv2d_forward_serial(&geometry, &input, &wide, &bias, &mut output, &mut scratch)
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("[1, 3, 32, 32]") && message.contains("[2, 3, 16, 16]"),
        "{message}"
    );

    let forward = PackedConv::forward(&geometry, &weight).unwrap();
    let grad_output = vec![1.0; geometry.output().len()];
    let mut grad_weight = vec![0.0; weight.len()];
    let error = conv2d_backward_serial(
        &geometry,
        &input,
        &forward,
        &grad_output,
        None,
        &mut grad_weight,
        &mut scratch,
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("PackedConv::input_gradient"),
        "{error}"
    );
}

#[test]
fn packing_checks_the_weight_length() {
    let geometry = Conv2dGeometry::new(Shape4::new(1, 3, 16, 16), 8, 3, 1, 1).unwrap();
    let short = vec![0.0; geometry.weight_len() - 1];
    let error = PackedConv::forward(&geometry, &short).unwrap_err();
    assert!(
        matches!(error, KernelError::Length { name: "weight", .. }),
        "{error}"
    );
    let error = PackedConv::input_gradient(&geometry, &short).unwrap_err();
    assert!(
        matches!(error, KernelError::Length { name: "weight", .. }),
        "{error}"
    );
}

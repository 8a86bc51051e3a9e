//! Every error variant: wrong lengths, impossible geometry, parameters out
//! of range and labels out of range.

use kernels::*;

/// Asserts that `result` is a length error for argument `name`.
fn assert_length<T: std::fmt::Debug>(result: Result<T>, name: &str) {
    match result {
        Err(KernelError::Length {
            name: found,
            expected,
            found: len,
            ..
        }) => {
            assert_eq!(found, name);
            assert_ne!(expected, len);
        }
        other => panic!("expected a length error for {name}, got {other:?}"),
    }
}

/// Asserts that `result` is a geometry error whose message contains `text`.
fn assert_geometry<T: std::fmt::Debug>(result: Result<T>, text: &str) {
    match result {
        Err(error @ KernelError::Geometry { .. }) => {
            let message = error.to_string();
            assert!(message.contains(text), "{message:?} lacks {text:?}");
        }
        other => panic!("expected a geometry error about {text}, got {other:?}"),
    }
}

/// Asserts that `result` is a parameter error for `name`.
fn assert_parameter<T: std::fmt::Debug>(result: Result<T>, name: &str) {
    match result {
        Err(KernelError::Parameter { name: found, .. }) => assert_eq!(found, name),
        other => panic!("expected a parameter error for {name}, got {other:?}"),
    }
}

fn conv_geometry() -> Conv2dGeometry {
    Conv2dGeometry::new(Shape4::new(2, 3, 5, 4), 4, 3, 1, 1).unwrap()
}

#[test]
fn conv2d_geometry_rejects() {
    let input = Shape4::new(1, 3, 5, 4);
    assert_geometry(Conv2dGeometry::new(input, 4, 3, 0, 1), "stride is 0");
    assert_geometry(Conv2dGeometry::new(input, 4, 0, 1, 1), "kernel is 0");
    assert_geometry(Conv2dGeometry::new(input, 0, 3, 1, 1), "c_out is 0");
    let empty = Shape4::new(1, 3, 0, 4);
    assert_geometry(Conv2dGeometry::new(empty, 4, 3, 1, 1), "h is 0");
    // w + 2 * padding = 6 < 7.
    assert_geometry(
        Conv2dGeometry::new(input, 4, 7, 1, 1),
        "kernel 7 does not fit the padded input 7x6",
    );
    let huge = Shape4::new(usize::MAX, 3, 5, 4);
    assert_geometry(Conv2dGeometry::new(huge, 4, 3, 1, 1), "usize::MAX");
}

#[test]
fn conv2d_geometry_output_shape() {
    // (5 + 2 - 3) / 2 + 1 = 3 and (4 + 2 - 3) / 2 + 1 = 2.
    let geometry = Conv2dGeometry::new(Shape4::new(2, 3, 5, 4), 4, 3, 2, 1).unwrap();
    assert_eq!(geometry.output(), Shape4::new(2, 4, 3, 2));
    assert_eq!(geometry.weight_len(), 4 * 3 * 9);
    assert_eq!(geometry.with_batch(7).output().batch, 7);
}

#[test]
fn conv2d_forward_rejects_lengths() {
    let g = conv_geometry();
    let (x, w, b) = (
        vec![0.0; g.input().len()],
        vec![0.0; g.weight_len()],
        vec![0.0; 4],
    );
    let mut y = vec![0.0; g.output().len()];
    assert_length(conv2d_forward(&g, &x[1..], &w, &b, &mut y), "input");
    assert_length(conv2d_forward(&g, &x, &w[1..], &b, &mut y), "weight");
    assert_length(conv2d_forward(&g, &x, &w, &b[1..], &mut y), "bias");
    assert_length(conv2d_forward(&g, &x, &w, &b, &mut y[1..]), "output");
}

#[test]
fn conv2d_backward_rejects_lengths() {
    let g = conv_geometry();
    let (x, w, dy) = (
        vec![0.0; g.input().len()],
        vec![0.0; g.weight_len()],
        vec![0.0; g.output().len()],
    );
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    let mut db = [0.0; 4];
    let mut call = |x: &[f32], w: &[f32], dy: &[f32], short: &str| {
        let cut = |name: &str| usize::from(short == name);
        let grads = Conv2dGrads {
            input: Some(&mut dx[cut("grad_input")..]),
            weight: &mut dw[cut("grad_weight")..],
            bias: &mut db[cut("grad_bias")..],
        };
        conv2d_backward(&g, x, w, dy, grads)
    };
    assert_length(call(&x[1..], &w, &dy, ""), "input");
    assert_length(call(&x, &w[1..], &dy, ""), "weight");
    assert_length(call(&x, &w, &dy[1..], ""), "grad_output");
    for name in ["grad_input", "grad_weight", "grad_bias"] {
        assert_length(call(&x, &w, &dy, name), name);
    }
}

#[test]
fn maxpool2d_geometry_rejects() {
    let input = Shape4::new(1, 2, 5, 4);
    assert_geometry(Pool2dGeometry::new(input, 0, 2), "size is 0");
    assert_geometry(Pool2dGeometry::new(input, 2, 0), "stride is 0");
    assert_geometry(
        Pool2dGeometry::new(input, 5, 1),
        "window 5 does not fit the input 5x4",
    );
    let geometry = Pool2dGeometry::new(input, 2, 2).unwrap();
    assert_eq!(geometry.output(), Shape4::new(1, 2, 2, 2));
}

#[test]
fn maxpool2d_rejects_lengths() {
    let g = Pool2dGeometry::new(Shape4::new(1, 2, 5, 4), 2, 2).unwrap();
    let x = vec![0.0; 40];
    let mut y = vec![0.0; 8];
    let mut arg = vec![0u32; 8];
    assert_length(maxpool2d_forward(&g, &x[1..], &mut y, &mut arg), "input");
    assert_length(maxpool2d_forward(&g, &x, &mut y[1..], &mut arg), "output");
    assert_length(maxpool2d_forward(&g, &x, &mut y, &mut arg[1..]), "argmax");

    let mut dx = vec![0.0; 40];
    assert_length(
        maxpool2d_backward(&g, &y[1..], &arg, &mut dx),
        "grad_output",
    );
    assert_length(maxpool2d_backward(&g, &y, &arg[1..], &mut dx), "argmax");
    assert_length(maxpool2d_backward(&g, &y, &arg, &mut dx[1..]), "grad_input");
}

#[test]
fn relu_rejects_lengths() {
    let mut out = vec![0.0; 3];
    assert_length(relu_forward(&[1.0; 4], &mut out), "output");
    assert_length(relu_backward(&[1.0; 3], &[1.0; 4], &mut out), "grad_output");
    assert_length(relu_backward(&[1.0; 4], &[1.0; 4], &mut out), "grad_input");
}

#[test]
fn dropout_rejects() {
    for p in [1.0, -0.1, f32::NAN, f32::INFINITY] {
        assert_parameter(Dropout::new(p), "dropout p");
    }
    let message = Dropout::new(1.0).unwrap_err().to_string();
    assert!(message.contains("[0, 1)"), "{message}");

    let dropout = Dropout::new(0.5).unwrap();
    let phase = Phase::Train { seed: 0 };
    let (mut out, mut mask) = (vec![0.0; 4], vec![0.0; 4]);
    assert_length(
        dropout_forward(&dropout, phase, &[0.0; 4], &mut out[1..], &mut mask),
        "output",
    );
    assert_length(
        dropout_forward(&dropout, phase, &[0.0; 4], &mut out, &mut mask[1..]),
        "mask",
    );
    assert_length(dropout_backward(&mask, &[0.0; 3], &mut out), "grad_output");
    assert_length(
        dropout_backward(&mask, &[0.0; 4], &mut out[1..]),
        "grad_input",
    );
}

#[test]
fn linear_rejects() {
    assert_geometry(LinearGeometry::new(0, 3, 2), "batch is 0");
    assert_geometry(LinearGeometry::new(1, 0, 2), "in_features is 0");
    assert_geometry(LinearGeometry::new(1, 3, 0), "out_features is 0");

    let g = LinearGeometry::new(2, 3, 4).unwrap();
    let (x, w, b) = (vec![0.0; 6], vec![0.0; 12], vec![0.0; 4]);
    let mut y = vec![0.0; 8];
    assert_length(linear_forward(&g, &x[1..], &w, &b, &mut y), "input");
    assert_length(linear_forward(&g, &x, &w[1..], &b, &mut y), "weight");
    assert_length(linear_forward(&g, &x, &w, &b[1..], &mut y), "bias");
    assert_length(linear_forward(&g, &x, &w, &b, &mut y[1..]), "output");

    let (mut dx, mut dw, mut db) = (vec![0.0; 6], vec![0.0; 12], vec![0.0; 4]);
    let mut call = |x: &[f32], dy: &[f32], short: &str| {
        let cut = |name: &str| usize::from(short == name);
        let grads = LinearGrads {
            input: Some(&mut dx[cut("grad_input")..]),
            weight: &mut dw[cut("grad_weight")..],
            bias: &mut db[cut("grad_bias")..],
        };
        linear_backward(&g, x, &w, dy, grads)
    };
    assert_length(call(&x[1..], &y, ""), "input");
    assert_length(call(&x, &y[1..], ""), "grad_output");
    for name in ["grad_input", "grad_weight", "grad_bias"] {
        assert_length(call(&x, &y, name), name);
    }
}

#[test]
fn cross_entropy_rejects() {
    let mut grad = vec![0.0; 6];
    let result = softmax_cross_entropy(&[0.0; 6], &[0, 3], 3, &mut grad);
    assert_eq!(
        result,
        Err(KernelError::Label {
            row: 1,
            label: 3,
            classes: 3
        })
    );
    let message = result.unwrap_err().to_string();
    assert_eq!(message, "label 3 at row 1 is out of range for 3 classes");

    assert_length(
        softmax_cross_entropy(&[0.0; 5], &[0, 1], 3, &mut grad),
        "logits",
    );
    assert_length(
        softmax_cross_entropy(&[0.0; 6], &[0, 1], 3, &mut grad[1..]),
        "grad_logits",
    );
    assert_parameter(softmax_cross_entropy(&[], &[], 3, &mut []), "batch");
    assert_parameter(softmax_cross_entropy(&[], &[0], 0, &mut []), "classes");
    for smoothing in [-0.1, 1.5, f32::NAN] {
        let result =
            softmax_cross_entropy_smoothed_sum(&[0.0; 6], &[0, 1], 3, smoothing, 0.5, &mut grad);
        assert_parameter(result, "smoothing");
    }

    assert_length(softmax(&[0.0; 5], 3, &mut grad[..5]), "logits");
    assert_length(softmax(&[0.0; 6], 3, &mut grad[..5]), "probabilities");
    assert_parameter(softmax(&[0.0; 6], 0, &mut grad), "classes");
}

#[test]
fn sgd_rejects() {
    let good = Sgd {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 5e-4,
        nesterov: true,
    };
    assert_eq!(good.validate(), Ok(()));
    let cases = [
        (Sgd { lr: 0.0, ..good }, "lr"),
        (
            Sgd {
                lr: f32::NAN,
                ..good
            },
            "lr",
        ),
        (
            Sgd {
                lr: f32::INFINITY,
                ..good
            },
            "lr",
        ),
        (
            Sgd {
                momentum: 1.0,
                ..good
            },
            "momentum",
        ),
        (
            Sgd {
                momentum: -0.1,
                ..good
            },
            "momentum",
        ),
        (
            Sgd {
                momentum: f32::NAN,
                ..good
            },
            "momentum",
        ),
        (
            Sgd {
                weight_decay: -1.0,
                ..good
            },
            "weight_decay",
        ),
        (
            Sgd {
                weight_decay: f32::INFINITY,
                ..good
            },
            "weight_decay",
        ),
        (
            Sgd {
                momentum: 0.0,
                ..good
            },
            "momentum",
        ),
    ];
    for (sgd, name) in cases {
        assert_parameter(sgd.validate(), name);
        assert_parameter(sgd.step(&mut [0.0], &[0.0], &mut [0.0]), name);
    }
    let plain = Sgd {
        momentum: 0.0,
        nesterov: false,
        ..good
    };
    assert_eq!(plain.validate(), Ok(()));

    assert_length(good.step(&mut [0.0; 2], &[0.0; 3], &mut [0.0; 2]), "grads");
    assert_length(
        good.step(&mut [0.0; 2], &[0.0; 2], &mut [0.0; 3]),
        "momentum_buffer",
    );
}

#[test]
fn length_error_message() {
    let g = conv_geometry();
    let error = conv2d_forward(&g, &[0.0; 3], &[0.0; 108], &[0.0; 4], &mut [0.0; 160]);
    let message = error.unwrap_err().to_string();
    assert_eq!(
        message,
        "input has length 3, but its shape [2, 3, 5, 4] needs 120"
    );
}

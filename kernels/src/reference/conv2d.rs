//! Direct convolution, by the definition of each output element.

use crate::Conv2dGeometry;

/// Returns the input index of output `out` at kernel tap `tap`, or `None`
/// where it falls into the padding.
fn input_index(out: usize, tap: usize, stride: usize, padding: usize, len: usize) -> Option<usize> {
    (out * stride + tap)
        .checked_sub(padding)
        .filter(|&index| index < len)
}

/// Calls `visit(input_index, weight_index, output_index)` for every
/// product term of the convolution, padding excluded.
fn for_each_term(geometry: &Conv2dGeometry, mut visit: impl FnMut(usize, usize, usize)) {
    let (inp, out) = (geometry.input(), geometry.output());
    let (k, s, p) = (geometry.kernel(), geometry.stride(), geometry.padding());
    for n in 0..inp.batch {
        for co in 0..out.channels {
            for oy in 0..out.height {
                for ox in 0..out.width {
                    let o = ((n * out.channels + co) * out.height + oy) * out.width + ox;
                    for ci in 0..inp.channels {
                        for ky in 0..k {
                            let Some(iy) = input_index(oy, ky, s, p, inp.height) else {
                                continue;
                            };
                            for kx in 0..k {
                                let Some(ix) = input_index(ox, kx, s, p, inp.width) else {
                                    continue;
                                };
                                let i =
                                    ((n * inp.channels + ci) * inp.height + iy) * inp.width + ix;
                                let w = ((co * inp.channels + ci) * k + ky) * k + kx;
                                visit(i, w, o);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Direct convolution: returns `[batch, c_out, out_h, out_w]`.
pub fn conv2d_forward(
    geometry: &Conv2dGeometry,
    input: &[f64],
    weight: &[f64],
    bias: &[f64],
) -> Vec<f64> {
    assert_eq!(input.len(), geometry.input().len(), "input length");
    assert_eq!(weight.len(), geometry.weight_len(), "weight length");
    assert_eq!(bias.len(), geometry.bias_len(), "bias length");
    let out = geometry.output();
    let plane = out.height * out.width;
    let mut output: Vec<f64> = (0..out.len())
        .map(|o| bias[(o / plane) % out.channels])
        .collect();
    for_each_term(geometry, |i, w, o| output[o] += input[i] * weight[w]);
    output
}

/// The gradients of a convolution, summed over the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2dGradients {
    /// `[batch, c_in, h, w]`.
    pub input: Vec<f64>,
    /// `[c_out, c_in, k, k]`.
    pub weight: Vec<f64>,
    /// `[c_out]`.
    pub bias: Vec<f64>,
}

/// Direct convolution backward: each product term `input[i] * weight[w]`
/// of output `o` adds `weight[w] * dY[o]` to `dX[i]` and `input[i] * dY[o]`
/// to `dW[w]`.
pub fn conv2d_backward(
    geometry: &Conv2dGeometry,
    input: &[f64],
    weight: &[f64],
    grad_output: &[f64],
) -> Conv2dGradients {
    assert_eq!(input.len(), geometry.input().len(), "input length");
    assert_eq!(weight.len(), geometry.weight_len(), "weight length");
    let out = geometry.output();
    assert_eq!(grad_output.len(), out.len(), "grad_output length");
    let mut grads = Conv2dGradients {
        input: vec![0.0; input.len()],
        weight: vec![0.0; weight.len()],
        bias: vec![0.0; geometry.bias_len()],
    };

    for_each_term(geometry, |i, w, o| {
        grads.input[i] += weight[w] * grad_output[o];
        grads.weight[w] += input[i] * grad_output[o];
    });
    let plane = out.height * out.width;
    for (o, &dy) in grad_output.iter().enumerate() {
        grads.bias[(o / plane) % out.channels] += dy;
    }
    grads
}

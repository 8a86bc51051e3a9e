//! Plain-loop versions of every kernel, for testing the fast ones.
//!
//! Each function here is the direct definition of the op with the same
//! name at the crate root, written as nested loops over f64 values with no
//! im2col, GEMM, SIMD or threads, short enough to check by eye. They return
//! fresh vectors instead of writing into buffers, and they panic on slices
//! whose length does not fit the geometry instead of returning an error.

mod conv2d;

pub use conv2d::{conv2d_backward, conv2d_forward, Conv2dGradients};

use crate::dropout::MaskStream;
use crate::{Dropout, LinearGeometry, Phase, Pool2dGeometry, Sgd};

/// Max pooling: returns the output `[batch, c, out_h, out_w]` and the argmax
/// of each window within its channel plane. The first maximum in scan order
/// wins and a NaN beats every number.
pub fn maxpool2d_forward(geometry: &Pool2dGeometry, input: &[f64]) -> (Vec<f64>, Vec<u32>) {
    let (inp, out) = (geometry.input(), geometry.output());
    assert_eq!(input.len(), inp.len(), "input length");
    let (size, stride) = (geometry.size(), geometry.stride());
    let mut output = Vec::with_capacity(out.len());
    let mut argmax = Vec::with_capacity(out.len());

    for plane in input.chunks_exact(inp.height * inp.width) {
        for oy in 0..out.height {
            for ox in 0..out.width {
                let mut max = f64::NEG_INFINITY;
                let mut arg = oy * stride * inp.width + ox * stride;
                for y in oy * stride..oy * stride + size {
                    for x in ox * stride..ox * stride + size {
                        let value = plane[y * inp.width + x];
                        if value > max || value.is_nan() {
                            max = value;
                            arg = y * inp.width + x;
                        }
                    }
                }
                output.push(max);
                argmax.push(arg as u32);
            }
        }
    }
    (output, argmax)
}

/// Max pooling backward: returns the input gradient `[batch, c, h, w]`,
/// where each input element receives the sum of the output gradients of
/// the windows whose argmax it is.
pub fn maxpool2d_backward(
    geometry: &Pool2dGeometry,
    grad_output: &[f64],
    argmax: &[u32],
) -> Vec<f64> {
    let (inp, out) = (geometry.input(), geometry.output());
    assert_eq!(grad_output.len(), out.len(), "grad_output length");
    assert_eq!(argmax.len(), out.len(), "argmax length");
    let (in_plane, out_plane) = (inp.height * inp.width, out.height * out.width);
    let mut grad_input = vec![0.0; inp.len()];
    for (i, (&grad, &arg)) in grad_output.iter().zip(argmax).enumerate() {
        let plane = i / out_plane;
        grad_input[plane * in_plane + arg as usize] += grad;
    }
    grad_input
}

/// ReLU: `x` where `x > 0`, else `0`.
pub fn relu_forward(input: &[f64]) -> Vec<f64> {
    input
        .iter()
        .map(|&x| if x > 0.0 { x } else { 0.0 })
        .collect()
}

/// ReLU backward: the gradient where the forward output is positive.
pub fn relu_backward(output: &[f64], grad_output: &[f64]) -> Vec<f64> {
    assert_eq!(output.len(), grad_output.len(), "grad_output length");
    let pairs = output.iter().zip(grad_output);
    pairs
        .map(|(&y, &g)| if y > 0.0 { g } else { 0.0 })
        .collect()
}

/// Inverted dropout: returns the output and the mask, element by element
/// with the same `(seed, i)` hash as [`crate::dropout_forward`].
pub fn dropout_forward(dropout: &Dropout, phase: Phase, input: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mask: Vec<f64> = match phase {
        Phase::Eval => vec![1.0; input.len()],
        Phase::Train { seed } => {
            let stream = MaskStream::new(dropout, seed);
            (0..input.len())
                .map(|i| f64::from(stream.mask(i)))
                .collect()
        }
    };
    let output = input.iter().zip(&mask).map(|(x, m)| x * m).collect();
    (output, mask)
}

/// Dropout backward: `grad_output * mask`.
pub fn dropout_backward(mask: &[f64], grad_output: &[f64]) -> Vec<f64> {
    assert_eq!(mask.len(), grad_output.len(), "grad_output length");
    mask.iter().zip(grad_output).map(|(m, g)| m * g).collect()
}

/// Fully connected layer: `output[b][o] = bias[o] + sum_i input[b][i] *
/// weight[o][i]`.
pub fn linear_forward(
    geometry: &LinearGeometry,
    input: &[f64],
    weight: &[f64],
    bias: &[f64],
) -> Vec<f64> {
    let (batch, in_features, out_features) =
        (geometry.batch, geometry.in_features, geometry.out_features);
    assert_eq!(input.len(), batch * in_features, "input length");
    assert_eq!(weight.len(), out_features * in_features, "weight length");
    assert_eq!(bias.len(), out_features, "bias length");
    let mut output = vec![0.0; batch * out_features];
    for b in 0..batch {
        for o in 0..out_features {
            let mut acc = bias[o];
            for i in 0..in_features {
                acc += input[b * in_features + i] * weight[o * in_features + i];
            }
            output[b * out_features + o] = acc;
        }
    }
    output
}

/// The gradients of a fully connected layer, summed over the batch.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearGradients {
    /// `[batch, in_features]`.
    pub input: Vec<f64>,
    /// `[out_features, in_features]`.
    pub weight: Vec<f64>,
    /// `[out_features]`.
    pub bias: Vec<f64>,
}

/// Fully connected layer backward, by the definition of each derivative.
pub fn linear_backward(
    geometry: &LinearGeometry,
    input: &[f64],
    weight: &[f64],
    grad_output: &[f64],
) -> LinearGradients {
    let (batch, in_features, out_features) =
        (geometry.batch, geometry.in_features, geometry.out_features);
    assert_eq!(input.len(), batch * in_features, "input length");
    assert_eq!(weight.len(), out_features * in_features, "weight length");
    assert_eq!(
        grad_output.len(),
        batch * out_features,
        "grad_output length"
    );
    let mut grads = LinearGradients {
        input: vec![0.0; batch * in_features],
        weight: vec![0.0; out_features * in_features],
        bias: vec![0.0; out_features],
    };
    for b in 0..batch {
        for o in 0..out_features {
            let dy = grad_output[b * out_features + o];
            grads.bias[o] += dy;
            for i in 0..in_features {
                grads.input[b * in_features + i] += dy * weight[o * in_features + i];
                grads.weight[o * in_features + i] += dy * input[b * in_features + i];
            }
        }
    }
    grads
}

/// Mean cross-entropy and its gradient `(softmax - onehot) / batch`.
pub fn softmax_cross_entropy(logits: &[f64], labels: &[usize], classes: usize) -> (f64, Vec<f64>) {
    assert_eq!(logits.len(), labels.len() * classes, "logits length");
    let batch = labels.len() as f64;
    let mut loss = 0.0;
    let mut grad = Vec::with_capacity(logits.len());
    for (row, &label) in logits.chunks_exact(classes).zip(labels) {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let log_sum = row.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
        loss += max + log_sum - row[label];
        for (class, x) in row.iter().enumerate() {
            let onehot = if class == label { 1.0 } else { 0.0 };
            grad.push(((x - max - log_sum).exp() - onehot) / batch);
        }
    }
    (loss / batch, grad)
}

/// Mean cross-entropy with label smoothing `smoothing` and its gradient
/// `(softmax - target) / batch`, where the target is `1 - smoothing +
/// smoothing / classes` at the label and `smoothing / classes` elsewhere,
/// computed as `-sum(target * log_softmax)` one element at a time.
pub fn softmax_cross_entropy_smoothed(
    logits: &[f64],
    labels: &[usize],
    classes: usize,
    smoothing: f64,
) -> (f64, Vec<f64>) {
    assert_eq!(logits.len(), labels.len() * classes, "logits length");
    let batch = labels.len() as f64;
    let mut loss = 0.0;
    let mut grad = Vec::with_capacity(logits.len());
    for (row, &label) in logits.chunks_exact(classes).zip(labels) {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let log_sum = row.iter().map(|x| (x - max).exp()).sum::<f64>().ln();
        for (class, x) in row.iter().enumerate() {
            let mut target = smoothing / classes as f64;
            if class == label {
                target += 1.0 - smoothing;
            }
            let log_probability = x - max - log_sum;
            loss -= target * log_probability;
            grad.push((log_probability.exp() - target) / batch);
        }
    }
    (loss / batch, grad)
}

/// Softmax of each row of `[rows, classes]` logits.
pub fn softmax(logits: &[f64], classes: usize) -> Vec<f64> {
    let mut probabilities = Vec::with_capacity(logits.len());
    for row in logits.chunks_exact(classes) {
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = row.iter().map(|x| (x - max).exp()).sum();
        probabilities.extend(row.iter().map(|x| (x - max).exp() / sum));
    }
    probabilities
}

/// Applies one SGD step in PyTorch's form, in place, element by element.
pub fn sgd_step(sgd: &Sgd, params: &mut [f64], grads: &[f64], momentum_buffer: &mut [f64]) {
    assert_eq!(grads.len(), params.len(), "grads length");
    assert_eq!(
        momentum_buffer.len(),
        params.len(),
        "momentum_buffer length"
    );
    let (lr, momentum) = (f64::from(sgd.lr), f64::from(sgd.momentum));
    let weight_decay = f64::from(sgd.weight_decay);
    for ((param, &grad), buffer) in params.iter_mut().zip(grads).zip(momentum_buffer) {
        let g = grad + weight_decay * *param;
        *buffer = momentum * *buffer + g;
        let step = if sgd.nesterov {
            g + momentum * *buffer
        } else {
            *buffer
        };
        *param -= lr * step;
    }
}

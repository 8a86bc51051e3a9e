//! 2-D convolution by im2col and GEMM.

use crate::{KernelError, Result, Shape4};

/// The validated geometry of a 2-D convolution with a square kernel,
/// equal stride in both directions and symmetric zero padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dGeometry {
    input: Shape4,
    c_out: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    out_h: usize,
    out_w: usize,
}

impl Conv2dGeometry {
    /// Validates a convolution of `input` with `c_out` filters of size
    /// `kernel x kernel`.
    ///
    /// # Errors
    /// [`KernelError::Geometry`] when a dimension, the kernel or the stride
    /// is zero, or the kernel is larger than the padded input.
    pub fn new(
        input: Shape4,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        let _ = (input, c_out, kernel, stride, padding);
        Err(KernelError::Geometry {
            op: "conv2d",
            reason: "not implemented".into(),
        })
    }

    /// Shape of the input, `[batch, c_in, h, w]`.
    pub fn input(&self) -> Shape4 {
        self.input
    }

    /// Shape of the output, `[batch, c_out, out_h, out_w]`.
    pub fn output(&self) -> Shape4 {
        Shape4::new(self.input.batch, self.c_out, self.out_h, self.out_w)
    }

    /// Number of weights, `c_out * c_in * kernel * kernel`, laid out as
    /// `[c_out, c_in, kernel, kernel]`.
    pub fn weight_len(&self) -> usize {
        self.c_out * self.input.channels * self.kernel * self.kernel
    }

    /// Number of biases, `c_out`.
    pub fn bias_len(&self) -> usize {
        self.c_out
    }

    /// The same convolution applied to a batch of another size.
    pub fn with_batch(&self, batch: usize) -> Self {
        Self {
            input: self.input.with_batch(batch),
            ..*self
        }
    }
}

/// Gradient buffers that [`conv2d_backward`] overwrites.
pub struct Conv2dGrads<'a> {
    /// `[batch, c_in, h, w]`, or `None` to skip the input gradient (the
    /// first layer of a network needs none).
    pub input: Option<&'a mut [f32]>,
    /// `[c_out, c_in, kernel, kernel]`, summed over the batch.
    pub weight: &'a mut [f32],
    /// `[c_out]`, summed over the batch.
    pub bias: &'a mut [f32],
}

/// Computes `output = conv(input, weight) + bias`.
///
/// Shapes: `input` `[batch, c_in, h, w]`, `weight` `[c_out, c_in, k, k]`,
/// `bias` `[c_out]`, `output` `[batch, c_out, out_h, out_w]` (overwritten).
///
/// # Errors
/// [`KernelError::Length`] when a slice does not match the geometry.
pub fn conv2d_forward(
    geometry: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    output: &mut [f32],
) -> Result<()> {
    let _ = (geometry, input, weight, bias, output);
    todo!()
}

/// Computes the gradients of a convolution from the gradient of its output.
///
/// Shapes as in [`conv2d_forward`]; `grad_output` is
/// `[batch, c_out, out_h, out_w]`. Every buffer in `grads` is overwritten.
///
/// # Errors
/// [`KernelError::Length`] when a slice does not match the geometry.
pub fn conv2d_backward(
    geometry: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    grad_output: &[f32],
    grads: Conv2dGrads<'_>,
) -> Result<()> {
    let _ = (geometry, input, weight, grad_output, grads);
    todo!()
}

//! Max pooling that records the argmax of each window.

use crate::{KernelError, Result, Shape4};

/// The validated geometry of a max pooling with a square window and no
/// padding; partial windows at the bottom and right edges are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2dGeometry {
    input: Shape4,
    size: usize,
    stride: usize,
    out_h: usize,
    out_w: usize,
}

impl Pool2dGeometry {
    /// Validates a `size x size` pooling of `input` with `stride`.
    ///
    /// # Errors
    /// [`KernelError::Geometry`] when the size or stride is zero or the
    /// window is larger than the input.
    pub fn new(input: Shape4, size: usize, stride: usize) -> Result<Self> {
        let _ = (input, size, stride);
        Err(KernelError::Geometry {
            op: "maxpool2d",
            reason: "not implemented".into(),
        })
    }

    /// Shape of the input.
    pub fn input(&self) -> Shape4 {
        self.input
    }

    /// Shape of the output, `[batch, channels, out_h, out_w]`.
    pub fn output(&self) -> Shape4 {
        Shape4::new(
            self.input.batch,
            self.input.channels,
            self.out_h,
            self.out_w,
        )
    }

    /// The same pooling applied to a batch of another size.
    pub fn with_batch(&self, batch: usize) -> Self {
        Self {
            input: self.input.with_batch(batch),
            ..*self
        }
    }
}

/// Writes the maximum of each window to `output` and, to `argmax`, the index
/// of that maximum within its input channel plane (`row * w + col`). Of tied
/// values the first in scan order wins, as in PyTorch.
///
/// Shapes: `input` `[batch, c, h, w]`; `output` and `argmax`
/// `[batch, c, out_h, out_w]` (overwritten).
///
/// # Errors
/// [`KernelError::Length`] when a slice does not match the geometry.
pub fn maxpool2d_forward(
    geometry: &Pool2dGeometry,
    input: &[f32],
    output: &mut [f32],
    argmax: &mut [u32],
) -> Result<()> {
    let _ = (geometry, input, output, argmax);
    todo!()
}

/// Overwrites `grad_input` with zeros and adds each output gradient to the
/// input element its window's argmax names.
///
/// # Errors
/// [`KernelError::Length`] when a slice does not match the geometry.
pub fn maxpool2d_backward(
    geometry: &Pool2dGeometry,
    grad_output: &[f32],
    argmax: &[u32],
    grad_input: &mut [f32],
) -> Result<()> {
    let _ = (geometry, grad_output, argmax, grad_input);
    todo!()
}

//! Fully connected layer.

use crate::{KernelError, Result};

/// The validated geometry of a fully connected layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearGeometry {
    /// Rows of the input and output.
    pub batch: usize,
    /// Features per input row.
    pub in_features: usize,
    /// Features per output row.
    pub out_features: usize,
}

impl LinearGeometry {
    /// Validates the three dimensions.
    ///
    /// # Errors
    /// [`KernelError::Geometry`] when a dimension is zero.
    pub fn new(batch: usize, in_features: usize, out_features: usize) -> Result<Self> {
        let _ = (batch, in_features, out_features);
        Err(KernelError::Geometry {
            op: "linear",
            reason: "not implemented".into(),
        })
    }
}

/// Gradient buffers that [`linear_backward`] overwrites.
pub struct LinearGrads<'a> {
    /// `[batch, in_features]`, or `None` to skip it.
    pub input: Option<&'a mut [f32]>,
    /// `[out_features, in_features]`, summed over the batch.
    pub weight: &'a mut [f32],
    /// `[out_features]`, summed over the batch.
    pub bias: &'a mut [f32],
}

/// Computes `output = input * weight^T + bias`.
///
/// Shapes: `input` `[batch, in_features]`, `weight`
/// `[out_features, in_features]`, `bias` `[out_features]`, `output`
/// `[batch, out_features]` (overwritten).
///
/// # Errors
/// [`KernelError::Length`] when a slice does not match the geometry.
pub fn linear_forward(
    geometry: &LinearGeometry,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    output: &mut [f32],
) -> Result<()> {
    let _ = (geometry, input, weight, bias, output);
    todo!()
}

/// Computes the gradients of a fully connected layer.
///
/// # Errors
/// [`KernelError::Length`] when a slice does not match the geometry.
pub fn linear_backward(
    geometry: &LinearGeometry,
    input: &[f32],
    weight: &[f32],
    grad_output: &[f32],
    grads: LinearGrads<'_>,
) -> Result<()> {
    let _ = (geometry, input, weight, grad_output, grads);
    todo!()
}

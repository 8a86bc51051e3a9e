//! Rectified linear unit.

use crate::Result;

/// Writes `max(x, 0)` of each input element to `output`.
///
/// # Errors
/// [`crate::KernelError::Length`] when the slices differ in length.
pub fn relu_forward(input: &[f32], output: &mut [f32]) -> Result<()> {
    let _ = (input, output);
    todo!()
}

/// Writes `grad_output` where the forward output was positive and zero
/// elsewhere; `output` is the result of [`relu_forward`].
///
/// # Errors
/// [`crate::KernelError::Length`] when the slices differ in length.
pub fn relu_backward(output: &[f32], grad_output: &[f32], grad_input: &mut [f32]) -> Result<()> {
    let _ = (output, grad_output, grad_input);
    todo!()
}

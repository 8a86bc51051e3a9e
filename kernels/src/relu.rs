//! Rectified linear unit.

use wide::f32x8;

use crate::error::check_len;
use crate::{simd, Result};

/// Writes `max(x, 0)` of each input element to `output`.
///
/// Shapes: `input` and `output` `[len]` of any layout (overwritten). NaN
/// and `-0.0` map to `+0.0`.
///
/// # Errors
/// [`crate::KernelError::Length`] when the slices differ in length.
pub fn relu_forward(input: &[f32], output: &mut [f32]) -> Result<()> {
    check_len("output", &[input.len()], output.len())?;
    simd::map1(
        input,
        output,
        |x| x & x.simd_gt(f32x8::ZERO),
        |x| if x > 0.0 { x } else { 0.0 },
    );
    Ok(())
}

/// Writes `grad_output` where the forward output was positive and zero
/// elsewhere; `output` is the result of [`relu_forward`].
///
/// Shapes: `output`, `grad_output` and `grad_input` `[len]` (`grad_input`
/// overwritten).
///
/// # Errors
/// [`crate::KernelError::Length`] when the slices differ in length.
pub fn relu_backward(output: &[f32], grad_output: &[f32], grad_input: &mut [f32]) -> Result<()> {
    check_len("grad_output", &[output.len()], grad_output.len())?;
    check_len("grad_input", &[output.len()], grad_input.len())?;
    simd::map2(
        output,
        grad_output,
        grad_input,
        |y, grad| grad & y.simd_gt(f32x8::ZERO),
        |y, grad| if y > 0.0 { grad } else { 0.0 },
    );
    Ok(())
}

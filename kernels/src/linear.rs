//! Fully connected layer.

use rayon::prelude::*;

use crate::error::{check_len, require_addressable, require_positive};
use crate::gemm::{gemm, MatMut, MatRef};
use crate::{reduce, simd, Result};

/// Rows per rayon task in the forward pass and the input gradient.
const ROW_CHUNK: usize = 16;

/// Rows per partial sum of the weight and bias gradients. A constant, so
/// the rounding of those sums does not depend on the thread count.
const GRAD_CHUNK_ROWS: usize = 16;

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
    /// [`crate::KernelError::Geometry`] when a dimension is zero.
    pub fn new(batch: usize, in_features: usize, out_features: usize) -> Result<Self> {
        let dims = [
            ("batch", batch),
            ("in_features", in_features),
            ("out_features", out_features),
        ];
        require_positive("linear", &dims)?;
        require_addressable("linear", &[batch, in_features])?;
        require_addressable("linear", &[batch, out_features])?;
        require_addressable("linear", &[out_features, in_features])?;
        Ok(Self {
            batch,
            in_features,
            out_features,
        })
    }

    /// Checks the lengths of the weight and bias (or their gradients).
    fn check_params(&self, names: [&'static str; 2], weight: usize, bias: usize) -> Result<()> {
        check_len(names[0], &[self.out_features, self.in_features], weight)?;
        check_len(names[1], &[self.out_features], bias)
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
/// [`crate::KernelError::Length`] when a slice does not match the geometry.
pub fn linear_forward(
    geometry: &LinearGeometry,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    output: &mut [f32],
) -> Result<()> {
    geometry.check_params(["weight", "bias"], weight.len(), bias.len())?;
    check_len(
        "input",
        &[geometry.batch, geometry.in_features],
        input.len(),
    )?;
    check_len(
        "output",
        &[geometry.batch, geometry.out_features],
        output.len(),
    )?;

    let (in_features, out_features) = (geometry.in_features, geometry.out_features);
    let weight_t = MatRef::row_major(weight, out_features, in_features).t();
    let tasks = output
        .par_chunks_mut(ROW_CHUNK * out_features)
        .zip(input.par_chunks(ROW_CHUNK * in_features));

    // Per task: out[rows, out] = bias + x[rows, in] * weight^T[in, out].
    tasks.for_each(|(out, x)| {
        let rows = x.len() / in_features;
        for row in out.chunks_exact_mut(out_features) {
            row.copy_from_slice(bias);
        }
        let x = MatRef::row_major(x, rows, in_features);
        gemm(
            1.0,
            x,
            weight_t,
            1.0,
            MatMut::row_major(out, rows, out_features),
        );
    });
    Ok(())
}

/// Computes the gradients of a fully connected layer.
///
/// Shapes as in [`linear_forward`]; `grad_output` is
/// `[batch, out_features]`. Writes `grad_input = grad_output * weight`
/// (`[batch, in_features]`, when requested), `grad_weight = grad_output^T *
/// input` and `grad_bias` = the column sums of `grad_output`. Every buffer
/// in `grads` is overwritten.
///
/// # Errors
/// [`crate::KernelError::Length`] when a slice does not match the geometry.
pub fn linear_backward(
    geometry: &LinearGeometry,
    input: &[f32],
    weight: &[f32],
    grad_output: &[f32],
    grads: LinearGrads<'_>,
) -> Result<()> {
    let (in_features, out_features) = (geometry.in_features, geometry.out_features);
    check_backward(geometry, input, weight, grad_output, &grads)?;

    if let Some(grad_input) = grads.input {
        let weight = MatRef::row_major(weight, out_features, in_features);
        let tasks = grad_input
            .par_chunks_mut(ROW_CHUNK * in_features)
            .zip(grad_output.par_chunks(ROW_CHUNK * out_features));
        tasks.for_each(|(grad_x, grad_out)| {
            let rows = grad_out.len() / out_features;
            let grad_out = MatRef::row_major(grad_out, rows, out_features);
            gemm(
                1.0,
                grad_out,
                weight,
                0.0,
                MatMut::row_major(grad_x, rows, in_features),
            );
        });
    }

    backward_params(geometry, input, grad_output, grads.weight, grads.bias);
    Ok(())
}

/// Checks the slices of a backward pass against `geometry`.
fn check_backward(
    geometry: &LinearGeometry,
    input: &[f32],
    weight: &[f32],
    grad_output: &[f32],
    grads: &LinearGrads<'_>,
) -> Result<()> {
    let (batch, in_features, out_features) =
        (geometry.batch, geometry.in_features, geometry.out_features);
    check_len("weight", &[out_features, in_features], weight.len())?;
    geometry.check_params(
        ["grad_weight", "grad_bias"],
        grads.weight.len(),
        grads.bias.len(),
    )?;
    check_len("input", &[batch, in_features], input.len())?;
    check_len("grad_output", &[batch, out_features], grad_output.len())?;
    if let Some(grad_input) = &grads.input {
        check_len("grad_input", &[batch, in_features], grad_input.len())?;
    }
    Ok(())
}

/// Writes `grad_weight = grad_output^T * input` and the column sums of
/// `grad_output`, with one partial sum per [`GRAD_CHUNK_ROWS`] rows added in
/// chunk order.
fn backward_params(
    geometry: &LinearGeometry,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &mut [f32],
    grad_bias: &mut [f32],
) {
    let (batch, in_features, out_features) =
        (geometry.batch, geometry.in_features, geometry.out_features);
    let weight_len = grad_weight.len();
    let mut total = vec![0.0; weight_len + out_features];

    let chunks = batch.div_ceil(GRAD_CHUNK_ROWS);
    reduce::sum_chunks(chunks, &mut total, |chunk, partial| {
        let first = chunk * GRAD_CHUNK_ROWS;
        let rows = GRAD_CHUNK_ROWS.min(batch - first);
        let x = &input[first * in_features..][..rows * in_features];
        let grad_out = &grad_output[first * out_features..][..rows * out_features];

        let (partial_weight, partial_bias) = partial.split_at_mut(weight_len);
        let grad_out_t = MatRef::row_major(grad_out, rows, out_features).t();
        let x = MatRef::row_major(x, rows, in_features);
        let partial_weight = MatMut::row_major(partial_weight, out_features, in_features);
        gemm(1.0, grad_out_t, x, 0.0, partial_weight);

        // Column sums, row by row in order.
        partial_bias.fill(0.0);
        for row in grad_out.chunks_exact(out_features) {
            simd::add_assign(partial_bias, row);
        }
    });

    grad_weight.copy_from_slice(&total[..weight_len]);
    grad_bias.copy_from_slice(&total[weight_len..]);
}

/// Computes `output = input * weight^T + bias` on the calling thread; the
/// result equals [`linear_forward`]'s.
///
/// Shapes as in [`linear_forward`].
///
/// # Errors
/// [`crate::KernelError::Length`] when a slice does not match the geometry.
pub fn linear_forward_serial(
    geometry: &LinearGeometry,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    output: &mut [f32],
) -> Result<()> {
    let (batch, in_features, out_features) =
        (geometry.batch, geometry.in_features, geometry.out_features);
    geometry.check_params(["weight", "bias"], weight.len(), bias.len())?;
    check_len("input", &[batch, in_features], input.len())?;
    check_len("output", &[batch, out_features], output.len())?;

    // One dot product per output: with 10 outputs a GEMM would pack the
    // whole weight matrix, padded to its panel width, for every call.
    let rows = input.chunks_exact(in_features);
    for (x, out) in rows.zip(output.chunks_exact_mut(out_features)) {
        let filters = weight.chunks_exact(in_features);
        for ((y, w), &b) in out.iter_mut().zip(filters).zip(bias) {
            *y = b + simd::dot(x, w);
        }
    }
    Ok(())
}

/// Computes the gradients of a fully connected layer on the calling thread,
/// with one product over all rows, and the bias gradient summed row by row
/// in order.
///
/// Shapes and outputs as in [`linear_backward`].
///
/// # Errors
/// [`crate::KernelError::Length`] when a slice does not match the geometry.
pub fn linear_backward_serial(
    geometry: &LinearGeometry,
    input: &[f32],
    weight: &[f32],
    grad_output: &[f32],
    grads: LinearGrads<'_>,
) -> Result<()> {
    let (batch, in_features, out_features) =
        (geometry.batch, geometry.in_features, geometry.out_features);
    check_backward(geometry, input, weight, grad_output, &grads)?;

    let grad_out = MatRef::row_major(grad_output, batch, out_features);
    if let Some(grad_input) = grads.input {
        let weight = MatRef::row_major(weight, out_features, in_features);
        let grad_x = MatMut::row_major(grad_input, batch, in_features);
        gemm(1.0, grad_out, weight, 0.0, grad_x);
    }
    let x = MatRef::row_major(input, batch, in_features);
    let grad_weight = MatMut::row_major(grads.weight, out_features, in_features);
    gemm(1.0, grad_out.t(), x, 0.0, grad_weight);

    grads.bias.fill(0.0);
    for row in grad_output.chunks_exact(out_features) {
        simd::add_assign(grads.bias, row);
    }
    Ok(())
}

//! Convolution passes that run on the calling thread with caller-owned
//! scratch, for callers that split a batch into chunks themselves.
//!
//! Each function loops over the images of its geometry's batch in order, so
//! its result depends only on its inputs, never on the thread that runs it.

use crate::conv2d::image_backward_input;
use crate::error::check_len;
use crate::gemm::{gemm, MatMut, MatRef};
use crate::{fused, ChunkMask, Conv2dGeometry, KernelError, Pool2dGeometry, Result};

/// Scratch memory of the serial convolution passes: one image's column
/// matrix and one image's convolution output, sized once for the largest
/// layer it serves, so the passes allocate nothing.
#[derive(Debug, Clone, Default)]
pub struct ConvScratch {
    columns: Vec<f32>,
    image: Vec<f32>,
}

impl ConvScratch {
    /// Allocates scratch large enough for every geometry in `geometries`.
    pub fn new(geometries: &[Conv2dGeometry]) -> Self {
        let columns = geometries.iter().map(Conv2dGeometry::column_len).max();
        let image = geometries.iter().map(|g| g.output().image_len()).max();
        Self {
            columns: vec![0.0; columns.unwrap_or(0)],
            image: vec![0.0; image.unwrap_or(0)],
        }
    }

    /// Returns the column buffer for `geometry`.
    fn columns(&mut self, geometry: &Conv2dGeometry) -> Result<&mut [f32]> {
        let len = geometry.column_len();
        require_capacity("scratch columns", len, self.columns.len())?;
        Ok(&mut self.columns[..len])
    }

    /// Returns the column buffer and a one-image output buffer for `geometry`.
    fn columns_and_image(&mut self, geometry: &Conv2dGeometry) -> Result<(&mut [f32], &mut [f32])> {
        let (columns, image) = (geometry.column_len(), geometry.output().image_len());
        require_capacity("scratch columns", columns, self.columns.len())?;
        require_capacity("scratch image", image, self.image.len())?;
        Ok((&mut self.columns[..columns], &mut self.image[..image]))
    }
}

/// Rejects scratch of `found` elements where `needed` are used.
fn require_capacity(name: &'static str, needed: usize, found: usize) -> Result<()> {
    if found >= needed {
        return Ok(());
    }
    Err(KernelError::Length {
        name,
        shape: format!("[at least {needed}]"),
        expected: needed,
        found,
    })
}

/// Checks the slices of a forward pass against `geometry`.
fn check_forward(g: &Conv2dGeometry, input: &[f32], weight: &[f32], bias: &[f32]) -> Result<()> {
    g.check_params(["weight", "bias"], weight.len(), bias.len())?;
    check_len("input", &g.input().dims(), input.len())
}

/// Writes `weight * columns(image)` for one image to `out` (`[c_out,
/// out_h * out_w]`), overwriting it.
fn image_product(
    g: &Conv2dGeometry,
    image: &[f32],
    weight: &[f32],
    columns: &mut [f32],
    out: &mut [f32],
) {
    let weight = MatRef::row_major(weight, g.c_out(), g.taps());
    let col = g.columns(image, columns);
    gemm(
        1.0,
        weight,
        col,
        0.0,
        MatMut::row_major(out, g.c_out(), g.positions()),
    );
}

/// Computes `output = conv(input, weight) + bias` on the calling thread;
/// the result equals [`crate::conv2d_forward`]'s.
///
/// Layout NCHW, row-major, f32. Shapes: `input` `[batch, c_in, h, w]`,
/// `weight` `[c_out, c_in, k, k]`, `bias` `[c_out]`, `output`
/// `[batch, c_out, out_h, out_w]` (overwritten).
///
/// # Errors
/// [`KernelError::Length`] when a slice does not match the geometry or
/// `scratch` was sized for smaller layers.
pub fn conv2d_forward_serial(
    geometry: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    output: &mut [f32],
    scratch: &mut ConvScratch,
) -> Result<()> {
    check_forward(geometry, input, weight, bias)?;
    check_len("output", &geometry.output().dims(), output.len())?;
    let columns = scratch.columns(geometry)?;
    let (in_len, out_len) = (geometry.input().image_len(), geometry.output().image_len());

    // One image at a time: the product, then the bias added row by row.
    for (image, out) in input
        .chunks_exact(in_len)
        .zip(output.chunks_exact_mut(out_len))
    {
        image_product(geometry, image, weight, columns, out);
        fused::add_bias(out, bias, geometry.positions());
    }
    Ok(())
}

/// Computes `output = dropout(relu(conv(input, weight) + bias))` on the
/// calling thread, with bias, ReLU and dropout applied in one pass over
/// each image's product while it is in cache. Without `mask` the dropout is
/// the identity, as in evaluation.
///
/// Layout NCHW, row-major, f32. Shapes as in [`conv2d_forward_serial`]; the
/// mask of output element `i` is element `mask.first_index + i` of the pass.
///
/// # Errors
/// [`KernelError::Length`] when a slice does not match the geometry or
/// `scratch` was sized for smaller layers.
pub fn conv2d_relu_dropout_forward(
    geometry: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    mask: Option<&ChunkMask>,
    output: &mut [f32],
    scratch: &mut ConvScratch,
) -> Result<()> {
    check_forward(geometry, input, weight, bias)?;
    check_len("output", &geometry.output().dims(), output.len())?;
    let columns = scratch.columns(geometry)?;
    let (in_len, out_len) = (geometry.input().image_len(), geometry.output().image_len());
    let stream = mask.map(|mask| (mask.stream(), mask.first_index));

    let images = input
        .chunks_exact(in_len)
        .zip(output.chunks_exact_mut(out_len));
    for (index, (image, out)) in images.enumerate() {
        image_product(geometry, image, weight, columns, out);
        let image_mask = stream.map(|(stream, first)| (stream, first + index * out_len));
        fused::bias_relu_dropout(out, bias, geometry.positions(), image_mask);
    }
    Ok(())
}

/// Computes `maxpool(conv(input, weight) + bias)` on the calling thread and
/// the argmax of each window, as [`crate::maxpool2d_forward`] records it.
/// Each image's convolution output lives only in `scratch`, and the bias is
/// added inside the pooling pass.
///
/// Layout NCHW, row-major, f32. Shapes: `input`, `weight` and `bias` as in
/// [`conv2d_forward_serial`]; `pooled` and `argmax` `[batch, c_out,
/// pool_out_h, pool_out_w]` (overwritten). `pool` must pool the
/// convolution's output shape.
///
/// # Errors
/// [`KernelError::Length`] when a slice does not match the geometries or
/// `scratch` was sized for smaller layers, and [`KernelError::Geometry`]
/// when `pool`'s input is not the convolution's output.
pub fn conv2d_maxpool2d_forward(
    conv: &Conv2dGeometry,
    pool: &Pool2dGeometry,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    pooled: (&mut [f32], &mut [u32]),
    scratch: &mut ConvScratch,
) -> Result<()> {
    check_forward(conv, input, weight, bias)?;
    if pool.input() != conv.output() {
        return Err(KernelError::Geometry {
            op: "conv2d_maxpool2d",
            reason: format!(
                "the pooling input {} differs from the convolution output {}",
                pool.input(),
                conv.output()
            ),
        });
    }
    let (output, argmax) = pooled;
    check_len("pooled", &pool.output().dims(), output.len())?;
    check_len("argmax", &pool.output().dims(), argmax.len())?;
    let (columns, conv_image) = scratch.columns_and_image(conv)?;
    let (in_len, pooled_len) = (conv.input().image_len(), pool.output().image_len());
    let pool_image = pool.with_batch(1);

    let outputs = output
        .chunks_exact_mut(pooled_len)
        .zip(argmax.chunks_exact_mut(pooled_len));
    for (image, (out, arg)) in input.chunks_exact(in_len).zip(outputs) {
        image_product(conv, image, weight, columns, conv_image);
        fused::bias_maxpool(&pool_image, conv_image, bias, out, arg);
    }
    Ok(())
}

/// Computes the input and weight gradients of a convolution on the calling
/// thread, image by image: the weight gradient `sum over images of dY *
/// col^T`, added in image order, and the input gradient `col2im(weight^T *
/// dY)`. The bias gradient is left to the caller, which can sum it in the
/// pass that produces `grad_output`.
///
/// Layout NCHW, row-major, f32. Shapes: `input` `[batch, c_in, h, w]`,
/// `weight` `[c_out, c_in, k, k]`, `grad_output` `[batch, c_out, out_h,
/// out_w]`; `grad_input` `[batch, c_in, h, w]` or `None` to skip it, and
/// `grad_weight` `[c_out, c_in, k, k]` (both overwritten).
///
/// # Errors
/// [`KernelError::Length`] when a slice does not match the geometry or
/// `scratch` was sized for smaller layers.
pub fn conv2d_backward_serial(
    geometry: &Conv2dGeometry,
    input: &[f32],
    weight: &[f32],
    grad_output: &[f32],
    grad_input: Option<&mut [f32]>,
    grad_weight: &mut [f32],
    scratch: &mut ConvScratch,
) -> Result<()> {
    let dims = [
        geometry.c_out(),
        geometry.input().channels,
        geometry.kernel(),
        geometry.kernel(),
    ];
    check_len("weight", &dims, weight.len())?;
    check_len("grad_weight", &dims, grad_weight.len())?;
    check_len("input", &geometry.input().dims(), input.len())?;
    check_len("grad_output", &geometry.output().dims(), grad_output.len())?;
    if let Some(grad_input) = &grad_input {
        check_len("grad_input", &geometry.input().dims(), grad_input.len())?;
    }
    let (columns, _) = scratch.columns_and_image(geometry)?;
    let (c_out, taps, positions) = (geometry.c_out(), geometry.taps(), geometry.positions());
    let (in_len, out_len) = (geometry.input().image_len(), geometry.output().image_len());
    let weight_t = MatRef::row_major(weight, c_out, taps).t();
    let mut grad_input = grad_input;

    // One image at a time, so its dY and columns stay in cache for both products.
    let images = input
        .chunks_exact(in_len)
        .zip(grad_output.chunks_exact(out_len));
    for (index, (image, grad_out)) in images.enumerate() {
        let grad_out = MatRef::row_major(grad_out, c_out, positions);
        let col = geometry.columns(image, columns);
        let beta = if index == 0 { 0.0 } else { 1.0 };
        let grad_weight = MatMut::row_major(grad_weight, c_out, taps);
        gemm(1.0, grad_out, col.t(), beta, grad_weight);

        let Some(grad_input) = grad_input.as_deref_mut() else {
            continue;
        };
        let grad_image = &mut grad_input[index * in_len..][..in_len];
        image_backward_input(geometry, weight_t, grad_out, grad_image, columns);
    }
    Ok(())
}

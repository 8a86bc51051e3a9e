//! Memory-bound passes fused over one buffer while it is in cache. Forward
//! fuses bias, ReLU and dropout after a convolution's product, and bias, max
//! pooling and argmax. Backward fuses the pooling scatter, or the ReLU and
//! dropout masks, with the bias gradient.

use crate::dropout::MaskStream;
use crate::error::check_len;
use crate::{simd, Dropout, Pool2dGeometry, Result, Shape4};

/// Adds `bias[c]` to row `c` of `out` (`[c_out, positions]`).
pub(crate) fn add_bias(out: &mut [f32], bias: &[f32], positions: usize) {
    for (row, &b) in out.chunks_exact_mut(positions).zip(bias) {
        row.iter_mut().for_each(|y| *y += b);
    }
}

/// Overwrites each element `y` of row `c` of `out` (`[c_out, positions]`)
/// with `max(y + bias[c], 0)`, then, with `mask = (stream, first)`, with
/// its product by the mask of element `first + i` of the pass. NaN maps to
/// `+0.0` as in [`crate::relu_forward`].
pub(crate) fn bias_relu_dropout(
    out: &mut [f32],
    bias: &[f32],
    positions: usize,
    mask: Option<(MaskStream, usize)>,
) {
    for (c, (row, &b)) in out.chunks_exact_mut(positions).zip(bias).enumerate() {
        for y in row.iter_mut() {
            let x = *y + b;
            *y = if x > 0.0 { x } else { 0.0 };
        }
        if let Some((stream, first)) = mask {
            stream.apply(first + c * positions, row);
        }
    }
}

/// Writes the maximum of `input + bias[c]` over each window of plane `c`,
/// and its index in the plane, exactly as [`crate::maxpool2d_forward`] on
/// the biased input would. `geometry` describes the whole of `input`.
pub(crate) fn bias_maxpool(
    geometry: &Pool2dGeometry,
    input: &[f32],
    bias: &[f32],
    output: &mut [f32],
    argmax: &mut [u32],
) {
    let shape = geometry.input();
    let (w, in_plane) = (shape.width, shape.height * shape.width);
    let out = geometry.output();
    let out_plane = out.height * out.width;
    let (size, stride) = (geometry.size(), geometry.stride());
    let planes = input.chunks_exact(in_plane).zip(
        output
            .chunks_exact_mut(out_plane)
            .zip(argmax.chunks_exact_mut(out_plane)),
    );

    // One plane per (image, channel); the bias is the channel's.
    for (plane_index, (plane, (output, argmax))) in planes.enumerate() {
        let b = bias[plane_index % shape.channels];
        if size == 2 && stride == 2 {
            pool_plane_2x2(plane, w, out.width, b, (output, argmax));
            continue;
        }
        for oy in 0..out.height {
            for ox in 0..out.width {
                let (y0, x0) = (oy * stride, ox * stride);
                let mut best = (f32::NEG_INFINITY, y0 * w + x0);
                for y in y0..y0 + size {
                    for x in x0..x0 + size {
                        let value = plane[y * w + x] + b;
                        if value > best.0 || value.is_nan() {
                            best = (value, y * w + x);
                        }
                    }
                }
                output[oy * out.width + ox] = best.0;
                // The pooling geometry guarantees that h * w fits in a u32.
                argmax[oy * out.width + ox] = best.1 as u32;
            }
        }
    }
}

/// Pools one plane of width `w` into rows of `out_w` with 2x2 windows and stride 2, as the
/// general loop does, but with selects in place of branches: the
/// comparisons of random data mispredict about half the time.
fn pool_plane_2x2(plane: &[f32], w: usize, out_w: usize, b: f32, pooled: (&mut [f32], &mut [u32])) {
    let (output, argmax) = pooled;
    let rows = output
        .chunks_exact_mut(out_w)
        .zip(argmax.chunks_exact_mut(out_w));

    // One output row per pair of input rows.
    for (oy, (out_row, arg_row)) in rows.enumerate() {
        let (top, bottom) = (&plane[2 * oy * w..][..w], &plane[(2 * oy + 1) * w..][..w]);
        let windows = top.chunks_exact(2).zip(bottom.chunks_exact(2));
        let first = (2 * oy * w) as u32;
        for (ox, ((out, arg), (top, bottom))) in
            out_row.iter_mut().zip(arg_row).zip(windows).enumerate()
        {
            let x = first + 2 * ox as u32;
            let candidates = [
                (top[1] + b, x + 1),
                (bottom[0] + b, x + w as u32),
                (bottom[1] + b, x + w as u32 + 1),
            ];
            let mut best = (top[0] + b, x);
            for (value, index) in candidates {
                let take = value > best.0 || value.is_nan();
                best = if take { (value, index) } else { best };
            }
            (*out, *arg) = best;
        }
    }
}

/// Overwrites `grad_input` with the max-pooling backward of `grad_output`,
/// and `grad_bias` with the gradient of a bias added before the pooling.
/// That gradient is the per-channel sum of `grad_output` over images and
/// positions, which equals the sum of `grad_input` because the scatter only
/// moves values. Runs on the calling thread.
///
/// Layout NCHW, row-major, f32. Shapes: `grad_output` and `argmax`
/// `[batch, c, out_h, out_w]`; `grad_input` `[batch, c, h, w]` and
/// `grad_bias` `[c]` (both overwritten). Images are added in order.
///
/// # Errors
/// [`crate::KernelError::Length`] when a slice does not match the geometry.
///
/// # Panics
/// When an `argmax` entry is `h * w` or more, which
/// [`crate::maxpool2d_forward`] never writes.
pub fn maxpool2d_backward_bias(
    geometry: &Pool2dGeometry,
    grad_output: &[f32],
    argmax: &[u32],
    grad_input: &mut [f32],
    grad_bias: &mut [f32],
) -> Result<()> {
    let (in_shape, out_shape) = (geometry.input(), geometry.output());
    check_len("grad_output", &out_shape.dims(), grad_output.len())?;
    check_len("argmax", &out_shape.dims(), argmax.len())?;
    check_len("grad_input", &in_shape.dims(), grad_input.len())?;
    check_len("grad_bias", &[in_shape.channels], grad_bias.len())?;

    let in_plane = in_shape.height * in_shape.width;
    let out_plane = out_shape.height * out_shape.width;
    let planes = grad_input.chunks_exact_mut(in_plane).zip(
        grad_output
            .chunks_exact(out_plane)
            .zip(argmax.chunks_exact(out_plane)),
    );

    // One plane per (image, channel): scatter, then add its sum to the bias.
    grad_bias.fill(0.0);
    for (plane_index, (grad_plane, (grad_out, argmax))) in planes.enumerate() {
        grad_plane.fill(0.0);
        for (&grad, &index) in grad_out.iter().zip(argmax) {
            grad_plane[index as usize] += grad;
        }
        grad_bias[plane_index % in_shape.channels] += simd::sum(grad_out);
    }
    Ok(())
}

/// Turns `grad`, the gradient of `dropout(relu(y + bias))`, into the
/// gradient of `y` in place and overwrites `grad_bias` with its sum per
/// channel, in one pass on the calling thread. `output` is the forward
/// result: an element was kept and positive exactly where it is above
/// zero, so there the gradient is scaled by `1 / (1 - p)`, and elsewhere it
/// becomes zero. Pass a dropout of `p = 0` for a ReLU alone.
///
/// Layout NCHW, row-major, f32. Shapes: `output` and `grad` as `shape`;
/// `grad_bias` `[shape.channels]` (overwritten). Images are added in order.
///
/// # Errors
/// [`crate::KernelError::Length`] when a slice does not match `shape`.
pub fn relu_dropout_backward_bias(
    shape: Shape4,
    dropout: &Dropout,
    output: &[f32],
    grad: &mut [f32],
    grad_bias: &mut [f32],
) -> Result<()> {
    check_len("output", &shape.dims(), output.len())?;
    check_len("grad", &shape.dims(), grad.len())?;
    check_len("grad_bias", &[shape.channels], grad_bias.len())?;
    let plane = shape.height * shape.width;
    let scale = dropout.scale();

    grad_bias.fill(0.0);
    if plane == 0 {
        return Ok(());
    }
    let planes = grad.chunks_exact_mut(plane).zip(output.chunks_exact(plane));
    for (plane_index, (grad, output)) in planes.enumerate() {
        for (g, &y) in grad.iter_mut().zip(output) {
            *g = if y > 0.0 { *g * scale } else { 0.0 };
        }
        grad_bias[plane_index % shape.channels] += simd::sum(grad);
    }
    Ok(())
}

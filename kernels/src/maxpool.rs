//! Max pooling that records the argmax of each window.

use rayon::prelude::*;

use crate::error::{check_len, require_addressable, require_positive};
use crate::{KernelError, Result, Shape4};

const OP: &str = "maxpool2d";

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
        let dims = [
            ("batch", input.batch),
            ("channels", input.channels),
            ("h", input.height),
            ("w", input.width),
            ("size", size),
            ("stride", stride),
        ];
        require_positive(OP, &dims)?;
        require_addressable(OP, &input.dims())?;

        let smaller = input.height.min(input.width);
        if size > smaller {
            return Err(KernelError::Geometry {
                op: OP,
                reason: format!(
                    "window {size} does not fit the input {}x{}; use a window of at most {smaller}",
                    input.height, input.width
                ),
            });
        }
        if u32::try_from(input.height * input.width).is_err() {
            return Err(KernelError::Geometry {
                op: OP,
                reason: format!(
                    "a channel plane of {}x{} has more than u32::MAX elements, so its argmax \
                     does not fit a u32",
                    input.height, input.width
                ),
            });
        }

        Ok(Self {
            input,
            size,
            stride,
            out_h: (input.height - size) / stride + 1,
            out_w: (input.width - size) / stride + 1,
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

    /// Side of the square window.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Step between neighbouring windows, in both directions.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Returns the maximum of the window at output `(oy, ox)` of `plane`
    /// (`[h, w]`) and its index in the plane. The first maximum in scan
    /// order wins, and a NaN beats every number, as in PyTorch.
    fn window_max(&self, plane: &[f32], oy: usize, ox: usize) -> (f32, usize) {
        let w = self.input.width;
        let (y0, x0) = (oy * self.stride, ox * self.stride);
        let mut best = (f32::NEG_INFINITY, y0 * w + x0);
        for y in y0..y0 + self.size {
            let row = &plane[y * w + x0..][..self.size];
            for (x, &value) in (x0..).zip(row) {
                if value > best.0 || value.is_nan() {
                    best = (value, y * w + x);
                }
            }
        }
        best
    }
}

/// Writes the maximum of each window to `output` and, to `argmax`, the index
/// of that maximum within its input channel plane (`row * w + col`). Of tied
/// values the first in scan order wins, as in PyTorch.
///
/// Layout NCHW, row-major. Shapes: `input` `[batch, c, h, w]`; `output`
/// and `argmax` `[batch, c, out_h, out_w]` (overwritten). A NaN in a window
/// becomes its maximum, as in PyTorch.
///
/// # Errors
/// [`KernelError::Length`] when a slice does not match the geometry.
pub fn maxpool2d_forward(
    geometry: &Pool2dGeometry,
    input: &[f32],
    output: &mut [f32],
    argmax: &mut [u32],
) -> Result<()> {
    let in_shape = geometry.input;
    let out_shape = geometry.output();
    check_len("input", &in_shape.dims(), input.len())?;
    check_len("output", &out_shape.dims(), output.len())?;
    check_len("argmax", &out_shape.dims(), argmax.len())?;

    let in_plane = in_shape.height * in_shape.width;
    let out_plane = geometry.out_h * geometry.out_w;
    let planes = output
        .par_chunks_mut(out_plane)
        .zip(argmax.par_chunks_mut(out_plane))
        .zip(input.par_chunks(in_plane));

    // One task per (image, channel) plane.
    planes.for_each(|((output, argmax), plane)| {
        let windows = output.iter_mut().zip(argmax.iter_mut()).enumerate();
        for (position, (out, arg)) in windows {
            let (oy, ox) = (position / geometry.out_w, position % geometry.out_w);
            let (max, index) = geometry.window_max(plane, oy, ox);
            *out = max;
            // The geometry guarantees that h * w fits in a u32.
            *arg = index as u32;
        }
    });
    Ok(())
}

/// Overwrites `grad_input` with zeros and adds each output gradient to the
/// input element its window's argmax names.
///
/// Layout NCHW, row-major. Shapes: `grad_output` and `argmax`
/// `[batch, c, out_h, out_w]`; `grad_input` `[batch, c, h, w]`
/// (overwritten). Where windows overlap (stride < size), an input element
/// receives the sum of the gradients of every window whose maximum it is.
///
/// # Errors
/// [`KernelError::Length`] when a slice does not match the geometry.
///
/// # Panics
/// When an `argmax` entry is `h * w` or more, which
/// [`maxpool2d_forward`] with the same geometry never writes.
pub fn maxpool2d_backward(
    geometry: &Pool2dGeometry,
    grad_output: &[f32],
    argmax: &[u32],
    grad_input: &mut [f32],
) -> Result<()> {
    let in_shape = geometry.input;
    let out_shape = geometry.output();
    check_len("grad_output", &out_shape.dims(), grad_output.len())?;
    check_len("argmax", &out_shape.dims(), argmax.len())?;
    check_len("grad_input", &in_shape.dims(), grad_input.len())?;

    let in_plane = in_shape.height * in_shape.width;
    let out_plane = geometry.out_h * geometry.out_w;
    let planes = grad_input
        .par_chunks_mut(in_plane)
        .zip(grad_output.par_chunks(out_plane))
        .zip(argmax.par_chunks(out_plane));

    // One task per (image, channel) plane.
    planes.for_each(|((grad_plane, grad_out), argmax)| {
        grad_plane.fill(0.0);
        for (&grad, &index) in grad_out.iter().zip(argmax) {
            grad_plane[index as usize] += grad;
        }
    });
    Ok(())
}

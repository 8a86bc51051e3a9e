//! 2-D convolution by im2col and GEMM.

use rayon::prelude::*;

use crate::error::{check_len, require_addressable, require_positive};
use crate::gemm::{gemm, MatMut, MatRef};
use crate::im2col::{col2im_add, im2col};
use crate::{reduce, simd, KernelError, Result, Shape4};

const OP: &str = "conv2d";

/// Images per partial sum of the weight and bias gradients. A constant, so
/// the rounding of those sums does not depend on the thread count.
const GRAD_CHUNK_IMAGES: usize = 4;

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
    /// `kernel x kernel`. The output is `out_h = (h + 2 * padding - kernel)
    /// / stride + 1` by `out_w`, rounded down as in PyTorch.
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
        let dims = [
            ("batch", input.batch),
            ("c_in", input.channels),
            ("h", input.height),
            ("w", input.width),
            ("c_out", c_out),
            ("kernel", kernel),
            ("stride", stride),
        ];
        require_positive(OP, &dims)?;

        let padded = |len: usize| padding.checked_mul(2).and_then(|p| p.checked_add(len));
        let (Some(padded_h), Some(padded_w)) = (padded(input.height), padded(input.width)) else {
            return Err(KernelError::Geometry {
                op: OP,
                reason: format!("padding {padding} overflows usize"),
            });
        };
        if kernel > padded_h.min(padded_w) {
            return Err(KernelError::Geometry {
                op: OP,
                reason: format!(
                    "kernel {kernel} does not fit the padded input {padded_h}x{padded_w} \
                     (h + 2 * padding by w + 2 * padding); use a kernel of at most {}",
                    padded_h.min(padded_w)
                ),
            });
        }

        let geometry = Self {
            input,
            c_out,
            kernel,
            stride,
            padding,
            out_h: (padded_h - kernel) / stride + 1,
            out_w: (padded_w - kernel) / stride + 1,
        };
        require_addressable(OP, &input.dims())?;
        require_addressable(OP, &geometry.output().dims())?;
        require_addressable(OP, &[c_out, input.channels, kernel, kernel])?;
        require_addressable(OP, &[geometry.taps(), geometry.out_h, geometry.out_w])?;
        Ok(geometry)
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

    /// Number of filters, the output channels.
    pub fn c_out(&self) -> usize {
        self.c_out
    }

    /// Side of the square kernel.
    pub fn kernel(&self) -> usize {
        self.kernel
    }

    /// Step between neighbouring windows, in both directions.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Zero padding added on each side, in both directions.
    pub fn padding(&self) -> usize {
        self.padding
    }

    /// Rows of the column matrix, `c_in * kernel * kernel`.
    pub(crate) fn taps(&self) -> usize {
        self.input.channels * self.kernel * self.kernel
    }

    /// Output positions per channel, `out_h * out_w`.
    pub(crate) fn positions(&self) -> usize {
        self.out_h * self.out_w
    }

    /// True for a 1x1 kernel with stride 1 and no padding, whose column
    /// matrix is the image itself.
    pub(crate) fn is_pointwise(&self) -> bool {
        self.kernel == 1 && self.stride == 1 && self.padding == 0
    }

    /// Elements of one image's column matrix, `c_in * kernel * kernel *
    /// out_h * out_w`, or 0 for a pointwise convolution, which needs none.
    pub fn column_len(&self) -> usize {
        if self.is_pointwise() {
            0
        } else {
            self.taps() * self.positions()
        }
    }

    /// Allocates a scratch buffer for one column matrix, empty when none is
    /// needed.
    fn column_buffer(&self) -> Vec<f32> {
        if self.is_pointwise() {
            Vec::new()
        } else {
            vec![0.0; self.taps() * self.positions()]
        }
    }

    /// Returns the column matrix `[taps, positions]` of `image`: the image
    /// itself for a pointwise convolution, else its im2col in `buffer`.
    pub(crate) fn columns<'a>(&self, image: &'a [f32], buffer: &'a mut [f32]) -> MatRef<'a> {
        if self.is_pointwise() {
            return MatRef::row_major(image, self.taps(), self.positions());
        }
        im2col(self, image, buffer);
        MatRef::row_major(buffer, self.taps(), self.positions())
    }

    /// Checks the lengths of the weight and bias (or their gradients).
    pub(crate) fn check_params(
        &self,
        names: [&'static str; 2],
        weight: usize,
        bias: usize,
    ) -> Result<()> {
        let dims = [self.c_out, self.input.channels, self.kernel, self.kernel];
        check_len(names[0], &dims, weight)?;
        check_len(names[1], &[self.c_out], bias)
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
    geometry.check_params(["weight", "bias"], weight.len(), bias.len())?;
    check_len("input", &geometry.input.dims(), input.len())?;
    check_len("output", &geometry.output().dims(), output.len())?;

    let (c_out, positions) = (geometry.c_out, geometry.positions());
    let weight = MatRef::row_major(weight, c_out, geometry.taps());
    let images = output
        .par_chunks_mut(geometry.output().image_len())
        .zip(input.par_chunks(geometry.input.image_len()));

    // Per image: out[c_out, positions] = bias + weight[c_out, taps] * col[taps, positions].
    images.for_each_init(
        || geometry.column_buffer(),
        |buffer, (out, image)| {
            for (row, &b) in out.chunks_exact_mut(positions).zip(bias) {
                row.fill(b);
            }
            let col = geometry.columns(image, buffer);
            gemm(
                1.0,
                weight,
                col,
                1.0,
                MatMut::row_major(out, c_out, positions),
            );
        },
    );
    Ok(())
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
    let weight_dims = [
        geometry.c_out,
        geometry.input.channels,
        geometry.kernel,
        geometry.kernel,
    ];
    check_len("weight", &weight_dims, weight.len())?;
    geometry.check_params(
        ["grad_weight", "grad_bias"],
        grads.weight.len(),
        grads.bias.len(),
    )?;
    check_len("input", &geometry.input.dims(), input.len())?;
    check_len("grad_output", &geometry.output().dims(), grad_output.len())?;
    if let Some(grad_input) = &grads.input {
        check_len("grad_input", &geometry.input.dims(), grad_input.len())?;
    }

    if let Some(grad_input) = grads.input {
        backward_input(geometry, weight, grad_output, grad_input);
    }
    backward_params(geometry, input, grad_output, grads.weight, grads.bias);
    Ok(())
}

/// Writes the input gradient, image by image: `dcol = weight^T * dY`, then
/// col2im adds each column back to the input position it came from.
fn backward_input(
    geometry: &Conv2dGeometry,
    weight: &[f32],
    grad_output: &[f32],
    grad_input: &mut [f32],
) {
    let (c_out, taps, positions) = (geometry.c_out, geometry.taps(), geometry.positions());
    let weight_t = MatRef::row_major(weight, c_out, taps).t();
    let images = grad_input
        .par_chunks_mut(geometry.input.image_len())
        .zip(grad_output.par_chunks(geometry.output().image_len()));

    images.for_each_init(
        || geometry.column_buffer(),
        |buffer, (grad_image, grad_out)| {
            let grad_out = MatRef::row_major(grad_out, c_out, positions);
            image_backward_input(geometry, weight_t, grad_out, grad_image, buffer);
        },
    );
}

/// Overwrites `grad_image` (`[c_in, h, w]`) with the input gradient of one
/// image, `col2im(weight^T * dY)`, using `buffer` for the column gradient
/// (unused by a pointwise convolution).
pub(crate) fn image_backward_input(
    geometry: &Conv2dGeometry,
    weight_t: MatRef<'_>,
    grad_out: MatRef<'_>,
    grad_image: &mut [f32],
    buffer: &mut [f32],
) {
    let (taps, positions) = (geometry.taps(), geometry.positions());
    if geometry.is_pointwise() {
        let grad_image = MatMut::row_major(grad_image, taps, positions);
        gemm(1.0, weight_t, grad_out, 0.0, grad_image);
        return;
    }
    gemm(
        1.0,
        weight_t,
        grad_out,
        0.0,
        MatMut::row_major(buffer, taps, positions),
    );
    grad_image.fill(0.0);
    col2im_add(geometry, buffer, grad_image);
}

/// Writes the weight gradient `sum over images of dY * col^T` and the bias
/// gradient `sum of dY over images and positions`, with one partial sum per
/// [`GRAD_CHUNK_IMAGES`] images added in chunk order.
fn backward_params(
    geometry: &Conv2dGeometry,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &mut [f32],
    grad_bias: &mut [f32],
) {
    let (c_out, taps, positions) = (geometry.c_out, geometry.taps(), geometry.positions());
    let (in_len, out_len) = (geometry.input.image_len(), geometry.output().image_len());
    let batch = geometry.input.batch;
    let weight_len = grad_weight.len();
    let mut total = vec![0.0; weight_len + c_out];

    let chunks = batch.div_ceil(GRAD_CHUNK_IMAGES);
    reduce::sum_chunks(chunks, &mut total, |chunk, partial| {
        let (partial_weight, partial_bias) = partial.split_at_mut(weight_len);
        let mut buffer = geometry.column_buffer();
        let first = chunk * GRAD_CHUNK_IMAGES;
        let images = first..(first + GRAD_CHUNK_IMAGES).min(batch);

        // The first image of the chunk overwrites the partial sum.
        for image in images {
            let beta = if image == first { 0.0 } else { 1.0 };
            let grad_out = &grad_output[image * out_len..][..out_len];
            let col = geometry.columns(&input[image * in_len..][..in_len], &mut buffer);
            let grad_out_mat = MatRef::row_major(grad_out, c_out, positions);
            let partial_weight = MatMut::row_major(partial_weight, c_out, taps);
            gemm(1.0, grad_out_mat, col.t(), beta, partial_weight);

            let rows = grad_out.chunks_exact(positions);
            for (bias, row) in partial_bias.iter_mut().zip(rows) {
                let row_sum = simd::sum(row);
                *bias = if image == first {
                    row_sum
                } else {
                    *bias + row_sum
                };
            }
        }
    });

    grad_weight.copy_from_slice(&total[..weight_len]);
    grad_bias.copy_from_slice(&total[weight_len..]);
}

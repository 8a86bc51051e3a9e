//! Convolution passes that run on the calling thread with caller-owned
//! scratch, for callers that split a batch into chunks themselves.
//!
//! Each function loops over the images of its geometry's batch in order, so
//! its result depends only on its inputs, never on the thread that runs it.

use crate::conv2d::image_backward_input;
use crate::conv_weights::{ConvWeights, Path, Role};
use crate::direct_conv::{self as direct, DirectConv};
use crate::error::check_len;
use crate::gemm::{gemm, MatMut, MatRef};
use crate::winograd::{self, WinogradConv};
use crate::{direct_weight_grad, winograd_weight_grad};
use crate::{fused, ChunkMask, Conv2dGeometry, KernelError, Pool2dGeometry, Result};

/// Scratch memory of the serial convolution passes: one image's column
/// matrix (or zero-padded copy, on the direct path), one image's
/// convolution output, and the packed weights and tap offsets of the direct
/// path, sized once for the largest layer they serve, so the passes allocate
/// nothing.
#[derive(Debug, Clone, Default)]
pub struct ConvScratch {
    columns: Vec<f32>,
    image: Vec<f32>,
    packed: Vec<f32>,
    offsets: Vec<u32>,
}

impl ConvScratch {
    /// Allocates scratch large enough for the forward and backward passes of
    /// every geometry in `geometries`, at their batch sizes.
    ///
    /// NOTE: on AVX-512 CPUs the direct 3x3 weight gradient pads every
    /// image of the batch at once. It serves layers whose input channels
    /// are not a multiple of 32 or whose filters are not a multiple of 16.
    /// Their backward pass needs scratch in proportion to the batch, so size
    /// the scratch with the largest batch it will serve. Elsewhere one image's
    /// scratch suffices, so a scratch sized too small may work on one
    /// machine and return a length error on another.
    pub fn new(geometries: &[Conv2dGeometry]) -> Self {
        Self::sized(geometries, |g| forward_needs(g).max(backward_needs(g)))
    }

    /// Allocates scratch for the forward passes of `geometries` only, which
    /// on the direct path is much smaller: a padded image instead of a
    /// column matrix. A backward pass with it returns a length error where it
    /// needs more scratch than the forward pass, and is correct otherwise.
    pub fn forward_only(geometries: &[Conv2dGeometry]) -> Self {
        Self::sized(geometries, forward_needs)
    }

    fn sized(geometries: &[Conv2dGeometry], needs: impl Fn(&Conv2dGeometry) -> Needs) -> Self {
        let largest = geometries
            .iter()
            .map(needs)
            .fold(Needs::default(), Needs::max);
        let image = geometries.iter().map(|g| g.output().image_len()).max();
        Self {
            columns: vec![0.0; largest.columns],
            image: vec![0.0; image.unwrap_or(0)],
            packed: vec![0.0; largest.packed],
            offsets: vec![0; largest.offsets],
        }
    }

    /// Returns the per-image product of `geometry` with `weights` and a
    /// one-image output buffer. With plain weights on the Winograd or
    /// direct path this rearranges them.
    fn product<'a>(
        &'a mut self,
        geometry: &Conv2dGeometry,
        weights: ConvWeights<'a>,
    ) -> Result<(Product<'a>, &'a mut [f32])> {
        let needs = forward_needs(geometry);
        let image = geometry.output().image_len();
        require_capacity("scratch columns", needs.columns, self.columns.len())?;
        require_capacity("scratch image", image, self.image.len())?;
        let columns = &mut self.columns[..needs.columns];
        let product = match weights {
            ConvWeights::Plain(weight) => {
                require_capacity("scratch packed weights", needs.packed, self.packed.len())?;
                require_capacity("scratch offsets", needs.offsets, self.offsets.len())?;
                let (packed, offsets) = (&mut self.packed, &mut self.offsets);
                if winograd::applies(geometry) {
                    let conv = WinogradConv::new(geometry, weight, packed, offsets);
                    Product::Winograd {
                        conv,
                        scratch: columns,
                    }
                } else if direct::applies(geometry) {
                    let conv = DirectConv::new(geometry, weight, packed, offsets);
                    Product::Direct {
                        conv,
                        padded: columns,
                    }
                } else {
                    Product::Columns {
                        geometry: *geometry,
                        weight,
                        columns,
                    }
                }
            }
            ConvWeights::Packed(packed) => {
                packed.check(geometry, Role::Forward)?;
                let (weights, offsets) = (packed.weights(), packed.offsets());
                match packed.path() {
                    Path::Winograd => Product::Winograd {
                        conv: WinogradConv::from_parts(geometry, weights, offsets),
                        scratch: columns,
                    },
                    Path::Direct => Product::Direct {
                        conv: DirectConv::from_parts(geometry, weights, offsets),
                        padded: columns,
                    },
                    Path::Columns => Product::Columns {
                        geometry: *geometry,
                        weight: weights,
                        columns,
                    },
                }
            }
        };
        Ok((product, &mut self.image[..image]))
    }

    /// Returns the column buffer of `geometry`, long enough for the padded
    /// output gradient too, and the input-gradient product of its weights.
    /// With plain weights on the Winograd or direct path this rearranges
    /// the flipped weights.
    fn backward<'a>(
        &'a mut self,
        geometry: &Conv2dGeometry,
        weights: ConvWeights<'a>,
    ) -> Result<(&'a mut [f32], InputGradient<'a>)> {
        let needs = backward_needs(geometry);
        require_capacity("scratch columns", needs.columns, self.columns.len())?;
        let columns = &mut self.columns[..needs.columns];
        let transposed = direct::transposed(geometry);
        let weight = match weights {
            ConvWeights::Plain(weight) => weight,
            ConvWeights::Packed(packed) => {
                packed.check(geometry, Role::InputGradient)?;
                let (weights, offsets) = (packed.weights(), packed.offsets());
                let gradient = match (packed.path(), transposed) {
                    (Path::Winograd, Some(t)) => {
                        InputGradient::Winograd(WinogradConv::from_parts(&t, weights, offsets))
                    }
                    (Path::Direct, Some(t)) => {
                        InputGradient::Direct(DirectConv::from_parts(&t, weights, offsets))
                    }
                    _ => InputGradient::columns(geometry, weights),
                };
                return Ok((columns, gradient));
            }
        };
        let Some(transposed) = transposed else {
            return Ok((columns, InputGradient::columns(geometry, weight)));
        };
        require_capacity("scratch packed weights", needs.packed, self.packed.len())?;
        require_capacity("scratch offsets", needs.offsets, self.offsets.len())?;
        let (packed, offsets) = (&mut self.packed, &mut self.offsets);
        if winograd::applies(&transposed) {
            let conv = WinogradConv::input_gradient(geometry, &transposed, weight, packed, offsets);
            return Ok((columns, InputGradient::Winograd(conv)));
        }
        let conv = DirectConv::input_gradient(geometry, &transposed, weight, packed, offsets);
        Ok((columns, InputGradient::Direct(conv)))
    }
}

/// The input gradient of one image from its output gradient, as one
/// backward pass computes it: a direct convolution with the flipped
/// weights where it applies, else `col2im(weight^T * dY)`.
enum InputGradient<'a> {
    Winograd(WinogradConv<'a>),
    Direct(DirectConv<'a>),
    Columns {
        geometry: Conv2dGeometry,
        weight_t: MatRef<'a>,
    },
}

impl<'a> InputGradient<'a> {
    /// Returns the im2col path: `col2im(weight^T * dY)`.
    fn columns(geometry: &Conv2dGeometry, weight: &'a [f32]) -> Self {
        let weight = MatRef::row_major(weight, geometry.c_out(), geometry.taps());
        Self::Columns {
            geometry: *geometry,
            weight_t: weight.t(),
        }
    }

    /// Overwrites `grad_image` (`[c_in, h, w]`) with the input gradient of
    /// `grad_out` (`[c_out, out_h * out_w]`), using `scratch` for the padded
    /// gradient or the column gradient.
    fn image(&mut self, grad_out: &[f32], scratch: &mut [f32], grad_image: &mut [f32]) {
        match self {
            Self::Winograd(conv) => conv.image_product(grad_out, scratch, grad_image),
            Self::Direct(conv) => conv.image_product(grad_out, scratch, grad_image),
            Self::Columns { geometry, weight_t } => {
                let positions = geometry.positions();
                let grad_out = MatRef::row_major(grad_out, geometry.c_out(), positions);
                let columns = &mut scratch[..geometry.column_len()];
                image_backward_input(geometry, *weight_t, grad_out, grad_image, columns);
            }
        }
    }
}

/// The convolution of one image with a layer's weights, as one forward pass
/// computes it: the direct kernel where it applies, else im2col and GEMM.
enum Product<'a> {
    Winograd {
        conv: WinogradConv<'a>,
        scratch: &'a mut [f32],
    },
    Direct {
        conv: DirectConv<'a>,
        padded: &'a mut [f32],
    },
    Columns {
        geometry: Conv2dGeometry,
        weight: &'a [f32],
        columns: &'a mut [f32],
    },
}

impl Product<'_> {
    /// Writes `weight * columns(image)` for one image to `out` (`[c_out,
    /// out_h * out_w]`), overwriting it.
    fn image(&mut self, image: &[f32], out: &mut [f32]) {
        match self {
            Self::Winograd { conv, scratch } => conv.image_product(image, scratch, out),
            Self::Direct { conv, padded } => conv.image_product(image, padded, out),
            Self::Columns {
                geometry,
                weight,
                columns,
            } => image_product(geometry, image, weight, columns, out),
        }
    }
}

/// Scratch elements one pass needs: the column buffer (or padded copies),
/// and the packed weights and tap offsets of the direct path.
#[derive(Debug, Clone, Copy, Default)]
struct Needs {
    columns: usize,
    packed: usize,
    offsets: usize,
}

impl Needs {
    fn max(self, other: Self) -> Self {
        Self {
            columns: self.columns.max(other.columns),
            packed: self.packed.max(other.packed),
            offsets: self.offsets.max(other.offsets),
        }
    }
}

/// Returns what the forward pass of `geometry` needs on this CPU.
fn forward_needs(geometry: &Conv2dGeometry) -> Needs {
    if winograd::applies(geometry) {
        return Needs {
            columns: winograd::scratch_len(geometry),
            packed: winograd::packed_weight_len(geometry),
            offsets: geometry.input().channels,
        };
    }
    if !direct::applies(geometry) {
        return Needs {
            columns: geometry.column_len(),
            ..Needs::default()
        };
    }
    Needs {
        columns: direct::padded_len(geometry),
        packed: direct::packed_weight_len(geometry),
        offsets: geometry.taps(),
    }
}

/// Returns what the backward pass of `geometry` needs on this CPU: the
/// weight gradient's columns or padded batch, then the input gradient's.
fn backward_needs(geometry: &Conv2dGeometry) -> Needs {
    let weight_gradient = if winograd_weight_grad::applies(geometry) {
        winograd_weight_grad::scratch_len(geometry)
    } else if direct_weight_grad::applies(geometry) {
        direct_weight_grad::padded_batch_len(geometry)
    } else {
        geometry.column_len()
    };
    let input_gradient = match direct::transposed(geometry) {
        Some(transposed) => forward_needs(&transposed),
        None => Needs {
            columns: geometry.column_len(),
            ..Needs::default()
        },
    };
    input_gradient.max(Needs {
        columns: weight_gradient,
        ..Needs::default()
    })
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

/// Checks the slices of a forward pass against `geometry`; packed weights
/// are checked when the pass takes them.
fn check_forward(
    g: &Conv2dGeometry,
    input: &[f32],
    weights: ConvWeights<'_>,
    bias: &[f32],
) -> Result<()> {
    let weight_len = match weights {
        ConvWeights::Plain(weight) => weight.len(),
        ConvWeights::Packed(_) => g.weight_len(),
    };
    g.check_params(["weight", "bias"], weight_len, bias.len())?;
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
/// the result equals [`crate::conv2d_forward`]'s up to rounding.
///
/// NOTE: on the Winograd path (AVX-512F, 3x3, padding 1) the transforms
/// add and subtract neighbouring inputs. An infinite input, or one above
/// about `f32::MAX / 4`, then makes the outputs of its 2x2 tiles NaN or
/// infinite, where `conv2d_forward` may give finite values or a signed
/// infinity.
///
/// Layout NCHW, row-major, f32. Shapes: `input` `[batch, c_in, h, w]`,
/// `weight` `[c_out, c_in, k, k]` or a [`crate::PackedConv`] made by
/// `PackedConv::forward` for this geometry, `bias` `[c_out]`, `output`
/// `[batch, c_out, out_h, out_w]` (overwritten).
///
/// # Errors
/// [`KernelError::Length`] when a slice does not match the geometry or
/// `scratch` was sized for smaller layers, and [`KernelError::Geometry`]
/// when packed weights were made for another geometry or pass.
pub fn conv2d_forward_serial<'w>(
    geometry: &Conv2dGeometry,
    input: &[f32],
    weight: impl Into<ConvWeights<'w>>,
    bias: &[f32],
    output: &mut [f32],
    scratch: &mut ConvScratch,
) -> Result<()> {
    let weight = weight.into();
    check_forward(geometry, input, weight, bias)?;
    check_len("output", &geometry.output().dims(), output.len())?;
    let (mut product, _) = scratch.product(geometry, weight)?;
    let (in_len, out_len) = (geometry.input().image_len(), geometry.output().image_len());

    // One image at a time: the product, then the bias added row by row.
    for (image, out) in input
        .chunks_exact(in_len)
        .zip(output.chunks_exact_mut(out_len))
    {
        product.image(image, out);
        fused::add_bias(out, bias, geometry.positions());
    }
    Ok(())
}

/// Computes `output = dropout(relu(conv(input, weight) + bias))` on the
/// calling thread, with bias, ReLU and dropout applied in one pass over
/// each image's product while it is in cache. Without `mask` the dropout is
/// the identity, as in evaluation.
///
/// Layout NCHW, row-major, f32. Shapes and weights as in
/// [`conv2d_forward_serial`]; the mask of output element `i` is element
/// `mask.first_index + i` of the pass.
///
/// # Errors
/// As [`conv2d_forward_serial`].
pub fn conv2d_relu_dropout_forward<'w>(
    geometry: &Conv2dGeometry,
    input: &[f32],
    weight: impl Into<ConvWeights<'w>>,
    bias: &[f32],
    mask: Option<&ChunkMask>,
    output: &mut [f32],
    scratch: &mut ConvScratch,
) -> Result<()> {
    let weight = weight.into();
    check_forward(geometry, input, weight, bias)?;
    check_len("output", &geometry.output().dims(), output.len())?;
    let (mut product, _) = scratch.product(geometry, weight)?;
    let (in_len, out_len) = (geometry.input().image_len(), geometry.output().image_len());
    let stream = mask.map(|mask| (mask.stream(), mask.first_index));

    let images = input
        .chunks_exact(in_len)
        .zip(output.chunks_exact_mut(out_len));
    for (index, (image, out)) in images.enumerate() {
        product.image(image, out);
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
/// when `pool`'s input is not the convolution's output or packed weights
/// were made for another geometry or pass.
pub fn conv2d_maxpool2d_forward<'w>(
    conv: &Conv2dGeometry,
    pool: &Pool2dGeometry,
    input: &[f32],
    weight: impl Into<ConvWeights<'w>>,
    bias: &[f32],
    pooled: (&mut [f32], &mut [u32]),
    scratch: &mut ConvScratch,
) -> Result<()> {
    let weight = weight.into();
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
    let (mut product, conv_image) = scratch.product(conv, weight)?;
    let (in_len, pooled_len) = (conv.input().image_len(), pool.output().image_len());
    let pool_image = pool.with_batch(1);

    let outputs = output
        .chunks_exact_mut(pooled_len)
        .zip(argmax.chunks_exact_mut(pooled_len));
    // A 2x2 window with stride 2 is a Winograd output tile, which the
    // output transform pools in registers.
    let tiles_are_windows = pool.size() == 2 && pool.stride() == 2;
    for (image, (out, arg)) in input.chunks_exact(in_len).zip(outputs) {
        if let (Product::Winograd { conv, scratch }, true) = (&mut product, tiles_are_windows) {
            conv.image_pooled(image, scratch, bias, (out, arg));
            continue;
        }
        product.image(image, conv_image);
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
/// `weight` `[c_out, c_in, k, k]` or a [`crate::PackedConv`] made by
/// `PackedConv::input_gradient` for this geometry, `grad_output` `[batch,
/// c_out, out_h, out_w]`; `grad_input` `[batch, c_in, h, w]` or `None` to
/// skip it, and `grad_weight` `[c_out, c_in, k, k]` (both overwritten).
///
/// # Errors
/// [`KernelError::Length`] when a slice does not match the geometry or
/// `scratch` was sized for smaller layers, and [`KernelError::Geometry`]
/// when packed weights were made for another geometry or pass.
pub fn conv2d_backward_serial<'w>(
    geometry: &Conv2dGeometry,
    input: &[f32],
    weight: impl Into<ConvWeights<'w>>,
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
    let weight = weight.into();
    if let ConvWeights::Plain(weight) = weight {
        check_len("weight", &dims, weight.len())?;
    }
    check_len("grad_weight", &dims, grad_weight.len())?;
    check_len("input", &geometry.input().dims(), input.len())?;
    check_len("grad_output", &geometry.output().dims(), grad_output.len())?;
    if let Some(grad_input) = &grad_input {
        check_len("grad_input", &geometry.input().dims(), grad_input.len())?;
    }
    let (columns, mut input_gradient) = scratch.backward(geometry, weight)?;
    let column_len = geometry.column_len();
    let (c_out, taps, positions) = (geometry.c_out(), geometry.taps(), geometry.positions());
    let (in_len, out_len) = (geometry.input().image_len(), geometry.output().image_len());
    let mut grad_input = grad_input;
    // The Winograd and direct weight gradients take the whole batch at
    // once; im2col adds one image at a time in the loop below.
    let whole_batch = if winograd_weight_grad::applies(geometry) {
        winograd_weight_grad::weight_gradient(geometry, input, grad_output, columns, grad_weight);
        true
    } else if direct_weight_grad::applies(geometry) {
        direct_weight_grad::weight_gradient(geometry, input, grad_output, columns, grad_weight);
        true
    } else {
        false
    };

    // One image at a time, so its dY and columns stay in cache for both products.
    let images = input
        .chunks_exact(in_len)
        .zip(grad_output.chunks_exact(out_len));
    for (index, (image, grad_out)) in images.enumerate() {
        if !whole_batch {
            let grad_out_mat = MatRef::row_major(grad_out, c_out, positions);
            let col = geometry.columns(image, &mut columns[..column_len]);
            let beta = if index == 0 { 0.0 } else { 1.0 };
            let grad_weight = MatMut::row_major(grad_weight, c_out, taps);
            gemm(1.0, grad_out_mat, col.t(), beta, grad_weight);
        }

        let Some(grad_input) = grad_input.as_deref_mut() else {
            continue;
        };
        let grad_image = &mut grad_input[index * in_len..][..in_len];
        input_gradient.image(grad_out, columns, grad_image);
    }
    Ok(())
}

//! Weight gradient of a stride-1 3x3 convolution computed from the
//! zero-padded images in place, with an AVX-512 micro-kernel.
//!
//! The gradient of weight `(o, c, ky, kx)` is the sum over images and
//! output positions `(y, x)` of `dY[o, y, x] * padded[c, y + ky, x + kx]`.
//! The micro-kernel takes [`FILTERS`] filters and one input channel, so
//! `FILTERS * 9` sums, and keeps a 16-lane partial sum of each in a
//! register. It walks every image of the pass, 16 positions of a row per
//! step. Each step loads 16 values of `dY` per filter and the 9 shifted runs
//! of 16 padded inputs, and does one multiply-add per pair. The lanes are
//! added up only at the end. So neither a column matrix nor a packed copy
//! is written, and the sum over images needs no second pass.

use crate::direct_conv;
use crate::Conv2dGeometry;

/// Filters per micro-kernel call: 3 filters by 9 taps is 27 accumulators,
/// which leaves registers for the 3 gradient vectors and one input vector.
const FILTERS: usize = 3;
/// Taps of a 3x3 kernel.
const TAPS: usize = 9;
/// Positions per step: one 16-lane vector.
const LANES: usize = 16;

/// Returns whether the weight gradient of `geometry` runs on the direct
/// path: the conditions of the direct forward pass and a 3x3 kernel.
pub(crate) fn applies(geometry: &Conv2dGeometry) -> bool {
    geometry.kernel() == 3 && direct_conv::applies(geometry)
}

/// Elements of the padded copies of every image of the batch.
pub(crate) fn padded_batch_len(geometry: &Conv2dGeometry) -> usize {
    geometry.input().batch * direct_conv::padded_len(geometry)
}

/// Overwrites `grad_weight` (`[c_out, c_in, 3, 3]`) with the weight
/// gradient summed over the batch, from `input` (`[batch, c_in, h, w]`) and
/// `grad_output` (`[batch, c_out, out_h, out_w]`). `padded` is scratch of
/// at least [`padded_batch_len`] elements. The caller has checked
/// [`applies`] and the slice lengths.
pub(crate) fn weight_gradient(
    geometry: &Conv2dGeometry,
    input: &[f32],
    grad_output: &[f32],
    padded: &mut [f32],
    grad_weight: &mut [f32],
) {
    let sizes = Sizes::new(geometry);
    let padded = &mut padded[..sizes.batch * sizes.padded_len];
    let in_len = geometry.input().image_len();
    for (image, out) in input
        .chunks_exact(in_len)
        .zip(padded.chunks_exact_mut(sizes.padded_len))
    {
        direct_conv::pad(geometry, image, out);
    }
    assert!(grad_output.len() >= sizes.batch * sizes.out_len);

    for channel in 0..sizes.channels {
        for first in (0..geometry.c_out()).step_by(FILTERS) {
            let place = Place { channel, first };
            let (padded, out) = (&*padded, &mut *grad_weight);
            match geometry.c_out() - first {
                1 => group::<1>(&sizes, padded, grad_output, place, out),
                2 => group::<2>(&sizes, padded, grad_output, place, out),
                _ => group::<FILTERS>(&sizes, padded, grad_output, place, out),
            }
        }
    }
}

/// The sizes the micro-kernel walks, all in elements.
struct Sizes {
    batch: usize,
    out_h: usize,
    out_w: usize,
    /// One output channel of one image, `out_h * out_w`.
    positions: usize,
    /// One image of the output gradient, `c_out * positions`.
    out_len: usize,
    /// One padded row and one padded channel.
    row: usize,
    plane: usize,
    /// One padded image, `c_in * plane`.
    padded_len: usize,
    /// Input channels, `c_in`.
    channels: usize,
}

impl Sizes {
    fn new(geometry: &Conv2dGeometry) -> Self {
        let (input, output) = (geometry.input(), geometry.output());
        let pad = 2 * geometry.padding();
        let (rows, row) = (input.height + pad, input.width + pad);
        let positions = output.height * output.width;
        Self {
            batch: input.batch,
            out_h: output.height,
            out_w: output.width,
            positions,
            out_len: output.channels * positions,
            row,
            plane: rows * row,
            padded_len: input.channels * rows * row,
            channels: input.channels,
        }
    }
}

/// The input channel and first filter of one micro-kernel call.
#[derive(Clone, Copy)]
struct Place {
    channel: usize,
    first: usize,
}

/// Writes the 9 tap gradients of filters `first..first + F` for one input
/// channel, summed over the batch, into `grad_weight` (`[c_out, c_in, 3, 3]`).
fn group<const F: usize>(
    sizes: &Sizes,
    padded: &[f32],
    grad_output: &[f32],
    place: Place,
    grad_weight: &mut [f32],
) {
    // The last element read: tap (2, 2) of the last 16 positions of the
    // last row of the last image, and the last filter's last gradient.
    let last_input = (sizes.batch - 1) * sizes.padded_len
        + place.channel * sizes.plane
        + (sizes.out_h + 1) * sizes.row
        + sizes.out_w
        + 1;
    let last_gradient = (sizes.batch - 1) * sizes.out_len + (place.first + F) * sizes.positions;
    assert!(last_input < padded.len());
    assert!(last_gradient <= grad_output.len());
    // SAFETY: `applies()` checked AVX-512F. The bounds just asserted cover
    // every load: rows `y + ky <= out_h + 1` and columns `x + kx + 15 <=
    // out_w + 1` of the padded plane, and filters below `first + F`.
    let sums = unsafe { kernel::<F>(sizes, padded, grad_output, place) };
    for (filter, taps) in sums.iter().enumerate() {
        let at = ((place.first + filter) * sizes.channels + place.channel) * TAPS;
        grad_weight[at..at + TAPS].copy_from_slice(taps);
    }
}

/// Computes the sums of [`group`] with AVX-512 multiply-adds.
///
/// # Safety
/// The CPU must support AVX-512F, and `padded` and `grad_output` must
/// contain every element that [`group`] asserts.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel<const F: usize>(
    sizes: &Sizes,
    padded: &[f32],
    grad_output: &[f32],
    place: Place,
) -> [[f32; TAPS]; F] {
    use std::arch::x86_64::{
        __m512, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_reduce_add_ps, _mm512_setzero_ps,
    };

    let mut acc: [[__m512; TAPS]; F] = [[_mm512_setzero_ps(); TAPS]; F];
    for image in 0..sizes.batch {
        let plane = padded
            .as_ptr()
            .wrapping_add(image * sizes.padded_len + place.channel * sizes.plane);
        let gradient = grad_output
            .as_ptr()
            .wrapping_add(image * sizes.out_len + place.first * sizes.positions);

        // One step per 16 positions of an output row.
        for y in 0..sizes.out_h {
            for x in (0..sizes.out_w).step_by(LANES) {
                let at = y * sizes.out_w + x;
                // SAFETY: filter f < F and position `at + 15` are inside the
                // bounds the caller asserted.
                let dy: [__m512; F] = std::array::from_fn(|f| unsafe {
                    _mm512_loadu_ps(gradient.add(f * sizes.positions + at))
                });
                // The tap number also gives the shift, so it is a plain counter.
                #[allow(clippy::needless_range_loop)]
                for tap in 0..TAPS {
                    let (ky, kx) = (tap / 3, tap % 3);
                    // SAFETY: row `y + ky` and columns up to `x + kx + 15`
                    // lie inside the padded plane, as the caller asserted.
                    let inputs =
                        unsafe { _mm512_loadu_ps(plane.add((y + ky) * sizes.row + x + kx)) };
                    for f in 0..F {
                        acc[f][tap] = _mm512_fmadd_ps(dy[f], inputs, acc[f][tap]);
                    }
                }
            }
        }
    }
    acc.map(|taps| taps.map(|lanes| _mm512_reduce_add_ps(lanes)))
}

/// Never called: [`applies`] is false off x86-64.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn kernel<const F: usize>(_: &Sizes, _: &[f32], _: &[f32], _: Place) -> [[f32; TAPS]; F] {
    unreachable!("the direct weight gradient runs only on x86-64")
}

//! Weight gradient of a 3x3, stride-1, padding-1 convolution with
//! Winograd F(3x3, 2x2), on CPUs with AVX-512F.
//!
//! Each 2x2 tile of the output gradient `dy` and the 4x4 input patch `d`
//! under it add `sum over (i, j) of dy[i][j] * d[i + ky][j + kx]` to the
//! 3x3 gradient. Transposing the forward pass's Winograd identity gives
//! that sum as `G^T [ (A dy A^T) . (B^T d B) ] G`, with the forward pass's
//! `A`, `B` and `G`. The outer `G^T .. G` is linear, so it applies once,
//! to the sum over tiles and images. What remains per element `xi` of the
//! 4x4 transformed tile is a matrix product over the tiles:
//! `M[xi][k][c] = sum over t of D[t][xi][k] * V[t][xi][c]`. A tile then
//! costs 16 multiplications per weight instead of 36.
//!
//! The transforms run on 16 channels (or filters) at a time, so each image
//! and its output gradient are first copied in channels-last order. Per
//! image, `V` and `D` are written tile by tile, in contiguous runs, and the
//! products are added to `M` by a micro-kernel that keeps 8 filters by 32
//! channels of `M` in registers. Last, `G^T M G` gives the gradient.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::__m512;

use crate::winograd::{self, SLACK, XI};
#[cfg(target_arch = "x86_64")]
use crate::winograd::{input_transform, transpose};
use crate::{channels_last, Conv2dGeometry};

/// Filters per micro-kernel tile.
const FILTERS: usize = 8;
/// Input channels per micro-kernel tile: two 16-lane vectors.
const CHANNELS: usize = 32;
/// Channels or filters per transform: one 16-lane vector.
const LANES: usize = 16;
/// Taps of a 3x3 kernel.
const TAPS: usize = 9;

/// Returns whether the weight gradient of `geometry` runs on this path:
/// the conditions of the Winograd forward pass, a multiple of 32 input
/// channels and a multiple of 16 filters.
pub(crate) fn applies(geometry: &Conv2dGeometry) -> bool {
    geometry.input().channels.is_multiple_of(CHANNELS)
        && geometry.c_out().is_multiple_of(LANES)
        && winograd::applies(geometry)
}

/// The sizes of the scratch regions, in elements.
struct Layout {
    /// Input rows and columns, and channels in and out.
    rows: usize,
    cols: usize,
    c_in: usize,
    c_out: usize,
    /// 2x2 tiles per image.
    tiles: usize,
    /// The padded channels-last image and the channels-last gradient.
    padded: usize,
    gradient: usize,
    /// One tile's `V` (`[16, c_in]`) and `D` (`[16, c_out]`), with slack
    /// so that neighbouring tiles do not share L1 cache sets.
    v_tile: usize,
    d_tile: usize,
}

impl Layout {
    fn new(geometry: &Conv2dGeometry) -> Self {
        let input = geometry.input();
        let (c_in, c_out) = (input.channels, geometry.c_out());
        Self {
            rows: input.height,
            cols: input.width,
            c_in,
            c_out,
            tiles: winograd::tiles(geometry),
            padded: (input.height + 2) * (input.width + 2) * c_in,
            gradient: input.height * input.width * c_out,
            v_tile: XI * c_in + SLACK,
            d_tile: XI * c_out + SLACK,
        }
    }

    /// Elements of `M`: sixteen `[c_out, c_in]` planes.
    fn m_len(&self) -> usize {
        XI * self.c_out * self.c_in
    }

    fn scratch_len(&self) -> usize {
        self.padded + self.gradient + self.tiles * (self.v_tile + self.d_tile) + self.m_len()
    }
}

/// Scratch elements of [`weight_gradient`].
pub(crate) fn scratch_len(geometry: &Conv2dGeometry) -> usize {
    Layout::new(geometry).scratch_len()
}

/// Overwrites `grad_weight` (`[c_out, c_in, 3, 3]`) with the weight
/// gradient summed over the batch, from `input` (`[batch, c_in, h, w]`) and
/// `grad_output` (`[batch, c_out, h, w]`). `scratch` contains at least
/// [`scratch_len`] elements. The caller has checked [`applies`] and the
/// slice lengths.
pub(crate) fn weight_gradient(
    geometry: &Conv2dGeometry,
    input: &[f32],
    grad_output: &[f32],
    scratch: &mut [f32],
    grad_weight: &mut [f32],
) {
    let layout = Layout::new(geometry);
    let (padded, rest) = scratch.split_at_mut(layout.padded);
    let (gradient, rest) = rest.split_at_mut(layout.gradient);
    let (v, rest) = rest.split_at_mut(layout.tiles * layout.v_tile);
    let (d, rest) = rest.split_at_mut(layout.tiles * layout.d_tile);
    let m = &mut rest[..layout.m_len()];
    m.fill(0.0);

    let (in_len, out_len) = (geometry.input().image_len(), geometry.output().image_len());
    let images = input
        .chunks_exact(in_len)
        .zip(grad_output.chunks_exact(out_len));
    let size = (layout.rows, layout.cols);
    for (image, grad) in images {
        channels_last::copy(image, size, 1, padded);
        channels_last::copy(grad, size, 0, gradient);
        // SAFETY: `applies()` checked AVX-512F, the only requirement of
        // these functions beyond their bounds-checked slices.
        unsafe {
            transform(&layout, padded, gradient, v, d);
            add_products(&layout, v, d, m);
        }
    }
    write_gradient(&layout, m, grad_weight);
}

/// Writes `V` (`v[t * v_tile + xi * c_in + c]`) and `D` (`d[t * d_tile +
/// xi * c_out + k]`) of every tile of one image.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn transform(layout: &Layout, padded: &[f32], gradient: &[f32], v: &mut [f32], d: &mut [f32]) {
    let per_row = layout.cols / 2;
    let (padded_row, gradient_row) = ((layout.cols + 2) * layout.c_in, layout.cols * layout.c_out);
    for tile in 0..layout.tiles {
        let (y, x) = (2 * (tile / per_row), 2 * (tile % per_row));
        let v = &mut v[tile * layout.v_tile..][..XI * layout.c_in];
        let d = &mut d[tile * layout.d_tile..][..XI * layout.c_out];
        for first in (0..layout.c_in).step_by(LANES) {
            let at = (y * (layout.cols + 2) + x) * layout.c_in + first;
            input_tile(&padded[at..], padded_row, layout.c_in, &mut v[first..]);
        }
        for first in (0..layout.c_out).step_by(LANES) {
            let at = (y * layout.cols + x) * layout.c_out + first;
            gradient_tile(&gradient[at..], gradient_row, layout.c_out, &mut d[first..]);
        }
    }
}

/// Loads 16 values from the start of `values`.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
fn load(values: &[f32]) -> __m512 {
    let values = &values[..LANES];
    // SAFETY: the slice above contains the 16 values read.
    unsafe { std::arch::x86_64::_mm512_loadu_ps(values.as_ptr()) }
}

/// Stores 16 values at the start of `out`.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
fn store(out: &mut [f32], value: __m512) {
    let out = &mut out[..LANES];
    // SAFETY: the slice above contains the 16 values written.
    unsafe { std::arch::x86_64::_mm512_storeu_ps(out.as_mut_ptr(), value) }
}

/// Transforms one 4x4 input patch for 16 channels: pixel `(r, x)` of the
/// patch is `patch[r * row + x * pixel..]`, and element `xi` of `B^T d B`
/// goes to `out[xi * pixel..]`, where `pixel` is the channel count.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
fn input_tile(patch: &[f32], row: usize, pixel: usize, out: &mut [f32]) {
    let mut rows = [[std::arch::x86_64::_mm512_setzero_ps(); 4]; 4];
    for (r, values) in rows.iter_mut().enumerate() {
        let pixels = &patch[r * row..];
        let [a, b, c, d] = [
            load(pixels),
            load(&pixels[pixel..]),
            load(&pixels[2 * pixel..]),
            load(&pixels[3 * pixel..]),
        ];
        *values = input_transform([a, b, c, d]);
    }
    for (x, column) in transpose(&rows).into_iter().enumerate() {
        for (y, value) in input_transform(column).into_iter().enumerate() {
            store(&mut out[(4 * y + x) * pixel..], value);
        }
    }
}

/// Transforms one 2x2 tile of the output gradient for 16 filters: value
/// `(r, x)` is `tile[r * row + x * pixel..]`, and element `xi` of `A dy
/// A^T`, with `A = [[1, 0], [1, 1], [1, -1], [0, -1]]`, goes to `out[xi *
/// pixel..]`, where `pixel` is the filter count.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
fn gradient_tile(tile: &[f32], row: usize, pixel: usize, out: &mut [f32]) {
    let top = gradient_transform([load(tile), load(&tile[pixel..])]);
    let bottom = gradient_transform([load(&tile[row..]), load(&tile[row + pixel..])]);
    for x in 0..4 {
        for (y, value) in gradient_transform([top[x], bottom[x]])
            .into_iter()
            .enumerate()
        {
            store(&mut out[(4 * y + x) * pixel..], value);
        }
    }
}

/// Returns `A x` for two vectors: `[x0, x0 + x1, x0 - x1, -x1]`.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
fn gradient_transform([x0, x1]: [__m512; 2]) -> [__m512; 4] {
    use std::arch::x86_64::{_mm512_add_ps, _mm512_setzero_ps, _mm512_sub_ps};
    [
        x0,
        _mm512_add_ps(x0, x1),
        _mm512_sub_ps(x0, x1),
        _mm512_sub_ps(_mm512_setzero_ps(), x1),
    ]
}

/// Adds `D[t][xi]^T V[t][xi]` summed over the image's tiles to `M[xi]`
/// (`m[(xi * c_out + k) * c_in + c]`) for every `xi`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn add_products(layout: &Layout, v: &[f32], d: &[f32], m: &mut [f32]) {
    let (c_in, c_out, tiles) = (layout.c_in, layout.c_out, layout.tiles);
    // The last tile's rows end inside `v` and `d`.
    assert!(tiles * layout.v_tile <= v.len());
    assert!(tiles * layout.d_tile <= d.len());
    for xi in 0..XI {
        for first_filter in (0..c_out).step_by(FILTERS) {
            for first_channel in (0..c_in).step_by(CHANNELS) {
                let gradients = xi * c_out + first_filter;
                let inputs = xi * c_in + first_channel;
                let out = &mut m[gradients * c_in + first_channel..];
                assert!(out.len() >= (FILTERS - 1) * c_in + CHANNELS);
                // SAFETY: AVX-512F is enabled here. For every tile t, the
                // kernel reads `d[t * d_tile + gradients..][..8]` and
                // `v[t * v_tile + inputs..][..32]`, inside one tile's rows
                // because `first_filter + 8 <= c_out` and `first_channel +
                // 32 <= c_in`, and the asserts keep the tiles inside the
                // slices and the 8 rows of 32 it updates inside `out`.
                unsafe {
                    let d = d.as_ptr().add(gradients);
                    let v = v.as_ptr().add(inputs);
                    kernel(
                        d,
                        layout.d_tile,
                        v,
                        layout.v_tile,
                        tiles,
                        out.as_mut_ptr(),
                        c_in,
                    );
                }
            }
        }
    }
}

/// Adds `sum over t < tiles of d[t * d_stride + i] * v[t * v_stride + j]`
/// to `m[i * ldm + j]` for `i < 8`, `j < 32`.
///
/// # Safety
/// AVX-512F; every element named above is readable (`d`, `v`) and
/// writable (`m`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel(
    d: *const f32,
    d_stride: usize,
    v: *const f32,
    v_stride: usize,
    tiles: usize,
    m: *mut f32,
    ldm: usize,
) {
    use std::arch::x86_64::{_mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps};
    use std::arch::x86_64::{_mm512_setzero_ps, _mm512_storeu_ps};

    let mut acc = [[_mm512_setzero_ps(); 2]; FILTERS];
    for (i, pair) in acc.iter_mut().enumerate() {
        // SAFETY: the caller guarantees row i of `m` is readable.
        unsafe {
            pair[0] = _mm512_loadu_ps(m.add(i * ldm));
            pair[1] = _mm512_loadu_ps(m.add(i * ldm + LANES));
        }
    }
    // One tile per step: 32 channels of V times 8 filters of D.
    for t in 0..tiles {
        // SAFETY: the caller guarantees the 32 values of V are readable.
        let (b0, b1) = unsafe {
            let inputs = v.add(t * v_stride);
            (_mm512_loadu_ps(inputs), _mm512_loadu_ps(inputs.add(LANES)))
        };
        for (i, pair) in acc.iter_mut().enumerate() {
            // SAFETY: the caller guarantees the 8 values of D are readable.
            let w = _mm512_set1_ps(unsafe { *d.add(t * d_stride + i) });
            pair[0] = _mm512_fmadd_ps(w, b0, pair[0]);
            pair[1] = _mm512_fmadd_ps(w, b1, pair[1]);
        }
    }
    for (i, pair) in acc.iter().enumerate() {
        // SAFETY: the caller guarantees row i of `m` is writable.
        unsafe {
            _mm512_storeu_ps(m.add(i * ldm), pair[0]);
            _mm512_storeu_ps(m.add(i * ldm + LANES), pair[1]);
        }
    }
}

/// Writes `G^T M G` for every filter and channel into `grad_weight`
/// (`[c_out, c_in, 3, 3]`), with `G^T = [[1, 1/2, 1/2, 0], [0, 1/2, -1/2,
/// 0], [0, 1/2, 1/2, 1]]`.
fn write_gradient(layout: &Layout, m: &[f32], grad_weight: &mut [f32]) {
    let pairs = layout.c_out * layout.c_in;
    let reduce = |[a, b, c, d]: [f32; 4]| [a + 0.5 * (b + c), 0.5 * (b - c), 0.5 * (b + c) + d];
    for (pair, out) in grad_weight.chunks_exact_mut(TAPS).take(pairs).enumerate() {
        let at = |xi: usize| m[xi * pairs + pair];
        // Down the four columns first, then along each of the three rows.
        let columns = [0, 1, 2, 3].map(|x| reduce([at(x), at(4 + x), at(8 + x), at(12 + x)]));
        for (ky, taps) in out.chunks_exact_mut(3).enumerate() {
            taps.copy_from_slice(&reduce(columns.map(|column| column[ky])));
        }
    }
}

/// Never called: [`applies`] is false off x86-64.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn transform(_: &Layout, _: &[f32], _: &[f32], _: &mut [f32], _: &mut [f32]) {
    unreachable!("the Winograd weight gradient runs only on x86-64")
}

/// Never called: [`applies`] is false off x86-64.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn add_products(_: &Layout, _: &[f32], _: &[f32], _: &mut [f32]) {
    unreachable!("the Winograd weight gradient runs only on x86-64")
}

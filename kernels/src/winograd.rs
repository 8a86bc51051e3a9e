//! Winograd F(2x2, 3x3) convolution for 3x3, stride-1, padding-1 layers on
//! CPUs with AVX-512F.
//!
//! The output is cut into 2x2 tiles. Each tile reads a 4x4 patch `d` of the
//! padded input and the Winograd identity gives its outputs as
//! `A^T [ (G g G^T) . (B^T d B) ] A`, where `.` multiplies element by
//! element. Summed over input channels, the sixteen element-wise products
//! become sixteen matrix products `M[xi] = U[xi] * V[xi]`, one per element
//! `xi` of the 4x4 transformed tile, with `U[xi]` the `[c_out, c_in]`
//! transformed weights and `V[xi]` the `[c_in, tiles]` transformed inputs.
//! A tile then costs 16 multiplications per weight instead of 36, and the
//! transforms are additions only.
//!
//! Per image, the image is padded first. Then each block of 32 tiles has
//! its inputs transformed into `V`. For each panel of 8 filters the
//! direct convolution's micro-kernel runs the sixteen products (each is a
//! 1x1 convolution over the block's tiles), and the panel's `M`, small
//! enough for L1, is transformed back into output rows. The transforms
//! run on 16 tiles at a time, one per vector lane.

use crate::direct_conv::{self, kernel, MR, NR};
use crate::Conv2dGeometry;

/// Elements of a transformed 4x4 tile.
pub(crate) const XI: usize = 16;
/// Tiles per block: the micro-kernel's 32 columns.
const BLOCK: usize = NR;
/// Tiles transformed together, one per vector lane.
const LANES: usize = 16;
/// Tiles in half a lane group: they lie in one row of tiles.
const HALF_GROUP: usize = LANES / 2;
/// Elements of slack after each `xi` plane of `U` and `M` and each channel
/// of `V`. Without it the strides are multiples of 1 KiB, so the sixteen
/// loads or stores of one transform would share a few L1 cache sets. One
/// cache line of slack spreads them over sixteen sets.
pub(crate) const SLACK: usize = 16;

/// Returns whether `geometry` runs on the Winograd path on this CPU. It
/// needs a 3x3 kernel, stride 1, padding 1, at least 8 input channels,
/// output rows a multiple of 16 wide and a multiple of 32 tiles of 2x2 per
/// image. With fewer channels the output transform outweighs the saved
/// multiplications: the network's first layer (3 channels) evaluated about
/// 6% slower than on the direct kernel. The channel offsets
/// in a block of `V` must fit in `u32`, and the CPU must have AVX-512F.
pub(crate) fn applies(geometry: &Conv2dGeometry) -> bool {
    let output = geometry.output();
    let v_len = geometry.input().channels.checked_mul(V_CHANNEL);
    geometry.kernel() == 3
        && geometry.padding() == 1
        && geometry.input().channels >= 8
        && output.height.is_multiple_of(2)
        && tiles(geometry).is_multiple_of(BLOCK)
        && v_len.is_some_and(|len| u32::try_from(len).is_ok())
        && direct_conv::applies(geometry)
}

/// 2x2 output tiles per image.
pub(crate) fn tiles(geometry: &Conv2dGeometry) -> usize {
    let output = geometry.output();
    (output.height / 2) * (output.width / 2)
}

/// Filters rounded up to whole micro-kernel panels.
fn padded_filters(geometry: &Conv2dGeometry) -> usize {
    geometry.c_out().div_ceil(MR) * MR
}

/// Elements between neighbouring `xi` planes of the transformed weights
/// (`[c_out rounded up to 8, c_in]` per plane).
fn u_stride(geometry: &Conv2dGeometry) -> usize {
    padded_filters(geometry) * geometry.input().channels + SLACK
}

/// Elements between neighbouring channels of one block's transformed
/// inputs (`[16, 32]` per channel: its sixteen `xi` rows of 32 tiles).
/// A channel's rows are written together, as one contiguous run.
const V_CHANNEL: usize = XI * BLOCK + SLACK;

/// Elements between neighbouring `xi` planes of one panel's products
/// (`[8, 32]` per plane).
const M_STRIDE: usize = MR * BLOCK + SLACK;

/// Scratch elements of one image: the padded image, then one block's
/// transformed inputs `V` and one panel's products `M`.
pub(crate) fn scratch_len(geometry: &Conv2dGeometry) -> usize {
    direct_conv::padded_len(geometry) + geometry.input().channels * V_CHANNEL + XI * M_STRIDE
}

/// Elements of the transformed weights: sixteen planes.
pub(crate) fn packed_weight_len(geometry: &Conv2dGeometry) -> usize {
    XI * u_stride(geometry)
}

/// A convolution prepared for the Winograd path: its transformed weights,
/// packed per element `xi` into panels of [`MR`] filters stored channel by
/// channel, and the offset of each channel's row in a block of `V`.
pub(crate) struct WinogradConv<'a> {
    geometry: Conv2dGeometry,
    packed: &'a [f32],
    offsets: &'a [u32],
}

impl<'a> WinogradConv<'a> {
    /// Transforms `weight` (`[c_out, c_in, 3, 3]`) into `packed`. The caller
    /// has checked [`applies`], the weight length, and that `packed` and
    /// `offsets` contain at least [`packed_weight_len`] and `c_in` elements.
    pub(crate) fn new(
        geometry: &Conv2dGeometry,
        weight: &[f32],
        packed: &'a mut [f32],
        offsets: &'a mut [u32],
    ) -> Self {
        let c_in = geometry.input().channels;
        let filter = |k: usize, c: usize| -> [f32; 9] {
            let start = (k * c_in + c) * 9;
            weight[start..start + 9].try_into().expect("9 taps")
        };
        Self::packed(geometry, filter, packed, offsets)
    }

    /// Prepares the convolution that computes the input gradient of the
    /// 3x3, padding-1 `forward` from its output gradient. `geometry` has
    /// the output gradient's channels in and the forward input's channels
    /// out. Its filter `c`, channel `o` is `weight[o, c]` turned by 180
    /// degrees. The caller has checked [`applies`] for `geometry` and the
    /// buffer sizes, as for [`WinogradConv::new`].
    pub(crate) fn input_gradient(
        forward: &Conv2dGeometry,
        geometry: &Conv2dGeometry,
        weight: &[f32],
        packed: &'a mut [f32],
        offsets: &'a mut [u32],
    ) -> Self {
        let c_in = forward.input().channels;
        let filter = |c: usize, o: usize| -> [f32; 9] {
            let start = (o * c_in + c) * 9;
            let mut taps: [f32; 9] = weight[start..start + 9].try_into().expect("9 taps");
            taps.reverse();
            taps
        };
        Self::packed(geometry, filter, packed, offsets)
    }

    /// Wraps weights and offsets that [`WinogradConv::new`] or
    /// [`WinogradConv::input_gradient`] prepared earlier for `geometry`.
    pub(crate) fn from_parts(
        geometry: &Conv2dGeometry,
        packed: &'a [f32],
        offsets: &'a [u32],
    ) -> Self {
        Self {
            geometry: *geometry,
            packed: &packed[..packed_weight_len(geometry)],
            offsets: &offsets[..geometry.input().channels],
        }
    }

    fn packed(
        geometry: &Conv2dGeometry,
        filter: impl Fn(usize, usize) -> [f32; 9],
        packed: &'a mut [f32],
        offsets: &'a mut [u32],
    ) -> Self {
        let c_in = geometry.input().channels;
        let packed = &mut packed[..packed_weight_len(geometry)];
        pack_weight(geometry, filter, packed);

        let offsets = &mut offsets[..c_in];
        for (channel, offset) in offsets.iter_mut().enumerate() {
            *offset =
                u32::try_from(channel * V_CHANNEL).expect("applies() bounds the padded image");
        }
        Self {
            geometry: *geometry,
            packed,
            offsets,
        }
    }

    /// Writes the convolution of one image (`[c_in, h, w]`) without bias to
    /// `out` (`[c_out, h * w]`), overwriting it. `scratch` contains at least
    /// [`scratch_len`] elements.
    pub(crate) fn image_product(&self, image: &[f32], scratch: &mut [f32], out: &mut [f32]) {
        let g = &self.geometry;
        let out = &mut out[..g.c_out() * g.positions()];
        self.run(image, scratch, |m, panel, first| {
            // SAFETY: `applies()` checked AVX-512F, the only requirement of
            // the transform beyond its bounds-checked slices.
            unsafe { transform_output(g, m, panel, first, out) };
        });
    }

    /// Writes `maxpool(conv(image) + bias)` with 2x2 windows and stride 2,
    /// and each window's argmax, as `fused::bias_maxpool` on the output of
    /// [`WinogradConv::image_product`] would: `pooled` and `argmax` are
    /// `[c_out, h / 2, w / 2]`. A 2x2 window is a 2x2 output tile, so the
    /// output transform pools each tile in registers and the full output
    /// is never written.
    pub(crate) fn image_pooled(
        &self,
        image: &[f32],
        scratch: &mut [f32],
        bias: &[f32],
        pooled: (&mut [f32], &mut [u32]),
    ) {
        let g = &self.geometry;
        let (out, argmax) = pooled;
        let len = g.c_out() * tiles(g);
        let (out, argmax) = (&mut out[..len], &mut argmax[..len]);
        self.run(image, scratch, |m, panel, first| {
            // SAFETY: as in `image_product`.
            unsafe { transform_pooled(g, m, (panel, first), bias, (out, argmax)) };
        });
    }

    /// Pads `image`, then for each block of tiles transforms the inputs
    /// and, panel by panel, computes the products and hands them to
    /// `emit(m, panel, first)`.
    fn run(&self, image: &[f32], scratch: &mut [f32], mut emit: impl FnMut(&[f32], usize, usize)) {
        let g = &self.geometry;
        let (padded, rest) = scratch.split_at_mut(direct_conv::padded_len(g));
        direct_conv::pad(g, image, padded);

        let (v, m) = rest.split_at_mut(g.input().channels * V_CHANNEL);
        let m = &mut m[..XI * M_STRIDE];
        for first in (0..tiles(g)).step_by(BLOCK) {
            // SAFETY: `applies()` checked AVX-512F, the only requirement of
            // the transform beyond its bounds-checked slices.
            unsafe { transform_input(g, padded, first, v) };
            for panel in 0..padded_filters(g) / MR {
                self.products(panel, v, m);
                emit(m, panel, first);
            }
        }
    }

    /// Computes `M[xi] = U[xi] * V[xi]` for the sixteen `xi` of one block
    /// and the [`MR`] filters of one panel.
    fn products(&self, panel: usize, v: &[f32], m: &mut [f32]) {
        let c_in = self.geometry.input().channels;
        let (u_stride, panel_len) = (u_stride(&self.geometry), MR * c_in);
        assert!(v.len() >= c_in * V_CHANNEL);
        for xi in 0..XI {
            let u = &self.packed[xi * u_stride + panel * panel_len..][..panel_len];
            let out = &mut m[xi * M_STRIDE..][..MR * BLOCK];
            let row = xi * BLOCK;
            // SAFETY: `applies()` checked AVX-512F. `u` contains MR weights per
            // channel; the loads of channel c read `v[c * V_CHANNEL + row ..
            // + 32]`, inside `v` as asserted; `out` contains the MR rows of 32
            // the kernel writes.
            unsafe {
                kernel(
                    u,
                    v,
                    self.offsets,
                    [row, row + NR / 2],
                    out.as_mut_ptr(),
                    BLOCK,
                )
            };
        }
    }
}

/// Transforms each weight `filter(k, c)` into `G g G^T` and stores element
/// `xi` of filter `k`, channel `c` at `packed[xi * u_stride + ((k / MR) *
/// c_in + c) * MR + k % MR]`, zero for the filters that pad the last panel.
fn pack_weight(
    geometry: &Conv2dGeometry,
    filter: impl Fn(usize, usize) -> [f32; 9],
    packed: &mut [f32],
) {
    let (c_out, c_in) = (geometry.c_out(), geometry.input().channels);
    let stride = u_stride(geometry);
    packed.fill(0.0);
    for k in 0..c_out {
        for c in 0..c_in {
            let u = transform_weight(&filter(k, c));
            let at = ((k / MR) * c_in + c) * MR + k % MR;
            for (xi, &value) in u.iter().enumerate() {
                packed[xi * stride + at] = value;
            }
        }
    }
}

/// Returns `G g G^T` for one 3x3 filter `g`, row-major 4x4, with
/// `G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]`.
fn transform_weight(g: &[f32; 9]) -> [f32; XI] {
    let column = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    // G g: each column of g turned into four rows.
    let mut left = [[0.0f32; 3]; 4];
    for x in 0..3 {
        let t = column(g[x], g[3 + x], g[6 + x]);
        for (row, value) in left.iter_mut().zip(t) {
            row[x] = value;
        }
    }
    // (G g) G^T: each row of three turned into four.
    let mut u = [0.0f32; XI];
    for (row, out) in left.iter().zip(u.chunks_exact_mut(4)) {
        out.copy_from_slice(&column(row[0], row[1], row[2]));
    }
    u
}

/// Returns the offset of the top-left element of 2x2 tile `tile` (counted
/// row by row over the output) in a row-major plane `width` wide. The
/// plane is the output, or the padded input, whose 4x4 patches start at
/// the same row and column as their tiles.
fn tile_offset(geometry: &Conv2dGeometry, tile: usize, width: usize) -> usize {
    let per_row = geometry.output().width / 2;
    2 * (tile / per_row) * width + 2 * (tile % per_row)
}

/// Returns the offsets of the first tiles of the two half groups from
/// `tile`, as [`tile_offset`] gives them for a plane `width` wide.
fn group_starts(geometry: &Conv2dGeometry, tile: usize, width: usize) -> [usize; 2] {
    [
        tile_offset(geometry, tile, width),
        tile_offset(geometry, tile + HALF_GROUP, width),
    ]
}

/// Writes `V` for the 32 tiles from `first` of the padded image: `v[c *
/// V_CHANNEL + xi * 32 + t]` is element `xi` of `B^T d B` for tile `first
/// + t` of channel `c`.
///
/// Compiled for AVX-512F, so that [`input_tiles`] inlines into its loop.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
fn transform_input(geometry: &Conv2dGeometry, padded: &[f32], first: usize, v: &mut [f32]) {
    let cols = geometry.input().width + 2;
    let plane = (geometry.input().height + 2) * cols;
    let groups = [
        (0, group_starts(geometry, first, cols)),
        (LANES, group_starts(geometry, first + LANES, cols)),
    ];
    for (_, [lo, hi]) in groups {
        // The last load of a half group reads the 18th column from its
        // first tile's left edge, inside the padded row (see `applies`).
        assert!(lo + 3 * cols + 18 <= plane);
        assert!(hi + 3 * cols + 18 <= plane);
    }
    let channels = padded
        .chunks_exact(plane)
        .zip(v.chunks_exact_mut(V_CHANNEL));
    for (channel, out) in channels.take(geometry.input().channels) {
        for (lane, starts) in groups {
            let out = &mut out[lane..];
            assert!(out.len() >= (XI - 1) * BLOCK + LANES);
            // SAFETY: `applies()` checked AVX-512F; the asserts above bound
            // every load inside `channel` and every store of `xi` at `xi *
            // 32 .. + 16` inside `out`.
            unsafe { input_tiles(channel, starts, cols, out.as_mut_ptr(), BLOCK) };
        }
    }
}

/// Writes the output rows of the 32 tiles from `first` for the filters of
/// `panel` from `M`: `m[xi * M_STRIDE + i * 32 + t]` is element `xi` of the
/// product for filter `panel * 8 + i` and tile `first + t`.
///
/// Compiled for AVX-512F, so that [`output_tiles`] inlines into its loop.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
fn transform_output(
    geometry: &Conv2dGeometry,
    m: &[f32],
    panel: usize,
    first: usize,
    out: &mut [f32],
) {
    let width = geometry.output().width;
    let positions = geometry.positions();
    let filters = panel * MR..geometry.c_out().min(panel * MR + MR);
    for lane in (0..BLOCK).step_by(LANES) {
        let lo = tile_offset(geometry, first + lane, width);
        let hi = tile_offset(geometry, first + lane + HALF_GROUP, width);
        assert!(lo + width + LANES <= positions);
        assert!(hi + width + LANES <= positions);
        for (i, k) in filters.clone().enumerate() {
            let plane = &mut out[k * positions..][..positions];
            let source = &m[i * BLOCK + lane..];
            assert!(source.len() >= (XI - 1) * M_STRIDE + LANES);
            // SAFETY: `applies()` checked AVX-512F; the asserts above keep
            // the loads of `xi` at `xi * M_STRIDE .. + 16` inside `source`
            // and both output rows of both half groups inside `plane`.
            unsafe { output_tiles(source, M_STRIDE, plane, [lo, hi], width) };
        }
    }
}

/// Writes the pooled outputs and their argmax of the 32 tiles from `first`
/// for the filters of `panel`, from `M` as in [`transform_output`]. The
/// pooled plane of a filter has one element per tile, in tile order.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
fn transform_pooled(
    geometry: &Conv2dGeometry,
    m: &[f32],
    (panel, first): (usize, usize),
    bias: &[f32],
    (pooled, argmax): (&mut [f32], &mut [u32]),
) {
    let width = geometry.output().width;
    let tiles = tiles(geometry);
    let filters = panel * MR..geometry.c_out().min(panel * MR + MR);
    for lane in (0..BLOCK).step_by(LANES) {
        let lo = tile_offset(geometry, first + lane, width);
        let hi = tile_offset(geometry, first + lane + HALF_GROUP, width);
        let at = first + lane;
        for (i, k) in filters.clone().enumerate() {
            let source = &m[i * BLOCK + lane..];
            assert!(source.len() >= (XI - 1) * M_STRIDE + LANES);
            let out = &mut pooled[k * tiles + at..][..LANES];
            let arg = &mut argmax[k * tiles + at..][..LANES];
            // SAFETY: `applies()` checked AVX-512F; the assert above keeps
            // the loads inside `source`, and the slices contain the 16
            // stores.
            unsafe { pooled_tiles(source, M_STRIDE, bias[k], ([lo, hi], width), (out, arg)) };
        }
    }
}

/// Transforms 16 tiles of one filter's products back as [`output_tiles`]
/// does and adds `bias`. Writes each tile's largest value to `pooled` and
/// its index in the output plane (`width` wide, tiles from `starts` as in
/// [`output_tiles`]) to `argmax`. As in `fused::bias_maxpool`, the first of
/// the four in row-major order wins a tie, and a NaN wins.
///
/// # Safety
/// AVX-512F; `m[xi * xi_stride .. + 16]` lies inside `m` for every `xi <
/// 16`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn pooled_tiles(
    m: &[f32],
    xi_stride: usize,
    bias: f32,
    (starts, width): ([usize; 2], usize),
    (pooled, argmax): (&mut [f32], &mut [u32]),
) {
    use std::arch::x86_64::*;
    // SAFETY: the caller's guarantee is the helper's.
    let [[top_left, top_right], [bottom_left, bottom_right]] =
        unsafe { tile_outputs(m, xi_stride) };

    // Index of each tile's top-left output: lanes 0-7 from `starts[0]`,
    // lanes 8-15 from `starts[1]`, two columns apart.
    let steps = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14);
    let (lo, hi) = (starts[0] as i32, starts[1] as i32);
    let first = _mm512_mask_blend_epi32(0xff00, _mm512_set1_epi32(lo), _mm512_set1_epi32(hi));
    let top = _mm512_add_epi32(first, steps);
    let b = _mm512_set1_ps(bias);
    let mut best = _mm512_add_ps(top_left, b);
    let mut index = top;
    let candidates = [
        (top_right, 1),
        (bottom_left, width as i32),
        (bottom_right, width as i32 + 1),
    ];
    for (values, offset) in candidates {
        let value = _mm512_add_ps(values, b);
        let larger = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(value, best);
        let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(value, value);
        let take = larger | nan;
        best = _mm512_mask_blend_ps(take, best, value);
        let at = _mm512_add_epi32(top, _mm512_set1_epi32(offset));
        index = _mm512_mask_blend_epi32(take, index, at);
    }
    assert!(pooled.len() >= LANES);
    assert!(argmax.len() >= LANES);
    // SAFETY: the asserts above keep both 16-element stores in bounds.
    unsafe {
        _mm512_storeu_ps(pooled.as_mut_ptr(), best);
        _mm512_storeu_si512(argmax.as_mut_ptr().cast(), index);
    }
}

/// Transforms 16 tiles of one channel: lanes 0-7 are the 8 tiles whose
/// first top-left element is `channel[starts[0]]`, lanes 8-15 those from
/// `channel[starts[1]]`, each tile two columns right of the one before.
/// Stores element `xi` of the 16 transformed tiles at `v + xi * xi_stride`.
///
/// # Safety
/// AVX-512F; the 16-element loads at `starts[h] + r * cols` and `+ 2` for
/// `r < 4` lie inside `channel`; `v + xi * xi_stride .. + 16` is valid for
/// writes for every `xi < 16`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn input_tiles(
    channel: &[f32],
    starts: [usize; 2],
    cols: usize,
    v: *mut f32,
    xi_stride: usize,
) {
    use std::arch::x86_64::*;
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    let base = channel.as_ptr();
    let (lo, hi) = (base.wrapping_add(starts[0]), base.wrapping_add(starts[1]));

    // Closures would not inherit AVX-512F and would not inline, so the
    // steps below are written out or call `#[inline]` AVX-512F functions.
    // Row r of every tile: d[r][x] for x = 0..4, after the row transform.
    let mut rows = [[_mm512_setzero_ps(); 4]; 4];
    for (r, row) in rows.iter_mut().enumerate() {
        // SAFETY: the caller guarantees the 16 elements from `starts[h] + r
        // * cols` and from 2 further lie inside `channel`.
        let (a, b, c, d) = unsafe {
            (
                _mm512_loadu_ps(lo.add(r * cols)),
                _mm512_loadu_ps(hi.add(r * cols)),
                _mm512_loadu_ps(lo.add(r * cols + 2)),
                _mm512_loadu_ps(hi.add(r * cols + 2)),
            )
        };
        let d0 = _mm512_permutex2var_ps(a, even, b);
        let d1 = _mm512_permutex2var_ps(a, odd, b);
        let d2 = _mm512_permutex2var_ps(c, even, d);
        let d3 = _mm512_permutex2var_ps(c, odd, d);
        *row = input_transform([d0, d1, d2, d3]);
    }
    // The same transform down the columns.
    for (x, column) in transpose(&rows).into_iter().enumerate() {
        for (y, value) in input_transform(column).into_iter().enumerate() {
            // SAFETY: the caller guarantees `v + xi * xi_stride .. + 16` is
            // valid for writes for every xi < 16.
            unsafe { _mm512_storeu_ps(v.add((4 * y + x) * xi_stride), value) };
        }
    }
}

/// Returns the columns of four rows of `N` vectors.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn transpose<const N: usize>(
    rows: &[[std::arch::x86_64::__m512; N]; 4],
) -> [[std::arch::x86_64::__m512; 4]; N] {
    let mut columns = [[std::arch::x86_64::_mm512_setzero_ps(); 4]; N];
    for (y, row) in rows.iter().enumerate() {
        for (x, &value) in row.iter().enumerate() {
            columns[x][y] = value;
        }
    }
    columns
}

/// Returns `B^T x` for four vectors, `B^T = [[1, 0, -1, 0], [0, 1, 1, 0],
/// [0, -1, 1, 0], [0, 1, 0, -1]]`.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn input_transform(
    [x0, x1, x2, x3]: [std::arch::x86_64::__m512; 4],
) -> [std::arch::x86_64::__m512; 4] {
    use std::arch::x86_64::{_mm512_add_ps, _mm512_sub_ps};
    [
        _mm512_sub_ps(x0, x2),
        _mm512_add_ps(x1, x2),
        _mm512_sub_ps(x2, x1),
        _mm512_sub_ps(x1, x3),
    ]
}

/// Transforms 16 tiles of one filter's products back into outputs. Loads
/// element `xi` of the 16 tiles from `m[xi * xi_stride..]` and computes
/// `A^T m A`. Writes the two output rows of lanes 0-7 from
/// `plane[starts[0]]` and of lanes 8-15 from `plane[starts[1]]`, 16
/// elements each, `width` apart.
///
/// # Safety
/// AVX-512F; `m[xi * xi_stride .. + 16]` lies inside `m` for every `xi <
/// 16`; `starts[h] + width + 16 <= plane.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn output_tiles(
    m: &[f32],
    xi_stride: usize,
    plane: &mut [f32],
    starts: [usize; 2],
    width: usize,
) {
    use std::arch::x86_64::*;
    let low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let high = _mm512_add_epi32(low, _mm512_set1_epi32(8));
    // SAFETY: the caller's guarantee is the helper's.
    let [[top_left, top_right], [bottom_left, bottom_right]] =
        unsafe { tile_outputs(m, xi_stride) };
    let out = plane.as_mut_ptr();
    for (offset, left, right) in [(0, top_left, top_right), (width, bottom_left, bottom_right)] {
        // Interleave each tile's left and right outputs into 16 columns.
        let (first, second) = (
            _mm512_permutex2var_ps(left, low, right),
            _mm512_permutex2var_ps(left, high, right),
        );
        // SAFETY: the caller guarantees `starts[h] + width + 16` is at most
        // `plane.len()`, and `offset` is 0 or `width`.
        unsafe {
            _mm512_storeu_ps(out.add(starts[0] + offset), first);
            _mm512_storeu_ps(out.add(starts[1] + offset), second);
        }
    }
}

/// Loads element `xi` of 16 tiles from `m[xi * xi_stride..]` and returns
/// `A^T m A` for each: `[[top left, top right], [bottom left, bottom
/// right]]`, one vector of 16 tiles each.
///
/// # Safety
/// AVX-512F; `m[xi * xi_stride .. + 16]` lies inside `m` for every `xi <
/// 16`.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn tile_outputs(m: &[f32], xi_stride: usize) -> [[std::arch::x86_64::__m512; 2]; 2] {
    use std::arch::x86_64::{_mm512_loadu_ps, _mm512_setzero_ps};
    let m = m.as_ptr();

    // Each row of the 4x4 products turned into two values, then the same
    // down the columns. Loops, not closures, because closures do not
    // inherit AVX-512F.
    let mut rows = [[_mm512_setzero_ps(); 2]; 4];
    for (r, row) in rows.iter_mut().enumerate() {
        let mut products = [_mm512_setzero_ps(); 4];
        for (x, value) in products.iter_mut().enumerate() {
            // SAFETY: the caller guarantees `m[xi * xi_stride .. + 16]` lies
            // inside `m` for every xi < 16.
            *value = unsafe { _mm512_loadu_ps(m.add((4 * r + x) * xi_stride)) };
        }
        *row = output_transform(products);
    }
    let [left, right] = transpose(&rows);
    let [top_left, bottom_left] = output_transform(left);
    let [top_right, bottom_right] = output_transform(right);
    [[top_left, top_right], [bottom_left, bottom_right]]
}

/// Returns `A^T x` for four vectors, `A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]`.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx512f")]
fn output_transform(
    [x0, x1, x2, x3]: [std::arch::x86_64::__m512; 4],
) -> [std::arch::x86_64::__m512; 2] {
    use std::arch::x86_64::{_mm512_add_ps, _mm512_sub_ps};
    [
        _mm512_add_ps(_mm512_add_ps(x0, x1), x2),
        _mm512_sub_ps(_mm512_sub_ps(x1, x2), x3),
    ]
}

/// Never called: [`applies`] is false off x86-64.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn pooled_tiles(
    _: &[f32],
    _: usize,
    _: f32,
    _: ([usize; 2], usize),
    _: (&mut [f32], &mut [u32]),
) {
    unreachable!("the Winograd convolution runs only on x86-64")
}

/// Never called: [`applies`] is false off x86-64.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn input_tiles(_: &[f32], _: [usize; 2], _: usize, _: *mut f32, _: usize) {
    unreachable!("the Winograd convolution runs only on x86-64")
}

/// Never called: [`applies`] is false off x86-64.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn output_tiles(_: &[f32], _: usize, _: &mut [f32], _: [usize; 2], _: usize) {
    unreachable!("the Winograd convolution runs only on x86-64")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Shape4;

    #[test]
    fn offsets_beyond_u32_leave_the_path() {
        // The padded image still fits in u32 offsets, but a block of V
        // (528 elements per channel) does not.
        let channels = 8_134_409;
        let huge = Conv2dGeometry::new(Shape4::new(1, channels, 8, 16), 1, 3, 1, 1).unwrap();
        assert!(u32::try_from(direct_conv::padded_len(&huge)).is_ok());
        assert!(!applies(&huge));
        let small = Conv2dGeometry::new(Shape4::new(1, 8, 8, 16), 1, 3, 1, 1).unwrap();
        assert_eq!(applies(&small), direct_conv::applies(&small));
    }
}

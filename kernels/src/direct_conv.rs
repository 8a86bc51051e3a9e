//! Direct convolution with an AVX-512 micro-kernel that reads a zero-padded
//! copy of the image in place, for stride-1 layers whose output rows are a
//! multiple of 16 wide.
//!
//! The im2col path writes a `[c_in * k * k, out_h * out_w]` column matrix
//! and the GEMM then copies it again into packed panels. Here neither copy
//! exists. With stride 1, the column-matrix row of tap `(c, ky, kx)`
//! restricted to 16 neighbouring positions of one output row is 16
//! neighbouring elements of the padded input, at a fixed offset from the
//! position's own padded index. The micro-kernel keeps a tile of
//! [`MR`] output channels by 32 positions (two such runs of 16) in
//! registers and adds one tap per step, loading both runs straight from
//! the padded image.
//!
//! Per image the only copy is the padding (about one ninth of the column
//! matrix for a 3x3 kernel). The weights are packed into panels of [`MR`]
//! filters once per call of [`DirectConv::new`], not once per image.

use crate::{Conv2dGeometry, Shape4};

/// Output channels per micro-kernel tile.
pub(crate) const MR: usize = 8;
/// Positions per half tile: one 16-lane vector.
const HALF: usize = 16;
/// Positions per tile.
pub(crate) const NR: usize = 2 * HALF;

/// Returns whether `geometry` runs on the direct path on this CPU: AVX-512F,
/// stride 1, output rows a multiple of 16 wide, and a padded image whose
/// offsets fit in `u32`.
pub(crate) fn applies(geometry: &Conv2dGeometry) -> bool {
    let out_w = geometry.output().width;
    geometry.stride() == 1
        && out_w.is_multiple_of(HALF)
        && u32::try_from(padded_len(geometry)).is_ok()
        && cpu_has_avx512f()
}

#[cfg(target_arch = "x86_64")]
fn cpu_has_avx512f() -> bool {
    crate::packed_gemm::available()
}

/// Other architectures take the im2col path.
#[cfg(not(target_arch = "x86_64"))]
fn cpu_has_avx512f() -> bool {
    false
}

/// Returns the geometry of the convolution that computes the input gradient
/// of a stride-1 `forward` from its output gradient, one image at a time.
/// It has `c_out` channels in, `c_in` filters out, the kernel flipped, and
/// padding `k - 1 - p`, so its output has the input's size. Returns `None`
/// when the padding exceeds `k - 1` or the direct path does not serve it.
pub(crate) fn transposed(forward: &Conv2dGeometry) -> Option<Conv2dGeometry> {
    let k = forward.kernel();
    let padding = (k - 1).checked_sub(forward.padding())?;
    let output = forward.output();
    let input = Shape4::new(1, output.channels, output.height, output.width);
    let geometry = Conv2dGeometry::new(input, forward.input().channels, k, 1, padding).ok()?;
    (forward.stride() == 1 && applies(&geometry)).then_some(geometry)
}

/// Elements of one zero-padded input image, `c_in * (h + 2p) * (w + 2p)`.
pub(crate) fn padded_len(geometry: &Conv2dGeometry) -> usize {
    let (rows, cols) = padded_dims(geometry);
    geometry.input().channels * rows * cols
}

/// Elements of the packed weights, `c_out` rounded up to [`MR`] times the taps.
pub(crate) fn packed_weight_len(geometry: &Conv2dGeometry) -> usize {
    geometry.c_out().div_ceil(MR) * MR * taps(geometry)
}

/// Taps per filter, `c_in * k * k`.
fn taps(geometry: &Conv2dGeometry) -> usize {
    geometry.input().channels * geometry.kernel() * geometry.kernel()
}

fn padded_dims(geometry: &Conv2dGeometry) -> (usize, usize) {
    let input = geometry.input();
    let pad = 2 * geometry.padding();
    (input.height + pad, input.width + pad)
}

/// A convolution prepared for the direct path: its weights packed into
/// panels of [`MR`] filters and the padded-image offset of each tap.
pub(crate) struct DirectConv<'a> {
    geometry: Conv2dGeometry,
    packed: &'a [f32],
    offsets: &'a [u32],
}

impl<'a> DirectConv<'a> {
    /// Packs `weight` (`[c_out, c_in, k, k]`) into `packed` and the tap
    /// offsets into `offsets`. The caller has checked [`applies`], the
    /// weight length, and that `packed` and `offsets` contain at least
    /// [`packed_weight_len`] and `c_in * k * k` elements.
    pub(crate) fn new(
        geometry: &Conv2dGeometry,
        weight: &[f32],
        packed: &'a mut [f32],
        offsets: &'a mut [u32],
    ) -> Self {
        let source = Source {
            weight,
            filter_stride: taps(geometry),
            tap_start: |tap| tap,
        };
        Self::packed(geometry, source, packed, offsets)
    }

    /// Prepares the convolution that computes the input gradient of
    /// `forward` from its output gradient: the [`transposed`] geometry, with
    /// filter `c`, tap `(o, ky, kx)` equal to `weight[o, c, k-1-ky, k-1-kx]`.
    /// The caller has checked that [`transposed`] returned `Some(geometry)`
    /// and the buffer sizes, as for [`DirectConv::new`].
    pub(crate) fn input_gradient(
        forward: &Conv2dGeometry,
        geometry: &Conv2dGeometry,
        weight: &[f32],
        packed: &'a mut [f32],
        offsets: &'a mut [u32],
    ) -> Self {
        let (k, c_in) = (forward.kernel(), forward.input().channels);
        // Tap (o, ky, kx) of filter c reads weight[o, c, k-1-ky, k-1-kx].
        let tap_start = |tap: usize| {
            let (filter, ky, kx) = (tap / (k * k), (tap / k) % k, tap % k);
            (filter * c_in * k + k - 1 - ky) * k + k - 1 - kx
        };
        let source = Source {
            weight,
            filter_stride: k * k,
            tap_start,
        };
        Self::packed(geometry, source, packed, offsets)
    }

    /// Wraps weights and offsets that [`DirectConv::new`] or
    /// [`DirectConv::input_gradient`] packed earlier for `geometry`.
    pub(crate) fn from_parts(
        geometry: &Conv2dGeometry,
        packed: &'a [f32],
        offsets: &'a [u32],
    ) -> Self {
        Self {
            geometry: *geometry,
            packed: &packed[..packed_weight_len(geometry)],
            offsets: &offsets[..taps(geometry)],
        }
    }

    fn packed(
        geometry: &Conv2dGeometry,
        source: Source<'_, impl Fn(usize) -> usize>,
        packed: &'a mut [f32],
        offsets: &'a mut [u32],
    ) -> Self {
        let taps = taps(geometry);
        let packed = &mut packed[..packed_weight_len(geometry)];
        pack_weight(&source, geometry.c_out(), taps, packed);

        let (rows, cols) = padded_dims(geometry);
        let k = geometry.kernel();
        let offsets = &mut offsets[..taps];
        for (tap, offset) in offsets.iter_mut().enumerate() {
            let (channel, ky, kx) = (tap / (k * k), (tap / k) % k, tap % k);
            let index = (channel * rows + ky) * cols + kx;
            *offset = u32::try_from(index).expect("applies() checked the padded length");
        }
        Self {
            geometry: *geometry,
            packed,
            offsets,
        }
    }

    /// Writes `weight * columns(image)` for one image (`[c_in, h, w]`) to
    /// `out` (`[c_out, out_h * out_w]`), overwriting it. `padded` is
    /// scratch of at least [`padded_len`] elements.
    pub(crate) fn image_product(&self, image: &[f32], padded: &mut [f32], out: &mut [f32]) {
        let g = &self.geometry;
        let padded = &mut padded[..padded_len(g)];
        pad(g, image, padded);

        let (out_w, positions, c_out) = (g.output().width, g.positions(), g.c_out());
        let row_stride = padded_dims(g).1;
        let out = &mut out[..c_out * positions];
        let taps = self.offsets.len();
        // The last tap's offset (offsets grow with the tap) plus the start of
        // the last run of 16 positions, plus 15, is the last element a load reads.
        let last_run = (g.output().height - 1) * row_stride + out_w - HALF;
        let last_offset = self.offsets.last().map_or(0, |&offset| offset as usize);
        assert!(last_run + last_offset + HALF <= padded.len());

        for first in (0..positions).step_by(NR) {
            // The padded index of each half tile's first position; a lone
            // half at the end repeats the first half and is not stored.
            let start = |position: usize| (position / out_w) * row_stride + position % out_w;
            let cols = NR.min(positions - first);
            let second = if cols > HALF { first + HALF } else { first };
            let bases = [start(first), start(second)];
            for (panel, filters) in self.packed.chunks_exact(MR * taps).enumerate() {
                let tile = Tile {
                    row: panel * MR,
                    col: first,
                    rows: MR.min(c_out - panel * MR),
                    cols,
                };
                write_tile(filters, padded, self.offsets, bases, tile, positions, out);
            }
        }
    }
}

/// The source layout of the weights to pack: weight `(filter, tap)` is
/// `weight[tap_start(tap) + filter * filter_stride]`.
struct Source<'w, T> {
    weight: &'w [f32],
    filter_stride: usize,
    tap_start: T,
}

/// Packs the weights of `c_out` filters into panels of [`MR`] filters
/// stored tap by tap, zero-padding the last panel.
fn pack_weight<T: Fn(usize) -> usize>(
    source: &Source<'_, T>,
    c_out: usize,
    taps: usize,
    packed: &mut [f32],
) {
    for (panel, out) in packed.chunks_exact_mut(MR * taps).enumerate() {
        let filters = MR.min(c_out - panel * MR);
        let first = panel * MR * source.filter_stride;
        for (tap, column) in out.chunks_exact_mut(MR).enumerate() {
            let start = first + (source.tap_start)(tap);
            let weights = source.weight[start..].iter().step_by(source.filter_stride);
            let (column, rest) = column.split_at_mut(filters);
            column.iter_mut().zip(weights).for_each(|(x, &w)| *x = w);
            rest.fill(0.0);
        }
    }
}

/// Copies `image` (`[c_in, h, w]`) into `padded` (`[c_in, h + 2p, w + 2p]`)
/// with a border of `p` zeros, writing every element.
pub(crate) fn pad(geometry: &Conv2dGeometry, image: &[f32], padded: &mut [f32]) {
    let (h, w) = (geometry.input().height, geometry.input().width);
    let p = geometry.padding();
    let (rows, cols) = padded_dims(geometry);
    let planes = padded.chunks_exact_mut(rows * cols);
    for (plane, source) in planes.zip(image.chunks_exact(h * w)) {
        plane[..p * cols].fill(0.0);
        plane[(p + h) * cols..].fill(0.0);
        let inner = plane[p * cols..(p + h) * cols].chunks_exact_mut(cols);
        for (row, source_row) in inner.zip(source.chunks_exact(w)) {
            // A fill of a short run of unknown length calls `memset`; for
            // the common border of one element, two stores do.
            if p == 1 {
                row[0] = 0.0;
                row[w + 1] = 0.0;
            } else {
                row[..p].fill(0.0);
                row[p + w..].fill(0.0);
            }
            copy_row(source_row, &mut row[p..p + w]);
        }
    }
}

/// Copies `source` to `target` (equal lengths) in fixed blocks of 16, which
/// compile to vector moves. A `copy_from_slice` of a short row of unknown
/// length calls `memmove` once per row instead.
fn copy_row(source: &[f32], target: &mut [f32]) {
    let mut blocks = target.chunks_exact_mut(HALF);
    for (out, block) in (&mut blocks).zip(source.chunks_exact(HALF)) {
        let out: &mut [f32; HALF] = out.try_into().expect("chunks_exact yields whole blocks");
        *out = block.try_into().expect("chunks_exact yields whole blocks");
    }
    let tail = blocks.into_remainder();
    let start = source.len() - tail.len();
    tail.copy_from_slice(&source[start..]);
}

/// The place of one tile in the output: its first filter and position and
/// how many of its rows and columns lie inside the output.
#[derive(Clone, Copy)]
struct Tile {
    row: usize,
    col: usize,
    rows: usize,
    cols: usize,
}

/// Computes one tile into `out` (`[c_out, positions]`). A full tile is
/// written by the micro-kernel directly, an edge tile through a scratch
/// tile, so nothing outside the output is touched.
fn write_tile(
    filters: &[f32],
    padded: &[f32],
    offsets: &[u32],
    bases: [usize; 2],
    tile: Tile,
    positions: usize,
    out: &mut [f32],
) {
    let offset = tile.row * positions + tile.col;
    if tile.rows == MR && tile.cols == NR {
        let out = &mut out[offset..offset + (MR - 1) * positions + NR];
        // SAFETY: `applies()` checked AVX-512F. `filters` contains MR * taps
        // elements (one packed panel), `image_product` asserted that every
        // load at `bases[h] + offsets[tap] .. + 16` lies inside `padded`,
        // and `out` contains MR rows of NR elements at stride `positions`,
        // as the slicing just above checked.
        unsafe { kernel(filters, padded, offsets, bases, out.as_mut_ptr(), positions) };
        return;
    }

    let mut scratch = [0.0f32; MR * NR];
    // SAFETY: as above for `filters`, `padded` and `offsets`; `scratch`
    // contains MR rows of NR elements at stride NR.
    unsafe { kernel(filters, padded, offsets, bases, scratch.as_mut_ptr(), NR) };
    for (i, row) in scratch.chunks_exact(NR).take(tile.rows).enumerate() {
        out[offset + i * positions..][..tile.cols].copy_from_slice(&row[..tile.cols]);
    }
}

/// Computes one `MR x NR` tile: row `i`, column `j` of `c` is the sum over
/// taps `t` of `filters[t * MR + i]` times `padded[bases[j / 16] +
/// offsets[t] + j % 16]`.
///
/// # Safety
/// The CPU must support AVX-512F. `filters` must contain `MR * offsets.len()`
/// elements, every `bases[h] + offsets[t] + 16` must be at most
/// `padded.len()`, and `c` must be valid for writes of `MR` rows of `NR`
/// elements at stride `ldc`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn kernel(
    filters: &[f32],
    padded: &[f32],
    offsets: &[u32],
    bases: [usize; 2],
    c: *mut f32,
    ldc: usize,
) {
    use std::arch::x86_64::{
        __m512, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps,
        _mm512_storeu_ps,
    };

    debug_assert!(filters.len() >= MR * offsets.len());
    let mut acc: [__m512; 2 * MR] = [_mm512_setzero_ps(); 2 * MR];
    let a = filters.as_ptr();
    let (x0, x1) = (
        padded.as_ptr().wrapping_add(bases[0]),
        padded.as_ptr().wrapping_add(bases[1]),
    );

    // One tap per step: two runs of 16 inputs times MR filter weights.
    for (tap, &offset) in offsets.iter().enumerate() {
        let offset = offset as usize;
        // SAFETY: the caller guarantees both 16-element runs at `bases[h] +
        // offset` lie inside `padded`, and `tap < offsets.len()` keeps the
        // MR weights inside `filters`.
        let (b0, b1) = unsafe {
            (
                _mm512_loadu_ps(x0.add(offset)),
                _mm512_loadu_ps(x1.add(offset)),
            )
        };
        for i in 0..MR {
            // SAFETY: as above.
            let w = _mm512_set1_ps(unsafe { *a.add(tap * MR + i) });
            acc[2 * i] = _mm512_fmadd_ps(w, b0, acc[2 * i]);
            acc[2 * i + 1] = _mm512_fmadd_ps(w, b1, acc[2 * i + 1]);
        }
    }

    for (i, pair) in acc.chunks_exact(2).enumerate() {
        // SAFETY: the caller guarantees row i < MR of NR elements at `c + i * ldc`.
        unsafe {
            let row = c.add(i * ldc);
            _mm512_storeu_ps(row, pair[0]);
            _mm512_storeu_ps(row.add(HALF), pair[1]);
        }
    }
}

/// Never called: [`applies`] is false off x86-64.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) unsafe fn kernel(_: &[f32], _: &[f32], _: &[u32], _: [usize; 2], _: *mut f32, _: usize) {
    unreachable!("the direct convolution runs only on x86-64")
}

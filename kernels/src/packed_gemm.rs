//! A packed single-precision GEMM with an AVX-512 micro-kernel, used by
//! [`crate::gemm`] when the CPU has AVX-512F.
//!
//! It follows the usual blocked scheme. For each block of `KC` steps of the
//! inner dimension, `A` is packed into panels of `MR` rows and `B` into
//! panels of `NR` columns. The micro-kernel then computes one `MR x NR`
//! tile of `C` from one panel of each. The packing buffers are thread-local and
//! only grow, so after the first call of each size on a thread the product
//! allocates nothing.

use std::arch::x86_64::{
    __m512, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
};
use std::cell::RefCell;

/// Rows of a micro-kernel tile.
const MR: usize = 8;
/// Columns of a micro-kernel tile: two 16-lane vectors.
const NR: usize = 32;
/// Inner-dimension steps per packed block; a `KC x NR` panel of `B`
/// (32 KiB) then stays in a 48 KiB L1 data cache.
const KC: usize = 256;

thread_local! {
    /// The packed panels of `A` and of `B`.
    static PACKED: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Returns whether this CPU runs the AVX-512 micro-kernel. The standard
/// library caches the detection, so the call is cheap.
pub(crate) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// A strided read-only operand: element `(i, j)` is
/// `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy)]
pub(crate) struct Strided<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) row_stride: usize,
    pub(crate) col_stride: usize,
}

impl Strided<'_> {
    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.row_stride + j * self.col_stride]
    }
}

/// Computes `c = a * b + beta * c` for `a` `[m, k]`, `b` `[k, n]` and a
/// row-major `c` `[m, n]` of row stride `n`. When `beta` is zero, `c` is
/// only written. The caller has checked that every operand element lies
/// inside its slice and that `m`, `n` and `k` are positive.
///
/// # Panics
/// When the CPU lacks AVX-512F; check [`available`] first.
pub(crate) fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: Strided<'_>,
    b: Strided<'_>,
    beta: f32,
    c: &mut [f32],
) {
    assert!(available(), "the packed GEMM needs AVX-512F");
    assert!(c.len() >= m * n, "gemm: output slice too short");
    let (m_panels, n_panels) = (m.div_ceil(MR), n.div_ceil(NR));

    PACKED.with_borrow_mut(|(packed_a, packed_b)| {
        grow(packed_a, m_panels * MR * KC.min(k));
        grow(packed_b, n_panels * NR * KC.min(k));

        // One block of KC inner steps at a time; later blocks add to C.
        for (block, start) in (0..k).step_by(KC).enumerate() {
            let kc = KC.min(k - start);
            pack_a(a, m, start, kc, packed_a);
            pack_b(b, n, start, kc, packed_b);
            let beta = if block == 0 { beta } else { 1.0 };

            // One B panel stays in L1 while every A panel passes it.
            for jp in 0..n_panels {
                let (first, cols) = (jp * NR, NR.min(n - jp * NR));
                let b_panel = Panel {
                    data: &packed_b[jp * NR * kc..][..NR * kc],
                    stride: NR,
                };
                for ip in 0..m_panels {
                    let a_panel = &packed_a[ip * MR * kc..][..MR * kc];
                    let tile = Tile {
                        row: ip * MR,
                        col: first,
                        rows: MR.min(m - ip * MR),
                        cols,
                    };
                    write_tile(kc, a_panel, b_panel, beta, tile, n, c);
                }
            }
        }
    });
}

/// A `kc x NR` panel of `B`: row `p` starts at `data[p * stride]`.
/// Packed panels have stride `NR`. Reading a row-major `B` in place, with
/// its own row stride, measured no faster, because the strided rows of a
/// 1024-column matrix conflict in L1.
#[derive(Clone, Copy)]
struct Panel<'a> {
    data: &'a [f32],
    stride: usize,
}

/// Grows `buffer` to at least `len` elements; it never shrinks.
fn grow(buffer: &mut Vec<f32>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
}

/// Packs rows `0..m`, columns `start..start + kc` of `a` into panels of
/// [`MR`] rows stored column by column, zero-padding the last panel.
fn pack_a(a: Strided<'_>, m: usize, start: usize, kc: usize, packed: &mut [f32]) {
    for (panel, out) in packed
        .chunks_exact_mut(MR * kc)
        .take(m.div_ceil(MR))
        .enumerate()
    {
        for (p, column) in out.chunks_exact_mut(MR).enumerate() {
            for (ii, x) in column.iter_mut().enumerate() {
                let i = panel * MR + ii;
                *x = if i < m { a.at(i, start + p) } else { 0.0 };
            }
        }
    }
}

/// Packs rows `start..start + kc`, columns `0..n` of `b` into panels of
/// [`NR`] columns stored row by row, zero-padding the last panel.
fn pack_b(b: Strided<'_>, n: usize, start: usize, kc: usize, packed: &mut [f32]) {
    for (panel, out) in packed
        .chunks_exact_mut(NR * kc)
        .take(n.div_ceil(NR))
        .enumerate()
    {
        let first = panel * NR;
        pack_b_panel(b, start, first, NR.min(n - first), out);
    }
}

/// Packs columns `first..first + cols` of rows `start..` of `b` into `out`
/// (`[kc, NR]`), zero-padding columns `cols..NR`.
fn pack_b_panel(b: Strided<'_>, start: usize, first: usize, cols: usize, out: &mut [f32]) {
    if b.row_stride == 1 && b.col_stride != 1 {
        pack_b_transposed(b, start, first, cols, out);
        return;
    }
    for (p, row) in out.chunks_exact_mut(NR).enumerate() {
        let offset = (start + p) * b.row_stride + first;
        if b.col_stride == 1 {
            row[..cols].copy_from_slice(&b.data[offset..offset + cols]);
        } else {
            for (jj, x) in row[..cols].iter_mut().enumerate() {
                *x = b.at(start + p, first + jj);
            }
        }
        row[cols..].fill(0.0);
    }
}

/// Packs one panel of a `b` whose columns are contiguous (a transposed
/// row-major matrix), column by column. Reading along each column keeps the
/// loads sequential. Reading along rows would touch one cache line per
/// element, at a stride that can map them all to one L1 set.
fn pack_b_transposed(b: Strided<'_>, start: usize, first: usize, cols: usize, out: &mut [f32]) {
    let kc = out.len() / NR;
    for jj in 0..NR {
        if jj >= cols {
            out.iter_mut().skip(jj).step_by(NR).for_each(|x| *x = 0.0);
            continue;
        }
        let column = &b.data[(first + jj) * b.col_stride + start..][..kc];
        for (x, &value) in out.iter_mut().skip(jj).step_by(NR).zip(column) {
            *x = value;
        }
    }
}

/// The place of one tile in `C`: its first row and column and how many of
/// its rows and columns lie inside `C`.
#[derive(Clone, Copy)]
struct Tile {
    row: usize,
    col: usize,
    rows: usize,
    cols: usize,
}

/// Writes `a_panel * b_panel + beta * C` to one tile of `c` (row stride
/// `ldc`). A full tile is written by the micro-kernel directly, an edge
/// tile through a scratch tile, so nothing outside `C` is touched.
fn write_tile(
    kc: usize,
    a_panel: &[f32],
    b_panel: Panel<'_>,
    beta: f32,
    tile: Tile,
    ldc: usize,
    c: &mut [f32],
) {
    let offset = tile.row * ldc + tile.col;
    if tile.rows == MR && tile.cols == NR {
        let c = &mut c[offset..offset + (MR - 1) * ldc + NR];
        // SAFETY: `available()` was asserted in `gemm`, so the CPU runs
        // AVX-512F. The A panel holds `MR * kc` elements and the B panel
        // `(kc - 1) * stride + NR`, as the slicing in `gemm` checked, and `c`
        // contains rows `0..MR` of `NR` elements at stride `ldc`, as the
        // slicing just above checked.
        unsafe { kernel(kc, a_panel, b_panel, beta, c.as_mut_ptr(), ldc) };
        return;
    }

    let mut scratch = [0.0f32; MR * NR];
    // SAFETY: as above for the panels; `scratch` contains `MR` rows of `NR`
    // elements at stride `NR`.
    unsafe { kernel(kc, a_panel, b_panel, 0.0, scratch.as_mut_ptr(), NR) };
    for (i, row) in scratch.chunks_exact(NR).take(tile.rows).enumerate() {
        let out = &mut c[offset + i * ldc..][..tile.cols];
        for (y, &x) in out.iter_mut().zip(row) {
            *y = if beta == 0.0 { x } else { x + beta * *y };
        }
    }
}

/// Computes one `MR x NR` tile: `c = a_panel * b_panel + beta * c`, where
/// `c` is only read when `beta` is not zero.
///
/// # Safety
/// The CPU must support AVX-512F. `a_panel` must hold `MR * kc` elements
/// and `b_panel` `(kc - 1) * stride + NR`, and `c` must be valid for reads
/// and writes of `MR` rows of `NR` elements at stride `ldc`.
#[target_feature(enable = "avx512f")]
unsafe fn kernel(
    kc: usize,
    a_panel: &[f32],
    b_panel: Panel<'_>,
    beta: f32,
    c: *mut f32,
    ldc: usize,
) {
    let ldb = b_panel.stride;
    debug_assert!(a_panel.len() >= MR * kc && b_panel.data.len() >= (kc - 1) * ldb + NR);
    let mut acc: [__m512; 2 * MR] = [_mm512_setzero_ps(); 2 * MR];
    let (a, b) = (a_panel.as_ptr(), b_panel.data.as_ptr());

    // One rank-1 update of the tile per inner step.
    for p in 0..kc {
        // SAFETY: p < kc, so both vectors lie inside `b_panel`'s
        // (kc - 1) * ldb + NR elements and the MR scalars inside
        // `a_panel`'s MR * kc.
        let (b0, b1) = unsafe {
            (
                _mm512_loadu_ps(b.add(p * ldb)),
                _mm512_loadu_ps(b.add(p * ldb + 16)),
            )
        };
        for i in 0..MR {
            // SAFETY: as above.
            let x = _mm512_set1_ps(unsafe { *a.add(p * MR + i) });
            acc[2 * i] = _mm512_fmadd_ps(x, b0, acc[2 * i]);
            acc[2 * i + 1] = _mm512_fmadd_ps(x, b1, acc[2 * i + 1]);
        }
    }

    // Store, adding beta * C where beta is not zero.
    let beta_vector = _mm512_set1_ps(beta);
    for i in 0..MR {
        // SAFETY: the caller guarantees row i < MR of NR elements at `c + i * ldc`.
        unsafe {
            let row = c.add(i * ldc);
            let (mut lo, mut hi) = (acc[2 * i], acc[2 * i + 1]);
            if beta != 0.0 {
                lo = _mm512_fmadd_ps(beta_vector, _mm512_loadu_ps(row), lo);
                hi = _mm512_fmadd_ps(beta_vector, _mm512_loadu_ps(row.add(16)), hi);
            }
            _mm512_storeu_ps(row, lo);
            _mm512_storeu_ps(row.add(16), hi);
        }
    }
}

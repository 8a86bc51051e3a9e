//! The one safe door to `matrixmultiply::sgemm` and to the packed AVX-512
//! kernel in `packed_gemm`, which [`gemm`] prefers where the CPU has
//! AVX-512F because it keeps its packing buffers between calls instead of
//! allocating them on every call.
//!
//! [`gemm`] computes `C = alpha * A * B + beta * C` for `A` `[m, k]`, `B`
//! `[k, n]` and `C` `[m, n]`. Each operand is a slice plus a row stride and a
//! column stride in elements, so element `(i, j)` sits at
//! `i * row_stride + j * col_stride`. A transposed operand is the same slice
//! with rows and strides swapped, which is how the kernels avoid transposing
//! copies.

/// A read-only matrix view: `[rows, cols]` over `data` with explicit strides.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// Views `data` as a row-major `[rows, cols]` matrix.
    pub(crate) fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// Returns the transpose of this view, `[cols, rows]`, without copying.
    pub(crate) fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// A row-major `[rows, cols]` output matrix over `data`.
#[derive(Debug)]
pub(crate) struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
}

impl<'a> MatMut<'a> {
    /// Views `data` as a row-major `[rows, cols]` matrix.
    pub(crate) fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self { data, rows, cols }
    }
}

/// Returns whether every element of a `[rows, cols]` view with these strides
/// lies inside a slice of `len` elements. An empty view fits any slice.
fn fits(rows: usize, cols: usize, row_stride: usize, col_stride: usize, len: usize) -> bool {
    if rows == 0 || cols == 0 {
        return true;
    }
    let last = (rows - 1)
        .checked_mul(row_stride)
        .zip((cols - 1).checked_mul(col_stride))
        .and_then(|(r, c)| r.checked_add(c));
    matches!(last, Some(last) if last < len)
}

/// Returns whether [`gemm`] runs without allocating on this CPU. The packed
/// AVX-512 kernel keeps its buffers between calls, but
/// `matrixmultiply::sgemm`, used on every other CPU, allocates its packing
/// buffers on each call.
///
/// NOTE: on x86-64 CPUs without AVX-512F a training step therefore allocates in
/// every GEMM. An AVX2 micro-kernel for the packed driver (6 x 16 tiles)
/// measured 5 to 18% slower than `matrixmultiply` on conv2 to conv4 on an
/// AMD EPYC (Zen 1), so it was not adopted.
pub fn gemm_is_allocation_free() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        crate::packed_gemm::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Computes `c = alpha * a * b + beta * c` with `a` `[m, k]`, `b` `[k, n]`
/// and `c` `[m, n]`. When `beta` is zero, `c` is only written, never read,
/// so it may hold NaN.
///
/// # Panics
/// When the inner or outer dimensions disagree, or a view reaches past the
/// end of its slice. Callers validate user input first, so a panic here is a
/// bug in a kernel.
pub(crate) fn gemm(alpha: f32, a: MatRef<'_>, b: MatRef<'_>, beta: f32, c: MatMut<'_>) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "gemm: inner dimensions differ");
    assert_eq!((c.rows, c.cols), (m, n), "gemm: output shape differs");
    assert!(fits(m, k, a.row_stride, a.col_stride, a.data.len()));
    assert!(fits(k, n, b.row_stride, b.col_stride, b.data.len()));
    assert!(fits(m, n, n, 1, c.data.len()));
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // The product is empty, so only the beta term remains.
        let c = &mut c.data[..m * n];
        if beta == 0.0 {
            c.fill(0.0);
        } else {
            c.iter_mut().for_each(|x| *x *= beta);
        }
        return;
    }

    #[cfg(target_arch = "x86_64")]
    if alpha == 1.0 && crate::packed_gemm::available() {
        use crate::packed_gemm::Strided;
        let a = Strided {
            data: a.data,
            row_stride: a.row_stride,
            col_stride: a.col_stride,
        };
        let b = Strided {
            data: b.data,
            row_stride: b.row_stride,
            col_stride: b.col_stride,
        };
        crate::packed_gemm::gemm(m, k, n, a, b, beta, c.data);
        return;
    }

    let stride = |s: usize| isize::try_from(s).expect("gemm: stride exceeds isize::MAX");
    // SAFETY: the asserts above show that every element sgemm reads from `a`
    // and `b` or writes to `c` lies inside its slice. `c` is row-major with
    // column stride 1 and row stride n >= 1, so no two output elements
    // alias, and `&mut` guarantees that `c` overlaps neither `a` nor `b`.
    // With the `threading` feature off, sgemm runs on this thread and keeps
    // no pointer past its return.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            stride(a.row_stride),
            stride(a.col_stride),
            b.data.as_ptr(),
            stride(b.row_stride),
            stride(b.col_stride),
            beta,
            c.data.as_mut_ptr(),
            stride(n),
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_transposed_views() {
        // a = [[1, 2, 3], [4, 5, 6]], b = a^T, so a * a^T = [[14, 32], [32, 77]].
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut c = [f32::NAN; 4];
        let view = MatRef::row_major(&a, 2, 3);
        gemm(1.0, view, view.t(), 0.0, MatMut::row_major(&mut c, 2, 2));
        assert_eq!(c, [14.0, 32.0, 32.0, 77.0]);
    }

    #[test]
    fn gemm_beta_accumulates() {
        let a = [2.0];
        let b = [3.0];
        let mut c = [1.0];
        gemm(
            1.0,
            MatRef::row_major(&a, 1, 1),
            MatRef::row_major(&b, 1, 1),
            1.0,
            MatMut::row_major(&mut c, 1, 1),
        );
        assert_eq!(c, [7.0]);
    }

    #[test]
    #[should_panic]
    fn gemm_short_slice_panics() {
        let a = [1.0; 5];
        let mut c = [0.0; 4];
        let view = MatRef::row_major(&a, 2, 3);
        gemm(1.0, view, view.t(), 0.0, MatMut::row_major(&mut c, 2, 2));
    }

    /// Returns `a * b` for row-major `a` `[m, k]` and `b` `[k, n]`, in f64.
    fn naive(m: usize, k: usize, n: usize, a: &[f32], b: &[f32]) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for p in 0..k {
                for j in 0..n {
                    c[i * n + j] += f64::from(a[i * k + p]) * f64::from(b[p * n + j]);
                }
            }
        }
        c
    }

    #[test]
    fn gemm_edges_match_naive() {
        // Sizes around the 8 x 32 tile and the 256-step block, with plain
        // and transposed operands and both betas.
        let mut cases = vec![
            (1, 1, 1),
            (9, 257, 33),
            (8, 256, 32),
            (17, 300, 65),
            (33, 7, 31),
        ];
        cases.extend([1, 7, 8, 9, 31, 33].map(|s| (s, s, s)));
        for (case, &(m, k, n)) in cases.iter().enumerate() {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7 + case) % 13) as f32 - 6.0)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 5 + case) % 11) as f32 - 5.0)
                .collect();
            let expected = naive(m, k, n, &a, &b);
            let b_t: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();

            let mut c = vec![f32::NAN; m * n];
            let (a_view, b_view) = (MatRef::row_major(&a, m, k), MatRef::row_major(&b, k, n));
            gemm(1.0, a_view, b_view, 0.0, MatMut::row_major(&mut c, m, n));
            let c64: Vec<f64> = c.iter().map(|&x| f64::from(x)).collect();
            assert_eq!(c64, expected, "beta 0, {m}x{k}x{n}");

            let b_view = MatRef::row_major(&b_t, n, k).t();
            gemm(1.0, a_view, b_view, 1.0, MatMut::row_major(&mut c, m, n));
            let doubled: Vec<f64> = expected.iter().map(|x| 2.0 * x).collect();
            let c64: Vec<f64> = c.iter().map(|&x| f64::from(x)).collect();
            assert_eq!(c64, doubled, "beta 1, transposed b, {m}x{k}x{n}");
        }
    }

    #[test]
    fn fits_checks_last_element() {
        assert!(fits(2, 3, 3, 1, 6));
        assert!(!fits(2, 3, 3, 1, 5));
        assert!(fits(3, 2, 1, 3, 6));
        assert!(fits(0, 3, 3, 1, 0));
    }
}

//! The one safe door to `matrixmultiply::sgemm`.
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

    #[test]
    fn fits_checks_last_element() {
        assert!(fits(2, 3, 3, 1, 6));
        assert!(!fits(2, 3, 3, 1, 5));
        assert!(fits(3, 2, 1, 3, 6));
        assert!(fits(0, 3, 3, 1, 0));
    }
}

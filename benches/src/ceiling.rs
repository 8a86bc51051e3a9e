//! The GEMM ceiling: each layer's matrix products done by plain
//! `matrixmultiply::sgemm` calls, with no im2col, col2im or bias work. The
//! work is split over rayon tasks, one per image for a convolution and one
//! per block of rows for the linear layer.

use rayon::prelude::*;

use crate::layers::{ConvLayer, FC_IN, FC_OUT};
use crate::seeded_values;

/// Rows of the linear layer per rayon task in the ceiling.
const LINEAR_ROWS_PER_TASK: usize = 16;

/// A strided view of a `rows x cols` matrix in `data`, where element
/// `(i, j)` is `data[i * row_stride + j * col_stride]`.
#[derive(Debug, Clone, Copy)]
pub struct Strided<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Strided<'a> {
    /// Views `data` as a row-major `rows x cols` matrix.
    ///
    /// # Panics
    /// When `data` is shorter than `rows * cols`.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert!(
            data.len() >= rows * cols,
            "matrix needs {} values",
            rows * cols
        );
        Self {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// Returns the transpose, without copying.
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// Computes `c = a * b + beta * c` with `matrixmultiply::sgemm`, where `c`
/// is row-major `a.rows x b.cols`.
///
/// # Panics
/// When the inner dimensions differ or `c` is shorter than its shape.
pub fn sgemm(a: Strided<'_>, b: Strided<'_>, beta: f32, c: &mut [f32]) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions differ");
    assert!(c.len() >= m * n, "output needs {} values", m * n);
    let stride = |s: usize| isize::try_from(s).expect("stride fits in isize");
    // SAFETY: `Strided::row_major` checked that each input slice contains its
    // `rows x cols` matrix, a transpose reads the same elements, and `c` was
    // checked above to hold the row-major `m x n` output. The output does
    // not alias the inputs because it is borrowed mutably.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            stride(a.row_stride),
            stride(a.col_stride),
            b.data.as_ptr(),
            stride(b.row_stride),
            stride(b.col_stride),
            beta,
            c.as_mut_ptr(),
            stride(n),
            1,
        );
    }
}

/// Buffers for the GEMMs of one convolution layer over a batch.
pub struct ConvCeiling {
    layer: ConvLayer,
    weight: Vec<f32>,
    /// One im2col matrix `[taps, positions]`, shared by every image.
    columns: Vec<f32>,
    /// `[batch, c_out, positions]`: the forward output, and the output
    /// gradient of the backward pass.
    activations: Vec<f32>,
    /// `[batch, taps, positions]`: the column gradient of every image.
    grad_columns: Vec<f32>,
}

impl ConvCeiling {
    /// Allocates seeded buffers for `layer` at `batch` images.
    pub fn new(layer: ConvLayer, batch: usize) -> Self {
        let (taps, positions) = (layer.taps(), layer.positions());
        Self {
            layer,
            weight: seeded_values(layer.c_out * taps, 1),
            columns: seeded_values(taps * positions, 2),
            activations: seeded_values(batch * layer.c_out * positions, 3),
            grad_columns: vec![0.0; batch * taps * positions],
        }
    }
}

/// Runs the forward GEMM of every image: `out[c_out, positions] =
/// weight[c_out, taps] * columns[taps, positions]`.
pub fn conv_forward_ceiling(buffers: &mut ConvCeiling) {
    let layer = buffers.layer;
    let (taps, positions) = (layer.taps(), layer.positions());
    let weight = Strided::row_major(&buffers.weight, layer.c_out, taps);
    let columns = Strided::row_major(&buffers.columns, taps, positions);
    let images = buffers.activations.par_chunks_mut(layer.c_out * positions);
    images.for_each(|out| sgemm(weight, columns, 0.0, out));
}

/// Runs the backward GEMMs of every image: `dcol = weight^T * dY` (except
/// for the first layer) and `dW += dY * columns^T` into one partial weight
/// gradient per rayon task.
pub fn conv_backward_ceiling(buffers: &mut ConvCeiling) {
    let layer = buffers.layer;
    let (taps, positions) = (layer.taps(), layer.positions());
    let weight = Strided::row_major(&buffers.weight, layer.c_out, taps);
    let columns = Strided::row_major(&buffers.columns, taps, positions);
    let images = buffers
        .grad_columns
        .par_chunks_mut(taps * positions)
        .zip(buffers.activations.par_chunks(layer.c_out * positions));

    images.for_each_init(
        || vec![0.0; layer.c_out * taps],
        |grad_weight, (grad_columns, grad_out)| {
            let grad_out = Strided::row_major(grad_out, layer.c_out, positions);
            if !layer.first {
                sgemm(weight.t(), grad_out, 0.0, grad_columns);
            }
            sgemm(grad_out, columns.t(), 1.0, grad_weight);
        },
    );
}

/// Buffers for the GEMMs of the linear layer over a batch.
pub struct LinearCeiling {
    input: Vec<f32>,
    weight: Vec<f32>,
    output: Vec<f32>,
    grad_input: Vec<f32>,
}

impl LinearCeiling {
    /// Allocates seeded buffers for `batch` rows.
    pub fn new(batch: usize) -> Self {
        Self {
            input: seeded_values(batch * FC_IN, 4),
            weight: seeded_values(FC_OUT * FC_IN, 5),
            output: seeded_values(batch * FC_OUT, 6),
            grad_input: vec![0.0; batch * FC_IN],
        }
    }
}

/// Runs the linear layer's GEMMs in blocks of rows: with `backward` false,
/// `out = x * weight^T`; with `backward` true, `dX = dY * weight` and
/// `dW += dY^T * x` into one partial weight gradient per rayon task.
pub fn linear_ceiling(buffers: &mut LinearCeiling, backward: bool) {
    let weight = Strided::row_major(&buffers.weight, FC_OUT, FC_IN);
    if !backward {
        let blocks = buffers
            .output
            .par_chunks_mut(LINEAR_ROWS_PER_TASK * FC_OUT)
            .zip(buffers.input.par_chunks(LINEAR_ROWS_PER_TASK * FC_IN));
        blocks.for_each(|(out, x)| {
            let x = Strided::row_major(x, x.len() / FC_IN, FC_IN);
            sgemm(x, weight.t(), 0.0, out);
        });
        return;
    }

    let blocks = buffers
        .grad_input
        .par_chunks_mut(LINEAR_ROWS_PER_TASK * FC_IN)
        .zip(buffers.output.par_chunks(LINEAR_ROWS_PER_TASK * FC_OUT))
        .zip(buffers.input.par_chunks(LINEAR_ROWS_PER_TASK * FC_IN));
    blocks.for_each_init(
        || vec![0.0; FC_OUT * FC_IN],
        |grad_weight, ((grad_x, grad_out), x)| {
            let rows = grad_out.len() / FC_OUT;
            let grad_out = Strided::row_major(grad_out, rows, FC_OUT);
            sgemm(grad_out, weight, 0.0, grad_x);
            let x = Strided::row_major(x, rows, FC_IN);
            sgemm(grad_out.t(), x, 1.0, grad_weight);
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgemm_transposed_operands() {
        // a = [[1, 2], [3, 4]], b = [[5, 6], [7, 8]].
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [5.0, 6.0, 7.0, 8.0];
        let mut c = [0.0; 4];
        sgemm(
            Strided::row_major(&a, 2, 2),
            Strided::row_major(&b, 2, 2),
            0.0,
            &mut c,
        );
        assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);

        sgemm(
            Strided::row_major(&a, 2, 2).t(),
            Strided::row_major(&b, 2, 2),
            0.0,
            &mut c,
        );
        assert_eq!(c, [26.0, 30.0, 38.0, 44.0]);
    }
}

//! Batch sums whose rounding does not depend on the thread count.
//!
//! A weight gradient is a sum over the images of a batch. Each fixed-size
//! chunk of images gets its own partial sum, computed on one thread, and
//! the partials are added in chunk order. The chunk size is a constant, so
//! every pool size performs the same floating-point operations in the same
//! order.

use rayon::prelude::*;

use crate::simd;

/// Overwrites `total` with the sum of `chunks` partial sums, each of
/// `total.len()` elements. `partial(index, buffer)` overwrites `buffer`
/// with the partial sum of chunk `index`. The chunks run in parallel and
/// are added in index order, so the result is identical for any pool size.
/// With no chunks, `total` becomes zero.
pub(crate) fn sum_chunks<F>(chunks: usize, total: &mut [f32], partial: F)
where
    F: Fn(usize, &mut [f32]) + Sync,
{
    let len = total.len();
    if chunks == 0 || len == 0 {
        total.fill(0.0);
        return;
    }

    // Chunk 0 writes straight into `total`, the others into scratch.
    let mut scratch = vec![0.0; (chunks - 1) * len];
    rayon::join(
        || partial(0, total),
        || {
            scratch
                .par_chunks_mut(len)
                .enumerate()
                .for_each(|(index, buffer)| partial(index + 1, buffer));
        },
    );

    for buffer in scratch.chunks_exact(len) {
        simd::add_assign(total, buffer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_chunks_adds_in_order() {
        let mut total = [f32::NAN; 3];
        sum_chunks(4, &mut total, |index, buffer| buffer.fill(index as f32));
        assert_eq!(total, [6.0; 3]);
    }

    #[test]
    fn sum_chunks_of_nothing_is_zero() {
        let mut total = [f32::NAN; 2];
        sum_chunks(0, &mut total, |_, buffer| buffer.fill(1.0));
        assert_eq!(total, [0.0; 2]);
    }
}

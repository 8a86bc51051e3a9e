//! The `wide::f32x8` lane loops that the element-wise kernels share.
//!
//! Each loop runs whole 8-lane vectors first, then a scalar tail for the
//! remaining `len % 8` elements. The scalar function must compute what the
//! vector one does lane by lane, so that the result does not depend on where
//! an element falls.

use rayon::prelude::*;
use wide::f32x8;

/// Elements per vector.
pub(crate) const LANES: usize = 8;

/// Elements per rayon task in the element-wise kernels. The value is fixed,
/// not derived from the thread count, and a multiple of [`LANES`].
pub(crate) const PAR_CHUNK: usize = 1 << 14;

/// Loads 8 elements from a slice of exactly [`LANES`] elements.
#[inline]
pub(crate) fn load(lanes: &[f32]) -> f32x8 {
    let mut array = [0.0; LANES];
    array.copy_from_slice(lanes);
    f32x8::new(array)
}

/// Stores `v` to a slice of exactly [`LANES`] elements.
#[inline]
pub(crate) fn store(v: f32x8, lanes: &mut [f32]) {
    lanes.copy_from_slice(v.as_array());
}

/// Writes `f(input[i])` to `output[i]`, in parallel tasks of [`PAR_CHUNK`]
/// elements. The slices must have equal lengths.
pub(crate) fn map1<V, S>(input: &[f32], output: &mut [f32], vector: V, scalar: S)
where
    V: Fn(f32x8) -> f32x8 + Sync,
    S: Fn(f32) -> f32 + Sync,
{
    debug_assert_eq!(input.len(), output.len());
    let tasks = output
        .par_chunks_mut(PAR_CHUNK)
        .zip(input.par_chunks(PAR_CHUNK));
    tasks.for_each(|(output, input)| {
        let mut out_lanes = output.chunks_exact_mut(LANES);
        let mut in_lanes = input.chunks_exact(LANES);
        for (out, x) in (&mut out_lanes).zip(&mut in_lanes) {
            store(vector(load(x)), out);
        }

        let tail = out_lanes.into_remainder().iter_mut();
        for (out, &x) in tail.zip(in_lanes.remainder()) {
            *out = scalar(x);
        }
    });
}

/// Writes `f(a[i], b[i])` to `output[i]`, in parallel tasks of
/// [`PAR_CHUNK`] elements. The slices must have equal lengths.
pub(crate) fn map2<V, S>(a: &[f32], b: &[f32], output: &mut [f32], vector: V, scalar: S)
where
    V: Fn(f32x8, f32x8) -> f32x8 + Sync,
    S: Fn(f32, f32) -> f32 + Sync,
{
    debug_assert_eq!(a.len(), output.len());
    debug_assert_eq!(b.len(), output.len());
    let inputs = a.par_chunks(PAR_CHUNK).zip(b.par_chunks(PAR_CHUNK));
    let tasks = output.par_chunks_mut(PAR_CHUNK).zip(inputs);
    tasks.for_each(|(output, (a, b))| {
        let mut out_lanes = output.chunks_exact_mut(LANES);
        let mut a_lanes = a.chunks_exact(LANES);
        let mut b_lanes = b.chunks_exact(LANES);
        for (out, (x, y)) in (&mut out_lanes).zip((&mut a_lanes).zip(&mut b_lanes)) {
            store(vector(load(x), load(y)), out);
        }

        let tail = out_lanes.into_remainder().iter_mut();
        for (out, (&x, &y)) in tail.zip(a_lanes.remainder().iter().zip(b_lanes.remainder())) {
            *out = scalar(x, y);
        }
    });
}

/// Adds `x` to `acc` element by element, on the calling thread.
pub(crate) fn add_assign(acc: &mut [f32], x: &[f32]) {
    debug_assert_eq!(acc.len(), x.len());
    let mut acc_lanes = acc.chunks_exact_mut(LANES);
    let mut x_lanes = x.chunks_exact(LANES);
    for (acc, x) in (&mut acc_lanes).zip(&mut x_lanes) {
        store(load(acc) + load(x), acc);
    }

    let tail = acc_lanes.into_remainder().iter_mut();
    for (acc, &x) in tail.zip(x_lanes.remainder()) {
        *acc += x;
    }
}

/// Returns the sum of `x`, accumulated in 8 lanes that are added at the
/// end. The order is fixed by the length alone.
pub(crate) fn sum(x: &[f32]) -> f32 {
    let mut lanes = x.chunks_exact(LANES);
    let mut acc = f32x8::ZERO;
    for x in &mut lanes {
        acc += load(x);
    }

    let tail: f32 = lanes.remainder().iter().sum();
    acc.reduce_add() + tail
}

/// Returns the dot product of `a` and `b` (equal lengths), accumulated in
/// four 8-lane vectors so that consecutive multiply-adds do not wait on
/// each other. The order is fixed by the length alone.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    const STEP: usize = 4 * LANES;
    let (mut blocks_a, mut blocks_b) = (a.chunks_exact(STEP), b.chunks_exact(STEP));
    let mut acc = [f32x8::ZERO; 4];
    for (x, y) in (&mut blocks_a).zip(&mut blocks_b) {
        let pairs = x.chunks_exact(LANES).zip(y.chunks_exact(LANES));
        for (acc, (x, y)) in acc.iter_mut().zip(pairs) {
            *acc = load(x).mul_add(load(y), *acc);
        }
    }

    let tail = blocks_a.remainder().iter().zip(blocks_b.remainder());
    let tail: f32 = tail.map(|(x, y)| x * y).sum();
    ((acc[0] + acc[1]) + (acc[2] + acc[3])).reduce_add() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_plain_sum_of_products() {
        for len in [0, 1, 31, 32, 33, 100, 4096] {
            let a: Vec<f32> = (0..len).map(|i| (i % 13) as f32 * 0.25 - 1.0).collect();
            let b: Vec<f32> = (0..len).map(|i| (i % 7) as f32 * 0.5 - 1.5).collect();
            let expected: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(x * y)).sum();
            let got = f64::from(dot(&a, &b));
            assert!(
                (got - expected).abs() <= 1e-4 * (1.0 + expected.abs()),
                "len {len}: {got} vs {expected}"
            );
        }
    }

    /// Lengths around the vector width and the task size.
    const LENGTHS: [usize; 8] = [0, 1, 7, 8, 9, 17, PAR_CHUNK - 1, PAR_CHUNK + 9];

    #[test]
    fn map1_covers_every_length() {
        for len in LENGTHS {
            let input: Vec<f32> = (0..len).map(|i| i as f32).collect();
            let mut output = vec![f32::NAN; len];
            map1(&input, &mut output, |v| v + v, |x| x + x);
            let expected: Vec<f32> = input.iter().map(|x| 2.0 * x).collect();
            assert_eq!(output, expected, "len {len}");
        }
    }

    #[test]
    fn map2_covers_every_length() {
        for len in LENGTHS {
            let a: Vec<f32> = (0..len).map(|i| i as f32).collect();
            let b: Vec<f32> = (0..len).map(|i| (i % 5) as f32).collect();
            let mut output = vec![f32::NAN; len];
            map2(&a, &b, &mut output, |x, y| x * y, |x, y| x * y);
            let expected: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x * y).collect();
            assert_eq!(output, expected, "len {len}");
        }
    }

    #[test]
    fn sum_covers_every_length() {
        for len in LENGTHS {
            let x: Vec<f32> = (0..len).map(|i| (i % 3) as f32).collect();
            let expected: f32 = x.iter().sum();
            assert_eq!(sum(&x), expected, "len {len}");
        }
    }

    #[test]
    fn add_assign_covers_every_length() {
        for len in LENGTHS {
            let mut acc: Vec<f32> = (0..len).map(|i| i as f32).collect();
            let x = vec![0.5; len];
            add_assign(&mut acc, &x);
            let expected: Vec<f32> = (0..len).map(|i| i as f32 + 0.5).collect();
            assert_eq!(acc, expected, "len {len}");
        }
    }
}

//! Helpers shared by the integration tests: a seeded generator, tolerance
//! checks and finite differences.

#![allow(dead_code)]

/// A small seeded generator (SplitMix64), so every test input is
/// reproducible from the seed that proptest prints on failure.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Draws a value in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * unit
    }

    /// `len` values in `[-1, 1)`.
    pub fn values(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.uniform(-1.0, 1.0)).collect()
    }

    /// `len` small integers in `0..levels`, as f32, for inputs with ties.
    pub fn levels(&mut self, len: usize, levels: u64) -> Vec<f32> {
        (0..len)
            .map(|_| (self.next_u64() % levels) as f32)
            .collect()
    }

    /// Draws a random permutation of `0..len`.
    pub fn permutation(&mut self, len: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..len).collect();
        for i in (1..len).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        order
    }
}

pub fn to_f64(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&x| f64::from(x)).collect()
}

pub fn nan_vec(len: usize) -> Vec<f32> {
    vec![f32::NAN; len]
}

/// Asserts `|fast - reference| <= abs + rel * |reference|` element by
/// element. NaN in `fast` (an element never written) always fails.
pub fn assert_close(name: &str, fast: &[f32], reference: &[f64], abs: f64, rel: f64) {
    assert_eq!(fast.len(), reference.len(), "{name}: lengths differ");
    for (i, (&f, &r)) in fast.iter().zip(reference).enumerate() {
        let error = (f64::from(f) - r).abs();
        let bound = abs + rel * r.abs();
        assert!(
            error <= bound,
            "{name}[{i}]: fast {f}, reference {r}, error {error:e} > bound {bound:e}"
        );
    }
}

/// Returns the central difference `(loss(x + step e_i) - loss(x - step
/// e_i)) / (2 step)` for every element `i` of `x`.
pub fn numeric_grad(x: &[f64], step: f64, loss: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut probe = x.to_vec();
    (0..x.len())
        .map(|i| {
            probe[i] = x[i] + step;
            let up = loss(&probe);
            probe[i] = x[i] - step;
            let down = loss(&probe);
            probe[i] = x[i];
            (up - down) / (2.0 * step)
        })
        .collect()
}

/// `sum(output * weights)`, the scalar loss the gradient checks use.
pub fn weighted_sum(output: &[f64], weights: &[f32]) -> f64 {
    assert_eq!(output.len(), weights.len());
    output
        .iter()
        .zip(weights)
        .map(|(y, &r)| y * f64::from(r))
        .sum()
}

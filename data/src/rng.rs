//! A small seeded generator (SplitMix64) for shuffling and synthetic data.
//!
//! SplitMix64 is the generator of Steele, Lea and Flood, "Fast Splittable
//! Pseudorandom Number Generators" (OOPSLA 2014). It is good enough for
//! shuffling and test noise, but it is not a cryptographic generator.

/// The golden-ratio increment of SplitMix64.
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function, also used to mix seeds.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A SplitMix64 stream.
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// Starts a stream; each seed gives its own sequence.
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// Starts a stream keyed by two values, for example seed and epoch.
    pub(crate) fn keyed(seed: u64, key: u64) -> Self {
        Self::new(mix64(seed) ^ mix64(key.wrapping_add(GAMMA)).rotate_left(17))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix64(self.state)
    }

    /// Draws uniformly from `0..bound` (`bound > 0`) with Lemire's
    /// multiply-and-shift, rejecting the few draws that would bias it.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "below() needs a positive bound");
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(bound);
            if (product as u64) >= threshold {
                return (product >> 64) as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_output() {
        // The first outputs for seed 1234567 listed by Rosetta Code's
        // "Pseudo-random numbers/Splitmix64" task.
        let mut rng = SplitMix64::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = SplitMix64::new(7);
        for bound in [1, 2, 3, 10, 1000, u64::MAX] {
            for _ in 0..100 {
                assert!(rng.below(bound) < bound, "bound {bound}");
            }
        }
    }

    #[test]
    fn below_covers_small_range() {
        let mut rng = SplitMix64::new(11);
        let mut seen = [false; 6];
        for _ in 0..200 {
            seen[rng.below(6) as usize] = true;
        }
        assert!(seen.iter().all(|&hit| hit), "{seen:?}");
    }
}

//! Inverted dropout with a seeded, counter-based mask.

use rayon::prelude::*;

use crate::error::check_len;
use crate::simd::{self, PAR_CHUNK};
use crate::{KernelError, Result};

/// The SplitMix64 increment, `2^64` divided by the golden ratio.
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Inverted dropout: each unit is zeroed with probability `p` during
/// training and the kept ones are scaled by `1 / (1 - p)`, so inference is
/// the identity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropout {
    p: f32,
}

impl Dropout {
    /// Validates the drop probability.
    ///
    /// # Errors
    /// [`KernelError::Parameter`] unless `0 <= p < 1`.
    pub fn new(p: f32) -> Result<Self> {
        if (0.0..1.0).contains(&p) {
            return Ok(Self { p });
        }
        Err(KernelError::Parameter {
            name: "dropout p",
            value: p.to_string(),
            reason: "the drop probability must be in [0, 1)".into(),
        })
    }

    /// The drop probability.
    pub fn p(&self) -> f32 {
        self.p
    }

    /// Returns the factor `1 / (1 - p)` that kept units are multiplied by.
    pub fn scale(&self) -> f32 {
        1.0 / (1.0 - self.p)
    }

    /// The value an element's 32 random bits must reach to be kept:
    /// `round(p * 2^32)`, so an element is dropped with probability `p` to
    /// within `2^-33`. It fits a `u32` because the largest `f32` below 1
    /// is `1 - 2^-24`.
    fn threshold(&self) -> u32 {
        (f64::from(self.p) * 4_294_967_296.0).round() as u32
    }
}

/// The SplitMix64 output function: a bijective mix of all 64 bits.
fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Returns 32 random bits for element `index` of the pass keyed by `key`:
/// two xor-shift-multiply rounds of a 32-bit integer hash, with the second
/// half of the key mixed in between them. The hash uses only 32-bit
/// integer operations, so a plain loop over consecutive indices compiles
/// to vector code.
#[inline(always)]
fn mask_bits(key: [u32; 2], index: u32) -> u32 {
    let mut x = index ^ key[0];
    x ^= x >> 16;
    x = x.wrapping_mul(0x21F0_AAAD);
    x ^= x >> 15;
    x ^= key[1];
    x = x.wrapping_mul(0x735A_2D97);
    x ^ (x >> 15)
}

/// The mask a training pass with `seed` gives each element: `0` or
/// `1 / (1 - p)`, drawn independently of how the work is split.
///
/// NOTE: element indices enter the hash modulo `2^32`, so a pass over more
/// than `2^32` elements repeats its mask with that period. Mixing the high
/// index bits into the key would remove the repeat.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MaskStream {
    key: [u32; 2],
    threshold: u32,
    scale: f32,
}

impl MaskStream {
    pub(crate) fn new(dropout: &Dropout, seed: u64) -> Self {
        let mixed = splitmix64(seed.wrapping_add(GOLDEN_GAMMA));
        Self {
            key: [mixed as u32, (mixed >> 32) as u32],
            threshold: dropout.threshold(),
            scale: dropout.scale(),
        }
    }

    /// Returns the mask of element `index`, computed from the seed and the
    /// index alone, so any element can be drawn without the ones before it.
    #[inline(always)]
    pub(crate) fn mask(&self, index: usize) -> f32 {
        if mask_bits(self.key, index as u32) >= self.threshold {
            self.scale
        } else {
            0.0
        }
    }

    /// Overwrites each `values[i]` with `values[i] * mask(first + i)`.
    #[inline(always)]
    pub(crate) fn apply(&self, first: usize, values: &mut [f32]) {
        let first = first as u32;
        for (offset, value) in (0u32..).zip(values.iter_mut()) {
            let keep = mask_bits(self.key, first.wrapping_add(offset)) >= self.threshold;
            *value = if keep { *value * self.scale } else { 0.0 };
        }
    }

    /// Overwrites `mask` with `mask(first + i)` for every `i`.
    fn fill(&self, first: usize, mask: &mut [f32]) {
        let first = first as u32;
        for (offset, m) in (0u32..).zip(mask.iter_mut()) {
            let keep = mask_bits(self.key, first.wrapping_add(offset)) >= self.threshold;
            *m = if keep { self.scale } else { 0.0 };
        }
    }
}

/// Whether a pass trains (dropout active) or evaluates (dropout off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Training: the mask of element `i` is drawn from `(seed, i)`, so the
    /// same seed gives the same mask whatever the thread count.
    Train {
        /// Seed of this pass's mask; use a new one each step.
        seed: u64,
    },
    /// Evaluation: the output equals the input.
    Eval,
}

/// Writes `input * mask` to `output` and the mask (`0` or `1 / (1 - p)`,
/// or `1` everywhere in [`Phase::Eval`]) to `mask`.
///
/// Shapes: `input`, `output` and `mask` `[len]` of any layout (`output` and
/// `mask` overwritten). Element `i` is dropped with probability `p`, drawn
/// from a hash of `(seed, i)`, so the mask depends on neither the thread
/// count nor the split of the work.
///
/// # Errors
/// [`KernelError::Length`] when the slices differ in length.
pub fn dropout_forward(
    dropout: &Dropout,
    phase: Phase,
    input: &[f32],
    output: &mut [f32],
    mask: &mut [f32],
) -> Result<()> {
    check_len("output", &[input.len()], output.len())?;
    check_len("mask", &[input.len()], mask.len())?;
    let Phase::Train { seed } = phase else {
        output.copy_from_slice(input);
        mask.fill(1.0);
        return Ok(());
    };

    let stream = MaskStream::new(dropout, seed);
    let tasks = mask.par_chunks_mut(PAR_CHUNK).enumerate();
    tasks.for_each(|(task, mask)| stream.fill(task * PAR_CHUNK, mask));
    simd::map2(input, mask, output, |x, m| x * m, |x, m| x * m);
    Ok(())
}

/// Writes `grad_output * mask` to `grad_input`, with the mask that
/// [`dropout_forward`] wrote.
///
/// Shapes: `mask`, `grad_output` and `grad_input` `[len]` (`grad_input`
/// overwritten).
///
/// # Errors
/// [`KernelError::Length`] when the slices differ in length.
pub fn dropout_backward(mask: &[f32], grad_output: &[f32], grad_input: &mut [f32]) -> Result<()> {
    check_len("grad_output", &[mask.len()], grad_output.len())?;
    check_len("grad_input", &[mask.len()], grad_input.len())?;
    simd::map2(mask, grad_output, grad_input, |m, g| m * g, |m, g| m * g);
    Ok(())
}

/// The dropout mask of one chunk of a training pass: the elements of the
/// chunk are elements `first_index..` of the whole pass, so splitting a
/// batch into chunks leaves every element's mask unchanged.
#[derive(Debug, Clone, Copy)]
pub struct ChunkMask {
    /// The dropout layer.
    pub dropout: Dropout,
    /// Seed of the whole pass, as in [`Phase::Train`].
    pub seed: u64,
    /// Index within the whole pass of the chunk's first element.
    pub first_index: usize,
}

impl ChunkMask {
    pub(crate) fn stream(&self) -> MaskStream {
        MaskStream::new(&self.dropout, self.seed)
    }
}

//! Inverted dropout with a seeded, counter-based mask.

use crate::{KernelError, Result};

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
        let _ = p;
        Err(KernelError::Parameter {
            name: "dropout p",
            value: p.to_string(),
            reason: "not implemented".into(),
        })
    }

    /// The drop probability.
    pub fn p(&self) -> f32 {
        self.p
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
/// # Errors
/// [`KernelError::Length`] when the slices differ in length.
pub fn dropout_forward(
    dropout: &Dropout,
    phase: Phase,
    input: &[f32],
    output: &mut [f32],
    mask: &mut [f32],
) -> Result<()> {
    let _ = (dropout, phase, input, output, mask);
    todo!()
}

/// Writes `grad_output * mask` to `grad_input`, with the mask that
/// [`dropout_forward`] wrote.
///
/// # Errors
/// [`KernelError::Length`] when the slices differ in length.
pub fn dropout_backward(mask: &[f32], grad_output: &[f32], grad_input: &mut [f32]) -> Result<()> {
    let _ = (mask, grad_output, grad_input);
    todo!()
}

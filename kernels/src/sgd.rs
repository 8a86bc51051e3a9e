//! Stochastic gradient descent with momentum, in PyTorch's form.

use crate::{KernelError, Result};

/// Hyper-parameters of SGD with (optionally Nesterov) momentum.
///
/// One step, as `torch.optim.SGD` with `dampening = 0` does it:
/// `g = grad + weight_decay * param`; `buf = momentum * buf + g`;
/// `param -= lr * (g + momentum * buf)` with Nesterov, or `lr * buf`
/// without. The buffer starts at zero, so the first step sets it to `g`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sgd {
    /// Learning rate, `> 0`.
    pub lr: f32,
    /// Momentum factor, `0 <= momentum < 1`.
    pub momentum: f32,
    /// L2 penalty added to the gradient, `>= 0`.
    pub weight_decay: f32,
    /// Nesterov momentum (needs `momentum > 0`).
    pub nesterov: bool,
}

impl Sgd {
    /// Checks that every hyper-parameter is finite and in range.
    ///
    /// # Errors
    /// [`KernelError::Parameter`] naming the first value out of range.
    pub fn validate(&self) -> Result<()> {
        Err(KernelError::Parameter {
            name: "lr",
            value: self.lr.to_string(),
            reason: "not implemented".into(),
        })
    }

    /// Applies one step to `params` in place, updating `momentum_buffer`.
    ///
    /// # Errors
    /// [`KernelError::Length`] when the three slices differ in length.
    pub fn step(
        &self,
        params: &mut [f32],
        grads: &[f32],
        momentum_buffer: &mut [f32],
    ) -> Result<()> {
        let _ = (params, grads, momentum_buffer);
        todo!()
    }
}

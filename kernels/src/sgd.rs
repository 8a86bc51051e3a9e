//! Stochastic gradient descent with momentum, in PyTorch's form.

use wide::f32x8;

use crate::error::check_len;
use crate::simd::{load, store, LANES};
use crate::{KernelError, Result};

/// Hyper-parameters of SGD with (optionally Nesterov) momentum.
///
/// One step, as `torch.optim.SGD` with `dampening = 0` does it:
/// `g = grad + weight_decay * param`; `buf = momentum * buf + g`;
/// `param -= lr * (g + momentum * buf)` with Nesterov, or `lr * buf`
/// without. The buffer starts at zero, so the first step sets it to `g`.
/// PyTorch's Nesterov form is the look-ahead of Sutskever et al. after a
/// change of variables, and its buffer carries no learning rate, unlike the
/// Keras form, so the two differ when the learning rate changes.
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
        let invalid = |name, value: f32, reason: &str| {
            Err(KernelError::Parameter {
                name,
                value: value.to_string(),
                reason: reason.into(),
            })
        };
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return invalid("lr", self.lr, "the learning rate must be finite and > 0");
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return invalid("momentum", self.momentum, "momentum must be in [0, 1)");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            let reason = "weight decay must be finite and >= 0";
            return invalid("weight_decay", self.weight_decay, reason);
        }
        if self.nesterov && self.momentum == 0.0 {
            let reason = "Nesterov momentum needs momentum > 0; set momentum or turn nesterov off";
            return invalid("momentum", self.momentum, reason);
        }
        Ok(())
    }

    /// Applies one step to `params` in place, updating `momentum_buffer`.
    ///
    /// Shapes: `params`, `grads` and `momentum_buffer` `[len]`, element `i`
    /// of each belonging to the same parameter. Start `momentum_buffer` at
    /// zero before the first step.
    ///
    /// # Errors
    /// [`KernelError::Length`] when the three slices differ in length, and
    /// [`KernelError::Parameter`] when [`Sgd::validate`] fails.
    pub fn step(
        &self,
        params: &mut [f32],
        grads: &[f32],
        momentum_buffer: &mut [f32],
    ) -> Result<()> {
        self.validate()?;
        check_len("grads", &[params.len()], grads.len())?;
        check_len("momentum_buffer", &[params.len()], momentum_buffer.len())?;

        let mut param_lanes = params.chunks_exact_mut(LANES);
        let mut grad_lanes = grads.chunks_exact(LANES);
        let mut buffer_lanes = momentum_buffer.chunks_exact_mut(LANES);
        let vectors = (&mut param_lanes)
            .zip(&mut grad_lanes)
            .zip(&mut buffer_lanes);
        for ((param, grad), buffer) in vectors {
            let (p, b) = self.update(load(param), load(grad), load(buffer));
            store(p, param);
            store(b, buffer);
        }

        let params = param_lanes.into_remainder().iter_mut();
        let grads = grad_lanes.remainder();
        let buffers = buffer_lanes.into_remainder().iter_mut();
        for ((param, &grad), buffer) in params.zip(grads).zip(buffers) {
            let (p, b) = self.update(
                f32x8::splat(*param),
                f32x8::splat(grad),
                f32x8::splat(*buffer),
            );
            *param = p.as_array()[0];
            *buffer = b.as_array()[0];
        }
        Ok(())
    }

    /// Applies one step whose gradient is the sum of `partials.len() /
    /// params.len()` partial gradients stored one after another, added in
    /// that order in the same pass as the update, so the sum is never
    /// written out. The result equals [`Sgd::step`] on that sum.
    ///
    /// Shapes: `params` and `momentum_buffer` `[len]`, `partials`
    /// `[chunks, len]` with `chunks >= 1`.
    ///
    /// # Errors
    /// [`KernelError::Length`] when `partials` is empty or not a multiple of
    /// `params.len()`, or `momentum_buffer` differs in length, and
    /// [`KernelError::Parameter`] when [`Sgd::validate`] fails.
    pub fn step_partial_sums(
        &self,
        params: &mut [f32],
        partials: &[f32],
        momentum_buffer: &mut [f32],
    ) -> Result<()> {
        self.validate()?;
        let len = params.len();
        let chunks = partials.len().checked_div(len).unwrap_or(0);
        check_len("partials", &[chunks.max(1), len], partials.len())?;
        check_len("momentum_buffer", &[len], momentum_buffer.len())?;

        let mut start = 0;
        let mut sum = [0.0f32; LANES];
        for (param, buffer) in params
            .chunks_mut(LANES)
            .zip(momentum_buffer.chunks_mut(LANES))
        {
            let lanes = param.len();
            let sum = &mut sum[..lanes];
            sum.copy_from_slice(&partials[start..start + lanes]);
            for chunk in 1..chunks {
                let partial = &partials[chunk * len + start..][..lanes];
                sum.iter_mut().zip(partial).for_each(|(s, &g)| *s += g);
            }
            if lanes == LANES {
                let (p, b) = self.update(load(param), load(sum), load(buffer));
                store(p, param);
                store(b, buffer);
            } else {
                for ((param, &grad), buffer) in param.iter_mut().zip(sum.iter()).zip(buffer) {
                    let splat = |x: f32| f32x8::splat(x);
                    let (p, b) = self.update(splat(*param), splat(grad), splat(*buffer));
                    *param = p.as_array()[0];
                    *buffer = b.as_array()[0];
                }
            }
            start += lanes;
        }
        Ok(())
    }

    /// Returns the new parameters and momentum buffer of 8 lanes. The scalar
    /// tail runs the same code on a splat, so every element rounds alike.
    #[inline]
    fn update(&self, param: f32x8, grad: f32x8, buffer: f32x8) -> (f32x8, f32x8) {
        let momentum = f32x8::splat(self.momentum);
        let g = grad + f32x8::splat(self.weight_decay) * param;
        let buffer = momentum * buffer + g;
        let step = if self.nesterov {
            g + momentum * buffer
        } else {
            buffer
        };
        (param - f32x8::splat(self.lr) * step, buffer)
    }
}

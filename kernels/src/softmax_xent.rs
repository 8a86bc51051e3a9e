//! Softmax and cross-entropy, computed in log space.

use crate::Result;

/// Returns the mean cross-entropy of `logits` (`[batch, classes]`) against
/// `labels` (`[batch]`) and overwrites `grad_logits` with its gradient,
/// `(softmax(logits) - onehot(labels)) / batch`.
///
/// The loss is `logsumexp(row) - row[label]` with the row maximum
/// subtracted first, accumulated in f64, so logits of any finite magnitude
/// give a finite loss and gradient.
///
/// # Errors
/// [`crate::KernelError::Length`] when a slice does not match `classes`, and
/// [`crate::KernelError::Label`] when a label is `>= classes`.
pub fn softmax_cross_entropy(
    logits: &[f32],
    labels: &[usize],
    classes: usize,
    grad_logits: &mut [f32],
) -> Result<f32> {
    let _ = (logits, labels, classes, grad_logits);
    todo!()
}

/// Overwrites `probabilities` with the softmax of each row of `logits`.
///
/// # Errors
/// [`crate::KernelError::Length`] when the slices differ in length or are
/// not a multiple of `classes`.
pub fn softmax(logits: &[f32], classes: usize, probabilities: &mut [f32]) -> Result<()> {
    let _ = (logits, classes, probabilities);
    todo!()
}

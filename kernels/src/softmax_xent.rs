//! Softmax and cross-entropy, computed in log space.

use crate::error::check_len;
use crate::{KernelError, Result};

/// Rejects zero classes, which leave no row to normalise.
fn require_classes(classes: usize) -> Result<()> {
    if classes > 0 {
        return Ok(());
    }
    Err(KernelError::Parameter {
        name: "classes",
        value: "0".into(),
        reason: "the number of classes must be at least 1".into(),
    })
}

/// Returns the row maximum and `ln(sum(exp(row - max)))`, summed in f64.
/// Their sum is the row's logsumexp.
fn shifted_log_sum_exp(row: &[f32]) -> (f64, f64) {
    let max = f64::from(row.iter().copied().fold(f32::NEG_INFINITY, f32::max));
    let sum: f64 = row.iter().map(|&x| (f64::from(x) - max).exp()).sum();
    (max, sum.ln())
}

/// Returns the mean cross-entropy of `logits` (`[batch, classes]`) against
/// `labels` (`[batch]`) and overwrites `grad_logits` with its gradient,
/// `(softmax(logits) - onehot(labels)) / batch`.
///
/// The loss is `logsumexp(row) - row[label]` with the row maximum
/// subtracted first, accumulated in f64, so logits of any finite magnitude
/// give a finite loss and gradient.
///
/// Shapes: `logits` and `grad_logits` `[batch, classes]` row-major,
/// `labels` `[batch]`, where `batch = labels.len()`.
///
/// # Errors
/// [`crate::KernelError::Length`] when a slice does not match `classes`, and
/// [`crate::KernelError::Label`] when a label is `>= classes`.
/// [`crate::KernelError::Parameter`] when `classes` is zero or `labels` is
/// empty, because the mean over no rows is undefined.
pub fn softmax_cross_entropy(
    logits: &[f32],
    labels: &[usize],
    classes: usize,
    grad_logits: &mut [f32],
) -> Result<f32> {
    let scale = 1.0 / labels.len().max(1) as f64;
    let total = softmax_cross_entropy_sum(logits, labels, classes, scale, grad_logits)?;
    Ok((total * scale) as f32)
}

/// Returns the summed cross-entropy of `logits` (`[rows, classes]`) against
/// `labels` (`[rows]`), in f64, and overwrites `grad_logits` with
/// `(softmax(logits) - onehot(labels)) * grad_scale`. A chunk of a batch of
/// `batch` rows passes `grad_scale = 1 / batch`, so its gradient is that of
/// the batch mean, and the caller divides the summed losses by `batch`.
///
/// Computed as in [`softmax_cross_entropy`], which is this function with
/// `grad_scale = 1 / rows` and the sum divided by `rows`.
///
/// Shapes: `logits` and `grad_logits` `[rows, classes]` row-major,
/// `labels` `[rows]`.
///
/// # Errors
/// As [`softmax_cross_entropy`].
pub fn softmax_cross_entropy_sum(
    logits: &[f32],
    labels: &[usize],
    classes: usize,
    grad_scale: f64,
    grad_logits: &mut [f32],
) -> Result<f64> {
    require_classes(classes)?;
    let batch = labels.len();
    if batch == 0 {
        return Err(KernelError::Parameter {
            name: "batch",
            value: "0".into(),
            reason: "labels is empty; the loss needs at least one row".into(),
        });
    }
    check_len("logits", &[batch, classes], logits.len())?;
    check_len("grad_logits", &[batch, classes], grad_logits.len())?;
    if let Some((row, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= classes) {
        return Err(KernelError::Label {
            row,
            label,
            classes,
        });
    }

    let mut total = 0.0;
    let rows = logits
        .chunks_exact(classes)
        .zip(grad_logits.chunks_exact_mut(classes));

    // Per row: loss = (max - row[label]) + ln(sum(exp(row - max))).
    for ((row, grad), &label) in rows.zip(labels) {
        let (max, log_sum) = shifted_log_sum_exp(row);
        total += (max - f64::from(row[label])) + log_sum;
        for (class, (g, &x)) in grad.iter_mut().zip(row).enumerate() {
            let probability = (f64::from(x) - max - log_sum).exp();
            let target = if class == label { 1.0 } else { 0.0 };
            *g = ((probability - target) * grad_scale) as f32;
        }
    }
    Ok(total)
}

/// Overwrites `probabilities` with the softmax of each row of `logits`.
///
/// Shapes: `logits` and `probabilities` `[rows, classes]` row-major, for
/// any number of rows. Each row is shifted by its maximum and normalised in
/// f64, so large logits do not overflow.
///
/// # Errors
/// [`crate::KernelError::Length`] when the slices differ in length or are
/// not a multiple of `classes`, and [`crate::KernelError::Parameter`] when
/// `classes` is zero.
pub fn softmax(logits: &[f32], classes: usize, probabilities: &mut [f32]) -> Result<()> {
    require_classes(classes)?;
    let rows = logits.len().div_ceil(classes);
    check_len("logits", &[rows, classes], logits.len())?;
    check_len("probabilities", &[rows, classes], probabilities.len())?;

    let pairs = logits
        .chunks_exact(classes)
        .zip(probabilities.chunks_exact_mut(classes));
    for (row, out) in pairs {
        let (max, log_sum) = shifted_log_sum_exp(row);
        for (p, &x) in out.iter_mut().zip(row) {
            *p = (f64::from(x) - max - log_sum).exp() as f32;
        }
    }
    Ok(())
}

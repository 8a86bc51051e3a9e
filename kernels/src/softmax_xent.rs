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
    let smoothing = 0.0;
    softmax_cross_entropy_smoothed_sum(logits, labels, classes, smoothing, grad_scale, grad_logits)
}

/// Returns the summed cross-entropy with label smoothing `smoothing` (`ε`)
/// and overwrites `grad_logits` with `(softmax(logits) - target) *
/// grad_scale`, where the target of a row puts `1 - ε + ε / classes` on its
/// label and `ε / classes` on every other class, as PyTorch's
/// `cross_entropy(label_smoothing = ε)` does.
///
/// The loss of a row is `(1 - ε) * (lse - row[label]) + ε * (lse -
/// mean(row))`, with `lse` the row's logsumexp, so `ε = 0` gives exactly
/// the bits of [`softmax_cross_entropy_sum`].
///
/// Shapes: as [`softmax_cross_entropy_sum`].
///
/// # Errors
/// As [`softmax_cross_entropy`], and [`crate::KernelError::Parameter`] when
/// `smoothing` is not in `[0, 1]`.
pub fn softmax_cross_entropy_smoothed_sum(
    logits: &[f32],
    labels: &[usize],
    classes: usize,
    smoothing: f32,
    grad_scale: f64,
    grad_logits: &mut [f32],
) -> Result<f64> {
    require_classes(classes)?;
    if !(0.0..=1.0).contains(&smoothing) {
        return Err(KernelError::Parameter {
            name: "smoothing",
            value: smoothing.to_string(),
            reason: "label smoothing must be in [0, 1]".into(),
        });
    }
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

    let smoothing = f64::from(smoothing);
    let off_target = smoothing / classes as f64;
    let on_target = 1.0 - smoothing + off_target;
    let mut total = 0.0;
    let rows = logits
        .chunks_exact(classes)
        .zip(grad_logits.chunks_exact_mut(classes));

    // Per row: lse - row[label] = (max - row[label]) + ln(sum(exp(row - max))).
    for ((row, grad), &label) in rows.zip(labels) {
        let (max, log_sum) = shifted_log_sum_exp(row);
        let nll = (max - f64::from(row[label])) + log_sum;
        if smoothing == 0.0 {
            total += nll;
        } else {
            let mean = row.iter().map(|&x| f64::from(x)).sum::<f64>() / classes as f64;
            let uniform = (max - mean) + log_sum;
            total += (1.0 - smoothing) * nll + smoothing * uniform;
        }
        for (class, (g, &x)) in grad.iter_mut().zip(row).enumerate() {
            let probability = (f64::from(x) - max - log_sum).exp();
            let target = if class == label {
                on_target
            } else {
                off_target
            };
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

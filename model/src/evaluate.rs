//! Accuracy of a network on a dataset split.

use std::time::Instant;

use data::Split;

use crate::network::{argmax, Inference, IMAGE_BYTES};
use crate::{ModelError, Network, Result, CLASSES};

/// The result of evaluating a network on a split.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Images classified correctly.
    pub correct: usize,
    /// Images evaluated.
    pub total: usize,
    /// Wall-clock seconds the evaluation took.
    pub seconds: f64,
    /// Images of each true class, and how many of them were classified
    /// correctly.
    pub per_class: [ClassCount; CLASSES],
    /// Confusion matrix: `confusion[label][predicted]` counts the images of
    /// class `label` predicted as class `predicted`.
    pub confusion: [[usize; CLASSES]; CLASSES],
}

/// Counts of one class in an evaluation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassCount {
    /// Images whose label is this class.
    pub total: usize,
    /// Of those, the images predicted as this class.
    pub correct: usize,
}

impl Evaluation {
    /// `correct / total`, or 0 for an empty split.
    pub fn accuracy(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
}

/// Evaluates `network` on every record of `split` with dropout off, in
/// batches of `batch_size` images.
///
/// # Errors
/// [`ModelError::Config`] for a zero batch size.
pub fn evaluate(network: &Network, split: &Split, batch_size: usize) -> Result<Evaluation> {
    let finished = evaluate_while(network, split, batch_size, || true)?;
    finished.ok_or_else(|| ModelError::Config("the evaluation stopped early".into()))
}

/// Evaluates like [`evaluate`], but calls `keep_going` before each batch
/// and returns `Ok(None)` as soon as it returns false, so that a caller
/// with a deadline can stop a long evaluation between two batches.
///
/// # Errors
/// [`ModelError::Config`] for a zero batch size.
pub fn evaluate_while<F>(
    network: &Network,
    split: &Split,
    batch_size: usize,
    keep_going: F,
) -> Result<Option<Evaluation>>
where
    F: FnMut() -> bool,
{
    let indices: Vec<usize> = (0..split.len()).collect();
    evaluate_some(network, split, &indices, batch_size, keep_going)
}

/// Evaluates like [`evaluate`] on the records of `split` named by
/// `indices` only, such as a validation set held out of a training split.
///
/// # Errors
/// [`ModelError::Config`] for a zero batch size, and [`ModelError::Data`]
/// for an index out of range.
pub fn evaluate_indices(
    network: &Network,
    split: &Split,
    indices: &[usize],
    batch_size: usize,
) -> Result<Evaluation> {
    let finished = evaluate_some(network, split, indices, batch_size, || true)?;
    finished.ok_or_else(|| ModelError::Config("the evaluation stopped early".into()))
}

fn evaluate_some<F>(
    network: &Network,
    split: &Split,
    indices: &[usize],
    batch_size: usize,
    mut keep_going: F,
) -> Result<Option<Evaluation>>
where
    F: FnMut() -> bool,
{
    if batch_size == 0 {
        return Err(ModelError::Config(
            "evaluation batch size is 0; pass at least 1".into(),
        ));
    }
    let start = Instant::now();
    if let Some(&index) = indices.iter().find(|&&index| index >= split.len()) {
        return Err(ModelError::Data(data::DataError::IndexOutOfRange {
            index,
            len: split.len(),
        }));
    }
    let mut confusion = [[0usize; CLASSES]; CLASSES];
    let capacity = batch_size.min(indices.len().max(1));
    let mut inference = Inference::new(network, capacity)?;
    let mut logits = vec![0.0; capacity * CLASSES];
    for batch in indices.chunks(batch_size) {
        if !keep_going() {
            return Ok(None);
        }
        let fill = |first: usize, input: &mut [f32]| -> Result<()> {
            let images = input.chunks_exact_mut(IMAGE_BYTES);
            for (&index, out) in batch[first..].iter().zip(images) {
                network.stats.normalise(split.image(index), out)?;
            }
            Ok(())
        };
        let logits = &mut logits[..batch.len() * CLASSES];
        inference.logits(batch.len(), fill, logits)?;
        for (&index, row) in batch.iter().zip(logits.chunks_exact(CLASSES)) {
            let label = usize::from(split.label(index));
            confusion[label][argmax(row)] += 1;
        }
    }
    let per_class: [ClassCount; CLASSES] = std::array::from_fn(|label| ClassCount {
        total: confusion[label].iter().sum(),
        correct: confusion[label][label],
    });
    Ok(Some(Evaluation {
        correct: per_class.iter().map(|c| c.correct).sum(),
        total: indices.len(),
        seconds: start.elapsed().as_secs_f64(),
        per_class,
        confusion,
    }))
}

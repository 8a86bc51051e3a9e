//! The charts a training run draws next to its checkpoint.

use std::path::{Path, PathBuf};

use cifaas_serve::charts::{draw_confusion, draw_training_curves, EpochPoint};

use crate::run_record::{sibling, RunRecord};

/// Draws `OUT.curves.svg` (loss and accuracy per epoch) and, when the run
/// has a test result, `OUT.confusion.svg`, and returns their paths.
///
/// # Errors
/// When a chart cannot be drawn or written.
pub fn draw(record: &RunRecord, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let points: Vec<EpochPoint> = record
        .epochs
        .iter()
        .map(|epoch| EpochPoint {
            epoch: epoch.epoch,
            loss: epoch.loss,
            train_accuracy: epoch.train_accuracy,
            validation_accuracy: epoch.validation_accuracy,
            test_accuracy: epoch.test_accuracy,
        })
        .collect();
    let curves = sibling(out, ".curves.svg");
    draw_training_curves(&curves, &points)?;
    let mut paths = vec![curves];
    if let Some(test) = &record.test {
        let names: Vec<String> = test.per_class.iter().map(|c| c.class.clone()).collect();
        let confusion = sibling(out, ".confusion.svg");
        draw_confusion(&confusion, &test.confusion, &names)?;
        paths.push(confusion);
    }
    Ok(paths)
}

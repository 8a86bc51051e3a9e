//! The model built into the binary: the checkpoint `models/cifar10.ckpt` of
//! the repository and its run record, embedded at compile time, so that
//! `serve` with no `--model` and no dataset serves predictions at once.

use std::time::Instant;

use anyhow::anyhow;
use model::Network;

/// The checkpoint bytes of `models/cifar10.ckpt`.
pub const CHECKPOINT: &[u8] = include_bytes!("../../models/cifar10.ckpt");

/// The run record of the training run that wrote [`CHECKPOINT`], as JSON.
pub const RUN_RECORD: &str = include_str!("../../models/cifar10.run.json");

/// The name the built-in checkpoint has in logs and errors.
pub const NAME: &str = "models/cifar10.ckpt (built in)";

/// Decodes the built-in checkpoint and logs its recorded test accuracy.
///
/// # Errors
/// When the embedded bytes are not a checkpoint this build reads.
pub fn load() -> anyhow::Result<Network> {
    let started = Instant::now();
    let network = model::decode_checkpoint(CHECKPOINT)
        .map_err(|reason| anyhow!("failed to decode the built-in model {NAME}: {reason}"))?;
    let accuracy = recorded_test_accuracy().map_or_else(
        || "not recorded".to_owned(),
        |a| format!("{:.2}%", 100.0 * a),
    );
    log::info!(
        "loaded the built-in model {NAME} in {:.1} ms, recorded test accuracy {accuracy}",
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(network)
}

/// Returns the recorded test accuracy of the built-in model.
pub fn recorded_test_accuracy() -> Option<f64> {
    let record: serde_json::Value = serde_json::from_str(RUN_RECORD).ok()?;
    record["test"]["accuracy"].as_f64()
}

/// Returns the recorded count of correctly classified test images.
pub fn recorded_test_correct() -> Option<u64> {
    let record: serde_json::Value = serde_json::from_str(RUN_RECORD).ok()?;
    record["test"]["correct"].as_u64()
}

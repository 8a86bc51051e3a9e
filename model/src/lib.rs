//! The cifaas CIFAR-10 network, its training loop, evaluation and
//! checkpoints.
//!
//! Every function that computes runs on the rayon pool the caller installed.
#![forbid(unsafe_code)]

use std::path::Path;

use data::{ChannelStats, Cifar10, Split};

mod error;

pub use error::ModelError;

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, ModelError>;

/// Number of output classes.
pub const CLASSES: usize = data::CLASSES;

/// The network's parameters and the normalisation its inputs need.
#[derive(Debug, Clone)]
pub struct Network {
    _private: (),
}

impl Network {
    /// Builds a network with seeded initial parameters.
    ///
    /// # Errors
    /// [`ModelError::Config`] when `dropout` is not in `[0, 1)`.
    pub fn new(seed: u64, dropout: f32, stats: ChannelStats) -> Result<Self> {
        let _ = (seed, dropout, stats);
        todo!()
    }

    /// The normalisation applied to input pixels.
    pub fn stats(&self) -> ChannelStats {
        todo!()
    }

    /// Returns the class probabilities of CIFAR-layout images (`n * 3072`
    /// bytes), one row of [`CLASSES`] per image, with dropout off.
    ///
    /// # Errors
    /// [`ModelError::Input`] when the length is not a positive multiple of
    /// 3072.
    pub fn predict(&self, images: &[u8]) -> Result<Vec<[f32; CLASSES]>> {
        let _ = images;
        todo!()
    }
}

/// The result of evaluating a network on a split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Images classified correctly.
    pub correct: usize,
    /// Images evaluated.
    pub total: usize,
    /// Wall-clock seconds the evaluation took.
    pub seconds: f64,
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

/// Evaluates `network` on every record of `split` with dropout off.
///
/// # Errors
/// [`ModelError::Kernel`] only if a kernel rejects a shape, which is a bug.
pub fn evaluate(network: &Network, split: &Split, batch_size: usize) -> Result<Evaluation> {
    let _ = (network, split, batch_size);
    todo!()
}

/// Options of a training run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training split.
    pub epochs: usize,
    /// Images per SGD step.
    pub batch_size: usize,
    /// SGD learning rate.
    pub lr: f32,
    /// SGD momentum; Nesterov momentum is always used.
    pub momentum: f32,
    /// L2 weight decay added to the gradient.
    pub weight_decay: f32,
    /// Dropout probability of the two dropout layers.
    pub dropout: f32,
    /// Seed of the initial parameters, the shuffle and the dropout masks.
    pub seed: u64,
    /// Evaluate on the test split after each epoch.
    pub evaluate_each_epoch: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 1,
            batch_size: 64,
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 0.0,
            dropout: 0.25,
            seed: 0,
            evaluate_each_epoch: true,
        }
    }
}

/// What one epoch of training measured.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch.
    pub loss: f64,
    /// Training accuracy over the epoch, with dropout on.
    pub train_accuracy: f64,
    /// Test evaluation after the epoch, when requested.
    pub test: Option<Evaluation>,
    /// Wall-clock seconds of the training part of the epoch.
    pub seconds: f64,
    /// Training images per second.
    pub images_per_second: f64,
}

/// Trains a new network on `dataset.train` and calls `on_epoch` after each
/// epoch.
///
/// # Errors
/// [`ModelError::Config`] for an invalid option and
/// [`ModelError::NonFinite`] when the loss stops being finite.
pub fn train(
    config: &TrainConfig,
    dataset: &Cifar10,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<Network> {
    let _ = (config, dataset, on_epoch);
    todo!()
}

/// Writes `network` to `path` through a temporary file and a rename.
///
/// # Errors
/// [`ModelError::Io`] naming the file.
pub fn save_checkpoint(network: &Network, path: &Path) -> Result<()> {
    let _ = (network, path);
    todo!()
}

/// Reads a checkpoint written by [`save_checkpoint`].
///
/// # Errors
/// [`ModelError::Checkpoint`] naming the check that failed.
pub fn load_checkpoint(path: &Path) -> Result<Network> {
    let _ = path;
    todo!()
}

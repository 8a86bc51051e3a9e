//! The cifaas CIFAR-10 network, its training loop, evaluation and
//! checkpoints.
//!
//! Every function that computes runs on the rayon pool the caller
//! installed, so the caller's pool size caps the threads used.
#![forbid(unsafe_code)]

mod checkpoint;
mod chunk;
mod error;
mod evaluate;
mod holdout;
mod layers;
mod network;
mod packed;
mod params;
mod resume;
mod rng;
mod schedule;
mod train;

#[cfg(feature = "fuzzing")]
pub use checkpoint::fnv1a64;
pub use checkpoint::{
    decode_checkpoint, encode_checkpoint, load_checkpoint, save_checkpoint, FORMAT_VERSION, MAGIC,
};
pub use error::ModelError;
pub use evaluate::{evaluate, evaluate_indices, evaluate_while, ClassCount, Evaluation};
pub use holdout::Holdout;
pub use network::{Network, IMAGE_BYTES};
pub use params::{parameter_count, TensorSpec, TENSORS};
pub use resume::{
    decode_train_state, encode_train_state, load_train_state, save_train_state, TrainState,
    STATE_MAGIC,
};
pub use schedule::{LrPlan, Schedule};
pub use train::{
    train, train_observed, train_resumable, train_run, EpochReport, StepOutcome, StepProgress,
    TrainConfig, TrainObserver, Trainer,
};

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, ModelError>;

/// Number of output classes.
pub const CLASSES: usize = data::CLASSES;

/// The CIFAR-10 class names in label order, for when no dataset is loaded.
pub use data::CLASS_NAMES;

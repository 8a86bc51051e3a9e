//! The error type of the model crate.

use std::path::PathBuf;
use thiserror::Error;

/// Why a model operation failed.
#[derive(Debug, Error)]
pub enum ModelError {
    /// A training or network option out of range.
    #[error("invalid option: {0}")]
    Config(String),
    /// Input images of the wrong size.
    #[error("invalid input: {0}")]
    Input(String),
    /// The loss or a parameter became NaN or infinite.
    #[error("training diverged: {0}")]
    NonFinite(String),
    /// A checkpoint file that fails one of its checks.
    #[error("invalid checkpoint {}: {reason}", path.display())]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// Which check failed and what was found.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done, for example `cannot write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A kernel rejected its arguments.
    #[error(transparent)]
    Kernel(#[from] kernels::KernelError),
    /// The dataset could not be read.
    #[error(transparent)]
    Data(#[from] data::DataError),
}

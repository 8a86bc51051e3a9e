//! The error type of the dataset reader.

use std::path::PathBuf;
use thiserror::Error;

/// Why a dataset could not be read.
#[derive(Debug, Error)]
pub enum DataError {
    /// A file could not be opened, read, mapped or written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done, for example `cannot open`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A batch buffer or index that does not fit.
    #[error("invalid batch: {0}")]
    Batch(String),
}

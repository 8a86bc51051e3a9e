//! The CIFAR-10 binary format.
//!
//! A dataset folder holds `data_batch_1.bin` .. `data_batch_5.bin`,
//! `test_batch.bin` and `batches.meta.txt`. Each `.bin` file is a run of
//! 3073-byte records: one label byte (0-9), then 1024 red, 1024 green and
//! 1024 blue bytes, each plane row-major. The files are memory-mapped, and
//! pixels stay `u8` until a batch is built.
//!
//! [`Cifar10::open`] also takes the `.tar.gz` archive of the binary version
//! and unpacks it once; [`write_synthetic`] writes a small learnable dataset
//! in the same format for tests. With the `download` feature, [`download`]
//! fetches and verifies the official archive.
#![deny(unsafe_code)]

mod archive;
mod augment;
mod batch;
mod cifar;
mod dataset;
#[cfg(feature = "download")]
pub mod download;
mod error;
mod rng;
mod synthetic;

pub use archive::{unpack_archive, user_cache_dir, Unpacked, CACHE_DIR_ENV};
pub use augment::{Augment, Transform, CROP_PADDING};
pub use batch::{fill_batch, fill_batch_augmented, shuffled_indices, ChannelStats};
pub use cifar::Split;
pub use dataset::{Cifar10, ARCHIVE_NAME, FOLDER_NAME, META_FILE, TEST_FILE, TRAIN_FILES};
pub use error::DataError;
pub use synthetic::{write_synthetic, write_synthetic_archive, CLASS_NAMES};

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, DataError>;

/// Bytes of one image: 3 planes of 32 x 32.
pub const IMAGE_BYTES: usize = 3 * 32 * 32;
/// Bytes of one record: the label byte and the image.
pub const RECORD_BYTES: usize = 1 + IMAGE_BYTES;
/// Number of classes.
pub const CLASSES: usize = 10;
/// Channels, height and width of an image.
pub const IMAGE_SHAPE: [usize; 3] = [3, 32, 32];

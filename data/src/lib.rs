//! The CIFAR-10 binary format.
//!
//! A dataset folder holds `data_batch_1.bin` .. `data_batch_5.bin`,
//! `test_batch.bin` and `batches.meta.txt`. Each `.bin` file is a run of
//! 3073-byte records: one label byte (0-9), then 1024 red, 1024 green and
//! 1024 blue bytes, each plane row-major. The files are memory-mapped, and
//! pixels stay `u8` until a batch is built.

use std::path::{Path, PathBuf};

mod error;

pub use error::DataError;

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

/// One split of the dataset (train or test): the records of one or more
/// memory-mapped `.bin` files, addressed by a single index.
pub struct Split {
    _private: (),
}

impl Split {
    /// Opens and validates `.bin` files as one split, in the order given.
    ///
    /// # Errors
    /// A missing or unreadable file, an empty file, a size that is not a
    /// multiple of 3073, or a label above 9; each names the file.
    pub fn open(files: &[PathBuf]) -> Result<Self> {
        let _ = files;
        todo!()
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        todo!()
    }

    /// True when the split has no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Label of record `index` (0-9). Panics when `index >= len()`.
    pub fn label(&self, index: usize) -> u8 {
        let _ = index;
        todo!()
    }

    /// The 3072 pixel bytes of record `index` in CIFAR layout. Panics when
    /// `index >= len()`.
    pub fn image(&self, index: usize) -> &[u8] {
        let _ = index;
        todo!()
    }
}

/// Per-channel mean and standard deviation of pixel values scaled to `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelStats {
    /// Mean of red, green and blue.
    pub mean: [f32; 3],
    /// Standard deviation of red, green and blue.
    pub std: [f32; 3],
}

impl ChannelStats {
    /// Computes the statistics over every image of `split`.
    pub fn compute(split: &Split) -> Self {
        let _ = split;
        todo!()
    }

    /// Converts CIFAR-layout images (`n * 3072` bytes) to normalised NCHW
    /// f32, `(pixel / 255 - mean) / std`, overwriting `out` (`n * 3072`).
    ///
    /// # Errors
    /// [`DataError::Batch`] when the lengths do not match.
    pub fn normalise(&self, pixels: &[u8], out: &mut [f32]) -> Result<()> {
        let _ = (pixels, out);
        todo!()
    }
}

/// The whole dataset: training and test splits and the class names.
pub struct Cifar10 {
    /// The five training batches, 50,000 records in the official release.
    pub train: Split,
    /// The test batch, 10,000 records in the official release.
    pub test: Split,
    /// Class names from `batches.meta.txt`, in label order.
    pub class_names: Vec<String>,
    /// The folder the `.bin` files were read from.
    pub folder: PathBuf,
}

impl Cifar10 {
    /// Opens a dataset folder, or a `.tar.gz` archive that holds one.
    ///
    /// An archive is unpacked once into a folder next to it and reused
    /// after; see [`Cifar10::open_with_cache`] to choose that folder.
    ///
    /// # Errors
    /// See [`Split::open`]; also a missing `batches.meta.txt` or an archive
    /// that does not hold the expected files.
    pub fn open(path: &Path) -> Result<Self> {
        let _ = path;
        todo!()
    }

    /// As [`Cifar10::open`], unpacking an archive into `cache` instead.
    ///
    /// # Errors
    /// As [`Cifar10::open`].
    pub fn open_with_cache(path: &Path, cache: &Path) -> Result<Self> {
        let _ = (path, cache);
        todo!()
    }
}

/// Yields the record indices `0..len` in a seeded random order; the same
/// `(seed, epoch)` gives the same order.
pub fn shuffled_indices(len: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let _ = (len, seed, epoch);
    todo!()
}

/// Copies the records named by `indices` into `images` (normalised NCHW
/// f32, `indices.len() * 3072`) and `labels` (`indices.len()`).
///
/// # Errors
/// [`DataError::Batch`] when a buffer length does not match or an index is
/// out of range.
pub fn fill_batch(
    split: &Split,
    stats: &ChannelStats,
    indices: &[usize],
    images: &mut [f32],
    labels: &mut [usize],
) -> Result<()> {
    let _ = (split, stats, indices, images, labels);
    todo!()
}

/// Writes a small synthetic dataset folder (all six `.bin` files and
/// `batches.meta.txt`) for tests and demos: `records` per file, with class
/// dependent colours so that a network can learn it.
///
/// # Errors
/// [`DataError::Io`] when a file cannot be written.
pub fn write_synthetic(folder: &Path, records: usize, seed: u64) -> Result<()> {
    let _ = (folder, records, seed);
    todo!()
}

//! The error type of the dataset reader.

use std::path::PathBuf;
use thiserror::Error;

/// Advice on the path to pass, shared by the messages of a missing dataset.
const PASS_HINT: &str = "pass the folder that contains data_batch_1.bin .. data_batch_5.bin, \
                         test_batch.bin and batches.meta.txt, its parent folder, or the \
                         cifar-10-binary.tar.gz archive";

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
    /// A batch buffer whose length does not match the number of images.
    #[error("invalid batch: {0}")]
    Batch(String),
    /// A record index at or past the end of the split.
    #[error("invalid batch: record index {index} is out of range for a split of {len} records")]
    IndexOutOfRange {
        /// The index that was requested.
        index: usize,
        /// Number of records in the split.
        len: usize,
    },
    /// The path given to [`crate::Cifar10::open`] does not exist.
    #[error("dataset path {} not found: {PASS_HINT}", path.display())]
    PathNotFound {
        /// The path that was given.
        path: PathBuf,
    },
    /// The path is a file, but not a `.tar.gz` or `.tgz` archive.
    #[error("{} is neither a folder nor a .tar.gz archive: {PASS_HINT}", path.display())]
    NotDataset {
        /// The path that was given.
        path: PathBuf,
    },
    /// A dataset file is missing from the folder.
    #[error("missing {file} in {}: {PASS_HINT}", folder.display())]
    MissingFile {
        /// Name of the file, for example `data_batch_3.bin`.
        file: String,
        /// The folder that was searched.
        folder: PathBuf,
    },
    /// A `.bin` file of zero bytes.
    #[error(
        "{} is empty, expected 3073-byte records: the download or unpack was interrupted, \
         so fetch the dataset again",
        path.display()
    )]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// A `.bin` file whose size is not a whole number of 3073-byte records.
    #[error(
        "{} is {size} bytes, which is not a multiple of the 3073-byte record \
         ({remainder} bytes after the last whole record): the file is truncated or not \
         a CIFAR-10 binary batch, so fetch the dataset again",
        path.display()
    )]
    FileSize {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// `size % 3073`.
        remainder: u64,
    },
    /// A record whose label byte is above 9.
    #[error(
        "{}: record {record} (byte offset {offset}) has label {label}, expected 0-9: \
         the file is corrupt or not from the CIFAR-10 binary version",
        path.display()
    )]
    InvalidLabel {
        /// The file.
        path: PathBuf,
        /// Index of the record inside the file, from 0.
        record: usize,
        /// Byte offset of the label inside the file.
        offset: u64,
        /// The label byte.
        label: u8,
    },
    /// A `batches.meta.txt` that does not list exactly ten class names.
    #[error(
        "{} lists {found} class names, expected 10, one a line in label order",
        path.display()
    )]
    ClassCount {
        /// The meta file.
        path: PathBuf,
        /// Number of names found, ignoring blank trailing lines.
        found: usize,
    },
    /// A blank line between the class names of `batches.meta.txt`.
    #[error("{} has a blank class name on line {line}, expected 10 names", path.display())]
    BlankClassName {
        /// The meta file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
    },
    /// An archive entry that unpacking rejects.
    #[error(
        "rejected entry {entry} in {}: {reason}; use the official archive or one \
         without links, absolute paths or `..`",
        archive.display()
    )]
    InvalidArchiveEntry {
        /// The archive.
        archive: PathBuf,
        /// The entry's path as stored in the archive.
        entry: String,
        /// Reason for the rejection, for example `is a link`.
        reason: &'static str,
    },
    /// An archive that lacks one of the seven dataset files.
    #[error(
        "{} does not contain {member}: expected the CIFAR-10 binary version, which holds \
         cifar-10-batches-bin/data_batch_1.bin .. test_batch.bin and batches.meta.txt",
        archive.display()
    )]
    ArchiveMissingMember {
        /// The archive.
        archive: PathBuf,
        /// The file name that was not found.
        member: String,
    },
    /// The unpack folder exists but was not written by this crate.
    #[error(
        "cannot unpack into {}: the folder exists and has no unpack marker, so it was not \
         written by cifaas; remove it or choose another cache folder",
        folder.display()
    )]
    UnpackFolderInUse {
        /// The folder.
        folder: PathBuf,
    },
    /// The archive's folder is read-only and no per-user cache folder is known.
    #[error(
        "cannot unpack {}: its folder is not writable and no cache folder is set; \
         set CIFAAS_CACHE_DIR, XDG_CACHE_HOME or HOME, or call Cifar10::open_with_cache",
        archive.display()
    )]
    NoCacheFolder {
        /// The archive.
        archive: PathBuf,
    },
    /// A download that failed before its body was complete.
    #[cfg(feature = "download")]
    #[error(
        "failed to download {url}: {reason}; check the URL (--data-url) and the network, \
         then run again, or download the archive yourself and pass it with --data"
    )]
    DownloadFailed {
        /// The URL.
        url: String,
        /// What failed, for example `the server returned HTTP 404`.
        reason: String,
    },
    /// A downloaded archive whose MD5 is not the expected one.
    #[cfg(feature = "download")]
    #[error(
        "the download of {url} has MD5 {found}, expected {expected}, so it was deleted: \
         the transfer was corrupted or the file on the server changed; run again, or pass \
         --data-md5 with the MD5 the server publishes"
    )]
    ChecksumMismatch {
        /// The URL.
        url: String,
        /// The expected MD5, 32 lowercase hexadecimal digits.
        expected: String,
        /// The MD5 of the bytes received.
        found: String,
    },
}

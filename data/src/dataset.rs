//! Finding and opening a dataset folder or archive.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::archive;
use crate::{DataError, Result, Split, CLASSES};

/// The five training batch files, in record order.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test batch file.
pub const TEST_FILE: &str = "test_batch.bin";
/// The file of class names, one a line in label order.
pub const META_FILE: &str = "batches.meta.txt";
/// The folder the official archive unpacks to.
pub const FOLDER_NAME: &str = "cifar-10-batches-bin";
/// The file name of the official archive.
pub const ARCHIVE_NAME: &str = "cifar-10-binary.tar.gz";

/// All seven files a dataset folder must contain.
pub(crate) fn dataset_files() -> impl Iterator<Item = &'static str> {
    TRAIN_FILES.into_iter().chain([TEST_FILE, META_FILE])
}

/// The whole dataset: training and test splits and the class names.
#[derive(Debug)]
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

/// Kind of dataset source that a path given to [`Cifar10::open`] names.
enum Source {
    Folder(PathBuf),
    Archive(PathBuf),
}

impl Cifar10 {
    /// Opens a dataset folder, or a `.tar.gz` archive that contains one.
    ///
    /// `path` may be the folder with the seven files, a folder that contains
    /// `cifar-10-batches-bin/` or `cifar-10-binary.tar.gz`, or a `.tar.gz` or
    /// `.tgz` archive. An archive is unpacked once into a folder next to it,
    /// named after it without the extension, and reused after; see
    /// [`crate::unpack_archive`]. When the archive's folder is read-only, the
    /// unpack goes to [`crate::user_cache_dir`] instead, and the log names
    /// the folder used. [`Cifar10::open_with_cache`] chooses the folder.
    ///
    /// # Errors
    /// See [`Split::open`]; also a missing `batches.meta.txt` or one that
    /// does not list ten names, and an archive that does not hold the
    /// expected files or holds a link, an absolute path or `..`.
    pub fn open(path: &Path) -> Result<Self> {
        match resolve(path)? {
            Source::Folder(folder) => open_folder(&folder),
            Source::Archive(archive) => open_folder(&archive::unpack_beside(&archive)?),
        }
    }

    /// As [`Cifar10::open`], unpacking an archive into a folder inside
    /// `cache` instead (created when missing). A dataset folder is read in
    /// place and `cache` is not used.
    ///
    /// # Errors
    /// As [`Cifar10::open`].
    pub fn open_with_cache(path: &Path, cache: &Path) -> Result<Self> {
        match resolve(path)? {
            Source::Folder(folder) => open_folder(&folder),
            Source::Archive(archive) => {
                open_folder(&archive::unpack_archive(&archive, cache)?.folder)
            }
        }
    }
}

/// Decides whether `path` names a dataset folder or an archive.
fn resolve(path: &Path) -> Result<Source> {
    let metadata = path_metadata(path)?;

    if !metadata.is_dir() {
        if archive::is_archive_name(path) {
            return Ok(Source::Archive(path.to_owned()));
        }
        return Err(DataError::NotDataset {
            path: path.to_owned(),
        });
    }
    if dataset_files().any(|file| path.join(file).exists()) {
        return Ok(Source::Folder(path.to_owned()));
    }
    let nested = path.join(FOLDER_NAME);
    if nested.is_dir() {
        return Ok(Source::Folder(nested));
    }
    let archive = path.join(ARCHIVE_NAME);
    if archive.is_file() {
        return Ok(Source::Archive(archive));
    }
    Err(DataError::MissingFile {
        file: TRAIN_FILES[0].to_owned(),
        folder: path.to_owned(),
    })
}

/// Reads the metadata of a path given by the caller, which may not exist.
pub(crate) fn path_metadata(path: &Path) -> Result<fs::Metadata> {
    fs::metadata(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            DataError::PathNotFound {
                path: path.to_owned(),
            }
        } else {
            DataError::Io {
                action: "cannot read",
                path: path.to_owned(),
                source,
            }
        }
    })
}

/// Opens the seven files of a dataset folder.
fn open_folder(folder: &Path) -> Result<Cifar10> {
    for file in dataset_files() {
        if !folder.join(file).is_file() {
            return Err(DataError::MissingFile {
                file: file.to_owned(),
                folder: folder.to_owned(),
            });
        }
    }
    let class_names = read_class_names(&folder.join(META_FILE))?;
    let train_files: Vec<PathBuf> = TRAIN_FILES.iter().map(|file| folder.join(file)).collect();
    let train = Split::open(&train_files)?;
    let test = Split::open(&[folder.join(TEST_FILE)])?;
    log::info!(
        "opened CIFAR-10 in {}: {} training and {} test records",
        folder.display(),
        train.len(),
        test.len()
    );
    Ok(Cifar10 {
        train,
        test,
        class_names,
        folder: folder.to_owned(),
    })
}

/// Reads `batches.meta.txt`: ten names, one a line, blank trailing lines
/// ignored and surrounding whitespace trimmed.
fn read_class_names(path: &Path) -> Result<Vec<String>> {
    let text = fs::read_to_string(path).map_err(|source| DataError::Io {
        action: "cannot read",
        path: path.to_owned(),
        source,
    })?;
    let mut names: Vec<&str> = text.lines().map(str::trim).collect();
    while names.last() == Some(&"") {
        names.pop();
    }
    if names.len() != CLASSES {
        return Err(DataError::ClassCount {
            path: path.to_owned(),
            found: names.len(),
        });
    }
    if let Some(line) = names.iter().position(|name| name.is_empty()) {
        return Err(DataError::BlankClassName {
            path: path.to_owned(),
            line: line + 1,
        });
    }
    Ok(names.into_iter().map(str::to_owned).collect())
}

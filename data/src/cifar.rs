//! Memory-mapped `.bin` batch files and their validation. This module contains
//! the crate's only `unsafe` code: the call that maps a file.
#![allow(unsafe_code)]

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::{DataError, Result, CLASSES, RECORD_BYTES};

/// One mapped `.bin` file whose size and labels have been checked.
struct BatchFile {
    path: PathBuf,
    map: Mmap,
}

impl BatchFile {
    fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|source| open_error(path, source))?;
        let size = file
            .metadata()
            .map_err(|source| DataError::Io {
                action: "cannot read the size of",
                path: path.to_owned(),
                source,
            })?
            .len();
        check_size(path, size)?;

        // SAFETY: the map is read-only and this crate never writes to a batch
        // file. Rust still assumes that the mapped bytes do not change, so
        // another process must not modify or truncate the file while the split
        // is open. A changed file makes reads return the new bytes, which may
        // break the label check below. A truncated file makes reads past its
        // new end raise SIGBUS. `Split` documents this duty for its callers.
        let map = unsafe { Mmap::map(&file) }.map_err(|source| DataError::Io {
            action: "cannot memory-map",
            path: path.to_owned(),
            source,
        })?;

        // The size check above read the metadata. Checking the mapping too means
        // that a file changed in between cannot make the record arithmetic overrun.
        check_size(path, map.len() as u64)?;
        check_labels(path, &file, map.len())?;
        Ok(Self {
            path: path.to_owned(),
            map,
        })
    }

    fn records(&self) -> usize {
        self.map.len() / RECORD_BYTES
    }
}

fn open_error(path: &Path, source: io::Error) -> DataError {
    if source.kind() == io::ErrorKind::NotFound {
        let file = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let folder = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        };
        return DataError::MissingFile { file, folder };
    }
    DataError::Io {
        action: "cannot open",
        path: path.to_owned(),
        source,
    }
}

fn check_size(path: &Path, size: u64) -> Result<()> {
    if size == 0 {
        return Err(DataError::EmptyFile {
            path: path.to_owned(),
        });
    }
    let remainder = size % RECORD_BYTES as u64;
    if remainder != 0 {
        return Err(DataError::FileSize {
            path: path.to_owned(),
            size,
            remainder,
        });
    }
    Ok(())
}

/// Records read per block by [`check_labels`]: about 1 MiB.
const LABEL_CHECK_RECORDS: usize = 341;

/// Checks the label byte of each record. It reads the file in blocks and not
/// through the map, because a label sits on every 4 KiB page of the file:
/// reading it through the map would make the whole file resident in this
/// process, 180 MiB for CIFAR-10, even when only the test split is used.
fn check_labels(path: &Path, file: &File, size: usize) -> Result<()> {
    let mut block = vec![0_u8; LABEL_CHECK_RECORDS * RECORD_BYTES];
    let records = size / RECORD_BYTES;
    for first in (0..records).step_by(LABEL_CHECK_RECORDS) {
        let count = LABEL_CHECK_RECORDS.min(records - first);
        let bytes = &mut block[..count * RECORD_BYTES];
        let offset = (first * RECORD_BYTES) as u64;
        file.read_exact_at(bytes, offset)
            .map_err(|source| DataError::Io {
                action: "cannot read the labels of",
                path: path.to_owned(),
                source,
            })?;
        for (index, chunk) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
            let label = chunk[0];
            if usize::from(label) >= CLASSES {
                let record = first + index;
                return Err(DataError::InvalidLabel {
                    path: path.to_owned(),
                    record,
                    offset: (record * RECORD_BYTES) as u64,
                    label,
                });
            }
        }
    }
    Ok(())
}

/// One split of the dataset (train or test): the records of one or more
/// memory-mapped `.bin` files, addressed by a single index.
///
/// The files stay mapped for the life of the split. Another process must not
/// modify or truncate them meanwhile: changed bytes show through, and reads
/// past a truncated end stop the process with SIGBUS.
pub struct Split {
    files: Vec<BatchFile>,
    /// Index of the first record of each file in `files`.
    starts: Vec<usize>,
    len: usize,
}

impl Split {
    /// Opens and validates `.bin` files as one split, in the order given.
    ///
    /// # Errors
    /// A missing or unreadable file, an empty file, a size that is not a
    /// multiple of 3073, or a label above 9; each names the file.
    pub fn open(files: &[PathBuf]) -> Result<Self> {
        let mut mapped = Vec::with_capacity(files.len());
        let mut starts = Vec::with_capacity(files.len());
        let mut len = 0;
        for path in files {
            let file = BatchFile::open(path)?;
            starts.push(len);
            len += file.records();
            mapped.push(file);
        }
        Ok(Self {
            files: mapped,
            starts,
            len,
        })
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the split has no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Label of record `index` (0-9). Panics when `index >= len()`.
    pub fn label(&self, index: usize) -> u8 {
        self.record(index)[0]
    }

    /// The 3072 pixel bytes of record `index` in CIFAR layout. Panics when
    /// `index >= len()`.
    pub fn image(&self, index: usize) -> &[u8] {
        &self.record(index)[1..]
    }

    /// Number of records of each class, indexed by label.
    pub fn label_counts(&self) -> [usize; CLASSES] {
        let mut counts = [0; CLASSES];
        for file in &self.files {
            for record in file.map.chunks_exact(RECORD_BYTES) {
                counts[usize::from(record[0])] += 1;
            }
        }
        counts
    }

    /// Returns the `.bin` files of the split, in record order.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|file| file.path.as_path())
    }

    /// Returns the 3073 bytes of record `index`: label, then pixels.
    fn record(&self, index: usize) -> &[u8] {
        assert!(
            index < self.len,
            "record index {index} is out of range for a split of {} records",
            self.len
        );
        // Empty files are rejected, so `starts` increases strictly and the
        // last start at or below `index` names the file holding it.
        let file = self.starts.partition_point(|&start| start <= index) - 1;
        let offset = (index - self.starts[file]) * RECORD_BYTES;
        &self.files[file].map[offset..offset + RECORD_BYTES]
    }
}

impl fmt::Debug for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Split")
            .field("len", &self.len)
            .field("files", &self.paths().collect::<Vec<_>>())
            .finish()
    }
}

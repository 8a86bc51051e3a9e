//! Helpers shared by the integration tests: hand-made batch files and
//! archives with chosen entries.
#![allow(dead_code)]

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use data::{DataError, IMAGE_BYTES, RECORD_BYTES};
use flate2::write::GzEncoder;
use flate2::Compression;

/// Builds a record whose pixels depend on `label` and `seed` so any two differ:
/// byte `i` of the image is `(i * 7 + label * 31 + seed) % 256`.
pub fn record(label: u8, seed: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(RECORD_BYTES);
    bytes.push(label);
    bytes.extend((0..IMAGE_BYTES).map(|i| ((i * 7 + usize::from(label) * 31 + seed) % 256) as u8));
    bytes
}

/// Writes a batch file of the given labels, record `k` built by `record(label, k + seed)`.
pub fn write_batch(path: &Path, labels: &[u8], seed: usize) {
    let mut bytes = Vec::new();
    for (k, &label) in labels.iter().enumerate() {
        bytes.extend(record(label, k + seed));
    }
    fs::write(path, bytes).unwrap();
}

/// Unwraps an error, printing the value when there is none.
pub fn expect_err<T: std::fmt::Debug>(result: Result<T, DataError>) -> DataError {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => error,
    }
}

/// One entry of a hand-built archive.
#[derive(Clone, Copy)]
pub enum Entry<'a> {
    /// A regular file stored under exactly this name, unchecked.
    File(&'a str, &'a [u8]),
    /// A symbolic link `name -> target`.
    Symlink(&'a str, &'a str),
    /// A hard link `name -> target`.
    HardLink(&'a str, &'a str),
}

/// Writes a `.tar.gz` whose entry names are stored verbatim, so it can hold
/// the absolute and `..` paths that `tar::Builder` itself rejects.
pub fn write_raw_archive(path: &Path, entries: &[Entry<'_>]) {
    let file = File::create(path).unwrap();
    let mut builder = tar::Builder::new(GzEncoder::new(file, Compression::fast()));
    for entry in entries {
        let mut header = tar::Header::new_old();
        let (name, data): (&str, &[u8]) = match entry {
            Entry::File(name, data) => {
                header.set_entry_type(tar::EntryType::Regular);
                (name, data)
            }
            Entry::Symlink(name, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                set_raw(&mut header.as_old_mut().linkname, target);
                (name, &[])
            }
            Entry::HardLink(name, target) => {
                header.set_entry_type(tar::EntryType::Link);
                set_raw(&mut header.as_old_mut().linkname, target);
                (name, &[])
            }
        };
        set_raw(&mut header.as_old_mut().name, name);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, data).unwrap();
    }
    builder
        .into_inner()
        .unwrap()
        .finish()
        .unwrap()
        .flush()
        .unwrap();
}

fn set_raw(field: &mut [u8; 100], value: &str) {
    field.fill(0);
    field[..value.len()].copy_from_slice(value.as_bytes());
}

/// Builds the seven files of a valid dataset with `records` records per batch, as
/// archive entries under `cifar-10-batches-bin/`.
pub fn dataset_entries(records: usize) -> Vec<(String, Vec<u8>)> {
    let labels: Vec<u8> = (0..records).map(|i| (i % 10) as u8).collect();
    let mut files = Vec::new();
    for name in data::TRAIN_FILES.iter().chain([&data::TEST_FILE]) {
        let mut bytes = Vec::new();
        for (k, &label) in labels.iter().enumerate() {
            bytes.extend(record(label, k));
        }
        files.push((format!("cifar-10-batches-bin/{name}"), bytes));
    }
    let meta = data::CLASS_NAMES.join("\n").into_bytes();
    files.push((format!("cifar-10-batches-bin/{}", data::META_FILE), meta));
    files
}

/// Lists the names of the entries of `dir`, sorted.
pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

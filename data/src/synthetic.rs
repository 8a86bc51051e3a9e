//! Small learnable datasets written in the CIFAR-10 binary format.
//!
//! Each class has its own base colour and an 8 x 8 square of a contrasting
//! colour at its own position, and every pixel gets uniform noise of up to +-32. Either cue
//! alone separates the classes, so a small network learns them within one
//! epoch. Each file contains its records' labels in equal shares (up to one
//! record), in a seeded random order.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::dataset::{FOLDER_NAME, META_FILE, TEST_FILE, TRAIN_FILES};
use crate::rng::SplitMix64;
use crate::{DataError, Result, CLASSES, IMAGE_BYTES, RECORD_BYTES};

/// The class names of CIFAR-10, in label order.
pub const CLASS_NAMES: [&str; CLASSES] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Base red, green and blue of each class.
const COLOURS: [[u8; 3]; CLASSES] = [
    [110, 150, 210],
    [200, 40, 40],
    [200, 190, 60],
    [140, 90, 50],
    [120, 140, 60],
    [128, 128, 128],
    [50, 170, 60],
    [110, 50, 120],
    [30, 60, 140],
    [230, 130, 30],
];

/// How far a square's channels lie from the base colour, towards the
/// middle of the range so that every class's square is visible.
const SQUARE_CONTRAST: u8 = 100;

/// Largest noise added to or taken from a pixel.
const NOISE: i32 = 32;

/// Writes a small synthetic dataset folder (all six `.bin` files and
/// `batches.meta.txt`) for tests and demos: `records` per file, with class
/// dependent colours so that a network can learn it. The folder is created
/// when missing, and the same `(records, seed)` writes the same bytes.
///
/// # Errors
/// [`DataError::Io`] when a file cannot be written.
pub fn write_synthetic(folder: &Path, records: usize, seed: u64) -> Result<()> {
    fs::create_dir_all(folder).map_err(|source| DataError::Io {
        action: "cannot create",
        path: folder.to_owned(),
        source,
    })?;
    for (file_index, file) in batch_files().enumerate() {
        let path = folder.join(file);
        let bytes = synthetic_batch(records, seed, file_index as u64);
        fs::write(&path, bytes).map_err(|source| DataError::Io {
            action: "cannot write",
            path: path.clone(),
            source,
        })?;
    }
    let meta = folder.join(META_FILE);
    fs::write(&meta, meta_text()).map_err(|source| DataError::Io {
        action: "cannot write",
        path: meta.clone(),
        source,
    })
}

/// Writes a `.tar.gz` archive holding `cifar-10-batches-bin/` with the same
/// files [`write_synthetic`] writes for `(records, seed)`, in the layout of
/// the official archive. The parent folder is created when missing.
///
/// # Errors
/// [`DataError::Io`] when the archive cannot be written.
pub fn write_synthetic_archive(archive: &Path, records: usize, seed: u64) -> Result<()> {
    let write_error = |source| DataError::Io {
        action: "cannot write",
        path: archive.to_owned(),
        source,
    };
    if let Some(parent) = archive
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        fs::create_dir_all(parent).map_err(write_error)?;
    }
    let file = File::create(archive).map_err(write_error)?;
    let encoder = GzEncoder::new(BufWriter::new(file), Compression::fast());
    let mut builder = tar::Builder::new(encoder);

    let mut folder = tar::Header::new_gnu();
    folder.set_entry_type(tar::EntryType::Directory);
    folder.set_mode(0o755);
    folder.set_size(0);
    builder
        .append_data(&mut folder, format!("{FOLDER_NAME}/"), io::empty())
        .map_err(write_error)?;

    for (file_index, name) in batch_files().enumerate() {
        let bytes = synthetic_batch(records, seed, file_index as u64);
        append_file(&mut builder, name, &bytes).map_err(write_error)?;
    }
    append_file(&mut builder, META_FILE, meta_text().as_bytes()).map_err(write_error)?;

    let encoder = builder.into_inner().map_err(write_error)?;
    let mut writer = encoder.finish().map_err(write_error)?;
    writer.flush().map_err(write_error)
}

fn append_file<W: Write>(
    builder: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_size(bytes.len() as u64);
    builder.append_data(&mut header, format!("{FOLDER_NAME}/{name}"), bytes)
}

/// Returns the six `.bin` file names in the order their seeds are derived.
fn batch_files() -> impl Iterator<Item = &'static str> {
    TRAIN_FILES.into_iter().chain([TEST_FILE])
}

fn meta_text() -> String {
    let mut text = CLASS_NAMES.join("\n");
    text.push('\n');
    text
}

/// Builds the bytes of one synthetic `.bin` file.
fn synthetic_batch(records: usize, seed: u64, file_index: u64) -> Vec<u8> {
    let mut labels: Vec<u8> = (0..records).map(|i| (i % CLASSES) as u8).collect();
    let mut order = SplitMix64::keyed(seed, 2 * file_index);
    for last in (1..labels.len()).rev() {
        let other = order.below(last as u64 + 1) as usize;
        labels.swap(last, other);
    }

    let mut noise = SplitMix64::keyed(seed, 2 * file_index + 1);
    let mut bytes = Vec::with_capacity(records * RECORD_BYTES);
    for &label in &labels {
        bytes.push(label);
        push_image(&mut bytes, usize::from(label), &mut noise);
    }
    bytes
}

/// Appends the 3072 bytes of one image of `class`.
fn push_image(bytes: &mut Vec<u8>, class: usize, noise: &mut SplitMix64) {
    let start = bytes.len();
    // The square of class c sits in cell (c % 4, c / 4) of a 4 x 4 grid of
    // 8 x 8 cells.
    let square_x = (class % 4) * 8;
    let square_y = (class / 4) * 8;
    for &base in &COLOURS[class] {
        for y in 0..32 {
            for x in 0..32 {
                let in_square =
                    (square_x..square_x + 8).contains(&x) && (square_y..square_y + 8).contains(&y);
                let value = match (in_square, base >= 128) {
                    (false, _) => base,
                    (true, true) => base - SQUARE_CONTRAST,
                    (true, false) => base + SQUARE_CONTRAST,
                };
                let jitter = noise.below(2 * NOISE as u64 + 1) as i32 - NOISE;
                bytes.push((i32::from(value) + jitter).clamp(0, 255) as u8);
            }
        }
    }
    debug_assert_eq!(bytes.len() - start, IMAGE_BYTES);
}

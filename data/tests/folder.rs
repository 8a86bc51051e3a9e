//! Opening dataset folders and batch files, valid and broken.

mod common;

use std::fs;
use std::path::PathBuf;

use common::{expect_err, record, write_batch};
use data::{Cifar10, DataError, Split, CLASS_NAMES, META_FILE, RECORD_BYTES};
use tempfile::TempDir;

/// Writes a synthetic dataset folder with `records` records per file.
fn synthetic_folder(records: usize) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    data::write_synthetic(dir.path(), records, 1).unwrap();
    dir
}

#[test]
fn valid_folder_opens() {
    let dir = synthetic_folder(20);
    let dataset = Cifar10::open(dir.path()).unwrap();
    assert_eq!(dataset.train.len(), 100);
    assert_eq!(dataset.test.len(), 20);
    assert_eq!(dataset.class_names, CLASS_NAMES);
    assert_eq!(dataset.folder, dir.path());
    assert_eq!(dataset.train.paths().count(), 5);
}

#[test]
fn parent_folder_opens_nested() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("cifar-10-batches-bin");
    data::write_synthetic(&nested, 10, 2).unwrap();
    let dataset = Cifar10::open(dir.path()).unwrap();
    assert_eq!(dataset.folder, nested);
    assert_eq!(dataset.train.len(), 50);
}

#[test]
fn split_reads_records_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("a.bin");
    let second = dir.path().join("b.bin");
    write_batch(&first, &[3, 7], 0);
    write_batch(&second, &[9, 0, 5], 100);

    let split = Split::open(&[first, second]).unwrap();
    assert_eq!(split.len(), 5);
    assert!(!split.is_empty());
    let expected = [(3, 0), (7, 1), (9, 100), (0, 101), (5, 102)];
    for (index, (label, seed)) in expected.into_iter().enumerate() {
        assert_eq!(split.label(index), label, "label of record {index}");
        assert_eq!(
            split.image(index),
            &record(label, seed)[1..],
            "image of record {index}"
        );
    }
    assert_eq!(split.label_counts(), [1, 0, 0, 1, 0, 1, 0, 1, 0, 1]);
}

#[test]
fn split_of_no_files_is_empty() {
    let split = Split::open(&[]).unwrap();
    assert!(split.is_empty());
}

#[test]
#[should_panic(expected = "record index 2 is out of range")]
fn split_image_panics_past_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.bin");
    write_batch(&path, &[1, 2], 0);
    let split = Split::open(&[path]).unwrap();
    let _ = split.image(2);
}

#[test]
fn truncated_file_rejected() {
    let dir = synthetic_folder(4);
    let path = dir.path().join("data_batch_3.bin");
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();

    let error = expect_err(Cifar10::open(dir.path()));
    let message = error.to_string();
    let DataError::FileSize {
        path: found,
        size,
        remainder,
    } = error
    else {
        panic!("expected FileSize, got {error:?}");
    };
    let size_expected = (4 * RECORD_BYTES - 100) as u64;
    assert_eq!(found, path);
    assert_eq!(size, size_expected);
    assert_eq!(remainder, size_expected % RECORD_BYTES as u64);
    assert!(message.contains("data_batch_3.bin"), "{message}");
    assert!(
        message.contains(&format!("{size_expected} bytes")),
        "{message}"
    );
    assert!(
        message.contains(&format!("({remainder} bytes after")),
        "{message}"
    );
}

#[test]
fn size_not_multiple_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd.bin");
    let mut bytes = [record(1, 0), record(2, 1)].concat();
    bytes.extend([0; 5]);
    fs::write(&path, bytes).unwrap();

    let error = expect_err(Split::open(&[path]));
    assert!(
        matches!(
            error,
            DataError::FileSize {
                size: 6151,
                remainder: 5,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("odd.bin"), "{error}");
}

#[test]
fn bad_label_names_record_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.bin");
    let mut bytes = Vec::new();
    for (k, label) in [0u8, 1, 2, 3, 12, 4].into_iter().enumerate() {
        bytes.extend(record(label, k));
    }
    fs::write(&path, bytes).unwrap();

    let error = expect_err(Split::open(&[path]));
    let message = error.to_string();
    assert!(
        matches!(
            error,
            DataError::InvalidLabel { record: 4, label: 12, offset, .. } if offset == 4 * 3073
        ),
        "{error:?}"
    );
    assert!(message.contains("record 4"), "{message}");
    assert!(message.contains("label 12"), "{message}");
    assert!(message.contains("bad.bin"), "{message}");
}

#[test]
fn label_ten_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ten.bin");
    fs::write(&path, record(10, 0)).unwrap();
    let error = expect_err(Split::open(&[path]));
    assert!(
        matches!(
            error,
            DataError::InvalidLabel {
                record: 0,
                label: 10,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn empty_file_rejected() {
    let dir = synthetic_folder(3);
    let path = dir.path().join("test_batch.bin");
    fs::write(&path, []).unwrap();

    let error = expect_err(Cifar10::open(dir.path()));
    assert!(
        matches!(&error, DataError::EmptyFile { path: found } if *found == path),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("test_batch.bin is empty"),
        "{error}"
    );
}

#[test]
fn missing_file_names_folder() {
    let dir = synthetic_folder(3);
    fs::remove_file(dir.path().join("data_batch_2.bin")).unwrap();

    let error = expect_err(Cifar10::open(dir.path()));
    let message = error.to_string();
    assert!(
        matches!(&error, DataError::MissingFile { file, folder }
            if file == "data_batch_2.bin" && folder == dir.path()),
        "{error:?}"
    );
    assert!(message.contains("missing data_batch_2.bin"), "{message}");
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("pass the folder"), "{message}");
}

#[test]
fn split_missing_file_names_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nothing.bin");
    let error = expect_err(Split::open(&[path]));
    assert!(
        matches!(&error, DataError::MissingFile { file, folder }
            if file == "nothing.bin" && folder == dir.path()),
        "{error:?}"
    );
}

#[test]
fn empty_folder_reports_first_file() {
    let dir = tempfile::tempdir().unwrap();
    let error = expect_err(Cifar10::open(dir.path()));
    assert!(
        matches!(&error, DataError::MissingFile { file, .. } if file == "data_batch_1.bin"),
        "{error:?}"
    );
}

#[test]
fn missing_meta_rejected() {
    let dir = synthetic_folder(3);
    fs::remove_file(dir.path().join(META_FILE)).unwrap();
    let error = expect_err(Cifar10::open(dir.path()));
    assert!(
        matches!(&error, DataError::MissingFile { file, .. } if file == META_FILE),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("missing batches.meta.txt"),
        "{error}"
    );
}

#[test]
fn wrong_class_count_rejected() {
    let dir = synthetic_folder(3);
    let meta = dir.path().join(META_FILE);
    for count in [0, 1, 9, 11] {
        let names: Vec<String> = (0..count).map(|i| format!("class{i}")).collect();
        fs::write(&meta, names.join("\n")).unwrap();
        let error = expect_err(Cifar10::open(dir.path()));
        assert!(
            matches!(&error, DataError::ClassCount { found, path } if *found == count && *path == meta),
            "{count} names: {error:?}"
        );
        assert!(
            error
                .to_string()
                .contains(&format!("lists {count} class names")),
            "{error}"
        );
    }
}

#[test]
fn blank_trailing_lines_ignored() {
    let dir = synthetic_folder(3);
    let text = format!("{}\r\n\r\n\n  \n", CLASS_NAMES.join("\r\n"));
    fs::write(dir.path().join(META_FILE), text).unwrap();
    let dataset = Cifar10::open(dir.path()).unwrap();
    assert_eq!(dataset.class_names, CLASS_NAMES);
}

#[test]
fn blank_class_name_rejected() {
    let dir = synthetic_folder(3);
    let mut names = CLASS_NAMES.to_vec();
    names[3] = "";
    fs::write(dir.path().join(META_FILE), names.join("\n")).unwrap();
    let error = expect_err(Cifar10::open(dir.path()));
    assert!(
        matches!(error, DataError::BlankClassName { line: 4, .. }),
        "{error:?}"
    );
}

#[test]
fn missing_path_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("no-such-dataset");
    let error = expect_err(Cifar10::open(&path));
    assert!(
        matches!(&error, DataError::PathNotFound { path: found } if *found == path),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("no-such-dataset not found"),
        "{error}"
    );
}

#[test]
fn plain_file_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    fs::write(&path, "hello").unwrap();
    let error = expect_err(Cifar10::open(&path));
    assert!(matches!(error, DataError::NotDataset { .. }), "{error:?}");
}

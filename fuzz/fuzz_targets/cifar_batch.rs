//! CIFAR-10 `.bin` batch files, through the production path: the bytes are
//! written to a file, which `Split::open` memory-maps and validates.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use data::{fill_batch, ChannelStats, DataError, Split, CLASSES, IMAGE_BYTES, RECORD_BYTES};
use libfuzzer_sys::fuzz_target;

/// Records copied into a batch for the `fill_batch` check.
const BATCH_RECORDS: usize = 8;

fuzz_target!(|bytes: &[u8]| {
    let path = batch_path();
    std::fs::write(path, bytes).expect("write the batch file");
    match Split::open(&[path.clone()]) {
        Ok(split) => check_split(&split, bytes),
        Err(error) => check_error(&error, bytes),
    }
    // The split and its map are dropped, so the file can go.
    std::fs::remove_file(path).expect("remove the batch file");
});

/// One file per fuzzing process, written and removed for every input.
fn batch_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("cifaas-fuzz-batch-{}.bin", std::process::id()))
    })
}

fn check_split(split: &Split, bytes: &[u8]) {
    assert!(!bytes.is_empty() && bytes.len() % RECORD_BYTES == 0);
    assert_eq!(split.len(), bytes.len() / RECORD_BYTES);
    for (index, record) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        assert_eq!(split.label(index), record[0]);
        assert!(
            usize::from(record[0]) < CLASSES,
            "label {} accepted",
            record[0]
        );
        assert_eq!(split.image(index), &record[1..]);
    }
    let counts = split.label_counts();
    assert_eq!(counts.iter().sum::<usize>(), split.len());

    let stats = ChannelStats::compute(split);
    for (mean, std) in stats.mean.iter().zip(&stats.std) {
        assert!((0.0..=1.0).contains(mean), "mean {mean}");
        assert!(std.is_finite() && *std > 0.0, "std {std}");
    }
    let indices: Vec<usize> = (0..split.len().min(BATCH_RECORDS)).collect();
    let mut images = vec![0.0; indices.len() * IMAGE_BYTES];
    let mut labels = vec![0; indices.len()];
    fill_batch(split, &stats, &indices, &mut images, &mut labels).expect("fill a valid batch");
    assert!(images.iter().all(|value| value.is_finite()));
    for (&index, &label) in indices.iter().zip(&labels) {
        assert_eq!(label, usize::from(split.label(index)));
    }
}

fn check_error(error: &DataError, bytes: &[u8]) {
    let message = error.to_string();
    assert!(
        message.contains(&batch_path().display().to_string()),
        "{message}"
    );
    match error {
        DataError::EmptyFile { .. } => assert!(bytes.is_empty()),
        DataError::FileSize {
            size, remainder, ..
        } => {
            assert_eq!(*size, bytes.len() as u64);
            assert_eq!(*remainder, *size % RECORD_BYTES as u64);
            assert_ne!(*remainder, 0);
        }
        DataError::InvalidLabel {
            record,
            offset,
            label,
            ..
        } => {
            assert_eq!(*offset, (*record * RECORD_BYTES) as u64);
            assert_eq!(bytes[*record * RECORD_BYTES], *label);
            assert!(usize::from(*label) >= CLASSES);
            let earlier = bytes[..*record * RECORD_BYTES].chunks_exact(RECORD_BYTES);
            assert!(
                earlier.map(|r| r[0]).all(|l| usize::from(l) < CLASSES),
                "not the first invalid label"
            );
        }
        other => panic!("unexpected error for a readable file: {other}"),
    }
}

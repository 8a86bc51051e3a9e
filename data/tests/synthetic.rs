//! The synthetic dataset: valid, reproducible and learnable.

use std::fs;

use data::{Cifar10, Split, CLASSES, CLASS_NAMES};

#[test]
fn synthetic_is_reproducible() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    data::write_synthetic(first.path(), 15, 3).unwrap();
    data::write_synthetic(second.path(), 15, 3).unwrap();
    data::write_synthetic(other.path(), 15, 4).unwrap();

    for name in ["data_batch_1.bin", "test_batch.bin", "batches.meta.txt"] {
        let bytes = fs::read(first.path().join(name)).unwrap();
        assert!(
            bytes == fs::read(second.path().join(name)).unwrap(),
            "{name} differs"
        );
    }
    let bytes = fs::read(first.path().join("data_batch_1.bin")).unwrap();
    assert!(
        bytes != fs::read(other.path().join("data_batch_1.bin")).unwrap(),
        "seeds 3 and 4 wrote the same batch"
    );
}

#[test]
fn synthetic_files_differ() {
    let dir = tempfile::tempdir().unwrap();
    data::write_synthetic(dir.path(), 10, 1).unwrap();
    let first = fs::read(dir.path().join("data_batch_1.bin")).unwrap();
    let second = fs::read(dir.path().join("data_batch_2.bin")).unwrap();
    assert!(first != second, "two batches are identical");
}

#[test]
fn synthetic_labels_balanced() {
    let dir = tempfile::tempdir().unwrap();
    data::write_synthetic(dir.path(), 23, 6).unwrap();
    let dataset = Cifar10::open(dir.path()).unwrap();
    assert_eq!(dataset.class_names, CLASS_NAMES);

    for path in dataset.train.paths().chain(dataset.test.paths()) {
        let counts = Split::open(&[path.to_owned()]).unwrap().label_counts();
        // 23 records: three of labels 0-2, two of the rest.
        assert_eq!(counts, [3, 3, 3, 2, 2, 2, 2, 2, 2, 2], "{}", path.display());
    }
    let labels: Vec<u8> = (0..23).map(|index| dataset.test.label(index)).collect();
    let cyclic: Vec<u8> = (0..23).map(|index| (index % CLASSES) as u8).collect();
    assert_ne!(labels, cyclic, "labels are not shuffled");
}

#[test]
fn synthetic_zero_records() {
    let dir = tempfile::tempdir().unwrap();
    data::write_synthetic(dir.path(), 0, 1).unwrap();
    let size = fs::metadata(dir.path().join("test_batch.bin"))
        .unwrap()
        .len();
    assert_eq!(size, 0);
}

/// Classifies every test image by the nearest class-mean colour learnt from
/// the training split, a much weaker model than a CNN.
#[test]
fn synthetic_is_learnable() {
    let dir = tempfile::tempdir().unwrap();
    data::write_synthetic(dir.path(), 200, 12).unwrap();
    let dataset = Cifar10::open(dir.path()).unwrap();

    let mean_colour = |image: &[u8]| -> [f64; 3] {
        let mut colour = [0.0; 3];
        for (channel, plane) in image.chunks_exact(1024).enumerate() {
            colour[channel] = plane.iter().map(|&p| f64::from(p)).sum::<f64>() / 1024.0;
        }
        colour
    };
    let mut centres = [[0.0f64; 3]; CLASSES];
    let counts = dataset.train.label_counts();
    for index in 0..dataset.train.len() {
        let label = usize::from(dataset.train.label(index));
        let colour = mean_colour(dataset.train.image(index));
        for channel in 0..3 {
            centres[label][channel] += colour[channel] / counts[label] as f64;
        }
    }

    let mut correct = 0;
    for index in 0..dataset.test.len() {
        let colour = mean_colour(dataset.test.image(index));
        let distance = |centre: &[f64; 3]| -> f64 {
            centre
                .iter()
                .zip(&colour)
                .map(|(a, b)| (a - b).powi(2))
                .sum()
        };
        let predicted = (0..CLASSES)
            .min_by(|&a, &b| distance(&centres[a]).total_cmp(&distance(&centres[b])))
            .unwrap();
        if predicted == usize::from(dataset.test.label(index)) {
            correct += 1;
        }
    }
    let accuracy = f64::from(correct) / dataset.test.len() as f64;
    assert!(accuracy > 0.95, "nearest-mean accuracy {accuracy}");
}

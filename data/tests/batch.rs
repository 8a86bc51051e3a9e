//! Channel statistics, normalisation, shuffling and batch filling.

mod common;

use std::fs;

use common::{expect_err, record, write_batch};
use data::{fill_batch, shuffled_indices, ChannelStats, DataError, Split, IMAGE_BYTES};
use proptest::prelude::*;

/// Statistics that leave pixels at `p / 255`.
const IDENTITY: ChannelStats = ChannelStats {
    mean: [0.0; 3],
    std: [1.0; 3],
};

#[test]
fn normalise_by_hand() {
    let stats = ChannelStats {
        mean: [0.5, 0.25, 0.0],
        std: [0.5, 0.25, 2.0],
    };
    let mut pixels = vec![0u8; IMAGE_BYTES];
    pixels[0] = 0; // red (0, 0)
    pixels[1] = 255; // red (0, 1)
    pixels[32] = 51; // red (1, 0)
    pixels[1024] = 255; // green (0, 0)
    pixels[1024 + 1023] = 0; // green (31, 31)
    pixels[2048 + 5] = 102; // blue (0, 5)
    let mut out = vec![f32::NAN; IMAGE_BYTES];
    stats.normalise(&pixels, &mut out).unwrap();

    // (p / 255 - mean) / std, worked out by hand.
    let expected = [
        (0, -1.0),
        (1, 1.0),
        (32, -0.6),
        (1024, 3.0),
        (1024 + 1023, -1.0),
        (1024 + 7, -1.0),
        (2048 + 5, 0.2),
        (2048, 0.0),
    ];
    for (position, value) in expected {
        assert!(
            (out[position] - value).abs() < 1e-6,
            "out[{position}] = {}, expected {value}",
            out[position]
        );
    }
    assert!(
        out.iter().all(|value| value.is_finite()),
        "unwritten outputs"
    );
}

#[test]
fn normalise_several_images() {
    let pixels: Vec<u8> = (0..3 * IMAGE_BYTES).map(|i| (i % 251) as u8).collect();
    let mut out = vec![f32::NAN; pixels.len()];
    IDENTITY.normalise(&pixels, &mut out).unwrap();
    for (index, (&pixel, &value)) in pixels.iter().zip(&out).enumerate() {
        assert_eq!(value, f32::from(pixel) / 255.0, "element {index}");
    }
}

#[test]
fn normalise_rejects_bad_lengths() {
    let mut out = vec![0.0; IMAGE_BYTES];
    let error = expect_err(IDENTITY.normalise(&[0; 100], &mut out[..100]));
    assert!(matches!(error, DataError::Batch(_)), "{error:?}");
    assert!(error.to_string().contains("length 100"), "{error}");

    let error = expect_err(IDENTITY.normalise(&[0; IMAGE_BYTES], &mut out[..10]));
    assert!(error.to_string().contains("expected 3072"), "{error}");
}

#[test]
fn stats_match_direct_computation() {
    let dir = tempfile::tempdir().unwrap();
    data::write_synthetic(dir.path(), 30, 8).unwrap();
    let paths: Vec<_> = ["data_batch_1.bin", "data_batch_2.bin"]
        .iter()
        .map(|name| dir.path().join(name))
        .collect();
    let split = Split::open(&paths).unwrap();
    let stats = ChannelStats::compute(&split);

    for channel in 0..3 {
        let values: Vec<f64> = (0..split.len())
            .flat_map(|index| split.image(index)[channel * 1024..(channel + 1) * 1024].to_vec())
            .map(|pixel| f64::from(pixel) / 255.0)
            .collect();
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let variance = values
            .iter()
            .map(|value| (value - mean).powi(2))
            .sum::<f64>()
            / values.len() as f64;
        let std = variance.sqrt();
        assert!(
            (f64::from(stats.mean[channel]) - mean).abs() < 1e-6,
            "mean of channel {channel}: {} vs {mean}",
            stats.mean[channel]
        );
        assert!(
            (f64::from(stats.std[channel]) - std).abs() < 1e-6,
            "std of channel {channel}: {} vs {std}",
            stats.std[channel]
        );
    }
}

#[test]
fn stats_of_constant_images() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flat.bin");
    let mut bytes = Vec::new();
    for _ in 0..3 {
        bytes.push(0);
        bytes.extend([51u8; 1024]);
        bytes.extend([102u8; 1024]);
        bytes.extend([255u8; 1024]);
    }
    fs::write(&path, bytes).unwrap();
    let stats = ChannelStats::compute(&Split::open(&[path]).unwrap());
    assert_eq!(stats.mean, [0.2, 0.4, 1.0]);
    assert_eq!(stats.std, [1.0; 3], "zero spread falls back to std 1");
}

#[test]
fn stats_of_empty_split() {
    let stats = ChannelStats::compute(&Split::open(&[]).unwrap());
    assert_eq!(stats, IDENTITY);
}

#[test]
fn shuffle_is_deterministic() {
    assert_eq!(shuffled_indices(1000, 42, 3), shuffled_indices(1000, 42, 3));
}

#[test]
fn shuffle_differs_across_epochs() {
    let orders: Vec<Vec<usize>> = (0..10)
        .map(|epoch| shuffled_indices(1000, 42, epoch))
        .collect();
    for first in 0..orders.len() {
        for second in first + 1..orders.len() {
            assert_ne!(orders[first], orders[second], "epochs {first} and {second}");
        }
    }
}

#[test]
fn shuffle_differs_across_seeds() {
    assert_ne!(shuffled_indices(1000, 1, 0), shuffled_indices(1000, 2, 0));
    assert_ne!(shuffled_indices(1000, 0, 1), shuffled_indices(1000, 1, 0));
}

#[test]
fn shuffle_of_tiny_lengths() {
    assert_eq!(shuffled_indices(0, 5, 5), Vec::<usize>::new());
    assert_eq!(shuffled_indices(1, 5, 5), [0]);
}

#[test]
fn shuffle_moves_most_indices() {
    let order = shuffled_indices(10_000, 7, 0);
    let fixed = order.iter().enumerate().filter(|(i, &v)| *i == v).count();
    // A uniform permutation has one fixed point on average.
    assert!(fixed < 10, "{fixed} fixed points");
}

proptest! {
    #[test]
    fn shuffle_is_permutation(len in 0usize..3000, seed: u64, epoch: u64) {
        let mut order = shuffled_indices(len, seed, epoch);
        prop_assert_eq!(order.len(), len);
        order.sort_unstable();
        prop_assert!(order.iter().copied().eq(0..len));
    }
}

/// Writes a split of five hand-made records with labels 4, 0, 9, 2, 7.
fn five_records() -> (tempfile::TempDir, Split) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("five.bin");
    write_batch(&path, &[4, 0, 9, 2, 7], 0);
    let split = Split::open(&[path]).unwrap();
    (dir, split)
}

#[test]
fn fill_batch_layout() {
    let (_dir, split) = five_records();
    let indices = [3, 0, 3, 4];
    let mut images = vec![f32::NAN; indices.len() * IMAGE_BYTES];
    let mut labels = vec![usize::MAX; indices.len()];
    fill_batch(&split, &IDENTITY, &indices, &mut images, &mut labels).unwrap();

    assert_eq!(labels, [2, 4, 2, 7]);
    for (slot, &index) in indices.iter().enumerate() {
        let expected = &record(split.label(index), index)[1..];
        for channel in 0..3 {
            for (y, x) in [(0, 0), (0, 31), (17, 5), (31, 31)] {
                let source = channel * 1024 + y * 32 + x;
                let target = slot * IMAGE_BYTES + source;
                assert_eq!(
                    images[target],
                    f32::from(expected[source]) / 255.0,
                    "batch slot {slot}, channel {channel}, row {y}, column {x}"
                );
            }
        }
        let image = &images[slot * IMAGE_BYTES..(slot + 1) * IMAGE_BYTES];
        let bytes: Vec<f32> = expected.iter().map(|&p| f32::from(p) / 255.0).collect();
        assert_eq!(image, bytes.as_slice(), "batch slot {slot}");
    }
}

#[test]
fn fill_batch_applies_stats() {
    let (_dir, split) = five_records();
    let stats = ChannelStats {
        mean: [0.1, 0.2, 0.3],
        std: [0.5, 0.25, 0.125],
    };
    let mut images = vec![f32::NAN; IMAGE_BYTES];
    let mut labels = [0];
    fill_batch(&split, &stats, &[1], &mut images, &mut labels).unwrap();

    let mut expected = vec![0.0; IMAGE_BYTES];
    stats.normalise(split.image(1), &mut expected).unwrap();
    assert_eq!(images, expected);
    assert_eq!(labels, [0]);
}

#[test]
fn fill_batch_rejects_bad_buffers() {
    let (_dir, split) = five_records();
    let mut images = vec![f32::NAN; 2 * IMAGE_BYTES];
    let mut labels = [usize::MAX; 2];

    let error = expect_err(fill_batch(
        &split,
        &IDENTITY,
        &[0],
        &mut images,
        &mut labels[..1],
    ));
    assert!(matches!(error, DataError::Batch(_)), "{error:?}");
    assert!(error.to_string().contains("expected 3072"), "{error}");

    let error = expect_err(fill_batch(
        &split,
        &IDENTITY,
        &[0, 1],
        &mut images,
        &mut labels[..1],
    ));
    assert!(
        error.to_string().contains("labels buffer has length 1"),
        "{error}"
    );
    assert!(
        images.iter().all(|value| value.is_nan()),
        "images written on error"
    );
}

#[test]
fn fill_batch_rejects_bad_index() {
    let (_dir, split) = five_records();
    let mut images = vec![f32::NAN; 2 * IMAGE_BYTES];
    let mut labels = [usize::MAX; 2];

    let error = expect_err(fill_batch(
        &split,
        &IDENTITY,
        &[1, 5],
        &mut images,
        &mut labels,
    ));
    assert!(
        matches!(error, DataError::IndexOutOfRange { index: 5, len: 5 }),
        "{error:?}"
    );
    assert!(error.to_string().contains("record index 5"), "{error}");
    assert!(
        images.iter().all(|value| value.is_nan()),
        "images written on error"
    );
    assert_eq!(labels, [usize::MAX; 2], "labels written on error");
}

#[test]
fn fill_batch_of_no_indices() {
    let (_dir, split) = five_records();
    fill_batch(&split, &IDENTITY, &[], &mut [], &mut []).unwrap();
}

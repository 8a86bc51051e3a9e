//! Random crop and flip: each output pixel against a plain-loop reference,
//! the draws' range, and their independence from everything but the seed,
//! the epoch and the record index.

mod common;

use std::collections::HashSet;

use common::write_batch;
use data::{
    fill_batch, fill_batch_augmented, Augment, ChannelStats, Split, Transform, IMAGE_BYTES,
};
use proptest::prelude::*;

/// Statistics that leave pixels at `p / 255`.
const IDENTITY: ChannelStats = ChannelStats {
    mean: [0.0; 3],
    std: [1.0; 3],
};

fn split_of(records: usize) -> (tempfile::TempDir, Split) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("batch.bin");
    let labels: Vec<u8> = (0..records).map(|i| (i % 10) as u8).collect();
    write_batch(&path, &labels, 3);
    let split = Split::open(&[path]).unwrap();
    (dir, split)
}

/// The transformed pixel at (`channel`, `y`, `x`), written as the
/// definition reads: pad with 4 black pixels, crop at (`top`, `left`), then
/// mirror.
fn reference_pixel(image: &[u8], transform: Transform, channel: usize, y: usize, x: usize) -> u8 {
    let x = if transform.flip { 31 - x } else { x };
    let padded_y = y + transform.top;
    let padded_x = x + transform.left;
    if !(4..36).contains(&padded_y) || !(4..36).contains(&padded_x) {
        return 0;
    }
    image[channel * 1024 + (padded_y - 4) * 32 + (padded_x - 4)]
}

proptest! {
    #[test]
    fn augmented_pixels_match_reference(seed in any::<u64>(), epoch in 1..50u64) {
        let (_dir, split) = split_of(6);
        let augment = Augment { seed, epoch };
        let indices = [5, 0, 2];
        let mut images = vec![f32::NAN; indices.len() * IMAGE_BYTES];
        let mut labels = vec![0; indices.len()];
        fill_batch_augmented(&split, &IDENTITY, &indices, Some(&augment), &mut images, &mut labels)
            .unwrap();
        for (slot, &index) in indices.iter().enumerate() {
            let transform = augment.transform(index);
            let image = split.image(index);
            for channel in 0..3 {
                for y in 0..32 {
                    for x in 0..32 {
                        let expected = f32::from(reference_pixel(image, transform, channel, y, x)) / 255.0;
                        let got = images[slot * IMAGE_BYTES + channel * 1024 + y * 32 + x];
                        prop_assert_eq!(got, expected, "slot {} channel {} ({}, {}) {:?}", slot, channel, y, x, transform);
                    }
                }
            }
            prop_assert_eq!(labels[slot], usize::from(split.label(index)));
        }
    }
}

#[test]
fn centred_unflipped_transform_is_identity() {
    let (_dir, split) = split_of(2);
    let mut plain = vec![0.0; IMAGE_BYTES];
    let mut labels = [0];
    fill_batch(&split, &IDENTITY, &[1], &mut plain, &mut labels).unwrap();
    let identity = Transform {
        top: 4,
        left: 4,
        flip: false,
    };
    for channel in 0..3 {
        for y in 0..32 {
            for x in 0..32 {
                let pixel = reference_pixel(split.image(1), identity, channel, y, x);
                assert_eq!(plain[channel * 1024 + y * 32 + x], f32::from(pixel) / 255.0);
            }
        }
    }
}

#[test]
fn padding_is_black_after_normalisation() {
    let (_dir, split) = split_of(1);
    let stats = ChannelStats {
        mean: [0.5, 0.4, 0.3],
        std: [0.25, 0.2, 0.1],
    };
    // Find a draw that shifts the image down, so the top row is padding.
    let (augment, transform) = (0..1000)
        .map(|seed| Augment { seed, epoch: 1 })
        .map(|augment| (augment, augment.transform(0)))
        .find(|(_, t)| t.top == 0)
        .expect("a draw with the crop at the top of the padding");
    let mut images = vec![f32::NAN; IMAGE_BYTES];
    fill_batch_augmented(&split, &stats, &[0], Some(&augment), &mut images, &mut [0]).unwrap();
    for channel in 0..3 {
        let black = (0.0 - stats.mean[channel]) / stats.std[channel];
        let row = &images[channel * 1024..][..32];
        assert!(
            row.iter().all(|&v| v == black),
            "channel {channel}: {row:?} ({transform:?})"
        );
    }
}

#[test]
fn draws_cover_every_offset_and_flip() {
    let augment = Augment { seed: 7, epoch: 3 };
    let mut tops = HashSet::new();
    let mut lefts = HashSet::new();
    let mut flips = HashSet::new();
    for index in 0..2000 {
        let transform = augment.transform(index);
        assert!(transform.top <= 8 && transform.left <= 8, "{transform:?}");
        tops.insert(transform.top);
        lefts.insert(transform.left);
        flips.insert(transform.flip);
    }
    assert_eq!(tops.len(), 9);
    assert_eq!(lefts.len(), 9);
    assert_eq!(flips.len(), 2);
}

#[test]
fn draws_depend_on_seed_epoch_and_index() {
    let base = Augment { seed: 1, epoch: 1 };
    let draws = |augment: Augment| (0..64).map(|i| augment.transform(i)).collect::<Vec<_>>();
    assert_eq!(draws(base), draws(base), "same key, same draws");
    assert_ne!(draws(base), draws(Augment { seed: 2, epoch: 1 }), "seed");
    assert_ne!(draws(base), draws(Augment { seed: 1, epoch: 2 }), "epoch");
    let shifted: Vec<Transform> = (1..65).map(|i| base.transform(i)).collect();
    assert_ne!(draws(base), shifted, "index");
}

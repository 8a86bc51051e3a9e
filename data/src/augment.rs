//! Training-time augmentation: a random crop of the image padded with
//! black pixels, and a random horizontal flip.
//!
//! Each image's crop offset and flip come from a generator keyed by the
//! training seed, the epoch and the record index, so an augmented batch
//! depends on nothing else: not on the thread that builds it, nor on the
//! order in which chunks run.

use crate::rng::{mix64, SplitMix64};
use crate::IMAGE_BYTES;

/// Pixels of black padding on each side before the 32x32 crop, so the crop
/// moves the image by -4 to +4 pixels in each direction.
pub const CROP_PADDING: usize = 4;

/// Side of a CIFAR-10 image, in pixels.
const SIDE: usize = 32;

/// The seed and epoch that key the augmentation of one epoch's batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Augment {
    /// Training seed.
    pub seed: u64,
    /// 1-based epoch.
    pub epoch: u64,
}

/// The crop offset and flip drawn for one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transform {
    /// Row of the padded image at which the crop starts, `0..=8`.
    pub top: usize,
    /// Column of the padded image at which the crop starts, `0..=8`.
    pub left: usize,
    /// Mirror the crop left to right.
    pub flip: bool,
}

impl Augment {
    /// Draws the transform of the record `index`.
    pub fn transform(&self, index: usize) -> Transform {
        let key = mix64(self.seed) ^ mix64(self.epoch.wrapping_add(0x6175_676d));
        let mut rng = SplitMix64::keyed(key, index as u64);
        let positions = 2 * CROP_PADDING as u64 + 1;
        let top = rng.below(positions) as usize;
        let left = rng.below(positions) as usize;
        let flip = rng.next_u64() & 1 == 1;
        Transform { top, left, flip }
    }
}

impl Transform {
    /// Writes the transformed `image` (3072 bytes, CIFAR layout) into `out`
    /// (3072 values), mapping each byte, and the black padding as byte 0,
    /// through the channel's `table`.
    pub(crate) fn apply(&self, tables: &[[f32; 256]; 3], image: &[u8], out: &mut [f32]) {
        debug_assert_eq!(image.len(), IMAGE_BYTES);
        debug_assert_eq!(out.len(), IMAGE_BYTES);
        let plane = SIDE * SIDE;
        for (channel, table) in tables.iter().enumerate() {
            let source = &image[channel * plane..][..plane];
            let target = &mut out[channel * plane..][..plane];
            for (row, target_row) in target.chunks_exact_mut(SIDE).enumerate() {
                // The padded image's row `row + top` is the source row
                // `row + top - CROP_PADDING`, black outside the image.
                let source_row = (row + self.top).checked_sub(CROP_PADDING);
                let source_row = source_row
                    .filter(|&r| r < SIDE)
                    .map(|r| &source[r * SIDE..][..SIDE]);
                for (column, value) in target_row.iter_mut().enumerate() {
                    let column = if self.flip { SIDE - 1 - column } else { column };
                    let source_column = (column + self.left).checked_sub(CROP_PADDING);
                    let byte = match (source_row, source_column) {
                        (Some(pixels), Some(c)) if c < SIDE => pixels[c],
                        _ => 0,
                    };
                    *value = table[usize::from(byte)];
                }
            }
        }
    }
}

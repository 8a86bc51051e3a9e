//! Channel statistics, normalisation to f32 and shuffled mini-batches.

use crate::augment::Augment;
use crate::rng::SplitMix64;
use crate::{DataError, Result, Split, IMAGE_BYTES};

/// Bytes of one colour plane: 32 x 32.
const PLANE_BYTES: usize = IMAGE_BYTES / 3;

/// Per-channel mean and standard deviation of pixel values scaled to `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelStats {
    /// Mean of red, green and blue.
    pub mean: [f32; 3],
    /// Standard deviation of red, green and blue.
    pub std: [f32; 3],
}

impl ChannelStats {
    /// Computes the statistics over every image of `split`.
    ///
    /// The standard deviation is the population one (divided by the pixel
    /// count). A channel with no spread gets std 1, so that
    /// [`ChannelStats::normalise`] never divides by zero. An empty split gets
    /// mean 0 and std 1 in every channel.
    pub fn compute(split: &Split) -> Self {
        let mut sums = [0u64; 3];
        let mut squares = [0u64; 3];
        for index in 0..split.len() {
            let planes = split.image(index).chunks_exact(PLANE_BYTES);
            for (channel, plane) in planes.enumerate() {
                // One plane sums to at most 1024 * 255^2 < 2^32, so u32 is
                // exact here and the running totals stay in u64.
                let mut sum = 0u32;
                let mut square = 0u32;
                for &pixel in plane {
                    let value = u32::from(pixel);
                    sum += value;
                    square += value * value;
                }
                sums[channel] += u64::from(sum);
                squares[channel] += u64::from(square);
            }
        }

        let pixels = (split.len() * PLANE_BYTES) as u128;
        let mut stats = Self {
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        if pixels == 0 {
            return stats;
        }
        for channel in 0..3 {
            let sum = u128::from(sums[channel]);
            // pixels^2 * 255^2 * variance, exact in integers, so that zero
            // spread is detected without rounding error.
            let spread = pixels * u128::from(squares[channel]) - sum * sum;
            let scale = pixels as f64 * 255.0;
            stats.mean[channel] = (sum as f64 / scale) as f32;
            if spread > 0 {
                stats.std[channel] = ((spread as f64).sqrt() / scale) as f32;
            }
        }
        stats
    }

    /// Converts CIFAR-layout images (`n * 3072` bytes) to normalised NCHW
    /// f32, `(pixel / 255 - mean) / std`, overwriting `out` (`n * 3072`).
    ///
    /// A CIFAR record already stores its image as CHW, so the conversion is
    /// element by element.
    ///
    /// # Errors
    /// [`DataError::Batch`] when `pixels` is not a whole number of images or
    /// `out` has a different length.
    pub fn normalise(&self, pixels: &[u8], out: &mut [f32]) -> Result<()> {
        if pixels.len() % IMAGE_BYTES != 0 {
            return Err(DataError::Batch(format!(
                "pixels have length {}, which is not a multiple of the 3072-byte image",
                pixels.len()
            )));
        }
        if out.len() != pixels.len() {
            return Err(DataError::Batch(format!(
                "output has length {}, expected {} for {} images",
                out.len(),
                pixels.len(),
                pixels.len() / IMAGE_BYTES
            )));
        }
        let table = Table::new(self);
        for (image, out) in pixels
            .chunks_exact(IMAGE_BYTES)
            .zip(out.chunks_exact_mut(IMAGE_BYTES))
        {
            table.apply(image, out);
        }
        Ok(())
    }
    /// Converts CIFAR-layout images given as `f32` pixel values on the
    /// 0..=255 scale (`n * 3072`) by the same formula as [`Self::normalise`],
    /// so a whole-number value gives exactly the bits its byte would.
    ///
    /// # Errors
    /// [`DataError::Batch`] for the lengths [`Self::normalise`] rejects.
    pub fn normalise_pixels(&self, pixels: &[f32], out: &mut [f32]) -> Result<()> {
        if pixels.len() % IMAGE_BYTES != 0 || out.len() != pixels.len() {
            return Err(DataError::Batch(format!(
                "pixels have length {} and the output {}: both must be the same multiple \
                 of the 3072-value image",
                pixels.len(),
                out.len()
            )));
        }
        for (image, out) in pixels
            .chunks_exact(IMAGE_BYTES)
            .zip(out.chunks_exact_mut(IMAGE_BYTES))
        {
            let planes = image.chunks_exact(PLANE_BYTES);
            let out_planes = out.chunks_exact_mut(PLANE_BYTES);
            for (channel, (plane, out_plane)) in planes.zip(out_planes).enumerate() {
                let (mean, std) = (self.mean[channel], self.std[channel]);
                for (value, &pixel) in out_plane.iter_mut().zip(plane) {
                    *value = (pixel / 255.0 - mean) / std;
                }
            }
        }
        Ok(())
    }
}

/// The normalised value of every byte, per channel, so that converting a
/// pixel is one lookup and each value follows the formula exactly.
struct Table {
    values: [[f32; 256]; 3],
}

impl Table {
    fn new(stats: &ChannelStats) -> Self {
        let mut values = [[0.0; 256]; 3];
        for (channel, row) in values.iter_mut().enumerate() {
            for (byte, value) in row.iter_mut().enumerate() {
                *value = (byte as f32 / 255.0 - stats.mean[channel]) / stats.std[channel];
            }
        }
        Self { values }
    }

    /// Converts one 3072-byte image into `out` (3072 floats).
    fn apply(&self, image: &[u8], out: &mut [f32]) {
        let planes = image.chunks_exact(PLANE_BYTES);
        let out_planes = out.chunks_exact_mut(PLANE_BYTES);
        for ((row, plane), out_plane) in self.values.iter().zip(planes).zip(out_planes) {
            for (value, &pixel) in out_plane.iter_mut().zip(plane) {
                *value = row[usize::from(pixel)];
            }
        }
    }
}

/// Yields the record indices `0..len` in a seeded random order; the same
/// `(seed, epoch)` gives the same order.
///
/// The order is a Fisher-Yates shuffle driven by SplitMix64 keyed by both
/// values, so each epoch of one seed gets its own order.
pub fn shuffled_indices(len: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut rng = SplitMix64::keyed(seed, epoch);
    let mut indices: Vec<usize> = (0..len).collect();
    for last in (1..len).rev() {
        let other = rng.below(last as u64 + 1) as usize;
        indices.swap(last, other);
    }
    indices
}

/// Copies the records named by `indices` into `images` (normalised NCHW
/// f32, `indices.len() * 3072`) and `labels` (`indices.len()`).
///
/// Every index and length is checked before anything is written, so on error
/// both buffers are unchanged.
///
/// # Errors
/// [`DataError::Batch`] when a buffer length does not match, and
/// [`DataError::IndexOutOfRange`] when an index is at or past `split.len()`.
pub fn fill_batch(
    split: &Split,
    stats: &ChannelStats,
    indices: &[usize],
    images: &mut [f32],
    labels: &mut [usize],
) -> Result<()> {
    fill_batch_augmented(split, stats, indices, None, images, labels)
}

/// Copies the records named by `indices` as [`fill_batch`] does, each image
/// randomly cropped and flipped by `augment` when given (see
/// [`Augment::transform`]).
///
/// # Errors
/// As [`fill_batch`].
pub fn fill_batch_augmented(
    split: &Split,
    stats: &ChannelStats,
    indices: &[usize],
    augment: Option<&Augment>,
    images: &mut [f32],
    labels: &mut [usize],
) -> Result<()> {
    if images.len() != indices.len() * IMAGE_BYTES {
        return Err(DataError::Batch(format!(
            "images buffer has length {}, expected {} (3072 floats for each of {} indices)",
            images.len(),
            indices.len() * IMAGE_BYTES,
            indices.len()
        )));
    }
    if labels.len() != indices.len() {
        return Err(DataError::Batch(format!(
            "labels buffer has length {}, expected {} (one for each index)",
            labels.len(),
            indices.len()
        )));
    }
    if let Some(&index) = indices.iter().find(|&&index| index >= split.len()) {
        return Err(DataError::IndexOutOfRange {
            index,
            len: split.len(),
        });
    }

    let table = Table::new(stats);
    let outputs = images.chunks_exact_mut(IMAGE_BYTES).zip(labels.iter_mut());
    for (&index, (image, label)) in indices.iter().zip(outputs) {
        match augment {
            Some(augment) => {
                let transform = augment.transform(index);
                transform.apply(&table.values, split.image(index), image);
            }
            None => table.apply(split.image(index), image),
        }
        *label = usize::from(split.label(index));
    }
    Ok(())
}

//! The network's parameters and inference.

use data::ChannelStats;
use kernels::{softmax, Dropout};
use rayon::prelude::*;

use crate::chunk::Chunk;
use crate::layers::{Layers, INPUT};
use crate::packed::PackedCache;
use crate::params::{initialise, parameter_count};
use crate::{ModelError, Result, CLASSES};

/// Bytes of one input image in CIFAR layout.
pub const IMAGE_BYTES: usize = INPUT[0] * INPUT[1] * INPUT[2];

/// Images per forward pass during inference.
const INFERENCE_BATCH: usize = 100;

/// Images per chunk of an inference batch; chunks run in parallel. In
/// alternating runs of
/// `cifaas-perf infer` (10,000 images, batch 100) chunks of 8 took about 3%
/// less time than chunks of 4 at 1 thread and 4 to 10% less at 2 threads.
/// Chunks of 16 took the same as 8. The runs vary by several percent.
pub(crate) const INFERENCE_CHUNK: usize = 8;

/// The network: Conv(3->32, 3x3, pad 1) -> ReLU -> Dropout ->
/// Conv(32->32, 3x3, pad 1) -> MaxPool 2x2 -> Conv(32->64, 3x3, pad 1) ->
/// ReLU -> Dropout -> Conv(64->64, 3x3, pad 1) -> MaxPool 2x2 ->
/// Linear(4096->10), with the normalisation its inputs need.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// Changed only through [`Network::params_mut`], which drops `packed`.
    pub(crate) params: Vec<f32>,
    pub(crate) dropout: Dropout,
    pub(crate) stats: ChannelStats,
    /// The convolution weights laid out for inference, made on first use.
    packed: PackedCache,
}

impl Network {
    /// Builds a network with seeded initial parameters, drawn as PyTorch
    /// draws them by default: uniform in `[-1/sqrt(fan_in), 1/sqrt(fan_in))`
    /// for every weight and bias.
    ///
    /// # Errors
    /// [`ModelError::Config`] when `dropout` is not in `[0, 1)`.
    pub fn new(seed: u64, dropout: f32, stats: ChannelStats) -> Result<Self> {
        let dropout = Dropout::new(dropout)
            .map_err(|err| ModelError::Config(format!("{err}; pass a dropout in [0, 1)")))?;
        Ok(Self {
            params: initialise(seed),
            dropout,
            stats,
            packed: PackedCache::default(),
        })
    }

    /// Builds a network from a flat parameter vector in the order of
    /// [`crate::TENSORS`].
    ///
    /// # Errors
    /// [`ModelError::Config`] when the length or the dropout is wrong.
    pub fn from_parameters(params: Vec<f32>, dropout: f32, stats: ChannelStats) -> Result<Self> {
        if params.len() != parameter_count() {
            return Err(ModelError::Config(format!(
                "{} parameters given, the network has {}",
                params.len(),
                parameter_count()
            )));
        }
        let mut network = Self::new(0, dropout, stats)?;
        *network.params_mut() = params;
        Ok(network)
    }

    /// The normalisation applied to input pixels.
    pub fn stats(&self) -> ChannelStats {
        self.stats
    }

    /// The drop probability of both dropout layers during training.
    pub fn dropout(&self) -> f32 {
        self.dropout.p()
    }

    /// All parameters, flat, in the order of [`crate::TENSORS`].
    pub fn parameters(&self) -> &[f32] {
        &self.params
    }

    /// Returns the parameters for changing and drops the weights packed for
    /// inference, so the next inference packs them again.
    pub(crate) fn params_mut(&mut self) -> &mut Vec<f32> {
        self.packed = PackedCache::default();
        &mut self.params
    }

    /// Returns the class probabilities of CIFAR-layout images (`n * 3072`
    /// bytes), one row of [`CLASSES`] per image, with dropout off.
    ///
    /// # Errors
    /// [`ModelError::Input`] when the length is not a positive multiple of
    /// 3072.
    pub fn predict(&self, images: &[u8]) -> Result<Vec<[f32; CLASSES]>> {
        let count = image_count(images.len(), "bytes of pixels")?;
        self.predict_with(count, |first, input| {
            let pixels = &images[first * IMAGE_BYTES..][..input.len()];
            self.stats
                .normalise(pixels, input)
                .map_err(ModelError::from)
        })
    }

    /// Returns the class probabilities of CIFAR-layout images given as
    /// `f32` pixel values on the 0..=255 scale (`n * 3072` values). Whole
    /// numbers give exactly the rows [`Self::predict`] gives for the same
    /// bytes.
    ///
    /// # Errors
    /// [`ModelError::Input`] when the length is not a positive multiple of
    /// 3072.
    pub fn predict_pixels(&self, pixels: &[f32]) -> Result<Vec<[f32; CLASSES]>> {
        let count = image_count(pixels.len(), "pixel values")?;
        self.predict_with(count, |first, input| {
            let pixels = &pixels[first * IMAGE_BYTES..][..input.len()];
            self.stats
                .normalise_pixels(pixels, input)
                .map_err(ModelError::from)
        })
    }

    /// Runs `count` images through the network in batches of at most
    /// [`INFERENCE_BATCH`]; `fill(first, input)` normalises images
    /// `first..` (counted from the start of the whole input) into `input`.
    fn predict_with<F>(&self, count: usize, fill: F) -> Result<Vec<[f32; CLASSES]>>
    where
        F: Fn(usize, &mut [f32]) -> Result<()> + Sync,
    {
        let mut inference = Inference::new(self, count.min(INFERENCE_BATCH))?;
        let mut rows = Vec::with_capacity(count);
        let mut logits = vec![0.0; count.min(INFERENCE_BATCH) * CLASSES];
        let mut probabilities = vec![0.0; logits.len()];
        for batch_first in (0..count).step_by(INFERENCE_BATCH) {
            let batch_count = (count - batch_first).min(INFERENCE_BATCH);
            let fill = |first: usize, input: &mut [f32]| fill(batch_first + first, input);
            let (logits, probabilities) = (
                &mut logits[..batch_count * CLASSES],
                &mut probabilities[..batch_count * CLASSES],
            );
            inference.logits(batch_count, fill, logits)?;
            softmax(logits, CLASSES, probabilities)?;
            rows.extend(probabilities.chunks_exact(CLASSES).map(|row| {
                let mut out = [0.0; CLASSES];
                out.copy_from_slice(row);
                out
            }));
        }
        Ok(rows)
    }
}

/// Returns how many images `len` values hold, rejecting an empty input or
/// a partial image; `unit` names the values in the message.
fn image_count(len: usize, unit: &str) -> Result<usize> {
    if len == 0 || len % IMAGE_BYTES != 0 {
        return Err(ModelError::Input(format!(
            "{len} {unit}; send a positive multiple of {IMAGE_BYTES} \
             (3 planes of 32 x 32, red then green then blue)"
        )));
    }
    Ok(len / IMAGE_BYTES)
}

/// Reusable buffers for inference at up to a fixed batch size, one chunk of
/// [`INFERENCE_CHUNK`] images per parallel task.
pub(crate) struct Inference<'a> {
    network: &'a Network,
    chunks: Vec<Chunk>,
}

impl<'a> Inference<'a> {
    pub(crate) fn new(network: &'a Network, capacity: usize) -> Result<Self> {
        let chunks = (0..capacity.div_ceil(INFERENCE_CHUNK))
            .map(|index| {
                Chunk::new(
                    (capacity - index * INFERENCE_CHUNK).min(INFERENCE_CHUNK),
                    false,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { network, chunks })
    }

    /// Writes the logits (`[count, 10]`) of `count` images to `logits`.
    /// `fill(first, input)` normalises images `first..` of the batch into
    /// a chunk's input buffer. Chunks run in parallel, except a lone chunk,
    /// which runs on the calling thread.
    pub(crate) fn logits<F>(&mut self, count: usize, fill: F, logits: &mut [f32]) -> Result<()>
    where
        F: Fn(usize, &mut [f32]) -> Result<()> + Sync,
    {
        debug_assert!(count <= self.chunks.iter().map(|c| c.logits.len() / CLASSES).sum());
        let network = self.network;
        let packed = network.packed.get(&network.params)?;
        let run = |index: usize, chunk: &mut Chunk, out: &mut [f32]| -> Result<()> {
            let images = out.len() / CLASSES;
            fill(
                index * INFERENCE_CHUNK,
                &mut chunk.input[..images * IMAGE_BYTES],
            )?;
            let layers = Layers::new(images)?;
            let convs = packed.convs();
            chunk.forward(&network.params, convs, &layers, &network.dropout, None)?;
            out.copy_from_slice(&chunk.logits[..images * CLASSES]);
            Ok(())
        };
        let chunk_count = count.div_ceil(INFERENCE_CHUNK);
        let chunks = &mut self.chunks[..chunk_count];
        let logits = &mut logits[..count * CLASSES];
        if chunk_count == 1 {
            return run(0, &mut chunks[0], logits);
        }
        chunks
            .par_iter_mut()
            .zip(logits.par_chunks_mut(INFERENCE_CHUNK * CLASSES))
            .enumerate()
            .try_for_each(|(index, (chunk, out))| run(index, chunk, out))
    }
}

/// Index of the largest value of a row; of ties, the first.
pub(crate) fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns five images that contain every byte value in each channel.
    /// Five images take both the one-chunk and the parallel path of
    /// `Inference::logits`.
    fn images() -> Vec<u8> {
        (0..5 * IMAGE_BYTES)
            .map(|index| (index * 7 % 256) as u8)
            .collect()
    }

    fn network() -> Network {
        let stats = ChannelStats {
            mean: [0.49, 0.48, 0.45],
            std: [0.25, 0.24, 0.26],
        };
        Network::new(3, 0.25, stats).unwrap()
    }

    #[test]
    fn predict_pixels_matches_predict_bits() {
        let network = network();
        let bytes = images();
        let pixels: Vec<f32> = bytes.iter().map(|&byte| f32::from(byte)).collect();
        let from_bytes = network.predict(&bytes).unwrap();
        let from_pixels = network.predict_pixels(&pixels).unwrap();
        assert_eq!(from_bytes.len(), 5);
        assert_eq!(from_pixels.len(), 5);
        for (image, (left, right)) in from_bytes.iter().zip(&from_pixels).enumerate() {
            let left = left.map(f32::to_bits);
            let right = right.map(f32::to_bits);
            assert_eq!(left, right, "image {image}");
        }
    }

    #[test]
    fn predict_pixels_sees_fractions() {
        let network = network();
        let whole = vec![100.0; IMAGE_BYTES];
        let fraction = vec![100.5; IMAGE_BYTES];
        let whole = network.predict_pixels(&whole).unwrap();
        let fraction = network.predict_pixels(&fraction).unwrap();
        assert_ne!(whole, fraction);
    }

    #[test]
    fn predict_pixels_rejects_partial_image() {
        let network = network();
        let error = network.predict_pixels(&[0.0; 100]).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("100 pixel values"), "{message}");
        assert!(network.predict_pixels(&[]).is_err());
    }
}

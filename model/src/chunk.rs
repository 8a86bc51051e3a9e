//! The forward and backward passes of the network over one chunk of a
//! batch, with buffers allocated once and reused for every step.
//!
//! A batch is split into chunks of a fixed number of images. Each chunk
//! runs its whole pass on one thread with the serial kernels, so the work
//! of a chunk, and its partial gradient, do not depend on the thread count.

use data::{fill_batch_augmented, Augment, ChannelStats, Split};
use kernels::{
    conv2d_backward_serial, conv2d_maxpool2d_forward, conv2d_relu_dropout_forward,
    linear_backward_serial, linear_forward_serial, maxpool2d_backward_bias,
    relu_dropout_backward_bias, softmax_cross_entropy_smoothed_sum, ChunkMask, ConvScratch,
    ConvWeights, Dropout, LinearGrads,
};

use crate::layers::Layers;
use crate::network::{argmax, IMAGE_BYTES};
use crate::packed::StepWeights;
use crate::params::{layer_ranges, CONV1, CONV2, CONV3, CONV4, FC};
use crate::{Result, CLASSES};

/// Seeds of the two dropout layers for one training step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DropoutSeeds {
    pub(crate) first: u64,
    pub(crate) second: u64,
}

/// The position of a training chunk in its batch, the batch size that
/// scales its loss, the dropout seeds of the step, and the augmentation and
/// label smoothing of the run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkPlace {
    /// Index in the batch of the chunk's first image.
    pub(crate) first_image: usize,
    /// Images in the whole batch; the loss is the batch mean.
    pub(crate) batch: usize,
    pub(crate) seeds: DropoutSeeds,
    /// The epoch's random crops and flips, when the run augments.
    pub(crate) augment: Option<Augment>,
    /// Label smoothing of the loss.
    pub(crate) smoothing: f32,
}

/// Gradient buffers of the backward pass. Gradients of same-sized
/// activations take turns in two buffers, because each is dead once the
/// next is computed.
struct Gradients {
    logits: Vec<f32>,
    pool2: Vec<f32>,
    block2: [Vec<f32>; 2],
    pool1: Vec<f32>,
    block1: [Vec<f32>; 2],
}

/// Every buffer one chunk's pass writes, for up to `capacity` images.
pub(crate) struct Chunk {
    capacity: usize,
    /// Normalised input, `[capacity, 3, 32, 32]`.
    pub(crate) input: Vec<f32>,
    labels: Vec<usize>,
    /// Conv1 after bias, ReLU and dropout, `[capacity, 32, 32, 32]`.
    act1: Vec<f32>,
    /// Conv2 pooled, `[capacity, 32, 16, 16]`, and each window's argmax.
    pool1: Vec<f32>,
    argmax1: Vec<u32>,
    /// Conv3 after bias, ReLU and dropout, `[capacity, 64, 16, 16]`.
    act3: Vec<f32>,
    /// Conv4 pooled, `[capacity, 64, 8, 8]`, and each window's argmax.
    pool2: Vec<f32>,
    argmax2: Vec<u32>,
    /// Class scores, `[capacity, 10]`.
    pub(crate) logits: Vec<f32>,
    /// Empty buffers in a chunk built for inference.
    grad: Gradients,
    scratch: ConvScratch,
    /// The summed loss and the correct predictions of the last training pass.
    pub(crate) loss_sum: f64,
    pub(crate) correct: usize,
}

impl Chunk {
    /// Allocates buffers for `capacity` images; `training` adds the ones
    /// only the backward pass needs.
    pub(crate) fn new(capacity: usize, training: bool) -> Result<Self> {
        let layers = Layers::new(capacity)?;
        let block1 = layers.conv1.output().len();
        let pooled1 = layers.pool1.output().len();
        let block2 = layers.conv3.output().len();
        let pooled2 = layers.pool2.output().len();
        let logits = capacity * CLASSES;
        let train_only = |len: usize| if training { vec![0.0; len] } else { Vec::new() };
        let convs = [layers.conv1, layers.conv2, layers.conv3, layers.conv4];
        Ok(Self {
            capacity,
            input: vec![0.0; layers.conv1.input().len()],
            labels: vec![0; capacity],
            act1: vec![0.0; block1],
            pool1: vec![0.0; pooled1],
            argmax1: vec![0; pooled1],
            act3: vec![0.0; block2],
            pool2: vec![0.0; pooled2],
            argmax2: vec![0; pooled2],
            logits: vec![0.0; logits],
            grad: Gradients {
                logits: train_only(logits),
                pool2: train_only(pooled2),
                block2: [train_only(block2), train_only(block2)],
                pool1: train_only(pooled1),
                block1: [train_only(block1), train_only(block1)],
            },
            scratch: if training {
                ConvScratch::new(&convs)
            } else {
                ConvScratch::forward_only(&convs)
            },
            loss_sum: 0.0,
            correct: 0,
        })
    }

    /// Runs one training pass over the records of `split` named by
    /// `indices`: fills the input, forward with dropout, loss and backward,
    /// overwriting `grads` (laid out as the parameters) with this chunk's
    /// part of the batch-mean gradient. `weights` are the convolution
    /// weights of `params`, laid out for the step.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn train(
        &mut self,
        split: &Split,
        stats: &ChannelStats,
        params: &[f32],
        weights: &StepWeights,
        dropout: &Dropout,
        indices: &[usize],
        place: ChunkPlace,
        grads: &mut [f32],
    ) -> Result<()> {
        let count = indices.len();
        debug_assert!(count <= self.capacity);
        let layers = Layers::new(count)?;
        let input = &mut self.input[..count * IMAGE_BYTES];
        let labels = &mut self.labels[..count];
        fill_batch_augmented(split, stats, indices, place.augment.as_ref(), input, labels)?;
        self.forward(params, weights.forward(), &layers, dropout, Some(place))?;

        let logits = &self.logits[..count * CLASSES];
        let labels = &self.labels[..count];
        self.correct = logits
            .chunks_exact(CLASSES)
            .zip(labels)
            .filter(|(row, &label)| argmax(row) == label)
            .count();
        let grad_logits = &mut self.grad.logits[..count * CLASSES];
        let scale = 1.0 / place.batch as f64;
        let smoothing = place.smoothing;
        self.loss_sum = softmax_cross_entropy_smoothed_sum(
            logits,
            labels,
            CLASSES,
            smoothing,
            scale,
            grad_logits,
        )?;
        self.backward(params, weights, &layers, dropout, grads)
    }

    /// Runs the forward pass on the first `layers.batch` images of
    /// `self.input` and leaves their logits in `self.logits`. `convs` are
    /// the four convolutions' weights, plain (from `params`) or packed; the
    /// biases and the linear layer come from `params`. With `place`,
    /// dropout is active with that chunk's masks; without, it is the
    /// identity.
    pub(crate) fn forward(
        &mut self,
        params: &[f32],
        convs: [ConvWeights<'_>; 4],
        layers: &Layers,
        dropout: &Dropout,
        place: Option<ChunkPlace>,
    ) -> Result<()> {
        let ranges = layer_ranges();
        let block1 = layers.conv1.output().len();
        let pooled1 = layers.pool1.output().len();
        let block2 = layers.conv3.output().len();
        let pooled2 = layers.pool2.output().len();
        let image1 = layers.conv1.output().image_len();
        let image2 = layers.conv3.output().image_len();
        let mask = |seed, image_len: usize| {
            place.map(|place| ChunkMask {
                dropout: *dropout,
                seed,
                first_index: place.first_image * image_len,
            })
        };
        let mask1 = mask(place.map_or(0, |p| p.seeds.first), image1);
        let mask3 = mask(place.map_or(0, |p| p.seeds.second), image2);
        let (act1, act3) = (&mut self.act1[..block1], &mut self.act3[..block2]);
        let pooled1 = (&mut self.pool1[..pooled1], &mut self.argmax1[..pooled1]);
        let scratch = &mut self.scratch;
        let input = &self.input[..layers.conv1.input().len()];

        let bias = |layer: usize| ranges[layer].split(params).1;
        let [w1, w2, w3, w4] = convs;

        // Conv1 -> ReLU -> Dropout, then Conv2 -> MaxPool.
        let b = bias(CONV1);
        conv2d_relu_dropout_forward(&layers.conv1, input, w1, b, mask1.as_ref(), act1, scratch)?;
        let b = bias(CONV2);
        conv2d_maxpool2d_forward(&layers.conv2, &layers.pool1, act1, w2, b, pooled1, scratch)?;

        // Conv3 -> ReLU -> Dropout, then Conv4 -> MaxPool.
        let pool1 = &self.pool1[..layers.pool1.output().len()];
        let b = bias(CONV3);
        conv2d_relu_dropout_forward(&layers.conv3, pool1, w3, b, mask3.as_ref(), act3, scratch)?;
        let pooled2 = (&mut self.pool2[..pooled2], &mut self.argmax2[..pooled2]);
        let b = bias(CONV4);
        conv2d_maxpool2d_forward(&layers.conv4, &layers.pool2, act3, w4, b, pooled2, scratch)?;

        // Linear.
        let (w, b) = ranges[FC].split(params);
        let logits = &mut self.logits[..layers.batch * CLASSES];
        let pool2 = &self.pool2[..layers.pool2.output().len()];
        linear_forward_serial(&layers.fc, pool2, w, b, logits)?;
        Ok(())
    }

    /// Runs the backward pass of a training forward pass from the logit
    /// gradient in `self.grad.logits`, overwriting `grads`.
    fn backward(
        &mut self,
        params: &[f32],
        weights: &StepWeights,
        layers: &Layers,
        dropout: &Dropout,
        grads: &mut [f32],
    ) -> Result<()> {
        let ranges = layer_ranges();
        let grad = &mut self.grad;
        let scratch = &mut self.scratch;
        let block1 = layers.conv1.output().len();
        let pooled1 = layers.pool1.output().len();
        let block2 = layers.conv3.output().len();
        let pooled2 = layers.pool2.output().len();
        let [g2a, g2b] = &mut grad.block2;
        let [g1a, g1b] = &mut grad.block1;
        let (g2a, g2b) = (&mut g2a[..block2], &mut g2b[..block2]);
        let (g1a, g1b) = (&mut g1a[..block1], &mut g1b[..block1]);
        let (act1, act3) = (&self.act1[..block1], &self.act3[..block2]);

        // Linear, then MaxPool2 with conv4's bias gradient, then Conv4.
        let (w, _) = ranges[FC].split(params);
        let (dw, db) = ranges[FC].split_mut(grads);
        let grad_logits = &grad.logits[..layers.batch * CLASSES];
        let grad_pool2 = &mut grad.pool2[..pooled2];
        let fc_grads = LinearGrads {
            input: Some(&mut *grad_pool2),
            weight: dw,
            bias: db,
        };
        let pool2 = &self.pool2[..pooled2];
        linear_backward_serial(&layers.fc, pool2, w, grad_logits, fc_grads)?;
        let w = weights.gradient(3);
        let (dw, db) = ranges[CONV4].split_mut(grads);
        let argmax2 = &self.argmax2[..pooled2];
        maxpool2d_backward_bias(&layers.pool2, grad_pool2, argmax2, g2a, db)?;
        conv2d_backward_serial(&layers.conv4, act3, w, g2a, Some(&mut *g2b), dw, scratch)?;

        // Dropout3 and ReLU3 with conv3's bias gradient, then Conv3.
        let w = weights.gradient(2);
        let (dw, db) = ranges[CONV3].split_mut(grads);
        relu_dropout_backward_bias(layers.conv3.output(), dropout, act3, g2b, db)?;
        let grad_pool1 = &mut grad.pool1[..pooled1];
        let pool1 = &self.pool1[..pooled1];
        let conv3_input = Some(&mut *grad_pool1);
        conv2d_backward_serial(&layers.conv3, pool1, w, g2b, conv3_input, dw, scratch)?;

        // MaxPool1 with conv2's bias gradient, then Conv2.
        let w = weights.gradient(1);
        let (dw, db) = ranges[CONV2].split_mut(grads);
        let argmax1 = &self.argmax1[..pooled1];
        maxpool2d_backward_bias(&layers.pool1, grad_pool1, argmax1, g1a, db)?;
        conv2d_backward_serial(&layers.conv2, act1, w, g1a, Some(&mut *g1b), dw, scratch)?;

        // Dropout1 and ReLU1 with conv1's bias gradient, then Conv1, which
        // needs no input gradient.
        let w = weights.gradient(0);
        let (dw, db) = ranges[CONV1].split_mut(grads);
        relu_dropout_backward_bias(layers.conv1.output(), dropout, act1, g1b, db)?;
        let input = &self.input[..layers.conv1.input().len()];
        conv2d_backward_serial(&layers.conv1, input, w, g1b, None, dw, scratch)?;
        Ok(())
    }
}

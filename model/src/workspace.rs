//! Activation and gradient buffers for one batch, allocated once and reused
//! for every step.

use crate::layers::Layers;

/// Buffers of the forward pass, kept for the backward pass.
pub(crate) struct Activations {
    /// Normalised input, `[batch, 3, 32, 32]`.
    pub(crate) input: Vec<f32>,
    /// Conv1 output, then ReLU, then dropout, and the dropout mask;
    /// each `[batch, 32, 32, 32]`.
    pub(crate) conv1: Vec<f32>,
    pub(crate) relu1: Vec<f32>,
    pub(crate) drop1: Vec<f32>,
    pub(crate) mask1: Vec<f32>,
    /// Conv2 output `[batch, 32, 32, 32]`, pooled to `[batch, 32, 16, 16]`.
    pub(crate) conv2: Vec<f32>,
    pub(crate) pool1: Vec<f32>,
    pub(crate) argmax1: Vec<u32>,
    /// Conv3 output, ReLU, dropout and mask; each `[batch, 64, 16, 16]`.
    pub(crate) conv3: Vec<f32>,
    pub(crate) relu3: Vec<f32>,
    pub(crate) drop3: Vec<f32>,
    pub(crate) mask3: Vec<f32>,
    /// Conv4 output `[batch, 64, 16, 16]`, pooled to `[batch, 64, 8, 8]`.
    pub(crate) conv4: Vec<f32>,
    pub(crate) pool2: Vec<f32>,
    pub(crate) argmax2: Vec<u32>,
    /// Class scores, `[batch, 10]`.
    pub(crate) logits: Vec<f32>,
}

/// Buffers of the backward pass. Gradients of same-sized activations take
/// turns in two buffers, because each is dead once the next is computed.
pub(crate) struct Gradients {
    pub(crate) logits: Vec<f32>,
    pub(crate) pool2: Vec<f32>,
    pub(crate) block2: [Vec<f32>; 2],
    pub(crate) pool1: Vec<f32>,
    pub(crate) block1: [Vec<f32>; 2],
}

/// Everything one training or inference pass writes, for up to `capacity`
/// images.
pub(crate) struct Workspace {
    pub(crate) capacity: usize,
    pub(crate) act: Activations,
    pub(crate) grad: Gradients,
}

impl Workspace {
    /// Allocates buffers for `layers.batch` images; `training` adds the
    /// buffers only the backward pass needs.
    pub(crate) fn new(layers: &Layers, training: bool) -> Self {
        let input = layers.conv1.input().len();
        let block1 = layers.conv1.output().len();
        let pooled1 = layers.pool1.output().len();
        let block2 = layers.conv3.output().len();
        let pooled2 = layers.pool2.output().len();
        let logits = layers.batch * crate::CLASSES;
        let train_only = |len: usize| if training { vec![0.0; len] } else { Vec::new() };
        let act = Activations {
            input: vec![0.0; input],
            conv1: vec![0.0; block1],
            relu1: vec![0.0; block1],
            drop1: train_only(block1),
            mask1: train_only(block1),
            conv2: vec![0.0; block1],
            pool1: vec![0.0; pooled1],
            argmax1: vec![0; pooled1],
            conv3: vec![0.0; block2],
            relu3: vec![0.0; block2],
            drop3: train_only(block2),
            mask3: train_only(block2),
            conv4: vec![0.0; block2],
            pool2: vec![0.0; pooled2],
            argmax2: vec![0; pooled2],
            logits: vec![0.0; logits],
        };
        let grad = Gradients {
            logits: train_only(logits),
            pool2: train_only(pooled2),
            block2: [train_only(block2), train_only(block2)],
            pool1: train_only(pooled1),
            block1: [train_only(block1), train_only(block1)],
        };
        Self {
            capacity: layers.batch,
            act,
            grad,
        }
    }
}

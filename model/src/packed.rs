//! The convolution weights of a network laid out once for inference.
//!
//! Every forward pass with plain weights rearranges each convolution's
//! weights before it starts (a Winograd transform or packing into filter
//! panels). For one image that was a third of the time: batch-1 latency
//! in `cifaas-perf infer` at 1 thread on an AVX-512 Xeon was 0.38 ms with
//! it and 0.24 ms without. So inference keeps the rearranged weights with
//! the network until its parameters change.

use std::sync::OnceLock;

use kernels::{Conv2dGeometry, ConvWeights, PackedConv};

use crate::layers::Layers;
use crate::params::{layer_ranges, CONV1, CONV2, CONV3, CONV4};
use crate::Result;

/// The four convolutions' weights, laid out for forward passes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PackedForward {
    convs: [PackedConv; 4],
}

impl PackedForward {
    fn new(params: &[f32]) -> Result<Self> {
        let convs = pack_all(params, PackedConv::forward)?;
        Ok(Self { convs })
    }

    /// Returns the weights of the four convolutions, first to last.
    pub(crate) fn convs(&self) -> [ConvWeights<'_>; 4] {
        self.convs.each_ref().map(ConvWeights::from)
    }
}

/// Returns the convolutions, first to last, with their geometry at batch
/// 1 and their weights in `params`.
fn convolutions(params: &[f32]) -> Result<[(Conv2dGeometry, &[f32]); 4]> {
    let layers = Layers::new(1)?;
    let ranges = layer_ranges();
    let weight = |layer: usize| ranges[layer].split(params).0;
    Ok([
        (layers.conv1, weight(CONV1)),
        (layers.conv2, weight(CONV2)),
        (layers.conv3, weight(CONV3)),
        (layers.conv4, weight(CONV4)),
    ])
}

/// Packs each convolution of `params` with `pack`.
fn pack_all(
    params: &[f32],
    pack: fn(&Conv2dGeometry, &[f32]) -> kernels::Result<PackedConv>,
) -> Result<[PackedConv; 4]> {
    let [first, second, third, fourth] = convolutions(params)?;
    Ok([
        pack(&first.0, first.1)?,
        pack(&second.0, second.1)?,
        pack(&third.0, third.1)?,
        pack(&fourth.0, fourth.1)?,
    ])
}

/// A [`PackedForward`] made on first use. It is derived from the
/// parameters, so two caches always compare equal.
#[derive(Debug, Clone, Default)]
pub(crate) struct PackedCache(OnceLock<PackedForward>);

impl PackedCache {
    /// Returns the packed weights of `params`, packing them on first use.
    pub(crate) fn get(&self, params: &[f32]) -> Result<&PackedForward> {
        if let Some(packed) = self.0.get() {
            return Ok(packed);
        }
        let packed = PackedForward::new(params)?;
        Ok(self.0.get_or_init(|| packed))
    }
}

impl PartialEq for PackedCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// The convolution weights of one training step, laid out once for every
/// chunk of the step: for the forward passes and for the input gradients.
pub(crate) struct StepWeights {
    forward: [PackedConv; 4],
    gradient: [PackedConv; 4],
}

impl StepWeights {
    pub(crate) fn new(params: &[f32]) -> Result<Self> {
        Ok(Self {
            forward: pack_all(params, PackedConv::forward)?,
            gradient: pack_all(params, PackedConv::input_gradient)?,
        })
    }

    /// Lays out the current `params` in place, without allocating.
    pub(crate) fn repack(&mut self, params: &[f32]) -> Result<()> {
        let convs = convolutions(params)?;
        let packed = self.forward.iter_mut().chain(&mut self.gradient);
        for (packed, (_, weight)) in packed.zip(convs.iter().chain(&convs)) {
            packed.repack(weight)?;
        }
        Ok(())
    }

    /// Returns the forward weights of the four convolutions, first to last.
    pub(crate) fn forward(&self) -> [ConvWeights<'_>; 4] {
        self.forward.each_ref().map(ConvWeights::from)
    }

    /// Returns the input-gradient weights of convolution `index` (0 to 3).
    pub(crate) fn gradient(&self, index: usize) -> ConvWeights<'_> {
        (&self.gradient[index]).into()
    }
}

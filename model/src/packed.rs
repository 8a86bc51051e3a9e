//! The convolution weights of a network laid out once for inference.
//!
//! Every forward pass with plain weights rearranges each convolution's
//! weights before it starts (a Winograd transform or packing into filter
//! panels). For one image that was a third of the time: batch-1 latency
//! in `cifaas-perf infer` at 1 thread on an AVX-512 Xeon was 0.38 ms with
//! it and 0.24 ms without. So inference keeps the rearranged weights with
//! the network until its parameters change.

use std::sync::OnceLock;

use kernels::{ConvWeights, PackedConv};

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
        let layers = Layers::new(1)?;
        let ranges = layer_ranges();
        let pack =
            |geometry, range: usize| PackedConv::forward(geometry, ranges[range].split(params).0);
        Ok(Self {
            convs: [
                pack(&layers.conv1, CONV1)?,
                pack(&layers.conv2, CONV2)?,
                pack(&layers.conv3, CONV3)?,
                pack(&layers.conv4, CONV4)?,
            ],
        })
    }

    /// The weights of the four convolutions, first to last.
    pub(crate) fn convs(&self) -> [ConvWeights<'_>; 4] {
        self.convs.each_ref().map(ConvWeights::from)
    }
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

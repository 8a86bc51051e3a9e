//! The parameter layout of the network and its seeded initialisation.
//!
//! All parameters live in one flat `f32` vector, tensor after tensor in the
//! order of [`TENSORS`]; each layer's bias directly follows its weight.

use std::ops::Range;

use crate::rng::SplitMix64;

/// Name and shape of one parameter tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorSpec {
    /// Name, for example `conv1.weight`.
    pub name: &'static str,
    /// Shape; a convolution weight is `[c_out, c_in, k, k]`, a linear
    /// weight `[out_features, in_features]`.
    pub shape: &'static [usize],
}

impl TensorSpec {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True for a tensor with a zero dimension (none in this network).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every parameter tensor of the network, in storage order.
pub const TENSORS: [TensorSpec; 10] = [
    TensorSpec {
        name: "conv1.weight",
        shape: &[32, 3, 3, 3],
    },
    TensorSpec {
        name: "conv1.bias",
        shape: &[32],
    },
    TensorSpec {
        name: "conv2.weight",
        shape: &[32, 32, 3, 3],
    },
    TensorSpec {
        name: "conv2.bias",
        shape: &[32],
    },
    TensorSpec {
        name: "conv3.weight",
        shape: &[64, 32, 3, 3],
    },
    TensorSpec {
        name: "conv3.bias",
        shape: &[64],
    },
    TensorSpec {
        name: "conv4.weight",
        shape: &[64, 64, 3, 3],
    },
    TensorSpec {
        name: "conv4.bias",
        shape: &[64],
    },
    TensorSpec {
        name: "fc.weight",
        shape: &[10, 4096],
    },
    TensorSpec {
        name: "fc.bias",
        shape: &[10],
    },
];

/// Total number of parameters.
pub fn parameter_count() -> usize {
    TENSORS.iter().map(TensorSpec::len).sum()
}

/// The weight and bias ranges of one layer inside the flat vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LayerRange {
    pub(crate) weight: Range<usize>,
    pub(crate) bias: Range<usize>,
}

impl LayerRange {
    /// Splits `params` into this layer's weight and bias.
    pub(crate) fn split<'a>(&self, params: &'a [f32]) -> (&'a [f32], &'a [f32]) {
        (&params[self.weight.clone()], &params[self.bias.clone()])
    }

    /// Splits `params` into this layer's weight and bias, mutably.
    pub(crate) fn split_mut<'a>(&self, params: &'a mut [f32]) -> (&'a mut [f32], &'a mut [f32]) {
        let both = &mut params[self.weight.start..self.bias.end];
        both.split_at_mut(self.weight.len())
    }
}

/// Index of each layer in [`layer_ranges`].
pub(crate) const CONV1: usize = 0;
pub(crate) const CONV2: usize = 1;
pub(crate) const CONV3: usize = 2;
pub(crate) const CONV4: usize = 3;
pub(crate) const FC: usize = 4;

/// The ranges of the five layers, in the order of [`TENSORS`].
pub(crate) fn layer_ranges() -> [LayerRange; 5] {
    let mut offset = 0;
    std::array::from_fn(|layer| {
        let weight = offset..offset + TENSORS[2 * layer].len();
        let bias = weight.end..weight.end + TENSORS[2 * layer + 1].len();
        offset = bias.end;
        LayerRange { weight, bias }
    })
}

/// Fills a new parameter vector as PyTorch 2.x initialises `Conv2d` and
/// `Linear` by default: weight and bias uniform in
/// `[-1/sqrt(fan_in), 1/sqrt(fan_in))`, where `fan_in` is `c_in * k * k` for
/// a convolution and `in_features` for the linear layer. The values come
/// from a splitmix64 stream seeded with `seed`, tensor after tensor.
pub(crate) fn initialise(seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    let mut params = Vec::with_capacity(parameter_count());
    for pair in TENSORS.chunks(2) {
        let weight = &pair[0];
        let fan_in: usize = weight.shape[1..].iter().product();
        let limit = 1.0 / (fan_in as f32).sqrt();
        for tensor in pair {
            params.extend((0..tensor.len()).map(|_| rng.uniform(limit)));
        }
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_covers_every_parameter() {
        let ranges = layer_ranges();
        assert_eq!(ranges[CONV1].weight.start, 0);
        assert_eq!(ranges[FC].bias.end, parameter_count());
        assert_eq!(parameter_count(), 106_538);
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].bias.end, pair[1].weight.start);
        }
    }

    #[test]
    fn initialisation_respects_fan_in_bound() {
        let params = initialise(3);
        let ranges = layer_ranges();
        let fan_ins = [27.0f32, 288.0, 288.0, 576.0, 4096.0];
        for (range, fan_in) in ranges.iter().zip(fan_ins) {
            let limit = 1.0 / fan_in.sqrt();
            let (weight, bias) = range.split(&params);
            let max = weight
                .iter()
                .chain(bias)
                .fold(0.0f32, |m, x| m.max(x.abs()));
            assert!(max <= limit, "max {max} above {limit}");
            assert!(max > 0.9 * limit, "max {max} far below {limit}");
        }
    }

    #[test]
    fn initialisation_is_seeded() {
        assert_eq!(initialise(1), initialise(1));
        assert_ne!(initialise(1), initialise(2));
    }
}

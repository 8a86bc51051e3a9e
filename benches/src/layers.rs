//! The layer shapes of the cifaas network and their FLOP counts.

use kernels::{Conv2dGeometry, LinearGeometry, Shape4};

/// Input features of the fully connected layer: 64 channels of 8 x 8.
pub const FC_IN: usize = 64 * 8 * 8;
/// Output features of the fully connected layer: the ten classes.
pub const FC_OUT: usize = 10;

/// One 3x3 convolution of the network (stride 1, padding 1).
#[derive(Debug, Clone, Copy)]
pub struct ConvLayer {
    /// Layer name as the model numbers it, `conv1` to `conv4`.
    pub name: &'static str,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Height and width of the square input and output.
    pub side: usize,
    /// True for the first layer, whose backward pass skips the input
    /// gradient because the network does not need it.
    pub first: bool,
}

/// The four convolutions in network order.
pub const CONV_LAYERS: [ConvLayer; 4] = [
    ConvLayer::new("conv1", 3, 32, 32, true),
    ConvLayer::new("conv2", 32, 32, 32, false),
    ConvLayer::new("conv3", 32, 64, 16, false),
    ConvLayer::new("conv4", 64, 64, 16, false),
];

impl ConvLayer {
    const fn new(name: &'static str, c_in: usize, c_out: usize, side: usize, first: bool) -> Self {
        Self {
            name,
            c_in,
            c_out,
            side,
            first,
        }
    }

    /// Returns the layer's geometry at `batch` images.
    ///
    /// # Panics
    /// When `batch` is zero.
    pub fn geometry(&self, batch: usize) -> Conv2dGeometry {
        let input = Shape4::new(batch, self.c_in, self.side, self.side);
        Conv2dGeometry::new(input, self.c_out, 3, 1, 1).expect("the network's shapes are valid")
    }

    /// Rows of the im2col matrix, `c_in * 3 * 3`: the GEMM's inner dimension.
    pub fn taps(&self) -> usize {
        self.c_in * 9
    }

    /// Output positions per channel, `side * side`.
    pub fn positions(&self) -> usize {
        self.side * self.side
    }

    /// FLOPs of the forward pass at `batch` images, counting a
    /// multiply-add as two: `2 * batch * c_out * taps * positions`. The bias
    /// add is left out.
    pub fn forward_flops(&self, batch: usize) -> u64 {
        2 * (batch * self.c_out * self.taps() * self.positions()) as u64
    }

    /// FLOPs of the backward pass as the network runs it: the weight
    /// gradient, plus the input gradient for every layer but the first,
    /// each the size of the forward GEMM. The bias gradient is left out.
    pub fn backward_flops(&self, batch: usize) -> u64 {
        let passes = if self.first { 1 } else { 2 };
        passes * self.forward_flops(batch)
    }
}

/// Returns the fully connected layer's geometry at `batch` rows.
///
/// # Panics
/// When `batch` is zero.
pub fn linear_geometry(batch: usize) -> LinearGeometry {
    LinearGeometry::new(batch, FC_IN, FC_OUT).expect("the network's shapes are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_shapes_chain() {
        for pair in CONV_LAYERS.windows(2) {
            assert_eq!(
                pair[0].c_out, pair[1].c_in,
                "{} feeds {}",
                pair[0].name, pair[1].name
            );
        }
        let last = CONV_LAYERS[3];
        assert_eq!(last.c_out * (last.side / 2) * (last.side / 2), FC_IN);
    }

    #[test]
    fn conv_flops_match_geometry() {
        for layer in CONV_LAYERS {
            let geometry = layer.geometry(2);
            let output = geometry.output();
            let expected = 2 * output.len() * geometry.weight_len() / layer.c_out;
            assert_eq!(layer.forward_flops(2), expected as u64, "{}", layer.name);
        }
        assert_eq!(
            CONV_LAYERS[0].backward_flops(1),
            CONV_LAYERS[0].forward_flops(1)
        );
        assert_eq!(
            CONV_LAYERS[1].backward_flops(1),
            2 * CONV_LAYERS[1].forward_flops(1)
        );
    }
}

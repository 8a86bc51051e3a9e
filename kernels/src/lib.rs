//! CPU kernels for a small convolutional network.
//!
//! Every activation is a row-major `f32` slice in NCHW layout whose shape is
//! carried by a validated geometry struct. Each op has a forward and a
//! backward pass. The batch-parallel functions split work over the batch with
//! rayon inside whatever thread pool the caller installed; no kernel builds
//! a pool of its own. The `_serial` functions and the fused passes run on
//! the calling thread, for callers that split a batch into chunks.

mod channels_last;
mod conv2d;
mod conv2d_serial;
mod conv_weights;
mod direct_conv;
mod direct_weight_grad;
mod dropout;
mod error;
mod fused;
mod gemm;
mod im2col;
mod linear;
mod maxpool;
#[cfg(target_arch = "x86_64")]
mod packed_gemm;
mod reduce;
pub mod reference;
mod relu;
mod sgd;
mod shape;
mod simd;
mod softmax_xent;
mod winograd;
mod winograd_weight_grad;

pub use conv2d::{conv2d_backward, conv2d_forward, Conv2dGeometry, Conv2dGrads};
pub use conv2d_serial::{
    conv2d_backward_serial, conv2d_forward_serial, conv2d_maxpool2d_forward,
    conv2d_relu_dropout_forward, ConvScratch,
};
pub use conv_weights::{ConvWeights, PackedConv};
pub use dropout::{dropout_backward, dropout_forward, ChunkMask, Dropout, Phase};
pub use error::KernelError;
pub use fused::{maxpool2d_backward_bias, relu_dropout_backward_bias};
pub use gemm::gemm_is_allocation_free;
pub use linear::{
    linear_backward, linear_backward_serial, linear_forward, linear_forward_serial, LinearGeometry,
    LinearGrads,
};
pub use maxpool::{maxpool2d_backward, maxpool2d_forward, Pool2dGeometry};
pub use relu::{relu_backward, relu_forward};
pub use sgd::Sgd;
pub use shape::Shape4;
pub use softmax_xent::{
    softmax, softmax_cross_entropy, softmax_cross_entropy_smoothed_sum, softmax_cross_entropy_sum,
};

/// The result type of every kernel.
pub type Result<T> = std::result::Result<T, KernelError>;

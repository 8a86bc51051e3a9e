//! A convolution's weights rearranged once for serial passes that reuse
//! them.
//!
//! Every serial pass that gets plain weights rearranges them first: the
//! Winograd path transforms them, the direct path packs them into panels
//! of filters. For a batch that is one rearrangement per pass and chunk.
//! For a server that predicts one image at a time it is one per image, a
//! third of the time of a prediction. [`PackedConv`] does it once, for as
//! long as the weights stay unchanged.

use crate::direct_conv::{self as direct, DirectConv};
use crate::winograd::{self, WinogradConv};
use crate::{Conv2dGeometry, KernelError, Result};

/// The pass a [`PackedConv`] serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// `conv(input, weight)`.
    Forward,
    /// The input gradient from the output gradient.
    InputGradient,
}

/// The algorithm whose layout the packed weights have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    Winograd,
    Direct,
    /// im2col and GEMM read the plain weights.
    Columns,
}

/// Weights of one convolution laid out once for the serial passes of one
/// role (forward or input gradient) on this CPU. Passes take it in place
/// of plain weights through [`ConvWeights`] and then skip their own
/// rearrangement. It stays valid for every batch size of the geometry it
/// was made for, and must be made again when the weights change.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedConv {
    /// The geometry at batch 1.
    geometry: Conv2dGeometry,
    role: Role,
    path: Path,
    packed: Vec<f32>,
    offsets: Vec<u32>,
}

impl PackedConv {
    /// Lays out `weight` (`[c_out, c_in, k, k]`) for the forward passes of
    /// `geometry` at any batch size.
    ///
    /// # Errors
    /// [`KernelError::Length`] when `weight` does not match the geometry.
    pub fn forward(geometry: &Conv2dGeometry, weight: &[f32]) -> Result<Self> {
        let g = geometry.with_batch(1);
        check_weight(&g, weight.len())?;
        let mut packed = Self::empty(&g, Role::Forward);
        if winograd::applies(&g) {
            packed.reserve(winograd::packed_weight_len(&g), g.input().channels);
            WinogradConv::new(&g, weight, &mut packed.packed, &mut packed.offsets);
            packed.path = Path::Winograd;
        } else if direct::applies(&g) {
            packed.reserve(direct::packed_weight_len(&g), g.taps());
            DirectConv::new(&g, weight, &mut packed.packed, &mut packed.offsets);
            packed.path = Path::Direct;
        } else {
            packed.packed = weight.to_vec();
        }
        Ok(packed)
    }

    /// Lays out `weight` (`[c_out, c_in, k, k]`) for the input gradients of
    /// the backward passes of `geometry` at any batch size.
    ///
    /// # Errors
    /// [`KernelError::Length`] when `weight` does not match the geometry.
    pub fn input_gradient(geometry: &Conv2dGeometry, weight: &[f32]) -> Result<Self> {
        let g = geometry.with_batch(1);
        check_weight(&g, weight.len())?;
        let mut packed = Self::empty(&g, Role::InputGradient);
        match direct::transposed(&g) {
            Some(transposed) if winograd::applies(&transposed) => {
                let channels = transposed.input().channels;
                packed.reserve(winograd::packed_weight_len(&transposed), channels);
                let (weights, offsets) = (&mut packed.packed, &mut packed.offsets);
                WinogradConv::input_gradient(&g, &transposed, weight, weights, offsets);
                packed.path = Path::Winograd;
            }
            Some(transposed) => {
                let taps = transposed.taps();
                packed.reserve(direct::packed_weight_len(&transposed), taps);
                let (weights, offsets) = (&mut packed.packed, &mut packed.offsets);
                DirectConv::input_gradient(&g, &transposed, weight, weights, offsets);
                packed.path = Path::Direct;
            }
            None => packed.packed = weight.to_vec(),
        }
        Ok(packed)
    }

    /// Lays out new values of the weights in place, for the same geometry
    /// and pass, without allocating.
    ///
    /// # Errors
    /// [`KernelError::Length`] when `weight` does not match the geometry.
    pub fn repack(&mut self, weight: &[f32]) -> Result<()> {
        let g = self.geometry;
        check_weight(&g, weight.len())?;
        let (packed, offsets) = (&mut self.packed, &mut self.offsets);
        match (self.role, self.path, direct::transposed(&g)) {
            (Role::Forward, Path::Winograd, _) => {
                WinogradConv::new(&g, weight, packed, offsets);
            }
            (Role::Forward, Path::Direct, _) => {
                DirectConv::new(&g, weight, packed, offsets);
            }
            (Role::InputGradient, Path::Winograd, Some(t)) => {
                WinogradConv::input_gradient(&g, &t, weight, packed, offsets);
            }
            (Role::InputGradient, Path::Direct, Some(t)) => {
                DirectConv::input_gradient(&g, &t, weight, packed, offsets);
            }
            _ => packed.copy_from_slice(weight),
        }
        Ok(())
    }

    fn empty(geometry: &Conv2dGeometry, role: Role) -> Self {
        Self {
            geometry: *geometry,
            role,
            path: Path::Columns,
            packed: Vec::new(),
            offsets: Vec::new(),
        }
    }

    fn reserve(&mut self, packed: usize, offsets: usize) {
        self.packed = vec![0.0; packed];
        self.offsets = vec![0; offsets];
    }

    pub(crate) fn path(&self) -> Path {
        self.path
    }

    /// Returns the packed weights, or the plain ones on the
    /// [`Path::Columns`] path.
    pub(crate) fn weights(&self) -> &[f32] {
        &self.packed
    }

    pub(crate) fn offsets(&self) -> &[u32] {
        &self.offsets
    }

    /// Rejects a pass of `geometry` and `role` that these weights were not
    /// made for.
    pub(crate) fn check(&self, geometry: &Conv2dGeometry, role: Role) -> Result<()> {
        if self.role != role {
            return Err(KernelError::Geometry {
                op: "conv2d",
                reason: format!(
                    "the packed weights serve the {:?} pass, not the {role:?} pass; \
                     make them with PackedConv::{}",
                    self.role,
                    if role == Role::Forward {
                        "forward"
                    } else {
                        "input_gradient"
                    }
                ),
            });
        }
        if geometry.with_batch(1) != self.geometry {
            return Err(KernelError::Geometry {
                op: "conv2d",
                reason: format!(
                    "the packed weights were made for input {} with {} filters of {}x{}, \
                     stride {}, padding {}; the pass has input {} with {} filters of {}x{}, \
                     stride {}, padding {}",
                    self.geometry.input(),
                    self.geometry.c_out(),
                    self.geometry.kernel(),
                    self.geometry.kernel(),
                    self.geometry.stride(),
                    self.geometry.padding(),
                    geometry.input(),
                    geometry.c_out(),
                    geometry.kernel(),
                    geometry.kernel(),
                    geometry.stride(),
                    geometry.padding(),
                ),
            });
        }
        Ok(())
    }
}

fn check_weight(geometry: &Conv2dGeometry, len: usize) -> Result<()> {
    geometry.check_params(["weight", "bias"], len, geometry.c_out())
}

/// The weights a serial convolution pass takes: plain `[c_out, c_in, k,
/// k]`, which the pass rearranges itself, or a [`PackedConv`] laid out in
/// advance.
#[derive(Debug, Clone, Copy)]
pub enum ConvWeights<'a> {
    /// Weights as `[c_out, c_in, k, k]`.
    Plain(&'a [f32]),
    /// Weights laid out once by [`PackedConv`].
    Packed(&'a PackedConv),
}

impl<'a> From<&'a [f32]> for ConvWeights<'a> {
    fn from(weight: &'a [f32]) -> Self {
        Self::Plain(weight)
    }
}

impl<'a> From<&'a Vec<f32>> for ConvWeights<'a> {
    fn from(weight: &'a Vec<f32>) -> Self {
        Self::Plain(weight)
    }
}

impl<'a> From<&'a PackedConv> for ConvWeights<'a> {
    fn from(packed: &'a PackedConv) -> Self {
        Self::Packed(packed)
    }
}

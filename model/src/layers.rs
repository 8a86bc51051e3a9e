//! The layer geometries of the network for a given batch size.

use kernels::{Conv2dGeometry, LinearGeometry, Pool2dGeometry, Shape4};

use crate::Result;

/// Channels, height and width of an input image.
pub(crate) const INPUT: [usize; 3] = [3, 32, 32];

/// The geometry of every layer at one batch size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layers {
    pub(crate) batch: usize,
    pub(crate) conv1: Conv2dGeometry,
    pub(crate) conv2: Conv2dGeometry,
    pub(crate) pool1: Pool2dGeometry,
    pub(crate) conv3: Conv2dGeometry,
    pub(crate) conv4: Conv2dGeometry,
    pub(crate) pool2: Pool2dGeometry,
    pub(crate) fc: LinearGeometry,
}

impl Layers {
    /// Builds the geometries of Conv(3->32) -> Conv(32->32) -> MaxPool ->
    /// Conv(32->64) -> Conv(64->64) -> MaxPool -> Linear(4096->10), all
    /// convolutions 3x3 with padding 1 and stride 1, both pools 2x2 with
    /// stride 2.
    pub(crate) fn new(batch: usize) -> Result<Self> {
        let input = Shape4::new(batch, INPUT[0], INPUT[1], INPUT[2]);
        let conv1 = Conv2dGeometry::new(input, 32, 3, 1, 1)?;
        let conv2 = Conv2dGeometry::new(conv1.output(), 32, 3, 1, 1)?;
        let pool1 = Pool2dGeometry::new(conv2.output(), 2, 2)?;
        let conv3 = Conv2dGeometry::new(pool1.output(), 64, 3, 1, 1)?;
        let conv4 = Conv2dGeometry::new(conv3.output(), 64, 3, 1, 1)?;
        let pool2 = Pool2dGeometry::new(conv4.output(), 2, 2)?;
        let fc = LinearGeometry::new(batch, pool2.output().image_len(), crate::CLASSES)?;
        Ok(Self {
            batch,
            conv1,
            conv2,
            pool1,
            conv3,
            conv4,
            pool2,
            fc,
        })
    }
}

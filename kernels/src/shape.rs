//! The NCHW shape of a batch of activations.

use std::fmt;

/// The shape of an NCHW activation tensor: `[batch, channels, height, width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shape4 {
    /// Number of images.
    pub batch: usize,
    /// Channels per image.
    pub channels: usize,
    /// Rows per channel plane.
    pub height: usize,
    /// Columns per channel plane.
    pub width: usize,
}

impl Shape4 {
    /// Builds a shape from its four dimensions.
    pub const fn new(batch: usize, channels: usize, height: usize, width: usize) -> Self {
        Self {
            batch,
            channels,
            height,
            width,
        }
    }

    /// Number of elements in one image: `channels * height * width`.
    pub const fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Number of elements in the whole batch.
    pub const fn len(&self) -> usize {
        self.batch * self.image_len()
    }

    /// True when any dimension is zero.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same shape with another batch size.
    pub const fn with_batch(&self, batch: usize) -> Self {
        Self::new(batch, self.channels, self.height, self.width)
    }

    /// Returns the four dimensions in NCHW order.
    pub(crate) const fn dims(&self) -> [usize; 4] {
        [self.batch, self.channels, self.height, self.width]
    }
}

impl fmt::Display for Shape4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}, {}, {}, {}]",
            self.batch, self.channels, self.height, self.width
        )
    }
}

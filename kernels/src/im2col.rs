//! im2col and col2im for one image of a convolution.
//!
//! The column matrix of an image is `[c_in * k * k, out_h * out_w]`,
//! row-major. Row `(c * k + ky) * k + kx` holds, for every output position
//! `(oy, ox)`, the input element at `(oy * stride + ky - padding,
//! ox * stride + kx - padding)` of channel `c`, or zero where that position
//! falls into the padding.

use crate::Conv2dGeometry;

/// Returns the range `lo..hi` of output positions `o < out_len` whose input
/// position `o * stride + offset - padding` lies inside `0..in_len`. Those
/// positions form one contiguous range because the input position grows
/// with `o`.
fn valid_range(
    out_len: usize,
    in_len: usize,
    offset: usize,
    stride: usize,
    padding: usize,
) -> (usize, usize) {
    if in_len + padding <= offset {
        return (0, 0);
    }
    let hi = (in_len + padding - offset).div_ceil(stride).min(out_len);
    let lo = padding.saturating_sub(offset).div_ceil(stride).min(hi);
    (lo, hi)
}

/// The sizes that im2col and col2im read from the geometry.
struct Layout {
    h: usize,
    w: usize,
    out_h: usize,
    out_w: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
}

/// One column-matrix row: its kernel tap and the output positions whose
/// input lies inside the image, `y_lo..y_hi` by `x_lo..x_hi`.
struct Tap {
    channel: usize,
    ky: usize,
    kx: usize,
    y_lo: usize,
    y_hi: usize,
    x_lo: usize,
    x_hi: usize,
}

impl Layout {
    fn new(geometry: &Conv2dGeometry) -> Self {
        let (input, output) = (geometry.input(), geometry.output());
        Self {
            h: input.height,
            w: input.width,
            out_h: output.height,
            out_w: output.width,
            kernel: geometry.kernel(),
            stride: geometry.stride(),
            padding: geometry.padding(),
        }
    }

    fn tap(&self, row: usize) -> Tap {
        let (ky, kx) = ((row / self.kernel) % self.kernel, row % self.kernel);
        let (y_lo, y_hi) = valid_range(self.out_h, self.h, ky, self.stride, self.padding);
        let (x_lo, x_hi) = valid_range(self.out_w, self.w, kx, self.stride, self.padding);
        Tap {
            channel: row / (self.kernel * self.kernel),
            ky,
            kx,
            y_lo,
            y_hi,
            x_lo,
            x_hi,
        }
    }

    /// Returns the index in the channel plane that output `(oy, tap.x_lo)`
    /// reads. It is only valid for `oy` in `tap.y_lo..tap.y_hi` and a non-empty x range.
    fn first_input(&self, tap: &Tap, oy: usize) -> usize {
        let iy = oy * self.stride + tap.ky - self.padding;
        let ix = tap.x_lo * self.stride + tap.kx - self.padding;
        iy * self.w + ix
    }
}

/// Writes the column matrix of `image` (`[c_in, h, w]`) to `col`
/// (`[c_in * k * k, out_h * out_w]`), overwriting every element.
pub(crate) fn im2col(geometry: &Conv2dGeometry, image: &[f32], col: &mut [f32]) {
    let layout = Layout::new(geometry);
    let (plane_len, out_w, stride) = (layout.h * layout.w, layout.out_w, layout.stride);

    // One column-matrix row per (channel, ky, kx).
    for (row, col_row) in col.chunks_exact_mut(layout.out_h * out_w).enumerate() {
        let tap = layout.tap(row);
        let plane = &image[tap.channel * plane_len..][..plane_len];
        col_row[..tap.y_lo * out_w].fill(0.0);
        col_row[tap.y_hi * out_w..].fill(0.0);

        // One output row per oy whose input row lies inside the image.
        for oy in tap.y_lo..tap.y_hi {
            let dst = &mut col_row[oy * out_w..][..out_w];
            dst[..tap.x_lo].fill(0.0);
            dst[tap.x_hi..].fill(0.0);
            if tap.x_lo == tap.x_hi {
                continue;
            }

            let src = &plane[layout.first_input(&tap, oy)..];
            let dst = &mut dst[tap.x_lo..tap.x_hi];
            if stride == 1 {
                dst.copy_from_slice(&src[..dst.len()]);
            } else {
                let src = src.iter().step_by(stride);
                dst.iter_mut().zip(src).for_each(|(d, &s)| *d = s);
            }
        }
    }
}

/// Adds each element of `col` (`[c_in * k * k, out_h * out_w]`) to the
/// element of `image` (`[c_in, h, w]`) it was gathered from, so overlapping
/// patches accumulate. Padding positions are dropped. The caller zeroes
/// `image` first.
pub(crate) fn col2im_add(geometry: &Conv2dGeometry, col: &[f32], image: &mut [f32]) {
    let layout = Layout::new(geometry);
    let (plane_len, out_w, stride) = (layout.h * layout.w, layout.out_w, layout.stride);

    // One column-matrix row per (channel, ky, kx).
    for (row, col_row) in col.chunks_exact(layout.out_h * out_w).enumerate() {
        let tap = layout.tap(row);
        let plane = &mut image[tap.channel * plane_len..][..plane_len];
        if tap.x_lo == tap.x_hi {
            continue;
        }

        // One output row per oy whose input row lies inside the image.
        for oy in tap.y_lo..tap.y_hi {
            let dst = plane[layout.first_input(&tap, oy)..]
                .iter_mut()
                .step_by(stride);
            let src = &col_row[oy * out_w + tap.x_lo..oy * out_w + tap.x_hi];
            dst.zip(src).for_each(|(d, &s)| *d += s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Shape4;

    #[test]
    fn valid_range_cases() {
        // in 5, pad 1, stride 1, out 5: offset 0 skips o = 0.
        assert_eq!(valid_range(5, 5, 0, 1, 1), (1, 5));
        // offset 2 reads input o + 1, so o = 4 falls off the end.
        assert_eq!(valid_range(5, 5, 2, 1, 1), (0, 4));
        // stride 2, pad 2: input 2o + offset - 2 in 0..4.
        assert_eq!(valid_range(3, 4, 0, 2, 2), (1, 3));
        // A kernel tap entirely in the padding.
        assert_eq!(valid_range(4, 1, 0, 1, 2), (2, 3));
        assert_eq!(valid_range(2, 1, 4, 1, 2), (0, 0));
    }

    #[test]
    fn im2col_3x3_pad1() {
        // One 2x2 channel, 3x3 kernel, padding 1: out 2x2 and 9 rows.
        let geometry = Conv2dGeometry::new(Shape4::new(1, 1, 2, 2), 1, 3, 1, 1).unwrap();
        let image = [1.0, 2.0, 3.0, 4.0];
        let mut col = [f32::NAN; 36];
        im2col(&geometry, &image, &mut col);
        // The centre tap (row 4) is the image itself.
        assert_eq!(col[16..20], image);
        // The top-left tap (row 0) reads only image[0] at output (1, 1).
        assert_eq!(col[0..4], [0.0, 0.0, 0.0, 1.0]);
        // The bottom-right tap (row 8) reads only image[3] at output (0, 0).
        assert_eq!(col[32..36], [4.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn col2im_adds_overlaps() {
        // All-ones columns: each input element receives one count per
        // window that covers it.
        let geometry = Conv2dGeometry::new(Shape4::new(1, 1, 3, 3), 1, 2, 1, 0).unwrap();
        let col = [1.0; 16];
        let mut image = [0.0; 9];
        col2im_add(&geometry, &col, &mut image);
        assert_eq!(image, [1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]);
    }
}

//! Test images for the decoder tests: CIFAR-layout bytes and their PNG,
//! JPEG, base64 and JSON encodings.

use std::io::Cursor;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageFormat, RgbImage};

use super::{IMAGE_BYTES, IMAGE_SIDE, PLANE_PIXELS};

/// Returns 3072 pseudo-random bytes in CIFAR layout, one sequence per `seed`.
pub fn cifar_image(seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..IMAGE_BYTES)
        .map(|_| {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect()
}

/// Converts CIFAR-layout bytes to a 32x32 RGB image.
pub fn hwc_of(cifar: &[u8]) -> RgbImage {
    let side = IMAGE_SIDE as u32;
    RgbImage::from_fn(side, side, |x, y| {
        let pixel = y as usize * IMAGE_SIDE + x as usize;
        image::Rgb([
            cifar[pixel],
            cifar[PLANE_PIXELS + pixel],
            cifar[2 * PLANE_PIXELS + pixel],
        ])
    })
}

/// Encodes `image` as a PNG with the `image` crate's encoder.
pub fn encode_png(image: &DynamicImage) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, ImageFormat::Png)
        .expect("encode a PNG");
    bytes.into_inner()
}

/// Encodes `image` as a JPEG of quality 90 with the `image` crate's encoder.
pub fn encode_jpeg(image: &DynamicImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, 90)
        .encode_image(image)
        .expect("encode a JPEG");
    bytes
}

/// A PNG written with the `png` crate, for colour types and bit depths the
/// `image` crate's encoder does not write (palette, 1-bit grey).
pub struct RawPng<'a> {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Colour type.
    pub color: png::ColorType,
    /// Bits per sample.
    pub depth: png::BitDepth,
    /// Scanlines without filter bytes, 16-bit samples big-endian.
    pub data: &'a [u8],
    /// `PLTE` entries, 3 bytes each, for a palette image.
    pub palette: Option<&'a [u8]>,
    /// `tRNS` alpha values of the palette entries.
    pub transparency: Option<&'a [u8]>,
}

impl RawPng<'_> {
    /// Encodes the image.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut bytes, self.width, self.height);
            encoder.set_color(self.color);
            encoder.set_depth(self.depth);
            if let Some(palette) = self.palette {
                encoder.set_palette(palette);
            }
            if let Some(transparency) = self.transparency {
                encoder.set_trns(transparency);
            }
            let mut writer = encoder.write_header().expect("write a PNG header");
            writer
                .write_image_data(self.data)
                .expect("write PNG image data");
            writer.finish().expect("finish the PNG");
        }
        bytes
    }
}

/// Returns a small PNG whose header declares an 8-bit RGB image of
/// `width` x `height` pixels, with one tiny `IDAT` chunk.
pub fn png_with_header(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("write a PNG header");
        // A zlib stream of one empty stored block.
        let empty_zlib = [
            0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01,
        ];
        writer
            .write_chunk(png::chunk::IDAT, &empty_zlib)
            .expect("write an IDAT chunk");
        // Dropping the writer appends IEND.
    }
    bytes
}

/// Inserts an APP1 Exif segment with the given orientation tag right
/// after the SOI marker of `jpeg`.
pub fn splice_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "not a JPEG");
    let mut payload = b"Exif\0\0".to_vec();
    // Big-endian TIFF header with the first IFD at offset 8.
    payload.extend_from_slice(b"MM\0\x2a");
    payload.extend_from_slice(&8u32.to_be_bytes());
    // One IFD entry: tag 0x0112 (Orientation), type 3 (SHORT), count 1.
    payload.extend_from_slice(&1u16.to_be_bytes());
    payload.extend_from_slice(&0x0112u16.to_be_bytes());
    payload.extend_from_slice(&3u16.to_be_bytes());
    payload.extend_from_slice(&1u32.to_be_bytes());
    payload.extend_from_slice(&orientation.to_be_bytes());
    payload.extend_from_slice(&[0, 0]);
    // No next IFD.
    payload.extend_from_slice(&0u32.to_be_bytes());

    let length = u16::try_from(payload.len() + 2).expect("short segment");
    let mut spliced = jpeg[..2].to_vec();
    spliced.extend_from_slice(&[0xFF, 0xE1]);
    spliced.extend_from_slice(&length.to_be_bytes());
    spliced.extend_from_slice(&payload);
    spliced.extend_from_slice(&jpeg[2..]);
    spliced
}

/// Encodes bytes as standard base64 with padding.
pub fn encode_b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Writes a nested JSON array of shape `dims`, each number from `value`.
pub fn nested_json(dims: [usize; 3], value: impl Fn(usize, usize, usize) -> String) -> String {
    let outer: Vec<String> = (0..dims[0])
        .map(|i| {
            let middle: Vec<String> = (0..dims[1])
                .map(|j| {
                    let inner: Vec<String> = (0..dims[2]).map(|k| value(i, j, k)).collect();
                    format!("[{}]", inner.join(","))
                })
                .collect();
            format!("[{}]", middle.join(","))
        })
        .collect();
    format!("[{}]", outer.join(","))
}

/// Writes CIFAR-layout bytes as a 32x32x3 (height, width, channel) JSON array.
pub fn json_hwc(cifar: &[u8]) -> String {
    nested_json([32, 32, 3], |h, w, c| {
        cifar[c * PLANE_PIXELS + h * IMAGE_SIDE + w].to_string()
    })
}

/// Writes CIFAR-layout bytes as a 3x32x32 (channel, height, width) JSON array.
pub fn json_chw(cifar: &[u8]) -> String {
    nested_json([3, 32, 32], |c, h, w| {
        cifar[c * PLANE_PIXELS + h * IMAGE_SIDE + w].to_string()
    })
}

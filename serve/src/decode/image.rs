//! PNG and JPEG decoding to one 32x32 image in CIFAR layout.
//!
//! Every colour type the `image` crate (0.25) decodes is accepted: grey,
//! grey with alpha, palette, RGB and RGBA, at 8 or 16 bits per channel.
//! Greyscale becomes R = G = B. The EXIF orientation (of a JPEG, or of a
//! PNG with an `eXIf` chunk) is applied first. Then alpha is composited
//! over black: each colour value becomes `round(value * alpha / max)`.
//! This happens before any resampling, so that transparent pixels add no
//! colour to their neighbours. Last, the image is resized to 32x32 with
//! [`RESIZE_FILTER`], stretched if it is not square. An 8-bit RGB image
//! that is already 32x32 is not resampled, so its bytes reach the network
//! unchanged.

use std::io::Cursor;

use image::imageops::FilterType;
use image::{
    DynamicImage, ImageBuffer, ImageDecoder, ImageError, ImageFormat, ImageReader, Rgba, RgbaImage,
};

use super::{hwc_to_chw, jpeg_markers, DecodeError, Format, Limits, IMAGE_SIDE};

/// Filter used to resize to 32x32. `Triangle` is bilinear interpolation
/// whose support widens with the scale factor when downscaling, so a large
/// image is averaged over each output pixel's area instead of aliased.
pub const RESIZE_FILTER: FilterType = FilterType::Triangle;

/// Image formats this module decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
}

impl ImageKind {
    /// Returns the body format of this image kind.
    pub fn format(self) -> Format {
        match self {
            ImageKind::Png => Format::Png,
            ImageKind::Jpeg => Format::Jpeg,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ImageKind::Png => "PNG",
            ImageKind::Jpeg => "JPEG",
        }
    }

    fn image_format(self) -> ImageFormat {
        match self {
            ImageKind::Png => ImageFormat::Png,
            ImageKind::Jpeg => ImageFormat::Jpeg,
        }
    }
}

/// Pixels that the images of one request may still decode to.
#[derive(Debug, Clone)]
pub struct PixelBudget {
    limit: u64,
    used: u64,
}

impl PixelBudget {
    /// Creates a budget of `limit` pixels.
    pub fn new(limit: u64) -> Self {
        Self { limit, used: 0 }
    }

    /// Takes `pixels` from the budget.
    ///
    /// # Errors
    /// [`DecodeError::TooLarge`] when the total would exceed the limit.
    fn take(&mut self, pixels: u64) -> Result<(), DecodeError> {
        let total = self.used.saturating_add(pixels);
        if total > self.limit {
            return Err(DecodeError::TooLarge(format!(
                "the images of this request decode to {total} pixels or more in total, \
                 above the limit of {} pixels per request; send fewer or smaller images",
                self.limit
            )));
        }
        self.used = total;
        Ok(())
    }
}

/// Decodes one PNG or JPEG file to [`super::IMAGE_BYTES`] bytes in CIFAR layout.
///
/// The dimensions and the decoded size are checked against `limits`, and
/// the pixels taken from `budget`, from the header alone, before any pixel
/// data is decoded.
///
/// # Errors
/// [`DecodeError::TooLarge`] for an image over a limit and
/// [`DecodeError::Invalid`] for a truncated, corrupt or unsupported file,
/// with the decoder's reason.
pub fn decode_image(
    kind: ImageKind,
    bytes: &[u8],
    limits: &Limits,
    budget: &mut PixelBudget,
) -> Result<Vec<u8>, DecodeError> {
    let mut image = decode_checked(kind, bytes, limits, budget)?;
    if image.has_alpha() {
        image = composite_over_black(image);
    }
    let (width, height) = (image.width(), image.height());
    let side = IMAGE_SIDE as u32;
    if (width, height) != (side, side) {
        image = image.resize_exact(side, side, RESIZE_FILTER);
    }
    Ok(hwc_to_chw(image.to_rgb8().as_raw()))
}

/// Reads the header, checks it against the limits, decodes the pixels and
/// applies the EXIF orientation.
fn decode_checked(
    kind: ImageKind,
    bytes: &[u8],
    limits: &Limits,
    budget: &mut PixelBudget,
) -> Result<DynamicImage, DecodeError> {
    let invalid_jpeg = |reason: String| {
        DecodeError::Invalid(format!(
            "invalid JPEG image: {reason}; send the complete file"
        ))
    };
    let scan_bytes = match kind {
        ImageKind::Jpeg => Some(jpeg_markers::check_complete(bytes).map_err(invalid_jpeg)?),
        ImageKind::Png => None,
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), kind.image_format());
    // The dimension caps are checked below, so that the message can name
    // the dimensions; only the allocation cap goes to the header reader.
    reader.limits(decoder_limits(limits, false));
    let mut decoder = reader
        .into_decoder()
        .map_err(|error| image_error(kind, error))?;

    let (width, height) = decoder.dimensions();
    check_dimensions(kind, width, height, limits)?;
    if let Some(scan_bytes) = scan_bytes {
        jpeg_markers::check_scan_size(width, height, scan_bytes).map_err(invalid_jpeg)?;
    }
    let decoded_bytes = decoder.total_bytes();
    if decoded_bytes > limits.max_decoded_bytes {
        return Err(DecodeError::TooLarge(format!(
            "the {} image is {width}x{height} pixels of colour type {:?}, which decodes to \
             {decoded_bytes} bytes, above the limit of {} bytes; send a smaller image",
            kind.name(),
            decoder.color_type(),
            limits.max_decoded_bytes
        )));
    }
    budget.take(u64::from(width) * u64::from(height))?;

    decoder
        .set_limits(decoder_limits(limits, true))
        .map_err(|error| image_error(kind, error))?;
    let orientation = decoder
        .orientation()
        .map_err(|error| image_error(kind, error))?;
    let mut image =
        DynamicImage::from_decoder(decoder).map_err(|error| image_error(kind, error))?;
    image.apply_orientation(orientation);
    Ok(image)
}

fn decoder_limits(limits: &Limits, with_dimensions: bool) -> image::Limits {
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(limits.max_decoded_bytes);
    if with_dimensions {
        decoder_limits.max_image_width = Some(limits.max_width);
        decoder_limits.max_image_height = Some(limits.max_height);
    }
    decoder_limits
}

fn check_dimensions(
    kind: ImageKind,
    width: u32,
    height: u32,
    limits: &Limits,
) -> Result<(), DecodeError> {
    if width == 0 || height == 0 {
        return Err(DecodeError::Invalid(format!(
            "the {} image is {width}x{height} pixels: it has no pixels to classify",
            kind.name()
        )));
    }
    if width > limits.max_width || height > limits.max_height {
        return Err(DecodeError::TooLarge(format!(
            "the {} image is {width}x{height} pixels, above the limit of {}x{}; \
             send a smaller image",
            kind.name(),
            limits.max_width,
            limits.max_height
        )));
    }
    Ok(())
}

/// Maps a decoder error to a 413 for a limit and a 400 otherwise.
fn image_error(kind: ImageKind, error: ImageError) -> DecodeError {
    match error {
        ImageError::Limits(reason) => DecodeError::TooLarge(format!(
            "the {} image exceeds a decoding limit: {reason}; send a smaller image",
            kind.name()
        )),
        error => DecodeError::Invalid(format!(
            "invalid {} image: {error}; send a complete, valid {} file",
            kind.name(),
            kind.name()
        )),
    }
}

/// Composites an image with alpha over black and returns it fully opaque.
fn composite_over_black(image: DynamicImage) -> DynamicImage {
    match image {
        DynamicImage::ImageLumaA16(_) | DynamicImage::ImageRgba16(_) => {
            let mut rgba = image.into_rgba16();
            composite_rgba16(&mut rgba);
            DynamicImage::ImageRgba16(rgba)
        }
        image => {
            let mut rgba = image.into_rgba8();
            composite_rgba8(&mut rgba);
            DynamicImage::ImageRgba8(rgba)
        }
    }
}

fn composite_rgba8(image: &mut RgbaImage) {
    for pixel in image.pixels_mut() {
        let alpha = u32::from(pixel[3]);
        for channel in 0..3 {
            let value = scale_by_alpha(u32::from(pixel[channel]), alpha, u32::from(u8::MAX));
            pixel[channel] = u8::try_from(value).unwrap_or(u8::MAX);
        }
        pixel[3] = u8::MAX;
    }
}

fn composite_rgba16(image: &mut ImageBuffer<Rgba<u16>, Vec<u16>>) {
    for pixel in image.pixels_mut() {
        let alpha = u32::from(pixel[3]);
        for channel in 0..3 {
            let value = scale_by_alpha(u32::from(pixel[channel]), alpha, u32::from(u16::MAX));
            pixel[channel] = u16::try_from(value).unwrap_or(u16::MAX);
        }
        pixel[3] = u16::MAX;
    }
}

/// Returns `round(value * alpha / max)`. `max` is odd (255 or 65535), so
/// the exact quotient is never halfway between two integers and adding
/// `(max - 1) / 2` before the integer division rounds it correctly.
fn scale_by_alpha(value: u32, alpha: u32, max: u32) -> u32 {
    let product = u64::from(value) * u64::from(alpha);
    let rounded = (product + u64::from(max / 2)) / u64::from(max);
    u32::try_from(rounded).unwrap_or(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::fixtures::{
        cifar_image, encode_jpeg, encode_png, hwc_of, png_with_header, splice_exif_orientation,
        RawPng,
    };
    use crate::decode::IMAGE_BYTES;

    fn decode(kind: ImageKind, bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let limits = Limits::default();
        decode_image(
            kind,
            bytes,
            &limits,
            &mut PixelBudget::new(limits.max_request_pixels),
        )
    }

    #[test]
    fn rgb_32x32_passes_through() {
        let cifar = cifar_image(11);
        let png = encode_png(&DynamicImage::ImageRgb8(hwc_of(&cifar)));
        assert_eq!(decode(ImageKind::Png, &png).unwrap(), cifar);
    }

    #[test]
    fn larger_image_is_averaged() {
        // A 64x64 checkerboard of black and white pixels averages to grey,
        // where a nearest-neighbour resize would keep black or white.
        let board = image::RgbImage::from_fn(64, 64, |x, y| {
            let value = if (x + y) % 2 == 0 { 0 } else { 255 };
            image::Rgb([value, value, value])
        });
        let png = encode_png(&DynamicImage::ImageRgb8(board));
        let pixels = decode(ImageKind::Png, &png).unwrap();
        assert_eq!(pixels.len(), IMAGE_BYTES);
        for (position, &value) in pixels.iter().enumerate() {
            assert!((100..=155).contains(&value), "byte {position} is {value}");
        }
    }

    #[test]
    fn non_square_image_is_stretched() {
        // Left half red, right half blue, 96x16: after the resize the left
        // columns are red and the right columns blue on every row.
        let halves = image::RgbImage::from_fn(96, 16, |x, _| {
            if x < 48 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            }
        });
        let png = encode_png(&DynamicImage::ImageRgb8(halves));
        let pixels = decode(ImageKind::Png, &png).unwrap();
        for row in 0..32 {
            let left = row * 32;
            let right = row * 32 + 31;
            assert_eq!(pixels[left], 255, "red at row {row}, column 0");
            assert_eq!(pixels[2048 + left], 0, "blue at row {row}, column 0");
            assert_eq!(pixels[right], 0, "red at row {row}, column 31");
            assert_eq!(pixels[2048 + right], 255, "blue at row {row}, column 31");
        }
    }

    #[test]
    fn alpha_composites_over_black() {
        assert_eq!(scale_by_alpha(200, 255, 255), 200);
        assert_eq!(scale_by_alpha(200, 0, 255), 0);
        assert_eq!(scale_by_alpha(255, 128, 255), 128);
        assert_eq!(scale_by_alpha(101, 128, 255), 51);
        assert_eq!(scale_by_alpha(65535, 32768, 65535), 32768);
    }

    #[test]
    fn rejects_huge_header_fast() {
        let png = png_with_header(100_000, 100_000);
        assert!(png.len() < 1024, "{} bytes", png.len());
        let started = std::time::Instant::now();
        let error = decode(ImageKind::Png, &png).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(error.status(), 413, "{error}");
        assert!(error.message().contains("100000x100000"), "{error}");
        assert!(error.message().contains("8192x8192"), "{error}");
    }

    #[test]
    fn rejects_decoded_size_over_cap() {
        let png = png_with_header(8000, 8000);
        let limits = Limits {
            max_decoded_bytes: 1024 * 1024,
            ..Limits::default()
        };
        let mut budget = PixelBudget::new(limits.max_request_pixels);
        let error = decode_image(ImageKind::Png, &png, &limits, &mut budget).unwrap_err();
        assert_eq!(error.status(), 413, "{error}");
        assert!(error.message().contains("192000000 bytes"), "{error}");
        assert!(error.message().contains("limit of 1048576"), "{error}");
    }

    #[test]
    fn budget_spans_images() {
        let png = encode_png(&DynamicImage::ImageRgb8(image::RgbImage::new(40, 40)));
        let limits = Limits::default();
        let mut budget = PixelBudget::new(2 * 40 * 40);
        for _ in 0..2 {
            decode_image(ImageKind::Png, &png, &limits, &mut budget).unwrap();
        }
        let error = decode_image(ImageKind::Png, &png, &limits, &mut budget).unwrap_err();
        assert_eq!(error.status(), 413, "{error}");
        assert!(error.message().contains("limit of 3200 pixels"), "{error}");
    }

    #[test]
    fn truncated_files_are_invalid() {
        let cifar = cifar_image(3);
        let image = DynamicImage::ImageRgb8(hwc_of(&cifar));
        let cases = [
            (ImageKind::Png, encode_png(&image)),
            (ImageKind::Jpeg, encode_jpeg(&image)),
        ];
        for (kind, bytes) in cases {
            for length in [3, 8, 20, bytes.len() / 2, bytes.len() - 10] {
                let error = decode(kind, &bytes[..length]).unwrap_err();
                assert_eq!(error.status(), 400, "{kind:?} cut to {length}: {error}");
                let expected = format!("invalid {} image", kind.name());
                assert!(error.message().contains(&expected), "{error}");
            }
        }
    }

    #[test]
    fn garbage_after_png_signature() {
        let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
        bytes.extend((0..500).map(|index| (index * 37 % 251) as u8));
        let error = decode(ImageKind::Png, &bytes).unwrap_err();
        assert_eq!(error.status(), 400, "{error}");
        assert!(error.message().contains("invalid PNG image"), "{error}");
    }

    /// CIFAR bytes with every plane equal to `plane`.
    fn grey_cifar(plane: &[u8]) -> Vec<u8> {
        plane.repeat(3)
    }

    fn pixel_values(count: usize, step: usize) -> Vec<u8> {
        (0..count).map(|index| (index * step % 256) as u8).collect()
    }

    fn png(color: png::ColorType, depth: png::BitDepth, data: &[u8]) -> Vec<u8> {
        RawPng {
            width: 32,
            height: 32,
            color,
            depth,
            data,
            palette: None,
            transparency: None,
        }
        .encode()
    }

    #[test]
    fn grey_png_becomes_rgb() {
        let grey = pixel_values(1024, 7);
        let bytes = png(png::ColorType::Grayscale, png::BitDepth::Eight, &grey);
        assert_eq!(decode(ImageKind::Png, &bytes).unwrap(), grey_cifar(&grey));
    }

    #[test]
    fn one_bit_grey_png_expands() {
        // 32 pixels per row are 4 bytes: alternate 0 and 1 bits.
        let rows = vec![0b1010_1010; 32 * 4];
        let bytes = png(png::ColorType::Grayscale, png::BitDepth::One, &rows);
        let pixels = decode(ImageKind::Png, &bytes).unwrap();
        assert_eq!(pixels[0], 255);
        assert_eq!(pixels[1], 0);
        assert_eq!(pixels[2048 + 2], 255);
    }

    #[test]
    fn grey_alpha_png_composites() {
        let grey = pixel_values(1024, 7);
        let alpha = pixel_values(1024, 13);
        let data: Vec<u8> = grey
            .iter()
            .zip(&alpha)
            .flat_map(|(&g, &a)| [g, a])
            .collect();
        let bytes = png(png::ColorType::GrayscaleAlpha, png::BitDepth::Eight, &data);
        let expected: Vec<u8> = grey
            .iter()
            .zip(&alpha)
            .map(|(&g, &a)| (f64::from(g) * f64::from(a) / 255.0).round() as u8)
            .collect();
        assert_eq!(
            decode(ImageKind::Png, &bytes).unwrap(),
            grey_cifar(&expected)
        );
    }

    #[test]
    fn palette_png_uses_palette() {
        let palette = [255, 0, 0, 0, 255, 0, 0, 0, 255, 200, 100, 50];
        let transparency = [255, 255, 255, 0];
        let indices: Vec<u8> = (0..1024).map(|index| (index % 4) as u8).collect();
        let bytes = RawPng {
            width: 32,
            height: 32,
            color: png::ColorType::Indexed,
            depth: png::BitDepth::Eight,
            data: &indices,
            palette: Some(&palette),
            transparency: Some(&transparency),
        }
        .encode();
        let pixels = decode(ImageKind::Png, &bytes).unwrap();
        // Pixels 0, 1 and 2 are opaque red, green and blue. Pixel 3 is
        // fully transparent, so it becomes black.
        let at = |channel: usize, pixel: usize| pixels[channel * 1024 + pixel];
        assert_eq!([at(0, 0), at(1, 0), at(2, 0)], [255, 0, 0]);
        assert_eq!([at(0, 1), at(1, 1), at(2, 1)], [0, 255, 0]);
        assert_eq!([at(0, 2), at(1, 2), at(2, 2)], [0, 0, 255]);
        assert_eq!([at(0, 3), at(1, 3), at(2, 3)], [0, 0, 0]);
    }

    #[test]
    fn rgba_png_composites() {
        let cifar = cifar_image(8);
        let rgb = hwc_of(&cifar);
        let alpha = pixel_values(1024, 29);
        let rgba = image::RgbaImage::from_fn(32, 32, |x, y| {
            let [r, g, b] = rgb.get_pixel(x, y).0;
            image::Rgba([r, g, b, alpha[(y * 32 + x) as usize]])
        });
        let bytes = encode_png(&DynamicImage::ImageRgba8(rgba));
        let pixels = decode(ImageKind::Png, &bytes).unwrap();
        for (index, (&value, &original)) in pixels.iter().zip(&cifar).enumerate() {
            let a = f64::from(alpha[index % 1024]);
            let expected = (f64::from(original) * a / 255.0).round() as u8;
            assert_eq!(value, expected, "byte {index}");
        }
        let opaque = image::RgbaImage::from_fn(32, 32, |x, y| {
            let [r, g, b] = rgb.get_pixel(x, y).0;
            image::Rgba([r, g, b, 255])
        });
        let bytes = encode_png(&DynamicImage::ImageRgba8(opaque));
        assert_eq!(decode(ImageKind::Png, &bytes).unwrap(), cifar);
    }

    #[test]
    fn sixteen_bit_png_scales_down() {
        let cifar = cifar_image(6);
        let rgb = hwc_of(&cifar);
        let rgb16: Vec<u8> = rgb
            .as_raw()
            .iter()
            .flat_map(|&value| (u16::from(value) * 257).to_be_bytes())
            .collect();
        let bytes = png(png::ColorType::Rgb, png::BitDepth::Sixteen, &rgb16);
        assert_eq!(decode(ImageKind::Png, &bytes).unwrap(), cifar);

        let grey = pixel_values(1024, 3);
        let grey16: Vec<u8> = grey
            .iter()
            .flat_map(|&value| (u16::from(value) * 257).to_be_bytes())
            .collect();
        let bytes = png(png::ColorType::Grayscale, png::BitDepth::Sixteen, &grey16);
        assert_eq!(decode(ImageKind::Png, &bytes).unwrap(), grey_cifar(&grey));
    }

    #[test]
    fn sixteen_bit_alpha_composites() {
        // Alternate opaque, transparent and half-transparent white pixels.
        let alphas = [u16::MAX, 0, 32768];
        let data: Vec<u8> = (0..1024)
            .flat_map(|index| {
                let alpha = alphas[index % 3];
                [u16::MAX, u16::MAX, u16::MAX, alpha]
                    .into_iter()
                    .flat_map(u16::to_be_bytes)
            })
            .collect();
        let bytes = png(png::ColorType::Rgba, png::BitDepth::Sixteen, &data);
        let pixels = decode(ImageKind::Png, &bytes).unwrap();
        assert_eq!(&pixels[..3], &[255, 0, 128]);
        assert_eq!(&pixels[2048..2051], &[255, 0, 128]);
    }

    #[test]
    fn jpeg_orientation_is_applied() {
        // 64x32 with a distinct colour per quadrant, so a rotation shows.
        let landscape = image::RgbImage::from_fn(64, 32, |x, y| {
            image::Rgb([
                if x < 32 { 250 } else { 10 },
                if y < 16 { 240 } else { 20 },
                128,
            ])
        });
        let plain = encode_jpeg(&DynamicImage::ImageRgb8(landscape));
        let rotated = splice_exif_orientation(&plain, 6);

        let decoded = image::load_from_memory(&plain).unwrap();
        let upright = decoded.rotate90();
        assert_eq!((upright.width(), upright.height()), (32, 64));
        let expected = hwc_to_chw(
            upright
                .resize_exact(32, 32, RESIZE_FILTER)
                .to_rgb8()
                .as_raw(),
        );
        let unrotated = decode(ImageKind::Jpeg, &plain).unwrap();
        assert_ne!(unrotated, expected, "the test image is rotation-invariant");
        assert_eq!(decode(ImageKind::Jpeg, &rotated).unwrap(), expected);
    }

    /// Sets the height and width in the SOF0 segment of a baseline JPEG.
    fn with_frame_size(jpeg: &[u8], width: u16, height: u16) -> Vec<u8> {
        let sof = jpeg
            .windows(2)
            .position(|pair| pair == [0xFF, 0xC0])
            .expect("a baseline JPEG has an SOF0 segment");
        let mut bytes = jpeg.to_vec();
        // FF C0, a 2-byte length, the sample precision, then height and width.
        bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
        bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
        bytes
    }

    #[test]
    fn jpeg_with_too_little_data_for_its_size_fails() {
        // A complete 32x32 file whose header declares 8192x8192 pixels:
        // zune-jpeg would fill the missing rows with grey.
        let small = encode_jpeg(&DynamicImage::ImageRgb8(hwc_of(&cifar_image(21))));
        assert!(decode(ImageKind::Jpeg, &small).is_ok());
        let error = decode(ImageKind::Jpeg, &with_frame_size(&small, 8192, 8192)).unwrap_err();
        assert_eq!(error.status(), 400, "{error}");
        assert!(error.message().contains("8192x8192"), "{error}");
        assert!(error.message().contains("truncated or corrupt"), "{error}");
    }
}

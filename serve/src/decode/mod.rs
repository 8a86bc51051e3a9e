//! Decoding of `POST /predict` bodies into one batch of images in CIFAR
//! layout, the input of `model::Network::predict`.
//!
//! The format comes from the `Content-Type` header when there is one, and
//! from the first bytes of the body otherwise: the PNG signature
//! `89 50 4E 47 0D 0A 1A 0A`, the JPEG signature `FF D8 FF`, or `{` as the
//! first non-whitespace byte for JSON. A body with neither is raw CIFAR
//! bytes. A declared type that the body contradicts is rejected with both
//! named.

mod image;
mod jpeg_markers;
mod json;
mod raw;

use std::fmt;

pub use self::image::{ImageKind, PixelBudget, RESIZE_FILTER};

/// Side of a CIFAR image in pixels.
pub const IMAGE_SIDE: usize = 32;

/// Bytes of one image in CIFAR layout: 1024 red, then 1024 green, then 1024
/// blue values, each plane row-major.
pub const IMAGE_BYTES: usize = data::IMAGE_BYTES;

/// Pixels in one colour plane of a CIFAR image.
const PLANE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
const JPEG_SIGNATURE: &[u8] = &[0xFF, 0xD8, 0xFF];

/// Body format of a `POST /predict` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A PNG image.
    Png,
    /// A JPEG image.
    Jpeg,
    /// One or more 3072-byte images in CIFAR layout.
    Raw,
    /// A JSON object `{"instances": [...]}`.
    Json,
}

impl Format {
    /// Returns the name used in the `format` field of the response.
    pub fn name(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Jpeg => "jpeg",
            Format::Raw => "raw",
            Format::Json => "json",
        }
    }
}

/// A decoded body: `count` images of [`IMAGE_BYTES`] each, in CIFAR layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// `count * IMAGE_BYTES` bytes, image after image.
    pub pixels: Vec<u8>,
    /// Number of images, at least 1.
    pub count: usize,
    /// Format the body was decoded as.
    pub format: Format,
}

/// Caps on the work one request may cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum images in one request.
    pub max_batch: usize,
    /// Maximum width of one PNG or JPEG image, in pixels.
    pub max_width: u32,
    /// Maximum height of one PNG or JPEG image, in pixels.
    pub max_height: u32,
    /// Maximum size of one decoded PNG or JPEG image in memory, in bytes
    /// (width times height times bytes per pixel of its colour type).
    pub max_decoded_bytes: u64,
    /// Maximum pixels of all the PNG and JPEG images of one request, so
    /// that a JSON batch of small compressed files cannot multiply the cost
    /// of one large image.
    pub max_request_pixels: u64,
}

impl Default for Limits {
    /// 256 images, 8192x8192 pixels per image, 256 MiB per decoded image
    /// (an 8192x8192 RGBA image with 8 bits per channel), and 8192x8192
    /// pixels per request.
    fn default() -> Self {
        Self {
            max_batch: 256,
            max_width: 8192,
            max_height: 8192,
            max_decoded_bytes: 256 * 1024 * 1024,
            max_request_pixels: 8192 * 8192,
        }
    }
}

/// Reason a body was not decoded, with the HTTP status it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// A malformed or contradictory body: 400.
    Invalid(String),
    /// A body within the size cap that would exceed one of the [`Limits`]: 413.
    TooLarge(String),
    /// A `Content-Type` this endpoint does not take: 415.
    UnsupportedMediaType(String),
}

impl DecodeError {
    /// Returns the HTTP status code of this error.
    pub fn status(&self) -> u16 {
        match self {
            DecodeError::Invalid(_) => 400,
            DecodeError::TooLarge(_) => 413,
            DecodeError::UnsupportedMediaType(_) => 415,
        }
    }

    /// Returns the message, which names the value and the fix.
    pub fn message(&self) -> &str {
        match self {
            DecodeError::Invalid(message)
            | DecodeError::TooLarge(message)
            | DecodeError::UnsupportedMediaType(message) => message,
        }
    }

    /// Prefixes the message with `context`, keeping the kind.
    fn context(self, context: &str) -> Self {
        let join = |message: String| format!("{context}: {message}");
        match self {
            DecodeError::Invalid(message) => DecodeError::Invalid(join(message)),
            DecodeError::TooLarge(message) => DecodeError::TooLarge(join(message)),
            DecodeError::UnsupportedMediaType(message) => {
                DecodeError::UnsupportedMediaType(join(message))
            }
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.message())
    }
}

impl std::error::Error for DecodeError {}

/// Decodes a `POST /predict` body sent with `content_type` (the header
/// value, parameters allowed).
///
/// Without a `Content-Type`, or with `application/x-www-form-urlencoded`
/// (what `curl --data-binary` sends by default), the format comes from the
/// first bytes. `FF D8 FF` and `{` are also valid first pixel values of a
/// raw image. So a body detected as JPEG or JSON that fails to decode as
/// such is decoded as raw bytes when its length is a positive multiple of
/// [`IMAGE_BYTES`].
///
/// # Errors
/// [`DecodeError::UnsupportedMediaType`] for another `Content-Type`,
/// [`DecodeError::Invalid`] for a body that contradicts its
/// `Content-Type` or does not decode, and [`DecodeError::TooLarge`] for a
/// body over one of the `limits`.
pub fn decode_body(
    content_type: Option<&str>,
    body: &[u8],
    limits: &Limits,
) -> Result<Batch, DecodeError> {
    let declared = declared_format(content_type)?;
    let detected = detect_format(body);
    match declared {
        Some((format, media_type)) => {
            check_agreement(format, media_type, detected, body)?;
            decode_as(format, body, limits)
        }
        None => decode_detected(detected, body, limits),
    }
}

/// Maps a `Content-Type` value to a format and its normalised media type,
/// or to `None` when the format is to be detected from the body.
fn declared_format(content_type: Option<&str>) -> Result<Option<(Format, String)>, DecodeError> {
    let Some(value) = content_type else {
        return Ok(None);
    };
    let media_type = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let format = match media_type.as_str() {
        "" | "application/x-www-form-urlencoded" => return Ok(None),
        "image/png" => Format::Png,
        "image/jpeg" | "image/jpg" => Format::Jpeg,
        "application/octet-stream" => Format::Raw,
        "application/json" => Format::Json,
        _ => {
            return Err(DecodeError::UnsupportedMediaType(format!(
                "unsupported Content-Type '{value}': send image/png, image/jpeg, \
                 application/json or application/octet-stream (raw CIFAR bytes), \
                 or no Content-Type to detect the format from the body"
            )))
        }
    };
    Ok(Some((format, media_type)))
}

/// Detects PNG, JPEG or JSON from the first bytes; `None` for anything else.
fn detect_format(body: &[u8]) -> Option<Format> {
    if body.starts_with(PNG_SIGNATURE) {
        Some(Format::Png)
    } else if body.starts_with(JPEG_SIGNATURE) {
        Some(Format::Jpeg)
    } else if first_non_whitespace(body) == Some(b'{') {
        Some(Format::Json)
    } else {
        None
    }
}

fn first_non_whitespace(body: &[u8]) -> Option<u8> {
    body.iter()
        .copied()
        .find(|byte| !matches!(byte, b' ' | b'\t' | b'\n' | b'\r'))
}

/// Rejects a body whose first bytes contradict its declared format.
///
/// A raw body may start with the JPEG signature or `{`, since those are
/// valid pixel values, but not with the 8-byte PNG signature.
fn check_agreement(
    declared: Format,
    media_type: String,
    detected: Option<Format>,
    body: &[u8],
) -> Result<(), DecodeError> {
    let agrees = match declared {
        Format::Raw => detected != Some(Format::Png),
        Format::Png | Format::Jpeg | Format::Json => detected == Some(declared),
    };
    if agrees {
        return Ok(());
    }
    let suggestion = match detected {
        Some(format) => format!(
            "send Content-Type: {} or no Content-Type",
            media_type_of(format)
        ),
        None => format!("send a valid {} body", describe_format(declared)),
    };
    Err(DecodeError::Invalid(format!(
        "Content-Type {media_type} does not match the body, which {}; {suggestion}",
        describe_start(detected, body)
    )))
}

fn media_type_of(format: Format) -> &'static str {
    match format {
        Format::Png => "image/png",
        Format::Jpeg => "image/jpeg",
        Format::Raw => "application/octet-stream",
        Format::Json => "application/json",
    }
}

fn describe_format(format: Format) -> &'static str {
    match format {
        Format::Png => "PNG",
        Format::Jpeg => "JPEG",
        Format::Raw => "raw",
        Format::Json => "JSON",
    }
}

/// Describes how the body starts, for a mismatch message.
fn describe_start(detected: Option<Format>, body: &[u8]) -> String {
    match detected {
        Some(Format::Png) => "starts with the PNG signature".to_owned(),
        Some(Format::Jpeg) => "starts with the JPEG signature FF D8 FF".to_owned(),
        Some(Format::Json) => "starts with '{' like a JSON object".to_owned(),
        Some(Format::Raw) | None if body.is_empty() => "is empty".to_owned(),
        Some(Format::Raw) | None => {
            let first: Vec<String> = body
                .iter()
                .take(8)
                .map(|byte| format!("{byte:02X}"))
                .collect();
            format!(
                "has no PNG, JPEG or JSON signature (first bytes: {})",
                first.join(" ")
            )
        }
    }
}

fn decode_as(format: Format, body: &[u8], limits: &Limits) -> Result<Batch, DecodeError> {
    match format {
        Format::Png => decode_single_image(ImageKind::Png, body, limits),
        Format::Jpeg => decode_single_image(ImageKind::Jpeg, body, limits),
        Format::Raw => raw::decode_raw(body, limits),
        Format::Json => json::decode_json(body, limits),
    }
}

/// Decodes a body whose format was detected from its first bytes.
fn decode_detected(
    detected: Option<Format>,
    body: &[u8],
    limits: &Limits,
) -> Result<Batch, DecodeError> {
    let Some(format) = detected else {
        return raw::decode_raw(body, limits);
    };
    match decode_as(format, body, limits) {
        Err(DecodeError::Invalid(_)) if format != Format::Png && raw::fits_raw(body.len()) => {
            raw::decode_raw(body, limits)
        }
        result => result,
    }
}

fn decode_single_image(
    kind: ImageKind,
    body: &[u8],
    limits: &Limits,
) -> Result<Batch, DecodeError> {
    let mut budget = PixelBudget::new(limits.max_request_pixels);
    let pixels = image::decode_image(kind, body, limits, &mut budget)?;
    Ok(Batch {
        pixels,
        count: 1,
        format: kind.format(),
    })
}

/// Converts one 32x32 image from interleaved RGB (height, width, channel)
/// to CIFAR layout (channel, height, width).
fn hwc_to_chw(interleaved: &[u8]) -> Vec<u8> {
    debug_assert_eq!(interleaved.len(), IMAGE_BYTES);
    let mut planar = vec![0; IMAGE_BYTES];
    for (pixel, rgb) in interleaved.chunks_exact(3).enumerate() {
        for (channel, &value) in rgb.iter().enumerate() {
            planar[channel * PLANE_PIXELS + pixel] = value;
        }
    }
    planar
}

#[cfg(test)]
pub(crate) mod fixtures;

#[cfg(test)]
mod tests;

//! `POST /predict` bodies in every format: PNG, JPEG, raw CIFAR bytes and
//! JSON instances (arrays and base64), with and without a `Content-Type`.
//!
//! Input: the first byte picks the `Content-Type` header from
//! `CONTENT_TYPES`; the rest is the body.
#![no_main]

use cifaas_serve::decode::{decode_body, DecodeError, Format, Limits, IMAGE_BYTES};
use libfuzzer_sys::fuzz_target;

/// Header values sent with the body; `None` sends no `Content-Type`.
const CONTENT_TYPES: [Option<&str>; 9] = [
    None,
    Some("image/png"),
    Some("image/jpeg"),
    Some("application/octet-stream"),
    Some("application/json; charset=utf-8"),
    Some("application/x-www-form-urlencoded"),
    Some("image/jpg"),
    Some("text/plain"),
    Some(""),
];

fuzz_target!(|input: &[u8]| {
    let Some((&selector, body)) = input.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    let limits = Limits::default();
    match decode_body(content_type, body, &limits) {
        Ok(batch) => {
            assert!(
                (1..=limits.max_batch).contains(&batch.count),
                "{} images decoded, the limit is 1..={}",
                batch.count,
                limits.max_batch
            );
            assert_eq!(
                batch.pixels.len(),
                batch.count * IMAGE_BYTES,
                "{} images must be {} bytes",
                batch.count,
                batch.count * IMAGE_BYTES
            );
            let declared = match content_type.map(|value| value.split(';').next().unwrap_or("")) {
                Some("image/png") => Some(Format::Png),
                Some("image/jpeg" | "image/jpg") => Some(Format::Jpeg),
                Some("application/octet-stream") => Some(Format::Raw),
                Some("application/json") => Some(Format::Json),
                _ => None,
            };
            if let Some(declared) = declared {
                assert_eq!(batch.format, declared, "the declared format was not used");
            }
            if batch.format == Format::Raw {
                assert_eq!(batch.pixels, body, "raw bytes must pass through unchanged");
            }
        }
        Err(error) => {
            assert!(!error.message().is_empty(), "empty error message");
            let expected_status = match error {
                DecodeError::Invalid(_) => 400,
                DecodeError::TooLarge(_) => 413,
                DecodeError::UnsupportedMediaType(_) => 415,
            };
            assert_eq!(error.status(), expected_status);
            if matches!(error, DecodeError::UnsupportedMediaType(_)) {
                assert_eq!(content_type, Some("text/plain"), "415 for {content_type:?}");
            }
        }
    }
});

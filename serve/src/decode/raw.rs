//! Raw bodies: one or more images of exactly 3072 bytes in CIFAR layout,
//! with no header and no label byte.

use super::{Batch, DecodeError, Format, Limits, IMAGE_BYTES};

/// Returns whether `length` is a positive multiple of [`IMAGE_BYTES`].
pub fn fits_raw(length: usize) -> bool {
    length > 0 && length % IMAGE_BYTES == 0
}

/// Decodes a raw body of `N * 3072` bytes into `N` images.
///
/// # Errors
/// [`DecodeError::Invalid`] for a length that is not a positive multiple
/// of 3072 and [`DecodeError::TooLarge`] for more than `limits.max_batch`
/// images.
pub fn decode_raw(body: &[u8], limits: &Limits) -> Result<Batch, DecodeError> {
    if !fits_raw(body.len()) {
        return Err(DecodeError::Invalid(format!(
            "invalid raw image data: received {} bytes, expected 3072 bytes per image \
             (32x32 RGB in CIFAR layout, no label byte), so a positive multiple of 3072; \
             for a PNG, JPEG or JSON body send its Content-Type",
            body.len()
        )));
    }
    let count = body.len() / IMAGE_BYTES;
    check_batch_size(count, limits)?;
    Ok(Batch {
        pixels: body.to_vec(),
        count,
        format: Format::Raw,
    })
}

/// Rejects a batch of more than `limits.max_batch` images.
///
/// # Errors
/// [`DecodeError::TooLarge`] naming `count` and the limit.
pub fn check_batch_size(count: usize, limits: &Limits) -> Result<(), DecodeError> {
    if count > limits.max_batch {
        return Err(DecodeError::TooLarge(format!(
            "the request contains {count} images, above the limit of {} per request; \
             split it into smaller requests",
            limits.max_batch
        )));
    }
    Ok(())
}

/// Checks that one decoded `{"b64": ...}` payload is a single raw image.
///
/// # Errors
/// [`DecodeError::Invalid`] for any length but 3072.
pub fn single_raw_image(bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
    if bytes.len() != IMAGE_BYTES {
        return Err(DecodeError::Invalid(format!(
            "the data is {} bytes and has no PNG or JPEG signature; expected a PNG, \
             a JPEG or one raw image of exactly 3072 bytes in CIFAR layout",
            bytes.len()
        )));
    }
    Ok(bytes.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_image() {
        let body: Vec<u8> = (0..IMAGE_BYTES).map(|index| index as u8).collect();
        let batch = decode_raw(&body, &Limits::default()).unwrap();
        assert_eq!(batch.count, 1);
        assert_eq!(batch.format, Format::Raw);
        assert_eq!(batch.pixels, body);
    }

    #[test]
    fn several_images() {
        let body = vec![7; 3 * IMAGE_BYTES];
        let batch = decode_raw(&body, &Limits::default()).unwrap();
        assert_eq!(batch.count, 3);
        assert_eq!(batch.pixels.len(), 3 * IMAGE_BYTES);
    }

    #[test]
    fn rejects_partial_lengths() {
        for length in [0, 1, 3071, 3073, 6143] {
            let error = decode_raw(&vec![0; length], &Limits::default()).unwrap_err();
            assert_eq!(error.status(), 400, "length {length}");
            let expected = format!("received {length} bytes");
            assert!(error.message().contains(&expected), "{error}");
            assert!(error.message().contains("multiple of 3072"), "{error}");
        }
    }

    #[test]
    fn rejects_batch_over_limit() {
        let limits = Limits {
            max_batch: 2,
            ..Limits::default()
        };
        let error = decode_raw(&vec![0; 3 * IMAGE_BYTES], &limits).unwrap_err();
        assert_eq!(error.status(), 413);
        assert!(error.message().contains("contains 3 images"), "{error}");
        assert!(error.message().contains("limit of 2"), "{error}");
    }

    #[test]
    fn single_raw_image_needs_exact_size() {
        assert_eq!(
            single_raw_image(&[1; IMAGE_BYTES]).unwrap().len(),
            IMAGE_BYTES
        );
        let error = single_raw_image(&[1; 100]).unwrap_err();
        assert_eq!(error.status(), 400);
        assert!(error.message().contains("100 bytes"), "{error}");
    }
}

//! A walk over the marker segments of a JPEG file that finds whether it
//! reaches its end-of-image marker.
//!
//! The `image` crate (0.25) decodes JPEG with zune-jpeg in its lenient
//! mode, which fills the rows of a truncated file with grey instead of
//! failing. This walk rejects such a file before it is decoded.

/// End-of-image marker code.
const EOI: u8 = 0xD9;
/// Start-of-scan marker code: entropy-coded data follows its segment.
const SOS: u8 = 0xDA;

/// Checks that `bytes`, which start with the SOI marker, reach an EOI
/// marker outside any segment. Bytes after the EOI are allowed.
///
/// # Errors
/// A reason naming where the file ends, for a truncated file.
pub fn check_complete(bytes: &[u8]) -> Result<(), String> {
    let mut position = 2;
    loop {
        position = next_marker(bytes, position)?;
        let code = bytes[position];
        position += 1;
        match code {
            EOI => return Ok(()),
            // Markers without a length: SOI, RST0 to RST7 and TEM.
            0xD8 | 0xD0..=0xD7 | 0x01 => continue,
            _ => {}
        }
        let Some(length) = bytes.get(position..position + 2) else {
            return Err(truncated(bytes.len(), code));
        };
        let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
        position += length;
        if position > bytes.len() {
            return Err(truncated(bytes.len(), code));
        }
        if code == SOS {
            position = skip_scan_data(bytes, position)?;
        }
    }
}

/// Returns the index of the code byte of the next marker at or after
/// `position`, skipping any bytes that are not a marker prefix and the
/// `FF` fill bytes before the code.
fn next_marker(bytes: &[u8], mut position: usize) -> Result<usize, String> {
    while position < bytes.len() && bytes[position] != 0xFF {
        position += 1;
    }
    while position < bytes.len() && bytes[position] == 0xFF {
        position += 1;
    }
    if position >= bytes.len() {
        return Err(format!(
            "the file ends after {} bytes without the end-of-image marker FF D9, \
             so it is truncated",
            bytes.len()
        ));
    }
    Ok(position)
}

/// Returns the index of the `FF` that starts the first marker after the
/// entropy-coded data at `position`. Inside that data, `FF 00` is an
/// escaped `FF` byte and `FF D0` to `FF D7` are restart markers.
fn skip_scan_data(bytes: &[u8], mut position: usize) -> Result<usize, String> {
    loop {
        match bytes.get(position..position + 2) {
            None => {
                return Err(format!(
                    "the file ends inside its image data after {} bytes, \
                     so it is truncated",
                    bytes.len()
                ))
            }
            Some([0xFF, next]) if *next != 0x00 && !(0xD0..=0xD7).contains(next) => {
                return Ok(position)
            }
            Some(_) => position += 1,
        }
    }
}

fn truncated(length: usize, code: u8) -> String {
    format!(
        "the file ends inside its FF {code:02X} segment after {length} bytes, so it is truncated"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::fixtures::{cifar_image, encode_jpeg, hwc_of, splice_exif_orientation};
    use image::DynamicImage;

    fn jpeg() -> Vec<u8> {
        encode_jpeg(&DynamicImage::ImageRgb8(hwc_of(&cifar_image(12))))
    }

    #[test]
    fn complete_file_passes() {
        let bytes = jpeg();
        assert_eq!(check_complete(&bytes), Ok(()));
        let mut trailing = bytes.clone();
        trailing.extend_from_slice(b"trailing bytes");
        assert_eq!(check_complete(&trailing), Ok(()));
        assert_eq!(check_complete(&splice_exif_orientation(&bytes, 6)), Ok(()));
    }

    #[test]
    fn every_truncation_fails() {
        let bytes = jpeg();
        for length in 2..bytes.len() {
            let error = check_complete(&bytes[..length]).unwrap_err();
            assert!(error.contains("truncated"), "length {length}: {error}");
            assert!(
                error.contains(&length.to_string()),
                "length {length}: {error}"
            );
        }
    }

    #[test]
    fn segment_lengths_are_followed() {
        // An APP15 segment whose payload contains FF D9 is skipped whole.
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xEF, 0x00, 0x04, 0xFF, 0xD9];
        assert!(check_complete(&bytes).is_err());
        bytes.extend_from_slice(&[0xFF, 0xD9]);
        assert_eq!(check_complete(&bytes), Ok(()));
    }
}

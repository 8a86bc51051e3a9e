//! A walk over the marker segments of a JPEG file that finds whether it
//! reaches its end-of-image marker, and whether its scans hold enough data
//! for the size its frame header declares.
//!
//! The `image` crate (0.25) decodes JPEG with zune-jpeg in its lenient
//! mode, which fills the rows of a truncated file with grey instead of
//! failing. This walk rejects such a file before it is decoded. Without the
//! size check, a 1 KB file that ends properly but declares 8192x8192 pixels
//! would be decoded into 64 million grey pixels, seconds of work.

/// End-of-image marker code.
const EOI: u8 = 0xD9;
/// Start-of-scan marker code: entropy-coded data follows its segment.
const SOS: u8 = 0xDA;
/// Side in pixels of the largest minimum coded unit (MCU): 8x8 blocks at
/// the maximum sampling factor of 4.
const MAX_MCU_SIDE: u64 = 32;

/// Checks that `bytes`, which start with the SOI marker, reach an EOI
/// marker outside any segment, and returns the number of bytes of
/// entropy-coded data in its scans. Bytes after the EOI are allowed.
///
/// # Errors
/// A reason naming where the file ends, for a truncated file.
pub fn check_complete(bytes: &[u8]) -> Result<usize, String> {
    let mut position = 2;
    let mut scan_bytes = 0;
    loop {
        position = next_marker(bytes, position)?;
        let code = bytes[position];
        position += 1;
        match code {
            EOI => return Ok(scan_bytes),
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
            let end = skip_scan_data(bytes, position)?;
            scan_bytes += end - position;
            position = end;
        }
    }
}

/// Checks that `scan_bytes` of entropy-coded data can code a `width` x
/// `height` image. Huffman coding spends at least one bit on the DC
/// coefficient of every block, so each MCU of at most 32x32 pixels takes at
/// least one bit. zune-jpeg 0.5 decodes no arithmetic-coded JPEG (its
/// `UnsupportedSchemes` lists them), which could spend less.
///
/// # Errors
/// A reason naming the size and the data, for a file with too little data.
pub fn check_scan_size(width: u32, height: u32, scan_bytes: usize) -> Result<(), String> {
    let units = u64::from(width).div_ceil(MAX_MCU_SIDE) * u64::from(height).div_ceil(MAX_MCU_SIDE);
    let bits = (scan_bytes as u64).saturating_mul(8);
    if bits < units {
        return Err(format!(
            "the image is {width}x{height} pixels, which takes at least {units} bits of \
             image data, but the file has only {scan_bytes} bytes of it, so it is truncated \
             or corrupt"
        ));
    }
    Ok(())
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
        let scan_bytes = check_complete(&bytes).unwrap();
        assert!(
            scan_bytes > 0 && scan_bytes < bytes.len(),
            "{scan_bytes} scan bytes"
        );
        let mut trailing = bytes.clone();
        trailing.extend_from_slice(b"trailing bytes");
        assert_eq!(check_complete(&trailing), Ok(scan_bytes));
        let rotated = splice_exif_orientation(&bytes, 6);
        assert_eq!(check_complete(&rotated), Ok(scan_bytes));
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
        assert_eq!(check_complete(&bytes), Ok(0));
    }

    #[test]
    fn scan_size_bounds_the_dimensions() {
        assert_eq!(check_scan_size(32, 32, 1), Ok(()));
        assert_eq!(check_scan_size(8192, 8192, 8192), Ok(()));
        let error = check_scan_size(8192, 8192, 8191).unwrap_err();
        assert!(error.contains("8192x8192"), "{error}");
        assert!(error.contains("65536 bits"), "{error}");
        assert!(error.contains("8191 bytes"), "{error}");
        assert!(check_scan_size(33, 1, 0).is_err());
    }
}

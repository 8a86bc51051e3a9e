//! Open Inference Protocol (KServe V2) inference request bodies, JSON only
//! or with binary tensor data, and the `Inference-Header-Content-Length`
//! header that splits them.
//!
//! Input: a body, or `#` + the header's value + `\n` + the body.
#![no_main]

use cifaas_serve::v2::{parse_body, parse_json_size, Pixels, IMAGE_VALUES, MAX_BATCH};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let (header, body) = split_header(input);
    let json_size = match header.map(parse_json_size).transpose() {
        Ok(size) => size,
        Err(message) => {
            assert!(
                message.contains("Inference-Header-Content-Length"),
                "{message}"
            );
            return;
        }
    };
    match parse_body(body, json_size) {
        Ok(request) => {
            assert!(
                (1..=MAX_BATCH).contains(&request.images),
                "{} images accepted",
                request.images
            );
            if let Some(size) = json_size {
                assert!(size <= body.len(), "JSON size {size} beyond the body");
            }
            let values = request.images * IMAGE_VALUES;
            match request.pixels {
                Pixels::Bytes(bytes) => assert_eq!(bytes.len(), values),
                Pixels::Values(floats) => {
                    assert_eq!(floats.len(), values);
                    if let Some(bad) = floats
                        .iter()
                        .find(|value| !(value.is_finite() && (0.0..=255.0).contains(*value)))
                    {
                        panic!("pixel value {bad} accepted");
                    }
                }
            }
        }
        Err(message) => assert!(!message.is_empty(), "empty error message"),
    }
});

/// Splits off the header line when the input starts with `#`.
fn split_header(input: &[u8]) -> (Option<&str>, &[u8]) {
    let Some(rest) = input.strip_prefix(b"#") else {
        return (None, input);
    };
    let end = rest
        .iter()
        .position(|&byte| byte == b'\n')
        .unwrap_or(rest.len());
    let Ok(value) = std::str::from_utf8(&rest[..end]) else {
        return (None, input);
    };
    (Some(value), rest.get(end + 1..).unwrap_or_default())
}

//! Tests of format detection and of the same image in every format.

use ::image::DynamicImage;
use proptest::prelude::*;

use super::fixtures::{
    cifar_image, encode_b64, encode_jpeg, encode_png, hwc_of, json_chw, json_hwc,
};
use super::*;

fn decode(content_type: Option<&str>, body: &[u8]) -> Result<Batch, DecodeError> {
    decode_body(content_type, body, &Limits::default())
}

fn error_of(content_type: Option<&str>, body: &[u8]) -> DecodeError {
    decode(content_type, body).expect_err("the body should be rejected")
}

fn json_body(instance: &str) -> Vec<u8> {
    format!(r#"{{"instances": [{instance}]}}"#).into_bytes()
}

/// Returns `cifar` encoded in every format, each with its Content-Type.
fn encodings(cifar: &[u8]) -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let png = encode_png(&DynamicImage::ImageRgb8(hwc_of(cifar)));
    let flat = serde_json::to_string(cifar).unwrap();
    vec![
        ("raw", "application/octet-stream", cifar.to_vec()),
        ("png", "image/png", png.clone()),
        ("json", "application/json", json_body(&json_hwc(cifar))),
        ("json", "application/json", json_body(&json_chw(cifar))),
        ("json", "application/json", json_body(&flat)),
        (
            "json",
            "application/json",
            json_body(&format!(r#"{{"b64": "{}"}}"#, encode_b64(&png))),
        ),
    ]
}

#[test]
fn every_format_yields_same_tensor() {
    let cifar = cifar_image(42);
    for (format, content_type, body) in encodings(&cifar) {
        for declared in [Some(content_type), None] {
            let batch = decode(declared, &body).unwrap();
            assert_eq!(
                batch.format.name(),
                format,
                "{content_type} as {declared:?}"
            );
            assert_eq!(batch.count, 1, "{content_type} as {declared:?}");
            assert!(
                batch.pixels == cifar,
                "{format} as {declared:?} changed the pixels"
            );
        }
    }
}

#[test]
fn jpeg_decodes_to_one_image() {
    let cifar = cifar_image(1);
    let jpeg = encode_jpeg(&DynamicImage::ImageRgb8(hwc_of(&cifar)));
    for declared in [Some("image/jpeg"), Some("image/jpg"), None] {
        let batch = decode(declared, &jpeg).unwrap();
        assert_eq!(batch.format, Format::Jpeg);
        assert_eq!(batch.pixels.len(), IMAGE_BYTES);
    }
}

#[test]
fn content_type_parameters_and_case() {
    let cifar = cifar_image(3);
    let png = encode_png(&DynamicImage::ImageRgb8(hwc_of(&cifar)));
    for declared in ["IMAGE/PNG", "image/png; charset=binary", " image/png "] {
        assert_eq!(decode(Some(declared), &png).unwrap().format, Format::Png);
    }
    let json = json_body(&serde_json::to_string(&cifar).unwrap());
    let declared = Some("application/json; charset=utf-8");
    assert_eq!(decode(declared, &json).unwrap().format, Format::Json);
}

#[test]
fn curl_form_type_detects_format() {
    let cifar = cifar_image(4);
    let png = encode_png(&DynamicImage::ImageRgb8(hwc_of(&cifar)));
    let form = Some("application/x-www-form-urlencoded");
    assert_eq!(decode(form, &png).unwrap().format, Format::Png);
    assert_eq!(decode(form, &cifar).unwrap().format, Format::Raw);
    assert_eq!(decode(Some(""), &cifar).unwrap().format, Format::Raw);
}

#[test]
fn unsupported_content_type_is_415() {
    for declared in ["text/plain", "image/gif", "multipart/form-data; boundary=x"] {
        let error = error_of(Some(declared), &cifar_image(1));
        assert_eq!(error.status(), 415, "{declared}");
        let expected = format!("unsupported Content-Type '{declared}'");
        assert!(error.message().contains(&expected), "{error}");
        assert!(error.message().contains("image/png"), "{error}");
    }
}

#[test]
fn mismatch_names_type_and_signature() {
    let cifar = cifar_image(5);
    let png = encode_png(&DynamicImage::ImageRgb8(hwc_of(&cifar)));
    let jpeg = encode_jpeg(&DynamicImage::ImageRgb8(hwc_of(&cifar)));
    let json = json_body(&serde_json::to_string(&cifar).unwrap());
    let cases: [(&str, &[u8], &str); 7] = [
        ("image/png", &jpeg, "JPEG signature"),
        ("image/png", &cifar, "no PNG, JPEG or JSON signature"),
        ("image/jpeg", &png, "PNG signature"),
        ("image/jpeg", &json, "'{'"),
        ("application/json", &png, "PNG signature"),
        ("application/octet-stream", &png, "PNG signature"),
        ("application/json", b"", "is empty"),
    ];
    for (declared, body, signature) in cases {
        let error = error_of(Some(declared), body);
        assert_eq!(error.status(), 400, "{declared}: {error}");
        let expected = format!("Content-Type {declared} does not match");
        assert!(error.message().contains(&expected), "{error}");
        assert!(error.message().contains(signature), "{error}");
    }
}

#[test]
fn raw_may_start_like_jpeg_or_json() {
    for start in [&[0xFF, 0xD8, 0xFF][..], b"{", b"  {"] {
        let mut cifar = cifar_image(6);
        cifar[..start.len()].copy_from_slice(start);
        for declared in [Some("application/octet-stream"), None] {
            let batch = decode(declared, &cifar).unwrap();
            assert_eq!(batch.format, Format::Raw, "{start:?} as {declared:?}");
            assert_eq!(batch.pixels, cifar);
        }
    }
}

#[test]
fn detected_errors_keep_their_format() {
    let cifar = cifar_image(7);
    let png = encode_png(&DynamicImage::ImageRgb8(hwc_of(&cifar)));
    let error = error_of(None, &png[..png.len() - 20]);
    assert_eq!(error.status(), 400);
    assert!(error.message().contains("invalid PNG image"), "{error}");

    let error = error_of(None, br#"{"instances": [[1, 2]]}"#);
    assert_eq!(error.status(), 400);
    assert!(error.message().contains("shape [2]"), "{error}");

    let error = error_of(None, &[0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0]);
    assert_eq!(error.status(), 400);
    assert!(error.message().contains("invalid JPEG image"), "{error}");
}

#[test]
fn raw_errors_without_signature() {
    let error = error_of(None, &[1; 3073]);
    assert_eq!(error.status(), 400);
    assert!(error.message().contains("received 3073 bytes"), "{error}");
}

#[test]
fn hwc_to_chw_moves_channels() {
    let interleaved: Vec<u8> = (0..IMAGE_BYTES).map(|index| (index % 3) as u8).collect();
    let planar = hwc_to_chw(&interleaved);
    assert!(planar[..1024].iter().all(|&value| value == 0));
    assert!(planar[1024..2048].iter().all(|&value| value == 1));
    assert!(planar[2048..].iter().all(|&value| value == 2));
}

fn assert_client_error(result: Result<Batch, DecodeError>) -> Result<(), TestCaseError> {
    if let Err(error) = result {
        prop_assert!(
            matches!(error.status(), 400 | 413),
            "status {} for: {}",
            error.status(),
            error
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_bytes_never_panic(
        magic in prop::sample::select(vec![
            &b"\x89PNG\r\n\x1a\n"[..],
            &[0xFF, 0xD8, 0xFF][..],
            &b"{"[..],
            &b""[..],
        ]),
        tail in prop::collection::vec(any::<u8>(), 0..4096),
    ) {
        let mut body = magic.to_vec();
        body.extend_from_slice(&tail);
        assert_client_error(decode(None, &body))?;
        for declared in ["image/png", "image/jpeg", "application/json", "application/octet-stream"] {
            assert_client_error(decode(Some(declared), &body))?;
        }
    }

    #[test]
    fn corrupted_images_never_panic(
        seed in any::<u64>(),
        jpeg in any::<bool>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        cut in any::<prop::sample::Index>(),
    ) {
        let image = DynamicImage::ImageRgb8(hwc_of(&cifar_image(seed)));
        let mut bytes = if jpeg { encode_jpeg(&image) } else { encode_png(&image) };
        for (position, value) in edits {
            let index = position.index(bytes.len());
            bytes[index] = value;
        }
        let length = bytes.len();
        bytes.truncate(length - cut.index(length / 2));
        assert_client_error(decode(None, &bytes))?;
    }
}

/// Inputs that the `predict_body` fuzz target found to hang or crash, by
/// file name in `fuzz/regressions/predict_body/` (a selector byte, then the
/// body), each with the Content-Type that the selector byte picks.
const FUZZ_REGRESSIONS: [(&str, Option<&str>); 1] =
    [("jpeg-8192x8192-in-957-bytes", Some("image/jpeg"))];

#[test]
fn fuzz_regressions_fail_cleanly() {
    let folder =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/predict_body");
    for (name, content_type) in FUZZ_REGRESSIONS {
        let input = std::fs::read(folder.join(name)).expect("read the regression input");
        let error = error_of(content_type, &input[1..]);
        assert_eq!(error.status(), 400, "{name}: {error}");
        assert!(
            error.message().contains("truncated or corrupt"),
            "{name}: {error}"
        );
    }
}

//! `POST /predict` with PNG, JPEG, raw and JSON bodies against the real
//! binary: identical images give identical probabilities whatever the
//! format, and bad bodies get 4xx with the reason.

mod support;

use std::io::Cursor;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use image::{DynamicImage, ImageFormat, RgbImage};
use support::{exchange, Files, Response, Serve};

const IMAGE_BYTES: usize = 3072;

/// A ready server in server mode, and the first test image of its dataset.
struct Fixture {
    serve: Serve,
    cifar: Vec<u8>,
    _files: Files,
}

fn start() -> Fixture {
    let files = Files::new(20, 5);
    let mut args = files.args("server");
    args.extend(["--threads".to_owned(), "2".to_owned()]);
    let serve = Serve::start(&args);
    serve.wait_until_ready();
    let dataset = data::Cifar10::open(files.dataset.path()).expect("open the dataset");
    let cifar = dataset.test.image(0).to_vec();
    Fixture {
        serve,
        cifar,
        _files: files,
    }
}

/// `POST path` with `body`, and a `Content-Type` unless it is `None`.
fn post_as(addr: SocketAddr, path: &str, content_type: Option<&str>, body: &[u8]) -> Response {
    let type_line = content_type
        .map(|value| format!("Content-Type: {value}\r\n"))
        .unwrap_or_default();
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{type_line}\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    exchange(addr, &raw).expect("POST request")
}

fn body_text(response: &Response) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

fn rgb_of(cifar: &[u8]) -> RgbImage {
    RgbImage::from_fn(32, 32, |x, y| {
        let pixel = (y * 32 + x) as usize;
        image::Rgb([cifar[pixel], cifar[1024 + pixel], cifar[2048 + pixel]])
    })
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, format).expect("encode an image");
    bytes.into_inner()
}

fn nested(dims: [usize; 3], value: impl Fn(usize, usize, usize) -> u8) -> serde_json::Value {
    (0..dims[0])
        .map(|i| {
            (0..dims[1])
                .map(|j| (0..dims[2]).map(|k| value(i, j, k)).collect::<Vec<u8>>())
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>()
        .into()
}

fn json_body(instances: Vec<serde_json::Value>) -> Vec<u8> {
    serde_json::json!({ "instances": instances })
        .to_string()
        .into_bytes()
}

/// Returns every encoding of `cifar` as (name, Content-Type, body).
fn encodings(cifar: &[u8]) -> Vec<(&'static str, Option<&'static str>, Vec<u8>)> {
    let png = encode(&DynamicImage::ImageRgb8(rgb_of(cifar)), ImageFormat::Png);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    let hwc = nested([32, 32, 3], |h, w, c| cifar[c * 1024 + h * 32 + w]);
    let chw = nested([3, 32, 32], |c, h, w| cifar[c * 1024 + h * 32 + w]);
    let json = Some("application/json");
    vec![
        ("raw, no Content-Type", None, cifar.to_vec()),
        ("raw", Some("application/octet-stream"), cifar.to_vec()),
        ("png", Some("image/png"), png.clone()),
        ("png, no Content-Type", None, png),
        ("json hwc", json, json_body(vec![hwc])),
        ("json chw", json, json_body(vec![chw])),
        ("json flat", json, json_body(vec![cifar.to_vec().into()])),
        (
            "json b64 png",
            json,
            json_body(vec![serde_json::json!({ "b64": b64 })]),
        ),
    ]
}

#[test]
fn formats_give_identical_probabilities() {
    let fixture = start();
    let addr = fixture.serve.addr();
    let mut reference: Option<serde_json::Value> = None;
    for (name, content_type, body) in encodings(&fixture.cifar) {
        let response = post_as(addr, "/predict", content_type, &body);
        assert_eq!(response.status, 200, "{name}: {}", body_text(&response));
        let json = response.json();
        assert_eq!(json["count"], 1, "{name}");
        let expected_format = name.split([' ', ',']).next().unwrap();
        assert_eq!(json["format"], expected_format, "{name}");
        assert!(json["seconds"].as_f64().unwrap() >= 0.0, "{name}");
        let probabilities = json["predictions"][0]["probabilities"].clone();
        assert_eq!(probabilities.as_array().map(Vec::len), Some(10), "{name}");
        assert_eq!(json["probabilities"], probabilities, "{name}: legacy field");
        assert_eq!(
            json["class_index"], json["predictions"][0]["top_k"][0]["class_index"],
            "{name}"
        );
        match &reference {
            None => reference = Some(probabilities),
            Some(expected) => assert_eq!(&probabilities, expected, "{name}"),
        }
    }
}

#[test]
fn batches_and_top_k() {
    let fixture = start();
    let addr = fixture.serve.addr();
    let images: Vec<Vec<u8>> = (0..3u8)
        .map(|seed| {
            fixture
                .cifar
                .iter()
                .map(|value| value.wrapping_add(seed * 40))
                .collect()
        })
        .collect();

    let raw = images.concat();
    let response = post_as(addr, "/predict?top_k=3", None, &raw);
    assert_eq!(response.status, 200, "{}", body_text(&response));
    let from_raw = response.json();
    assert_eq!(from_raw["count"], 3);
    let predictions = from_raw["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 3);
    for (index, prediction) in predictions.iter().enumerate() {
        let top = prediction["top_k"].as_array().unwrap();
        assert_eq!(top.len(), 3, "image {index}");
        let probabilities = prediction["probabilities"].as_array().unwrap();
        let mut sorted: Vec<f64> = probabilities.iter().map(|p| p.as_f64().unwrap()).collect();
        sorted.sort_by(|a, b| b.total_cmp(a));
        for (rank, entry) in top.iter().enumerate() {
            let class_index = entry["class_index"].as_u64().unwrap() as usize;
            assert_eq!(
                entry["probability"], probabilities[class_index],
                "image {index}"
            );
            assert_eq!(
                entry["probability"].as_f64().unwrap(),
                sorted[rank],
                "image {index}"
            );
            assert_eq!(entry["class_name"], model::CLASS_NAMES[class_index]);
        }
    }

    let instances = images.iter().map(|image| image.clone().into()).collect();
    let response = post_as(
        addr,
        "/predict?top_k=3",
        Some("application/json"),
        &json_body(instances),
    );
    assert_eq!(response.status, 200, "{}", body_text(&response));
    assert_eq!(response.json()["predictions"], from_raw["predictions"]);
}

#[test]
fn large_photo_is_accepted() {
    let fixture = start();
    // 1024x1024 noise does not compress: about 3 MiB of PNG, far above
    // the old 64 KiB body cap.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let noise = RgbImage::from_fn(1024, 1024, |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let [r, g, b, ..] = state.to_le_bytes();
        image::Rgb([r, g, b])
    });
    let png = encode(&DynamicImage::ImageRgb8(noise), ImageFormat::Png);
    assert!(png.len() > 3_000_000, "{} bytes", png.len());
    let response = post_as(fixture.serve.addr(), "/predict", Some("image/png"), &png);
    assert_eq!(response.status, 200, "{}", body_text(&response));
    assert_eq!(response.json()["format"], "png");
}

#[test]
fn bad_bodies_get_client_errors() {
    let fixture = start();
    let addr = fixture.serve.addr();
    let png = encode(
        &DynamicImage::ImageRgb8(rgb_of(&fixture.cifar)),
        ImageFormat::Png,
    );
    let too_many = vec![0; 257 * IMAGE_BYTES];
    // Path, Content-Type, body, expected status and part of the message.
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "/predict",
            Some("text/plain"),
            fixture.cifar.clone(),
            415,
            "unsupported Content-Type 'text/plain'",
        ),
        (
            "/predict",
            Some("image/jpeg"),
            png.clone(),
            400,
            "Content-Type image/jpeg does not match",
        ),
        (
            "/predict",
            Some("image/png"),
            png[..png.len() / 2].to_vec(),
            400,
            "invalid PNG image",
        ),
        (
            "/predict",
            None,
            b"{\"instances\": [[1]]}".to_vec(),
            400,
            "shape [1]",
        ),
        ("/predict", None, too_many, 413, "contains 257 images"),
        (
            "/predict?top_k=11",
            None,
            fixture.cifar.clone(),
            400,
            "invalid top_k '11'",
        ),
    ];
    for (path, content_type, body, status, message) in cases {
        let response = post_as(addr, path, content_type, &body);
        assert_eq!(
            response.status,
            status,
            "{path} {content_type:?}: {}",
            body_text(&response)
        );
        let error = response.error_message();
        assert!(error.contains(message), "{message:?} not in: {error}");
    }
    let health = support::get(addr, "/_/health");
    assert_eq!(health.status, 200, "{}", fixture.serve.log());
}

/// Returns the peak resident memory of process `pid` in KiB, from `/proc`.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmHWM line")
}

/// Returns a PNG whose header declares `width` x `height` 8-bit RGB
/// pixels, with an IDAT chunk of one empty zlib block, so the file stays tiny.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("write a PNG header");
        let empty_zlib = [
            0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01,
        ];
        writer
            .write_chunk(png::chunk::IDAT, &empty_zlib)
            .expect("write an IDAT chunk");
    }
    bytes
}

#[test]
fn decompression_bomb_is_rejected() {
    let fixture = start();
    let bomb = png_header_only(100_000, 100_000);
    assert!(bomb.len() < 200, "{} bytes", bomb.len());
    let before = peak_rss_kib(fixture.serve.pid());
    let started = Instant::now();
    let response = post_as(fixture.serve.addr(), "/predict", None, &bomb);
    let elapsed = started.elapsed();
    assert_eq!(response.status, 413, "{}", body_text(&response));
    let error = response.error_message();
    assert!(error.contains("100000x100000"), "{error}");
    assert!(error.contains("8192x8192"), "{error}");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    let after = peak_rss_kib(fixture.serve.pid());
    assert!(
        after < before + 64 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB"
    );
}

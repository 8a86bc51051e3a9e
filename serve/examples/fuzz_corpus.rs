//! Writes the seed corpora of the fuzz targets in `fuzz/`: small valid
//! inputs in every format each target parses, built with the same encoders
//! the tests use.
//!
//! Usage: `cargo run -p cifaas-serve --example fuzz_corpus -- OUT_DIR`
//! writes `OUT_DIR/TARGET/NAME` for each target.

use std::fs;
use std::path::PathBuf;

use anyhow::Context;

use cifaas_serve::decode::{IMAGE_BYTES, IMAGE_SIDE};
use data::ChannelStats;
use image::{DynamicImage, GrayImage, RgbImage};
use model::{Network, TrainConfig, TrainState};

/// The decoder tests' image helpers, compiled into this example too.
#[allow(dead_code)]
#[path = "../src/decode/fixtures.rs"]
mod fixtures;

/// Pixels in one colour plane, as `fixtures` expects from its parent.
const PLANE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;

use fixtures::{cifar_image, encode_b64, encode_jpeg, encode_png, hwc_of, json_chw, json_hwc};

/// First byte of a `predict_body` input: the index of its Content-Type.
mod content_type {
    pub const NONE: u8 = 0;
    pub const PNG: u8 = 1;
    pub const JPEG: u8 = 2;
    pub const RAW: u8 = 3;
    pub const JSON: u8 = 4;
    pub const TEXT: u8 = 7;
}

fn main() -> anyhow::Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("usage: fuzz_corpus OUT_DIR"))?;
    let mut corpus = Corpus { root: out };
    predict_body(&mut corpus)?;
    v2_infer(&mut corpus)?;
    cifar_batch(&mut corpus)?;
    checkpoint(&mut corpus)?;
    http_request(&mut corpus)?;
    println!("wrote the seed corpora under {}", corpus.root.display());
    Ok(())
}

struct Corpus {
    root: PathBuf,
}

impl Corpus {
    fn write(&mut self, target: &str, name: &str, parts: &[&[u8]]) -> anyhow::Result<()> {
        let folder = self.root.join(target);
        fs::create_dir_all(&folder).with_context(|| {
            format!(
                "cannot create the corpus folder {}; pass a folder path that can be created",
                folder.display()
            )
        })?;
        let file = folder.join(name);
        fs::write(&file, parts.concat())
            .with_context(|| format!("cannot write the corpus file {}", file.display()))?;
        Ok(())
    }
}

fn predict_body(corpus: &mut Corpus) -> anyhow::Result<()> {
    let target = "predict_body";
    let cifar = cifar_image(1);
    let rgb = DynamicImage::ImageRgb8(hwc_of(&cifar));
    let large = DynamicImage::ImageRgb8(RgbImage::from_fn(48, 40, |x, y| {
        image::Rgb([x as u8 * 5, y as u8 * 6, (x + y) as u8])
    }));
    let grey = DynamicImage::ImageLuma8(GrayImage::from_fn(32, 32, |x, y| {
        image::Luma([(x * 8 + y) as u8])
    }));
    let images = [
        ("rgb", &rgb),
        ("rgba", &DynamicImage::ImageRgba8(rgb.to_rgba8())),
        ("grey", &grey),
        (
            "grey_alpha",
            &DynamicImage::ImageLumaA8(grey.to_luma_alpha8()),
        ),
        ("rgb16", &DynamicImage::ImageRgb16(rgb.to_rgb16())),
        ("large", &large),
    ];
    for (name, image) in images {
        let png = encode_png(image);
        corpus.write(
            target,
            &format!("png_{name}"),
            &[&[content_type::PNG], &png],
        )?;
        corpus.write(
            target,
            &format!("png_{name}_sniffed"),
            &[&[content_type::NONE], &png],
        )?;
    }
    let palette = fixtures::RawPng {
        width: 4,
        height: 4,
        color: png::ColorType::Indexed,
        depth: png::BitDepth::Two,
        data: &[0b0001_1011; 4],
        palette: Some(&[255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9]),
        transparency: Some(&[255, 128]),
    };
    corpus.write(
        target,
        "png_palette",
        &[&[content_type::PNG], &palette.encode()],
    )?;
    for (name, image) in [("rgb", &rgb), ("grey", &grey), ("large", &large)] {
        let jpeg = encode_jpeg(image);
        corpus.write(
            target,
            &format!("jpeg_{name}"),
            &[&[content_type::JPEG], &jpeg],
        )?;
        corpus.write(
            target,
            &format!("jpeg_{name}_sniffed"),
            &[&[content_type::NONE], &jpeg],
        )?;
    }
    let exif = fixtures::splice_exif_orientation(&encode_jpeg(&rgb), 6);
    corpus.write(target, "jpeg_exif", &[&[content_type::JPEG], &exif])?;

    let two = [cifar.clone(), cifar_image(2)].concat();
    corpus.write(target, "raw_one", &[&[content_type::RAW], &cifar])?;
    corpus.write(target, "raw_two_sniffed", &[&[content_type::NONE], &two])?;

    let flat: Vec<String> = cifar.iter().map(u8::to_string).collect();
    let instances = [
        ("hwc", json_hwc(&cifar)),
        ("chw", json_chw(&cifar)),
        ("flat", format!("[{}]", flat.join(","))),
        ("b64_png", b64_instance(&encode_png(&grey))),
        ("b64_jpeg", b64_instance(&encode_jpeg(&rgb))),
        ("b64_raw", b64_instance(&cifar)),
    ];
    for (name, instance) in &instances {
        let body = format!("{{\"instances\": [{instance}]}}");
        corpus.write(
            target,
            &format!("json_{name}"),
            &[&[content_type::JSON], body.as_bytes()],
        )?;
    }
    let mixed = format!(
        "{{\"signature_name\": \"x\", \"instances\": [{}, {}]}}",
        instances[3].1, instances[5].1
    );
    corpus.write(
        target,
        "json_mixed_sniffed",
        &[&[content_type::NONE], mixed.as_bytes()],
    )?;
    corpus.write(target, "text_plain", &[&[content_type::TEXT], b"hello"])?;
    Ok(())
}

fn b64_instance(bytes: &[u8]) -> String {
    format!("{{\"b64\": \"{}\"}}", encode_b64(bytes))
}

fn v2_infer(corpus: &mut Corpus) -> anyhow::Result<()> {
    let target = "v2_infer";
    let cifar = cifar_image(3);
    let flat: Vec<String> = cifar.iter().map(u8::to_string).collect();
    let uint8 = format!(
        "{{\"id\": \"a\", \"inputs\": [{{\"name\": \"input\", \"datatype\": \"UINT8\", \
         \"shape\": [1, 3, 32, 32], \"data\": [{}]}}]}}",
        flat.join(",")
    );
    corpus.write(target, "uint8_flat", &[uint8.as_bytes()])?;
    let nested = format!(
        "{{\"parameters\": {{}}, \"inputs\": [{{\"name\": \"x\", \"datatype\": \"FP32\", \
         \"shape\": [1, 32, 32, 3], \"data\": [{}]}}], \
         \"outputs\": [{{\"name\": \"probabilities\"}}]}}",
        json_hwc(&cifar)
    );
    corpus.write(target, "fp32_nested_hwc", &[nested.as_bytes()])?;

    let floats: Vec<u8> = cifar
        .iter()
        .flat_map(|&byte| (f32::from(byte) / 2.0).to_le_bytes())
        .collect();
    for (name, datatype, binary) in [("uint8", "UINT8", &cifar), ("fp32", "FP32", &floats)] {
        let json = format!(
            "{{\"inputs\": [{{\"name\": \"input\", \"datatype\": \"{datatype}\", \
             \"shape\": [1, 3, 32, 32], \"parameters\": {{\"binary_data_size\": {}}}}}]}}",
            binary.len()
        );
        let header = format!("#{}\n", json.len());
        corpus.write(
            target,
            &format!("binary_{name}"),
            &[header.as_bytes(), json.as_bytes(), binary],
        )?;
    }
    Ok(())
}

fn cifar_batch(corpus: &mut Corpus) -> anyhow::Result<()> {
    let folder = tempfile::tempdir()?;
    data::write_synthetic(folder.path(), 3, 7)?;
    let batch = fs::read(folder.path().join(data::TEST_FILE))?;
    corpus.write("cifar_batch", "three_records", &[&batch])?;
    corpus.write("cifar_batch", "one_record", &[&batch[..data::RECORD_BYTES]])?;
    Ok(())
}

fn checkpoint(corpus: &mut Corpus) -> anyhow::Result<()> {
    let target = "checkpoint";
    let stats = ChannelStats {
        mean: [0.49, 0.48, 0.45],
        std: [0.25, 0.24, 0.26],
    };
    let network = Network::new(11, 0.25, stats)?;
    let file = model::encode_checkpoint(&network);
    let without_checksum = &file[..file.len() - 8];
    corpus.write(target, "checkpoint", &[&[0], &file])?;
    corpus.write(target, "checkpoint_checksummed", &[&[1], without_checksum])?;

    let state = TrainState {
        momentum: vec![0.5; network.parameters().len()],
        network,
        epochs_done: 2,
        steps_taken: 1564,
        config: TrainConfig::default(),
    };
    let file = model::encode_train_state(&state);
    let without_checksum = &file[..file.len() - 8];
    corpus.write(target, "state", &[&[2], &file])?;
    corpus.write(target, "state_checksummed", &[&[3], without_checksum])?;
    Ok(())
}

/// Requests for the `http_request` target, as a client sends them.
fn http_request(corpus: &mut Corpus) -> anyhow::Result<()> {
    let requests = [
        (
            "predict",
            "POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n\
             Content-Length: 3072\r\nX-Timeout: 5s\r\nX-Request-Id: 7\r\n\r\n",
        ),
        (
            "chunked",
            "POST /v2/models/cifar10/versions/1/infer?x=1 HTTP/1.1\r\n\
             Transfer-Encoding: chunked\r\nInference-Header-Content-Length: 3\r\n\
             Expect: 100-continue\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "http10",
            "GET /v2/models/cifar10/ready HTTP/1.0\nConnection: keep-alive\n\n",
        ),
        (
            "repeated_length",
            "PUT /predict HTTP/1.1\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\
             X-Timeout: 1m30s\r\n\r\nhello",
        ),
        (
            "conflicts",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: gzip, chunked\r\n\
             Expect: nothing\r\nConnection: close\r\n\r\n",
        ),
        ("version", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    ];
    for (name, request) in requests {
        corpus.write("http_request", name, &[request.as_bytes()])?;
    }
    Ok(())
}

use serde_json::{json, Value};

use super::*;
use crate::v2::IMAGE_VALUES;

/// Returns one image whose value at channel `c`, row `h`, column `w` is
/// `(c * 80 + h * 2 + w) % 256`, flat in CHW order.
fn chw_image() -> Vec<u8> {
    let mut image = Vec::with_capacity(IMAGE_VALUES);
    for c in 0..CHANNELS {
        for h in 0..SIDE {
            for w in 0..SIDE {
                image.push(((c * 80 + h * 2 + w) % 256) as u8);
            }
        }
    }
    image
}

/// Returns the image of [`chw_image`] flat in HWC order.
fn hwc_image() -> Vec<u8> {
    let chw = chw_image();
    let mut image = Vec::with_capacity(IMAGE_VALUES);
    for h in 0..SIDE {
        for w in 0..SIDE {
            for c in 0..CHANNELS {
                image.push(chw[c * SIDE * SIDE + h * SIDE + w]);
            }
        }
    }
    image
}

fn input(datatype: &str, shape: Value, data: Value) -> Value {
    json!({"name": "input", "datatype": datatype, "shape": shape, "data": data})
}

fn body(input: Value) -> Vec<u8> {
    json!({ "inputs": [input] }).to_string().into_bytes()
}

fn parse(body: &[u8]) -> Result<InferRequest, String> {
    parse_request(body, &[])
}

fn error(body: &[u8]) -> String {
    parse(body).expect_err("expected the request to be rejected")
}

fn assert_contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "no {part:?} in: {message}");
    }
}

#[test]
fn uint8_chw_flat() {
    let image = chw_image();
    let request = parse(&body(input("UINT8", json!([1, 3, 32, 32]), json!(image)))).unwrap();
    assert_eq!(request.images, 1);
    assert_eq!(request.id, None);
    assert_eq!(request.pixels, Pixels::Bytes(image));
}

#[test]
fn uint8_hwc_converts_to_chw() {
    let request = parse(&body(input(
        "UINT8",
        json!([1, 32, 32, 3]),
        json!(hwc_image()),
    )))
    .unwrap();
    assert_eq!(request.pixels, Pixels::Bytes(chw_image()));
}

#[test]
fn hwc_batch_converts_each_image() {
    let mut hwc = hwc_image();
    hwc.extend(hwc_image().iter().map(|value| 255 - value));
    let mut chw = chw_image();
    chw.extend(chw_image().iter().map(|value| 255 - value));
    let request = parse(&body(input("UINT8", json!([2, 32, 32, 3]), json!(hwc)))).unwrap();
    assert_eq!(request.images, 2);
    assert_eq!(request.pixels, Pixels::Bytes(chw));
}

#[test]
fn fp32_keeps_fractions() {
    let mut values: Vec<f64> = chw_image().iter().map(|&v| f64::from(v)).collect();
    values[0] = 0.25;
    values[IMAGE_VALUES - 1] = 254.75;
    let request = parse(&body(input("FP32", json!([1, 3, 32, 32]), json!(values)))).unwrap();
    let Pixels::Values(pixels) = request.pixels else {
        panic!("FP32 data gave bytes");
    };
    assert_eq!(pixels.len(), IMAGE_VALUES);
    assert_eq!(pixels[0], 0.25);
    assert_eq!(pixels[IMAGE_VALUES - 1], 254.75);
    assert_eq!(pixels[1], f32::from(chw_image()[1]));
}

#[test]
fn fp32_hwc_converts_to_chw() {
    let values: Vec<f64> = hwc_image().iter().map(|&v| f64::from(v) + 0.5).collect();
    let request = parse(&body(input("FP32", json!([1, 32, 32, 3]), json!(values)))).unwrap();
    let expected: Vec<f32> = chw_image().iter().map(|&v| f32::from(v) + 0.5).collect();
    assert_eq!(request.pixels, Pixels::Values(expected));
}

#[test]
fn nested_data_matching_shape() {
    let image = chw_image();
    let nested: Vec<Vec<Vec<u8>>> = image
        .chunks(SIDE * SIDE)
        .map(|plane| plane.chunks(SIDE).map(<[u8]>::to_vec).collect())
        .collect();
    let request = parse(&body(input(
        "UINT8",
        json!([1, 3, 32, 32]),
        json!([nested]),
    )))
    .unwrap();
    assert_eq!(request.pixels, Pixels::Bytes(image));
}

#[test]
fn nested_data_other_shape_rejected() {
    let halves: Vec<Vec<u8>> = vec![vec![1; IMAGE_VALUES], vec![2; IMAGE_VALUES]];
    let message = error(&body(input("UINT8", json!([2, 3, 32, 32]), json!(halves))));
    assert_contains(
        &message,
        &[
            "input 'input'",
            "nested as [2, 3072]",
            "shape [2, 3, 32, 32]",
        ],
    );
}

#[test]
fn id_echoed() {
    let mut request = json!({"id": "req-7", "inputs": [input("UINT8", json!([1, 3, 32, 32]), json!(chw_image()))]});
    let parsed = parse(request.to_string().as_bytes()).unwrap();
    assert_eq!(parsed.id.as_deref(), Some("req-7"));
    request["id"] = json!(7);
    let message = error(request.to_string().as_bytes());
    assert_contains(
        &message,
        &["invalid inference request", "expected a string"],
    );
}

#[test]
fn parameters_accepted_if_object() {
    let tensor = input("UINT8", json!([1, 3, 32, 32]), json!(chw_image()));
    let request = json!({
        "parameters": {"binary_data_output": true},
        "inputs": [tensor],
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": true}}],
    });
    assert!(parse(request.to_string().as_bytes()).is_ok());
    let request = json!({"parameters": [1], "inputs": [tensor]});
    let message = error(request.to_string().as_bytes());
    assert_contains(&message, &["invalid type: sequence, expected a map"]);
}

#[test]
fn outputs_known_or_empty() {
    let tensor = input("UINT8", json!([1, 3, 32, 32]), json!(chw_image()));
    for outputs in [json!([]), json!([{"name": "probabilities"}])] {
        let request = json!({"inputs": [tensor], "outputs": outputs});
        assert!(parse(request.to_string().as_bytes()).is_ok(), "{outputs}");
    }
    let request = json!({"inputs": [tensor], "outputs": [{"name": "logits"}]});
    let message = error(request.to_string().as_bytes());
    assert_contains(&message, &["unknown output 'logits'", "'probabilities'"]);
}

#[test]
fn datatypes_rejected() {
    for datatype in ["INT64", "FP64", "fp32", "BYTES", ""] {
        let message = error(&body(input(
            datatype,
            json!([1, 3, 32, 32]),
            json!(chw_image()),
        )));
        assert_contains(
            &message,
            &[&format!("datatype '{datatype}'"), "send FP32 or UINT8"],
        );
    }
}

#[test]
fn shapes_rejected() {
    for shape in [
        json!([1, 3, 28, 28]),
        json!([3, 32, 32]),
        json!([1, 3, 32, 32, 1]),
        json!([1, 32, 3, 32]),
        json!([]),
    ] {
        let message = error(&body(input("UINT8", shape.clone(), json!([0]))));
        assert_contains(
            &message,
            &["has shape", "[N, 3, 32, 32] (CHW)", "[N, 32, 32, 3] (HWC)"],
        );
    }
}

#[test]
fn batch_sizes_rejected() {
    for batch in [0, -1] {
        let message = error(&body(input("UINT8", json!([batch, 3, 32, 32]), json!([0]))));
        assert_contains(
            &message,
            &[&format!("batch size {batch}"), "at least 1 image"],
        );
    }
    let message = error(&body(input("UINT8", json!([257, 32, 32, 3]), json!([0]))));
    assert_contains(&message, &["batch size 257", "maximum of 256"]);
}

#[test]
fn max_batch_accepted() {
    let data = vec![7u8; MAX_BATCH * IMAGE_VALUES];
    let request = parse(&body(input(
        "UINT8",
        json!([MAX_BATCH, 3, 32, 32]),
        json!(data),
    )))
    .unwrap();
    assert_eq!(request.images, MAX_BATCH);
}

#[test]
fn element_count_mismatch() {
    let message = error(&body(input(
        "UINT8",
        json!([2, 3, 32, 32]),
        json!(chw_image()),
    )));
    assert_contains(
        &message,
        &["has 3072 data elements", "shape [2, 3, 32, 32] needs 6144"],
    );
    let message = error(&body(input("FP32", json!([1, 32, 32, 3]), json!([]))));
    assert_contains(&message, &["has 0 data elements", "needs 3072"]);
}

#[test]
fn uint8_values_out_of_range() {
    for (value, shown) in [
        (json!(256), "256.0"),
        (json!(-1), "-1.0"),
        (json!(1.5), "1.5"),
    ] {
        let mut data: Vec<Value> = vec![json!(0); IMAGE_VALUES];
        data[17] = value;
        let message = error(&body(input("UINT8", json!([1, 3, 32, 32]), json!(data))));
        assert_contains(
            &message,
            &[
                &format!("{shown} at data element 17"),
                "integers from 0 to 255",
            ],
        );
    }
}

#[test]
fn uint8_accepts_integral_floats() {
    let mut data: Vec<Value> = vec![json!(0); IMAGE_VALUES];
    data[5] = json!(12.0);
    let request = parse(&body(input("UINT8", json!([1, 3, 32, 32]), json!(data)))).unwrap();
    let Pixels::Bytes(bytes) = request.pixels else {
        panic!("UINT8 data gave floats");
    };
    assert_eq!(bytes[5], 12);
}

#[test]
fn fp32_values_out_of_range() {
    for (value, shown) in [
        (json!(255.5), "255.5"),
        (json!(-0.1), "-0.1"),
        (json!(1e39), "1e39"),
    ] {
        let mut data: Vec<Value> = vec![json!(0.0); IMAGE_VALUES];
        data[3000] = value;
        let message = error(&body(input("FP32", json!([1, 3, 32, 32]), json!(data))));
        assert_contains(
            &message,
            &[&format!("{shown} at data element 3000"), "from 0 to 255"],
        );
    }
}

#[test]
fn fp32_bounds_accepted() {
    let mut data = vec![0.0; IMAGE_VALUES];
    data[1] = 255.0;
    let request = parse(&body(input("FP32", json!([1, 3, 32, 32]), json!(data)))).unwrap();
    assert!(matches!(request.pixels, Pixels::Values(_)));
}

#[test]
fn inputs_count_rejected() {
    let message = error(br#"{"inputs": []}"#);
    assert_contains(&message, &["inputs is empty", "exactly one input tensor"]);
    let tensor = input("UINT8", json!([1, 3, 32, 32]), json!(chw_image()));
    let two = json!({ "inputs": [tensor, tensor] }).to_string();
    let message = error(two.as_bytes());
    assert_contains(&message, &["more than one tensor"]);
    let message = error(br#"{"outputs": []}"#);
    assert_contains(&message, &["missing field `inputs`"]);
    let message = error(br#"{"inputs": {"name": "x"}}"#);
    assert_contains(&message, &["expected an array with one input tensor"]);
}

#[test]
fn input_fields_required() {
    let no_name = json!({"datatype": "UINT8", "shape": [1, 3, 32, 32], "data": [0]});
    assert_contains(&error(&body(no_name)), &["missing field `name`"]);
    let no_shape = json!({"name": "x", "datatype": "UINT8", "data": [0]});
    assert_contains(&error(&body(no_shape)), &["missing field `shape`"]);
    let no_datatype = json!({"name": "x", "shape": [1, 3, 32, 32], "data": [0]});
    assert_contains(&error(&body(no_datatype)), &["missing field `datatype`"]);
    let no_data = json!({"name": "x", "datatype": "UINT8", "shape": [1, 3, 32, 32]});
    assert_contains(&error(&body(no_data)), &["input 'x' has no \"data\" field"]);
    let mut empty_name = input("UINT8", json!([1, 3, 32, 32]), json!(chw_image()));
    empty_name["name"] = json!("");
    assert_contains(&error(&body(empty_name)), &["name is empty"]);
}

/// Returns the JSON of one binary input tensor of `size` bytes.
fn binary_json(datatype: &str, shape: Value, size: Value) -> Vec<u8> {
    let tensor = json!({
        "name": "x",
        "datatype": datatype,
        "shape": shape,
        "parameters": {"binary_data_size": size},
    });
    body(tensor)
}

fn little_endian(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|value| value.to_le_bytes())
        .collect()
}

#[test]
fn binary_uint8_chw() {
    let json = binary_json("UINT8", json!([1, 3, 32, 32]), json!(IMAGE_VALUES));
    let request = parse_request(&json, &chw_image()).unwrap();
    assert_eq!(request.pixels, Pixels::Bytes(chw_image()));
}

#[test]
fn binary_fp32_hwc() {
    let hwc: Vec<f32> = hwc_image().iter().map(|&v| f32::from(v) + 0.25).collect();
    let bytes = little_endian(&hwc);
    let json = binary_json("FP32", json!([1, 32, 32, 3]), json!(bytes.len()));
    let request = parse_request(&json, &bytes).unwrap();
    let expected: Vec<f32> = chw_image().iter().map(|&v| f32::from(v) + 0.25).collect();
    assert_eq!(request.pixels, Pixels::Values(expected));
}

#[test]
fn binary_size_mismatch() {
    let json = binary_json("UINT8", json!([1, 3, 32, 32]), json!(IMAGE_VALUES));
    let message = parse_request(&json, &[0; 3000]).unwrap_err();
    assert_contains(
        &message,
        &["binary_data_size 3072", "3000 bytes of binary data follow"],
    );
    let json = binary_json("FP32", json!([1, 3, 32, 32]), json!(IMAGE_VALUES));
    let message = parse_request(&json, &chw_image()).unwrap_err();
    assert_contains(
        &message,
        &["has 3072 bytes of binary data", "of FP32 needs 12288"],
    );
}

#[test]
fn binary_fp32_values_checked() {
    let mut values = vec![1.0; IMAGE_VALUES];
    values[5] = f32::NAN;
    let bytes = little_endian(&values);
    let json = binary_json("FP32", json!([1, 3, 32, 32]), json!(bytes.len()));
    let message = parse_request(&json, &bytes).unwrap_err();
    assert_contains(&message, &["NaN at data element 5", "from 0 to 255"]);
    values[5] = 256.0;
    let message = parse_request(&json, &little_endian(&values)).unwrap_err();
    assert_contains(&message, &["256.0 at data element 5"]);
}

#[test]
fn binary_parameters_invalid() {
    for size in [json!("3072"), json!(-1), json!(1.5)] {
        let json = binary_json("UINT8", json!([1, 3, 32, 32]), size.clone());
        let message = parse_request(&json, &chw_image()).unwrap_err();
        assert_contains(
            &message,
            &[&format!("binary_data_size {size}"), "not a size"],
        );
    }
    let both = json!({
        "name": "x",
        "datatype": "UINT8",
        "shape": [1, 3, 32, 32],
        "parameters": {"binary_data_size": 3072},
        "data": chw_image(),
    });
    let message = parse_request(&body(both), &chw_image()).unwrap_err();
    assert_contains(&message, &["both a \"data\" field and a binary_data_size"]);
    let json = body(input("UINT8", json!([1, 3, 32, 32]), json!(chw_image())));
    let message = parse_request(&json, &[1, 2]).unwrap_err();
    assert_contains(
        &message,
        &[
            "2 bytes of binary data follow",
            "no binary_data_size parameter",
        ],
    );
}

#[test]
fn invalid_json_rejected() {
    for raw in [&b""[..], b"not json", b"{\"inputs\": [", b"\xff\xfe", b"[]"] {
        let message = error(raw);
        assert_contains(
            &message,
            &["invalid inference request", "send a JSON object"],
        );
    }
    let message = error(br#"{"inputs": [{"name": "x", "datatype": "UINT8", "shape": [1, 3, 32, 32], "data": [1, "2"]}]}"#);
    assert_contains(&message, &["invalid type: string \"2\"", "line 1 column"]);
}

//! The KServe V2 REST API of the real binary over HTTP: every endpoint,
//! every error status, agreement with `POST /predict`, and the stock Triton
//! Python client.

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use support::{exchange, get, post, run_binary, Files, Response, Serve};

const IMAGE_BYTES: usize = 3072;

/// A ready server with an untrained checkpoint.
struct Fixture {
    serve: Serve,
    _files: Files,
}

fn start(mode: &str, extra: &[&str]) -> Fixture {
    let files = Files::new(50, 5);
    let mut args = files.args(mode);
    args.extend(["--threads", "2"].map(str::to_owned));
    args.extend(extra.iter().map(|&arg| arg.to_owned()));
    let serve = Serve::start(&args);
    serve.wait_until_ready();
    Fixture {
        serve,
        _files: files,
    }
}

/// Returns one CHW image whose bytes vary with `seed`.
fn image(seed: u8) -> Vec<u8> {
    (0..IMAGE_BYTES)
        .map(|index| ((index * 31 + usize::from(seed) * 7) % 256) as u8)
        .collect()
}

/// Reorders one CHW image to HWC.
fn to_hwc(chw: &[u8]) -> Vec<u8> {
    let mut hwc = Vec::with_capacity(IMAGE_BYTES);
    for pixel in 0..1024 {
        for channel in 0..3 {
            hwc.push(chw[channel * 1024 + pixel]);
        }
    }
    hwc
}

fn tensor(datatype: &str, shape: &[i64], data: Value) -> Value {
    json!({"name": "input", "datatype": datatype, "shape": shape, "data": data})
}

fn infer_body(tensor: Value) -> Vec<u8> {
    json!({ "inputs": [tensor] }).to_string().into_bytes()
}

fn infer(serve: &Serve, path: &str, tensor: Value) -> Response {
    post(serve.addr(), path, &infer_body(tensor))
}

/// Checks that `response` is a successful inference response and returns
/// its `probabilities`, one row per image.
fn output_rows(response: &Response) -> Vec<Vec<f64>> {
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let body = response.json();
    let output = &body["outputs"][0];
    assert_eq!(output["name"], "probabilities");
    assert_eq!(output["datatype"], "FP32");
    let shape: Vec<u64> = serde_json::from_value(output["shape"].clone()).unwrap();
    assert_eq!(shape.len(), 2, "{shape:?}");
    assert_eq!(shape[1], 10, "{shape:?}");
    let data: Vec<f64> = serde_json::from_value(output["data"].clone()).unwrap();
    assert_eq!(data.len() as u64, shape[0] * 10);
    data.chunks(10).map(<[f64]>::to_vec).collect()
}

fn predict_row(serve: &Serve, image: &[u8]) -> Vec<f64> {
    let response = post(serve.addr(), "/predict", image);
    assert_eq!(response.status, 200);
    serde_json::from_value(response.json()["probabilities"].clone()).unwrap()
}

fn assert_error(response: &Response, status: u16, parts: &[&str]) {
    let body = String::from_utf8_lossy(&response.body);
    assert_eq!(response.status, status, "{body}");
    assert_eq!(response.header("content-type"), Some("application/json"));
    let message = response.error_message();
    for part in parts {
        assert!(message.contains(part), "no {part:?} in: {message}");
    }
}

#[test]
fn server_endpoints() {
    let fixture = start("server", &[]);
    let addr = fixture.serve.addr();

    let metadata = get(addr, "/v2");
    assert_eq!(metadata.status, 200);
    let expected =
        json!({"name": "cifaas", "version": env!("CARGO_PKG_VERSION"), "extensions": []});
    assert_eq!(metadata.json(), expected);

    let live = get(addr, "/v2/health/live");
    assert_eq!(live.status, 200);
    assert_eq!(live.json(), json!({"live": true}));
    let ready = get(addr, "/v2/health/ready");
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json(), json!({"ready": true}));

    // A HEAD reply declares the body's length but sends no body, so read
    // only its status line instead of the whole response.
    let mut stream = support::connect(addr);
    stream
        .write_all(b"HEAD /v2/health/ready HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut head = String::new();
    stream.read_to_string(&mut head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
}

#[test]
fn model_endpoints() {
    let fixture = start("server", &[]);
    let addr = fixture.serve.addr();
    for path in ["/v2/models/cifar10", "/v2/models/cifar10/versions/1"] {
        let response = get(addr, path);
        assert_eq!(response.status, 200, "{path}");
        let body = response.json();
        assert_eq!(body["name"], "cifar10", "{path}");
        assert_eq!(body["versions"], json!(["1"]));
        assert_eq!(body["platform"], "cifaas_cnn");
        let inputs = json!([{"name": "input", "datatype": "FP32", "shape": [-1, 3, 32, 32]}]);
        assert_eq!(body["inputs"], inputs);
        let outputs = json!([{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}]);
        assert_eq!(body["outputs"], outputs);
        assert_eq!(body["accepted_inputs"].as_array().map(Vec::len), Some(4));
    }
    for path in [
        "/v2/models/cifar10/ready",
        "/v2/models/cifar10/versions/1/ready",
    ] {
        let response = get(addr, path);
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(response.json(), json!({"name": "cifar10", "ready": true}));
    }
}

#[test]
fn infer_layouts_match_predict() {
    let fixture = start("server", &[]);
    let serve = &fixture.serve;
    let first = image(1);
    let second = image(2);
    let expected = [predict_row(serve, &first), predict_row(serve, &second)];
    let path = "/v2/models/cifar10/infer";

    let mut batch = first.clone();
    batch.extend_from_slice(&second);
    let chw = infer(serve, path, tensor("UINT8", &[2, 3, 32, 32], json!(batch)));
    assert_eq!(output_rows(&chw), expected, "UINT8 CHW");

    let mut hwc = to_hwc(&first);
    hwc.extend(to_hwc(&second));
    let hwc_response = infer(serve, path, tensor("UINT8", &[2, 32, 32, 3], json!(hwc)));
    assert_eq!(output_rows(&hwc_response), expected, "UINT8 HWC");

    let floats: Vec<f32> = batch.iter().map(|&byte| f32::from(byte)).collect();
    let fp32 = infer(serve, path, tensor("FP32", &[2, 3, 32, 32], json!(floats)));
    assert_eq!(output_rows(&fp32), expected, "FP32 CHW");

    let hwc_floats: Vec<f32> = hwc.iter().map(|&byte| f32::from(byte)).collect();
    let fp32_hwc = infer(
        serve,
        path,
        tensor("FP32", &[2, 32, 32, 3], json!(hwc_floats)),
    );
    assert_eq!(output_rows(&fp32_hwc), expected, "FP32 HWC");

    for row in &expected {
        let sum: f64 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "row sums to {sum}");
    }
}

#[test]
fn infer_nested_fractional_and_id() {
    let fixture = start("server", &[]);
    let serve = &fixture.serve;
    let pixels = image(3);
    let nested: Vec<Vec<Vec<u8>>> = pixels
        .chunks(1024)
        .map(|plane| plane.chunks(32).map(<[u8]>::to_vec).collect())
        .collect();
    let request = json!({
        "id": "request-42",
        "parameters": {"binary_data_output": true},
        "inputs": [tensor("UINT8", &[1, 3, 32, 32], json!([nested]))],
        "outputs": [{"name": "probabilities"}],
    });
    let path = "/v2/models/cifar10/versions/1/infer";
    let response = post(serve.addr(), path, request.to_string().as_bytes());
    assert_eq!(output_rows(&response), [predict_row(serve, &pixels)]);
    let body = response.json();
    assert_eq!(body["id"], "request-42");
    assert_eq!(body["model_name"], "cifar10");
    assert_eq!(body["model_version"], "1");

    let mut fractional: Vec<f32> = pixels.iter().map(|&byte| f32::from(byte)).collect();
    for value in fractional.iter_mut().step_by(2) {
        *value = (*value + 0.5).min(255.0);
    }
    let response = infer(
        serve,
        "/v2/models/cifar10/infer",
        tensor("FP32", &[1, 3, 32, 32], json!(fractional)),
    );
    let rows = output_rows(&response);
    assert_ne!(rows[0], predict_row(serve, &pixels), "fractions ignored");
    assert!(response.json().get("model_version").is_none());
}

#[test]
fn infer_rejects_bad_tensors() {
    let fixture = start("server", &[]);
    let serve = &fixture.serve;
    let path = "/v2/models/cifar10/infer";
    let one = json!(image(4));

    let response = infer(serve, path, tensor("INT32", &[1, 3, 32, 32], one.clone()));
    assert_error(&response, 400, &["datatype 'INT32'", "send FP32 or UINT8"]);
    let response = infer(serve, path, tensor("UINT8", &[1, 3, 28, 28], one.clone()));
    assert_error(
        &response,
        400,
        &["shape [1, 3, 28, 28]", "[N, 3, 32, 32] (CHW)"],
    );
    let response = infer(serve, path, tensor("UINT8", &[2, 3, 32, 32], one.clone()));
    assert_error(&response, 400, &["has 3072 data elements", "needs 6144"]);
    let response = infer(serve, path, tensor("UINT8", &[0, 3, 32, 32], json!([])));
    assert_error(&response, 400, &["batch size 0"]);
    let response = infer(serve, path, tensor("UINT8", &[257, 3, 32, 32], json!([0])));
    assert_error(&response, 400, &["batch size 257", "maximum of 256"]);

    let mut values = vec![json!(0); IMAGE_BYTES];
    values[9] = json!(300);
    let response = infer(serve, path, tensor("UINT8", &[1, 3, 32, 32], json!(values)));
    assert_error(
        &response,
        400,
        &["300.0 at data element 9", "from 0 to 255"],
    );
    values[9] = json!(-2.5);
    let response = infer(serve, path, tensor("FP32", &[1, 3, 32, 32], json!(values)));
    assert_error(&response, 400, &["-2.5 at data element 9", "from 0 to 255"]);

    let request = json!({"inputs": [tensor("UINT8", &[1, 3, 32, 32], one.clone())], "outputs": [{"name": "logits"}]});
    let response = post(serve.addr(), path, request.to_string().as_bytes());
    assert_error(&response, 400, &["unknown output 'logits'"]);
    let response = post(serve.addr(), path, b"{\"inputs\": [");
    assert_error(&response, 400, &["invalid inference request", "EOF"]);
    let response = post(serve.addr(), path, b"");
    assert_error(&response, 400, &["invalid inference request"]);

    assert_eq!(get(serve.addr(), "/v2/health/live").status, 200);
}

/// Sends an inference request with the binary tensor data extension:
/// `json`, then `binary`, with `header` as Inference-Header-Content-Length.
fn post_binary(serve: &Serve, json: &[u8], binary: &[u8], header: &str) -> Response {
    let mut raw = format!(
        "POST /v2/models/cifar10/infer HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
         Inference-Header-Content-Length: {header}\r\nContent-Length: {}\r\n\r\n",
        json.len() + binary.len()
    )
    .into_bytes();
    raw.extend_from_slice(json);
    raw.extend_from_slice(binary);
    exchange(serve.addr(), &raw).unwrap()
}

fn binary_json(datatype: &str, shape: &[i64], size: usize) -> Vec<u8> {
    let tensor = json!({
        "name": "input",
        "datatype": datatype,
        "shape": shape,
        "parameters": {"binary_data_size": size},
    });
    infer_body(tensor)
}

#[test]
fn infer_binary_tensor_data() {
    let fixture = start("server", &[]);
    let serve = &fixture.serve;
    let pixels = image(8);
    let expected = [predict_row(serve, &pixels)];

    let json = binary_json("UINT8", &[1, 3, 32, 32], IMAGE_BYTES);
    let response = post_binary(serve, &json, &pixels, &json.len().to_string());
    assert_eq!(output_rows(&response), expected, "UINT8 CHW");

    let hwc: Vec<u8> = to_hwc(&pixels)
        .iter()
        .flat_map(|&byte| f32::from(byte).to_le_bytes())
        .collect();
    let json = binary_json("FP32", &[1, 32, 32, 3], hwc.len());
    let response = post_binary(serve, &json, &hwc, &json.len().to_string());
    assert_eq!(output_rows(&response), expected, "FP32 HWC");

    let response = post_binary(serve, &json, &hwc, "many");
    assert_error(
        &response,
        400,
        &["invalid Inference-Header-Content-Length header 'many'"],
    );
    let too_long = (json.len() + hwc.len() + 1).to_string();
    let response = post_binary(serve, &json, &hwc, &too_long);
    assert_error(&response, 400, &["but the body has only"]);
    let response = post_binary(serve, &json, &hwc[..100], &json.len().to_string());
    assert_error(&response, 400, &["binary_data_size 12288", "100 bytes"]);
}

#[test]
fn infer_rejects_large_body() {
    let fixture = start("server", &[]);
    let raw = "POST /v2/models/cifar10/infer HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\
               Content-Length: 40000000\r\n\r\n{";
    let response = exchange(fixture.serve.addr(), raw.as_bytes()).unwrap();
    assert_error(
        &response,
        413,
        &[
            "body of 40000000 bytes",
            "limit of 33554432 bytes",
            "at most 256 images",
        ],
    );
    assert_eq!(get(fixture.serve.addr(), "/v2/health/live").status, 200);
}

#[test]
fn routes_reject_unknown_and_methods() {
    let fixture = start("server", &[]);
    let addr = fixture.serve.addr();
    for path in ["/v2/models/resnet", "/v2/models/resnet/ready"] {
        assert_error(
            &get(addr, path),
            404,
            &["model 'resnet' not found: this server serves 'cifar10'"],
        );
    }
    let response = post(addr, "/v2/models/resnet/infer", b"{}");
    assert_error(&response, 404, &["model 'resnet' not found"]);
    let response = get(addr, "/v2/models/cifar10/versions/3");
    assert_error(&response, 404, &["has no version '3'"]);
    let response = get(addr, "/v2/models/cifar10/stats");
    assert_error(&response, 404, &["no route for /v2/models/cifar10/stats"]);
    let response = get(addr, "/v3");
    assert_error(&response, 404, &["the KServe V2 routes under /v2"]);

    let response = get(addr, "/v2/models/cifar10/infer");
    assert_error(&response, 405, &["method GET is not allowed", "use POST"]);
    assert_eq!(response.header("allow"), Some("POST"));
    let response = post(addr, "/v2/health/ready", b"");
    assert_error(&response, 405, &["method POST is not allowed"]);
    assert_eq!(response.header("allow"), Some("GET, HEAD"));
}

#[test]
fn model_name_option() {
    let fixture = start("function", &["--model-name", "net-2.a_b"]);
    let serve = &fixture.serve;
    assert_eq!(get(serve.addr(), "/v2/models/net-2.a_b/ready").status, 200);
    let response = get(serve.addr(), "/v2/models/cifar10");
    assert_error(&response, 404, &["this server serves 'net-2.a_b'"]);
    let response = infer(
        serve,
        "/v2/models/net-2.a_b/infer",
        tensor("UINT8", &[1, 3, 32, 32], json!(image(5))),
    );
    assert_eq!(response.json()["model_name"], "net-2.a_b");
    assert_eq!(output_rows(&response).len(), 1);
}

#[test]
fn model_name_option_invalid() {
    for (value, reason) in [
        ("", "the model name is empty"),
        ("a/b", "invalid character '/'"),
    ] {
        let args = [
            "--mode",
            "server",
            "--model",
            "m.ckpt",
            "--model-name",
            value,
        ];
        let (status, _, stderr) = run_binary(env!("CARGO_BIN_EXE_serve"), &args);
        assert_eq!(status.code(), Some(2), "{value:?}: {stderr}");
        assert!(stderr.contains("--model-name <NAME>"), "{stderr}");
        assert!(stderr.contains(reason), "{stderr}");
    }
}

#[test]
fn not_ready_while_training() {
    let dataset = support::synthetic_dataset(100, 13);
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("lock");
    let serve = Serve::start(&[
        "--mode",
        "function",
        "--bind",
        "127.0.0.1:0",
        "--threads",
        "2",
        "--data",
        dataset.path().to_str().unwrap(),
        "--epochs",
        "1",
        "--lock-file",
        lock.to_str().unwrap(),
    ]);
    let addr = serve.addr();
    // One epoch over 500 synthetic images takes seconds on 2 cores,
    // so these requests arrive before the model is ready.
    let live = get(addr, "/v2/health/live");
    assert_eq!(live.status, 200);
    let ready = get(addr, "/v2/health/ready");
    assert_eq!(ready.status, 503, "{}", serve.log());
    assert_eq!(ready.json(), json!({"ready": false}));
    let model_ready = get(addr, "/v2/models/cifar10/ready");
    assert_eq!(model_ready.status, 503);
    assert_eq!(model_ready.json()["ready"], false);
    let response = infer(
        &serve,
        "/v2/models/cifar10/infer",
        tensor("UINT8", &[1, 3, 32, 32], json!(image(6))),
    );
    assert_error(
        &response,
        503,
        &["model 'cifar10' is not ready", "starting"],
    );
    assert_eq!(get(addr, "/v2/models/cifar10").status, 200);

    serve.wait_until_ready();
    assert_eq!(get(addr, "/v2/health/ready").status, 200);
    assert_eq!(get(addr, "/v2/models/cifar10/ready").status, 200);
}

/// Returns the folder `cargo` builds into, found from the path of the
/// `serve` binary (`TARGET/PROFILE/serve`).
fn target_dir() -> PathBuf {
    let binary = Path::new(env!("CARGO_BIN_EXE_serve"));
    binary
        .parent()
        .and_then(Path::parent)
        .expect("the serve binary sits in TARGET/PROFILE")
        .to_path_buf()
}

/// Returns the first of python3.11 and python3 that runs.
fn find_python() -> Option<&'static str> {
    ["python3.11", "python3"].into_iter().find(|name| {
        Command::new(name)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}

#[test]
fn tritonclient_checks_pass() {
    let Some(python) = find_python() else {
        panic!(
            "neither python3.11 nor python3 runs: install Python 3 with venv and pip to run \
             the tritonclient checks"
        );
    };
    let fixture = start("server", &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/v2_client.sh");
    let venv = target_dir().join("v2-venv");

    let output = Command::new("bash")
        .arg(&script)
        .arg(&venv)
        .arg(fixture.serve.addr().to_string())
        .arg("cifar10")
        .env("PYTHON", python)
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}");

    assert!(
        output.status.success(),
        "{} failed ({}):\n{stdout}\n{stderr}",
        script.display(),
        output.status
    );
    assert!(
        stdout.contains("v2_client: all checks passed"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("ok: FP32 [2,3,32,32]: image 1 equals POST /predict"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok: UINT8 [1,32,32,3]: image 0 equals POST /predict"),
        "{stdout}"
    );
}

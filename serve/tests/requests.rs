//! Requests against a server that loads an untrained checkpoint: good and
//! bad predictions, evaluation, error statuses and malformed HTTP.

mod support;

use std::io::{BufReader, Read, Write};
use std::thread;
use std::time::Duration;

use support::{connect, exchange, get, post, read_response, Files, Serve};

const IMAGE_BYTES: usize = 3072;

/// A ready server in `mode` with a checkpoint and, `with_data`, a
/// 200-record synthetic test set.
struct Fixture {
    serve: Serve,
    _files: Files,
}

fn start(mode: &str, with_data: bool) -> Fixture {
    let files = Files::new(200, 3);
    let mut args = if with_data {
        files.args_with_data(mode)
    } else {
        files.args(mode)
    };
    args.extend(["--threads".to_owned(), "2".to_owned()]);
    let serve = Serve::start(&args);
    serve.wait_until_ready();
    Fixture {
        serve,
        _files: files,
    }
}

fn assert_still_serving(serve: &Serve) {
    let response = get(serve.addr(), "/_/health");
    assert_eq!(
        response.status,
        200,
        "server stopped answering:\n{}",
        serve.log()
    );
}

fn image(seed: u8) -> Vec<u8> {
    (0..IMAGE_BYTES)
        .map(|index| (index as u8).wrapping_mul(seed))
        .collect()
}

#[test]
fn predict_returns_class_and_probabilities() {
    let fixture = start("server", false);
    let response = post(fixture.serve.addr(), "/predict", &image(7));
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.header("content-type"), Some("application/json"));

    let body = response.json();
    let probabilities: Vec<f64> = body["probabilities"]
        .as_array()
        .expect("probabilities array")
        .iter()
        .map(|p| p.as_f64().unwrap())
        .collect();
    assert_eq!(probabilities.len(), 10);
    let sum: f64 = probabilities.iter().sum();
    assert!((sum - 1.0).abs() < 1e-3, "probabilities sum to {sum}");

    let class_index = body["class_index"].as_u64().expect("class_index") as usize;
    assert!(class_index < 10);
    let best = probabilities.iter().cloned().fold(f64::MIN, f64::max);
    assert_eq!(probabilities[class_index], best);
    assert_eq!(body["class_name"], model::CLASS_NAMES[class_index]);
}

#[test]
fn predict_rejects_wrong_sizes() {
    let fixture = start("server", false);
    let addr = fixture.serve.addr();
    for size in [0, 1, 3071, 3073, 5000] {
        let response = post(addr, "/predict", &vec![1; size]);
        assert_eq!(response.status, 400, "size {size}");
        let message = response.error_message();
        assert!(
            message.contains(&format!("received {size} bytes")),
            "{message}"
        );
        assert!(message.contains("expected 3072"), "{message}");
    }
    assert_still_serving(&fixture.serve);
}

#[test]
fn predict_rejects_large_declared_body() {
    let fixture = start("server", false);
    let raw = "POST /predict HTTP/1.1\r\nHost: test\r\nContent-Length: 9000000\r\n\r\nabc";
    let response = exchange(fixture.serve.addr(), raw.as_bytes()).unwrap();
    assert_eq!(response.status, 413);
    let message = response.error_message();
    assert!(message.contains("9000000 bytes"), "{message}");
    assert!(message.contains("limit of 8388608"), "{message}");
    assert_still_serving(&fixture.serve);
}

#[test]
fn predict_survives_huge_declared_length() {
    let fixture = start("server", false);
    let addr = fixture.serve.addr();
    for declared in ["1000000000000", "20000000000", "18446744073709551615"] {
        let raw = format!(
            "POST /predict HTTP/1.1\r\nHost: test\r\nContent-Length: {declared}\r\n\r\nabc"
        );
        let response = exchange(addr, raw.as_bytes()).unwrap();
        assert_eq!(response.status, 413, "Content-Length {declared}");
        assert!(
            response.error_message().contains(declared),
            "{}",
            response.error_message()
        );
        assert_still_serving(&fixture.serve);
    }
    let status = get(addr, "/_/health").status;
    assert_eq!(status, 200);
    assert!(
        !fixture.serve.log().contains("memory allocation"),
        "{}",
        fixture.serve.log()
    );
}

#[test]
fn predict_rejects_oversized_chunked_body() {
    let fixture = start("server", false);
    let mut stream = connect(fixture.serve.addr());
    let head = "POST /predict HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n";
    stream.write_all(head.as_bytes()).unwrap();
    // 8 MiB and 16 KiB: just over the 8 MiB cap.
    let chunk = vec![b'x'; 16 * 1024];
    for _ in 0..513 {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .unwrap();
        stream.write_all(&chunk).unwrap();
        stream.write_all(b"\r\n").unwrap();
    }
    stream.write_all(b"0\r\n\r\n").unwrap();
    let response = read_response(&mut BufReader::new(stream)).unwrap();
    assert_eq!(response.status, 413);
    assert!(
        response.error_message().contains("more than 8388608"),
        "{}",
        response.error_message()
    );
    assert_still_serving(&fixture.serve);
}

#[test]
fn predict_accepts_chunked_image() {
    let fixture = start("server", false);
    let mut raw = b"POST /predict HTTP/1.1\r\nHost: test\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in image(3).chunks(1000) {
        raw.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        raw.extend_from_slice(part);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let response = exchange(fixture.serve.addr(), &raw).unwrap();
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
}

#[test]
fn predict_rejects_invalid_content_length() {
    let fixture = start("server", false);
    let raw =
        "POST /predict HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: abc\r\n\r\n";
    let response = exchange(fixture.serve.addr(), raw.as_bytes()).unwrap();
    assert_eq!(response.status, 400);
    assert!(
        response.error_message().contains("'abc'"),
        "{}",
        response.error_message()
    );
}

#[test]
fn client_disconnect_mid_body() {
    let fixture = start("server", false);
    for sent in [10, 2000] {
        let mut stream = connect(fixture.serve.addr());
        let head = format!(
            "POST /predict HTTP/1.1\r\nHost: test\r\nContent-Length: {IMAGE_BYTES}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&vec![0; sent]).unwrap();
        drop(stream);
    }
    thread::sleep(Duration::from_millis(100));
    assert_still_serving(&fixture.serve);
    let response = post(fixture.serve.addr(), "/predict", &image(1));
    assert_eq!(response.status, 200);
}

#[test]
fn wrong_method_gets_405_with_allow() {
    let fixture = start("server", false);
    let addr = fixture.serve.addr();
    let cases = [
        ("GET", "/predict", "POST"),
        ("PUT", "/predict", "POST"),
        ("POST", "/", "GET, HEAD"),
        ("DELETE", "/_/health", "GET, HEAD"),
    ];
    for (method, path, allow) in cases {
        let raw = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        let response = exchange(addr, raw.as_bytes()).unwrap();
        assert_eq!(response.status, 405, "{method} {path}");
        assert_eq!(response.header("allow"), Some(allow), "{method} {path}");
        assert!(
            response.error_message().contains(method),
            "{}",
            response.error_message()
        );
    }
}

#[test]
fn unknown_path_gets_404() {
    let fixture = start("server", false);
    let response = get(fixture.serve.addr(), "/v2/models");
    assert_eq!(response.status, 404);
    assert!(
        response.error_message().contains("/v2/models"),
        "{}",
        response.error_message()
    );
}

#[test]
fn malformed_http_keeps_server_up() {
    let fixture = start("server", false);
    let addr = fixture.serve.addr();
    // Each gets a JSON error and the connection is closed.
    let cases: [(&[u8], &str, &str); 4] = [
        (
            b"NONSENSE\r\n\r\n",
            "HTTP/1.1 400",
            "malformed request line",
        ),
        (b"GET / HTTP/9.9\r\n\r\n", "HTTP/1.1 505", "HTTP/9.9"),
        (
            b"GET / HTTP/1.1\r\nBad header line\r\n\r\n",
            "HTTP/1.1 400",
            "malformed header line",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: \xff\xfe\r\n\r\n",
            "HTTP/1.1 400",
            "non-ASCII",
        ),
    ];
    for (raw, status_line, message) in cases {
        let mut stream = connect(addr);
        stream.write_all(raw).unwrap();
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
        let text = String::from_utf8_lossy(&reply);
        let request = String::from_utf8_lossy(raw);
        assert!(text.starts_with(status_line), "{request:?} -> {text:?}");
        assert!(
            text.contains("Connection: close"),
            "{request:?} -> {text:?}"
        );
        assert!(text.contains(message), "{request:?} -> {text:?}");
    }
    // A connection that closes after half a request line.
    let mut stream = connect(addr);
    stream.write_all(b"GET /_/hea").unwrap();
    drop(stream);
    assert_still_serving(&fixture.serve);
}

#[test]
fn keep_alive_serves_several_requests() {
    let fixture = start("server", false);
    let stream = connect(fixture.serve.addr());
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    for _ in 0..3 {
        writer
            .write_all(b"GET /_/health HTTP/1.1\r\nHost: test\r\n\r\n")
            .unwrap();
        let response = read_response(&mut reader).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.json()["status"], "ready");
    }
}

#[test]
fn evaluate_reports_fields() {
    let fixture = start("server", true);
    let response = get(fixture.serve.addr(), "/");
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    let body = response.json();
    assert_eq!(body["total"], 200);
    assert_eq!(body["mode"], "server");
    assert_eq!(body["threads"], 2);
    let correct = body["correct"].as_u64().expect("correct");
    assert!(correct <= 200);
    let accuracy = body["accuracy"].as_f64().expect("accuracy");
    assert!((accuracy - correct as f64 / 200.0).abs() < 1e-9);
    assert!(body["seconds"].as_f64().expect("seconds") >= 0.0);
}

#[test]
fn evaluate_without_data_is_503() {
    let fixture = start("function", false);
    let response = get(fixture.serve.addr(), "/");
    assert_eq!(response.status, 503);
    assert_eq!(
        response.error_message(),
        "no test data loaded: start serve with --data PATH"
    );
}

#[test]
fn query_string_is_ignored() {
    let fixture = start("server", false);
    let response = get(fixture.serve.addr(), "/_/health?probe=1");
    assert_eq!(response.status, 200);
}

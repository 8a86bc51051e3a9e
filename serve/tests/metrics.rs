//! `GET /metrics` of the real binary: counters and histograms against the
//! requests sent, the process collector's values, availability while the
//! model is still loading, and `promtool check metrics` on a real scrape.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use support::{exchange, get, post, Files, Serve};

const IMAGE_BYTES: usize = 3072;

/// Expected `Content-Type` of a scrape.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One sample line of the text exposition format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed scrape.
struct Scrape {
    text: String,
    samples: Vec<Sample>,
}

impl Scrape {
    fn parse(text: String) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| parse_sample(line).unwrap_or_else(|| panic!("invalid line {line:?}")))
            .collect();
        Self { text, samples }
    }

    /// Returns the value of the series `name` with exactly `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let expected: BTreeMap<String, String> = labels
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        self.samples
            .iter()
            .find(|sample| sample.name == name && sample.labels == expected)
            .map(|sample| sample.value)
    }

    /// As [`Scrape::value`], 0 for a series not yet created.
    fn count(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels).unwrap_or(0.0)
    }

    /// As [`Scrape::value`], panicking with the scrape when the series is missing.
    fn expect(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in the scrape:\n{}", self.text))
    }

    /// Returns the label sets of every sample named `name`.
    fn label_sets(&self, name: &str) -> Vec<&BTreeMap<String, String>> {
        self.samples
            .iter()
            .filter(|sample| sample.name == name)
            .map(|sample| &sample.labels)
            .collect()
    }

    /// Checks that the buckets of histogram `name` with `labels` rise
    /// with `le` and end at `+Inf` with the sample count.
    fn assert_histogram_consistent(&self, name: &str, labels: &[(&str, &str)]) {
        let mut buckets: Vec<(f64, f64)> = self
            .samples
            .iter()
            .filter(|sample| sample.name == format!("{name}_bucket"))
            .filter(|sample| {
                labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(value))
            })
            .map(|sample| {
                let le = sample.labels["le"].as_str();
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                (bound, sample.value)
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(!buckets.is_empty(), "no {name} buckets:\n{}", self.text);
        for pair in buckets.windows(2) {
            assert!(pair[0].1 <= pair[1].1, "{name} buckets fall: {buckets:?}");
        }
        let last = buckets.last().unwrap();
        assert_eq!(last.0, f64::INFINITY, "{name} has no +Inf bucket");
        let count = self.expect(&format!("{name}_count"), labels);
        assert_eq!(last.1, count, "{name} +Inf bucket differs from its count");
    }
}

/// Parses `name{key="value",...} value` or `name value`.
fn parse_sample(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    let Some((name, labels)) = series.split_once('{') else {
        return Some(Sample {
            name: series.to_owned(),
            labels: BTreeMap::new(),
            value,
        });
    };
    Some(Sample {
        name: name.to_owned(),
        labels: parse_labels(labels.strip_suffix('}')?)?,
        value,
    })
}

/// Parses `key="value",...` with the format's `\\`, `\"` and `\n` escapes.
fn parse_labels(text: &str) -> Option<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (index, '"') => break index,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    escaped => value.push(escaped),
                },
                (_, other) => value.push(other),
            }
        };
        labels.insert(key.to_owned(), value);
        rest = after[end + 1..]
            .strip_prefix(',')
            .unwrap_or(&after[end + 1..]);
    }
    Some(labels)
}

fn scrape(addr: SocketAddr) -> Scrape {
    let response = get(addr, "/metrics");
    let content_type = response.header("content-type").map(str::to_owned);
    let text = String::from_utf8(response.body).expect("a UTF-8 scrape");
    assert_eq!(response.status, 200, "{text}");
    assert_eq!(content_type.as_deref(), Some(CONTENT_TYPE));
    Scrape::parse(text)
}

fn image(seed: u8) -> Vec<u8> {
    (0..IMAGE_BYTES)
        .map(|index| (index as u8).wrapping_mul(seed))
        .collect()
}

/// Starts a ready server with one HTTP worker, so that each request is
/// counted before the next one is received.
fn start_ready(files: &Files, mode: &str) -> Serve {
    let mut args = files.args(mode);
    args.extend(["--threads".to_owned(), "1".to_owned()]);
    let serve = Serve::start(&args);
    serve.wait_until_ready();
    serve
}

fn request_count(scrape: &Scrape, route: &str, method: &str, code: &str) -> f64 {
    let labels = [("route", route), ("method", method), ("code", code)];
    scrape.count("http_requests_total", &labels)
}

fn duration_count(scrape: &Scrape, route: &str, method: &str) -> f64 {
    let labels = [("route", route), ("method", method)];
    scrape.count("http_request_duration_seconds_count", &labels)
}

#[test]
fn metrics_count_requests_sent() {
    let files = Files::new(20, 5);
    let serve = start_ready(&files, "server");
    let addr = serve.addr();
    let before = scrape(addr);

    for _ in 0..3 {
        assert_eq!(get(addr, "/_/health").status, 200);
    }
    for path in ["/nowhere", "/v2/models/a1/infer", "/x/y/z?q=1"] {
        assert_eq!(get(addr, path).status, 404, "{path}");
    }
    for seed in [3, 7] {
        assert_eq!(post(addr, "/predict", &image(seed)).status, 200);
    }
    assert_eq!(post(addr, "/predict", &[0; 10]).status, 400);
    let brew = b"BREW /predict HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    assert_eq!(exchange(addr, brew).unwrap().status, 405);
    let after = scrape(addr);

    let delta = |route, method, code| {
        request_count(&after, route, method, code) - request_count(&before, route, method, code)
    };
    assert_eq!(delta("/_/health", "GET", "200"), 3.0, "{}", after.text);
    assert_eq!(delta("other", "GET", "404"), 2.0, "{}", after.text);
    assert_eq!(delta("/v2/models/{name}/infer", "GET", "404"), 1.0);
    assert_eq!(delta("/predict", "POST", "200"), 2.0);
    assert_eq!(delta("/predict", "POST", "400"), 1.0);
    assert_eq!(delta("/predict", "other", "405"), 1.0);
    // The first scrape is counted once its response is sent.
    assert_eq!(delta("/metrics", "GET", "200"), 1.0);

    let durations = |route, method| {
        duration_count(&after, route, method) - duration_count(&before, route, method)
    };
    assert_eq!(durations("/predict", "POST"), 3.0);
    assert_eq!(durations("/_/health", "GET"), 3.0);
    assert_eq!(durations("other", "GET"), 2.0);
    after.assert_histogram_consistent(
        "http_request_duration_seconds",
        &[("route", "/predict"), ("method", "POST")],
    );

    let routes: Vec<&str> = after
        .label_sets("http_requests_total")
        .iter()
        .map(|labels| labels["route"].as_str())
        .collect();
    assert!(
        !routes
            .iter()
            .any(|route| route.contains("a1") || route.contains('?')),
        "a client-chosen path became a label: {routes:?}"
    );

    // Only the scrape that reads the gauge is in flight.
    assert_eq!(after.expect("http_requests_in_flight", &[]), 1.0);
}

#[test]
fn metrics_count_predictions() {
    let files = Files::new(20, 6);
    let serve = start_ready(&files, "function");
    let addr = serve.addr();
    let before = scrape(addr);
    assert_eq!(before.count("cifaas_prediction_batch_size_count", &[]), 0.0);
    assert_eq!(before.count("cifaas_inference_seconds_count", &[]), 0.0);

    let predictions = 4;
    for seed in 0..predictions {
        assert_eq!(post(addr, "/predict", &image(seed)).status, 200);
    }
    assert_eq!(post(addr, "/predict", &[1; 5]).status, 400);
    let after = scrape(addr);

    let expected = f64::from(predictions);
    let batches = after.expect("cifaas_prediction_batch_size_count", &[]);
    assert_eq!(batches, expected, "{}", after.text);
    let images = after.expect("cifaas_prediction_batch_size_sum", &[]);
    assert_eq!(images, expected);
    let single = after.expect("cifaas_prediction_batch_size_bucket", &[("le", "1")]);
    assert_eq!(single, expected);
    after.assert_histogram_consistent("cifaas_prediction_batch_size", &[]);

    let inferences = after.expect("cifaas_inference_seconds_count", &[]);
    assert_eq!(inferences, expected);
    let seconds = after.expect("cifaas_inference_seconds_sum", &[]);
    assert!(
        seconds > 0.0 && seconds < 10.0,
        "inference took {seconds} s"
    );
    after.assert_histogram_consistent("cifaas_inference_seconds", &[]);

    assert_eq!(after.expect("cifaas_model_ready", &[]), 1.0);
    let load = after.expect("cifaas_model_load_seconds", &[]);
    assert!(load > 0.0 && load < 60.0, "model load took {load} s");
    let version = env!("CARGO_PKG_VERSION");
    let build = [("version", version), ("mode", "function")];
    assert_eq!(after.expect("cifaas_build_info", &build), 1.0);
}

#[test]
fn metrics_report_process() {
    let files = Files::new(20, 7);
    let serve = start_ready(&files, "server");
    let scrape = scrape(serve.addr());
    let value = |name| scrape.expect(name, &[]);

    let resident = value("process_resident_memory_bytes");
    assert!(resident > 1e6, "resident memory {resident} bytes");
    let virtual_memory = value("process_virtual_memory_bytes");
    assert!(
        virtual_memory >= resident,
        "virtual memory {virtual_memory} bytes"
    );
    let open = value("process_open_fds");
    assert!(open > 3.0, "{open} open file descriptors");
    let max = value("process_max_fds");
    assert!(max >= open, "{max} maximum file descriptors");
    let threads = value("process_threads");
    assert!(threads >= 2.0, "{threads} threads");
    let cpu = value("process_cpu_seconds_total");
    assert!(cpu >= 0.0, "{cpu} CPU seconds");

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let start = value("process_start_time_seconds");
    let age = now - start;
    assert!(
        (-5.0..300.0).contains(&age),
        "the process started {age} s ago"
    );
}

#[test]
fn metrics_served_while_starting() {
    // Training this long keeps the server starting until it is killed.
    let dataset = support::synthetic_dataset(10, 8);
    let serve = Serve::start(&[
        "--mode",
        "server",
        "--bind",
        "127.0.0.1:0",
        "--threads",
        "1",
        "--data",
        dataset.path().to_str().unwrap(),
        "--epochs",
        "100000",
    ]);
    let addr = serve.addr();
    assert_eq!(get(addr, "/_/ready").status, 503);

    let scrape = scrape(addr);
    assert_eq!(scrape.expect("cifaas_model_ready", &[]), 0.0);
    assert_eq!(scrape.expect("cifaas_model_load_seconds", &[]), 0.0);
    let build = [("version", env!("CARGO_PKG_VERSION")), ("mode", "server")];
    assert_eq!(scrape.expect("cifaas_build_info", &build), 1.0);
    let not_ready = request_count(&scrape, "/_/ready", "GET", "503");
    assert_eq!(not_ready, 1.0, "{}", scrape.text);
    assert_eq!(get(addr, "/_/ready").status, 503, "{}", serve.log());
}

#[test]
fn metrics_rejects_other_methods() {
    let files = Files::new(20, 9);
    let serve = start_ready(&files, "server");
    let addr = serve.addr();

    for method in ["POST", "PUT", "DELETE"] {
        let raw = format!(
            "{method} /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        let response = exchange(addr, raw.as_bytes()).unwrap();
        assert_eq!(response.status, 405, "{method}");
        assert_eq!(response.header("allow"), Some("GET, HEAD"), "{method}");
        let message = response.error_message();
        assert!(message.contains("GET, HEAD"), "{message}");
    }

    // The reply to HEAD declares the length of the body it leaves out, so
    // it is read whole up to the close instead of by its Content-Length.
    let mut stream = support::connect(addr);
    let head = b"HEAD /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    stream.write_all(head).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete head");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let content_type = format!("Content-Type: {CONTENT_TYPE}");
    assert!(head.lines().any(|line| line == content_type), "{head}");
    assert!(body.is_empty(), "HEAD returned a body: {body}");
}

/// Returns the promtool that `tests/promtool.sh` finds or downloads.
fn promtool() -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promtool.sh");
    let output = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} could not provide promtool, so the scrape was not checked: {stderr}",
        script.display()
    );
    let path = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(
        !path.is_empty(),
        "{} printed no path: {stderr}",
        script.display()
    );
    path
}

#[test]
fn promtool_accepts_scrape() {
    let promtool = promtool();
    let files = Files::new(20, 10);
    let serve = start_ready(&files, "server");
    let addr = serve.addr();
    assert_eq!(post(addr, "/predict", &image(1)).status, 200);
    assert_eq!(get(addr, "/nowhere").status, 404);
    let scrape = scrape(addr);

    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("failed to run {promtool}: {error}"));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(scrape.text.as_bytes()).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed ({}):\n{}{}\nscrape:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        scrape.text
    );
}

//! The OpenFaaS function contract and admission control of the real
//! binary: the probes during shutdown, `max_inflight`, `exec_timeout`,
//! `X-Timeout`, the response headers and the bounded queue.

mod support;

use std::net::SocketAddr;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use support::{exchange, get, post, Files, Response, Serve};

/// Test images evaluated by a slow `GET /`: a few seconds on 2 cores.
const SLOW_RECORDS: usize = 3000;

/// Starts a `GET /` that runs until the evaluation ends and waits until a
/// compute worker has taken it.
fn start_slow_evaluation(serve: &Serve) -> JoinHandle<Response> {
    let addr = serve.addr();
    let request = thread::spawn(move || get(addr, "/?slow"));
    assert!(
        serve.wait_for_log("GET /?slow", Duration::from_secs(10)),
        "no worker took the evaluation:\n{}",
        serve.log()
    );
    request
}

fn debug_env<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![("RUST_LOG", "info,cifaas_serve=debug")];
    env.extend_from_slice(extra);
    env
}

fn get_with(addr: SocketAddr, path: &str, headers: &str) -> Response {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{headers}Connection: close\r\n\r\n");
    exchange(addr, raw.as_bytes()).expect("GET request")
}

#[test]
fn sigterm_keeps_serving_through_interval() {
    let files = Files::new(20, 1);
    let env = [("healthcheck_interval", "2s")];
    let mut serve = Serve::start_with_env(&files.args("function"), &env);
    serve.wait_until_ready();
    let addr = serve.addr();
    assert!(files.lock.exists());

    let signalled = Instant::now();
    serve.terminate();
    assert!(serve.wait_for_log("health probes now fail", Duration::from_secs(5)));
    assert!(!files.lock.exists(), "lock file left after SIGTERM");
    for path in ["/_/health", "/_/ready"] {
        let response = get(addr, path);
        assert_eq!(response.status, 503, "{path} during the interval");
        assert_eq!(response.json()["status"], "draining");
    }
    let predict = post(addr, "/predict", &[7; 3072]);
    assert_eq!(predict.status, 200, "no prediction during the interval");

    let status = serve.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", serve.log());
    let waited = signalled.elapsed();
    assert!(
        waited >= Duration::from_secs(2),
        "exited {waited:?} after SIGTERM, before the 2 s interval"
    );
    assert!(serve.log().contains("draining"), "{}", serve.log());
}

#[test]
fn second_signal_skips_the_interval() {
    let files = Files::new(20, 1);
    let env = [("healthcheck_interval", "60s")];
    let mut serve = Serve::start_with_env(&files.args("function"), &env);
    serve.wait_until_ready();
    serve.terminate();
    assert!(serve.wait_for_log("health probes now fail", Duration::from_secs(5)));
    serve.terminate();
    let status = serve.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{}", serve.log());
    assert!(
        serve.log().contains("again: draining now"),
        "{}",
        serve.log()
    );
}

#[test]
fn max_inflight_rejects_with_429() {
    let files = Files::new(SLOW_RECORDS, 2);
    let env = debug_env(&[("max_inflight", "1"), ("exec_timeout", "300s")]);
    let serve = Serve::start_with_env(&files.args_with_data("function"), &env);
    serve.wait_until_ready();
    let addr = serve.addr();

    let slow = start_slow_evaluation(&serve);
    let rejected = post(addr, "/predict", &[0; 3072]);
    assert_eq!(rejected.status, 429);
    assert_eq!(
        String::from_utf8_lossy(&rejected.body),
        "Concurrent request limit exceeded. Max concurrent requests: 1\n"
    );
    assert!(rejected
        .header("content-type")
        .is_some_and(|value| value.starts_with("text/plain")));
    assert_eq!(get(addr, "/_/ready").status, 429, "ready while saturated");
    assert_eq!(get(addr, "/_/health").status, 200, "health while saturated");

    assert_eq!(slow.join().unwrap().status, 200);
    assert_eq!(get(addr, "/_/ready").status, 200, "ready once free");
    assert_eq!(post(addr, "/predict", &[0; 3072]).status, 200);
}

#[test]
fn exec_timeout_returns_504() {
    let files = Files::new(SLOW_RECORDS, 3);
    let env = [("exec_timeout", "300ms")];
    let serve = Serve::start_with_env(&files.args_with_data("function"), &env);
    serve.wait_until_ready();

    let started = Instant::now();
    let response = get(serve.addr(), "/");
    let took = started.elapsed();
    assert_eq!(response.status, 504, "{}", serve.log());
    assert!(
        response.error_message().contains("0.300 s"),
        "{}",
        response.error_message()
    );
    // One evaluation batch of 256 images finishes well within 2 s.
    assert!(took < Duration::from_secs(3), "504 after {took:?}");
    let seconds: f64 = response
        .header("x-duration-seconds")
        .expect("X-Duration-Seconds")
        .parse()
        .unwrap();
    assert!(seconds >= 0.3, "X-Duration-Seconds {seconds}");
}

#[test]
fn x_timeout_shortens_the_limit() {
    let files = Files::new(SLOW_RECORDS, 4);
    let serve = Serve::start(&files.args_with_data("server"));
    serve.wait_until_ready();
    let response = get_with(serve.addr(), "/", "X-Timeout: 200ms\r\n");
    assert_eq!(response.status, 504);
    assert!(
        response.error_message().contains("0.200 s"),
        "{}",
        response.error_message()
    );
    let longer = get_with(serve.addr(), "/_/health", "X-Timeout: 1h\r\n");
    assert_eq!(longer.status, 200);
}

#[test]
fn responses_carry_call_and_duration_headers() {
    let files = Files::new(20, 5);
    let serve = Serve::start(&files.args("function"));
    serve.wait_until_ready();
    let headers = "X-Call-Id: call-42\r\nX-Request-Id: req-7\r\n";
    for path in ["/_/health", "/nowhere"] {
        let response = get_with(serve.addr(), path, headers);
        assert_eq!(response.header("x-call-id"), Some("call-42"), "{path}");
        assert_eq!(response.header("x-request-id"), Some("req-7"), "{path}");
        let seconds: f64 = response
            .header("x-duration-seconds")
            .expect("X-Duration-Seconds")
            .parse()
            .unwrap();
        assert!((0.0..1.0).contains(&seconds), "{path}: {seconds}");
    }
    let plain = get(serve.addr(), "/_/health");
    assert_eq!(plain.header("x-call-id"), None);
    assert!(plain.header("x-request-id").is_some());
    assert!(
        serve.log().contains("(call call-42)"),
        "the 404 was not logged with its call id:\n{}",
        serve.log()
    );
}

#[test]
fn full_queue_rejects_with_429() {
    let files = Files::new(SLOW_RECORDS, 6);
    let mut args = files.args_with_data("server");
    args.extend(["--threads", "1", "--max-queue", "0"].map(str::to_owned));
    let serve = Serve::start_with_env(&args, &debug_env(&[]));
    serve.wait_until_ready();
    let addr = serve.addr();

    let slow = start_slow_evaluation(&serve);
    let started = Instant::now();
    let rejected = post(addr, "/predict", &[0; 3072]);
    assert_eq!(rejected.status, 429);
    assert!(
        rejected.error_message().contains("--max-queue"),
        "{}",
        rejected.error_message()
    );
    let health = get(addr, "/_/health");
    assert_eq!(health.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the rejection and the probe waited for the evaluation"
    );
    assert_eq!(slow.join().unwrap().status, 200);
    assert_eq!(post(addr, "/predict", &[0; 3072]).status, 200);
}

#[test]
fn suppress_lock_writes_no_file() {
    let files = Files::new(20, 7);
    let mut serve = Serve::start_with_env(&files.args("function"), &[("suppress_lock", "true")]);
    serve.wait_until_ready();
    assert!(!files.lock.exists(), "lock file written with suppress_lock");
    serve.terminate();
    assert_eq!(serve.wait_exit(Duration::from_secs(20)).code(), Some(0));
}

#[test]
fn prefix_logs_false_logs_bare_lines() {
    let files = Files::new(20, 8);
    let serve = Serve::start_with_env(&files.args("function"), &[("prefix_logs", "false")]);
    serve.wait_until_ready();
    let log = serve.log();
    assert!(
        log.lines().any(|line| line.starts_with("listening on ")),
        "no bare listening line:\n{log}"
    );
    let prefixed = Serve::start(&files.args("server"));
    prefixed.wait_until_ready();
    let log = prefixed.log();
    assert!(
        !log.lines().any(|line| line.starts_with("listening on ")),
        "the default log lines have no prefix:\n{log}"
    );
}

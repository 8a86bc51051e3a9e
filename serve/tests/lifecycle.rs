//! Start-up, readiness, the lock file and graceful shutdown of the real binary.

mod support;

use std::net::TcpListener;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use support::{get, try_get, Files, Serve};

/// Records per file of the dataset trained from scratch: one epoch over
/// 5 x 200 training images takes a few seconds on 2 cores.
const TRAIN_RECORDS: usize = 200;

#[test]
fn function_mode_trains_then_serves_then_drains() {
    let dataset = support::synthetic_dataset(TRAIN_RECORDS, 11);
    let files = tempfile::tempdir().unwrap();
    let lock = files.path().join("ready.lock");
    let saved = files.path().join("trained.ckpt");

    let started = Instant::now();
    let mut serve = Serve::start(&[
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
        "--save",
        saved.to_str().unwrap(),
        "--lock-file",
        lock.to_str().unwrap(),
    ]);
    let addr = serve.addr();

    let health = get(addr, "/_/health");
    assert_eq!(health.status, 200, "/_/health while loading");
    assert_eq!(health.json()["status"], "starting");
    let ready = get(addr, "/_/ready");
    assert_eq!(ready.status, 503, "/_/ready before ready:\n{}", serve.log());
    assert_eq!(ready.json()["status"], "starting");
    assert!(!lock.exists(), "lock file written before ready");
    let predict = support::post(addr, "/predict", &[0; 3072]);
    assert_eq!(predict.status, 503);
    assert_eq!(get(addr, "/").status, 503);

    serve.wait_until_ready();
    eprintln!("ready after {:.2} s", started.elapsed().as_secs_f64());
    assert!(lock.exists(), "lock file missing once ready");
    assert!(saved.exists(), "--save wrote no checkpoint");
    for path in ["/_/health", "/_/ready"] {
        let response = get(addr, path);
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(response.json()["status"], "ready");
    }
    let log = serve.log();
    for phase in [
        "epoch 1/1: loss",
        "trained 1 epoch in",
        "saved checkpoint",
        "warm-up inference in",
        "ready after",
        "wrote lock file",
    ] {
        assert!(log.contains(phase), "no '{phase}' in the log:\n{log}");
    }

    serve.terminate();
    let status = serve.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{}", serve.log());
    assert!(!lock.exists(), "lock file left after SIGTERM");
    assert!(serve.log().contains("received SIGTERM"), "{}", serve.log());
}

#[test]
fn request_in_flight_finishes_at_sigterm() {
    // 3000 test images take a few seconds to evaluate on 2 cores.
    let files = Files::new(3000, 5);
    let lock = files.lock.clone();
    let mut args = files.args_with_data("function");
    args.extend(["--threads".to_owned(), "2".to_owned()]);
    // The drain waits up to write_timeout; a loaded CI machine can take far
    // longer than the 10 s default to evaluate 3000 images.
    let env = [
        ("RUST_LOG", "info,cifaas_serve=debug"),
        ("write_timeout", "300s"),
    ];
    let mut serve = Serve::start_with_env(&args, &env);
    serve.wait_until_ready();
    assert!(lock.exists());

    let addr = serve.addr();
    let in_flight = thread::spawn(move || get(addr, "/?in-flight"));
    let taken = serve.wait_for_log("GET /?in-flight", Duration::from_secs(10));
    assert!(taken, "no worker took the request:\n{}", serve.log());
    serve.terminate();
    assert!(serve.wait_for_log("received SIGTERM", Duration::from_secs(10)));

    let response = in_flight.join().unwrap();
    assert_eq!(response.status, 200, "{}", serve.log());
    assert_eq!(response.json()["total"], 3000);

    let status = serve.wait_exit(Duration::from_secs(300));
    assert_eq!(status.code(), Some(0), "{}", serve.log());
    assert!(!lock.exists());
    assert!(
        try_get(addr, "/_/health").is_err(),
        "server still answers after exit"
    );
}

#[test]
fn server_mode_stops_on_sigint() {
    let files = Files::new(20, 1);
    let lock = files.lock.clone();
    let mut serve = Serve::start(&files.args("server"));
    serve.wait_until_ready();
    assert!(!lock.exists(), "server mode wrote a lock file");

    let status = Command::new("kill")
        .args(["-INT", &serve.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = serve.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{}", serve.log());
    assert!(serve.log().contains("received SIGINT"), "{}", serve.log());
}

#[test]
fn port_variable_sets_function_port() {
    let files = Files::new(20, 1);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port_text = port.to_string();

    let serve = Serve::start_with_env(
        &[
            "--mode",
            "function",
            "--bind",
            "127.0.0.1",
            "--model",
            files.checkpoint.to_str().unwrap(),
            "--lock-file",
            files.lock.to_str().unwrap(),
        ],
        &[("port", &port_text)],
    );
    assert_eq!(serve.addr().port(), port, "{}", serve.log());
    serve.wait_until_ready();
}

#[test]
fn default_threads_follow_cpu_affinity() {
    if Command::new("taskset").arg("--version").output().is_err() {
        println!("skipped: taskset is not installed");
        return;
    }
    let files = Files::new(20, 1);
    let args = files.args_with_data("server");
    let mut command = Command::new("taskset");
    command
        .args(["-c", "0", env!("CARGO_BIN_EXE_serve")])
        .args(&args);
    let serve = Serve::spawn(command, &[]);
    serve.wait_until_ready();
    let body = get(serve.addr(), "/").json();
    assert_eq!(body["threads"], 1, "{}", serve.log());
    assert!(
        serve.log().contains("(mode server, 1 thread)"),
        "{}",
        serve.log()
    );
}

#[test]
fn stale_lock_removed_at_start() {
    let files = Files::new(20, 2);
    std::fs::write(&files.lock, b"").unwrap();
    let mut serve = Serve::start(&files.args("function"));
    assert!(
        serve.wait_for_log("stale lock file", Duration::from_secs(10)),
        "{}",
        serve.log()
    );
    serve.wait_until_ready();
    assert!(files.lock.exists(), "lock file missing once ready");
    serve.terminate();
    assert_eq!(serve.wait_exit(Duration::from_secs(20)).code(), Some(0));
    assert!(!files.lock.exists(), "lock file left after SIGTERM");
}

#[test]
fn failed_start_keeps_foreign_lock() {
    let files = Files::new(20, 3);
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.ckpt");
    std::fs::write(&corrupt, b"not a checkpoint").unwrap();
    // A running instance already owns the port, so this second one fails
    // to bind and must leave that instance's lock file alone.
    let mut first = Serve::start(&files.args("function"));
    first.wait_until_ready();
    assert!(files.lock.exists());
    let addr = first.addr().to_string();
    let args = [
        "--mode",
        "function",
        "--bind",
        &addr,
        "--model",
        corrupt.to_str().unwrap(),
        "--lock-file",
        files.lock.to_str().unwrap(),
    ];
    let (status, _, stderr) = support::run_binary(env!("CARGO_BIN_EXE_serve"), &args);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        files.lock.exists(),
        "second instance removed the lock: {stderr}"
    );
    first.terminate();
    assert_eq!(first.wait_exit(Duration::from_secs(20)).code(), Some(0));
}

#[test]
fn failed_load_leaves_no_lock() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.ckpt");
    std::fs::write(&corrupt, b"not a checkpoint").unwrap();
    let lock = dir.path().join("lock");
    let args = [
        "--mode",
        "function",
        "--bind",
        "127.0.0.1:0",
        "--model",
        corrupt.to_str().unwrap(),
        "--lock-file",
        lock.to_str().unwrap(),
    ];
    let (status, _, stderr) = support::run_binary(env!("CARGO_BIN_EXE_serve"), &args);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("wrong magic number"), "{stderr}");
    assert!(!lock.exists());
}

//! Invalid options and inputs: `serve` and `train` exit with code 2 and a
//! message naming the value and the fix, without a panic.

mod support;

use std::time::Duration;

use support::{run_binary, Files, Serve};

const SERVE: &str = env!("CARGO_BIN_EXE_serve");
const TRAIN: &str = env!("CARGO_BIN_EXE_train");

fn assert_usage_error(binary: &str, args: &[&str], expected: &[&str]) {
    let (status, _, stderr) = run_binary(binary, args);
    assert_eq!(status.code(), Some(2), "{args:?}:\n{stderr}");
    for text in expected {
        assert!(stderr.contains(text), "{args:?}: no '{text}' in:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{args:?}:\n{stderr}");
}

#[test]
fn serve_without_mode() {
    assert_usage_error(SERVE, &["--model", "x"], &["--mode <MODE>"]);
}

#[test]
fn serve_bad_threads() {
    for value in ["0", "-3", "two"] {
        let threads = format!("--threads={value}");
        let args = [
            "--mode",
            "server",
            "--bind",
            "127.0.0.1:0",
            "--model",
            "x",
            &threads,
        ];
        assert_usage_error(
            SERVE,
            &args,
            &[&format!("invalid value '{value}' for '--threads <N>'")],
        );
    }
}

#[test]
fn serve_bad_bind() {
    let args = [
        "--mode",
        "server",
        "--bind",
        "127.0.0.1:http",
        "--model",
        "x",
    ];
    assert_usage_error(SERVE, &args, &["invalid value '127.0.0.1:http'", "IP:PORT"]);
}

#[test]
fn serve_bad_port_variable() {
    let files = Files::new(10, 1);
    let mut args = files.args("function");
    args[3] = "127.0.0.1".into();
    let output = std::process::Command::new(SERVE)
        .args(&args)
        .env("port", "eighty")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid port environment variable 'eighty'"),
        "{stderr}"
    );
}

#[test]
fn serve_missing_model_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.ckpt");
    let lock = dir.path().join("lock");
    let args = [
        "--mode",
        "server",
        "--bind",
        "127.0.0.1:0",
        "--model",
        missing.to_str().unwrap(),
        "--lock-file",
        lock.to_str().unwrap(),
    ];
    assert_usage_error(
        SERVE,
        &args,
        &["cannot read the model", "missing.ckpt", "--model"],
    );
}

#[test]
fn serve_corrupt_model_file() {
    let files = Files::new(10, 1);
    std::fs::write(&files.checkpoint, b"not a checkpoint at all").unwrap();
    let mut serve = Serve::start(&files.args("function"));
    let status = serve.wait_exit(Duration::from_secs(30));
    let log = serve.log();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("failed to load the model"), "{log}");
    assert!(log.contains("net.ckpt"), "{log}");
    assert!(
        !files.lock.exists(),
        "lock file written for a failed start-up"
    );
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn serve_missing_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dataset");
    let lock = dir.path().join("lock");
    let args = [
        "--mode",
        "server",
        "--bind",
        "127.0.0.1:0",
        "--data",
        missing.to_str().unwrap(),
        "--lock-file",
        lock.to_str().unwrap(),
    ];
    assert_usage_error(
        SERVE,
        &args,
        &["failed to open the dataset", "no-such-dataset", "--data"],
    );
}

#[test]
fn serve_address_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let files = Files::new(10, 1);
    let mut args = files.args("server");
    args[3] = addr.clone();
    let (status, _, stderr) =
        run_binary(SERVE, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("failed to listen on {addr}")),
        "{stderr}"
    );
    assert!(stderr.contains("--bind"), "{stderr}");
}

#[test]
fn train_bad_values() {
    let cases: [(&[&str], &str); 5] = [
        (&["--epochs", "0"], "the epoch count must be at least 1"),
        (&["--threads", "0"], "the thread count must be at least 1"),
        (&["--lr=-1"], "learning rate greater than 0"),
        (&["--dropout", "1.5"], "from 0 up to but not including 1"),
        (&["--batch-size", "0"], "positive integer number of images"),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["--data", "d", "--out", "o.ckpt"];
        args.extend_from_slice(extra);
        assert_usage_error(TRAIN, &args, &[expected]);
    }
}

#[test]
fn train_missing_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent");
    let out = dir.path().join("out.ckpt");
    let args = [
        "--data",
        missing.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    assert_usage_error(TRAIN, &args, &["failed to open the dataset", "absent"]);
    assert!(!out.exists());
}

#[test]
fn negative_threads_named() {
    let files = Files::new(10, 1);
    let mut args = files.args("server");
    args.extend(["--threads".to_owned(), "-1".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_usage_error(
        SERVE,
        &args,
        &["--threads", "positive integer thread count"],
    );
}

#[test]
fn unwritable_outputs_rejected_before_work() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = support::synthetic_dataset(10, 2);
    let missing = dir.path().join("absent").join("m.ckpt");
    let data = dataset.path().to_str().unwrap();
    let out = missing.to_str().unwrap();

    let train = ["--data", data, "--out", out];
    assert_usage_error(TRAIN, &train, &["--out", "absent", "writable folder"]);

    let serve = [
        "--mode",
        "server",
        "--bind",
        "127.0.0.1:0",
        "--data",
        data,
        "--save",
        out,
    ];
    assert_usage_error(SERVE, &serve, &["--save", "absent", "writable folder"]);

    let serve = [
        "--mode",
        "function",
        "--bind",
        "127.0.0.1:0",
        "--data",
        data,
        "--lock-file",
        out,
    ];
    assert_usage_error(SERVE, &serve, &["--lock-file", "absent"]);
}

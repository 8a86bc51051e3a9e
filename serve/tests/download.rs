//! `train` and `serve` without `--data`: the default data folder, the
//! `--download` flag and its errors, against a loopback HTTP server that
//! the test starts. Every run points `--data-url` at that server.

use std::io::Cursor;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

const SERVE: &str = env!("CARGO_BIN_EXE_serve");
const TRAIN: &str = env!("CARGO_BIN_EXE_train");

/// Requests one test server answers before its thread ends.
const MAX_REQUESTS: usize = 8;

/// A loopback server that answers every request with one status and body,
/// and counts the requests.
struct ArchiveServer {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

impl ArchiveServer {
    fn start(status: u16, body: Vec<u8>) -> Self {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let addr = server.server_addr().to_ip().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        thread::spawn(move || {
            for request in server.incoming_requests().take(MAX_REQUESTS) {
                counter.fetch_add(1, Ordering::SeqCst);
                let response = tiny_http::Response::new(
                    tiny_http::StatusCode(status),
                    Vec::new(),
                    Cursor::new(body.clone()),
                    Some(body.len()),
                    None,
                );
                // A client that hangs up early is the client's failure.
                let _ = request.respond(response);
            }
        });
        Self { addr, requests }
    }

    fn url(&self) -> String {
        format!("http://{}/cifar-10-binary.tar.gz", self.addr)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Bytes and MD5 of a small synthetic archive.
fn synthetic_archive() -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cifar-10-binary.tar.gz");
    data::write_synthetic_archive(&path, 40, 3).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let md5 = md5_hex(&bytes);
    (bytes, md5)
}

fn md5_hex(bytes: &[u8]) -> String {
    let output = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(bytes)?;
            child.wait_with_output()
        })
        .expect("run md5sum");
    String::from_utf8(output.stdout).unwrap()[..32].to_owned()
}

/// Runs a binary with `CIFAAS_DATA_DIR=data_dir`, no terminal and no proxy.
fn run(binary: &str, data_dir: &Path, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .env("CIFAAS_DATA_DIR", data_dir)
        .env("RUST_LOG", "info")
        .env_remove("port")
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("all_proxy")
        .env_remove("ALL_PROXY")
        .stdin(Stdio::null())
        .output()
        .expect("run the binary")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn train_args<'a>(out: &'a str, url: &'a str, md5: &'a str) -> Vec<&'a str> {
    vec![
        "--download",
        "--data-url",
        url,
        "--data-md5",
        md5,
        "--epochs",
        "1",
        "--threads",
        "1",
        "--out",
        out,
    ]
}

#[test]
fn train_downloads_then_reuses() {
    let (bytes, md5) = synthetic_archive();
    let server = ArchiveServer::start(200, bytes);
    let data_dir = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let first = out_dir.path().join("first.ckpt");
    let url = server.url();

    let output = run(
        TRAIN,
        data_dir.path(),
        &train_args(first.to_str().unwrap(), &url, &md5),
    );

    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert!(model::load_checkpoint(&first).is_ok(), "{log}");
    assert!(
        log.contains(&data_dir.path().display().to_string()),
        "{log}"
    );
    assert!(data_dir.path().join("cifar-10-binary.tar.gz").is_file());
    assert!(data_dir.path().join("cifar-10-binary").is_dir());
    assert_eq!(server.requests(), 1);

    let second = out_dir.path().join("second.ckpt");
    let output = run(
        TRAIN,
        data_dir.path(),
        &train_args(second.to_str().unwrap(), &url, &md5),
    );

    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert!(model::load_checkpoint(&second).is_ok(), "{log}");
    assert_eq!(server.requests(), 1, "the second run downloaded again");
}

#[test]
fn train_wrong_md5_rejected() {
    let (bytes, _) = synthetic_archive();
    let server = ArchiveServer::start(200, bytes);
    let data_dir = tempfile::tempdir().unwrap();
    let out = data_dir.path().join("never.ckpt");
    let wrong = "0".repeat(32);

    let output = run(
        TRAIN,
        data_dir.path(),
        &train_args(out.to_str().unwrap(), &server.url(), &wrong),
    );

    let log = stderr(&output);
    assert!(!output.status.success(), "{log}");
    assert!(log.contains(&format!("expected {wrong}")), "{log}");
    assert!(log.contains(&server.url()), "{log}");
    assert!(!data_dir.path().join("cifar-10-binary.tar.gz").exists());
    assert!(!out.exists());
}

#[test]
fn train_not_found_rejected() {
    let server = ArchiveServer::start(404, b"not found".to_vec());
    let data_dir = tempfile::tempdir().unwrap();
    let out = data_dir.path().join("never.ckpt");
    let md5 = "0".repeat(32);

    let output = run(
        TRAIN,
        data_dir.path(),
        &train_args(out.to_str().unwrap(), &server.url(), &md5),
    );

    let log = stderr(&output);
    assert!(!output.status.success(), "{log}");
    assert!(log.contains("HTTP 404"), "{log}");
    assert!(log.contains(&server.url()), "{log}");
    assert!(!data_dir.path().join("cifar-10-binary.tar.gz").exists());
}

#[test]
fn train_missing_data_names_download() {
    let data_dir = tempfile::tempdir().unwrap();
    let out = data_dir.path().join("never.ckpt");

    let output = run(TRAIN, data_dir.path(), &["--out", out.to_str().unwrap()]);

    let log = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{log}");
    assert!(log.contains("--download"), "{log}");
    assert!(log.contains("--data PATH"), "{log}");
    assert!(
        log.contains(&data_dir.path().display().to_string()),
        "{log}"
    );
}

#[test]
fn serve_missing_data_names_download() {
    let data_dir = tempfile::tempdir().unwrap();

    // --epochs asks for training, so the built-in model does not apply.
    let output = run(
        SERVE,
        data_dir.path(),
        &["--mode", "server", "--bind", "127.0.0.1:0", "--epochs", "1"],
    );

    let log = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{log}");
    assert!(log.contains("no model to serve"), "{log}");
    assert!(log.contains("--download"), "{log}");
    assert!(log.contains("--model FILE"), "{log}");
}

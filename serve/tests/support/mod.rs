//! Helpers shared by the integration tests: datasets and checkpoints in
//! temporary folders, the `serve` process, and a small HTTP/1.1 client that
//! can also send malformed requests. All traffic goes to 127.0.0.1.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Maximum wait for a server to start listening or become ready.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Read timeout of one HTTP exchange. Evaluating the real test set takes
/// about 5 s on two idle cores and passed 60 s at a load average of 16.
pub const IO_TIMEOUT: Duration = Duration::from_secs(180);

/// The of-watchdog variables `serve` reads, removed from every test
/// process's environment so that only a test's own values apply.
pub const WATCHDOG_VARIABLES: [&str; 9] = [
    "port",
    "read_timeout",
    "write_timeout",
    "exec_timeout",
    "healthcheck_interval",
    "max_inflight",
    "suppress_lock",
    "prefix_logs",
    "log_callid",
];

/// Writes a synthetic dataset with `records` per file into a new temporary folder.
pub fn synthetic_dataset(records: usize, seed: u64) -> TempDir {
    let folder = tempfile::tempdir().expect("create a temporary folder");
    data::write_synthetic(folder.path(), records, seed).expect("write a synthetic dataset");
    folder
}

/// Saves an untrained network, normalised for `dataset`, to `dir/name`.
pub fn untrained_checkpoint(dataset: &Path, dir: &Path, name: &str) -> PathBuf {
    let opened = data::Cifar10::open(dataset).expect("open the synthetic dataset");
    let stats = data::ChannelStats::compute(&opened.train);
    let network = model::Network::new(7, 0.25, stats).expect("build a network");
    let path = dir.join(name);
    model::save_checkpoint(&network, &path).expect("save a checkpoint");
    path
}

/// A synthetic dataset, an untrained checkpoint for it and a lock file
/// path, each in a temporary folder.
pub struct Files {
    /// The dataset folder.
    pub dataset: TempDir,
    /// Folder of the checkpoint and the lock file.
    pub dir: TempDir,
    /// The checkpoint.
    pub checkpoint: PathBuf,
    /// The lock file path (not created).
    pub lock: PathBuf,
}

impl Files {
    /// Writes `records` per dataset file and a checkpoint.
    pub fn new(records: usize, seed: u64) -> Self {
        let dataset = synthetic_dataset(records, seed);
        let dir = tempfile::tempdir().expect("create a temporary folder");
        let checkpoint = untrained_checkpoint(dataset.path(), dir.path(), "net.ckpt");
        let lock = dir.path().join("lock");
        Self {
            dataset,
            dir,
            checkpoint,
            lock,
        }
    }

    /// `serve` options for `mode` on 127.0.0.1 port 0 with this checkpoint and lock file.
    pub fn args(&self, mode: &str) -> Vec<String> {
        let mut args = vec!["--mode", mode, "--bind", "127.0.0.1:0", "--model"];
        args.push(self.checkpoint.to_str().unwrap());
        args.push("--lock-file");
        args.push(self.lock.to_str().unwrap());
        args.into_iter().map(str::to_owned).collect()
    }

    /// `args(mode)` plus `--data` with the dataset.
    pub fn args_with_data(&self, mode: &str) -> Vec<String> {
        let mut args = self.args(mode);
        args.push("--data".into());
        args.push(self.dataset.path().to_str().unwrap().into());
        args
    }
}

/// A running `serve` process; killed on drop if it is still running.
pub struct Serve {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Serve {
    /// Starts `serve` with `args` and waits for its `listening on` line.
    pub fn start<S: AsRef<OsStr>>(args: &[S]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// As [`Serve::start`] with extra environment variables.
    pub fn start_with_env<S: AsRef<OsStr>>(args: &[S], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_serve"));
        command.args(args);
        Self::spawn(command, env)
    }

    /// Starts a prepared command (for example under `taskset`).
    pub fn spawn(mut command: Command, env: &[(&str, &str)]) -> Self {
        for variable in WATCHDOG_VARIABLES {
            command.env_remove(variable);
        }
        command
            // Tests that need the interval between SIGTERM and the drain set it.
            .env("healthcheck_interval", "0")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let listening = collect_log(stderr, log.clone());

        let addr = match listening.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "serve printed no listening line:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Self { child, addr, log }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every log line so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits until a log line contains `text`.
    pub fn wait_for_log(&self, text: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self
                .log
                .lock()
                .unwrap()
                .iter()
                .any(|line| line.contains(text))
            {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Polls `GET /_/ready` until it returns 200.
    pub fn wait_until_ready(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(response) = try_get(self.addr, "/_/ready") {
                if response.status == 200 {
                    return;
                }
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("serve did not become ready:\n{}", self.log());
    }

    /// Sends SIGTERM to this process only.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Waits for the process to exit, killing it after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll serve") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("serve did not exit within {timeout:?}:\n{}", self.log());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Copies each stderr line into `log` and sends the address of the first
/// `listening on ADDR` line.
fn collect_log(
    stderr: impl Read + Send + 'static,
    log: Arc<Mutex<Vec<String>>>,
) -> Receiver<SocketAddr> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if let Some(addr) = listening_addr(&line) {
                let _ = sender.send(addr);
            }
            log.lock().unwrap().push(line);
        }
    });
    receiver
}

fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// Runs a binary to completion and returns its exit status, stdout and stderr.
pub fn run_binary(path: &str, args: &[&str]) -> (ExitStatus, String, String) {
    let mut command = Command::new(path);
    for variable in WATCHDOG_VARIABLES {
        command.env_remove(variable);
    }
    let output = command
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the binary");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    /// Status code of the final (non-1xx) response.
    pub status: u16,
    /// Header lines as (lowercase name, value).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(field, _)| *field == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "body is not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The `error` field of a JSON error body.
    pub fn error_message(&self) -> String {
        self.json()["error"]
            .as_str()
            .expect("an error field")
            .to_owned()
    }
}

/// Opens a connection with read and write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to serve");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream
}

/// Sends `raw` bytes on a new connection and reads one response.
pub fn exchange(addr: SocketAddr, raw: &[u8]) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.write_all(raw)?;
    read_response(&mut BufReader::new(stream))
}

/// `GET path`, panicking on a connection error.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    try_get(addr, path).expect("GET request")
}

/// `GET path`.
pub fn try_get(addr: SocketAddr, path: &str) -> std::io::Result<Response> {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// `POST path` with `body` and its Content-Length.
pub fn post(addr: SocketAddr, path: &str, body: &[u8]) -> Response {
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    exchange(addr, &raw).expect("POST request")
}

/// Reads one final response, skipping interim 1xx responses.
pub fn read_response(reader: &mut impl BufRead) -> std::io::Result<Response> {
    loop {
        let (status, headers) = read_head(reader)?;
        if (100..200).contains(&status) {
            continue;
        }
        let body = read_body(reader, &headers)?;
        return Ok(Response {
            status,
            headers,
            body,
        });
    }
}

fn read_head(reader: &mut impl BufRead) -> std::io::Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("invalid status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            return Ok((status, headers));
        }
        if let Some((field, value)) = line.split_once(':') {
            headers.push((field.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
}

fn read_body(reader: &mut impl BufRead, headers: &[(String, String)]) -> std::io::Result<Vec<u8>> {
    let find = |name: &str| {
        headers
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(length) = find("content-length") {
        let length: usize = length.parse().map_err(std::io::Error::other)?;
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    } else if find("transfer-encoding").is_some_and(|value| value.contains("chunked")) {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            let size =
                usize::from_str_radix(size_line.trim(), 16).map_err(std::io::Error::other)?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        reader.read_to_end(&mut body)?;
    }
    Ok(body)
}

/// Closes the write side of a connection.
pub fn close_write(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
}

//! Starts a server pinned to a CPU set, waits for its readiness endpoint
//! and stops it.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::procfs::format_cpu_list;

/// Time between two readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(1);

/// Maximum wait for `taskset` to exec the program it starts.
const EXEC_TIMEOUT: Duration = Duration::from_secs(10);

/// Maximum wait for a process to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A server process started by [`start_pinned`]; killed on drop if still running.
pub struct Server {
    child: Child,
    /// When the process was spawned.
    pub started: Instant,
    /// The address it listens on.
    pub address: SocketAddr,
    /// File that receives its standard output and error.
    pub log: PathBuf,
}

/// Returns a free loopback port (bound, then released).
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Spawns `program arguments` under `taskset -c CPUS`, with output to `log`.
///
/// `taskset` sets the CPU affinity and then execs the program, so the
/// process id is the server's own.
///
/// # Errors
/// When `taskset` or the log file cannot be opened.
pub fn start_pinned(
    program: &Path,
    arguments: &[String],
    cpus: &[usize],
    address: SocketAddr,
    log: &Path,
) -> anyhow::Result<Server> {
    let output = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let errors = output.try_clone()?;
    let mut command = Command::new("taskset");
    command
        .arg("-c")
        .arg(format_cpu_list(cpus))
        .arg(program)
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors);
    let started = Instant::now();
    let child = command.spawn().with_context(|| {
        format!(
            "cannot run taskset (install util-linux) to start {}",
            program.display()
        )
    })?;
    let mut server = Server {
        child,
        started,
        address,
        log: log.to_owned(),
    };
    server.wait_exec(program)?;
    Ok(server)
}

impl Server {
    /// Returns the process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `taskset` has set the affinity and exec'd `program`, so
    /// that no `/proc` sample shows `taskset` itself, which starts on every CPU.
    fn wait_exec(&mut self, program: &Path) -> anyhow::Result<()> {
        let expected = fs::canonicalize(program)
            .with_context(|| format!("cannot resolve {}", program.display()))?;
        let exe = PathBuf::from(format!("/proc/{}/exe", self.pid()));
        while fs::read_link(&exe).ok().as_ref() != Some(&expected) {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "taskset exited with {status} before it started {}; its log ends:\n{}",
                    program.display(),
                    self.log_tail()
                );
            }
            if self.started.elapsed() > EXEC_TIMEOUT {
                bail!(
                    "taskset did not start {} within {EXEC_TIMEOUT:?}",
                    program.display()
                );
            }
            thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }

    /// Probes `GET path` until it returns 200 and returns the time from spawn.
    ///
    /// # Errors
    /// When the process exits first or `timeout` passes; the message
    /// includes the end of the process's log.
    pub fn wait_ready(&mut self, path: &str, timeout: Duration) -> anyhow::Result<Duration> {
        loop {
            if get_status(self.address, path).ok() == Some(200) {
                return Ok(self.started.elapsed());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "pid {} exited with {status} before {path} returned 200; its log ends:\n{}",
                    self.pid(),
                    self.log_tail()
                );
            }
            if self.started.elapsed() > timeout {
                bail!(
                    "pid {}: {path} did not return 200 within {timeout:?}; its log ends:\n{}",
                    self.pid(),
                    self.log_tail()
                );
            }
            thread::sleep(PROBE_INTERVAL);
        }
    }

    /// Sends SIGTERM and waits for the exit; SIGKILL after [`STOP_TIMEOUT`].
    ///
    /// # Errors
    /// When `kill` cannot run or waiting fails.
    pub fn stop(mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let pid = self.pid().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .context("cannot run kill")?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "experiment: pid {pid} still running {STOP_TIMEOUT:?} after SIGTERM; sending SIGKILL"
        );
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// The last lines of the process's log.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends `GET path` with HTTP/1.1 and returns the response status.
///
/// # Errors
/// When the connection or the exchange fails, or the status line is invalid.
pub fn get_status(address: SocketAddr, path: &str) -> anyhow::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    let line = String::from_utf8_lossy(&head);
    line.get(9..12)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("invalid HTTP status line {line:?} from {address}{path}"))
}

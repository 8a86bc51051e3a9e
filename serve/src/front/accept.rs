//! The acceptor: takes each connection from the public listener, rejects
//! those above the connection cap with 503, and gives the others a thread
//! of their own. An `accept` error is logged and retried; only an error
//! that means the listener itself is broken stops the process.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::connection::{self, rejection_response};
use super::head::Rejection;
use super::Front;
use crate::Event;

/// Stack size of a connection thread, which keeps its buffers on the heap.
const CONNECTION_STACK_BYTES: usize = 256 * 1024;

/// File descriptors one connection can hold at once: the client socket,
/// the internal socket, and the library's two handles of the other end.
const FDS_PER_CONNECTION: usize = 4;

/// File descriptors kept for everything else: files, logs, `/proc` reads.
const RESERVED_FDS: usize = 64;

/// Pause after an error that more attempts cannot fix at once, such as
/// running out of file descriptors.
const BACKOFF: Duration = Duration::from_millis(100);

/// What to do after an `accept` error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptError {
    /// The one connection failed: accept the next one at once.
    Retry,
    /// A resource ran out: wait a little, then accept again.
    Backoff,
    /// The listener is unusable: stop the process.
    Fatal,
}

/// Linux errno values of `accept` errors that mean the listening socket
/// is unusable: EBADF, EFAULT, EINVAL, ENOTSOCK, EOPNOTSUPP.
const FATAL_ERRNOS: [i32; 5] = [9, 14, 22, 88, 95];

/// Linux errno values of a resource shortage that passes with time:
/// EMFILE, ENFILE, ENOBUFS, ENOMEM.
const SHORTAGE_ERRNOS: [i32; 4] = [24, 23, 105, 12];

/// Sorts an `accept` error by its Linux errno. Every other error, such as
/// ECONNABORTED, EPROTO, EINTR or a network error Linux passes on from the
/// new socket, concerns that one connection.
pub fn classify(error: &io::Error) -> AcceptError {
    match error.raw_os_error() {
        Some(errno) if FATAL_ERRNOS.contains(&errno) => AcceptError::Fatal,
        Some(errno) if SHORTAGE_ERRNOS.contains(&errno) => AcceptError::Backoff,
        Some(_) => AcceptError::Retry,
        None => AcceptError::Backoff,
    }
}

/// Accepts connections until the front end closes or the listener breaks.
pub fn run(front: &Arc<Front>, listener: &TcpListener, events: &Sender<Event>) {
    let mut last_warning: Option<Instant> = None;
    while !front.closing.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if front.closing.load(Ordering::SeqCst) {
                    return;
                }
                hand_over(front, stream, peer);
            }
            Err(error) => match classify(&error) {
                AcceptError::Retry => log::debug!("accept failed, retrying: {error}"),
                AcceptError::Backoff => {
                    front.app.metrics.count_rejection("accept_error");
                    if last_warning.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                        log::warn!(
                            "accept failed: {error}; retrying every {} ms until it succeeds",
                            BACKOFF.as_millis()
                        );
                        last_warning = Some(Instant::now());
                    }
                    thread::sleep(BACKOFF);
                }
                AcceptError::Fatal => {
                    let _ = events.send(Event::ListenerFailed(format!("accept failed: {error}")));
                    return;
                }
            },
        }
    }
}

/// Starts the connection's thread, or rejects it with 503 at the cap.
fn hand_over(front: &Arc<Front>, stream: TcpStream, peer: SocketAddr) {
    let cap = front.limits.max_connections;
    if front.open.load(Ordering::SeqCst) >= cap {
        front.app.metrics.count_rejection("connection_limit");
        log::info!("connection from {peer}: rejected with 503, {cap} connections are open (--max-connections)");
        reject_at_cap(stream, cap);
        return;
    }
    front.open.fetch_add(1, Ordering::SeqCst);
    front
        .app
        .metrics
        .set_open_connections(front.open.load(Ordering::SeqCst));
    let shared = front.clone();
    let spawned = thread::Builder::new()
        .name("http-conn".into())
        .stack_size(CONNECTION_STACK_BYTES)
        .spawn(move || {
            let _open = OpenConnection(&shared);
            connection::serve(&shared, stream, peer);
        });
    if let Err(error) = spawned {
        // The closure never ran, so the count is undone here.
        let open = front.open.fetch_sub(1, Ordering::SeqCst) - 1;
        front.app.metrics.set_open_connections(open);
        log::warn!("connection from {peer}: closed, no thread could be started: {error}");
    }
}

/// A connection counted as open until dropped.
struct OpenConnection<'a>(&'a Front);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        let open = self.0.open.fetch_sub(1, Ordering::SeqCst) - 1;
        self.0.app.metrics.set_open_connections(open);
    }
}

/// Writes a 503 without waiting on the client and closes the connection.
fn reject_at_cap(mut stream: TcpStream, cap: usize) {
    let rejection = Rejection::new(
        503,
        "connection_limit",
        format!("the server has {cap} connections open, its limit: retry later"),
    );
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    // Reading what already arrived keeps the close from becoming a reset.
    let mut sink = [0u8; 4096];
    let _ = stream.read(&mut sink);
    let _ = stream.write_all(&rejection_response(&rejection));
    let _ = stream.shutdown(Shutdown::Write);
}

/// Lowers `wanted` so that the connections fit in the soft limit on open
/// files (read from `/proc/self/limits`), logging when it does.
pub fn fit_to_fd_limit(wanted: usize) -> usize {
    let Some(limit) = open_files_limit() else {
        return wanted;
    };
    let fitting = (limit.saturating_sub(RESERVED_FDS) / FDS_PER_CONNECTION).max(1);
    if fitting < wanted {
        log::warn!(
            "the open-files limit of {limit} allows {fitting} connections at once, not \
             {wanted}: raise it (ulimit -n) for more"
        );
        return fitting;
    }
    wanted
}

fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files_limit(&limits)
}

/// The soft limit of the `Max open files` line of a `/proc/PID/limits` text.
fn parse_open_files_limit(limits: &str) -> Option<usize> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    soft.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_accept_errors() {
        let errno = io::Error::from_raw_os_error;
        assert_eq!(classify(&errno(103)), AcceptError::Retry); // ECONNABORTED
        assert_eq!(classify(&errno(71)), AcceptError::Retry); // EPROTO
        assert_eq!(classify(&errno(24)), AcceptError::Backoff); // EMFILE
        assert_eq!(classify(&errno(23)), AcceptError::Backoff); // ENFILE
        assert_eq!(classify(&errno(9)), AcceptError::Fatal); // EBADF
        assert_eq!(classify(&errno(22)), AcceptError::Fatal); // EINVAL
    }

    #[test]
    fn reads_the_open_files_limit() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\n\
                    Max processes             63704                63704                processes\n\
                    Max open files            1024                 524288               files\n";
        assert_eq!(parse_open_files_limit(text), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_open_files_limit(unlimited), None);
        assert!(open_files_limit().is_some());
    }
}

//! The connection front end: the public listener and every client
//! connection, in front of the HTTP library.
//!
//! tiny_http 0.12 sets no socket timeouts, caps neither the request head
//! nor its thread pool, sizes one allocation by the declared
//! `Content-Length` of a body left unread, keeps HTTP/1.0 connections open
//! without being asked, and stops accepting for good after one `accept`
//! error. So the library listens only on a private Unix socket, and this
//! module owns the public one: an acceptor thread caps the open
//! connections, and one thread per connection reads each request with a
//! deadline and within the head and body limits. Only a complete, checked
//! request reaches the library, and its response goes back to the client
//! with a deadline too.

mod accept;
mod body;
mod conn;
mod connection;
pub mod head;
mod relay;
mod socket_dir;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::app::App;
use crate::Event;

pub use socket_dir::SocketDir;

/// Default of `--max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// Maximum request body bytes held by all connections at once. A body is
/// counted from its `Content-Length`, or at its path's cap when chunked,
/// before it is read; one that does not fit gets 503.
pub const MAX_BUFFERED_BODY_BYTES: usize = 256 * 1024 * 1024;

/// Time and count limits of client connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest time to receive one request, head and body (`read_timeout`);
    /// also the longest a keep-alive connection waits idle.
    pub read_timeout: Duration,
    /// Longest time to send one response (`write_timeout`).
    pub write_timeout: Duration,
    /// Maximum client connections open at once.
    pub max_connections: usize,
}

/// State the acceptor and the connection threads share.
pub struct Front {
    app: Arc<App>,
    limits: Limits,
    socket: PathBuf,
    open: AtomicUsize,
    busy: AtomicUsize,
    closing: AtomicBool,
    events: Sender<Event>,
    buffered: AtomicUsize,
}

impl Front {
    /// Reserves `bytes` of the body memory budget until the returned value
    /// drops, or returns `None` when they do not fit.
    fn reserve_body(&self, bytes: usize) -> Option<BodyReservation<'_>> {
        self.buffered
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                held.checked_add(bytes)
                    .filter(|total| *total <= MAX_BUFFERED_BODY_BYTES)
            })
            .ok()?;
        Some(BodyReservation { front: self, bytes })
    }

    /// Reports that the library no longer accepts on its socket, which
    /// stops the process with a non-zero exit so that a supervisor restarts it.
    fn library_gone(&self, error: &std::io::Error) {
        let reason = format!("the HTTP library stopped accepting on its internal socket: {error}");
        let _ = self.events.send(Event::ListenerFailed(reason));
    }

    /// Counts a request passed to the library until the returned value drops.
    fn start_request(&self) -> BusyRequest<'_> {
        self.busy.fetch_add(1, Ordering::SeqCst);
        BusyRequest(self)
    }
}

/// Body memory held for one request.
struct BodyReservation<'a> {
    front: &'a Front,
    bytes: usize,
}

impl Drop for BodyReservation<'_> {
    fn drop(&mut self) {
        self.front.buffered.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// A request passed to the library and not yet answered.
struct BusyRequest<'a>(&'a Front);

impl Drop for BusyRequest<'_> {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The running front end.
pub struct FrontEnd {
    front: Arc<Front>,
    local: SocketAddr,
    acceptor: JoinHandle<()>,
}

impl FrontEnd {
    /// Starts the acceptor on `listener`; requests go to the library on
    /// `socket`. `limits.max_connections` is lowered when the process's
    /// file descriptor limit cannot hold that many connections.
    ///
    /// # Errors
    /// When the acceptor thread cannot be started.
    pub fn start(
        app: &Arc<App>,
        listener: TcpListener,
        socket: PathBuf,
        limits: Limits,
        events: Sender<Event>,
    ) -> anyhow::Result<Self> {
        let local = listener.local_addr()?;
        let limits = Limits {
            max_connections: accept::fit_to_fd_limit(limits.max_connections),
            ..limits
        };
        log::info!(
            "connections: at most {}, read_timeout {:.1} s, write_timeout {:.1} s",
            limits.max_connections,
            limits.read_timeout.as_secs_f64(),
            limits.write_timeout.as_secs_f64()
        );
        let front = Arc::new(Front {
            app: app.clone(),
            limits,
            socket,
            open: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            events: events.clone(),
            buffered: AtomicUsize::new(0),
        });
        let shared = front.clone();
        let acceptor = thread::Builder::new()
            .name("http-accept".into())
            .spawn(move || accept::run(&shared, &listener, &events))?;
        Ok(Self {
            front,
            local,
            acceptor,
        })
    }

    /// Stops accepting connections and taking new requests: idle
    /// connections close, and a request that arrives from now on gets 503.
    pub fn stop_accepting(&self) {
        self.front.closing.store(true, Ordering::SeqCst);
        // Wakes the acceptor from `accept` so that it sees the flag.
        let _ = TcpStream::connect_timeout(&wake_address(self.local), Duration::from_secs(1));
    }

    /// Waits until every request passed to the library has been answered,
    /// or until `deadline`; true when none is left.
    pub fn wait_for_answers(&self, deadline: Instant) -> bool {
        while self.front.busy.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// True once the acceptor thread has returned.
    pub fn stopped(&self) -> bool {
        self.acceptor.is_finished()
    }
}

/// The address a connection to `local` reaches: the loopback address of
/// the same family when it is the unspecified address.
fn wake_address(local: SocketAddr) -> SocketAddr {
    let mut address = local;
    if address.ip().is_unspecified() {
        address.set_ip(match local {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    address
}

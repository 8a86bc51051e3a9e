//! A client connection with a read buffer, read with a deadline and
//! written with a deadline.
//!
//! Each read sets the socket's receive timeout to the time left, so a
//! client that sends one byte at a time is cut at the deadline just like
//! one that sends nothing. While no byte of the next request has arrived,
//! reads wait at most [`IDLE_POLL`] at a time, so that an idle keep-alive
//! connection notices the drain at shutdown.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Longest single wait of an idle connection for its next request.
pub const IDLE_POLL: Duration = Duration::from_millis(200);

/// Bytes asked of the socket by one read.
const READ_CHUNK: usize = 16 * 1024;

/// Bytes given to the socket by one write, so that the deadline is
/// checked between them.
const WRITE_CHUNK: usize = 64 * 1024;

/// Why a read stopped short.
#[derive(Debug)]
pub enum ReadStop {
    /// The deadline passed.
    TimedOut,
    /// The client closed its side.
    Closed,
    /// The server began its drain while the connection was idle.
    Draining,
    /// Another socket error.
    Failed(io::Error),
}

/// Why a write stopped short.
#[derive(Debug)]
pub enum WriteStop {
    /// The deadline passed before the client took every byte.
    TimedOut,
    /// Another socket error, such as a reset by the client.
    Failed(io::Error),
}

/// A client connection and the bytes read from it but not yet used.
pub struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
}

impl Conn {
    /// Wraps an accepted stream.
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            pending: Vec::new(),
        }
    }

    /// The stream, to shut it down.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Bytes read but not yet taken.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// Removes and returns the first `count` pending bytes.
    pub fn take(&mut self, count: usize) -> Vec<u8> {
        let rest = self.pending.split_off(count);
        std::mem::replace(&mut self.pending, rest)
    }

    /// Drops the first `count` pending bytes.
    pub fn consume(&mut self, count: usize) {
        self.pending.drain(..count);
    }

    /// Reads more bytes into the pending buffer before `deadline`.
    ///
    /// When `draining` is given and nothing is pending, the wait stops with
    /// [`ReadStop::Draining`] once it is set.
    ///
    /// # Errors
    /// A [`ReadStop`] when no byte arrived.
    pub fn fill(
        &mut self,
        deadline: Instant,
        draining: Option<&AtomicBool>,
    ) -> Result<(), ReadStop> {
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReadStop::TimedOut);
            }
            let idle = self.pending.is_empty() && draining.is_some();
            let wait = if idle { left.min(IDLE_POLL) } else { left };
            self.stream
                .set_read_timeout(Some(wait))
                .map_err(ReadStop::Failed)?;
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ReadStop::Closed),
                Ok(count) => {
                    self.pending.extend_from_slice(&chunk[..count]);
                    return Ok(());
                }
                Err(error) if is_timeout(&error) || error.kind() == ErrorKind::Interrupted => {
                    if idle && draining.is_some_and(|flag| flag.load(Ordering::SeqCst)) {
                        return Err(ReadStop::Draining);
                    }
                }
                Err(error) => return Err(ReadStop::Failed(error)),
            }
        }
    }

    /// Writes every byte of `bytes` before `deadline`.
    ///
    /// # Errors
    /// A [`WriteStop`] when the client did not take them all in time.
    pub fn write_all_by(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), WriteStop> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(WriteStop::TimedOut);
            }
            self.stream
                .set_write_timeout(Some(left))
                .map_err(WriteStop::Failed)?;
            let end = rest.len().min(WRITE_CHUNK);
            match self.stream.write(&rest[..end]) {
                Ok(0) => return Err(WriteStop::Failed(ErrorKind::WriteZero.into())),
                Ok(count) => rest = &rest[count..],
                Err(error) if is_timeout(&error) || error.kind() == ErrorKind::Interrupted => {}
                Err(error) => return Err(WriteStop::Failed(error)),
            }
        }
        Ok(())
    }
}

/// True for the errors a socket timeout raises.
fn is_timeout(error: &io::Error) -> bool {
    matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

//! Reading a request body, delimited by `Content-Length` or chunked,
//! through a size cap and before a deadline.

use std::time::Instant;

use super::conn::{Conn, ReadStop};
use super::head::{Framing, Rejection};
use crate::routes::BodyLimit;

/// Maximum bytes of one chunk-size line, extensions included.
const MAX_CHUNK_LINE: usize = 1024;

/// Maximum bytes of the trailer section after the last chunk.
const MAX_TRAILER_BYTES: usize = 8 * 1024;

/// Why a body was not read.
#[derive(Debug)]
pub enum BodyStop {
    /// The body is too large or malformed.
    Refused(Rejection),
    /// The connection failed or ran out of time.
    Read(ReadStop),
}

impl From<ReadStop> for BodyStop {
    fn from(stop: ReadStop) -> Self {
        BodyStop::Read(stop)
    }
}

/// The 413 rejection of a body above `limit`; `size` describes its size.
pub fn too_large(size: &str, limit: BodyLimit) -> Rejection {
    let BodyLimit { bytes, advice } = limit;
    Rejection::new(
        413,
        "body_too_large",
        format!("request body of {size} bytes exceeds the limit of {bytes} bytes for this path: {advice}"),
    )
}

/// Reads the whole body as `framing` says, rejecting more than `limit`.
///
/// A `Content-Length` body must already have been checked against `cap`.
///
/// # Errors
/// [`BodyStop::Refused`] for a chunked body above `cap` or malformed
/// chunks; [`BodyStop::Read`] when the client stops or is too slow.
pub fn read(
    conn: &mut Conn,
    framing: Framing,
    limit: BodyLimit,
    deadline: Instant,
) -> Result<Vec<u8>, BodyStop> {
    let cap = limit.bytes;
    match framing {
        Framing::Empty => Ok(Vec::new()),
        Framing::Length(length) => {
            let length = usize::try_from(length)
                .ok()
                .filter(|length| *length <= cap)
                .ok_or_else(|| BodyStop::Refused(too_large(&length.to_string(), limit)))?;
            read_exact(conn, length, deadline)
        }
        Framing::Chunked => read_chunked(conn, limit, deadline),
    }
}

fn read_exact(conn: &mut Conn, length: usize, deadline: Instant) -> Result<Vec<u8>, BodyStop> {
    while conn.pending().len() < length {
        conn.fill(deadline, None)?;
    }
    Ok(conn.take(length))
}

fn read_chunked(conn: &mut Conn, limit: BodyLimit, deadline: Instant) -> Result<Vec<u8>, BodyStop> {
    let cap = limit.bytes;
    let mut body = Vec::new();
    loop {
        let line = read_line(conn, MAX_CHUNK_LINE, deadline)?;
        let size = chunk_size(&line)?;
        if size == 0 {
            skip_trailers(conn, deadline)?;
            return Ok(body);
        }
        if size > cap - body.len() {
            return Err(BodyStop::Refused(too_large(
                &format!("more than {cap}"),
                limit,
            )));
        }
        let data = read_exact(conn, size + 2, deadline)?;
        if !data.ends_with(b"\r\n") {
            return Err(malformed("a chunk is not followed by CRLF"));
        }
        body.extend_from_slice(&data[..size]);
    }
}

/// Reads one line up to its LF, without the line end.
fn read_line(conn: &mut Conn, max: usize, deadline: Instant) -> Result<Vec<u8>, BodyStop> {
    loop {
        if let Some(end) = conn.pending().iter().position(|byte| *byte == b'\n') {
            let mut line = conn.take(end + 1);
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(line);
        }
        if conn.pending().len() > max {
            return Err(malformed("a chunk-size line is too long"));
        }
        conn.fill(deadline, None)?;
    }
}

fn chunk_size(line: &[u8]) -> Result<usize, BodyStop> {
    let text = std::str::from_utf8(line).unwrap_or_default();
    let digits = text.split(';').next().unwrap_or_default().trim();
    if digits.is_empty() || digits.len() > 15 {
        return Err(malformed("invalid chunk size"));
    }
    usize::from_str_radix(digits, 16).map_err(|_| malformed("invalid chunk size"))
}

fn skip_trailers(conn: &mut Conn, deadline: Instant) -> Result<(), BodyStop> {
    let mut total = 0;
    loop {
        let line = read_line(conn, MAX_TRAILER_BYTES, deadline)?;
        if line.is_empty() {
            return Ok(());
        }
        total += line.len();
        if total > MAX_TRAILER_BYTES {
            return Err(malformed("the trailer section is too long"));
        }
    }
}

fn malformed(what: &str) -> BodyStop {
    BodyStop::Refused(Rejection::new(
        400,
        "bad_request",
        format!("malformed chunked body: {what}; send a valid chunked body or Content-Length"),
    ))
}

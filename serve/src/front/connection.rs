//! One client connection: read each request with a deadline and within
//! the limits, reject what breaks them, and relay the rest to the HTTP
//! library, until the connection closes.

use std::io::ErrorKind;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::body::{self, BodyStop};
use super::conn::{Conn, ReadStop, WriteStop};
use super::head::{self, Framing, Head, Rejection, MAX_HEAD_BYTES};
use super::relay;
use super::{BodyReservation, Front};
use crate::routes::BodyLimit;

/// What happens to the connection after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    KeepOpen,
    Close,
}

/// Longest wait, after a rejection, for the rest of what the client sends,
/// so that closing the socket does not reset the connection before the
/// client has read the rejection.
const LINGER_TIME: Duration = Duration::from_secs(2);

/// Maximum bytes read and discarded during that wait.
const LINGER_BYTES: usize = 1024 * 1024;

/// The interim response to `Expect: 100-continue`.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Serves every request of one connection.
pub fn serve(front: &Front, stream: TcpStream, peer: SocketAddr) {
    // Responses are written whole, so Nagle's algorithm only adds delay.
    let _ = stream.set_nodelay(true);
    let mut conn = Conn::new(stream);
    while serve_one(front, &mut conn, peer) == Next::KeepOpen {}
}

fn serve_one(front: &Front, conn: &mut Conn, peer: SocketAddr) -> Next {
    let deadline = Instant::now() + front.limits.read_timeout;
    let head = match read_head(front, conn, deadline) {
        Ok(head) => head,
        Err(BodyStop::Refused(rejection)) => return reject(front, conn, peer, &rejection),
        Err(BodyStop::Read(stop)) => return stopped_reading(front, conn, peer, &stop, true),
    };
    let limit = crate::routes::body_limit(head.path());
    let _reservation = match admit_body(front, &head, limit) {
        Ok(reservation) => reservation,
        Err(rejection) => return reject(front, conn, peer, &rejection),
    };
    if head.expects_continue && head.framing != Framing::Empty && conn.pending().is_empty() {
        let write_deadline = Instant::now() + front.limits.write_timeout;
        if conn.write_all_by(CONTINUE, write_deadline).is_err() {
            return Next::Close;
        }
    }
    let body = match body::read(conn, head.framing, limit, deadline) {
        Ok(body) => body,
        Err(BodyStop::Refused(rejection)) => return reject(front, conn, peer, &rejection),
        Err(BodyStop::Read(stop)) => return stopped_reading(front, conn, peer, &stop, false),
    };
    relay_request(front, conn, peer, &head, &body)
}

/// Checks the declared body size against the path's limit and reserves
/// it in the body memory budget.
fn admit_body<'a>(
    front: &'a Front,
    head: &Head,
    limit: BodyLimit,
) -> Result<BodyReservation<'a>, Rejection> {
    let reserved = match head.framing {
        Framing::Empty => 0,
        Framing::Chunked => limit.bytes,
        Framing::Length(length) => usize::try_from(length)
            .ok()
            .filter(|length| *length <= limit.bytes)
            .ok_or_else(|| body::too_large(&length.to_string(), limit))?,
    };
    front.reserve_body(reserved).ok_or_else(|| {
        Rejection::new(
            503,
            "body_memory",
            format!(
                "the server is receiving {} MiB of request bodies already, its limit: retry later",
                super::MAX_BUFFERED_BODY_BYTES >> 20
            ),
        )
    })
}

/// Reads and checks the next request head.
fn read_head(front: &Front, conn: &mut Conn, deadline: Instant) -> Result<Head, BodyStop> {
    loop {
        if let Some(length) = head::head_length(conn.pending()) {
            if length > MAX_HEAD_BYTES {
                return Err(BodyStop::Refused(head::head_too_large()));
            }
            let head = head::parse(&conn.pending()[..length]).map_err(BodyStop::Refused)?;
            conn.consume(length);
            return Ok(head);
        }
        if conn.pending().len() > MAX_HEAD_BYTES {
            return Err(BodyStop::Refused(head::head_too_large()));
        }
        conn.fill(deadline, Some(&front.closing))?;
    }
}

/// Passes a complete request to the library and writes its response.
fn relay_request(
    front: &Front,
    conn: &mut Conn,
    peer: SocketAddr,
    head: &Head,
    body: &[u8],
) -> Next {
    // Counted before the drain flag is read, so that the drain, which sets
    // the flag and then waits for this count, never misses this request.
    let _busy = front.start_request();
    if front.closing.load(Ordering::SeqCst) {
        let rejection = Rejection::new(
            503,
            "shutting_down",
            "the server is shutting down: retry on another instance".into(),
        );
        return reject(front, conn, peer, &rejection);
    }
    let keep_alive = head.keep_alive && !front.app.is_draining();
    let raw = match relay::forward(&front.socket, head, body) {
        Ok(raw) => raw,
        Err(error) => {
            if matches!(
                error.kind(),
                ErrorKind::ConnectionRefused | ErrorKind::NotFound
            ) {
                front.library_gone(&error);
            }
            // Such as EMFILE: a shortage the client can wait out.
            let rejection = Rejection::new(
                503,
                "internal_socket",
                format!("the server could not pass the request on ({error}): retry later"),
            );
            return reject(front, conn, peer, &rejection);
        }
    };
    let Some(response) = relay::rewrite(&raw, keep_alive, head.minor_version) else {
        log::error!(
            "{} {} from {peer}: the HTTP library sent an incomplete response",
            head.method,
            head.target
        );
        let rejection = Rejection::new(
            500,
            "internal_error",
            "internal error while relaying the request: see the server log".into(),
        );
        return reject(front, conn, peer, &rejection);
    };
    let deadline = Instant::now() + front.limits.write_timeout;
    match conn.write_all_by(&response, deadline) {
        Ok(()) if keep_alive => Next::KeepOpen,
        Ok(()) => Next::Close,
        Err(WriteStop::TimedOut) => {
            front.app.metrics.count_rejection("write_timeout");
            log::info!(
                "{} {} from {peer}: closed the connection after write_timeout ({:.1} s): the \
                 client did not read the response",
                head.method,
                head.target,
                front.limits.write_timeout.as_secs_f64()
            );
            Next::Close
        }
        Err(WriteStop::Failed(error)) => {
            log::debug!("connection from {peer}: write failed: {error}");
            Next::Close
        }
    }
}

/// Handles a read that ended early: a 408 for a request cut by the
/// deadline, silence for a client that left or an idle connection.
fn stopped_reading(
    front: &Front,
    conn: &mut Conn,
    peer: SocketAddr,
    stop: &ReadStop,
    in_head: bool,
) -> Next {
    let started = !in_head || !conn.pending().is_empty();
    match stop {
        ReadStop::TimedOut if started => {
            let rejection = Rejection::new(
                408,
                "read_timeout",
                format!(
                    "the request was not received within read_timeout ({:.1} s): send it \
                     faster",
                    front.limits.read_timeout.as_secs_f64()
                ),
            );
            reject(front, conn, peer, &rejection)
        }
        ReadStop::TimedOut => {
            front.app.metrics.count_rejection("idle_timeout");
            Next::Close
        }
        ReadStop::Failed(error) => {
            log::debug!("connection from {peer}: read failed: {error}");
            Next::Close
        }
        ReadStop::Closed | ReadStop::Draining => Next::Close,
    }
}

/// Answers with the rejection's status and a JSON error, then closes the
/// connection gently.
fn reject(front: &Front, conn: &mut Conn, peer: SocketAddr, rejection: &Rejection) -> Next {
    front.app.metrics.count_rejection(rejection.reason);
    log::info!(
        "connection from {peer}: {} ({}): {}",
        rejection.status,
        rejection.reason,
        rejection.message
    );
    let response = rejection_response(rejection);
    let deadline = Instant::now() + front.limits.write_timeout;
    if conn.write_all_by(&response, deadline).is_ok() {
        linger(conn);
    }
    Next::Close
}

/// Builds the complete response of a rejection, `Connection: close` included.
pub fn rejection_response(rejection: &Rejection) -> Vec<u8> {
    let body = serde_json::json!({ "error": rejection.message }).to_string();
    let reason = tiny_http::StatusCode(rejection.status).default_reason_phrase();
    format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        rejection.status,
        body.len()
    )
    .into_bytes()
}

/// Closes the sending side, then reads and drops what the client still
/// sends for a short while, so that its unread request bytes do not turn
/// the close into a reset that could discard the response on its side.
fn linger(conn: &mut Conn) {
    let _ = conn.stream().shutdown(Shutdown::Write);
    let deadline = Instant::now() + LINGER_TIME;
    let mut discarded = 0;
    while discarded < LINGER_BYTES {
        discarded += conn.pending().len();
        conn.consume(conn.pending().len());
        if conn.fill(deadline, None).is_err() {
            return;
        }
    }
}

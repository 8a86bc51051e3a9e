//! JSON replies, capped body reads, and sending a reply without tripping
//! over tiny_http 0.12's handling of unread request bodies.
//!
//! When a `Request` is dropped, tiny_http 0.12 drains whatever is left of a
//! declared `Content-Length` body (`EqualReader::drop` in
//! `src/util/equal_reader.rs`). It first allocates one zeroed buffer of the
//! whole remaining declared size, then blocks reading the socket until the
//! client sends that many bytes or closes. Measured on Linux with 24 GiB of
//! RAM and no swap: a declared 1 GB or 20 GB only reserves address space, a
//! declared 10^12 bytes aborts the process ("memory allocation of
//! 1000000000000 bytes failed"), and a value above `isize::MAX` panics with
//! "capacity overflow". `respond` drops the request itself, so the drain
//! runs right after the reply is sent. [`send`] therefore picks one of three
//! ways to finish a request by how many declared bytes are still unread.

use std::io::{self, Read, Write};

use serde::Serialize;
use tiny_http::{Header, Request, Response};

/// Largest body tiny_http 0.12 reads into memory before handing over the
/// request; dropping such a request never drains the socket.
const TINY_HTTP_BUFFERED_BODY_BYTES: usize = 1024;

/// Largest unread remainder left for tiny_http to drain on drop: small
/// enough that its one-shot buffer costs nothing.
const MAX_DRAINED_BYTES: usize = 1024 * 1024;

/// A reply: status, body, its media type, and extra headers such as
/// `Allow` for 405.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// The body: serialized JSON unless `content_type` says otherwise.
    pub body: String,
    /// Value of the `Content-Type` header.
    pub content_type: &'static str,
    /// Value of the `Allow` header.
    pub allow: Option<&'static str>,
    /// Further headers, such as `X-Duration-Seconds`.
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    /// Builds a reply with `value` serialized as its body.
    pub fn json<T: Serialize>(status: u16, value: &T) -> Self {
        match serde_json::to_string(value) {
            Ok(body) => Self::with_body(status, body, JSON),
            Err(error) => Self::error(500, &format!("failed to serialize the reply: {error}")),
        }
    }

    /// Builds an `{"error": message}` reply.
    pub fn error(status: u16, message: &str) -> Self {
        let body = serde_json::json!({ "error": message }).to_string();
        Self::with_body(status, body, JSON)
    }

    /// Builds a plain-text reply.
    pub fn text(status: u16, body: String) -> Self {
        Self::with_body(status, body, "text/plain; charset=utf-8")
    }

    /// Builds a reply with `body` of media type `content_type`.
    pub fn with_body(status: u16, body: String, content_type: &'static str) -> Self {
        Self {
            status,
            body,
            content_type,
            allow: None,
            headers: Vec::new(),
        }
    }

    /// Adds a header to the reply.
    pub fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Builds a 405 reply that names the allowed methods.
    pub fn method_not_allowed(method: &str, path: &str, allow: &'static str) -> Self {
        let message = format!("method {method} is not allowed on {path}: use {allow}");
        Self {
            allow: Some(allow),
            ..Self::error(405, &message)
        }
    }

    fn into_response(self) -> Response<io::Cursor<Vec<u8>>> {
        let mut response =
            Response::from_data(self.body.into_bytes()).with_status_code(self.status);
        response.add_header(header("Content-Type", self.content_type));
        if let Some(allow) = self.allow {
            response.add_header(header("Allow", allow));
        }
        for (name, value) in &self.headers {
            match Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                Ok(header) => response.add_header(header),
                Err(()) => log::warn!("left out the invalid {name} header value {value:?}"),
            }
        }
        response
    }
}

/// Media type of JSON replies.
const JSON: &str = "application/json";

fn header(field: &'static str, value: &'static str) -> Header {
    // Both strings are ASCII constants of this crate, which `from_bytes` always accepts.
    Header::from_bytes(field.as_bytes(), value.as_bytes())
        .unwrap_or_else(|()| unreachable!("invalid constant header {field}"))
}

/// Reason a request body was not read.
#[derive(Debug)]
pub enum BodyError {
    /// Declared or actual size above the cap: 413.
    TooLarge(String),
    /// A malformed body or `Content-Length`: 400.
    Invalid(String),
}

impl BodyError {
    /// Converts the error to its reply.
    pub fn into_reply(self) -> Reply {
        match self {
            BodyError::TooLarge(message) => Reply::error(413, &message),
            BodyError::Invalid(message) => Reply::error(400, &message),
        }
    }
}

/// A request being handled, with the count of body bytes read from it.
pub struct Exchange {
    request: Request,
    body_bytes_read: usize,
}

impl Exchange {
    /// Wraps a request received from tiny_http.
    pub fn new(request: Request) -> Self {
        Self {
            request,
            body_bytes_read: 0,
        }
    }

    /// The request, for its method, URL and headers.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Reads the whole body if it is at most `cap` bytes.
    ///
    /// A declared `Content-Length` above `cap` is rejected before any byte
    /// is read. A body without one (chunked) is read through a cap of
    /// `cap + 1` bytes, so at most that much is ever held.
    ///
    /// # Errors
    /// [`BodyError::TooLarge`] above `cap`, [`BodyError::Invalid`] for an
    /// unparsable `Content-Length` or a failed read.
    pub fn read_body(&mut self, cap: usize) -> Result<Vec<u8>, BodyError> {
        let declared = self.request.body_length();
        if let Some(length) = declared {
            if length > cap {
                return Err(too_large(&length.to_string(), cap));
            }
        } else if let Some(value) = self.unparsed_content_length() {
            return Err(BodyError::Invalid(format!(
                "invalid Content-Length header '{value}': expected the body size in bytes"
            )));
        }

        let mut body = Vec::with_capacity(declared.unwrap_or(0));
        let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
        let result = self.request.as_reader().take(limit).read_to_end(&mut body);
        self.body_bytes_read += body.len();
        if let Err(error) = result {
            return Err(BodyError::Invalid(format!(
                "failed to read the request body: {error}"
            )));
        }
        if body.len() > cap {
            return Err(too_large(&format!("more than {cap}"), cap));
        }
        Ok(body)
    }

    /// Returns a `Content-Length` value that tiny_http could not parse and so treated as no body.
    fn unparsed_content_length(&self) -> Option<String> {
        let headers = self.request.headers();
        if headers.iter().any(|h| h.field.equiv("Transfer-Encoding")) {
            return None;
        }
        headers
            .iter()
            .find(|h| h.field.equiv("Content-Length"))
            .map(|h| h.value.to_string())
    }

    fn disposal(&self) -> Disposal {
        let Some(declared) = self.request.body_length() else {
            // No body, or a chunked one: tiny_http does not drain those on drop.
            return Disposal::Drop;
        };
        let expects_continue = self
            .request
            .headers()
            .iter()
            .any(|h| h.field.equiv("Expect"));
        if declared <= TINY_HTTP_BUFFERED_BODY_BYTES && !expects_continue {
            return Disposal::Drop;
        }
        match declared.saturating_sub(self.body_bytes_read) {
            0 => Disposal::Drop,
            unread if unread <= MAX_DRAINED_BYTES => Disposal::DrainInBackground,
            _ => Disposal::Abandon,
        }
    }
}

fn too_large(size: &str, cap: usize) -> BodyError {
    BodyError::TooLarge(format!(
        "request body of {size} bytes exceeds the limit of {cap} bytes: send a smaller body"
    ))
}

/// How to finish a request once its reply is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposal {
    /// Nothing left to drain: respond and drop on this thread.
    Drop,
    /// A small unread remainder: respond and let tiny_http drain it on a
    /// helper thread, so that a client that never sends the rest blocks
    /// that thread and not a worker.
    DrainInBackground,
    /// An unread remainder too large for tiny_http's drain buffer: write
    /// the reply over the raw connection and never drop the request.
    Abandon,
}

/// Sends `reply` and disposes of the request; `id` names it in log lines.
pub fn send(exchange: Exchange, reply: Reply, id: &str) {
    let disposal = exchange.disposal();
    let request = exchange.request;
    match disposal {
        Disposal::Drop => respond(request, reply, id),
        Disposal::DrainInBackground => {
            let owned_id = id.to_owned();
            let spawned = std::thread::Builder::new()
                .name(format!("drain-{id}"))
                .spawn(move || respond(request, reply, &owned_id));
            if let Err(error) = spawned {
                log::error!("request {id}: failed to start a drain thread: {error}");
            }
        }
        Disposal::Abandon => abandon(request, &reply, id),
    }
}

fn respond(request: Request, reply: Reply, id: &str) {
    if let Err(error) = request.respond(reply.into_response()) {
        log::warn!("request {id}: failed to send the response: {error}");
    }
}

/// Writes `reply` on the connection and leaks the request's reader, so
/// that tiny_http never allocates its drain buffer.
///
/// `Request::upgrade` is the only tiny_http 0.12 call that hands the body
/// reader back instead of dropping it. It prints a header block with
/// `Connection: upgrade` and no body framing, so it is given an interim
/// `100 Continue`, which clients skip, and the real reply follows as raw
/// bytes with `Content-Length` and `Connection: close`.
///
/// NOTE: each abandoned connection keeps one tiny_http connection thread
/// blocked and two socket descriptors open until the process exits, because
/// the leaked reader is what that thread waits for. Only a tiny_http whose
/// drain reads through a fixed buffer would remove this cost.
fn abandon(request: Request, reply: &Reply, id: &str) {
    let declared = request.body_length().unwrap_or(0);
    let mut stream = request.upgrade("close", Response::empty(100));
    let allow = reply
        .allow
        .map(|methods| format!("Allow: {methods}\r\n"))
        .unwrap_or_default();
    let extra: String = reply
        .headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{allow}{extra}Connection: close\r\n\r\n",
        reply.status,
        tiny_http::StatusCode(reply.status).default_reason_phrase(),
        reply.content_type,
        reply.body.len()
    );
    let written = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(reply.body.as_bytes()))
        .and_then(|()| stream.flush());
    if let Err(error) = written {
        log::warn!("request {id}: failed to send the response: {error}");
    }
    log::warn!(
        "request {id}: abandoned the connection to skip draining {declared} declared body bytes"
    );
    std::mem::forget(stream);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiny_http::TestRequest;

    fn exchange(body: &'static str, content_length: Option<&str>) -> Exchange {
        let mut test = TestRequest::new()
            .with_method(tiny_http::Method::Post)
            .with_body(body);
        if let Some(value) = content_length {
            let header = Header::from_bytes("Content-Length".as_bytes(), value.as_bytes()).unwrap();
            test = test.with_header(header);
        }
        Exchange::new(test.into())
    }

    #[test]
    fn disposal_of_buffered_body() {
        let exchange = exchange("abc", None);
        assert_eq!(exchange.disposal(), Disposal::Drop);
    }

    #[test]
    fn disposal_of_read_body() {
        let body = "x".repeat(3072).leak();
        let mut exchange = exchange(body, None);
        assert_eq!(exchange.disposal(), Disposal::DrainInBackground);
        assert_eq!(exchange.read_body(4096).unwrap().len(), 3072);
        assert_eq!(exchange.disposal(), Disposal::Drop);
    }

    #[test]
    fn disposal_of_huge_declared_body() {
        let exchange = exchange("abc", Some("1000000000000"));
        assert_eq!(exchange.disposal(), Disposal::Abandon);
        // Dropping would make tiny_http allocate the declared size.
        std::mem::forget(exchange);
    }

    #[test]
    fn read_body_rejects_declared_size() {
        let mut exchange = exchange("abc", Some("5000"));
        let error = exchange.read_body(3072).unwrap_err();
        let reply = error.into_reply();
        assert_eq!(reply.status, 413);
        assert!(
            reply.body.contains("5000 bytes exceeds the limit of 3072"),
            "{}",
            reply.body
        );
        assert_eq!(exchange.body_bytes_read, 0);
        std::mem::forget(exchange);
    }

    #[test]
    fn read_body_rejects_unparsed_length() {
        let mut exchange = exchange("abc", Some("12abc"));
        let reply = exchange.read_body(3072).unwrap_err().into_reply();
        assert_eq!(reply.status, 400);
        assert!(
            reply.body.contains("invalid Content-Length header '12abc'"),
            "{}",
            reply.body
        );
    }

    #[test]
    fn error_reply_is_json() {
        let reply = Reply::error(404, "no route for /x");
        assert_eq!(reply.status, 404);
        assert_eq!(reply.body, r#"{"error":"no route for /x"}"#);
        let reply = Reply::method_not_allowed("PUT", "/predict", "POST");
        assert_eq!(reply.allow, Some("POST"));
        assert!(reply
            .body
            .contains("method PUT is not allowed on /predict: use POST"));
    }
}

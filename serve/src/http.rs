//! JSON replies, capped body reads, and sending a reply.
//!
//! The HTTP library only ever receives requests from the front end
//! ([`crate::front`]), complete and within the body limit of their path.
//! When a handler answers without reading the body, [`send`] reads the
//! rest through a fixed buffer before replying: tiny_http 0.12 would
//! otherwise drain it on drop into one buffer of the whole remaining
//! declared size.

use std::io::{self, Read};

use serde::Serialize;
use tiny_http::{Header, Request, Response};

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

/// A request being handled.
pub struct Exchange {
    request: Request,
}

impl Exchange {
    /// Wraps a request received from tiny_http.
    pub fn new(request: Request) -> Self {
        Self { request }
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
}

fn too_large(size: &str, cap: usize) -> BodyError {
    BodyError::TooLarge(format!(
        "request body of {size} bytes exceeds the limit of {cap} bytes: send a smaller body"
    ))
}

/// Sends `reply` once the rest of the request body is read; `id` names
/// the request in log lines.
pub fn send(exchange: Exchange, reply: Reply, id: &str) {
    let mut request = exchange.request;
    // The front end has already received the whole body, so this ends at
    // once, and the buffer of `io::copy` bounds what it holds.
    if let Err(error) = io::copy(&mut request.as_reader(), &mut io::sink()) {
        log::warn!("request {id}: failed to read the rest of the body: {error}");
    }
    if let Err(error) = request.respond(reply.into_response()) {
        log::warn!("request {id}: failed to send the response: {error}");
    }
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

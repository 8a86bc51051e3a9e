//! Passing a checked, fully read request to the HTTP library on its
//! internal socket, and turning its answer into the client's response.
//!
//! Each request gets its own internal connection and is sent as HTTP/1.0
//! without keep-alive, so the library answers with a `Content-Length` body
//! and closes the connection after it: the response is everything read up
//! to the end of the stream.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::head::Head;

/// Header fields that describe one connection and are not passed on.
const HOP_BY_HOP: [&str; 9] = [
    "Connection",
    "Keep-Alive",
    "Proxy-Connection",
    "Transfer-Encoding",
    "Content-Length",
    "Expect",
    "TE",
    "Trailer",
    "Upgrade",
];

/// Sends the request to the library listening on `socket` and returns its
/// raw response.
///
/// # Errors
/// When the internal socket cannot be reached or fails.
pub fn forward(socket: &Path, head: &Head, body: &[u8]) -> io::Result<Vec<u8>> {
    let mut stream = UnixStream::connect(socket)?;
    let mut request = Vec::with_capacity(512 + body.len());
    write!(request, "{} {} HTTP/1.0\r\n", head.method, head.target)?;
    for (name, value) in &head.fields {
        if !HOP_BY_HOP.iter().any(|hop| name.eq_ignore_ascii_case(hop)) {
            write!(request, "{name}: {value}\r\n")?;
        }
    }
    write!(request, "Content-Length: {}\r\n\r\n", body.len())?;
    request.extend_from_slice(body);
    stream.write_all(&request)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    Ok(response)
}

/// Rewrites the library's HTTP/1.0 response for the client: an HTTP/1.1
/// status line, and the connection's own `Connection` field.
///
/// Returns `None` when `raw` is not a complete response head.
pub fn rewrite(raw: &[u8], keep_alive: bool, client_minor_version: u8) -> Option<Vec<u8>> {
    let head_end = super::head::head_length(raw)?;
    let head = std::str::from_utf8(&raw[..head_end]).ok()?;
    let mut lines = head
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    let status = lines.next()?.strip_prefix("HTTP/1.")?.get(1..)?;
    let mut out = Vec::with_capacity(raw.len() + 32);
    out.extend_from_slice(b"HTTP/1.1");
    out.extend_from_slice(status.as_bytes());
    out.extend_from_slice(b"\r\n");
    for line in lines.take_while(|line| !line.is_empty()) {
        let name = line.split(':').next().unwrap_or_default().trim();
        if name.eq_ignore_ascii_case("Connection") || name.eq_ignore_ascii_case("Keep-Alive") {
            continue;
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(connection_field(keep_alive, client_minor_version));
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&raw[head_end..]);
    Some(out)
}

/// The `Connection` field that tells the client what happens next.
pub fn connection_field(keep_alive: bool, client_minor_version: u8) -> &'static [u8] {
    match (keep_alive, client_minor_version) {
        (false, _) => b"Connection: close\r\n",
        (true, 0) => b"Connection: keep-alive\r\n",
        (true, _) => b"",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_status_line_and_connection() {
        let raw =
            b"HTTP/1.0 200 OK\r\nServer: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi";
        let out = rewrite(raw, true, 1).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nServer: x\r\nContent-Length: 2\r\n\r\nhi"
        );
        let out = rewrite(raw, true, 0).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("\r\nConnection: keep-alive\r\n\r\nhi"));
        let out = rewrite(raw, false, 1).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("\r\nConnection: close\r\n\r\nhi"));
    }

    #[test]
    fn rejects_an_incomplete_response() {
        assert_eq!(rewrite(b"HTTP/1.0 200 OK\r\nA: b\r\n", true, 1), None);
        assert_eq!(rewrite(b"garbage\r\n\r\n", true, 1), None);
    }
}

//! The request handling that runs before the model, on requests that
//! tiny_http builds from fuzzed headers and bodies: its `Content-Length`,
//! `Transfer-Encoding` and `Expect` framing, the capped body read, the
//! `X-Timeout` and `Inference-Header-Content-Length` headers, the V2 route,
//! the body decoding chosen by `Content-Type`, and the disposal of unread
//! body bytes when the reply is sent.
//!
//! Input: a request path on the first line, then `Name: value` header lines,
//! an empty line and the body (as UTF-8, because tiny_http's test requests
//! take a `&str`).
#![no_main]

use std::time::Duration;

use cifaas_serve::decode::{decode_body, Limits};
use cifaas_serve::http::{send, BodyError, Exchange, Reply};
use cifaas_serve::v2::{parse_json_size, Route};
use cifaas_serve::watchdog::request_timeout;
use libfuzzer_sys::fuzz_target;
use tiny_http::{Header, Method, TestRequest};

/// Body cap of the fuzzed reads, small enough that the fuzzer reaches it.
const BODY_CAP: usize = 4096;

/// The server's `--exec-timeout`, which `X-Timeout` may only shorten.
const EXEC_TIMEOUT: Duration = Duration::from_secs(30);

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    let Some((head, body)) = text.split_once("\n\n") else {
        return;
    };
    let mut lines = head.lines();
    let path = lines.next().unwrap_or("/");
    let body = leak(body);
    let mut request = TestRequest::new()
        .with_method(Method::Post)
        .with_path(path)
        .with_body(body);
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let Ok(header) = Header::from_bytes(name.trim().as_bytes(), value.trim().as_bytes()) else {
            continue;
        };
        // tiny_http answers any other Expect value with 417 before building a
        // request, and its test requests unwrap that error instead.
        if header.field.equiv("Expect")
            && !header.value.as_str().eq_ignore_ascii_case("100-continue")
        {
            continue;
        }
        headers.push(header.clone());
        request = request.with_header(header);
    }
    let mut exchange = Exchange::new(request.into());
    check_headers(&headers, &exchange);
    let content_type = header_value(&headers, "Content-Type");
    let reply = match exchange.read_body(BODY_CAP) {
        Ok(bytes) => {
            assert!(
                bytes.len() <= BODY_CAP,
                "{} bytes read, cap {BODY_CAP}",
                bytes.len()
            );
            if let Some(length) = exchange.request().body_length() {
                assert_eq!(bytes.len(), length.min(body.len()), "declared {length}");
            }
            match decode_body(content_type.as_deref(), &bytes, &Limits::default()) {
                Ok(batch) => Reply::text(200, format!("{} images", batch.count)),
                Err(error) => Reply::error(error.status(), error.message()),
            }
        }
        Err(error) => {
            if let BodyError::TooLarge(_) = &error {
                let declared = exchange.request().body_length();
                assert!(declared.is_none_or(|length| length > BODY_CAP) || body.len() > BODY_CAP);
            }
            error.into_reply()
        }
    };
    send(exchange, reply, "fuzz");
});

/// Checks the headers that the server reads before routing.
fn check_headers(headers: &[Header], exchange: &Exchange) {
    let timeout = request_timeout(
        Some(EXEC_TIMEOUT),
        header_value(headers, "X-Timeout").as_deref(),
    );
    let timeout = timeout.expect("an exec timeout is set");
    assert!(
        !timeout.is_zero() && timeout <= EXEC_TIMEOUT,
        "timeout {timeout:?}"
    );
    if let Some(value) = header_value(headers, "Inference-Header-Content-Length") {
        if let Err(message) = parse_json_size(&value) {
            assert!(message.contains(value.as_str()), "{message}");
        }
    }
    let url = exchange.request().url();
    let path = url.split('?').next().unwrap_or_default();
    if let Some(route) = Route::parse(path) {
        assert!(
            path == "/v2" || path.starts_with("/v2/"),
            "{path} routed to {route:?}"
        );
    }
}

fn header_value(headers: &[Header], name: &'static str) -> Option<String> {
    headers
        .iter()
        .find(|header| header.field.equiv(name))
        .map(|header| header.value.to_string())
}

/// Gives the body the `'static` lifetime that tiny_http's test requests
/// take; `-detect_leaks=0` keeps LeakSanitizer from reporting it. Only the
/// first `BODY_CAP` + 64 bytes are kept, which is enough to exceed the cap
/// and bounds what a long run leaks.
fn leak(body: &str) -> &'static str {
    let mut end = body.len().min(BODY_CAP + 64);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    Box::leak(body[..end].to_owned().into_boxed_str())
}

//! The front end's request head parsing, which runs on every byte a client
//! sends before tiny_http receives the request: finding the end of the head,
//! the request line, the header fields and their caps, and the body framing
//! from `Content-Length`, `Transfer-Encoding` and `Expect`. Then the header
//! values that the server reads before routing: `X-Timeout`,
//! `Inference-Header-Content-Length` and the V2 route of the path.
//!
//! Input: the bytes a client sends on a connection.
#![no_main]

use std::time::Duration;

use cifaas_serve::front::head::{
    head_length, head_too_large, parse, Framing, Head, MAX_HEADER_FIELDS, MAX_HEAD_BYTES,
};
use cifaas_serve::v2::{parse_json_size, Route};
use cifaas_serve::watchdog::request_timeout;
use libfuzzer_sys::fuzz_target;

/// The server's `--exec-timeout`, which `X-Timeout` may only shorten.
const EXEC_TIMEOUT: Duration = Duration::from_secs(30);

fuzz_target!(|input: &[u8]| {
    let Some(length) = head_length(input) else {
        assert!(!has_blank_line(input), "a blank line was missed");
        assert_eq!(head_too_large().status, 431);
        return;
    };
    assert!(length <= input.len());
    assert_eq!(input[length - 1], b'\n');
    assert!(
        !has_blank_line(&input[..length - 1]),
        "not the first blank line"
    );
    if length > MAX_HEAD_BYTES {
        // The front end stops reading at MAX_HEAD_BYTES and sends 431.
        return;
    }
    match parse(&input[..length]) {
        Ok(head) => check_head(&head, &input[..length]),
        Err(rejection) => {
            assert!(
                [400, 417, 431, 501, 505].contains(&rejection.status),
                "status {}",
                rejection.status
            );
            assert!(!rejection.message.is_empty());
            assert!(!rejection.reason.is_empty());
        }
    }
});

/// True when a line of `bytes` (before its LF) is empty or a lone CR.
fn has_blank_line(bytes: &[u8]) -> bool {
    let mut line_start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        if byte == b'\n' {
            let line = &bytes[line_start..index];
            if line.is_empty() || line == b"\r" {
                return true;
            }
            line_start = index + 1;
        }
    }
    false
}

fn check_head(head: &Head, bytes: &[u8]) {
    assert!(bytes.is_ascii(), "a non-ASCII head was accepted");
    assert!(!head.method.is_empty(), "empty method");
    assert!(!head.target.is_empty(), "empty target");
    assert!(head.minor_version <= 1);
    assert!(head.fields.len() <= MAX_HEADER_FIELDS);
    assert!(!head.expects_continue || head.minor_version == 1);
    for (name, value) in &head.fields {
        assert!(
            !name.is_empty() && !name.contains(':'),
            "field name {name:?}"
        );
        assert!(!value
            .bytes()
            .any(|byte| byte.is_ascii_control() && byte != b'\t'));
    }
    let has = |name: &str| {
        head.fields
            .iter()
            .any(|(field, _)| field.eq_ignore_ascii_case(name))
    };
    match head.framing {
        Framing::Empty => assert!(!has("Content-Length")),
        Framing::Length(length) => {
            assert!(!has("Transfer-Encoding") || transfer_codings_empty(head));
            let value = head
                .field("Content-Length")
                .expect("a Content-Length field");
            let first = value.split(',').next().unwrap_or_default().trim();
            assert!(first
                .parse::<u64>()
                .map_or(length == u64::MAX, |parsed| parsed == length));
        }
        Framing::Chunked => {
            assert!(!has("Content-Length"), "both Content-Length and chunked");
            assert_eq!(head.minor_version, 1);
        }
    }
    check_fields(head);
}

/// True when every Transfer-Encoding value lists no coding.
fn transfer_codings_empty(head: &Head) -> bool {
    head.fields
        .iter()
        .filter(|(field, _)| field.eq_ignore_ascii_case("Transfer-Encoding"))
        .all(|(_, value)| value.split(',').all(|coding| coding.trim().is_empty()))
}

/// Checks the fields that the server reads before routing.
fn check_fields(head: &Head) {
    let timeout = request_timeout(Some(EXEC_TIMEOUT), head.field("X-Timeout"))
        .expect("an exec timeout is set");
    assert!(
        !timeout.is_zero() && timeout <= EXEC_TIMEOUT,
        "timeout {timeout:?}"
    );
    if let Some(value) = head.field("Inference-Header-Content-Length") {
        if let Err(message) = parse_json_size(value) {
            assert!(message.contains(value), "{message}");
        }
    }
    let path = head.path();
    if let Some(route) = Route::parse(path) {
        assert!(
            path == "/v2" || path.starts_with("/v2/"),
            "{path} routed to {route:?}"
        );
    }
}

//! Parsing and checking one request head (request line and header fields)
//! before any of the body is read.

/// Maximum bytes of a request line and its header fields together, the blank
/// line included; a larger head gets 431.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;

/// Maximum header fields in one request; more get 431.
pub const MAX_HEADER_FIELDS: usize = 100;

/// A request rejected before its body is read, with its status and the
/// reason sent to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// HTTP status code: 400, 413, 417, 431, 501 or 505.
    pub status: u16,
    /// The label of the `cifaas_http_rejections_total` series.
    pub reason: &'static str,
    /// What was wrong and what to do instead.
    pub message: String,
}

impl Rejection {
    /// Builds a rejection.
    pub fn new(status: u16, reason: &'static str, message: String) -> Self {
        Self {
            status,
            reason,
            message,
        }
    }

    fn bad(message: String) -> Self {
        Self::new(400, "bad_request", message)
    }
}

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// A body of this many bytes. Absurd values stay as they are, so that
    /// they are rejected by size.
    Length(u64),
    /// A chunked body.
    Chunked,
}

/// A checked request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The method, as sent.
    pub method: String,
    /// The request target, as sent.
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// The header fields in order, names as sent.
    pub fields: Vec<(String, String)>,
    /// How the body is delimited.
    pub framing: Framing,
    /// True when the client asked to keep the connection open.
    pub keep_alive: bool,
    /// True for `Expect: 100-continue` from an HTTP/1.1 client.
    pub expects_continue: bool,
}

impl Head {
    /// The path of the target, without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or(&self.target)
    }

    /// The value of the first field named `name` (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Returns the length of the head at the start of `buffer`, blank line
/// included, once the blank line has arrived.
pub fn head_length(buffer: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (index, byte) in buffer.iter().enumerate() {
        if *byte != b'\n' {
            continue;
        }
        let line = &buffer[line_start..index];
        if line.is_empty() || line == b"\r" {
            return Some(index + 1);
        }
        line_start = index + 1;
    }
    None
}

/// The rejection of a head that grew past [`MAX_HEAD_BYTES`] without ending.
pub fn head_too_large() -> Rejection {
    Rejection::new(
        431,
        "head_too_large",
        format!(
            "the request line and header fields exceed {MAX_HEAD_BYTES} bytes: send shorter \
             header fields"
        ),
    )
}

/// Parses and checks a complete head, as returned by [`head_length`].
///
/// # Errors
/// 400 for a malformed line, a bad `Content-Length` or a `Content-Length`
/// next to a `Transfer-Encoding`; 417 for an `Expect` other than
/// `100-continue`; 431 for too many fields; 501 for a transfer coding
/// other than chunked; 505 for a version other than HTTP/1.0 and 1.1.
pub fn parse(head: &[u8]) -> Result<Head, Rejection> {
    let text = std::str::from_utf8(head)
        .ok()
        .filter(|text| text.is_ascii())
        .ok_or_else(|| {
            Rejection::bad("the request head has non-ASCII bytes: send ASCII header fields".into())
        })?;
    let mut lines = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    let request_line = lines.next().unwrap_or_default();
    let (method, target, minor_version) = parse_request_line(request_line)?;
    let mut fields = Vec::new();
    for line in lines.take_while(|line| !line.is_empty()) {
        if fields.len() == MAX_HEADER_FIELDS {
            return Err(Rejection::new(
                431,
                "head_too_large",
                format!("the request has more than {MAX_HEADER_FIELDS} header fields: send fewer"),
            ));
        }
        fields.push(parse_field(line)?);
    }
    let framing = framing(&fields, minor_version)?;
    let expects_continue = expectation(&fields, minor_version)?;
    let keep_alive = keep_alive(&fields, minor_version);
    Ok(Head {
        method,
        target,
        minor_version,
        fields,
        framing,
        keep_alive,
        expects_continue,
    })
}

fn parse_request_line(line: &str) -> Result<(String, String, u8), Rejection> {
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, target, version] = parts.as_slice() else {
        return Err(Rejection::bad(format!(
            "malformed request line {line:?}: expected METHOD TARGET HTTP/1.1"
        )));
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(Rejection::bad(format!(
            "invalid method {method:?} in the request line"
        )));
    }
    if target.is_empty() || target.bytes().any(|byte| byte.is_ascii_control()) {
        return Err(Rejection::bad(format!(
            "invalid request target {target:?}: expected a path such as /predict"
        )));
    }
    let minor = match *version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        _ if version.starts_with("HTTP/") => {
            let detail = if *method == "PRI" && *version == "HTTP/2.0" {
                "HTTP/2 with prior knowledge is"
            } else {
                "this HTTP version is"
            };
            return Err(Rejection::new(
                505,
                "version_not_supported",
                format!("{detail} not supported ({version}): send HTTP/1.1 or HTTP/1.0"),
            ));
        }
        _ => {
            return Err(Rejection::bad(format!(
                "invalid HTTP version {version:?} in the request line: expected HTTP/1.1"
            )))
        }
    };
    Ok(((*method).to_owned(), (*target).to_owned(), minor))
}

/// Token characters of RFC 9110, section 5.6.2.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

fn parse_field(line: &str) -> Result<(String, String), Rejection> {
    if line.starts_with([' ', '\t']) {
        return Err(Rejection::bad(
            "a header line starts with white space (obsolete line folding): send each field on \
             one line"
                .into(),
        ));
    }
    let Some((name, value)) = line.split_once(':') else {
        return Err(Rejection::bad(format!(
            "malformed header line {line:?}: expected NAME: VALUE"
        )));
    };
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(Rejection::bad(format!(
            "invalid header field name {name:?}"
        )));
    }
    let value = value.trim_matches([' ', '\t']);
    if value
        .bytes()
        .any(|byte| byte.is_ascii_control() && byte != b'\t')
    {
        return Err(Rejection::bad(format!(
            "header field {name} has a control character in its value"
        )));
    }
    Ok((name.to_owned(), value.to_owned()))
}

fn values<'a>(fields: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> {
    fields
        .iter()
        .filter(move |(field, _)| field.eq_ignore_ascii_case(name))
        .flat_map(|(_, value)| value.split(','))
        .map(str::trim)
}

fn framing(fields: &[(String, String)], minor_version: u8) -> Result<Framing, Rejection> {
    let codings: Vec<&str> = values(fields, "Transfer-Encoding")
        .filter(|coding| !coding.is_empty())
        .collect();
    let lengths: Vec<&str> = values(fields, "Content-Length").collect();
    if !codings.is_empty() {
        if !lengths.is_empty() {
            return Err(Rejection::bad(
                "the request has both Content-Length and Transfer-Encoding: send one of them"
                    .into(),
            ));
        }
        if minor_version == 0 {
            return Err(Rejection::bad(
                "Transfer-Encoding is not allowed in an HTTP/1.0 request: send Content-Length"
                    .into(),
            ));
        }
        if codings.len() != 1 || !codings[0].eq_ignore_ascii_case("chunked") {
            return Err(Rejection::new(
                501,
                "transfer_encoding_not_supported",
                format!(
                    "Transfer-Encoding {:?} is not supported: send chunked or Content-Length",
                    codings.join(", ")
                ),
            ));
        }
        return Ok(Framing::Chunked);
    }
    let Some(first) = lengths.first() else {
        return Ok(Framing::Empty);
    };
    if lengths.iter().any(|length| length != first) {
        return Err(Rejection::bad(format!(
            "conflicting Content-Length values {:?}: send one Content-Length",
            lengths.join(", ")
        )));
    }
    if first.is_empty() || !first.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(Rejection::bad(format!(
            "invalid Content-Length header '{first}': expected the body size in bytes"
        )));
    }
    // Only digits remain, so the one failure is a value beyond u64, which
    // is rejected by size like any other absurd length.
    Ok(Framing::Length(first.parse().unwrap_or(u64::MAX)))
}

fn expectation(fields: &[(String, String)], minor_version: u8) -> Result<bool, Rejection> {
    let Some(expect) = fields
        .iter()
        .find(|(field, _)| field.eq_ignore_ascii_case("Expect"))
        .map(|(_, value)| value.trim())
    else {
        return Ok(false);
    };
    if expect.eq_ignore_ascii_case("100-continue") {
        // An HTTP/1.0 client does not wait for an interim response.
        return Ok(minor_version == 1);
    }
    Err(Rejection::new(
        417,
        "expectation_failed",
        format!("unsupported expectation Expect: {expect}: only 100-continue is supported"),
    ))
}

fn keep_alive(fields: &[(String, String)], minor_version: u8) -> bool {
    let mut options = values(fields, "Connection");
    let (mut close, mut keep) = (false, false);
    for option in options.by_ref() {
        close |= option.eq_ignore_ascii_case("close");
        keep |= option.eq_ignore_ascii_case("keep-alive");
    }
    !close && (minor_version == 1 || keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Head, Rejection> {
        let bytes = text.as_bytes();
        let length = head_length(bytes).expect("a complete head");
        parse(&bytes[..length])
    }

    fn status(text: &str) -> u16 {
        head(text).map_or_else(|rejection| rejection.status, |_| 200)
    }

    #[test]
    fn finds_the_end_of_the_head() {
        assert_eq!(head_length(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"), Some(24));
        assert_eq!(head_length(b"GET / HTTP/1.1\nA: b\n\nbody"), Some(21));
        assert_eq!(head_length(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }

    #[test]
    fn parses_a_simple_request() {
        let parsed =
            head("POST /predict?top_k=3 HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n")
                .unwrap();
        assert_eq!(parsed.method, "POST");
        assert_eq!(parsed.path(), "/predict");
        assert_eq!(parsed.framing, Framing::Length(12));
        assert!(parsed.keep_alive);
        assert!(!parsed.expects_continue);
        assert_eq!(parsed.field("host"), Some("x"));
    }

    #[test]
    fn keep_alive_follows_version_and_connection() {
        assert!(!head("GET / HTTP/1.0\r\n\r\n").unwrap().keep_alive);
        assert!(
            head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                .unwrap()
                .keep_alive
        );
        assert!(
            !head("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
                .unwrap()
                .keep_alive
        );
    }

    #[test]
    fn content_length_checks() {
        let huge = head("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n");
        assert_eq!(huge.unwrap().framing, Framing::Length(u64::MAX));
        let same = head("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(same.unwrap().framing, Framing::Length(5));
        assert_eq!(
            status("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n"),
            400
        );
        assert_eq!(status("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 400);
        assert_eq!(
            status("POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
    }

    #[test]
    fn transfer_encoding_checks() {
        let chunked = head("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n").unwrap();
        assert_eq!(chunked.framing, Framing::Chunked);
        assert_eq!(
            status("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            501
        );
        assert_eq!(
            status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
    }

    #[test]
    fn expect_checks() {
        let expects = head("POST / HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n").unwrap();
        assert!(expects.expects_continue);
        let old = head("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").unwrap();
        assert!(!old.expects_continue);
        assert_eq!(status("POST / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n"), 417);
    }

    #[test]
    fn version_and_line_checks() {
        assert_eq!(status("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505);
        assert_eq!(status("GET / HTTP/3\r\n\r\n"), 505);
        assert_eq!(status("GET / FTP/1.0\r\n\r\n"), 400);
        assert_eq!(status("GET /\r\n\r\n"), 400);
        assert_eq!(status("GET  / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status("G(T / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nNo colon\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nA b: c\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nA: \u{e9}\r\n\r\n"), 400);
    }

    #[test]
    fn too_many_fields() {
        let mut text = String::from("GET / HTTP/1.1\r\n");
        for index in 0..=MAX_HEADER_FIELDS {
            text.push_str(&format!("X-{index}: 1\r\n"));
        }
        text.push_str("\r\n");
        assert_eq!(status(&text), 431);
    }
}

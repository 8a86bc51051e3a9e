//! The connection limits against the real binary on 127.0.0.1: head and
//! body caps, absurd or lying `Content-Length`, read and write timeouts,
//! `Expect: 100-continue`, HTTP/1.0 and keep-alive, the connection cap,
//! an `accept` error, and ApacheBench with and without `-k`.

mod support;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use support::{connect, exchange, get, read_response, Files, Response, Serve};

const IMAGE_BYTES: usize = 3072;

/// A ready server with an untrained checkpoint.
struct Fixture {
    serve: Serve,
    files: Files,
}

impl Fixture {
    fn addr(&self) -> SocketAddr {
        self.serve.addr()
    }
}

fn start(extra: &[&str], env: &[(&str, &str)]) -> Fixture {
    let files = Files::new(50, 5);
    let mut args = files.args("server");
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    let serve = Serve::start_with_env(&args, env);
    serve.wait_until_ready();
    Fixture { serve, files }
}

/// Sends `raw` and returns the response, or panics with the server log.
fn send(fixture: &Fixture, raw: &[u8]) -> Response {
    exchange(fixture.addr(), raw).unwrap_or_else(|error| panic!("{error}\n{}", fixture.serve.log()))
}

fn image() -> Vec<u8> {
    (0..IMAGE_BYTES).map(|index| (index % 251) as u8).collect()
}

fn predict_request(body: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "POST /predict HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// One line of `/proc/PID/status`, such as `VmRSS` or `Threads`, as a number.
fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Waits up to 5 s for `check` to hold.
fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// Reads the socket until the peer closes it, failing on a timeout.
fn assert_closed(reader: &mut impl Read) {
    let mut rest = Vec::new();
    match reader.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "unexpected bytes {rest:?}"),
        Err(error) if error.kind() == ErrorKind::ConnectionReset => {}
        Err(error) => panic!("the server did not close the connection: {error}"),
    }
}

/// The value of a sample line of `GET /metrics`, 0 when absent.
fn metric(addr: SocketAddr, series: &str) -> f64 {
    let text = String::from_utf8(get(addr, "/metrics").body).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn head_over_the_cap_gets_431() {
    let fixture = start(&[], &[]);
    let long = format!(
        "GET /_/health HTTP/1.1\r\nHost: t\r\nX-Long: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let response = send(&fixture, long.as_bytes());
    assert_eq!(response.status, 431);
    assert!(response.error_message().contains("8192 bytes"));
    let mut many = String::from("GET /_/health HTTP/1.1\r\nHost: t\r\n");
    for index in 0..120 {
        many.push_str(&format!("X-{index}: 1\r\n"));
    }
    many.push_str("\r\n");
    let response = send(&fixture, many.as_bytes());
    assert_eq!(response.status, 431);
    assert!(response.error_message().contains("100 header fields"));
    // A head that never ends is cut at the cap, not read without end.
    let mut stream = connect(fixture.addr());
    let endless = format!("GET / HTTP/1.1\r\nX: {}", "b".repeat(20_000));
    let _ = stream.write_all(endless.as_bytes());
    let response = read_response(&mut BufReader::new(stream)).unwrap();
    assert_eq!(response.status, 431);
    assert_eq!(get(fixture.addr(), "/_/health").status, 200);
}

#[test]
fn framing_errors_get_clear_statuses() {
    let fixture = start(&[], &[]);
    let cases: [(&str, u16, &str); 7] = [
        ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "HTTP/2"),
        ("GET / HTTP/9.9\r\n\r\n", 505, "HTTP/9.9"),
        (
            "POST /predict HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
            400,
            "conflicting Content-Length",
        ),
        (
            "POST /predict HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
            "both Content-Length and Transfer-Encoding",
        ),
        (
            "POST /predict HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
            400,
            "invalid Content-Length header 'abc'",
        ),
        (
            "POST /predict HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
            "Transfer-Encoding \"gzip\"",
        ),
        (
            "POST /predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
            "malformed chunked body",
        ),
    ];
    for (raw, status, message) in cases {
        let response = send(&fixture, raw.as_bytes());
        assert_eq!(response.status, status, "{raw:?}");
        let error = response.error_message();
        assert!(error.contains(message), "{raw:?}: {error}");
    }
}

#[test]
fn absurd_or_lying_content_length_gets_413_at_once() {
    let fixture = start(&[], &[]);
    let pid = fixture.serve.pid();
    // Warm up the paths, then take the baseline.
    assert_eq!(send(&fixture, &predict_request(&image())).status, 200);
    thread::sleep(Duration::from_millis(300));
    let (threads, fds, rss) = (
        proc_status(pid, "Threads"),
        open_fds(pid),
        proc_status(pid, "VmRSS"),
    );
    let declared = [
        "1000000000000".to_owned(),
        u64::MAX.to_string(),
        "99999999999999999999999".to_owned(),
        // Above the 8 MiB cap of /predict, with three bytes sent.
        "9000000".to_owned(),
    ];
    let started = Instant::now();
    for round in 0..200 {
        let length = &declared[round % declared.len()];
        let raw =
            format!("POST /predict HTTP/1.1\r\nHost: t\r\nContent-Length: {length}\r\n\r\nabc");
        let response = send(&fixture, raw.as_bytes());
        assert_eq!(response.status, 413, "Content-Length {length}");
        assert!(response
            .error_message()
            .contains("exceeds the limit of 8388608"));
    }
    // A V2 path has its own, larger cap.
    let raw = "POST /v2/models/cifar10/infer HTTP/1.1\r\nContent-Length: 40000000\r\n\r\n";
    let response = send(&fixture, raw.as_bytes());
    assert_eq!(response.status, 413);
    assert!(response.error_message().contains("33554432"));
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(20),
        "201 rejections took {elapsed:?}"
    );
    assert!(
        eventually(|| proc_status(pid, "Threads") <= threads && open_fds(pid) <= fds),
        "threads {threads} -> {}, fds {fds} -> {}",
        proc_status(pid, "Threads"),
        open_fds(pid)
    );
    let grown = proc_status(pid, "VmRSS").saturating_sub(rss);
    assert!(grown < 16 * 1024, "resident memory grew by {grown} KiB");
    assert_eq!(
        metric(
            fixture.addr(),
            "cifaas_http_rejections_total{reason=\"body_too_large\"}"
        ),
        201.0
    );
}

#[test]
fn slow_clients_are_cut_after_read_timeout_and_probes_still_answer() {
    let fixture = start(&["--threads", "1"], &[("read_timeout", "1s")]);
    let addr = fixture.addr();
    // Three clients send half a head and stall, three send a body one
    // byte per 200 ms: six stalled clients, one worker thread.
    let mut stalled = Vec::new();
    for _ in 0..3 {
        let mut stream = connect(addr);
        stream
            .write_all(b"GET /_/health HTTP/1.1\r\nHost: t\r\n")
            .unwrap();
        stalled.push((stream, Instant::now()));
    }
    let mut tricklers = Vec::new();
    for _ in 0..3 {
        let mut stream = connect(addr);
        let head =
            format!("POST /predict HTTP/1.1\r\nHost: t\r\nContent-Length: {IMAGE_BYTES}\r\n\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        let writer = stream.try_clone().unwrap();
        let started = Instant::now();
        let trickle = thread::spawn(move || {
            let mut writer = writer;
            // Stops when the server closes the connection.
            while writer.write_all(b"x").is_ok() && started.elapsed() < Duration::from_secs(10) {
                thread::sleep(Duration::from_millis(200));
            }
        });
        tricklers.push((stream, started, trickle));
    }
    for _ in 0..5 {
        let probe_started = Instant::now();
        let health = get(addr, "/_/health");
        assert_eq!(health.status, 200);
        assert!(probe_started.elapsed() < Duration::from_millis(500));
        thread::sleep(Duration::from_millis(100));
    }
    for (stream, started) in stalled {
        let response = read_response(&mut BufReader::new(stream)).unwrap();
        let waited = started.elapsed();
        assert_eq!(response.status, 408);
        assert!(response.error_message().contains("read_timeout (1.0 s)"));
        assert!(waited >= Duration::from_millis(900), "{waited:?}");
        assert!(waited < Duration::from_secs(4), "{waited:?}");
    }
    for (stream, started, trickle) in tricklers {
        let response = read_response(&mut BufReader::new(stream)).unwrap();
        let waited = started.elapsed();
        assert_eq!(response.status, 408);
        assert!(waited < Duration::from_secs(4), "{waited:?}");
        trickle.join().unwrap();
    }
    assert_eq!(
        metric(
            addr,
            "cifaas_http_rejections_total{reason=\"read_timeout\"}"
        ),
        6.0
    );
}

#[test]
fn a_client_that_never_reads_is_cut_after_write_timeout() {
    let fixture = start(&[], &[("write_timeout", "1s")]);
    let addr = fixture.addr();
    let mut stream = connect(addr);
    // Pipelined requests whose responses fill both socket buffers, then more.
    let requests = "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n".repeat(4000);
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        thread::spawn(move || {
            let _ = stream.write_all(requests.as_bytes());
        })
    };
    let cut = eventually(|| {
        metric(
            addr,
            "cifaas_http_rejections_total{reason=\"write_timeout\"}",
        ) >= 1.0
    });
    assert!(cut, "no write timeout:\n{}", fixture.serve.log());
    assert!(fixture.serve.log().contains("write_timeout (1.0 s)"));
    // The client finds the connection closed once it reads what was sent.
    let mut sink = Vec::new();
    let _ = stream.read_to_end(&mut sink);
    writer.join().unwrap();
    assert_eq!(get(addr, "/_/health").status, 200);
}

#[test]
fn expect_100_continue_accepted_and_rejected() {
    let fixture = start(&[], &[]);
    let mut stream = connect(fixture.addr());
    let head = format!(
        "POST /predict HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: {IMAGE_BYTES}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "HTTP/1.1 100 Continue\r\n");
    reader.read_line(&mut line).unwrap();
    stream.write_all(&image()).unwrap();
    let response = read_response(&mut reader).unwrap();
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );

    // Too large: the final status comes at once, without 100 Continue.
    let mut stream = connect(fixture.addr());
    stream
        .write_all(
            b"POST /predict HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 9000000\r\n\r\n",
        )
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 413 "), "{line:?}");

    let response = send(
        &fixture,
        b"POST /predict HTTP/1.1\r\nExpect: tea\r\nContent-Length: 3\r\n\r\nabc",
    );
    assert_eq!(response.status, 417);
    assert!(response.error_message().contains("Expect: tea"));
}

#[test]
fn http_1_0_closes_and_keep_alive_reuses() {
    let fixture = start(&[], &[]);
    // HTTP/1.0 without keep-alive: the response, then the close.
    let mut stream = connect(fixture.addr());
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(b"GET /_/health HTTP/1.0\r\n\r\n").unwrap();
    let mut reader = BufReader::new(stream);
    let response = read_response(&mut reader).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.header("connection"), Some("close"));
    assert_closed(&mut reader);

    // HTTP/1.0 with keep-alive, then HTTP/1.1: several requests on one connection.
    let requests: [&[u8]; 2] = [
        b"GET /_/health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"GET /_/health HTTP/1.1\r\nHost: t\r\n\r\n",
    ];
    for request in requests {
        let stream = connect(fixture.addr());
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        for _ in 0..3 {
            writer.write_all(request).unwrap();
            let response = read_response(&mut reader).unwrap();
            assert_eq!(response.status, 200);
            assert_ne!(response.header("connection"), Some("close"));
        }
        if request.starts_with(b"GET /_/health HTTP/1.0") {
            let response = read_response(&mut {
                writer.write_all(request).unwrap();
                reader
            })
            .unwrap();
            assert_eq!(response.header("connection"), Some("keep-alive"));
        }
    }
    // `Connection: close` on HTTP/1.1 closes after the response.
    let mut stream = connect(fixture.addr());
    stream
        .write_all(b"GET /_/health HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    assert_eq!(read_response(&mut reader).unwrap().status, 200);
    assert_closed(&mut reader);
}

#[test]
fn chunked_bodies_are_read_and_capped() {
    let fixture = start(&[], &[]);
    let body = image();
    let mut raw =
        b"POST /predict HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for chunk in body.chunks(1000) {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(send(&fixture, &raw).status, 200);
    let mut stream = connect(fixture.addr());
    stream
        .write_all(b"POST /predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let mut writer = stream.try_clone().unwrap();
    let feeder = thread::spawn(move || {
        for _ in 0..9 {
            let head = format!("{:x}\r\n", chunk.len());
            let sent = writer
                .write_all(head.as_bytes())
                .and_then(|()| writer.write_all(&chunk))
                .and_then(|()| writer.write_all(b"\r\n"));
            if sent.is_err() {
                return;
            }
        }
    });
    let response = read_response(&mut BufReader::new(stream)).unwrap();
    assert_eq!(response.status, 413);
    feeder.join().unwrap();
}

#[test]
fn connections_above_the_cap_get_503() {
    let fixture = start(&["--max-connections", "3"], &[]);
    let idle: Vec<TcpStream> = (0..3).map(|_| connect(fixture.addr())).collect();
    // The acceptor counts a connection once it has taken it.
    thread::sleep(Duration::from_millis(200));
    let response = send(&fixture, b"GET /_/health HTTP/1.1\r\n\r\n");
    assert_eq!(response.status, 503);
    assert!(response.error_message().contains("3 connections open"));
    drop(idle);
    assert!(eventually(|| support::try_get(fixture.addr(), "/_/health")
        .is_ok_and(|response| response.status == 200)));
}

#[test]
fn out_of_file_descriptors_recovers() {
    if Command::new("prlimit").arg("--version").output().is_err() {
        eprintln!("skipped: prlimit (util-linux) is not installed");
        return;
    }
    let fixture = start(&[], &[]);
    let pid = fixture.serve.pid().to_string();
    let set_limit = |soft: &str| {
        let status = Command::new("prlimit")
            .args(["--pid", &pid, &format!("--nofile={soft}:")])
            .status()
            .unwrap();
        assert!(status.success(), "prlimit --nofile={soft}");
    };
    let original = proc_limits_soft(fixture.serve.pid());
    set_limit("0");
    // With a soft limit of 0 no new descriptor can be made. An accept that
    // was already waiting holds the one it reserved, so the first client
    // is taken, but the server cannot pass its request on: a clean 503.
    let first = send(&fixture, b"GET /_/health HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(first.status, 503);
    assert!(first.error_message().contains("Too many open files"));
    // The next accept fails with EMFILE, and the client waits.
    let mut stream = connect(fixture.addr());
    stream
        .write_all(b"GET /_/health HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let failing = fixture
        .serve
        .wait_for_log("accept failed: Too many open files", Duration::from_secs(5));
    thread::sleep(Duration::from_millis(300));
    set_limit(&original);
    assert!(failing, "no accept error logged:\n{}", fixture.serve.log());
    // The waiting connection is served once descriptors are free again.
    let response = read_response(&mut BufReader::new(stream)).unwrap();
    assert_eq!(response.status, 200, "{}", fixture.serve.log());
    assert_eq!(get(fixture.addr(), "/_/health").status, 200);
}

fn proc_limits_soft(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap();
    line["Max open files".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn damaged_images_never_get_500() {
    let fixture = start(&[], &[]);
    let rgb = image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8, y as u8, 7]));
    // (body, whether the decoder may still accept it)
    let mut cases = Vec::new();
    for format in [image::ImageFormat::Png, image::ImageFormat::Jpeg] {
        let mut encoded = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(rgb.clone())
            .write_to(&mut encoded, format)
            .unwrap();
        let encoded = encoded.into_inner();
        cases.push((encoded[..encoded.len() / 3].to_vec(), false));
        let mut corrupt = encoded.clone();
        let middle = corrupt.len() / 2;
        for byte in &mut corrupt[middle..middle + 40] {
            *byte ^= 0x5a;
        }
        // Flipped bits inside the image data may still decode to pixels.
        cases.push((corrupt, true));
    }
    for (body, may_decode) in cases {
        let response = send(&fixture, &predict_request(&body));
        assert!(
            matches!(response.status, 400 | 422) || (may_decode && response.status == 200),
            "{} for a damaged image: {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        );
    }
}

/// Runs `ab` with `args`, or returns `None` when it is not installed.
fn ab(args: &[&str]) -> Option<String> {
    // `-l`: a prediction's length varies with its numbers, which ab would
    // otherwise count as failed requests.
    let output = Command::new("ab").arg("-l").args(args).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "ab {args:?} failed: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(text)
}

#[test]
fn ab_completes_with_and_without_keep_alive() {
    let fixture = start(&["--threads", "2"], &[]);
    let png_path = fixture.files.dir.path().join("image.png");
    let rgb = image::RgbImage::from_fn(32, 32, |x, y| image::Rgb([x as u8 * 8, y as u8 * 8, 99]));
    rgb.save(&png_path).unwrap();
    let base = format!("http://{}", fixture.addr());
    let health = format!("{base}/_/health");
    let predict = format!("{base}/predict");
    let png = png_path.to_str().unwrap();
    let body: [&str; 4] = ["-p", png, "-T", "image/png"];
    let targets: [(&str, &[&str]); 2] = [(&health, &[]), (&predict, &body)];
    let mut runs = Vec::new();
    for (url, body_args) in targets {
        for keep_alive in [false, true] {
            let mut args = if keep_alive { vec!["-k"] } else { Vec::new() };
            args.extend(["-n", "200", "-c", "8"]);
            args.extend_from_slice(body_args);
            args.push(url);
            runs.push(args);
        }
    }
    for args in runs {
        let Some(output) = ab(&args) else {
            eprintln!("skipped: ab (apache2-utils) is not installed; .ci/run installs it");
            return;
        };
        assert!(
            output.contains("Complete requests:      200"),
            "{args:?}: {output}"
        );
        assert!(
            output.contains("Failed requests:        0"),
            "{args:?}: {output}"
        );
        assert!(!output.contains("Non-2xx responses"), "{args:?}: {output}");
        if args[0] == "-k" {
            assert!(
                output.contains("Keep-Alive requests:    200"),
                "{args:?}: {output}"
            );
        }
    }
}

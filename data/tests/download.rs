//! `download_dataset` against a loopback HTTP server that the test starts:
//! a good archive, a wrong MD5, truncated bodies, an error status and
//! archives with unsafe members.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use common::{dataset_entries, list_dir, write_raw_archive, Entry};
use data::download::{download_dataset, NoProgress};
use data::{Cifar10, DataError, ARCHIVE_NAME};
use md5::{Digest, Md5};

/// What the test server sends for every request.
#[derive(Clone)]
enum Reply {
    /// `200 OK` with this body and its true `Content-Length`.
    Body(Vec<u8>),
    /// `200 OK` that declares `declared` bytes, sends `body` and closes.
    ShortBody { body: Vec<u8>, declared: usize },
    /// This status with an empty body.
    Status(u16),
}

/// A loopback HTTP/1.1 server that answers each request with one [`Reply`]
/// and closes the connection.
struct TestServer {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

/// Connections one server accepts before its thread ends.
const MAX_CONNECTIONS: usize = 8;

impl TestServer {
    fn start(reply: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        thread::spawn(move || {
            for stream in listener.incoming().take(MAX_CONNECTIONS) {
                let Ok(stream) = stream else { continue };
                counter.fetch_add(1, Ordering::SeqCst);
                // A client that hangs up early is the client's failure.
                let _ = answer(stream, &reply);
            }
        });
        Self { addr, requests }
    }

    fn url(&self) -> String {
        format!("http://{}/{ARCHIVE_NAME}", self.addr)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn answer(stream: TcpStream, reply: &Reply) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 && line != "\r\n" {
        line.clear();
    }
    let mut stream = stream;
    let (status, body, declared) = match reply {
        Reply::Body(body) => (200, body.as_slice(), body.len()),
        Reply::ShortBody { body, declared } => (200, body.as_slice(), *declared),
        Reply::Status(status) => (*status, &[][..], 0),
    };
    write!(
        stream,
        "HTTP/1.1 {status} Test\r\nContent-Length: {declared}\r\n\
         Content-Type: application/gzip\r\nConnection: close\r\n\r\n"
    )?;
    stream.write_all(body)?;
    stream.flush()
}

fn md5_of(bytes: &[u8]) -> [u8; 16] {
    Md5::digest(bytes).into()
}

fn synthetic_archive_bytes(records: usize) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(ARCHIVE_NAME);
    data::write_synthetic_archive(&path, records, 7).unwrap();
    std::fs::read(path).unwrap()
}

/// Builds the bytes of a valid dataset archive plus one `extra` entry.
fn archive_bytes_with(extra: Entry<'_>) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evil.tar.gz");
    let files = dataset_entries(2);
    let mut entries: Vec<Entry<'_>> = files
        .iter()
        .map(|(name, bytes)| Entry::File(name, bytes))
        .collect();
    entries.push(extra);
    write_raw_archive(&path, &entries);
    std::fs::read(path).unwrap()
}

/// Downloads from `server` into a fresh folder, expects an error and checks
/// that the folder holds nothing afterwards.
fn expect_rejected(server: &TestServer, md5: &[u8; 16]) -> DataError {
    let folder = tempfile::tempdir().unwrap();
    let error = download_dataset(&server.url(), md5, folder.path(), &mut NoProgress).unwrap_err();
    assert_no_files(folder.path(), &error);
    error
}

fn assert_no_files(folder: &Path, error: &DataError) {
    assert_eq!(
        list_dir(folder),
        Vec::<String>::new(),
        "files left after: {error}"
    );
}

#[test]
fn download_unpacks_and_opens() {
    let bytes = synthetic_archive_bytes(20);
    let server = TestServer::start(Reply::Body(bytes.clone()));
    let folder = tempfile::tempdir().unwrap();

    let unpacked = download_dataset(
        &server.url(),
        &md5_of(&bytes),
        folder.path(),
        &mut NoProgress,
    )
    .unwrap();

    assert_eq!(unpacked, folder.path().join("cifar-10-binary"));
    assert_eq!(
        std::fs::read(folder.path().join(ARCHIVE_NAME)).unwrap(),
        bytes
    );
    assert_eq!(
        list_dir(folder.path()),
        vec!["cifar-10-binary".to_owned(), ARCHIVE_NAME.to_owned()]
    );
    let dataset = Cifar10::open(folder.path()).unwrap();
    assert_eq!(dataset.train.len(), 100);
    assert_eq!(dataset.test.len(), 20);
    assert_eq!(server.requests(), 1);
}

#[test]
fn download_reports_progress() {
    struct Recorder(Vec<String>);
    impl data::download::DownloadProgress for Recorder {
        fn start(&mut self, total_bytes: Option<u64>) {
            self.0.push(format!("start {total_bytes:?}"));
        }
        fn advance(&mut self, received_bytes: u64) {
            self.0.push(format!("advance {received_bytes}"));
        }
        fn finish(&mut self) {
            self.0.push("finish".into());
        }
    }
    let bytes = synthetic_archive_bytes(4);
    let server = TestServer::start(Reply::Body(bytes.clone()));
    let folder = tempfile::tempdir().unwrap();
    let mut recorder = Recorder(Vec::new());

    download_dataset(&server.url(), &md5_of(&bytes), folder.path(), &mut recorder).unwrap();

    let events = recorder.0;
    assert_eq!(events[0], format!("start Some({})", bytes.len()));
    assert_eq!(events[events.len() - 2], format!("advance {}", bytes.len()));
    assert_eq!(events[events.len() - 1], "finish");
}

#[test]
fn wrong_md5_rejected() {
    let bytes = synthetic_archive_bytes(4);
    let server = TestServer::start(Reply::Body(bytes.clone()));
    let wrong = [0xab; 16];

    let error = expect_rejected(&server, &wrong);

    let message = error.to_string();
    assert!(
        matches!(error, DataError::ChecksumMismatch { .. }),
        "{error:?}"
    );
    assert!(message.contains(&server.url()), "{message}");
    assert!(message.contains(&"ab".repeat(16)), "{message}");
    let found: String = md5_of(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    assert!(message.contains(&found), "{message}");
}

#[test]
fn short_body_rejected() {
    let bytes = synthetic_archive_bytes(4);
    let half = bytes[..bytes.len() / 2].to_vec();
    let server = TestServer::start(Reply::ShortBody {
        body: half,
        declared: bytes.len(),
    });

    let error = expect_rejected(&server, &md5_of(&bytes));

    let message = error.to_string();
    assert!(
        matches!(error, DataError::DownloadFailed { .. }),
        "{error:?}"
    );
    assert!(message.contains(&server.url()), "{message}");
}

#[test]
fn empty_body_with_length_rejected() {
    let server = TestServer::start(Reply::ShortBody {
        body: Vec::new(),
        declared: 1000,
    });

    let error = expect_rejected(&server, &md5_of(b""));

    assert!(
        matches!(error, DataError::DownloadFailed { .. }),
        "{error:?}"
    );
}

#[test]
fn truncated_archive_with_matching_md5_rejected() {
    // The server sends a cut archive and the caller trusts its MD5, so the
    // transfer succeeds and only unpacking can tell.
    let bytes = synthetic_archive_bytes(4);
    let cut = bytes[..bytes.len() / 2].to_vec();
    let server = TestServer::start(Reply::Body(cut.clone()));

    let error = expect_rejected(&server, &md5_of(&cut));

    let message = error.to_string();
    assert!(message.contains(ARCHIVE_NAME), "{message}");
}

#[test]
fn not_found_status_rejected() {
    let server = TestServer::start(Reply::Status(404));

    let error = expect_rejected(&server, &[0; 16]);

    let message = error.to_string();
    assert!(message.contains("HTTP 404"), "{message}");
    assert!(message.contains(&server.url()), "{message}");
}

#[test]
fn server_error_status_rejected() {
    let server = TestServer::start(Reply::Status(503));

    let error = expect_rejected(&server, &[0; 16]);

    assert!(error.to_string().contains("HTTP 503"), "{error}");
}

#[test]
fn refused_connection_rejected() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/{ARCHIVE_NAME}", listener.local_addr().unwrap());
    drop(listener);
    let folder = tempfile::tempdir().unwrap();

    let error = download_dataset(&url, &[0; 16], folder.path(), &mut NoProgress).unwrap_err();

    assert!(
        matches!(error, DataError::DownloadFailed { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains(&url), "{error}");
    assert_no_files(folder.path(), &error);
}

#[test]
fn parent_dir_member_rejected() {
    let entry = "cifar-10-batches-bin/../../escaped.txt";
    let bytes = archive_bytes_with(Entry::File(entry, b"x"));
    let server = TestServer::start(Reply::Body(bytes.clone()));

    let error = expect_rejected(&server, &md5_of(&bytes));

    assert!(
        matches!(&error, DataError::InvalidArchiveEntry { reason, .. }
            if *reason == "has a `..` component"),
        "{error:?}"
    );
    assert!(error.to_string().contains(entry), "{error}");
}

#[test]
fn symlink_member_rejected() {
    let entry = "cifar-10-batches-bin/passwd";
    let bytes = archive_bytes_with(Entry::Symlink(entry, "/etc/passwd"));
    let server = TestServer::start(Reply::Body(bytes.clone()));

    let error = expect_rejected(&server, &md5_of(&bytes));

    assert!(
        matches!(&error, DataError::InvalidArchiveEntry { reason, .. } if *reason == "is a link"),
        "{error:?}"
    );
}

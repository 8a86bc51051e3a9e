//! Downloading the official CIFAR-10 archive, verifying its MD5 and
//! unpacking it (the `download` feature).
//!
//! The body is streamed into a temporary file in the target folder and
//! hashed on the way. Only a complete body whose MD5 matches is synced and
//! renamed to `cifar-10-binary.tar.gz`, so an interrupted or corrupt
//! download never appears under that name. The archive is then unpacked by
//! [`crate::unpack_archive`], which rejects links, absolute paths and `..`.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::{Digest, Md5};

use crate::dataset::ARCHIVE_NAME;
use crate::{archive, DataError, Result};

/// URL of the official binary version of CIFAR-10.
pub const DEFAULT_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";

/// The MD5 of [`DEFAULT_URL`] as the CIFAR-10 home page publishes it.
pub const DEFAULT_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";

/// Environment variable that overrides [`user_data_dir`].
pub const DATA_DIR_ENV: &str = "CIFAAS_DATA_DIR";

/// Bytes read from the connection per write to the file.
const CHUNK_BYTES: usize = 64 * 1024;

/// Maximum wait to connect, and for the response headers.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(30);

/// Maximum time to receive the whole body: 163 MiB at about 46 KiB/s.
// NOTE: ureq 3 has no idle timeout between reads, so a server that stalls
// mid-body is detected only when this limit runs out.
const BODY_TIMEOUT: Duration = Duration::from_secs(3600);

/// Receives the progress of a download.
pub trait DownloadProgress {
    /// Called once the response headers arrive, with the body's
    /// `Content-Length` when the server sent one.
    fn start(&mut self, total_bytes: Option<u64>);
    /// Called after each chunk with the bytes received so far.
    fn advance(&mut self, received_bytes: u64);
    /// Called once the whole body has been received.
    fn finish(&mut self);
}

/// A [`DownloadProgress`] that reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl DownloadProgress for NoProgress {
    fn start(&mut self, _total_bytes: Option<u64>) {}
    fn advance(&mut self, _received_bytes: u64) {}
    fn finish(&mut self) {}
}

/// Returns the per-user folder the dataset is downloaded into:
/// `$CIFAAS_DATA_DIR` when set, else `$XDG_DATA_HOME/cifaas`, else
/// `$HOME/.local/share/cifaas`. Returns `None` when none of the three
/// variables is set to a non-empty value.
pub fn user_data_dir() -> Option<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(dir) = non_empty(DATA_DIR_ENV) {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = non_empty("XDG_DATA_HOME") {
        return Some(Path::new(&dir).join("cifaas"));
    }
    non_empty("HOME").map(|home| Path::new(&home).join(".local").join("share").join("cifaas"))
}

/// Parses a 32-digit hexadecimal MD5 digest, in either case.
///
/// # Errors
/// A message naming the value when it is not 32 hexadecimal digits.
pub fn parse_md5(value: &str) -> std::result::Result<[u8; 16], String> {
    let invalid = || format!("invalid MD5 '{value}': expected 32 hexadecimal digits");
    if value.len() != 32 || !value.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let mut digest = [0_u8; 16];
    for (index, byte) in digest.iter_mut().enumerate() {
        let pair = &value[2 * index..2 * index + 2];
        *byte = u8::from_str_radix(pair, 16).map_err(|_| invalid())?;
    }
    Ok(digest)
}

/// Downloads `url` into `folder/cifar-10-binary.tar.gz`, checks that its
/// MD5 is `md5`, and unpacks it into `folder/cifar-10-binary/`. Returns the
/// unpacked dataset folder. `folder` is created when missing.
///
/// An archive that cannot be read or whose members unpacking rejects is
/// deleted again, so that the next call downloads afresh instead of reusing
/// it.
///
/// # Errors
/// - [`DataError::DownloadFailed`] when the request or the body transfer
///   fails, the server returns an error status, or the body is shorter or
///   longer than its `Content-Length`.
/// - [`DataError::ChecksumMismatch`] when the MD5 differs.
/// - The errors of [`crate::unpack_archive`], such as
///   [`DataError::InvalidArchiveEntry`].
/// - [`DataError::Io`] when the folder or the file cannot be written.
pub fn download_dataset(
    url: &str,
    md5: &[u8; 16],
    folder: &Path,
    progress: &mut dyn DownloadProgress,
) -> Result<PathBuf> {
    let archive = download_archive(url, md5, folder, progress)?;
    match archive::unpack_archive(&archive, folder) {
        Ok(unpacked) => Ok(unpacked.folder),
        Err(error) => {
            let archive_is_bad = match &error {
                DataError::InvalidArchiveEntry { .. } | DataError::ArchiveMissingMember { .. } => {
                    true
                }
                // A read error on the archive itself: truncated or not gzip.
                DataError::Io { path, .. } => *path == archive,
                _ => false,
            };
            if archive_is_bad {
                // Best effort: the rejection is the error worth reporting.
                let _ = fs::remove_file(&archive);
            }
            Err(error)
        }
    }
}

/// Downloads `url` into `folder/cifar-10-binary.tar.gz` and checks its MD5,
/// without unpacking it. Returns the archive's path.
///
/// # Errors
/// As [`download_dataset`], without the unpacking errors.
pub fn download_archive(
    url: &str,
    md5: &[u8; 16],
    folder: &Path,
    progress: &mut dyn DownloadProgress,
) -> Result<PathBuf> {
    let create_error = |source| DataError::Io {
        action: "cannot create a temporary file in",
        path: folder.to_owned(),
        source,
    };
    fs::create_dir_all(folder).map_err(create_error)?;
    // The temporary file is deleted when dropped, so every early return
    // below removes the partial download.
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{ARCHIVE_NAME}.download-"))
        .tempfile_in(folder)
        .map_err(create_error)?;

    log::info!("downloading {url} into {}", folder.display());
    let found = fetch_into(url, temp.as_file(), temp.path(), progress)?;
    if &found != md5 {
        return Err(DataError::ChecksumMismatch {
            url: url.to_owned(),
            expected: hex(md5),
            found: hex(&found),
        });
    }

    let archive = folder.join(ARCHIVE_NAME);
    temp.persist(&archive).map_err(|error| DataError::Io {
        action: "cannot rename the download to",
        path: archive.clone(),
        source: error.error,
    })?;
    sync_folder(folder)?;
    log::info!(
        "downloaded {url} to {} (MD5 {})",
        archive.display(),
        hex(md5)
    );
    Ok(archive)
}

/// Streams the body of `url` into `file`, syncs it, and returns its MD5.
fn fetch_into(
    url: &str,
    file: &File,
    path: &Path,
    progress: &mut dyn DownloadProgress,
) -> Result<[u8; 16]> {
    let failed = |reason: String| DataError::DownloadFailed {
        url: url.to_owned(),
        reason,
    };
    let config = ureq::Agent::config_builder()
        .timeout_connect(Some(NETWORK_TIMEOUT))
        .timeout_recv_response(Some(NETWORK_TIMEOUT))
        .timeout_recv_body(Some(BODY_TIMEOUT))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let mut response = agent.get(url).call().map_err(|error| match error {
        ureq::Error::StatusCode(status) => failed(format!("the server returned HTTP {status}")),
        other => failed(other.to_string()),
    })?;
    let total = response.body().content_length();
    progress.start(total);

    let mut reader = response.body_mut().as_reader();
    let mut writer = BufWriter::new(file);
    let mut hasher = Md5::new();
    let mut buffer = vec![0_u8; CHUNK_BYTES];
    let mut received: u64 = 0;
    loop {
        let count = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                return Err(failed(format!(
                    "the connection failed after {received} bytes: {error}"
                )))
            }
        };
        hasher.update(&buffer[..count]);
        writer
            .write_all(&buffer[..count])
            .map_err(|source| DataError::Io {
                action: "cannot write",
                path: path.to_owned(),
                source,
            })?;
        received += count as u64;
        progress.advance(received);
    }
    if let Some(expected) = total.filter(|&expected| expected != received) {
        return Err(failed(format!(
            "received {received} bytes, but the Content-Length is {expected}"
        )));
    }
    progress.finish();

    let sync_error = |source| DataError::Io {
        action: "cannot write",
        path: path.to_owned(),
        source,
    };
    writer.flush().map_err(sync_error)?;
    file.sync_all().map_err(sync_error)?;
    Ok(hasher.finalize().into())
}

/// Syncs `folder` so that the rename into it survives a power loss.
fn sync_folder(folder: &Path) -> Result<()> {
    File::open(folder)
        .and_then(|dir| dir.sync_all())
        .map_err(|source| DataError::Io {
            action: "cannot sync",
            path: folder.to_owned(),
            source,
        })
}

fn hex(digest: &[u8; 16]) -> String {
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_round_trip() {
        let digest = parse_md5(DEFAULT_MD5).unwrap();
        assert_eq!(hex(&digest), DEFAULT_MD5);
        let upper = parse_md5(&DEFAULT_MD5.to_uppercase()).unwrap();
        assert_eq!(upper, digest);
    }

    #[test]
    fn md5_invalid_values() {
        for value in [
            "",
            "c32a",
            "x32a1d4ab5d03f1284b67883e8d87530",
            "+f2a1d4ab5d03f1284b67883e8d87530",
        ] {
            let message = parse_md5(value).unwrap_err();
            assert!(message.contains("32 hexadecimal digits"), "{message}");
        }
    }
}

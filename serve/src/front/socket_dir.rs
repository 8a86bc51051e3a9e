//! A private folder for the HTTP library's Unix socket.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;

/// A folder only this user can enter, removed on drop, holding the path
/// of the library's socket.
pub struct SocketDir {
    dir: PathBuf,
    socket: PathBuf,
}

impl SocketDir {
    /// Creates `cifaas-PID-N` with mode 0700 in the temporary folder.
    ///
    /// # Errors
    /// When the folder cannot be created.
    pub fn create() -> anyhow::Result<Self> {
        let base = std::env::temp_dir();
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        let mut last_error = None;
        for attempt in 0..16u32 {
            let dir = base.join(format!(
                "cifaas-{}-{}",
                std::process::id(),
                stamp.wrapping_add(attempt)
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    let socket = dir.join("http.sock");
                    return Ok(Self { dir, socket });
                }
                Err(error) => last_error = Some(error),
            }
        }
        let error = last_error.unwrap_or_else(|| std::io::Error::other("no attempt made"));
        Err(error).with_context(|| {
            format!(
                "failed to create the folder of the internal socket in {}: set TMPDIR to a \
                 writable folder",
                base.display()
            )
        })
    }

    /// The socket path inside the folder.
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

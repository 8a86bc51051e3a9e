//! The OpenFaaS workload contract: the lock file and the health probes.
//!
//! Kubernetes probes a function with HTTP GETs of `/_/health` and
//! `/_/ready`, or with `cat /tmp/.lock`. `/_/health` reports that the
//! process is up; `/_/ready` and the lock file report ready only once the
//! model has loaded and run a warm-up inference. All three stop reporting
//! success as soon as shutdown begins.

use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use serde::Serialize;

use crate::admission::Admission;
use crate::app::Phase;
use crate::http::Reply;

/// Lock file whose presence shows an exec probe that the function is ready.
#[derive(Debug)]
pub struct LockFile {
    path: PathBuf,
    written: AtomicBool,
}

impl LockFile {
    /// Names the lock file without touching the file system.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            written: AtomicBool::new(false),
        }
    }

    /// Removes a lock file left by an earlier process that did not shut
    /// down cleanly, because the file must not report ready before this
    /// process is. Called once the listener is bound, so a second instance
    /// that fails to bind never touches a running instance's file.
    pub fn clear_stale(&self) {
        match fs::remove_file(&self.path) {
            Ok(()) => log::warn!(
                "removed the stale lock file {} left by an earlier process",
                self.path.display()
            ),
            Err(error) if error.kind() == ErrorKind::NotFound => {}
            Err(error) => log::error!(
                "failed to remove the stale lock file {}: {error}",
                self.path.display()
            ),
        }
    }

    /// Writes an empty lock file.
    ///
    /// # Errors
    /// When the file cannot be written, naming the path.
    pub fn create(&self) -> anyhow::Result<()> {
        fs::write(&self.path, b"").with_context(|| {
            format!(
                "failed to write the lock file {}: pass a writable path with --lock-file",
                self.path.display()
            )
        })?;
        self.written.store(true, Ordering::SeqCst);
        log::info!("wrote lock file {}", self.path.display());
        Ok(())
    }

    /// Removes the lock file if this process wrote it; a missing file is
    /// not an error.
    pub fn remove(&self) {
        if !self.written.swap(false, Ordering::SeqCst) {
            return;
        }
        match fs::remove_file(&self.path) {
            Ok(()) => log::info!("removed lock file {}", self.path.display()),
            Err(error) if error.kind() == ErrorKind::NotFound => {}
            Err(error) => {
                log::error!(
                    "failed to remove the lock file {}: {error}",
                    self.path.display()
                )
            }
        }
    }
}

#[derive(Serialize)]
struct HealthBody {
    status: &'static str,
}

/// Builds the reply to `GET /_/health`: 200 while the process serves and
/// is not shutting down, also while the model still loads; 503 once
/// shutdown has begun.
pub fn health_reply(phase: Phase) -> Reply {
    let status = match phase {
        Phase::Starting | Phase::Ready => 200,
        Phase::Draining => 503,
    };
    Reply::json(
        status,
        &HealthBody {
            status: phase.name(),
        },
    )
}

/// Builds the reply to `GET /_/ready`: 200 only once the model is loaded
/// and warmed up, 503 while it loads and after shutdown has begun, and 429
/// while `max_inflight` requests are running.
pub fn ready_reply(phase: Phase, admission: &Admission) -> Reply {
    let status = match phase {
        Phase::Ready if admission.at_max_inflight() => 429,
        Phase::Ready => 200,
        Phase::Starting | Phase::Draining => 503,
    };
    let name = if status == 429 { "busy" } else { phase.name() };
    Reply::json(status, &HealthBody { status: name })
}

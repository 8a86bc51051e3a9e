//! The state every worker shares: settings, the compute pool, the model
//! once it is ready, and the life-cycle phase.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use data::Cifar10;
use model::Network;
use rayon::ThreadPool;

use crate::cli::Mode;
use crate::fetch::DataPlan;
use crate::function::LockFile;

/// Resolved settings of one `serve` run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Function or server mode.
    pub mode: Mode,
    /// Compute threads and HTTP worker threads.
    pub threads: usize,
    /// Address to bind, port 0 allowed.
    pub bind: SocketAddr,
    /// Checkpoint to load, or `None` to train.
    pub model: Option<PathBuf>,
    /// Dataset folder or archive, and whether to download it first.
    pub data: Option<DataPlan>,
    /// Folder to unpack a dataset archive into, instead of next to it.
    pub unpack_dir: Option<PathBuf>,
    /// Training epochs when no checkpoint is given.
    pub epochs: usize,
    /// Training seed.
    pub seed: u64,
    /// Path to save a trained checkpoint to.
    pub save: Option<PathBuf>,
    /// Lock file path, used in function mode only.
    pub lock_file: PathBuf,
    /// Maximum wait for in-flight requests at shutdown.
    pub drain_timeout: Duration,
    /// Name of the model in the V2 inference API paths.
    pub model_name: String,
}

/// The network and what `GET /` and `POST /predict` need besides it.
pub struct LoadedModel {
    /// The network to run.
    pub network: Network,
    /// The dataset whose test split `GET /` evaluates, if one was given.
    pub dataset: Option<Cifar10>,
    /// Class names in label order.
    pub class_names: Vec<String>,
}

/// Life-cycle phase of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Loading or training the model; health probes return 503.
    Starting,
    /// Serving; health probes return 200.
    Ready,
    /// Shutting down; health probes return 503.
    Draining,
}

impl Phase {
    /// Returns the name used in health bodies.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Ready => "ready",
            Phase::Draining => "draining",
        }
    }
}

/// State shared by the workers, the start-up thread and the shutdown path.
pub struct App {
    /// Resolved settings.
    pub settings: Settings,
    /// The compute pool every model call runs in.
    pub pool: ThreadPool,
    model: OnceLock<LoadedModel>,
    phase: Mutex<Phase>,
    lock_file: Option<LockFile>,
    next_request_id: AtomicU64,
}

impl App {
    /// Creates the state in phase [`Phase::Starting`], without a model.
    pub fn new(settings: Settings, pool: ThreadPool) -> Self {
        let lock_file = match settings.mode {
            Mode::Function => Some(LockFile::new(settings.lock_file.clone())),
            Mode::Server => None,
        };
        Self {
            settings,
            pool,
            model: OnceLock::new(),
            phase: Mutex::new(Phase::Starting),
            lock_file,
            next_request_id: AtomicU64::new(1),
        }
    }

    /// Returns the current phase.
    pub fn phase(&self) -> Phase {
        *self.lock_phase()
    }

    /// Returns the model while the server is ready, `None` before and during shutdown.
    pub fn ready_model(&self) -> Option<&LoadedModel> {
        match self.phase() {
            Phase::Ready => self.model.get(),
            Phase::Starting | Phase::Draining => None,
        }
    }

    /// Stores the model, writes the lock file in function mode and moves to
    /// [`Phase::Ready`], unless shutdown has begun.
    ///
    /// # Errors
    /// When the lock file cannot be written.
    pub fn make_ready(&self, model: LoadedModel) -> anyhow::Result<bool> {
        let mut phase = self.lock_phase();
        if *phase != Phase::Starting {
            return Ok(false);
        }
        // A second call finds the phase already Ready and returns above.
        let _ = self.model.set(model);
        if let Some(lock_file) = &self.lock_file {
            lock_file.create()?;
        }
        *phase = Phase::Ready;
        Ok(true)
    }

    /// Removes a lock file that an earlier process left behind, in function
    /// mode.
    pub fn clear_stale_lock(&self) {
        if let Some(lock_file) = &self.lock_file {
            lock_file.clear_stale();
        }
    }

    /// Moves to [`Phase::Draining`] and removes the lock file in function mode.
    pub fn begin_draining(&self) {
        let mut phase = self.lock_phase();
        *phase = Phase::Draining;
        if let Some(lock_file) = &self.lock_file {
            lock_file.remove();
        }
    }

    /// True once shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.phase() == Phase::Draining
    }

    /// Returns a new id for log lines about one request.
    pub fn next_request_id(&self) -> u64 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed)
    }

    fn lock_phase(&self) -> MutexGuard<'_, Phase> {
        // The guarded value is a plain enum, so a poisoned lock still holds a valid phase.
        self.phase
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

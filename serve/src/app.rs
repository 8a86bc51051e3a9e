//! The state every worker shares: settings, the compute pool, the model
//! once it is ready, and the life-cycle phase.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use data::Cifar10;
use model::Network;
use rayon::ThreadPool;

use crate::admission::Admission;
use crate::batcher::{BatchLimits, BatchObserver, Batcher};
use crate::cli::Mode;
use crate::fetch::DataPlan;
use crate::function::LockFile;
use crate::metrics::Metrics;

/// Resolved settings of one `serve` run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Function or server mode.
    pub mode: Mode,
    /// Compute threads and HTTP worker threads.
    pub threads: usize,
    /// Address to bind, port 0 allowed.
    pub bind: SocketAddr,
    /// Checkpoint to load, or `None` to train or use the built-in model.
    pub model: Option<PathBuf>,
    /// Serve the model built into the binary ([`crate::builtin`]), because
    /// no checkpoint, dataset, download or training option was given.
    pub builtin_model: bool,
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
    /// Maximum wait for in-flight requests at shutdown (`write_timeout`).
    pub drain_timeout: Duration,
    /// Longest time to receive one request (`read_timeout`).
    pub read_timeout: Duration,
    /// Longest time to send one response (`write_timeout`).
    pub write_timeout: Duration,
    /// Maximum client connections open at once.
    pub max_connections: usize,
    /// Time limit of one model request, `None` for no limit (`exec_timeout`).
    pub exec_timeout: Option<Duration>,
    /// Time between SIGTERM and the start of the drain, during which health
    /// probes fail but requests are still served (`healthcheck_interval`).
    pub healthcheck_interval: Duration,
    /// Most model requests at once (`max_inflight`), `None` for no limit
    /// beyond the queue.
    pub max_inflight: Option<usize>,
    /// Model requests that may wait for a busy compute worker.
    pub max_queue: usize,
    /// True to write no lock file (`suppress_lock`).
    pub suppress_lock: bool,
    /// True to append the `X-Call-Id` to access log lines (`log_callid`).
    pub log_callid: bool,
    /// Limits of one prediction batch.
    pub batch: BatchLimits,
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
    /// Loading or training the model: `/_/ready` returns 503.
    Starting,
    /// Serving: both probes return 200.
    Ready,
    /// Shutting down: both probes return 503, but requests are still
    /// served until the drain ends.
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
    /// The count of model requests in flight and its limit.
    pub admission: Arc<Admission>,
    /// The queue that batches concurrent predictions.
    pub batcher: Batcher,
    /// The series `GET /metrics` exports.
    pub metrics: Arc<Metrics>,
    model: OnceLock<LoadedModel>,
    phase: Mutex<Phase>,
    lock_file: Option<LockFile>,
    next_request_id: AtomicU64,
}

impl App {
    /// Creates the state in phase [`Phase::Starting`], without a model.
    pub fn new(settings: Settings, pool: ThreadPool) -> Self {
        let lock_file = match settings.mode {
            Mode::Function if !settings.suppress_lock => {
                Some(LockFile::new(settings.lock_file.clone()))
            }
            Mode::Function | Mode::Server => None,
        };
        let admission = Arc::new(Admission::new(
            settings.threads,
            settings.max_queue,
            settings.max_inflight,
        ));
        let metrics = Arc::new(Metrics::new(settings.mode));
        let observed = Arc::clone(&metrics);
        let observer: BatchObserver = Box::new(move |images, elapsed| {
            observed.observe_batch(images);
            observed.observe_inference(elapsed);
        });
        let batcher = Batcher::new(settings.batch, Some(observer));
        Self {
            settings,
            pool,
            admission,
            batcher,
            metrics,
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

    /// Returns the model once it is ready, also while draining, so that
    /// requests accepted before the drain ends are still answered.
    pub fn ready_model(&self) -> Option<&LoadedModel> {
        self.model.get()
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
        if let Some(lock_file) = &self.lock_file {
            lock_file.create()?;
        }
        // A second call finds the phase already Ready and returns above.
        let _ = self.model.set(model);
        *phase = Phase::Ready;
        self.metrics.set_model_ready(true);
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
        self.metrics.set_model_ready(false);
        if let Some(lock_file) = &self.lock_file {
            lock_file.remove();
        }
    }

    /// True while the model is loaded and shutdown has not begun, when
    /// readiness probes succeed.
    pub fn is_ready(&self) -> bool {
        self.phase() == Phase::Ready
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

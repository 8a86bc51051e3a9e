//! Batching of concurrent predictions into one forward pass.
//!
//! Compute workers submit the images of each request here with a
//! completion that sends its response, and go on to the next request.
//! Batch runners take whatever has queued, up to `max_batch` images, run it
//! through the network at once and call each completion, because one pass
//! over many images keeps every compute thread busy and reuses the packed
//! weights, where many one-image passes do not. A runner waits for more
//! images only while another prediction request is being read or decoded,
//! and then at most `max_wait`, so a lone request never waits.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use model::CLASSES;

use crate::app::App;

/// One row of class probabilities per image.
pub type Rows = Vec<[f32; CLASSES]>;

/// Images of one request in CIFAR layout (`n * 3072` values).
#[derive(Debug, Clone, PartialEq)]
pub enum Pixels {
    /// Bytes, as raw uploads and decoded images give them.
    Bytes(Vec<u8>),
    /// Values on the 0..=255 scale, as FP32 tensors give them.
    Floats(Vec<f32>),
}

impl Pixels {
    fn len(&self) -> usize {
        match self {
            Pixels::Bytes(bytes) => bytes.len(),
            Pixels::Floats(values) => values.len(),
        }
    }
}

/// Why a prediction has no rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PredictError {
    /// The deadline passed before the rows were ready.
    TimedOut,
    /// The network rejected the input or failed.
    Failed(String),
    /// The batcher has stopped.
    Stopped,
}

/// Limits of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most images in one forward pass; 1 turns batching off.
    pub max_batch: usize,
    /// Longest a runner waits for more images once it has some.
    pub max_wait: Duration,
}

/// Called once with a job's rows or the reason it has none.
pub type Completion = Box<dyn FnOnce(Result<Rows, PredictError>) + Send>;

struct Job {
    pixels: Pixels,
    deadline: Option<Instant>,
    complete: Completion,
}

impl Job {
    fn images(&self) -> usize {
        self.pixels.len() / model::IMAGE_BYTES
    }
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

/// Called with the image count and forward-pass time of every batch run,
/// for metrics.
pub type BatchObserver = Box<dyn Fn(usize, Duration) + Send + Sync>;

/// The queue of predictions and the state the runners share.
pub struct Batcher {
    limits: BatchLimits,
    queue: Mutex<Queue>,
    changed: Condvar,
    /// Prediction requests being read or decoded, which will submit soon.
    announced: AtomicUsize,
    observer: Option<BatchObserver>,
}

impl Batcher {
    /// Creates an empty batcher.
    pub fn new(limits: BatchLimits, observer: Option<BatchObserver>) -> Self {
        Self {
            limits,
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
            announced: AtomicUsize::new(0),
            observer,
        }
    }

    /// Marks one prediction request as on its way, until the returned
    /// guard is dropped, so that a runner with a partial batch waits for it.
    pub fn announce(&self) -> Announcement<'_> {
        self.announced.fetch_add(1, Ordering::AcqRel);
        Announcement { batcher: self }
    }

    /// Queues `pixels`; a runner calls `complete` with their rows once
    /// their batch has run, or with the reason they have none. A job whose
    /// deadline passes while it waits is completed with
    /// [`PredictError::TimedOut`] and never run.
    pub fn submit(&self, pixels: Pixels, deadline: Option<Instant>, complete: Completion) {
        // One bad job must not fail the others in its batch.
        if pixels.len() == 0 || pixels.len() % model::IMAGE_BYTES != 0 {
            complete(Err(PredictError::Failed(format!(
                "{} pixel values are not a whole number of {}-value images",
                pixels.len(),
                model::IMAGE_BYTES
            ))));
            return;
        }
        let mut queue = self.lock();
        if queue.closed {
            drop(queue);
            complete(Err(PredictError::Stopped));
            return;
        }
        queue.jobs.push_back(Job {
            pixels,
            deadline,
            complete,
        });
        drop(queue);
        self.changed.notify_all();
    }

    /// Stops the runners once the queue is empty.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Jobs are plain data, so a poisoned lock still holds a valid queue.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes the next batch, or `None` once closed and empty.
    fn next_batch(&self) -> Option<Vec<Job>> {
        let mut queue = self.lock();
        while queue.jobs.is_empty() {
            if queue.closed {
                return None;
            }
            queue = self
                .changed
                .wait(queue)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }

        let mut batch = Vec::new();
        let mut images = 0;
        let wait_until = Instant::now() + self.limits.max_wait;
        loop {
            while let Some(job) = queue.jobs.front() {
                let fits = images == 0 || images + job.images() <= self.limits.max_batch;
                if !fits {
                    return Some(batch);
                }
                images += job.images();
                batch.extend(queue.jobs.pop_front());
            }
            let remaining = wait_until.saturating_duration_since(Instant::now());
            let more_coming = self.announced.load(Ordering::Acquire) > 0;
            if images >= self.limits.max_batch || !more_coming || remaining.is_zero() {
                return Some(batch);
            }
            queue = self
                .changed
                .wait_timeout(queue, remaining)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}

/// A prediction request on its way to [`Batcher::predict`].
pub struct Announcement<'a> {
    batcher: &'a Batcher,
}

impl Drop for Announcement<'_> {
    fn drop(&mut self) {
        self.batcher.announced.fetch_sub(1, Ordering::AcqRel);
        self.batcher.changed.notify_all();
    }
}

/// Starts `count` runners named `batch-0`, `batch-1`, ...
///
/// # Errors
/// When a thread cannot be started.
pub fn spawn_runners(app: &Arc<App>, count: usize) -> anyhow::Result<Vec<JoinHandle<()>>> {
    (0..count)
        .map(|index| {
            let app = app.clone();
            thread::Builder::new()
                .name(format!("batch-{index}"))
                .spawn(move || run(&app))
                .map_err(|error| anyhow::anyhow!("failed to start batch runner {index}: {error}"))
        })
        .collect()
}

fn run(app: &App) {
    while let Some(batch) = app.batcher.next_batch() {
        let now = Instant::now();
        let (expired, live): (Vec<Job>, Vec<Job>) = batch
            .into_iter()
            .partition(|job| job.deadline.is_some_and(|deadline| deadline <= now));
        for job in expired {
            complete(job, Err(PredictError::TimedOut));
        }
        if !live.is_empty() {
            run_batch(app, live);
        }
    }
}

fn run_batch(app: &App, jobs: Vec<Job>) {
    let images: usize = jobs.iter().map(Job::images).sum();
    log::debug!("batch of {images} images from {} requests", jobs.len());
    let started = Instant::now();
    let result = match app.ready_model() {
        Some(loaded) => {
            let pixels: Vec<&Pixels> = jobs.iter().map(|job| &job.pixels).collect();
            let run = || app.pool.install(|| forward(&loaded.network, &pixels));
            panic::catch_unwind(AssertUnwindSafe(run))
                .unwrap_or_else(|_| Err("the forward pass panicked: see the server log".into()))
        }
        None => Err("the model is not loaded yet".to_owned()),
    };
    if let (Ok(_), Some(observe)) = (&result, &app.batcher.observer) {
        observe(images, started.elapsed());
    }
    match result {
        Ok(rows) => {
            let mut rows = rows.into_iter();
            for job in jobs {
                let own: Rows = rows.by_ref().take(job.images()).collect();
                complete(job, Ok(own));
            }
        }
        Err(message) => {
            for job in jobs {
                complete(job, Err(PredictError::Failed(message.clone())));
            }
        }
    }
}

/// Calls a job's completion. A completion that panics loses only its own
/// reply (the HTTP library then sends 500), never the runner thread.
fn complete(job: Job, result: Result<Rows, PredictError>) {
    let call = AssertUnwindSafe(move || (job.complete)(result));
    if panic::catch_unwind(call).is_err() {
        log::error!("a prediction's reply panicked while being built");
    }
}

/// Runs every job's images in one pass: bytes alone when all jobs sent
/// bytes, else all as `f32` values, which give the same rows for bytes.
fn forward(network: &model::Network, jobs: &[&Pixels]) -> Result<Rows, String> {
    let all_bytes = jobs.iter().all(|pixels| matches!(pixels, Pixels::Bytes(_)));
    let result = if all_bytes {
        let mut bytes = Vec::new();
        for pixels in jobs {
            if let Pixels::Bytes(own) = pixels {
                bytes.extend_from_slice(own);
            }
        }
        network.predict(&bytes)
    } else {
        let mut values = Vec::new();
        for pixels in jobs {
            match pixels {
                Pixels::Bytes(own) => values.extend(own.iter().map(|&byte| f32::from(byte))),
                Pixels::Floats(own) => values.extend_from_slice(own),
            }
        }
        network.predict_pixels(&values)
    };
    result.map_err(|error| error.to_string())
}

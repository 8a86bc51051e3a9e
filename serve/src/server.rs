//! HTTP worker threads.
//!
//! One dispatcher thread takes each request from tiny_http. It answers the
//! cheap routes (probes, metadata, errors) itself, so they never wait
//! behind model compute, and hands each model request to a bounded queue in
//! front of the compute workers, or answers 429 when admission control is
//! full. Each compute worker handles one model request at a time.

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tiny_http::Server;

use crate::admission::{Permit, Rejection};
use crate::app::App;
use crate::batcher::{PredictError, Rows};
use crate::http::{self, Exchange, Reply};
use crate::metrics::InFlightRequest;
use crate::routes::{self, Outcome};
use crate::watchdog;
use crate::Event;

/// What a handler needs to know about the request besides its contents.
pub struct RequestContext {
    /// Id of the request in log lines: the `X-Request-Id` header, or a
    /// process-wide counter.
    pub id: String,
    /// The `X-Call-Id` header that the OpenFaaS gateway sets, echoed back.
    pub call_id: Option<String>,
    /// When the dispatcher received the request.
    pub received: Instant,
    /// When the request must be answered by, from `exec_timeout` and `X-Timeout`.
    pub deadline: Option<Instant>,
    /// The time limit behind `deadline`.
    pub timeout: Option<Duration>,
    /// The request's place in the request metrics, recorded when it is answered.
    in_flight: InFlightRequest,
}

impl RequestContext {
    /// True once the deadline has passed.
    pub fn expired(&self) -> bool {
        self.deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
    }
}

/// A model request waiting for a compute worker.
struct Job {
    exchange: Exchange,
    context: RequestContext,
    _permit: Permit,
}

/// The threads that take requests, and a way to stop them.
pub struct Workers {
    dispatcher: JoinHandle<()>,
    compute: Vec<JoinHandle<()>>,
}

impl Workers {
    /// True once every thread has returned.
    pub fn finished(&self) -> bool {
        self.dispatcher.is_finished() && self.compute.iter().all(JoinHandle::is_finished)
    }

    /// Number of compute workers still running.
    pub fn busy_compute(&self) -> usize {
        self.compute
            .iter()
            .filter(|worker| !worker.is_finished())
            .count()
    }
}

/// Starts the dispatcher `http-dispatch` and `threads` compute workers
/// named `http-0`, `http-1`, ...
///
/// # Errors
/// When a thread cannot be started.
pub fn spawn_workers(
    app: &Arc<App>,
    server: &Arc<Server>,
    threads: usize,
    events: &Sender<Event>,
) -> anyhow::Result<Workers> {
    // Admission bounds the jobs in flight, so the queue never holds more.
    let (jobs, queue) = mpsc::sync_channel::<Job>(app.admission.limit());
    let queue = Arc::new(Mutex::new(queue));
    let compute = (0..threads)
        .map(|index| {
            let (app, queue) = (app.clone(), queue.clone());
            thread::Builder::new()
                .name(format!("http-{index}"))
                .spawn(move || run_compute(&app, &queue))
                .map_err(|error| anyhow::anyhow!("failed to start HTTP worker {index}: {error}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    let (app, server, events) = (app.clone(), server.clone(), events.clone());
    let dispatcher = thread::Builder::new()
        .name("http-dispatch".into())
        .spawn(move || run_dispatcher(&app, &server, &jobs, &events))
        .map_err(|error| anyhow::anyhow!("failed to start the HTTP dispatcher: {error}"))?;
    Ok(Workers {
        dispatcher,
        compute,
    })
}

fn run_dispatcher(app: &App, server: &Server, jobs: &SyncSender<Job>, events: &Sender<Event>) {
    loop {
        match server.recv() {
            Ok(request) => dispatch(app, request, jobs),
            // `Server::unblock` during shutdown wakes `recv` with an error.
            Err(_) if app.is_draining() => return,
            // tiny_http reports an accept error once and then stops accepting.
            Err(error) => {
                let _ = events.send(Event::ListenerFailed(error.to_string()));
                return;
            }
        }
    }
}

fn dispatch(app: &App, request: tiny_http::Request, jobs: &SyncSender<Job>) {
    let context = request_context(app, &request);
    log::debug!(
        "request {}: {} {}",
        context.id,
        request.method(),
        request.url()
    );
    let mut exchange = Exchange::new(request);
    let needs_model = routes::needs_model(exchange.request());
    if !needs_model {
        // Only model routes defer to the batcher, so this is always a reply.
        let reply = match run_handler(app, &mut exchange, &context) {
            Outcome::Reply(reply) => reply,
            Outcome::Predict(_) => Reply::error(500, "internal error: a probe asked for the model"),
        };
        finish(exchange, reply, context);
        return;
    }

    let permit = match app.admission.try_admit() {
        Ok(permit) => permit,
        Err(rejection) => {
            finish(exchange, rejection_reply(rejection), context);
            return;
        }
    };
    let job = Job {
        exchange,
        context,
        _permit: permit,
    };
    match jobs.try_send(job) {
        Ok(()) => {}
        Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
            let reply = Reply::error(503, "no compute worker is running: retry later");
            finish(job.exchange, reply, job.context);
        }
    }
}

fn request_context(app: &App, request: &tiny_http::Request) -> RequestContext {
    let header = |name: &'static str| {
        request
            .headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_owned())
    };
    let id = header("X-Request-Id").unwrap_or_else(|| app.next_request_id().to_string());
    let timeout =
        watchdog::request_timeout(app.settings.exec_timeout, header("X-Timeout").as_deref());
    let received = Instant::now();
    RequestContext {
        in_flight: app.metrics.start_request(request.method(), request.url()),
        id,
        call_id: header("X-Call-Id"),
        received,
        deadline: timeout.map(|timeout| received + timeout),
        timeout,
    }
}

fn rejection_reply(rejection: Rejection) -> Reply {
    match rejection {
        // The same status and text of-watchdog's concurrency limiter sends.
        Rejection::MaxInflight(max) => Reply::text(
            429,
            format!("Concurrent request limit exceeded. Max concurrent requests: {max}\n"),
        ),
        Rejection::QueueFull { workers, queue } => Reply::error(
            429,
            &format!(
                "server busy: all {workers} compute workers are busy and {queue} requests are \
                 already queued; retry later, or start serve with a larger --max-queue"
            ),
        ),
    }
}

fn run_compute(app: &App, queue: &Mutex<Receiver<Job>>) {
    loop {
        // The receiver is shared; a worker holds the lock only while waiting.
        let job = match queue.lock() {
            Ok(receiver) => receiver.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        // Every sender is gone once the dispatcher returns: the drain is over.
        let Ok(job) = job else { return };
        run_job(app, job);
    }
}

/// Handles one model request. A prediction goes to the batcher with a
/// completion that sends its reply, so this worker can take the next
/// request while the batch runs.
fn run_job(app: &App, mut job: Job) {
    if job.context.expired() {
        let reply = routes::timed_out(&job.context);
        finish(job.exchange, reply, job.context);
        return;
    }
    let announcement = app.batcher.announce();
    let outcome = run_handler(app, &mut job.exchange, &job.context);
    let Job {
        exchange,
        context,
        _permit: permit,
    } = job;
    let prediction = match outcome {
        Outcome::Reply(reply) => {
            // Freed first, so that a client that has its response can be admitted again.
            drop(permit);
            finish(exchange, reply, context);
            return;
        }
        Outcome::Predict(prediction) => prediction,
    };
    let deadline = context.deadline;
    let complete = Box::new(move |result: Result<Rows, PredictError>| {
        let reply = match result {
            // Rows that arrive after the deadline are late all the same.
            Ok(_) if context.expired() => routes::timed_out(&context),
            Ok(rows) => (prediction.respond)(rows),
            Err(error) => routes::predict_error_reply(&error, &context),
        };
        drop(permit);
        finish(exchange, reply, context);
    });
    app.batcher.submit(prediction.pixels, deadline, complete);
    drop(announcement);
}

fn run_handler(app: &App, exchange: &mut Exchange, context: &RequestContext) -> Outcome {
    panic::catch_unwind(AssertUnwindSafe(|| routes::handle(app, exchange, context))).unwrap_or_else(
        |_| {
            log::error!("request {}: the handler panicked", context.id);
            Reply::error(
                500,
                "internal error while handling the request: see the server log",
            )
            .into()
        },
    )
}

/// Adds the headers every response carries, logs an error reply, and sends it.
fn finish(exchange: Exchange, reply: Reply, context: RequestContext) {
    let mut reply = reply
        .header(
            "X-Duration-Seconds",
            format!("{:.6}", context.received.elapsed().as_secs_f64()),
        )
        .header("X-Request-Id", context.id.clone());
    if let Some(call_id) = &context.call_id {
        reply = reply.header("X-Call-Id", call_id.clone());
    }
    if reply.status >= 400 {
        let request = exchange.request();
        let call = context
            .call_id
            .as_deref()
            .map(|id| format!(" (call {id})"))
            .unwrap_or_default();
        log::info!(
            "request {}{call}: {} {} -> {}",
            context.id,
            request.method(),
            request.url(),
            reply.status
        );
    }
    // Recorded before sending, so that a client that has its response
    // never finds its own request still counted as in flight.
    context.in_flight.finish(reply.status);
    http::send(exchange, reply, &context.id);
}

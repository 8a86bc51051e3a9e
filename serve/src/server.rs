//! HTTP worker threads: each loops on `Server::recv` and handles one request
//! at a time, running model compute inside the shared pool.

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use tiny_http::Server;

use crate::app::App;
use crate::http::{self, Exchange, Reply};
use crate::routes;
use crate::Event;

/// Starts `count` workers named `http-0`, `http-1`, ...
///
/// # Errors
/// When a thread cannot be started.
pub fn spawn_workers(
    app: &Arc<App>,
    server: &Arc<Server>,
    count: usize,
    events: &Sender<Event>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    (0..count)
        .map(|index| {
            let (app, server, events) = (app.clone(), server.clone(), events.clone());
            thread::Builder::new()
                .name(format!("http-{index}"))
                .spawn(move || run_worker(&app, &server, &events))
                .map_err(|error| anyhow::anyhow!("failed to start HTTP worker {index}: {error}"))
        })
        .collect()
}

fn run_worker(app: &App, server: &Server, events: &Sender<Event>) {
    loop {
        match server.recv() {
            Ok(request) => handle(app, request),
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

fn handle(app: &App, request: tiny_http::Request) {
    let id = app.next_request_id();
    log::debug!("request {id}: {} {}", request.method(), request.url());
    let in_flight = app.metrics.start_request(request.method(), request.url());
    let mut exchange = Exchange::new(request);

    let reply = panic::catch_unwind(AssertUnwindSafe(|| routes::handle(app, &mut exchange)))
        .unwrap_or_else(|_| {
            log::error!("request {id}: the handler panicked");
            Reply::error(
                500,
                "internal error while handling the request: see the server log",
            )
        });

    if reply.status >= 400 {
        let request = exchange.request();
        log::info!(
            "request {id}: {} {} -> {}",
            request.method(),
            request.url(),
            reply.status
        );
    }
    let status = reply.status;
    http::send(exchange, reply, id);
    // NOTE: a reply whose request body is drained on a helper thread may
    // still be in transit here, so its duration can be shorter than the
    // time to send it.
    in_flight.finish(status);
}

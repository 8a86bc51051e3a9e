//! Graceful shutdown: SIGTERM and SIGINT, an interval in which the health
//! probes fail but requests are served, then a bounded wait for the
//! requests already taken.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use signal_hook::consts::signal::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tiny_http::Server;

use crate::app::App;
use crate::front::FrontEnd;
use crate::server::Workers;
use crate::{plural, Event};

/// Forwards each SIGTERM and SIGINT to `events`.
///
/// # Errors
/// When the handlers cannot be installed.
pub fn watch_signals(events: Sender<Event>) -> anyhow::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])
        .context("failed to install the SIGTERM and SIGINT handlers")?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if events.send(Event::Signal(signal_name(signal))).is_err() {
                    return;
                }
            }
        })
        .context("failed to start the signal thread")?;
    Ok(())
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        _ => "a signal",
    }
}

/// Shuts down in the order of of-watchdog: fail the health probes and
/// remove the lock file, keep serving for `healthcheck_interval` so that
/// the orchestrator stops sending traffic, then stop taking requests and
/// wait up to the drain timeout (`write_timeout`) for those in flight.
///
/// A second signal during the interval starts the drain at once. The
/// front end then stops accepting, closes idle connections and answers a
/// request that arrives later with 503. Every request it has already
/// passed to the HTTP library is answered before the dispatcher stops.
pub fn stop(
    app: &App,
    server: &Server,
    workers: &Workers,
    front_end: &FrontEnd,
    events: &Receiver<Event>,
) {
    app.begin_draining();
    keep_serving(app.settings.healthcheck_interval, events);

    log::info!(
        "no new requests taken; draining {}",
        plural(app.admission.in_flight(), "request")
    );
    let timeout = app.settings.drain_timeout;
    let deadline = Instant::now() + timeout;
    front_end.stop_accepting();
    if !front_end.wait_for_answers(deadline) {
        log::warn!("requests passed to the HTTP library are still unanswered at the deadline");
    }
    server.unblock();
    // Predictions finish on the batch runners after their worker moved on,
    // so the drain also waits for every admitted request to be answered.
    let drained = || workers.finished() && app.admission.in_flight() == 0;
    while !drained() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    app.batcher.close();

    if drained() {
        log::info!("all workers finished their requests");
    } else {
        log::warn!(
            "{} and {} still busy after {:.1} s (write_timeout); exiting anyway",
            plural(workers.busy_compute(), "worker"),
            plural(app.admission.in_flight(), "request"),
            timeout.as_secs_f64()
        );
    }
}

fn keep_serving(interval: Duration, events: &Receiver<Event>) {
    if interval.is_zero() {
        return;
    }
    log::info!(
        "health probes now fail; serving for {:.1} s more (healthcheck_interval) before draining",
        interval.as_secs_f64()
    );
    let deadline = Instant::now() + interval;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return;
        }
        match events.recv_timeout(remaining) {
            Ok(Event::Signal(name)) => {
                log::info!("received {name} again: draining now");
                return;
            }
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => return,
            // No sender left means no signal can arrive: wait out the interval.
            Err(RecvTimeoutError::Disconnected) => {
                thread::sleep(remaining);
                return;
            }
        }
    }
}

//! Graceful shutdown: SIGTERM and SIGINT, then a bounded wait for the
//! requests already taken by the workers.

use std::sync::mpsc::Sender;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::Context;
use signal_hook::consts::signal::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tiny_http::Server;

use crate::app::App;
use crate::Event;

/// Default wait for in-flight requests when `write_timeout` is not set.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Stops taking requests and waits up to the drain timeout for the workers
/// to finish the requests they hold.
///
/// Health probes return 503 and the lock file is gone from the first step.
/// Requests still queued in tiny_http behind the stop markers are not served.
pub fn stop(app: &App, server: &Server, workers: Vec<JoinHandle<()>>) {
    app.begin_draining();
    for _ in &workers {
        server.unblock();
    }

    let timeout = app.settings.drain_timeout;
    let deadline = Instant::now() + timeout;
    while workers.iter().any(|worker| !worker.is_finished()) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }

    let busy = workers
        .iter()
        .filter(|worker| !worker.is_finished())
        .count();
    if busy == 0 {
        log::info!("all workers finished their requests");
    } else {
        log::warn!(
            "{busy} workers still busy after {:.1} s (write_timeout); exiting anyway",
            timeout.as_secs_f64()
        );
    }
}

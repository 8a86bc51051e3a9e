//! The cifaas server: one binary that runs as an OpenFaaS function or as an
//! always-on server, and serves the CIFAR-10 network over HTTP.
//!
//! The listener comes up first, so that health probes get 503 while the
//! model loads or trains on a background thread. Then one warm-up inference
//! runs and the server becomes ready.
#![forbid(unsafe_code)]

pub mod admission;
pub mod app;
pub mod batcher;
pub mod builtin;
pub mod charts;
pub mod cli;
pub mod cpu;
pub mod decode;
pub mod duration;
pub mod fetch;
pub mod front;
pub mod function;
pub mod http;
pub mod metrics;
pub mod predict;
pub mod recipe;
pub mod routes;
pub mod server;
pub mod shutdown;
pub mod startup;
pub mod threads;
pub mod v2;
pub mod watchdog;

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use tiny_http::Server;

use crate::app::{App, Settings};
use crate::cli::{Bind, Cli, Mode};

/// Exit code for invalid options and unreadable inputs.
pub const USAGE_EXIT_CODE: u8 = 2;

/// An error caused by an option or input file, which exits with code 2.
#[derive(Debug)]
pub struct UsageError(String);

impl UsageError {
    /// Wraps a message that names the value and the fix.
    pub fn new(message: String) -> Self {
        Self(message)
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Maps an error returned by [`run`] to the exit code: 2 for a [`UsageError`], else 1.
pub fn exit_code_for(error: &anyhow::Error) -> ExitCode {
    if error.chain().any(|cause| cause.is::<UsageError>()) {
        ExitCode::from(USAGE_EXIT_CODE)
    } else {
        ExitCode::FAILURE
    }
}

/// Event the main thread waits for once the server is listening.
#[derive(Debug)]
pub enum Event {
    /// The model is ready and, in function mode, the lock file is written.
    Ready,
    /// Loading or training failed.
    StartupFailed(anyhow::Error),
    /// A shutdown signal arrived.
    Signal(&'static str),
    /// The acceptor of the public listener, or tiny_http's accept thread
    /// on the internal socket, stopped with this error.
    ListenerFailed(String),
}

/// Resolves the settings from the options and the environment.
///
/// # Errors
/// A [`UsageError`] for an invalid `port`, a model file that cannot be
/// read, a `--save` or `--lock-file` path in a folder that cannot be
/// written, or no dataset to train on (see [`fetch::plan_data`]).
pub fn resolve_settings(cli: Cli) -> anyhow::Result<Settings> {
    let bind = resolve_bind(cli.bind, cli.mode, std::env::var("port").ok())?;
    if let Some(path) = &cli.model {
        std::fs::File::open(path).map_err(|error| {
            UsageError::new(format!(
                "cannot read the model {}: {error}; pass an existing checkpoint with --model",
                path.display()
            ))
        })?;
    }
    if let Some(path) = &cli.save {
        check_writable(path, "--save")?;
    }
    if cli.mode == Mode::Function {
        check_writable(&cli.lock_file, "--lock-file")?;
    }
    // Nothing to load and nothing to train from: serve the built-in model.
    let builtin_model = cli.model.is_none()
        && cli.data.is_none()
        && !cli.download.download
        && cli.epochs.is_none()
        && cli.save.is_none();
    let need = if cli.model.is_some() || builtin_model {
        fetch::Need::ServeTestSet
    } else {
        fetch::Need::ServeTrain
    };
    let data = fetch::plan_data(
        cli.data.as_deref(),
        cli.download.download,
        &cli.download.source(),
        need,
    )?;
    let env = watchdog_env(cli.mode);
    let healthcheck_interval = match (cli.healthcheck_interval, cli.mode) {
        (Some(interval), _) => interval,
        (None, Mode::Function) => env.healthcheck_interval,
        (None, Mode::Server) => Duration::ZERO,
    };
    let exec_timeout = match cli.exec_timeout {
        Some(timeout) => (!timeout.is_zero()).then_some(timeout),
        None => env.exec_timeout,
    };
    let max_inflight = match cli.max_inflight {
        Some(0) => None,
        Some(max) => Some(max),
        None => env.max_inflight,
    };

    Ok(Settings {
        mode: cli.mode,
        threads: threads::resolve_threads(cli.threads),
        bind,
        epochs: cli.epochs(),
        model: cli.model,
        builtin_model,
        data,
        unpack_dir: cli.unpack_dir,
        seed: cli.seed,
        save: cli.save,
        lock_file: cli.lock_file,
        drain_timeout: env.write_timeout,
        read_timeout: env.read_timeout,
        write_timeout: env.write_timeout,
        max_connections: cli.max_connections,
        exec_timeout,
        healthcheck_interval,
        max_inflight,
        max_queue: cli.max_queue,
        suppress_lock: env.suppress_lock,
        log_callid: env.log_callid,
        batch: batcher::BatchLimits {
            max_batch: cli.max_batch,
            max_wait: cli.batch_wait,
        },
        model_name: cli.model_name,
    })
}

/// Reads of-watchdog's variables, logging each invalid one. Function mode
/// and server mode both take them; options given on the command line win.
fn watchdog_env(mode: Mode) -> watchdog::WatchdogEnv {
    let (env, warnings) = watchdog::WatchdogEnv::from_env();
    for warning in warnings {
        log::warn!("{warning}");
    }
    if mode == Mode::Server && env.suppress_lock {
        log::debug!("suppress_lock has no effect in server mode, which writes no lock file");
    }
    env
}

/// Resolves the listen address: `--bind`, with the mode's default port when
/// it names only an IP. Function mode takes `port_variable` (default 8080),
/// server mode port 5000.
///
/// # Errors
/// A [`UsageError`] for an unparsable `port` value.
pub fn resolve_bind(
    bind: Option<Bind>,
    mode: Mode,
    port_variable: Option<String>,
) -> anyhow::Result<SocketAddr> {
    let default_port = || -> anyhow::Result<u16> {
        match (mode, port_variable) {
            (Mode::Function, Some(value)) => Ok(cli::parse_port(&value).map_err(UsageError::new)?),
            (Mode::Function, None) => Ok(8080),
            (Mode::Server, _) => Ok(5000),
        }
    };
    Ok(match (bind, mode) {
        (Some(Bind::Address(address)), _) => address,
        (Some(Bind::Host(ip)), _) => SocketAddr::new(ip, default_port()?),
        (None, Mode::Function) => SocketAddr::from(([0, 0, 0, 0], default_port()?)),
        (None, Mode::Server) => SocketAddr::from(([127, 0, 0, 1], default_port()?)),
    })
}

/// Runs the server until a signal stops it or start-up fails.
///
/// # Errors
/// Invalid settings (see [`exit_code_for`]), a failed bind, a failed
/// start-up, or a listener that stopped accepting.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let settings = resolve_settings(cli)?;
    let (mode, threads, bind) = (settings.mode, settings.threads, settings.bind);
    let pool = threads::build_pool(threads)?;

    let listener = TcpListener::bind(bind).map_err(|error| {
        UsageError::new(format!(
            "failed to listen on {bind}: {error}; choose another address with --bind"
        ))
    })?;
    let local = listener
        .local_addr()
        .context("failed to read the bound address")?;
    // The library listens on a private Unix socket, behind the front end.
    let socket_dir = front::SocketDir::create()?;
    let internal = UnixListener::bind(socket_dir.socket()).with_context(|| {
        format!(
            "failed to listen on the internal socket {}",
            socket_dir.socket().display()
        )
    })?;
    let server = Server::from_listener(internal, None)
        .map_err(|error| anyhow::anyhow!("failed to start the HTTP server: {error}"))?;
    let server = Arc::new(server);
    log::info!(
        "listening on {local} (mode {}, {})",
        mode.name(),
        plural(threads, "thread")
    );

    let app = Arc::new(App::new(settings, pool));
    app.clear_stale_lock();
    let (events, received) = mpsc::channel();
    let workers = server::spawn_workers(&app, &server, threads, &events)?;
    batcher::spawn_runners(&app, threads)?;
    let limits = front::Limits {
        read_timeout: app.settings.read_timeout,
        write_timeout: app.settings.write_timeout,
        max_connections: app.settings.max_connections,
    };
    let front_end = front::FrontEnd::start(
        &app,
        listener,
        socket_dir.socket().to_owned(),
        limits,
        events.clone(),
    )?;
    shutdown::watch_signals(events.clone())?;
    spawn_startup(&app, events)?;

    let outcome = wait_for_stop(&received, started);
    shutdown::stop(&app, &server, &workers, &front_end, &received);
    match outcome {
        Ok(()) => {
            log::info!("stopped");
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => Err(error),
    }
}

fn spawn_startup(app: &Arc<App>, events: mpsc::Sender<Event>) -> anyhow::Result<()> {
    let app = app.clone();
    thread::Builder::new()
        .name("startup".into())
        .spawn(move || {
            let started = Instant::now();
            let event = match startup::prepare(&app).and_then(|model| app.make_ready(model)) {
                Ok(ready) => {
                    if ready {
                        app.metrics.set_model_load_time(started.elapsed());
                    }
                    Event::Ready
                }
                Err(error) => Event::StartupFailed(error),
            };
            let _ = events.send(event);
        })
        .context("failed to start the start-up thread")?;
    Ok(())
}

fn wait_for_stop(events: &Receiver<Event>, started: Instant) -> anyhow::Result<()> {
    loop {
        let Ok(event) = events.recv() else {
            anyhow::bail!("every event sender closed unexpectedly");
        };
        match event {
            Event::Ready => log::info!("ready after {:.2} s", started.elapsed().as_secs_f64()),
            Event::StartupFailed(error) => return Err(error.context("start-up failed")),
            Event::Signal(name) => {
                log::info!("received {name}: shutting down");
                return Ok(());
            }
            Event::ListenerFailed(reason) => {
                anyhow::bail!("the HTTP listener stopped accepting connections: {reason}")
            }
        }
    }
}

/// Joins an error and its causes with ": ", leaving out a cause whose text
/// the message already contains, because several library errors repeat
/// their source's text in their own message.
pub fn describe_error(error: &anyhow::Error) -> String {
    let mut message = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

/// Fails unless a file can be created in the folder of `path`, so that a
/// long run does not end by failing to write its result. `option` names
/// the command-line option that gave the path.
///
/// # Errors
/// A [`UsageError`] naming the path, the option and the reason.
pub fn check_writable(path: &Path, option: &str) -> anyhow::Result<()> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let probe = folder.join(format!(".cifaas-write-check.{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(error) => Err(UsageError::new(format!(
            "cannot write {} ({option}): {error} in folder {}; pass a path in an existing, \
             writable folder",
            path.display(),
            folder.display()
        ))
        .into()),
    }
}

/// Formats a count with its noun, adding an "s" unless the count is 1.
pub fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("{count} {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn describe_error_skips_repeated_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let error = anyhow::Error::new(io).context("cannot read x: no such file");
        assert_eq!(describe_error(&error), "cannot read x: no such file");
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let error = anyhow::Error::new(io).context("cannot read x");
        assert_eq!(describe_error(&error), "cannot read x: no such file");
    }

    #[test]
    fn check_writable_names_option_and_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_writable(&dir.path().join("m.ckpt"), "--out").is_ok());
        let entries = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(entries, 0, "the check left a file behind");
        let missing = dir.path().join("absent").join("m.ckpt");
        let error = check_writable(&missing, "--save").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("--save"), "{message}");
        assert!(message.contains("absent"), "{message}");
        assert_eq!(exit_code_for(&error), ExitCode::from(USAGE_EXIT_CODE));
    }

    #[test]
    fn plural_adds_s_unless_one() {
        assert_eq!(plural(1, "thread"), "1 thread");
        assert_eq!(plural(2, "thread"), "2 threads");
        assert_eq!(plural(0, "epoch"), "0 epochs");
    }

    #[test]
    fn bind_defaults_per_mode() {
        let function = resolve_bind(None, Mode::Function, None).unwrap();
        assert_eq!(function, address("0.0.0.0:8080"));
        let server = resolve_bind(None, Mode::Server, Some("9000".into())).unwrap();
        assert_eq!(server, address("127.0.0.1:5000"));
    }

    #[test]
    fn bind_port_variable_in_function_mode() {
        let from_variable = resolve_bind(None, Mode::Function, Some("9000".into())).unwrap();
        assert_eq!(from_variable, address("0.0.0.0:9000"));
        let host = Some(Bind::Host("127.0.0.1".parse().unwrap()));
        let with_host = resolve_bind(host, Mode::Function, Some("0".into())).unwrap();
        assert_eq!(with_host, address("127.0.0.1:0"));
        let error = resolve_bind(None, Mode::Function, Some("x".into())).unwrap_err();
        assert!(error
            .to_string()
            .contains("invalid port environment variable 'x'"));
        assert_eq!(exit_code_for(&error), ExitCode::from(USAGE_EXIT_CODE));
    }

    #[test]
    fn bind_full_address_wins() {
        let full = Some(Bind::Address(address("127.0.0.1:0")));
        let resolved = resolve_bind(full, Mode::Function, Some("9000".into())).unwrap();
        assert_eq!(resolved, address("127.0.0.1:0"));
    }
}

//! `serve`: the cifaas model server.
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use cifaas_serve::cli::Cli;
use cifaas_serve::watchdog::WatchdogEnv;

mod healthcheck;

fn main() -> ExitCode {
    if let Err(code) = cifaas_serve::cpu::check_cpu("serve") {
        return code;
    }
    if let Some(code) = healthcheck::dispatch() {
        return code;
    }
    let cli = Cli::parse_checked();
    init_logger();

    match cifaas_serve::run(cli) {
        Ok(code) => code,
        Err(error) => {
            log::error!("{}", cifaas_serve::describe_error(&error));
            cifaas_serve::exit_code_for(&error)
        }
    }
}

/// Logs at `info` unless `RUST_LOG` says otherwise. With `prefix_logs=false`,
/// as for of-watchdog, each line is the bare message, for log collectors
/// that add their own time stamps.
fn init_logger() {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if !WatchdogEnv::from_env().0.prefix_logs {
        builder.format(|buf, record| writeln!(buf, "{}", record.args()));
    }
    builder.init();
}

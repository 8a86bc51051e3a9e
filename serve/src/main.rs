//! `serve`: the cifaas model server.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use cifaas_serve::cli::Cli;

mod healthcheck;

fn main() -> ExitCode {
    if let Err(code) = cifaas_serve::cpu::check_cpu("serve") {
        return code;
    }
    if let Some(code) = healthcheck::dispatch() {
        return code;
    }
    let cli = Cli::parse_checked();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

    match cifaas_serve::run(cli) {
        Ok(code) => code,
        Err(error) => {
            log::error!("{}", cifaas_serve::describe_error(&error));
            cifaas_serve::exit_code_for(&error)
        }
    }
}

//! `serve healthcheck`: an exec health check for container runtimes that
//! exits 0 only while the function-mode lock file exists.
//!
//! A Dockerfile `HEALTHCHECK` in exec form runs this instead of a shell
//! `test -f`, so the image needs no shell. Server mode writes no lock file,
//! so this check reports a server-mode process as unhealthy.

use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cifaas_serve::cli::Cli;
use clap::error::ErrorKind as ClapErrorKind;
use clap::{value_parser, Arg, ArgMatches, Command, CommandFactory};

/// Name of the subcommand on the command line.
pub const SUBCOMMAND: &str = "healthcheck";

/// Lock file the subcommand checks without `--lock-file`, the same default as `serve --lock-file`.
pub const DEFAULT_LOCK_FILE: &str = "/tmp/.lock";

/// Runs `serve healthcheck` when the process arguments ask for it, and
/// prints the help, with the subcommand listed, for `serve --help`.
///
/// Returns `None` for every other command line, which `Cli` then parses
/// as before, so its error messages do not change.
pub fn dispatch() -> Option<ExitCode> {
    dispatch_args(std::env::args_os().collect())
}

fn dispatch_args(args: Vec<OsString>) -> Option<ExitCode> {
    let asks_for_healthcheck = args.get(1).is_some_and(|arg| arg == SUBCOMMAND);
    match command_with_healthcheck().try_get_matches_from(&args) {
        Ok(matches) => {
            let (_, healthcheck) = matches.subcommand()?;
            Some(check_lock_file(&lock_file(healthcheck)))
        }
        Err(error) if is_help_or_version(error.kind()) => Some(print_clap_output(&error)),
        Err(error) if asks_for_healthcheck => Some(print_clap_output(&error)),
        Err(_) => None,
    }
}

/// Builds the `serve` command of [`Cli`] with the `healthcheck` subcommand added.
pub fn command_with_healthcheck() -> Command {
    Cli::command()
        .subcommand(healthcheck_command())
        .subcommand_negates_reqs(true)
        .args_conflicts_with_subcommands(true)
        .disable_help_subcommand(true)
}

fn healthcheck_command() -> Command {
    Command::new(SUBCOMMAND)
        .about("Exit 0 if the function-mode lock file exists, else 1 (for a container HEALTHCHECK)")
        .arg(
            Arg::new("lock_file")
                .long("lock-file")
                .value_name("PATH")
                .value_parser(value_parser!(PathBuf))
                .default_value(DEFAULT_LOCK_FILE)
                .help("Lock file to check, the --lock-file of the running `serve --mode function`"),
        )
}

fn lock_file(matches: &ArgMatches) -> PathBuf {
    matches
        .get_one::<PathBuf>("lock_file")
        .cloned()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_LOCK_FILE))
}

fn is_help_or_version(kind: ClapErrorKind) -> bool {
    matches!(
        kind,
        ClapErrorKind::DisplayHelp
            | ClapErrorKind::DisplayVersion
            | ClapErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    )
}

/// Prints a clap help, version or error message and returns clap's exit
/// code: 0 for help and version, 2 for a usage error.
fn print_clap_output(error: &clap::Error) -> ExitCode {
    let _ = error.print();
    match u8::try_from(error.exit_code()) {
        Ok(code) => ExitCode::from(code),
        Err(_) => ExitCode::FAILURE,
    }
}

/// Returns success when `path` is an existing regular file, and failure
/// with a message on stderr otherwise.
pub fn check_lock_file(path: &Path) -> ExitCode {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() => ExitCode::SUCCESS,
        Ok(_) => {
            eprintln!(
                "unhealthy: the lock file {} is not a regular file",
                path.display()
            );
            ExitCode::FAILURE
        }
        Err(error) if error.kind() == ErrorKind::NotFound => {
            eprintln!(
                "unhealthy: the lock file {} does not exist, so the model is not ready \
                 or the server is shutting down",
                path.display()
            );
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!(
                "unhealthy: failed to read the lock file {}: {error}",
                path.display()
            );
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_lock_file_matches_cli() {
        let command = Cli::command();
        let argument = command
            .get_arguments()
            .find(|argument| argument.get_id() == "lock_file")
            .expect("serve has a --lock-file option");
        let defaults: Vec<_> = argument.get_default_values().iter().collect();
        assert_eq!(defaults, [DEFAULT_LOCK_FILE]);
    }

    #[test]
    fn command_with_healthcheck_is_valid() {
        command_with_healthcheck().debug_assert();
    }

    #[test]
    fn other_command_lines_fall_through() {
        let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(dispatch_args(args(&["serve", "--mode", "server", "--model", "m"])).is_none());
        assert!(dispatch_args(args(&["serve", "--mode", "bogus"])).is_none());
        assert!(dispatch_args(args(&["serve"])).is_none());
    }
}

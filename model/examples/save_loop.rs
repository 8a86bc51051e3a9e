//! Saves two networks in turn to the checkpoint path given as the first
//! argument, until the process is killed. The second argument, 0 or 1,
//! picks the network saved first.
//! `tests/crash_save.rs` kills it at random moments.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

/// Builds the network that `tests/crash_save.rs` expects for `index` 0 or 1.
fn network(index: u64) -> model::Network {
    let stats = data::ChannelStats {
        mean: [0.5, 0.4, 0.3],
        std: [0.2, 0.25, 0.3],
    };
    model::Network::new(index + 1, 0.25, stats).expect("valid network options")
}

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: save_loop CHECKPOINT [FIRST]");
        return ExitCode::from(2);
    };
    let first = match std::env::args().nth(2).as_deref() {
        None | Some("0") => 0,
        Some("1") => 1,
        Some(other) => {
            eprintln!("invalid FIRST '{other}': expected 0 or 1");
            return ExitCode::from(2);
        }
    };
    let networks = [network(0), network(1)];
    for round in first.. {
        if let Err(error) = model::save_checkpoint(&networks[round % 2], &path) {
            eprintln!("failed to save {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

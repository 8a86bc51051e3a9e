//! The programs the experiment compares and the command line of each.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// One side of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// `serve --mode function`.
    Function,
    /// `serve --mode server`.
    Server,
    /// The Flask app with the same network in PyTorch.
    Peer,
}

impl Side {
    /// Returns the name used in file names, the JSON and the table.
    pub fn name(self) -> &'static str {
        match self {
            Side::Function => "function",
            Side::Server => "server",
            Side::Peer => "peer",
        }
    }

    /// Returns the column heading of the table and the legend of the charts.
    pub fn label(self) -> &'static str {
        match self {
            Side::Function => "cifaas function",
            Side::Server => "cifaas server",
            Side::Peer => "Flask + PyTorch",
        }
    }

    /// The path that returns 200 once the model is ready.
    pub fn ready_path(self) -> &'static str {
        "/_/ready"
    }

    /// Returns the checkpoint file name this side writes when it trains from scratch.
    pub fn checkpoint_name(self, cap: usize) -> String {
        match self {
            Side::Peer => format!("peer-cap{cap}.pt"),
            _ => format!("{}-cap{cap}.ckpt", self.name()),
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// The way the model gets ready at start-up.
#[derive(Debug, Clone)]
pub enum Start<'a> {
    /// Train for this many epochs, then save the result to the path.
    Scratch(usize, &'a Path),
    /// Load this checkpoint.
    Checkpoint(&'a Path),
}

/// The executables of the sides and the files they all read.
#[derive(Debug, Clone)]
pub struct Programs {
    /// The `serve` binary.
    pub serve: PathBuf,
    /// The Python interpreter of the peer's virtual environment.
    pub peer_python: PathBuf,
    /// The peer's Flask app.
    pub peer_script: PathBuf,
    /// The folder of the unpacked CIFAR-10 `.bin` files.
    pub data: PathBuf,
    /// Folder for lock files and logs.
    pub out: PathBuf,
}

impl Programs {
    /// Returns the program and arguments that start `side` with `threads` threads on `address`.
    pub fn command(
        &self,
        side: Side,
        threads: usize,
        address: SocketAddr,
        start: &Start,
    ) -> (PathBuf, Vec<String>) {
        let mut arguments: Vec<String> = Vec::new();
        let program = match side {
            Side::Peer => {
                arguments.push(self.peer_script.display().to_string());
                arguments.extend(["--folder".to_owned(), self.data.display().to_string()]);
                arguments.extend(["--port".to_owned(), address.port().to_string()]);
                self.peer_python.clone()
            }
            Side::Function | Side::Server => {
                let lock = self.out.join(format!("{side}.lock"));
                arguments.extend([
                    "--mode".to_owned(),
                    side.name().to_owned(),
                    "--bind".to_owned(),
                    address.to_string(),
                    "--data".to_owned(),
                    self.data.display().to_string(),
                    "--lock-file".to_owned(),
                    lock.display().to_string(),
                    // `ab -s 300` waits 300 s for a response, so the server may take as long.
                    "--exec-timeout".to_owned(),
                    "300s".to_owned(),
                    // Stop at once on SIGTERM: no orchestrator needs the probes to fail first.
                    "--healthcheck-interval".to_owned(),
                    "0s".to_owned(),
                ]);
                self.serve.clone()
            }
        };
        arguments.extend(["--threads".to_owned(), threads.to_string()]);
        match start {
            Start::Scratch(epochs, save) => arguments.extend([
                "--epochs".to_owned(),
                epochs.to_string(),
                "--save".to_owned(),
                save.display().to_string(),
            ]),
            Start::Checkpoint(model) => {
                arguments.extend(["--model".to_owned(), model.display().to_string()]);
            }
        }
        (program, arguments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn programs() -> Programs {
        Programs {
            serve: "serve".into(),
            peer_python: "python".into(),
            peer_script: "peer.py".into(),
            data: "data".into(),
            out: "out".into(),
        }
    }

    #[test]
    fn serve_from_checkpoint() {
        let address: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let model = Path::new("net.ckpt");
        let (program, arguments) =
            programs().command(Side::Function, 2, address, &Start::Checkpoint(model));
        assert_eq!(program, Path::new("serve"));
        let line = arguments.join(" ");
        assert!(
            line.starts_with("--mode function --bind 127.0.0.1:9000 --data data"),
            "{line}"
        );
        assert!(line.ends_with("--threads 2 --model net.ckpt"), "{line}");
    }

    #[test]
    fn peer_from_scratch() {
        let address: SocketAddr = "127.0.0.1:9001".parse().unwrap();
        let save = Path::new("peer.pt");
        let (program, arguments) =
            programs().command(Side::Peer, 1, address, &Start::Scratch(1, save));
        assert_eq!(program, Path::new("python"));
        assert_eq!(
            arguments.join(" "),
            "peer.py --folder data --port 9001 --threads 1 --epochs 1 --save peer.pt"
        );
    }
}

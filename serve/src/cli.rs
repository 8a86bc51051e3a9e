//! Command-line options of `serve` and the value parsers `train` shares.

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, ValueEnum};

use crate::fetch::DownloadSource;

/// Deployment mode of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// OpenFaaS function: lock file, health probes, `port` environment variable.
    Function,
    /// Always-on server on a local address.
    Server,
}

impl Mode {
    /// Returns the name used on the command line and in JSON bodies.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Function => "function",
            Mode::Server => "server",
        }
    }
}

/// Options of the `serve` binary.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "serve",
    version,
    about = "Serve the cifaas CIFAR-10 network over HTTP",
    args_override_self = true
)]
pub struct Cli {
    /// Run as an OpenFaaS `function` or as an always-on `server`.
    #[arg(long, value_enum)]
    pub mode: Mode,

    /// Threads of the compute pool and of the HTTP workers [default: the CPUs this process may use].
    #[arg(long, short = 't', value_name = "N", value_parser = parse_threads, allow_negative_numbers = true)]
    pub threads: Option<usize>,

    /// Address to listen on, IP:PORT, or IP alone for the default port [default: 0.0.0.0:$port (port 8080) in function mode, 127.0.0.1:5000 in server mode].
    #[arg(long, short = 'b', value_name = "ADDR", value_parser = parse_bind)]
    pub bind: Option<Bind>,

    /// Checkpoint to load instead of training.
    #[arg(long, short = 'm', value_name = "FILE")]
    pub model: Option<PathBuf>,

    /// CIFAR-10 folder or .tar.gz: the training set without --model, and the test set for `GET /` [default: the default data folder, $CIFAAS_DATA_DIR, $XDG_DATA_HOME/cifaas or ~/.local/share/cifaas].
    #[arg(long, short = 'd', value_name = "PATH")]
    pub data: Option<PathBuf>,

    /// Dataset download options.
    #[command(flatten)]
    pub download: DownloadArgs,

    /// Folder to unpack a .tar.gz --data archive into [default: next to the archive, or the per-user cache folder when that is read-only].
    #[arg(long, value_name = "DIR")]
    pub unpack_dir: Option<PathBuf>,

    /// Training epochs when no --model is given [default: 1].
    #[arg(long, short = 'e', value_name = "N", value_parser = parse_epochs, conflicts_with = "model", allow_negative_numbers = true)]
    pub epochs: Option<usize>,

    /// Seed of the initial parameters, the shuffle and dropout when training.
    #[arg(
        long,
        value_name = "SEED",
        default_value_t = 0,
        conflicts_with = "model"
    )]
    pub seed: u64,

    /// File to write the trained checkpoint to.
    #[arg(long, value_name = "FILE", conflicts_with = "model")]
    pub save: Option<PathBuf>,

    /// Lock file written once the model is ready in function mode and removed on shutdown.
    #[arg(long, value_name = "PATH", default_value = "/tmp/.lock")]
    pub lock_file: PathBuf,

    /// Time limit of one model request, a Go duration such as 30s; 0 for none; an X-Timeout request header may shorten it [default: $exec_timeout, else 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub exec_timeout: Option<Duration>,

    /// Time between SIGTERM and the start of the drain, in which health probes fail but requests are served [default: $healthcheck_interval, else $write_timeout, else 30s in function mode; 0 in server mode].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub healthcheck_interval: Option<Duration>,

    /// Most model requests at once; more get 429 at once; 0 for no limit beyond --max-queue [default: $max_inflight, else 0].
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub max_inflight: Option<usize>,

    /// Model requests that may wait for a busy compute worker; more get 429 at once.
    #[arg(long, value_name = "N", value_parser = parse_count, default_value_t = DEFAULT_MAX_QUEUE)]
    pub max_queue: usize,

    /// Most images in one forward pass when concurrent predictions are batched; 1 turns batching off.
    #[arg(long, value_name = "N", value_parser = parse_max_batch, default_value_t = DEFAULT_MAX_BATCH)]
    pub max_batch: usize,

    /// Longest a partial batch waits for a prediction request that is still being read, a Go duration.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "2ms")]
    pub batch_wait: Duration,

    /// Most client connections open at once; one more gets 503 and is closed. Lowered to fit the open-files limit.
    #[arg(long, value_name = "N", value_parser = parse_max_connections, default_value_t = crate::front::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Model name in the KServe V2 inference API paths, /v2/models/NAME/...: letters, digits, '_', '.' and '-'.
    #[arg(long, value_name = "NAME", default_value = crate::v2::DEFAULT_MODEL_NAME, value_parser = crate::v2::parse_model_name)]
    pub model_name: String,
}

/// Default of `--max-batch`.
pub const DEFAULT_MAX_BATCH: usize = 64;

/// Parses a batch size of 1 or more.
pub fn parse_max_batch(value: &str) -> Result<usize, String> {
    parse_positive(value, "batch size", "pass 1 or more; 1 turns batching off")
}

/// Parses a connection count of 1 or more.
pub fn parse_max_connections(value: &str) -> Result<usize, String> {
    parse_positive(value, "connection count", "pass 1 or more")
}

/// Default of `--max-queue`.
pub const DEFAULT_MAX_QUEUE: usize = 64;

/// Parses a Go duration such as `30s`, `1m30s` or `250ms`, or whole seconds.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    crate::duration::parse_go_duration(value)
}

/// Parses a count of 0 or more.
pub fn parse_count(value: &str) -> Result<usize, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("invalid count '{value}': expected a whole number, 0 or more"))
}

impl Cli {
    /// Parses `args` (program name first).
    ///
    /// # Errors
    /// A clap error whose `exit()` prints the message and exits with code 2.
    pub fn try_parse_checked<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        Self::try_parse_from(args)
    }

    /// Parses the process arguments, exiting with code 2 on an error.
    pub fn parse_checked() -> Self {
        Self::try_parse_checked(std::env::args_os()).unwrap_or_else(|error| error.exit())
    }

    /// Number of training epochs, 1 unless --epochs was given.
    pub fn epochs(&self) -> usize {
        self.epochs.unwrap_or(1)
    }
}

/// The dataset download options that `serve` and `train` share.
#[derive(Debug, Clone, Args)]
pub struct DownloadArgs {
    /// Download CIFAR-10 into the default data folder when it is not there yet.
    #[arg(long, conflicts_with = "data")]
    pub download: bool,

    /// URL of cifar-10-binary.tar.gz to download from.
    #[arg(long, value_name = "URL", default_value = data::download::DEFAULT_URL)]
    pub data_url: String,

    /// Expected MD5 of the downloaded archive, 32 hexadecimal digits [default: the MD5 published for the official archive].
    #[arg(long, value_name = "HEX", value_parser = data::download::parse_md5)]
    pub data_md5: Option<[u8; 16]>,
}

impl DownloadArgs {
    /// Returns the URL and the MD5 to download.
    pub fn source(&self) -> DownloadSource {
        let official = DownloadSource::default();
        DownloadSource {
            url: self.data_url.clone(),
            md5: self.data_md5.unwrap_or(official.md5),
        }
    }
}

/// Parses a thread count of at least 1.
pub fn parse_threads(value: &str) -> Result<usize, String> {
    parse_positive(
        value,
        "thread count",
        "pass 1 or more, or leave --threads out to use every available CPU",
    )
}

/// Parses an epoch count of at least 1.
pub fn parse_epochs(value: &str) -> Result<usize, String> {
    parse_positive(value, "epoch count", "pass 1 or more")
}

fn parse_positive(value: &str, what: &str, fix: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(0) => Err(format!("the {what} must be at least 1; {fix}")),
        Ok(count) => Ok(count),
        Err(_) => Err(format!("expected a positive integer {what}; {fix}")),
    }
}

/// A `--bind` value: a full address, or an IP that takes the mode's default port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    /// IP and port.
    Address(SocketAddr),
    /// IP only; the port comes from `$port` in function mode and is 5000 in server mode.
    Host(IpAddr),
}

/// Parses a listen address such as `127.0.0.1:5000`, `[::1]:0` or `127.0.0.1`.
pub fn parse_bind(value: &str) -> Result<Bind, String> {
    if let Ok(address) = value.parse() {
        return Ok(Bind::Address(address));
    }
    value.parse().map(Bind::Host).map_err(|_| {
        "expected IP:PORT such as 127.0.0.1:5000 (port 0 picks a free port), or an IP alone".into()
    })
}

/// Parses the `port` environment variable of function mode.
pub fn parse_port(value: &str) -> Result<u16, String> {
    value.trim().parse().map_err(|_| {
        format!("invalid port environment variable '{value}': expected an integer from 0 to 65535")
    })
}

#[cfg(test)]
mod tests;

//! The serverless-versus-server experiment: `serve --mode function` and
//! `serve --mode server`, and with `--with-peer` a Flask + PyTorch app,
//! each pinned to N CPUs with N threads for every cap N.
//!
//! ```text
//! experiment --data cifar-10-binary.tar.gz --epochs 1 --with-peer
//! ```
//!
//! `benches/experiment/run.sh` installs `ab`, `taskset` and the peer's
//! packages, builds the binaries and runs this.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context};
use cifaas_benches::experiment::run::{LoadSpec, Settings};
use cifaas_benches::experiment::side::{Programs, Side};
use cifaas_benches::experiment::{cpuset, procfs, write_first_test_image, Experiment};
use clap::Parser;
use data::Cifar10;

/// Options of the `experiment` binary.
#[derive(Debug, Parser)]
#[command(
    about = "Measure serve in function and server mode (and a Flask + PyTorch peer) \
                   under the same thread caps and CPU sets"
)]
struct Cli {
    /// CIFAR-10 binary folder or .tar.gz archive.
    #[arg(long, value_name = "PATH")]
    data: PathBuf,

    /// Folder to unpack a .tar.gz --data archive into [default: next to the archive].
    #[arg(long, value_name = "DIR")]
    unpack_dir: Option<PathBuf>,

    /// Output folder [default: target/experiment/YYYYMMDD-HHMMSS].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// Training epochs of the from-scratch start-up.
    #[arg(long, value_name = "E", default_value_t = 1)]
    epochs: usize,

    /// Comma-separated thread caps; `all` is every CPU this process may use.
    /// Equal caps run once.
    #[arg(long, value_name = "LIST", default_value = "1,2,all")]
    caps: String,

    /// Comma-separated serve modes to measure.
    #[arg(long, value_name = "LIST", default_value = "function,server")]
    modes: String,

    /// Also measure the Flask + PyTorch peer.
    #[arg(long)]
    with_peer: bool,

    /// The serve binary [default: `serve` next to this binary].
    #[arg(long, value_name = "FILE")]
    serve: Option<PathBuf>,

    /// A serve checkpoint for the cold starts [default: the one the first
    /// from-scratch start of each mode saves].
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,

    /// Skip the from-scratch start-ups and only cold-start from --model
    /// (which it requires; not with --with-peer).
    #[arg(long, requires = "model", conflicts_with = "with_peer")]
    no_scratch: bool,

    /// Python of the peer's virtual environment, with torch and flask.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "target/peer-venv/bin/python"
    )]
    peer_python: PathBuf,

    /// Cold starts from a checkpoint per side and cap (the median is reported).
    #[arg(long, value_name = "N", default_value_t = 3)]
    cold_starts: usize,

    /// Seconds to sample each server while idle.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    idle_seconds: f64,

    /// Milliseconds between two /proc samples.
    #[arg(long, value_name = "MS", default_value_t = 250)]
    sample_ms: u64,

    /// Requests of the `GET /` load (`ab -n`).
    #[arg(long, value_name = "N", default_value_t = 10)]
    get_requests: usize,

    /// Requests of the `POST /predict` load (`ab -n`).
    #[arg(long, value_name = "N", default_value_t = 200)]
    predict_requests: usize,

    /// Requests in flight at once in both loads (`ab -c`).
    #[arg(long, value_name = "N", default_value_t = 2)]
    concurrency: usize,

    /// Seconds `ab` waits for each response (`ab -s`).
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    ab_timeout: u64,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    ensure!(cli.epochs > 0, "--epochs is 0; pass at least 1");
    ensure!(cli.cold_starts > 0, "--cold-starts is 0; pass at least 1");
    ensure!(cli.sample_ms > 0, "--sample-ms is 0; pass at least 1");
    ensure!(
        cli.get_requests >= cli.concurrency && cli.predict_requests >= cli.concurrency,
        "ab needs at least --concurrency ({}) requests per load",
        cli.concurrency
    );
    ensure!(
        cli.idle_seconds.is_finite() && cli.idle_seconds >= 0.0,
        "--idle-seconds {} is not a non-negative number",
        cli.idle_seconds
    );
    let cpus = cpuset::own_cpus()?;
    let caps = cpuset::parse_caps(&cli.caps, cpus.len())?;
    let mut sides = parse_modes(&cli.modes)?;
    if cli.with_peer {
        sides.push(Side::Peer);
        ensure!(
            cli.peer_python.exists(),
            "the peer's Python {} does not exist; run benches/experiment/run.sh --with-peer, \
             which creates it, or pass --peer-python",
            cli.peer_python.display()
        );
    }

    let dataset = match &cli.unpack_dir {
        Some(cache) => Cifar10::open_with_cache(&cli.data, cache),
        None => Cifar10::open(&cli.data),
    }
    .with_context(|| format!("cannot open the dataset {}", cli.data.display()))?;
    let out = absolute(&cli.out.clone().unwrap_or_else(default_out))?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let image = out.join("image.bin");
    write_first_test_image(&dataset.folder, &image)?;

    let programs = Programs {
        serve: cli.serve.clone().map_or_else(sibling_serve, Ok)?,
        peer_python: absolute(&cli.peer_python)?,
        peer_script: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peer/flask_peer.py"),
        data: dataset.folder.clone(),
        out: out.clone(),
    };
    ensure!(
        programs.serve.exists(),
        "the serve binary {} does not exist; build it with \
         `cargo build --release -p cifaas-serve` or pass --serve",
        programs.serve.display()
    );
    let load = |requests| LoadSpec {
        requests,
        concurrency: cli.concurrency,
        timeout_seconds: cli.ab_timeout,
    };
    let settings = Settings {
        programs,
        epochs: cli.epochs,
        sample_interval: Duration::from_millis(cli.sample_ms),
        idle: Duration::from_secs_f64(cli.idle_seconds),
        get_load: load(cli.get_requests),
        predict_load: load(cli.predict_requests),
        image,
        ticks_per_second: procfs::clock_ticks_per_second()?,
    };
    let experiment = Experiment {
        settings,
        sides,
        caps,
        cpus,
        cold_starts: cli.cold_starts,
        model: cli.model.as_deref().map(absolute).transpose()?,
        scratch: !cli.no_scratch,
        command_line: std::env::args().collect::<Vec<_>>().join(" "),
    };
    eprintln!(
        "experiment: caps {:?} on CPUs {}, sides {:?}, writing to {}",
        experiment.caps,
        procfs::format_cpu_list(&experiment.cpus),
        experiment.sides,
        out.display()
    );
    let results = experiment.execute()?;
    for path in experiment.write(&results)? {
        println!("{}", path.display());
    }
    Ok(())
}

fn parse_modes(text: &str) -> anyhow::Result<Vec<Side>> {
    let mut sides = Vec::new();
    for mode in text.split(',').map(str::trim) {
        let side = match mode {
            "function" => Side::Function,
            "server" => Side::Server,
            _ => anyhow::bail!("mode {mode:?} in --modes is not `function` or `server`"),
        };
        if !sides.contains(&side) {
            sides.push(side);
        }
    }
    Ok(sides)
}

fn default_out() -> PathBuf {
    let stamp = std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y%m%d-%H%M%S")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_default();
    PathBuf::from("target/experiment").join(stamp)
}

fn sibling_serve() -> anyhow::Result<PathBuf> {
    let own = std::env::current_exe().context("cannot find this binary's path")?;
    Ok(own.with_file_name("serve"))
}

fn absolute(path: &std::path::Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("invalid path {}", path.display()))
}

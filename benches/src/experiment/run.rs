//! One start of one side under one thread cap: start-up time, samples,
//! and the loads run against it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use super::ab::{self, AbReport, Load};
use super::child::{free_port, start_pinned, Server};
use super::cpuset::{interval_tolerance_percent, verify_affinity, verify_samples};
use super::sampler::{summarise, Mark, PhaseSummary, Sample, Sampler};
use super::side::{Programs, Side, Start};

/// Maximum wait for a server that trains from scratch to become ready.
const SCRATCH_TIMEOUT: Duration = Duration::from_secs(4 * 3600);

/// Maximum wait for a server that loads a checkpoint to become ready.
const CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(120);

/// The way a run's model got ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// Trained from scratch at start-up.
    Scratch,
    /// Loaded from a checkpoint at start-up (cold start).
    Checkpoint,
}

/// The settings every run shares.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Program paths and the data folder.
    pub programs: Programs,
    /// Training epochs of the from-scratch start.
    pub epochs: usize,
    /// Time between two `/proc` samples.
    pub sample_interval: Duration,
    /// How long to sample an idle server.
    pub idle: Duration,
    /// The `GET /` load.
    pub get_load: LoadSpec,
    /// The `POST /predict` load.
    pub predict_load: LoadSpec,
    /// The raw image `POST /predict` sends.
    pub image: PathBuf,
    /// `getconf CLK_TCK`.
    pub ticks_per_second: u64,
}

/// Requests, concurrency and timeout of one `ab` load.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LoadSpec {
    /// Total requests.
    pub requests: usize,
    /// Requests at once.
    pub concurrency: usize,
    /// Seconds to wait for each response.
    pub timeout_seconds: u64,
}

/// Everything measured in one start of one side.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// The side that ran.
    pub side: Side,
    /// Its thread cap, which is also the number of CPUs it was pinned to.
    pub cap: usize,
    /// The CPUs it was pinned to.
    pub cpus: Vec<usize>,
    /// The way its model got ready.
    pub variant: Variant,
    /// The number of this start of the side, cap and variant (from 1).
    pub attempt: usize,
    /// The program and arguments, without the `taskset` prefix.
    pub command: Vec<String>,
    /// From spawn to the first 200 of the readiness endpoint, in seconds.
    pub startup_seconds: f64,
    /// Resident set size when it became ready, in KiB.
    pub ready_rss_kib: u64,
    /// Its anonymous part (`RssAnon`), in KiB.
    pub ready_rss_anon_kib: u64,
    /// Every `/proc` sample of the process.
    pub samples: Vec<Sample>,
    /// CPU and memory while idle.
    pub idle: Option<PhaseSummary>,
    /// CPU and memory under the `GET /` load.
    pub busy_get: Option<PhaseSummary>,
    /// CPU and memory under the `POST /predict` load.
    pub busy_predict: Option<PhaseSummary>,
    /// The `ab` report of `GET /`.
    pub get: Option<AbReport>,
    /// The `ab` report of `POST /predict`.
    pub predict: Option<AbReport>,
}

/// The work of one start once the server is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Stop at once: only the start-up is measured.
    StartOnly,
    /// Sample idle, then under the `GET /` and the `POST /predict` loads.
    Full,
}

/// One start to run: which side, cap and CPUs, how the model gets ready.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    /// The side to run.
    pub side: Side,
    /// Its thread cap.
    pub cap: usize,
    /// The CPUs it is pinned to.
    pub cpus: &'a [usize],
    /// The way its model gets ready.
    pub start: Start<'a>,
    /// The number of this start (from 1).
    pub attempt: usize,
    /// The work once it is ready.
    pub workload: Workload,
}

/// Starts `plan.side`, measures it and stops it.
///
/// # Errors
/// When the process does not become ready, leaves its CPU set or `ab`
/// fails; the message names the side, cap and variant.
pub fn run(settings: &Settings, plan: &Plan) -> anyhow::Result<Run> {
    let variant = match plan.start {
        Start::Scratch(..) => Variant::Scratch,
        Start::Checkpoint(_) => Variant::Checkpoint,
    };
    let context = format!("{} at cap {}, {variant:?} start", plan.side, plan.cap);
    measure(settings, plan, variant).with_context(|| context)
}

fn measure(settings: &Settings, plan: &Plan, variant: Variant) -> anyhow::Result<Run> {
    let programs = &settings.programs;
    let address = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let (program, arguments) = programs.command(plan.side, plan.cap, address, &plan.start);
    let log = programs.out.join(format!(
        "{}-cap{}-{variant:?}-{}.log",
        plan.side, plan.cap, plan.attempt
    ));
    let mut server = start_pinned(&program, &arguments, plan.cpus, address, &log)?;
    let sampler = Sampler::start(
        server.pid(),
        server.started,
        settings.sample_interval,
        settings.ticks_per_second,
        "startup",
    );
    let timeout = match variant {
        Variant::Scratch => SCRATCH_TIMEOUT,
        Variant::Checkpoint => CHECKPOINT_TIMEOUT,
    };
    let startup = server.wait_ready(plan.side.ready_path(), timeout)?;
    let ready = super::procfs::read_process(server.pid())?.status;
    verify_affinity(server.pid(), plan.cpus)?;
    eprintln!(
        "experiment: {} cap {} {variant:?} #{}: ready after {:.3} s, {:.1} MB resident",
        plan.side,
        plan.cap,
        plan.attempt,
        startup.as_secs_f64(),
        ready.rss_kib as f64 / 1024.0
    );

    let loaded = match plan.workload {
        Workload::StartOnly => None,
        Workload::Full => Some(apply_loads(settings, &server, &sampler)?),
    };
    server.stop()?;
    let samples = sampler.finish();
    let tolerance = interval_tolerance_percent(
        settings.sample_interval.as_secs_f64(),
        settings.ticks_per_second,
    );
    verify_samples(&samples, plan.cpus, tolerance)?;
    let phase = |name: &str, index: usize| {
        let marks = &loaded.as_ref()?.marks;
        Some(summarise(&samples, name, marks[index], marks[index + 1]))
    };

    let mut command = vec![program.display().to_string()];
    command.extend(arguments);
    Ok(Run {
        side: plan.side,
        cap: plan.cap,
        cpus: plan.cpus.to_vec(),
        variant,
        attempt: plan.attempt,
        command,
        startup_seconds: startup.as_secs_f64(),
        ready_rss_kib: ready.rss_kib,
        ready_rss_anon_kib: ready.rss_anon_kib,
        idle: phase("idle", 0),
        busy_get: phase("get", 1),
        busy_predict: phase("predict", 2),
        get: loaded.as_ref().map(|loaded| loaded.get.clone()),
        predict: loaded.map(|loaded| loaded.predict),
        samples,
    })
}

/// The reports of both loads and the marks at the start of the idle
/// phase and at the end of the idle, `GET /` and `POST /predict` phases.
struct Loaded {
    get: AbReport,
    predict: AbReport,
    marks: [Mark; 4],
}

/// Samples the ready server while idle, then runs the `GET /` and the
/// `POST /predict` loads, labelling the samples of each phase.
fn apply_loads(settings: &Settings, server: &Server, sampler: &Sampler) -> anyhow::Result<Loaded> {
    let base = format!("http://{}", server.address);
    sampler.set_phase("idle");
    let idle_start = sampler.mark()?;
    thread::sleep(settings.idle);
    let idle_end = sampler.mark()?;

    sampler.set_phase("get");
    let get = ab::run(&load(&settings.get_load, None), &format!("{base}/"))?;
    let get_end = sampler.mark()?;
    report_load("GET /", &get);

    sampler.set_phase("predict");
    let body = Some(settings.image.as_path());
    let predict = ab::run(
        &load(&settings.predict_load, body),
        &format!("{base}/predict"),
    )?;
    let predict_end = sampler.mark()?;
    report_load("POST /predict", &predict);
    sampler.set_phase("stopping");
    Ok(Loaded {
        get,
        predict,
        marks: [idle_start, idle_end, get_end, predict_end],
    })
}

fn load<'a>(spec: &LoadSpec, body: Option<&'a Path>) -> Load<'a> {
    Load {
        requests: spec.requests,
        concurrency: spec.concurrency,
        timeout_seconds: spec.timeout_seconds,
        body,
    }
}

fn report_load(name: &str, report: &AbReport) {
    eprintln!(
        "experiment:   {name}: {} complete, {} failed, {} non-2xx, mean {:.1} ms per request",
        report.complete, report.failed, report.non_2xx, report.mean_ms
    );
}

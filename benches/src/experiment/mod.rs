//! The serverless-versus-server experiment: starts `serve` in function and
//! server mode (and, optionally, a Flask + PyTorch peer) pinned to 1, 2, ...
//! CPUs with as many threads, and measures start-up, CPU and memory while
//! idle and under `ab` loads. Writes `samples.json`, `table.md` and SVG charts.

pub mod ab;
pub mod charts;
pub mod child;
pub mod cpuset;
pub mod procfs;
pub mod report;
pub mod run;
pub mod sampler;
pub mod side;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use run::{Plan, Run, Settings, Workload};
use side::{Side, Start};

/// The plan of an experiment: sides, caps, starts and the output folder.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// Settings every run shares.
    pub settings: Settings,
    /// The sides, in the order they run within each cap.
    pub sides: Vec<Side>,
    /// Thread caps, ascending.
    pub caps: Vec<usize>,
    /// The CPUs this process may use; cap N runs on the first N.
    pub cpus: Vec<usize>,
    /// Cold starts from a checkpoint per side and cap; the last one is also
    /// sampled idle and under load.
    pub cold_starts: usize,
    /// A `serve` checkpoint for the cold starts, instead of the one the
    /// side's first from-scratch start saves.
    pub model: Option<PathBuf>,
    /// Whether each side and cap also starts once training from scratch.
    pub scratch: bool,
    /// The command line, recorded in the JSON.
    pub command_line: String,
}

/// The whole result, as written to `samples.json`.
#[derive(Debug, Serialize)]
pub struct Results {
    /// When, where and how the experiment ran.
    pub meta: Meta,
    /// Every start, with all its samples.
    pub runs: Vec<Run>,
}

/// When, where and how the experiment ran.
#[derive(Debug, Serialize)]
pub struct Meta {
    /// The command line.
    pub command: String,
    /// UTC start time.
    pub started: String,
    /// Wall time of the whole experiment, in seconds.
    pub wall_seconds: f64,
    /// `Model name` of `lscpu`.
    pub cpu_model: String,
    /// The CPUs this process could use.
    pub cpus: Vec<usize>,
    /// `uptime` before the first run.
    pub uptime_before: String,
    /// `uptime` after the last run.
    pub uptime_after: String,
    /// `git rev-parse --short HEAD`, when available.
    pub commit: String,
    /// The epochs of the from-scratch starts.
    pub epochs: usize,
    /// The thread caps.
    pub caps: Vec<usize>,
}

impl Experiment {
    /// Runs every start and returns the results.
    ///
    /// # Errors
    /// On the first start that fails; see [`run::run`].
    pub fn execute(&self) -> anyhow::Result<Results> {
        let clock = Instant::now();
        let started = shell_line("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"]);
        let uptime_before = shell_line("uptime", &[]);
        let mut runs = Vec::new();
        let mut checkpoints: Vec<(Side, PathBuf)> = Vec::new();
        for &cap in &self.caps {
            let cpus = cpuset::cpu_set(&self.cpus, cap);
            for &side in &self.sides {
                let save = self.settings.programs.out.join(side.checkpoint_name(cap));
                let scratch = Plan {
                    side,
                    cap,
                    cpus: &cpus,
                    start: Start::Scratch(self.settings.epochs, &save),
                    attempt: 1,
                    workload: Workload::StartOnly,
                };
                if self.scratch {
                    runs.push(run::run(&self.settings, &scratch)?);
                }
                if !checkpoints.iter().any(|(saved, _)| *saved == side) {
                    checkpoints.push((side, save.clone()));
                }
                let model = match (&self.model, side) {
                    (Some(model), Side::Function | Side::Server) => model.clone(),
                    _ => checkpoint_of(&checkpoints, side),
                };
                for attempt in 1..=self.cold_starts {
                    let workload = if attempt == self.cold_starts {
                        Workload::Full
                    } else {
                        Workload::StartOnly
                    };
                    let plan = Plan {
                        start: Start::Checkpoint(&model),
                        attempt,
                        workload,
                        ..scratch.clone()
                    };
                    runs.push(run::run(&self.settings, &plan)?);
                }
            }
        }
        let meta = Meta {
            command: self.command_line.clone(),
            started,
            wall_seconds: clock.elapsed().as_secs_f64(),
            cpu_model: cpu_model(),
            cpus: self.cpus.clone(),
            uptime_before,
            uptime_after: shell_line("uptime", &[]),
            commit: shell_line("git", &["rev-parse", "--short", "HEAD"]),
            epochs: self.settings.epochs,
            caps: self.caps.clone(),
        };
        Ok(Results { meta, runs })
    }

    /// Writes `samples.json`, `table.md` and the charts into the output folder.
    ///
    /// # Errors
    /// When a file cannot be written.
    pub fn write(&self, results: &Results) -> anyhow::Result<Vec<PathBuf>> {
        let out = &self.settings.programs.out;
        let json = out.join("samples.json");
        let text = serde_json::to_string_pretty(results)?;
        fs::write(&json, text).with_context(|| format!("cannot write {}", json.display()))?;

        let table = out.join("table.md");
        let mut markdown = format!(
            "Measured {} on {} ({} CPUs), commit {}, in {:.0} s.\n\n\
             `uptime` before: {}\n\n`uptime` after: {}\n\nCommand: `{}`\n\n",
            results.meta.started,
            results.meta.cpu_model,
            self.cpus.len(),
            results.meta.commit,
            results.meta.wall_seconds,
            results.meta.uptime_before,
            results.meta.uptime_after,
            results.meta.command
        );
        markdown.push_str(&report::table(
            &results.runs,
            &self.caps,
            &self.sides,
            self.settings.epochs,
        ));
        fs::write(&table, markdown).with_context(|| format!("cannot write {}", table.display()))?;

        let mut written = vec![json, table];
        written.extend(charts::draw_all(
            out,
            &results.runs,
            &self.caps,
            &self.sides,
        )?);
        Ok(written)
    }
}

fn checkpoint_of(checkpoints: &[(Side, PathBuf)], side: Side) -> PathBuf {
    checkpoints
        .iter()
        .find(|(saved, _)| *saved == side)
        .map(|(_, path)| path.clone())
        .unwrap_or_default()
}

/// Writes the pixels of the first test image (3072 bytes after its label)
/// to `path`, as the body of `POST /predict`.
///
/// # Errors
/// When `test_batch.bin` cannot be read or is shorter than one record.
pub fn write_first_test_image(data: &Path, path: &Path) -> anyhow::Result<()> {
    let batch = data.join("test_batch.bin");
    let bytes = fs::read(&batch).with_context(|| format!("cannot read {}", batch.display()))?;
    let record = bytes
        .get(1..1 + 3072)
        .with_context(|| format!("{} is shorter than one 3073-byte record", batch.display()))?;
    fs::write(path, record).with_context(|| format!("cannot write {}", path.display()))
}

/// Runs `program arguments` and returns the first line it prints, or a
/// note that it failed.
fn shell_line(program: &str, arguments: &[&str]) -> String {
    match Command::new(program).args(arguments).output() {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned(),
        _ => format!("({program} failed)"),
    }
}

/// `Model name` of `lscpu`.
fn cpu_model() -> String {
    let output = Command::new("lscpu").output();
    let text = output
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix("Model name:"))
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|| "(lscpu printed no model name)".to_owned())
}

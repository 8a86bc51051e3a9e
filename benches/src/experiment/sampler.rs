//! Samples a process's CPU use, resident memory and thread placement from
//! `/proc` at a fixed interval, on a thread of its own.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::procfs::{read_process, Reading};

/// One sample: the CPU use since the previous sample and the memory now.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the process was spawned.
    pub seconds: f64,
    /// The phase of the run when the sample was taken (`startup`, `idle`, ...).
    pub phase: String,
    /// CPU time over wall time since the previous sample, in percent of one
    /// CPU (so up to 100 times the number of CPUs), as `top` reports it.
    pub cpu_percent: f64,
    /// Total user plus kernel CPU time of the process so far, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size in KiB.
    pub rss_kib: u64,
    /// The anonymous part of the resident set (`RssAnon`) in KiB.
    pub rss_anon_kib: u64,
    /// Threads of the process.
    pub threads: u64,
    /// The CPUs its threads last ran on.
    pub processors: Vec<usize>,
}

/// State shared between the sampling thread and its owner.
struct Shared {
    phase: Mutex<String>,
    samples: Mutex<Vec<Sample>>,
    stop: AtomicBool,
}

/// A running sampler; [`Sampler::finish`] stops it and returns the samples.
pub struct Sampler {
    shared: Arc<Shared>,
    handle: JoinHandle<()>,
    pid: u32,
    started: Instant,
    ticks_per_second: u64,
}

/// A reading taken at a phase boundary, so that a phase's CPU use is
/// measured over exactly its own time span.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    /// Seconds since the process was spawned.
    pub seconds: f64,
    /// Total user plus kernel CPU time of the process so far, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size in KiB.
    pub rss_kib: u64,
    /// The anonymous part of the resident set (`RssAnon`) in KiB.
    pub rss_anon_kib: u64,
}

impl Sampler {
    /// Starts sampling process `pid`, spawned at `started`, every `interval`.
    ///
    /// Sampling ends by itself when the process is gone.
    pub fn start(
        pid: u32,
        started: Instant,
        interval: Duration,
        ticks_per_second: u64,
        phase: &str,
    ) -> Self {
        let shared = Arc::new(Shared {
            phase: Mutex::new(phase.to_owned()),
            samples: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let worker = Arc::clone(&shared);
        let handle = thread::spawn(move || {
            let mut previous: Option<(Instant, u64)> = None;
            while !worker.stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                let Ok(reading) = read_process(pid) else {
                    break;
                };
                let ticks = reading.stat.cpu_ticks();
                let cpu_percent = match previous {
                    Some((then, before)) => {
                        let wall = now.duration_since(then).as_secs_f64();
                        100.0 * (ticks - before) as f64 / ticks_per_second as f64 / wall
                    }
                    None => 0.0,
                };
                previous = Some((now, ticks));
                let phase = lock(&worker.phase).clone();
                let sample = to_sample(&reading, now.duration_since(started), phase);
                lock(&worker.samples).push(Sample {
                    cpu_percent,
                    cpu_seconds: ticks as f64 / ticks_per_second as f64,
                    ..sample
                });
                thread::sleep(interval.saturating_sub(now.elapsed()));
            }
        });
        Self {
            shared,
            handle,
            pid,
            started,
            ticks_per_second,
        }
    }

    /// Reads the process's CPU time and memory now.
    ///
    /// # Errors
    /// When the process is gone.
    pub fn mark(&self) -> anyhow::Result<Mark> {
        let reading = read_process(self.pid)?;
        Ok(Mark {
            seconds: self.started.elapsed().as_secs_f64(),
            cpu_seconds: reading.stat.cpu_ticks() as f64 / self.ticks_per_second as f64,
            rss_kib: reading.status.rss_kib,
            rss_anon_kib: reading.status.rss_anon_kib,
        })
    }

    /// Labels the samples taken from now on with `phase`.
    pub fn set_phase(&self, phase: &str) {
        *lock(&self.shared.phase) = phase.to_owned();
    }

    /// Stops sampling and returns every sample taken.
    pub fn finish(self) -> Vec<Sample> {
        self.shared.stop.store(true, Ordering::Relaxed);
        // The thread only reads /proc and sleeps; a panic there is a bug.
        self.handle.join().expect("the sampling thread panicked");
        std::mem::take(&mut *lock(&self.shared.samples))
    }
}

fn to_sample(reading: &Reading, since_start: Duration, phase: String) -> Sample {
    let processors: BTreeSet<usize> = reading
        .thread_processors
        .iter()
        .map(|(_, cpu)| *cpu)
        .collect();
    Sample {
        seconds: since_start.as_secs_f64(),
        phase,
        cpu_percent: 0.0,
        cpu_seconds: 0.0,
        rss_kib: reading.status.rss_kib,
        rss_anon_kib: reading.status.rss_anon_kib,
        threads: reading.stat.threads,
        processors: processors.into_iter().collect(),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The CPU use and memory of the samples of one phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PhaseSummary {
    /// Wall time of the phase, in seconds.
    pub seconds: f64,
    /// CPU time over wall time of the phase, in percent of one CPU.
    pub mean_cpu_percent: f64,
    /// Highest CPU use of one sampling interval, in percent of one CPU.
    pub max_cpu_percent: f64,
    /// Mean resident set size, in KiB.
    pub mean_rss_kib: f64,
    /// Highest resident set size, in KiB.
    pub max_rss_kib: u64,
    /// Highest anonymous part of the resident set, in KiB.
    pub max_rss_anon_kib: u64,
}

/// Summarises the phase between the marks `start` and `end`: CPU use from
/// the marks, memory from the marks and the samples labelled `phase`.
pub fn summarise(samples: &[Sample], phase: &str, start: Mark, end: Mark) -> PhaseSummary {
    let seconds = end.seconds - start.seconds;
    let chosen: Vec<&Sample> = samples.iter().filter(|s| s.phase == phase).collect();
    // A sample's CPU figure covers the interval before it, which for the
    // first sample of a phase started in the phase before.
    let max_cpu_percent = chosen
        .iter()
        .skip(1)
        .map(|s| s.cpu_percent)
        .fold(0.0, f64::max);
    let rss: Vec<u64> = chosen
        .iter()
        .map(|s| s.rss_kib)
        .chain([start.rss_kib, end.rss_kib])
        .collect();
    let max_rss_anon_kib = chosen
        .iter()
        .map(|s| s.rss_anon_kib)
        .chain([start.rss_anon_kib, end.rss_anon_kib])
        .max()
        .unwrap_or(0);
    PhaseSummary {
        seconds,
        mean_cpu_percent: 100.0 * (end.cpu_seconds - start.cpu_seconds) / seconds.max(1e-9),
        max_cpu_percent,
        mean_rss_kib: rss.iter().sum::<u64>() as f64 / rss.len() as f64,
        max_rss_kib: rss.iter().copied().max().unwrap_or(0),
        max_rss_anon_kib,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seconds: f64, phase: &str, cpu_seconds: f64, rss_kib: u64) -> Sample {
        Sample {
            seconds,
            phase: phase.to_owned(),
            cpu_percent: 50.0,
            cpu_seconds,
            rss_kib,
            rss_anon_kib: rss_kib / 2,
            threads: 1,
            processors: vec![0],
        }
    }

    fn mark(seconds: f64, cpu_seconds: f64, rss_kib: u64) -> Mark {
        Mark {
            seconds,
            cpu_seconds,
            rss_kib,
            rss_anon_kib: rss_kib / 2,
        }
    }

    #[test]
    fn phase_summary() {
        let samples = [
            sample(0.0, "startup", 0.0, 100),
            sample(1.0, "idle", 0.5, 200),
            sample(3.0, "idle", 0.52, 400),
            sample(4.0, "busy", 1.5, 900),
        ];
        let idle = summarise(&samples, "idle", mark(0.5, 0.4, 100), mark(3.5, 0.43, 300));
        assert!((idle.seconds - 3.0).abs() < 1e-9);
        assert!((idle.mean_cpu_percent - 1.0).abs() < 1e-9);
        assert_eq!(idle.max_rss_kib, 400);
        assert_eq!(idle.max_rss_anon_kib, 200);
        assert!((idle.mean_rss_kib - 250.0).abs() < 1e-9);
        assert!((idle.max_cpu_percent - 50.0).abs() < 1e-9);
    }

    #[test]
    fn samples_own_process() {
        let sampler = Sampler::start(
            std::process::id(),
            Instant::now(),
            Duration::from_millis(10),
            100,
            "first",
        );
        thread::sleep(Duration::from_millis(50));
        sampler.set_phase("second");
        thread::sleep(Duration::from_millis(50));
        let samples = sampler.finish();
        assert!(samples.iter().any(|s| s.phase == "first"));
        assert!(samples.iter().any(|s| s.phase == "second"));
        assert!(samples.iter().all(|s| s.rss_kib > 0));
    }
}

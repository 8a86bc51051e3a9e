//! Thread caps, the CPU set each cap runs on, and the check that a process
//! stayed inside its set.

use std::fs;

use anyhow::{bail, ensure, Context};

use super::procfs::{format_cpu_list, parse_status, read_process};
use super::sampler::Sample;

/// Returns the tolerance of the CPU-time check of one sampling interval, in
/// percent of one CPU. `/proc` counts CPU time in whole clock ticks (10 ms at
/// 100 Hz), so one interval can read a tick high at each end: two ticks,
/// and at least 10%.
pub fn interval_tolerance_percent(interval_seconds: f64, ticks_per_second: u64) -> f64 {
    let two_ticks = 2.0 / ticks_per_second as f64;
    (100.0 * two_ticks / interval_seconds).max(10.0)
}

/// Returns the CPUs this process may use (`Cpus_allowed_list` of `/proc/self/status`).
///
/// # Errors
/// When `/proc/self/status` cannot be read or parsed.
pub fn own_cpus() -> anyhow::Result<Vec<usize>> {
    let text = fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    Ok(parse_status(&text)?.cpus_allowed)
}

/// Parses a comma-separated list of thread caps, where `all` is every CPU in
/// `available`, and returns them ascending without duplicates.
///
/// # Errors
/// When an entry is neither a positive number nor `all`, or a cap is larger
/// than `available`.
pub fn parse_caps(text: &str, available: usize) -> anyhow::Result<Vec<usize>> {
    let mut caps = Vec::new();
    for entry in text.split(',').map(str::trim) {
        let cap = if entry == "all" {
            available
        } else {
            entry
                .parse::<usize>()
                .ok()
                .filter(|cap| *cap > 0)
                .with_context(|| {
                    format!("thread cap {entry:?} in {text:?} is not a positive number or `all`")
                })?
        };
        ensure!(
            cap <= available,
            "thread cap {cap} is more than the {available} CPUs this process may use; \
             pass caps up to {available}"
        );
        caps.push(cap);
    }
    caps.sort_unstable();
    caps.dedup();
    Ok(caps)
}

/// Returns the first `cap` CPUs of `available`.
pub fn cpu_set(available: &[usize], cap: usize) -> Vec<usize> {
    available.iter().copied().take(cap).collect()
}

/// Checks that process `pid` may run only on `cpus` (`Cpus_allowed_list`).
///
/// # Errors
/// When the list differs, naming both.
pub fn verify_affinity(pid: u32, cpus: &[usize]) -> anyhow::Result<()> {
    let allowed = read_process(pid)?.status.cpus_allowed;
    if allowed != cpus {
        bail!(
            "pid {pid} may run on CPUs {} but was started on {}: the CPU set is not honoured",
            format_cpu_list(&allowed),
            format_cpu_list(cpus)
        );
    }
    Ok(())
}

/// Checks every sample: each thread ran on a CPU of `cpus`, and no sampling
/// interval used more CPU time than `cpus.len()` CPUs can give, plus
/// `tolerance_percent` (see [`interval_tolerance_percent`]).
///
/// # Errors
/// On the first sample that breaks either rule.
pub fn verify_samples(
    samples: &[Sample],
    cpus: &[usize],
    tolerance_percent: f64,
) -> anyhow::Result<()> {
    let ceiling = 100.0 * cpus.len() as f64 + tolerance_percent;
    for sample in samples {
        if let Some(outside) = sample.processors.iter().find(|cpu| !cpus.contains(cpu)) {
            bail!(
                "a thread ran on CPU {outside} at {:.2} s ({}), outside the set {}",
                sample.seconds,
                sample.phase,
                format_cpu_list(cpus)
            );
        }
        if sample.cpu_percent > ceiling {
            bail!(
                "the process used {:.0}% CPU at {:.2} s ({}), more than {} CPUs allow",
                sample.cpu_percent,
                sample.seconds,
                sample.phase,
                cpus.len()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(cpu_percent: f64, processors: Vec<usize>) -> Sample {
        Sample {
            seconds: 1.0,
            phase: "busy".to_owned(),
            cpu_percent,
            cpu_seconds: 1.0,
            rss_kib: 1,
            rss_anon_kib: 1,
            threads: 2,
            processors,
        }
    }

    #[test]
    fn caps_with_all() {
        assert_eq!(parse_caps("1,2,all", 2).unwrap(), vec![1, 2]);
        assert_eq!(parse_caps("all", 4).unwrap(), vec![4]);
        assert!(parse_caps("3", 2).is_err());
        assert!(parse_caps("0", 2).is_err());
        assert!(parse_caps("one", 2).is_err());
    }

    #[test]
    fn first_cpus_of_set() {
        assert_eq!(cpu_set(&[2, 5, 7], 2), vec![2, 5]);
    }

    #[test]
    fn samples_inside_set() {
        let samples = [sample(99.0, vec![0]), sample(104.0, vec![0])];
        assert!(verify_samples(&samples, &[0], 10.0).is_ok());
    }

    #[test]
    fn thread_outside_set() {
        let error = verify_samples(&[sample(50.0, vec![0, 1])], &[0], 10.0).unwrap_err();
        assert!(error.to_string().contains("CPU 1"), "{error}");
    }

    #[test]
    fn cpu_time_above_cap() {
        let error = verify_samples(&[sample(180.0, vec![0])], &[0], 10.0).unwrap_err();
        assert!(error.to_string().contains("180%"), "{error}");
    }

    #[test]
    fn tolerance_of_short_intervals() {
        assert_eq!(interval_tolerance_percent(0.25, 100), 10.0);
        assert!((interval_tolerance_percent(0.05, 100) - 40.0).abs() < 1e-9);
    }

    #[test]
    fn own_affinity_verified() {
        let cpus = own_cpus().unwrap();
        assert!(verify_affinity(std::process::id(), &cpus).is_ok());
        assert!(verify_affinity(std::process::id(), &[usize::MAX]).is_err());
    }
}

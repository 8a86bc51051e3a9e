//! Parsers of `/proc/PID/stat`, `/proc/PID/status` and CPU lists, and
//! readers of one process and its threads.

use std::fs;
use std::path::Path;

use anyhow::{bail, ensure, Context};

/// The fields of `/proc/PID/stat` (or `/proc/PID/task/TID/stat`) the
/// experiment uses; see proc(5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// User-mode CPU time in clock ticks (field 14).
    pub utime: u64,
    /// Kernel-mode CPU time in clock ticks (field 15).
    pub stime: u64,
    /// Number of threads (field 20).
    pub threads: u64,
    /// CPU the task last ran on (field 39).
    pub processor: usize,
}

impl Stat {
    /// User plus kernel CPU time, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        self.utime + self.stime
    }
}

/// Parses the one line of `/proc/PID/stat`.
///
/// The command name (field 2) is in parentheses and may itself contain
/// spaces and parentheses, so the fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> anyhow::Result<Stat> {
    let close = text
        .rfind(')')
        .with_context(|| format!("no ')' after the command name in stat line {text:?}"))?;
    // Field 3 (the state) is the first one after the command name.
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |number: usize| -> anyhow::Result<u64> {
        let value = fields
            .get(number - 3)
            .with_context(|| format!("stat line has no field {number}: {text:?}"))?;
        value
            .parse()
            .with_context(|| format!("field {number} of stat line is {value:?}, not a number"))
    };
    Ok(Stat {
        utime: field(14)?,
        stime: field(15)?,
        threads: field(20)?,
        processor: usize::try_from(field(39)?).context("processor number out of range")?,
    })
}

/// The fields of `/proc/PID/status` the experiment uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Resident set size (`VmRSS`) in KiB.
    pub rss_kib: u64,
    /// Its anonymous part (`RssAnon`: heap, stacks) in KiB. The rest is
    /// mapped files, such as a memory-mapped dataset, and shared memory.
    pub rss_anon_kib: u64,
    /// Peak resident set size (`VmHWM`) in KiB.
    pub peak_rss_kib: u64,
    /// CPUs the process may run on (`Cpus_allowed_list`), ascending.
    pub cpus_allowed: Vec<usize>,
}

/// Parses `/proc/PID/status`.
pub fn parse_status(text: &str) -> anyhow::Result<Status> {
    let value = |key: &str| -> anyhow::Result<&str> {
        text.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
            .map(str::trim)
            .with_context(|| format!("no {key} line in /proc status text"))
    };
    Ok(Status {
        rss_kib: parse_kib(value("VmRSS")?)?,
        rss_anon_kib: parse_kib(value("RssAnon")?)?,
        peak_rss_kib: parse_kib(value("VmHWM")?)?,
        cpus_allowed: parse_cpu_list(value("Cpus_allowed_list")?)?,
    })
}

/// Parses a size such as `2084 kB`, in KiB.
fn parse_kib(text: &str) -> anyhow::Result<u64> {
    let number = text
        .strip_suffix("kB")
        .with_context(|| format!("size {text:?} does not end in kB"))?;
    number
        .trim()
        .parse()
        .with_context(|| format!("size {text:?} is not a number of kB"))
}

/// Parses a CPU list such as `0-3,6,8-9` into ascending CPU numbers.
pub fn parse_cpu_list(text: &str) -> anyhow::Result<Vec<usize>> {
    let number = |part: &str| -> anyhow::Result<usize> {
        part.trim()
            .parse()
            .with_context(|| format!("CPU list {text:?}: {part:?} is not a CPU number"))
    };
    let mut cpus = Vec::new();
    for range in text.trim().split(',') {
        match range.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (number(first)?, number(last)?);
                ensure!(
                    first <= last,
                    "CPU list {text:?}: range {range} is reversed"
                );
                cpus.extend(first..=last);
            }
            None => cpus.push(number(range)?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// Formats CPU numbers as a list for `taskset -c`, such as `0,1`.
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let names: Vec<String> = cpus.iter().map(usize::to_string).collect();
    names.join(",")
}

/// One reading of a process: its totals and the CPU each thread last ran on.
#[derive(Debug, Clone)]
pub struct Reading {
    /// The process's `/proc/PID/stat`, whose times cover all its threads.
    pub stat: Stat,
    /// The process's `/proc/PID/status`.
    pub status: Status,
    /// The `processor` field of every thread, by thread id.
    pub thread_processors: Vec<(u32, usize)>,
}

/// Reads `/proc/PID/stat`, `/proc/PID/status` and every thread's stat.
///
/// # Errors
/// When the process is gone or a file does not parse. A thread that exits
/// between the listing and its read is skipped.
pub fn read_process(pid: u32) -> anyhow::Result<Reading> {
    let folder = Path::new("/proc").join(pid.to_string());
    let stat = parse_stat(&read(&folder.join("stat"))?)?;
    let status = parse_status(&read(&folder.join("status"))?)?;
    let mut thread_processors = Vec::new();
    let tasks = folder.join("task");
    let entries =
        fs::read_dir(&tasks).with_context(|| format!("cannot list {}", tasks.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", tasks.display()))?;
        let Ok(tid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(text) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        thread_processors.push((tid, parse_stat(&text)?.processor));
    }
    Ok(Reading {
        stat,
        status,
        thread_processors,
    })
}

fn read(path: &Path) -> anyhow::Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Returns the clock ticks per second of `/proc` CPU times (`getconf CLK_TCK`).
///
/// # Errors
/// When `getconf` cannot run or prints no positive number.
pub fn clock_ticks_per_second() -> anyhow::Result<u64> {
    let output = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .context("cannot run getconf CLK_TCK")?;
    let text = String::from_utf8_lossy(&output.stdout);
    match text.trim().parse::<u64>() {
        Ok(ticks) if ticks > 0 => Ok(ticks),
        _ => bail!("getconf CLK_TCK printed {text:?}, not a positive number"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from a copy of `sleep` named "odd (x) y", so the command name
    // has spaces and parentheses.
    const STAT_ODD_NAME: &str = include_str!("fixtures/stat-odd-name.txt");
    // Captured from `serve --mode server` while it evaluated the test set.
    const STAT_SERVE_BUSY: &str = include_str!("fixtures/stat-serve-busy.txt");
    // Captured from `taskset -c 1 sleep 3`.
    const STATUS_PINNED: &str = include_str!("fixtures/status-pinned.txt");

    #[test]
    fn stat_with_parenthesised_name() {
        let stat = parse_stat(STAT_ODD_NAME).unwrap();
        assert_eq!(stat.threads, 1);
        assert_eq!(stat.processor, 1);
        assert_eq!(stat.cpu_ticks(), 0);
    }

    #[test]
    fn stat_of_busy_server() {
        let stat = parse_stat(STAT_SERVE_BUSY).unwrap();
        assert!(stat.utime > 0, "{stat:?}");
        assert!(stat.threads > 1, "{stat:?}");
        assert!(stat.processor < 2, "{stat:?}");
    }

    #[test]
    fn stat_truncated() {
        let truncated = &STAT_ODD_NAME[..STAT_ODD_NAME.len() / 3];
        let error = parse_stat(truncated).unwrap_err().to_string();
        assert!(error.contains("no field"), "{error}");
    }

    #[test]
    fn stat_without_name() {
        assert!(parse_stat("12 sleep S 1").is_err());
    }

    #[test]
    fn status_of_pinned_process() {
        let status = parse_status(STATUS_PINNED).unwrap();
        assert_eq!(status.cpus_allowed, vec![1]);
        assert_eq!(status.rss_kib, 1812);
        assert_eq!(status.rss_anon_kib, 108);
        assert!(status.peak_rss_kib >= status.rss_kib);
    }

    #[test]
    fn status_missing_rss() {
        let without: String = STATUS_PINNED
            .lines()
            .filter(|line| !line.starts_with("VmRSS"))
            .map(|line| format!("{line}\n"))
            .collect();
        let error = parse_status(&without).unwrap_err().to_string();
        assert!(error.contains("VmRSS"), "{error}");
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1").unwrap(), vec![0, 1]);
        assert_eq!(parse_cpu_list("5,0-2,9\n").unwrap(), vec![0, 1, 2, 5, 9]);
        assert_eq!(format_cpu_list(&[0, 3]), "0,3");
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("a").is_err());
        assert!(parse_cpu_list("").is_err());
    }

    #[test]
    fn own_process_readable() {
        let reading = read_process(std::process::id()).unwrap();
        assert!(!reading.thread_processors.is_empty());
        assert!(reading.status.rss_kib > 0);
    }
}

//! Runs ApacheBench (`ab`) and parses its report.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context};
use serde::Serialize;

/// One `ab` load: how many requests, how many at once, and the body to POST.
#[derive(Debug, Clone)]
pub struct Load<'a> {
    /// Total requests (`-n`).
    pub requests: usize,
    /// Requests in flight at once (`-c`).
    pub concurrency: usize,
    /// Seconds `ab` waits for each response (`-s`).
    pub timeout_seconds: u64,
    /// File sent as `application/octet-stream` with POST (`-p`), or GET without one.
    pub body: Option<&'a Path>,
}

impl Load<'_> {
    /// The `ab` arguments for `url`.
    ///
    /// `-l` accepts responses of varying length: the JSON of `GET /` and
    /// `POST /predict` contains timings whose digits vary, which `ab` would
    /// otherwise count as failed requests.
    pub fn arguments(&self, url: &str) -> Vec<String> {
        let mut arguments = vec![
            "-l".to_owned(),
            "-n".to_owned(),
            self.requests.to_string(),
            "-c".to_owned(),
            self.concurrency.to_string(),
            "-s".to_owned(),
            self.timeout_seconds.to_string(),
        ];
        if let Some(body) = self.body {
            arguments.extend([
                "-p".to_owned(),
                body.display().to_string(),
                "-T".to_owned(),
                "application/octet-stream".to_owned(),
            ]);
        }
        arguments.push(url.to_owned());
        arguments
    }
}

/// What `ab` reported for one load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AbReport {
    /// The full `ab` command line.
    pub command: String,
    /// Requests answered.
    pub complete: u64,
    /// Requests that failed (connect, receive, length or exception).
    pub failed: u64,
    /// Responses with a status other than 2xx.
    pub non_2xx: u64,
    /// Wall time of the whole load, in seconds.
    pub seconds: f64,
    /// `Time per request ... (mean)`: concurrency times wall time over requests, in ms.
    pub mean_ms: f64,
    /// `Time per request ... (mean, across all concurrent requests)`, in ms.
    pub mean_across_ms: f64,
    /// `(percent, ms)` of "Percentage of the requests served within a certain time".
    pub percentiles: Vec<(u32, f64)>,
}

/// Runs `ab` with `load` against `url` and parses its report.
///
/// # Errors
/// When `ab` cannot start, exits with an error or prints no report.
pub fn run(load: &Load, url: &str) -> anyhow::Result<AbReport> {
    let arguments = load.arguments(url);
    let command = format!("ab {}", arguments.join(" "));
    let output = Command::new("ab")
        .args(&arguments)
        .output()
        .context("cannot run ab; install apache2-utils (benches/experiment/install-tools.sh)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "`{command}` failed with {}: {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            stdout.trim()
        );
    }
    parse(&stdout, command)
}

/// Parses the text `ab` prints to standard output.
///
/// # Errors
/// When a line every report has (complete and failed requests, time taken,
/// time per request) is missing or not a number.
pub fn parse(text: &str, command: String) -> anyhow::Result<AbReport> {
    let failed = number_after(text, "Failed requests:")?;
    Ok(AbReport {
        command,
        complete: number_after(text, "Complete requests:")? as u64,
        failed: failed as u64,
        non_2xx: optional_number_after(text, "Non-2xx responses:")?.unwrap_or(0.0) as u64,
        seconds: number_after(text, "Time taken for tests:")?,
        mean_ms: time_per_request(text, "[ms] (mean)")?,
        mean_across_ms: time_per_request(text, "[ms] (mean, across all concurrent requests)")?,
        percentiles: percentiles(text)?,
    })
}

/// The first number after `label` on the line that starts with it.
fn number_after(text: &str, label: &str) -> anyhow::Result<f64> {
    optional_number_after(text, label)?.with_context(|| format!("no {label:?} line in ab output"))
}

fn optional_number_after(text: &str, label: &str) -> anyhow::Result<Option<f64>> {
    let Some(rest) = text
        .lines()
        .find_map(|line| line.trim().strip_prefix(label))
    else {
        return Ok(None);
    };
    let word = rest.split_whitespace().next().unwrap_or("");
    let value = word
        .parse()
        .with_context(|| format!("ab output {label} {rest:?}: {word:?} is not a number"))?;
    Ok(Some(value))
}

/// The value of the `Time per request:` line that ends with `suffix`.
fn time_per_request(text: &str, suffix: &str) -> anyhow::Result<f64> {
    let rest = text
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Time per request:"))
        .find(|rest| rest.trim_end().ends_with(suffix))
        .with_context(|| format!("no \"Time per request: ... {suffix}\" line in ab output"))?;
    let word = rest.split_whitespace().next().unwrap_or("");
    word.parse()
        .with_context(|| format!("ab time per request {word:?} is not a number"))
}

/// The rows under "Percentage of the requests served within a certain time".
///
/// `ab` prints no such table when no request completed; that gives an empty list.
fn percentiles(text: &str) -> anyhow::Result<Vec<(u32, f64)>> {
    let Some(start) = text.find("Percentage of the requests served") else {
        return Ok(Vec::new());
    };
    let mut rows = Vec::new();
    for line in text[start..].lines().skip(1) {
        let mut words = line.split_whitespace();
        let Some(percent) = words.next().and_then(|word| word.strip_suffix('%')) else {
            break;
        };
        let percent = percent
            .parse()
            .with_context(|| format!("ab percentile row {line:?}"))?;
        let millis = words
            .next()
            .with_context(|| format!("ab percentile row {line:?} has no time"))?
            .parse()
            .with_context(|| format!("ab percentile row {line:?} has no time"))?;
        rows.push((percent, millis));
    }
    Ok(rows)
}

impl AbReport {
    /// The time within which `percent`% of the requests were served, in ms.
    pub fn percentile(&self, percent: u32) -> Option<f64> {
        self.percentiles
            .iter()
            .find(|(row, _)| *row == percent)
            .map(|(_, millis)| *millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from `ab -l -n 10 -c 2 -s 300` on `GET /` of `serve --mode server`
    // with a 200-image test split.
    const GET_EVALUATE: &str = include_str!("fixtures/ab-get-evaluate.txt");
    // Captured from `ab -l -n 200 -c 2 -p image.bin` on `POST /predict`.
    const POST_PREDICT: &str = include_str!("fixtures/ab-post-predict.txt");
    // Captured from `ab -n 4 -c 2` on a path that returns 404.
    const NOT_FOUND: &str = include_str!("fixtures/ab-not-found.txt");

    #[test]
    fn evaluate_report() {
        let report = parse(GET_EVALUATE, "ab".to_owned()).unwrap();
        assert_eq!(report.complete, 10);
        assert_eq!(report.failed, 0);
        assert_eq!(report.non_2xx, 0);
        assert!(report.mean_ms > report.mean_across_ms, "{report:?}");
        assert_eq!(report.percentiles.len(), 9);
        assert_eq!(report.percentiles.last().unwrap().0, 100);
        assert!(report.percentile(50).unwrap() <= report.percentile(100).unwrap());
    }

    #[test]
    fn predict_report() {
        let report = parse(POST_PREDICT, "ab".to_owned()).unwrap();
        assert_eq!(report.complete, 200);
        assert_eq!(report.failed, 0);
        assert!(report.seconds > 0.0);
        assert!((report.mean_ms - 2.0 * report.mean_across_ms).abs() < 0.01 * report.mean_ms);
    }

    #[test]
    fn non_2xx_report() {
        let report = parse(NOT_FOUND, "ab".to_owned()).unwrap();
        assert_eq!(report.complete, 4);
        assert_eq!(report.non_2xx, 4);
    }

    #[test]
    fn missing_line() {
        let without: String = GET_EVALUATE
            .lines()
            .filter(|line| !line.starts_with("Complete requests"))
            .map(|line| format!("{line}\n"))
            .collect();
        let error = parse(&without, "ab".to_owned()).unwrap_err().to_string();
        assert!(error.contains("Complete requests"), "{error}");
    }

    #[test]
    fn arguments_for_post() {
        let body = Path::new("image.bin");
        let load = Load {
            requests: 3,
            concurrency: 2,
            timeout_seconds: 300,
            body: Some(body),
        };
        let arguments = load.arguments("http://127.0.0.1:1/predict").join(" ");
        assert_eq!(
            arguments,
            "-l -n 3 -c 2 -s 300 -p image.bin -T application/octet-stream http://127.0.0.1:1/predict"
        );
    }
}

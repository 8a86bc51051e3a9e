//! The Markdown table of an experiment, laid out like the study's table:
//! one row per metric, one column per deployment.

use std::fmt::Write as _;

use super::run::{Run, Variant};
use super::sampler::PhaseSummary;
use super::side::Side;

/// Memory the study's machine had, 4 GiB in MiB; memory shares are of this.
pub const MACHINE_MEMORY_MIB: f64 = 4096.0;

/// The study's published figures: OpenFaaS measured on 32 vCPUs, and Flask
/// on 2 vCPUs, per row of [`ROWS`] (or `-` where the study has none).
const STUDY: [(&str, &str); 5] = [
    ("78.30 s", "844.46 s"),
    ("-", "-"),
    ("4.6 s", "28.8 s"),
    ("0.16% / 0.34%", "4.9% / 26.6%"),
    ("15.41% / 8.06%", "99.9% / 26.49%"),
];

/// Renders one table per thread cap for the sides in `sides`.
pub fn table(runs: &[Run], caps: &[usize], sides: &[Side], epochs: usize) -> String {
    let mut text = String::new();
    for &cap in caps {
        let cpus = runs
            .iter()
            .find(|run| run.cap == cap)
            .map(|run| super::procfs::format_cpu_list(&run.cpus))
            .unwrap_or_default();
        let _ = writeln!(text, "### Thread cap {cap} (CPUs {cpus})\n");
        text.push_str(&cap_table(runs, cap, sides, epochs));
        text.push('\n');
    }
    text.push_str(NOTES);
    text
}

const NOTES: &str = "CPU is CPU time over wall time in percent of one CPU (200% is two \
busy CPUs), as `top` shows it. Memory is the resident set size (VmRSS), in MiB and in \
percent of 4 GiB, the study machine's memory, then its anonymous part (RssAnon); the rest \
is mapped files, mostly the memory-mapped dataset for cifaas. Idle and busy figures are the mean CPU and the \
peak memory over the idle window and over each `ab` load. The study's columns are its published \
figures, not measured here.\n";

fn cap_table(runs: &[Run], cap: usize, sides: &[Side], epochs: usize) -> String {
    let mut text = String::from("| metric | study: OpenFaaS (32 vCPUs) | study: Flask (2 vCPUs) |");
    for side in sides {
        let _ = write!(text, " {} |", side.label());
    }
    text.push_str("\n|---|---|---|");
    text.push_str(&"---|".repeat(sides.len()));
    text.push('\n');

    let cell = |side: &Side, metric: &dyn Fn(&[&Run]) -> Option<String>| -> String {
        let chosen: Vec<&Run> = runs
            .iter()
            .filter(|run| run.cap == cap && run.side == *side)
            .collect();
        metric(&chosen).unwrap_or_else(|| "-".to_owned())
    };
    let mut row =
        |name: String, study: Option<(&str, &str)>, metric: &dyn Fn(&[&Run]) -> Option<String>| {
            let (openfaas, flask) = study.unwrap_or(("-", "-"));
            let _ = write!(text, "| {name} | {openfaas} | {flask} |");
            for side in sides {
                let _ = write!(text, " {} |", cell(side, metric));
            }
            text.push('\n');
        };

    row(
        format!(
            "start-up, training from scratch ({epochs} epoch{})",
            plural(epochs)
        ),
        Some(STUDY[0]),
        &|chosen| median_startup(chosen, Variant::Scratch).map(|s| format!("{s:.2} s")),
    );
    row(
        "start-up from a checkpoint (median of the cold starts)".to_owned(),
        Some(STUDY[1]),
        &|chosen| median_startup(chosen, Variant::Checkpoint).map(format_short_duration),
    );
    row(
        "resident memory when ready, from a checkpoint".to_owned(),
        None,
        &|chosen| {
            let run = full_run(chosen)?;
            Some(memory_with_anon(run.ready_rss_kib, run.ready_rss_anon_kib))
        },
    );
    row(
        "mean time per request, `GET /` (`ab -c 2 -s 300`)".to_owned(),
        Some(STUDY[2]),
        &|chosen| {
            full_run(chosen)?
                .get
                .as_ref()
                .map(|r| format_short_duration(r.mean_ms / 1e3))
        },
    );
    row("`GET /` 50% / 100% within".to_owned(), None, &|chosen| {
        let get = full_run(chosen)?.get.as_ref()?;
        Some(format!(
            "{} / {}",
            format_short_duration(get.percentile(50)? / 1e3),
            format_short_duration(get.percentile(100)? / 1e3)
        ))
    });
    row(
        "peer's mean time per request over this side's, `GET /`".to_owned(),
        None,
        &|chosen| peer_ratio(runs, cap, chosen),
    );
    row("idle CPU / memory".to_owned(), Some(STUDY[3]), &|chosen| {
        full_run(chosen)?.idle.map(usage)
    });
    row(
        "busy CPU / memory, `GET /`".to_owned(),
        Some(STUDY[4]),
        &|chosen| full_run(chosen)?.busy_get.map(usage),
    );
    row(
        "mean time per request, `POST /predict` (one raw image)".to_owned(),
        None,
        &|chosen| {
            let predict = full_run(chosen)?.predict.as_ref()?;
            Some(format!(
                "{} ({:.0} requests/s)",
                format_short_duration(predict.mean_ms / 1e3),
                predict.complete as f64 / predict.seconds
            ))
        },
    );
    row(
        "busy CPU / memory, `POST /predict`".to_owned(),
        None,
        &|chosen| full_run(chosen)?.busy_predict.map(usage),
    );
    row(
        "failed / non-2xx requests (`GET /`, `POST /predict`)".to_owned(),
        None,
        &|chosen| {
            let run = full_run(chosen)?;
            let (get, predict) = (run.get.as_ref()?, run.predict.as_ref()?);
            Some(format!(
                "{} / {}, {} / {}",
                get.failed, get.non_2xx, predict.failed, predict.non_2xx
            ))
        },
    );
    text
}

fn plural(count: usize) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

/// Returns the run that was sampled idle and under load.
fn full_run<'a>(chosen: &[&'a Run]) -> Option<&'a Run> {
    chosen.iter().copied().find(|run| run.get.is_some())
}

/// Returns the median start-up of the runs of `variant`, in seconds.
pub fn median_startup(chosen: &[&Run], variant: Variant) -> Option<f64> {
    let mut values: Vec<f64> = chosen
        .iter()
        .filter(|run| run.variant == variant)
        .map(|run| run.startup_seconds)
        .collect();
    median(&mut values)
}

/// Returns the median of `values` (the mean of the middle two for an even count).
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    })
}

/// Returns the peer's mean `GET /` time per request divided by this side's.
fn peer_ratio(runs: &[Run], cap: usize, chosen: &[&Run]) -> Option<String> {
    let own = full_run(chosen)?;
    if own.side == Side::Peer {
        return None;
    }
    let peer = runs
        .iter()
        .find(|run| run.cap == cap && run.side == Side::Peer && run.get.is_some())?;
    let ratio = peer.get.as_ref()?.mean_ms / own.get.as_ref()?.mean_ms;
    Some(format!("{ratio:.2}x"))
}

fn usage(summary: PhaseSummary) -> String {
    format!(
        "{:.2}% / {}",
        summary.mean_cpu_percent,
        memory_with_anon(summary.max_rss_kib, summary.max_rss_anon_kib)
    )
}

/// Formats a resident set size and its anonymous part, both in KiB.
fn memory_with_anon(rss_kib: u64, anon_kib: u64) -> String {
    format!(
        "{}, {:.1} MiB anonymous",
        memory(rss_kib as f64),
        anon_kib as f64 / 1024.0
    )
}

/// Formats KiB as MiB and as a share of [`MACHINE_MEMORY_MIB`].
pub fn memory(kib: f64) -> String {
    let mib = kib / 1024.0;
    format!("{mib:.1} MiB ({:.2}%)", 100.0 * mib / MACHINE_MEMORY_MIB)
}

/// Formats seconds as ms below one second and as s above.
pub fn format_short_duration(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.1} ms", seconds * 1e3)
    } else {
        format!("{seconds:.2} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn formats() {
        assert_eq!(format_short_duration(0.0123), "12.3 ms");
        assert_eq!(format_short_duration(12.345), "12.35 s");
        assert_eq!(memory(1024.0 * 40.96), "41.0 MiB (1.00%)");
    }
}

//! Finding the dataset when `--data` is not given, and downloading it into
//! the default data folder on request.
//!
//! Without `--data`, `serve` and `train` use the default data folder
//! ([`data::download::user_data_dir`]). When the dataset is missing there,
//! `--download` fetches it; without that flag, a terminal gets a y/N prompt
//! and anything else gets an error that names `--download` and `--data`.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use data::download::{self, DownloadProgress};
use indicatif::{ProgressBar, ProgressStyle};

use crate::UsageError;

/// Where to download the dataset from, as the command line sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadSource {
    /// URL of `cifar-10-binary.tar.gz`.
    pub url: String,
    /// Expected MD5 of the archive.
    pub md5: [u8; 16],
}

impl Default for DownloadSource {
    fn default() -> Self {
        Self {
            url: download::DEFAULT_URL.to_owned(),
            // The constant is 32 hexadecimal digits, as a unit test checks.
            md5: download::parse_md5(download::DEFAULT_MD5).unwrap_or_default(),
        }
    }
}

/// A dataset to open, and whether it must be downloaded first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPlan {
    /// The `--data` path, or the default data folder.
    pub path: PathBuf,
    /// Set when `path` is the default data folder and the dataset must be
    /// downloaded into it before it is opened.
    pub download: Option<DownloadSource>,
}

/// What the caller needs the dataset for, which decides the message when
/// it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// `train`: the dataset is required.
    Train,
    /// `serve` without `--model`: the dataset is required to train on.
    ServeTrain,
    /// `serve --model`: the dataset only enables `GET /`.
    ServeTestSet,
}

/// Decides which dataset to open. `--data` wins. Without it, the default
/// data folder is used when it contains the dataset. When it does not, the
/// plan downloads into it if `download` is true or the user accepts the
/// prompt on a terminal. `serve --model` goes on without a dataset.
///
/// # Errors
/// A [`UsageError`] when the dataset is needed, missing and not to be
/// downloaded, or when no default data folder is known.
pub fn plan_data(
    data: Option<&Path>,
    download: bool,
    source: &DownloadSource,
    need: Need,
) -> anyhow::Result<Option<DataPlan>> {
    if let Some(path) = data {
        return Ok(Some(DataPlan {
            path: path.to_owned(),
            download: None,
        }));
    }
    let folder = download::user_data_dir().ok_or_else(|| {
        UsageError::new(format!(
            "no default data folder: set {} (or XDG_DATA_HOME or HOME), or pass --data PATH",
            download::DATA_DIR_ENV
        ))
    })?;
    if has_dataset(&folder) {
        log::info!(
            "using the dataset in the default data folder {}",
            folder.display()
        );
        return Ok(Some(DataPlan {
            path: folder,
            download: None,
        }));
    }

    log::info!("no dataset in the default data folder {}", folder.display());
    let plan = Some(DataPlan {
        path: folder.clone(),
        download: Some(source.clone()),
    });
    if download {
        return Ok(plan);
    }
    if need == Need::ServeTestSet {
        log::info!("serving without a test set: `GET /` returns 503");
        return Ok(None);
    }
    if io::stdin().is_terminal() && io::stderr().is_terminal() && confirm(source, &folder)? {
        return Ok(plan);
    }
    Err(UsageError::new(missing_message(&folder, need)).into())
}

/// True when `folder` contains the dataset in one of the forms
/// [`data::Cifar10::open`] accepts from a folder.
fn has_dataset(folder: &Path) -> bool {
    folder.join(data::ARCHIVE_NAME).is_file()
        || folder.join(data::FOLDER_NAME).is_dir()
        || folder.join(data::TRAIN_FILES[0]).is_file()
}

fn missing_message(folder: &Path, need: Need) -> String {
    let folder = folder.display();
    let env = download::DATA_DIR_ENV;
    match need {
        Need::ServeTrain => format!(
            "no model to serve and no CIFAR-10 dataset to train on in the default data folder \
             {folder}: pass --download to download it there ({env} sets the folder), \
             --data PATH to use a dataset you have, or --model FILE to load a checkpoint"
        ),
        Need::Train | Need::ServeTestSet => format!(
            "no CIFAR-10 dataset in the default data folder {folder}: pass --download to \
             download it there ({env} sets the folder), or --data PATH to use a dataset you have"
        ),
    }
}

/// Asks on the terminal whether to download; only `y` or `yes` accepts.
fn confirm(source: &DownloadSource, folder: &Path) -> anyhow::Result<bool> {
    let mut stderr = io::stderr();
    write!(
        stderr,
        "CIFAR-10 is not in {}. Download it from {} (about 163 MiB)? [y/N] ",
        folder.display(),
        source.url
    )
    .and_then(|()| stderr.flush())
    .context("failed to write the download prompt")?;
    let mut answer = String::new();
    io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("failed to read the answer to the download prompt")?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Downloads the dataset when the plan requires it, and returns the path to open.
///
/// # Errors
/// The download's error, naming the URL, with the folder as context.
pub fn fetch(plan: &DataPlan) -> anyhow::Result<PathBuf> {
    let Some(source) = &plan.download else {
        return Ok(plan.path.clone());
    };
    let mut progress = Progress::new();
    download::download_dataset(&source.url, &source.md5, &plan.path, &mut progress)
        .with_context(|| format!("failed to download CIFAR-10 into {}", plan.path.display()))?;
    Ok(plan.path.clone())
}

/// Minimum time between two progress lines when stderr is not a terminal.
const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Shows a download's progress: a progress bar on a terminal, else a log
/// line at most every [`LOG_INTERVAL`].
struct Progress {
    bar: Option<ProgressBar>,
    total: Option<u64>,
    last_line: Instant,
}

impl Progress {
    fn new() -> Self {
        Self {
            bar: None,
            total: None,
            last_line: Instant::now(),
        }
    }

    fn log_line(&self, received: u64) {
        let mib = received as f64 / (1024.0 * 1024.0);
        match self.total {
            Some(total) if total > 0 => log::info!(
                "downloaded {mib:.1} of {:.1} MiB ({:.0}%)",
                total as f64 / (1024.0 * 1024.0),
                100.0 * received as f64 / total as f64
            ),
            _ => log::info!("downloaded {mib:.1} MiB"),
        }
    }
}

impl DownloadProgress for Progress {
    fn start(&mut self, total_bytes: Option<u64>) {
        self.total = total_bytes;
        if !io::stderr().is_terminal() {
            return;
        }
        let bar = match total_bytes {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec}, {eta} left",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
            None => ProgressBar::new_spinner(),
        };
        self.bar = Some(bar);
    }

    fn advance(&mut self, received_bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(received_bytes);
        } else if self.last_line.elapsed() >= LOG_INTERVAL {
            self.last_line = Instant::now();
            self.log_line(received_bytes);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_source_is_official() {
        let source = DownloadSource::default();
        assert_eq!(source.url, download::DEFAULT_URL);
        assert_eq!(
            Ok(source.md5),
            download::parse_md5("c32a1d4ab5d03f1284b67883e8d87530")
        );
    }

    #[test]
    fn given_data_wins() {
        let plan = plan_data(
            Some(Path::new("d")),
            true,
            &DownloadSource::default(),
            Need::Train,
        )
        .unwrap();
        assert_eq!(
            plan,
            Some(DataPlan {
                path: PathBuf::from("d"),
                download: None
            })
        );
    }

    #[test]
    fn missing_message_names_flags() {
        let train = missing_message(Path::new("/x/cifaas"), Need::Train);
        assert!(train.contains("/x/cifaas"), "{train}");
        assert!(train.contains("--download"), "{train}");
        assert!(train.contains("--data PATH"), "{train}");
        let serve = missing_message(Path::new("/x/cifaas"), Need::ServeTrain);
        assert!(serve.contains("no model to serve"), "{serve}");
        assert!(serve.contains("--model FILE"), "{serve}");
    }
}

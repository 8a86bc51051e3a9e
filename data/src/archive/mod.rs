//! Unpacking a `.tar.gz` dataset archive once, atomically, and reusing it.
//!
//! An archive `NAME.tar.gz` unpacks into the folder `NAME` inside a cache
//! folder. The seven dataset files are written into a temporary sibling
//! folder with a marker file last, and the temporary folder is then renamed
//! to `NAME`, so an interrupted unpack never leaves a folder named `NAME`.
//! The marker records the archive's size and modification time and each
//! file's size, and a later open reuses the folder while all still match.

use std::env;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

mod extract;

use crate::dataset::{dataset_files, path_metadata};
use crate::{DataError, Result};
use extract::extract;

/// Environment variable that overrides [`user_cache_dir`].
pub const CACHE_DIR_ENV: &str = "CIFAAS_CACHE_DIR";

/// File written last into an unpacked folder.
const MARKER: &str = ".cifaas-unpacked";

/// The outcome of [`unpack_archive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// The folder that contains the seven dataset files.
    pub folder: PathBuf,
    /// True when this call unpacked the archive, false when it reused an
    /// earlier unpack.
    pub unpacked: bool,
}

/// Returns the per-user folder that archives are unpacked into when the
/// archive's own folder is read-only: `$CIFAAS_CACHE_DIR` when set, else
/// `$XDG_CACHE_HOME/cifaas`, else `$HOME/.cache/cifaas`. Returns `None` when
/// none of the three variables is set to a non-empty value.
pub fn user_cache_dir() -> Option<PathBuf> {
    let non_empty = |name: &str| env::var_os(name).filter(|value| !value.is_empty());
    if let Some(dir) = non_empty(CACHE_DIR_ENV) {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = non_empty("XDG_CACHE_HOME") {
        return Some(Path::new(&dir).join("cifaas"));
    }
    non_empty("HOME").map(|home| Path::new(&home).join(".cache").join("cifaas"))
}

/// Unpacks the seven dataset files of `archive` into `cache/NAME`, where
/// `archive` is `NAME.tar.gz` or `NAME.tgz`, unless an earlier call already
/// did so from the same archive. `cache` is created when missing.
///
/// Only the seven dataset files are extracted, from the top level or one
/// folder deep (the official archive contains `cifar-10-batches-bin/...`).
///
/// # Errors
/// - [`DataError::InvalidArchiveEntry`] for an entry that is a link, has an
///   absolute path or a `..` component, or repeats a dataset file.
/// - [`DataError::ArchiveMissingMember`] when one of the seven files is absent.
/// - [`DataError::UnpackFolderInUse`] when `cache/NAME` exists without the
///   marker of an earlier unpack.
/// - [`DataError::Io`] for any read or write failure.
pub fn unpack_archive(archive: &Path, cache: &Path) -> Result<Unpacked> {
    let job = Job::new(archive, cache)?;
    if let Some(done) = job.reuse()? {
        return Ok(done);
    }
    let temp = job.create_temp()?;
    job.finish(temp)
}

/// Unpacks `archive` next to itself, or into [`user_cache_dir`] when its
/// folder is not writable, and returns the dataset folder.
pub(crate) fn unpack_beside(archive: &Path) -> Result<PathBuf> {
    let beside = match archive.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let job = Job::new(archive, beside)?;
    if let Some(done) = job.reuse()? {
        return Ok(done.folder);
    }

    if is_marked_read_only(beside) {
        log::info!("{} is read-only", beside.display());
    } else {
        match job.create_temp() {
            Ok(temp) => return Ok(job.finish(temp)?.folder),
            Err(DataError::Io { source, .. }) if is_denied(&source) => {
                log::info!("cannot write to {}: {source}", beside.display());
            }
            Err(error) => return Err(error),
        }
    }

    let cache = user_cache_dir().ok_or_else(|| DataError::NoCacheFolder {
        archive: archive.to_owned(),
    })?;
    log::info!(
        "using the per-user cache folder {} for {}",
        cache.display(),
        archive.display()
    );
    Ok(unpack_archive(archive, &cache)?.folder)
}

/// True for a `.tar.gz` or `.tgz` file name.
pub(crate) fn is_archive_name(path: &Path) -> bool {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    name.ends_with(".tar.gz") || name.ends_with(".tgz")
}

/// True when no one may write to `dir` by its permission bits. Root can
/// still write there, but a folder marked read-only is treated as such.
fn is_marked_read_only(dir: &Path) -> bool {
    fs::metadata(dir).is_ok_and(|metadata| metadata.permissions().readonly())
}

fn is_denied(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
    )
}

/// Contents of the unpack folder before unpacking.
enum TargetState {
    Absent,
    /// Complete and from the same archive.
    Current,
    /// Written by an earlier unpack, but incomplete or from another archive.
    Stale,
    /// Exists without a marker, so it is not ours to replace.
    Foreign,
}

/// One archive and the cache folder it unpacks into.
struct Job {
    archive: PathBuf,
    cache: PathBuf,
    name: String,
    target: PathBuf,
    /// First line of the marker: identifies the archive.
    identity: String,
}

impl Job {
    fn new(archive: &Path, cache: &Path) -> Result<Self> {
        let metadata = path_metadata(archive)?;
        let modified = metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_nanos());
        let name = archive_stem(archive);
        Ok(Self {
            archive: archive.to_owned(),
            cache: cache.to_owned(),
            target: cache.join(&name),
            name,
            identity: format!("archive {} bytes modified {modified} ns", metadata.len()),
        })
    }

    /// Returns the unpack folder when it is complete and current.
    fn reuse(&self) -> Result<Option<Unpacked>> {
        match self.state()? {
            TargetState::Current => {
                log::info!(
                    "reusing {}, unpacked earlier from {}",
                    self.target.display(),
                    self.archive.display()
                );
                Ok(Some(Unpacked {
                    folder: self.target.clone(),
                    unpacked: false,
                }))
            }
            TargetState::Foreign => Err(DataError::UnpackFolderInUse {
                folder: self.target.clone(),
            }),
            TargetState::Absent | TargetState::Stale => Ok(None),
        }
    }

    fn state(&self) -> Result<TargetState> {
        if fs::symlink_metadata(&self.target).is_err() {
            return Ok(TargetState::Absent);
        }
        let marker = match fs::read_to_string(self.target.join(MARKER)) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Ok(TargetState::Foreign)
            }
            Err(source) => {
                return Err(DataError::Io {
                    action: "cannot read",
                    path: self.target.join(MARKER),
                    source,
                })
            }
        };
        let current = file_sizes(&self.target)
            .is_some_and(|sizes| marker == marker_text(&self.identity, &sizes));
        Ok(if current {
            TargetState::Current
        } else {
            TargetState::Stale
        })
    }

    fn create_temp(&self) -> Result<tempfile::TempDir> {
        let temp_error = |source| DataError::Io {
            action: "cannot create a temporary folder in",
            path: self.cache.clone(),
            source,
        };
        fs::create_dir_all(&self.cache).map_err(temp_error)?;
        // NOTE: a process killed mid-unpack leaves its `.NAME.unpack-*` folder
        // behind. Nothing reads it, but nothing removes it either.
        tempfile::Builder::new()
            .prefix(&format!(".{}.unpack-", self.name))
            .tempdir_in(&self.cache)
            .map_err(temp_error)
    }

    /// Extracts into `temp`, writes the marker and renames `temp` into place.
    fn finish(&self, temp: tempfile::TempDir) -> Result<Unpacked> {
        let started = Instant::now();
        extract(&self.archive, temp.path())?;
        let sizes = file_sizes(temp.path()).ok_or_else(|| DataError::Io {
            action: "cannot read the unpacked files in",
            path: temp.path().to_owned(),
            source: io::Error::from(io::ErrorKind::NotFound),
        })?;
        let marker = temp.path().join(MARKER);
        fs::write(&marker, marker_text(&self.identity, &sizes)).map_err(|source| {
            DataError::Io {
                action: "cannot write",
                path: marker.clone(),
                source,
            }
        })?;

        if let TargetState::Stale = self.state()? {
            self.remove_stale()?;
        }
        let temp = temp.keep();
        if let Err(source) = fs::rename(&temp, &self.target) {
            // Best effort: the rename error is the one worth reporting.
            let _ = fs::remove_dir_all(&temp);
            // Another process may have finished the same unpack first.
            if let TargetState::Current = self.state()? {
                return Ok(Unpacked {
                    folder: self.target.clone(),
                    unpacked: false,
                });
            }
            return Err(DataError::Io {
                action: "cannot rename the unpacked folder to",
                path: self.target.clone(),
                source,
            });
        }

        log::info!(
            "unpacked {} into {} in {:.1} s",
            self.archive.display(),
            self.target.display(),
            started.elapsed().as_secs_f64()
        );
        Ok(Unpacked {
            folder: self.target.clone(),
            unpacked: true,
        })
    }

    /// Moves a stale unpack aside, then deletes it.
    fn remove_stale(&self) -> Result<()> {
        log::info!("replacing the outdated unpack in {}", self.target.display());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let aside = self
            .cache
            .join(format!(".{}.stale-{}-{now}", self.name, std::process::id()));
        let stale_error = |source| DataError::Io {
            action: "cannot remove the outdated unpack",
            path: self.target.clone(),
            source,
        };
        match fs::rename(&self.target, &aside) {
            Ok(()) => fs::remove_dir_all(&aside).map_err(stale_error),
            // Another process moved it first.
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(stale_error(error)),
        }
    }
}

/// Returns the archive's file name without `.tar.gz` or `.tgz`.
fn archive_stem(archive: &Path) -> String {
    let name = archive.file_name().unwrap_or_default().to_string_lossy();
    let stem = name
        .strip_suffix(".tar.gz")
        .or_else(|| name.strip_suffix(".tgz"))
        .unwrap_or(&name);
    if stem.is_empty() {
        "cifar-10".to_owned()
    } else {
        stem.to_owned()
    }
}

/// Sizes of the seven dataset files in `folder`, or `None` if one is missing.
fn file_sizes(folder: &Path) -> Option<Vec<(&'static str, u64)>> {
    dataset_files()
        .map(|file| {
            let metadata = fs::metadata(folder.join(file)).ok()?;
            Some((file, metadata.len()))
        })
        .collect()
}

fn marker_text(identity: &str, sizes: &[(&str, u64)]) -> String {
    let mut text = format!("{identity}\n");
    for (file, size) in sizes {
        text.push_str(&format!("{file} {size} bytes\n"));
    }
    text
}

//! Streaming the dataset files out of a `.tar.gz`, rejecting entries that
//! could write outside the destination.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Component, Path};

use flate2::read::GzDecoder;

use crate::dataset::dataset_files;
use crate::{DataError, Result};

/// Streams the archive and writes its seven dataset files into `dest`.
pub(super) fn extract(archive: &Path, dest: &Path) -> Result<()> {
    let read_error = |source| DataError::Io {
        action: "cannot read archive",
        path: archive.to_owned(),
        source,
    };
    let file = File::open(archive).map_err(read_error)?;
    let mut tar = tar::Archive::new(GzDecoder::new(BufReader::new(file)));
    let mut found: Vec<&'static str> = Vec::new();

    for entry in tar.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        let path = entry.path().map_err(read_error)?.into_owned();
        let kind = entry.header().entry_type();
        let reject = |reason| DataError::InvalidArchiveEntry {
            archive: archive.to_owned(),
            entry: path.display().to_string(),
            reason,
        };

        if let Some(reason) = unsafe_path_reason(&path) {
            return Err(reject(reason));
        }
        if kind.is_symlink() || kind.is_hard_link() {
            return Err(reject("is a link"));
        }
        let Some(member) = dataset_member(&path) else {
            continue;
        };
        if !kind.is_file() {
            return Err(reject("is not a regular file"));
        }
        if found.contains(&member) {
            return Err(reject("repeats a dataset file"));
        }

        let out_path = dest.join(member);
        let write_error = |source| DataError::Io {
            action: "cannot write",
            path: out_path.clone(),
            source,
        };
        let mut out = BufWriter::new(File::create(&out_path).map_err(write_error)?);
        io::copy(&mut entry, &mut out).map_err(|source| DataError::Io {
            action: "cannot unpack",
            path: archive.to_owned(),
            source,
        })?;
        out.flush().map_err(write_error)?;
        found.push(member);
    }

    match dataset_files().find(|file| !found.contains(file)) {
        Some(member) => Err(DataError::ArchiveMissingMember {
            archive: archive.to_owned(),
            member: member.to_owned(),
        }),
        None => Ok(()),
    }
}

/// Returns why an entry path could escape the destination, or `None`.
fn unsafe_path_reason(path: &Path) -> Option<&'static str> {
    for component in path.components() {
        match component {
            Component::RootDir | Component::Prefix(_) => return Some("has an absolute path"),
            Component::ParentDir => return Some("has a `..` component"),
            Component::CurDir | Component::Normal(_) => {}
        }
    }
    None
}

/// Returns the dataset file that an entry path names, at the top level or
/// one folder deep.
fn dataset_member(path: &Path) -> Option<&'static str> {
    let parts: Vec<_> = path
        .components()
        .filter(|component| matches!(component, Component::Normal(_)))
        .collect();
    if parts.is_empty() || parts.len() > 2 {
        return None;
    }
    let name = parts[parts.len() - 1].as_os_str();
    dataset_files().find(|file| name == *file)
}

//! Unpacking next to a read-only archive falls back to the per-user cache.
//!
//! This binary contains one test because it sets environment variables, which
//! other threads of the same process would race with.

mod common;

use std::env;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use common::{expect_err, list_dir};
use data::{user_cache_dir, Cifar10, DataError, CACHE_DIR_ENV};

#[test]
fn read_only_folder_uses_cache() {
    let root = tempfile::tempdir().unwrap();
    let archive_dir = root.path().join("readonly");
    let archive = archive_dir.join("cifar-10-binary.tar.gz");
    let cache = root.path().join("cache");
    data::write_synthetic_archive(&archive, 6, 4).unwrap();

    // Point every cache variable inside the temporary folder, so the test
    // never writes to the user's real cache.
    env::set_var(CACHE_DIR_ENV, &cache);
    env::set_var("XDG_CACHE_HOME", root.path().join("xdg"));
    env::set_var("HOME", root.path().join("home"));
    assert_eq!(user_cache_dir(), Some(cache.clone()));

    env::set_var(CACHE_DIR_ENV, "");
    assert_eq!(
        user_cache_dir(),
        Some(root.path().join("xdg").join("cifaas"))
    );
    env::remove_var("XDG_CACHE_HOME");
    assert_eq!(
        user_cache_dir(),
        Some(root.path().join("home").join(".cache").join("cifaas"))
    );

    fs::set_permissions(&archive_dir, fs::Permissions::from_mode(0o555)).unwrap();
    let _restore = RestoreWritable(archive_dir.clone());
    env::remove_var("HOME");
    assert_eq!(user_cache_dir(), None);
    let error = expect_err(Cifar10::open(&archive));
    assert!(
        matches!(error, DataError::NoCacheFolder { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("CIFAAS_CACHE_DIR"), "{error}");

    env::set_var(CACHE_DIR_ENV, &cache);
    let dataset = Cifar10::open(&archive).unwrap();
    assert_eq!(dataset.folder, cache.join("cifar-10-binary"));
    assert_eq!(dataset.train.len(), 30);
    assert_eq!(list_dir(&archive_dir), ["cifar-10-binary.tar.gz"]);

    let again = Cifar10::open(&archive).unwrap();
    assert_eq!(again.folder, dataset.folder);
    assert_eq!(list_dir(&cache), ["cifar-10-binary"]);
}

/// Makes a folder writable again when dropped, so that the temporary
/// folder can be deleted even after a failed assert.
struct RestoreWritable(PathBuf);

impl Drop for RestoreWritable {
    fn drop(&mut self) {
        let _ = fs::set_permissions(&self.0, fs::Permissions::from_mode(0o755));
    }
}

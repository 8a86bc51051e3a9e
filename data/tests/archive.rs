//! Unpacking `.tar.gz` archives: once, atomically, and never outside the
//! destination.

mod common;

use std::fs;
use std::path::Path;

use common::{dataset_entries, expect_err, list_dir, write_raw_archive, Entry};
use data::{unpack_archive, Cifar10, DataError, CLASS_NAMES};

/// Builds archive entries from `dataset_entries` plus `extra`, in that order.
fn archive_with(path: &Path, records: usize, extra: &[Entry<'_>]) {
    let files = dataset_entries(records);
    let mut entries: Vec<Entry<'_>> = files
        .iter()
        .map(|(name, bytes)| Entry::File(name, bytes))
        .collect();
    entries.extend(extra.iter().copied());
    write_raw_archive(path, &entries);
}

/// Checks that unpacking `archive` into a fresh cache is rejected with
/// `reason`, and that nothing is left in the cache.
fn assert_rejected(archive: &Path, entry: &str, reason: &str) {
    let cache = tempfile::tempdir().unwrap();
    let error = expect_err(unpack_archive(archive, cache.path()));
    let message = error.to_string();
    assert!(
        matches!(&error, DataError::InvalidArchiveEntry { entry: found, reason: why, .. }
            if found == entry && *why == reason),
        "{error:?}"
    );
    assert!(message.contains(entry), "{message}");
    assert!(message.contains("rejected entry"), "{message}");
    assert_eq!(
        list_dir(cache.path()),
        Vec::<String>::new(),
        "cache not clean"
    );
}

#[test]
fn archive_opens_beside_itself() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("cifar-10-binary.tar.gz");
    data::write_synthetic_archive(&archive, 12, 5).unwrap();

    let dataset = Cifar10::open(&archive).unwrap();
    assert_eq!(dataset.folder, dir.path().join("cifar-10-binary"));
    assert_eq!(dataset.train.len(), 60);
    assert_eq!(dataset.test.len(), 12);
    assert_eq!(dataset.class_names, CLASS_NAMES);
    assert_eq!(
        list_dir(dir.path()),
        ["cifar-10-binary", "cifar-10-binary.tar.gz"]
    );
}

#[test]
fn archive_matches_folder() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("synthetic.tgz");
    let folder = dir.path().join("plain");
    data::write_synthetic_archive(&archive, 7, 9).unwrap();
    data::write_synthetic(&folder, 7, 9).unwrap();

    let unpacked = unpack_archive(&archive, &dir.path().join("cache")).unwrap();
    assert_eq!(unpacked.folder, dir.path().join("cache").join("synthetic"));
    for name in list_dir(&folder) {
        let expected = fs::read(folder.join(&name)).unwrap();
        let found = fs::read(unpacked.folder.join(&name)).unwrap();
        assert!(
            expected == found,
            "{name} differs between folder and archive"
        );
    }
}

#[test]
fn folder_with_archive_opens_it() {
    let dir = tempfile::tempdir().unwrap();
    data::write_synthetic_archive(&dir.path().join("cifar-10-binary.tar.gz"), 4, 1).unwrap();
    let dataset = Cifar10::open(dir.path()).unwrap();
    assert_eq!(dataset.folder, dir.path().join("cifar-10-binary"));
    assert_eq!(dataset.test.len(), 4);
}

#[test]
fn second_unpack_reuses_folder() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("cifar-10-binary.tar.gz");
    let cache = dir.path().join("cache");
    data::write_synthetic_archive(&archive, 5, 2).unwrap();

    let first = unpack_archive(&archive, &cache).unwrap();
    assert!(first.unpacked);
    let marker = first.folder.join(".cifaas-unpacked");
    let marked_at = fs::metadata(&marker).unwrap().modified().unwrap();
    let file_at = fs::metadata(first.folder.join("data_batch_1.bin"))
        .unwrap()
        .modified()
        .unwrap();

    let second = unpack_archive(&archive, &cache).unwrap();
    assert!(!second.unpacked, "second call unpacked again");
    assert_eq!(second.folder, first.folder);
    assert_eq!(
        fs::metadata(&marker).unwrap().modified().unwrap(),
        marked_at
    );
    let file_now = fs::metadata(first.folder.join("data_batch_1.bin"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(file_now, file_at);

    let dataset = Cifar10::open_with_cache(&archive, &cache).unwrap();
    assert_eq!(dataset.folder, first.folder);
    assert_eq!(
        fs::metadata(&marker).unwrap().modified().unwrap(),
        marked_at
    );
    assert_eq!(
        list_dir(&cache),
        ["cifar-10-binary"],
        "temporary folders left"
    );
}

#[test]
fn replaced_archive_unpacks_again() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("cifar-10-binary.tar.gz");
    let cache = dir.path().join("cache");
    data::write_synthetic_archive(&archive, 5, 2).unwrap();
    assert!(unpack_archive(&archive, &cache).unwrap().unpacked);

    data::write_synthetic_archive(&archive, 8, 3).unwrap();
    let again = unpack_archive(&archive, &cache).unwrap();
    assert!(again.unpacked, "a different archive reused the old unpack");
    let dataset = Cifar10::open_with_cache(&archive, &cache).unwrap();
    assert_eq!(dataset.test.len(), 8);
    assert_eq!(list_dir(&cache), ["cifar-10-binary"], "stale folders left");
}

#[test]
fn incomplete_unpack_is_redone() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("cifar-10-binary.tar.gz");
    let cache = dir.path().join("cache");
    data::write_synthetic_archive(&archive, 5, 2).unwrap();
    let first = unpack_archive(&archive, &cache).unwrap();

    fs::remove_file(first.folder.join("test_batch.bin")).unwrap();
    assert!(
        unpack_archive(&archive, &cache).unwrap().unpacked,
        "missing file"
    );

    let path = first.folder.join("data_batch_4.bin");
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..3073]).unwrap();
    assert!(
        unpack_archive(&archive, &cache).unwrap().unpacked,
        "short file"
    );
    assert_eq!(fs::read(&path).unwrap(), bytes);
}

#[test]
fn unmarked_folder_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("cifar-10-binary.tar.gz");
    data::write_synthetic_archive(&archive, 3, 2).unwrap();
    let own = dir.path().join("cifar-10-binary");
    fs::create_dir(&own).unwrap();
    fs::write(own.join("notes.txt"), "mine").unwrap();

    let error = expect_err(Cifar10::open(&archive));
    assert!(
        matches!(&error, DataError::UnpackFolderInUse { folder } if *folder == own),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("remove it or choose another cache folder"),
        "{error}"
    );
    assert_eq!(list_dir(&own), ["notes.txt"]);
}

#[test]
fn parent_dir_entry_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("evil.tar.gz");
    let entry = "cifar-10-batches-bin/../../escaped.txt";
    archive_with(&archive, 2, &[Entry::File(entry, b"x")]);
    assert_rejected(&archive, entry, "has a `..` component");
    assert!(!dir.path().join("escaped.txt").exists());
}

#[test]
fn parent_dir_member_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("evil.tar.gz");
    let entry = "../data_batch_1.bin";
    write_raw_archive(&archive, &[Entry::File(entry, &[0; 3073])]);
    assert_rejected(&archive, entry, "has a `..` component");
}

#[test]
fn absolute_entry_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("evil.tar.gz");
    let target = dir.path().join("absolute.txt");
    let entry = target.to_str().unwrap();
    archive_with(&archive, 2, &[Entry::File(entry, b"x")]);
    assert_rejected(&archive, entry, "has an absolute path");
    assert!(!target.exists());
}

#[test]
fn symlink_entry_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("evil.tar.gz");
    let entry = "cifar-10-batches-bin/passwd";
    archive_with(&archive, 2, &[Entry::Symlink(entry, "/etc/passwd")]);
    assert_rejected(&archive, entry, "is a link");
}

#[test]
fn symlink_member_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("evil.tar.gz");
    let entry = "cifar-10-batches-bin/test_batch.bin";
    write_raw_archive(&archive, &[Entry::Symlink(entry, "/dev/zero")]);
    assert_rejected(&archive, entry, "is a link");
}

#[test]
fn hard_link_entry_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("evil.tar.gz");
    let entry = "cifar-10-batches-bin/copy.bin";
    let target = "cifar-10-batches-bin/data_batch_1.bin";
    archive_with(&archive, 2, &[Entry::HardLink(entry, target)]);
    assert_rejected(&archive, entry, "is a link");
}

#[test]
fn repeated_member_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("twice.tar.gz");
    let entry = "other/batches.meta.txt";
    archive_with(&archive, 2, &[Entry::File(entry, b"a\n")]);
    assert_rejected(&archive, entry, "repeats a dataset file");
}

#[test]
fn missing_member_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("partial.tar.gz");
    let files: Vec<_> = dataset_entries(2)
        .into_iter()
        .filter(|(name, _)| !name.ends_with("test_batch.bin"))
        .collect();
    let entries: Vec<Entry<'_>> = files
        .iter()
        .map(|(name, bytes)| Entry::File(name, bytes))
        .collect();
    write_raw_archive(&archive, &entries);

    let cache = tempfile::tempdir().unwrap();
    let error = expect_err(unpack_archive(&archive, cache.path()));
    assert!(
        matches!(&error, DataError::ArchiveMissingMember { member, .. } if member == "test_batch.bin"),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("does not contain test_batch.bin"),
        "{error}"
    );
    assert_eq!(
        list_dir(cache.path()),
        Vec::<String>::new(),
        "cache not clean"
    );
}

#[test]
fn top_level_members_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("flat.tar.gz");
    let files: Vec<(String, Vec<u8>)> = dataset_entries(3)
        .into_iter()
        .map(|(name, bytes)| (name.replace("cifar-10-batches-bin/", "./"), bytes))
        .collect();
    let entries: Vec<Entry<'_>> = files
        .iter()
        .map(|(name, bytes)| Entry::File(name, bytes))
        .chain([Entry::File("readme.html", b"<p>hi</p>")])
        .collect();
    write_raw_archive(&archive, &entries);

    let dataset = Cifar10::open(&archive).unwrap();
    assert_eq!(dataset.train.len(), 15);
    assert_eq!(
        list_dir(&dataset.folder).len(),
        8,
        "only the seven files and the marker"
    );
}

#[test]
fn truncated_archive_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("cut.tar.gz");
    data::write_synthetic_archive(&archive, 20, 4).unwrap();
    let bytes = fs::read(&archive).unwrap();
    fs::write(&archive, &bytes[..bytes.len() / 2]).unwrap();

    let cache = tempfile::tempdir().unwrap();
    let error = expect_err(unpack_archive(&archive, cache.path()));
    assert!(matches!(error, DataError::Io { .. }), "{error:?}");
    assert!(error.to_string().contains("cut.tar.gz"), "{error}");
    assert_eq!(
        list_dir(cache.path()),
        Vec::<String>::new(),
        "cache not clean"
    );
}

#[test]
fn missing_archive_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("absent.tar.gz");
    let error = expect_err(unpack_archive(&archive, dir.path()));
    assert!(matches!(error, DataError::PathNotFound { .. }), "{error:?}");
}

#[test]
fn concurrent_unpacks_agree() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("cifar-10-binary.tar.gz");
    let cache = dir.path().join("cache");
    data::write_synthetic_archive(&archive, 40, 6).unwrap();

    let results: Vec<_> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| unpack_archive(&archive, &cache).unwrap()))
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap())
            .collect()
    });
    for result in &results {
        assert_eq!(result.folder, cache.join("cifar-10-binary"));
    }
    assert!(results.iter().any(|result| result.unpacked), "{results:?}");
    assert_eq!(
        list_dir(&cache),
        ["cifar-10-binary"],
        "temporary folders left"
    );
    assert_eq!(
        Cifar10::open_with_cache(&archive, &cache)
            .unwrap()
            .test
            .len(),
        40
    );
}

//! The real CIFAR-10 archive, when the shared data folder is present.
//!
//! One test opens the archive once, because unpacking its 170 MB takes
//! seconds. It unpacks into a temporary cache, never next to the archive.

use std::path::Path;
use std::time::Instant;

use data::{ChannelStats, Cifar10, CLASS_NAMES};

const ARCHIVE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/cifar-10-binary.tar.gz"
);

#[test]
fn real_archive_opens() {
    let archive = Path::new(ARCHIVE);
    if !archive.is_file() {
        println!("skipped: {} not found", archive.display());
        return;
    }
    let cache = tempfile::tempdir().unwrap();

    let started = Instant::now();
    let dataset = Cifar10::open_with_cache(archive, cache.path()).unwrap();
    println!(
        "unpacked and opened {} in {:.2} s",
        archive.display(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(dataset.train.len(), 50_000);
    assert_eq!(dataset.test.len(), 10_000);
    assert_eq!(dataset.class_names, CLASS_NAMES);

    let train_counts = dataset.train.label_counts();
    let test_counts = dataset.test.label_counts();
    println!("training records per class: {train_counts:?}");
    println!("test records per class: {test_counts:?}");
    assert_eq!(train_counts, [5_000; 10]);
    assert_eq!(test_counts, [1_000; 10]);

    let started = Instant::now();
    let stats = ChannelStats::compute(&dataset.train);
    println!(
        "training channel mean {:?}, std {:?}, computed in {:.3} s",
        stats.mean,
        stats.std,
        started.elapsed().as_secs_f64()
    );
    // This copy gave mean 0.491, 0.482, 0.447 and std 0.245, 0.243, 0.261,
    // so the ranges only catch gross errors such as a wrong plane order.
    for channel in 0..3 {
        assert!((0.4..0.55).contains(&stats.mean[channel]), "{stats:?}");
        assert!((0.2..0.3).contains(&stats.std[channel]), "{stats:?}");
    }

    let started = Instant::now();
    let again = Cifar10::open_with_cache(archive, cache.path()).unwrap();
    println!("reopened in {:.3} s", started.elapsed().as_secs_f64());
    assert_eq!(again.folder, dataset.folder);
}

//! Thread pools, seeded inputs, synthetic data and criterion settings.

use std::time::Duration;

use criterion::Criterion;
use data::{write_synthetic, Cifar10};
use model::TrainConfig;
use rayon::{ThreadPool, ThreadPoolBuilder};
use tempfile::TempDir;

/// Builds a rayon pool of exactly `threads` threads.
///
/// # Panics
/// When the operating system cannot start the threads.
pub fn pool(threads: usize) -> ThreadPool {
    ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |index| format!("bench-{threads}-{index}"))
        .build()
        .unwrap_or_else(|error| panic!("cannot start a pool of {threads} threads: {error}"))
}

/// Returns `len` values uniform in `[-1, 1)`, the same for the same seed.
pub fn seeded_values(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            // SplitMix64; its top 24 bits scaled to [-1, 1).
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// A synthetic dataset in a temporary folder, removed on drop.
pub struct SyntheticData {
    /// The opened dataset.
    pub dataset: Cifar10,
    _folder: TempDir,
}

/// Writes and opens a synthetic dataset of `records` images per batch file
/// (so `5 * records` training images).
///
/// # Panics
/// When the temporary folder cannot be written or read.
pub fn synthetic_dataset(records: usize) -> SyntheticData {
    let folder = tempfile::tempdir().expect("cannot create a temporary folder");
    write_synthetic(folder.path(), records, 7).expect("cannot write the synthetic dataset");
    let dataset = Cifar10::open(folder.path()).expect("cannot open the synthetic dataset");
    SyntheticData {
        dataset,
        _folder: folder,
    }
}

/// Returns the network's default training options (batch 64, lr 0.01,
/// Nesterov momentum 0.9, dropout 0.25) without evaluation after epochs.
pub fn train_config() -> TrainConfig {
    TrainConfig {
        evaluate_each_epoch: false,
        ..TrainConfig::default()
    }
}

/// Returns criterion settings for kernels that take milliseconds: 10
/// samples over 1.5 s after 0.5 s of warm-up.
pub fn criterion_config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .configure_from_args()
}

/// Returns criterion settings for a training step or a large batch of
/// inference: 10 samples over 3 s after 1 s of warm-up.
pub fn slow_criterion_config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}

/// Returns this process's peak resident set size in KiB (`VmHWM` in
/// `/proc/self/status`), or `None` where that file does not exist or lacks
/// the field.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_values_in_range() {
        let values = seeded_values(10_000, 3);
        assert!(values.iter().all(|v| (-1.0..1.0).contains(v)));
        assert_eq!(values, seeded_values(10_000, 3));
        assert_ne!(values, seeded_values(10_000, 4));
    }

    #[test]
    fn pool_has_requested_threads() {
        assert_eq!(pool(2).current_num_threads(), 2);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn peak_rss_is_read() {
        assert!(peak_rss_kib().is_some_and(|kib| kib > 0));
    }
}

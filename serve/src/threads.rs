//! The thread count and the one rayon pool that all model compute runs on.

use anyhow::Context;
use rayon::{ThreadPool, ThreadPoolBuilder};

/// Number of CPUs this process may run on.
///
/// On Linux `available_parallelism` honours the CPU affinity mask (for
/// example `taskset -c 0`) and a cgroup CPU quota; 1 when it cannot tell.
pub fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |count| count.get())
}

/// Returns `requested`, or every available CPU when it is `None`.
pub fn resolve_threads(requested: Option<usize>) -> usize {
    requested.unwrap_or_else(available_threads)
}

/// Builds the compute pool of `threads` threads, named `compute-0`, `compute-1`, ...
///
/// # Errors
/// When the operating system refuses to start the threads.
pub fn build_pool(threads: usize) -> anyhow::Result<ThreadPool> {
    ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|index| format!("compute-{index}"))
        .build()
        .with_context(|| format!("failed to start a compute pool of {threads} threads"))
}

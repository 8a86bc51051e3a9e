//! Shared setup of the cifaas benchmarks, the flame-graph binary and the
//! `cifaas-perf` measuring binary: the network's layer shapes, FLOP counts,
//! a plain-GEMM ceiling, seeded inputs, thread pools and synthetic data.
//!
//! Every benchmark runs inside a rayon pool of a fixed size
//! ([`THREAD_COUNTS`]), so one run reports 1 thread next to 2 threads.

pub mod experiment;

mod ceiling;
mod layers;
mod setup;

pub use ceiling::{
    conv_backward_ceiling, conv_forward_ceiling, linear_ceiling, sgemm, ConvCeiling, LinearCeiling,
    Strided,
};
pub use layers::{linear_geometry, ConvLayer, CONV_LAYERS, FC_IN, FC_OUT};
pub use setup::{
    criterion_config, peak_rss_kib, pool, seeded_values, slow_criterion_config, synthetic_dataset,
    train_config, SyntheticData,
};

/// Images per training step, as in the network's default configuration.
pub const BATCH: usize = 64;

/// Thread counts every benchmark runs at, side by side.
pub const THREAD_COUNTS: [usize; 2] = [1, 2];

//! Checks that a training step allocates nothing once the first steps have
//! sized every buffer, with a global allocator that counts allocations.
//! It lives in its own test binary because the allocator is process-wide.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use data::Cifar10;
use model::{Network, TrainConfig, Trainer};

/// Forwards to the system allocator and counts allocations while `ACTIVE`.
struct CountingAllocator;

static ACTIVE: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments, so
// the `GlobalAlloc` contract is met exactly as it does for `System`. The
// counters are atomics and allocate nothing.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ACTIVE.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `alloc`'s contract for `layout`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ACTIVE.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn training_step_allocates_nothing() {
    if !kernels::gemm_is_allocation_free() {
        // Without AVX-512F the GEMM is matrixmultiply's, which allocates
        // its packing buffers on every call, so this check cannot hold.
        eprintln!("skipped: this CPU lacks AVX-512F, so each GEMM call allocates");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    data::write_synthetic(dir.path(), 200, 3).unwrap();
    let dataset = Cifar10::open(dir.path()).unwrap();
    let stats = data::ChannelStats::compute(&dataset.train);
    let config = TrainConfig {
        batch_size: 40,
        ..TrainConfig::default()
    };
    let mut network = Network::new(4, config.dropout, stats).unwrap();
    let mut trainer = Trainer::new(&config, &network).unwrap();
    let indices: Vec<usize> = (0..dataset.train.len()).collect();
    let batches: Vec<&[usize]> = indices.chunks(config.batch_size).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();

    pool.install(|| {
        // Warm-up: the first steps size the thread-local GEMM buffers on
        // every worker that takes a chunk.
        for batch in batches.iter().cycle().take(4) {
            trainer.step(&mut network, &dataset.train, batch).unwrap();
        }

        ACTIVE.store(true, Ordering::SeqCst);
        for batch in batches.iter().cycle().take(5) {
            trainer.step(&mut network, &dataset.train, batch).unwrap();
        }
        ACTIVE.store(false, Ordering::SeqCst);
    });
    let count = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(
        count, 0,
        "{count} allocations in 5 training steps after warm-up"
    );
}

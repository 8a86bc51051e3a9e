//! The model built into `serve`: it decodes, `serve` with no `--model` and
//! no dataset answers predictions with it, and on the real CIFAR-10 test set
//! it classifies exactly as many images correctly as its run record says.

mod support;

use std::path::Path;

use cifaas_serve::builtin;
use support::{get, post, Serve};

const REAL_ARCHIVE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/cifar-10-binary.tar.gz"
);

#[test]
fn builtin_model_decodes_with_record() {
    let network = builtin::load().expect("decode the built-in model");
    assert_eq!(network.parameters().len(), model::parameter_count());
    let accuracy = builtin::recorded_test_accuracy().expect("a recorded test accuracy");
    let correct = builtin::recorded_test_correct().expect("a recorded correct count");
    assert!((0.0..=1.0).contains(&accuracy), "{accuracy}");
    assert_eq!(correct as f64 / 10_000.0, accuracy);
}

#[test]
fn builtin_accuracy_matches_record() {
    let archive = Path::new(REAL_ARCHIVE);
    if !archive.exists() {
        eprintln!("skipped: real CIFAR-10 archive not found at {REAL_ARCHIVE}");
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let dataset = data::Cifar10::open_with_cache(archive, cache.path()).expect("open real data");
    let network = builtin::load().unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let evaluation = pool
        .install(|| model::evaluate(&network, &dataset.test, 256))
        .unwrap();
    let recorded = builtin::recorded_test_correct().expect("a recorded correct count");
    assert_eq!(evaluation.total, 10_000);
    assert_eq!(
        evaluation.correct as u64, recorded,
        "correct test images differ from the record"
    );
}

#[test]
fn serve_without_model_uses_builtin() {
    let data_dir = tempfile::tempdir().unwrap();
    let lock = data_dir.path().join("lock");
    let serve = Serve::start_with_env(
        &[
            "--mode",
            "function",
            "--bind",
            "127.0.0.1:0",
            "--threads",
            "1",
            "--lock-file",
            lock.to_str().unwrap(),
        ],
        &[("CIFAAS_DATA_DIR", data_dir.path().to_str().unwrap())],
    );
    serve.wait_until_ready();
    assert!(serve.log().contains("built-in model"), "{}", serve.log());

    let image = vec![128u8; data::IMAGE_BYTES];
    let response = post(serve.addr(), "/predict", &image);
    assert_eq!(response.status, 200, "{}", serve.log());
    let body = response.json();
    let probabilities = body["probabilities"].as_array().expect("probabilities");
    assert_eq!(probabilities.len(), 10);
    let sum: f64 = probabilities.iter().map(|p| p.as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-4, "{sum}");

    // Without a dataset there is no test set to evaluate.
    assert_eq!(get(serve.addr(), "/").status, 503);
}

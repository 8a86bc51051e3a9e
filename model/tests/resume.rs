//! A run stopped after an epoch and resumed from its saved state ends with
//! the same parameters as an uninterrupted run.

use data::Cifar10;
use model::{
    load_train_state, save_train_state, train_resumable, ModelError, TrainConfig, TrainState,
};

fn pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap()
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 16,
        seed: 5,
        evaluate_each_epoch: false,
        ..TrainConfig::default()
    }
}

#[test]
fn resumed_run_equals_uninterrupted() {
    let dir = tempfile::tempdir().unwrap();
    data::write_synthetic(dir.path().join("set").as_path(), 40, 6).unwrap();
    let dataset = Cifar10::open(&dir.path().join("set")).unwrap();
    let state_path = dir.path().join("run.state");

    let straight = pool()
        .install(|| train_resumable(&config(3), &dataset, None, &mut |_, _| {}))
        .unwrap();

    let mut saved = 0;
    pool()
        .install(|| {
            train_resumable(&config(1), &dataset, None, &mut |_, state| {
                save_train_state(state, &state_path).unwrap();
                saved += 1;
            })
        })
        .unwrap();
    assert_eq!(saved, 1);
    let state = load_train_state(&state_path).expect("load state");
    assert_eq!(state.epochs_done, 1);
    assert!(state.steps_taken > 0);

    let mut epochs = Vec::new();
    let resumed = pool()
        .install(|| {
            train_resumable(&config(3), &dataset, Some(state), &mut |report, _| {
                epochs.push(report.epoch)
            })
        })
        .unwrap();
    assert_eq!(epochs, vec![2, 3]);
    assert!(
        resumed.parameters() == straight.parameters(),
        "resumed run differs from the uninterrupted one"
    );
}

fn saved_state(dir: &std::path::Path) -> (Cifar10, TrainState, Vec<u8>) {
    data::write_synthetic(&dir.join("set"), 10, 6).unwrap();
    let dataset = Cifar10::open(&dir.join("set")).unwrap();
    let path = dir.join("run.state");
    let mut last = None;
    pool()
        .install(|| {
            train_resumable(&config(1), &dataset, None, &mut |_, state| {
                save_train_state(state, &path).unwrap();
                last = Some(state.clone());
            })
        })
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (dataset, last.unwrap(), bytes)
}

#[test]
fn resume_rejects_changed_options() {
    let dir = tempfile::tempdir().unwrap();
    let (dataset, state, _) = saved_state(dir.path());
    let cases = [
        (
            TrainConfig {
                seed: 6,
                ..config(2)
            },
            "--seed 5",
        ),
        (
            TrainConfig {
                batch_size: 8,
                ..config(2)
            },
            "--batch-size 16",
        ),
        (
            TrainConfig {
                lr: 0.02,
                ..config(2)
            },
            "--lr 0.01",
        ),
        (config(1), "--epochs above 1"),
    ];
    for (changed, expected) in cases {
        let err =
            train_resumable(&changed, &dataset, Some(state.clone()), &mut |_, _| {}).unwrap_err();
        assert!(matches!(err, ModelError::Config(_)), "{err}");
        assert!(err.to_string().contains(expected), "{expected}: {err}");
    }
}

#[test]
fn corrupt_state_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, bytes) = saved_state(dir.path());
    let path = dir.path().join("bad.state");
    let mut flipped = bytes.clone();
    flipped[40] ^= 1;
    let cases: [(&[u8], &str); 3] = [
        (&bytes[..bytes.len() - 3], "checksum mismatch"),
        (&flipped, "checksum mismatch"),
        (b"CIFAASCK-not-a-state", "wrong magic number"),
    ];
    for (content, expected) in cases {
        std::fs::write(&path, content).unwrap();
        let err = load_train_state(&path).unwrap_err();
        assert!(matches!(err, ModelError::Checkpoint { .. }), "{err}");
        assert!(err.to_string().contains(expected), "{expected}: {err}");
    }
}

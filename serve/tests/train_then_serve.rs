//! The `train` binary end to end, then `serve` on what it wrote, and `serve`
//! on the real CIFAR-10 test set when the archive is present.

mod support;

use std::path::Path;

use support::{get, run_binary, Files, Serve};

const REAL_ARCHIVE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/cifar-10-binary.tar.gz"
);

#[test]
fn train_writes_checkpoint_serve_loads() {
    let dataset = support::synthetic_dataset(100, 21);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("trained.ckpt");
    let args = [
        "--data",
        dataset.path().to_str().unwrap(),
        "--epochs",
        "2",
        "--threads",
        "2",
        "--seed",
        "4",
        "--batch-size",
        "32",
        "--lr",
        "0.02",
        "--momentum",
        "0.8",
        "--dropout",
        "0.1",
        "--out",
        out.to_str().unwrap(),
    ];
    let (status, stdout, stderr) = run_binary(env!("CARGO_BIN_EXE_train"), &args);
    assert!(status.success(), "train failed:\n{stdout}\n{stderr}");
    for line in [
        "epoch 1/2: loss",
        "epoch 2/2: loss",
        "images/s",
        "test accuracy",
        "saved checkpoint",
    ] {
        assert!(stdout.contains(line), "no '{line}' in:\n{stdout}");
    }
    assert!(stdout.contains(out.to_str().unwrap()), "{stdout}");
    assert!(out.exists());

    let lock = dir.path().join("lock");
    let serve = Serve::start(&[
        "--mode",
        "server",
        "--bind",
        "127.0.0.1:0",
        "--threads",
        "2",
        "--model",
        out.to_str().unwrap(),
        "--data",
        dataset.path().to_str().unwrap(),
        "--lock-file",
        lock.to_str().unwrap(),
    ]);
    serve.wait_until_ready();
    assert!(serve.log().contains("loaded checkpoint"), "{}", serve.log());
    let body = get(serve.addr(), "/").json();
    assert_eq!(body["total"], 100);
    assert_eq!(body["threads"], 2);
}

#[test]
fn serve_real_test_set() {
    if !Path::new(REAL_ARCHIVE).exists() {
        println!("skipped: {REAL_ARCHIVE} not found");
        return;
    }
    let files = Files::new(10, 2);
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cifaas-cache");
    let mut args = files.args("server");
    args.extend([
        "--data".into(),
        REAL_ARCHIVE.into(),
        "--threads".into(),
        "2".into(),
    ]);
    // Evaluating 10,000 images takes seconds on an idle machine but can pass
    // the default 30 s `exec_timeout` on a loaded one, so the test lifts it.
    let env = [
        ("CIFAAS_CACHE_DIR", cache.to_str().unwrap()),
        ("exec_timeout", "0"),
    ];
    let serve = Serve::start_with_env(&args, &env);
    serve.wait_until_ready();

    let response = get(serve.addr(), "/");
    assert_eq!(response.status, 200, "{}", serve.log());
    let body = response.json();
    assert_eq!(body["total"], 10_000);
    assert_eq!(body["mode"], "server");
    println!("untrained network on the real test set: {body}");
}

#[test]
fn train_unpacks_archive_into_named_folder() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("cifar-10-binary.tar.gz");
    data::write_synthetic_archive(&archive, 40, 3).expect("write synthetic archive");
    let unpack = dir.path().join("unpacked");
    let out = dir.path().join("m.ckpt");
    let args = [
        "--data",
        archive.to_str().unwrap(),
        "--unpack-dir",
        unpack.to_str().unwrap(),
        "--threads",
        "1",
        "--out",
        out.to_str().unwrap(),
    ];
    let (status, stdout, stderr) = run_binary(env!("CARGO_BIN_EXE_train"), &args);
    assert!(status.success(), "train failed:\n{stdout}\n{stderr}");
    let test_batch = unpack.join("cifar-10-binary").join("test_batch.bin");
    assert!(
        test_batch.exists(),
        "nothing unpacked into {}",
        unpack.display()
    );
    let beside = dir.path().join("cifar-10-binary");
    assert!(!beside.exists(), "archive was also unpacked next to itself");
    assert!(out.exists());
}

#[test]
fn train_resume_matches_straight_run() {
    let dataset = support::synthetic_dataset(30, 9);
    let dir = tempfile::tempdir().unwrap();
    let data = dataset.path().to_str().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let common = ["--data", data, "--threads", "2", "--batch-size", "16"];
    let run = |extra: &[&str]| {
        let mut args: Vec<&str> = common.to_vec();
        args.extend_from_slice(extra);
        let (status, stdout, stderr) = run_binary(env!("CARGO_BIN_EXE_train"), &args);
        assert!(
            status.success(),
            "train {extra:?} failed:\n{stdout}\n{stderr}"
        );
        stdout
    };

    let (straight, first, resumed) = (path("straight.ckpt"), path("first.ckpt"), path("r.ckpt"));
    run(&["--epochs", "2", "--out", &straight]);
    let stdout = run(&["--epochs", "1", "--out", &first]);
    let state = format!("{first}.state");
    assert!(
        stdout.contains(&format!("saved training state {state}")),
        "{stdout}"
    );
    let stdout = run(&["--epochs", "2", "--resume", &state, "--out", &resumed]);
    assert!(stdout.contains("resuming after epoch 1"), "{stdout}");
    assert!(stdout.contains("epoch 2/2"), "{stdout}");
    assert!(!stdout.contains("epoch 1/2"), "{stdout}");
    let straight_bytes = std::fs::read(&straight).unwrap();
    let resumed_bytes = std::fs::read(&resumed).unwrap();
    assert!(
        straight_bytes == resumed_bytes,
        "resumed checkpoint differs"
    );

    let args = [
        "--data", data, "--epochs", "2", "--seed", "3", "--resume", &state, "--out", &resumed,
    ];
    let (status, _, stderr) = run_binary(env!("CARGO_BIN_EXE_train"), &args);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("pass --seed 0"), "{stderr}");
}

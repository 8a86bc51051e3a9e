//! The `train` binary with the fast recipe and its options on a small
//! synthetic dataset: the files it writes next to the checkpoint, and the
//! `reproduce` command of its run record, which must train the same
//! checkpoint again.

mod support;

use std::path::Path;

use support::run_binary;

const TRAIN: &str = env!("CARGO_BIN_EXE_train");

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn train(args: &[&str]) -> String {
    let (status, stdout, stderr) = run_binary(TRAIN, args);
    assert!(
        status.success(),
        "train {args:?} failed:\n{stdout}\n{stderr}"
    );
    stdout
}

#[test]
fn fast_recipe_writes_record_metrics_charts() {
    let dataset = support::synthetic_dataset(60, 8);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fast.ckpt");
    let data = dataset.path().to_str().unwrap();
    let stdout = train(&[
        "--data",
        data,
        "--recipe",
        "fast",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--val-split",
        "12",
        "--threads",
        "2",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    for line in [
        "recipe fast",
        "holding out 12",
        "epoch 1/2:",
        "epoch 2/2:",
        "validation accuracy",
    ] {
        assert!(stdout.contains(line), "no '{line}' in:\n{stdout}");
    }
    assert!(
        !stdout.contains(", test accuracy"),
        "the test set was evaluated per epoch:\n{stdout}"
    );
    assert!(stdout.contains("test accuracy"), "{stdout}");
    assert!(
        stdout.contains("airplane"),
        "no per-class line in:\n{stdout}"
    );

    let metrics = std::fs::read_to_string(dir.path().join("fast.ckpt.metrics.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = metrics
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["epoch"], 2);
    assert!(lines[1]["validation_accuracy"].is_f64(), "{}", lines[1]);

    let record = read_json(&dir.path().join("fast.ckpt.run.json"));
    assert_eq!(record["recipe"], "fast");
    assert_eq!(record["config"]["augment"], true);
    assert_eq!(record["config"]["schedule"], "onecycle");
    assert_eq!(record["config"]["val_split"], 12);
    assert_eq!(record["threads"], 2);
    assert_eq!(record["epochs"].as_array().unwrap().len(), 2);
    assert_eq!(record["test"]["total"], 60);
    assert_eq!(record["test"]["confusion"].as_array().unwrap().len(), 10);
    assert!(!record["code"]["commit"].as_str().unwrap().is_empty());
    for chart in ["fast.ckpt.curves.svg", "fast.ckpt.confusion.svg"] {
        let svg = std::fs::read_to_string(dir.path().join(chart)).unwrap();
        assert!(svg.starts_with("<svg"), "{chart}");
        assert!(
            svg.contains("accuracy") || svg.contains("confusion"),
            "{chart}"
        );
    }

    // The reproduce command, run with another --out, trains the same bytes.
    let reproduce = record["reproduce"].as_str().unwrap();
    let again = dir.path().join("again.ckpt");
    let words: Vec<String> = reproduce
        .split_whitespace()
        .skip(1)
        .map(str::to_owned)
        .collect();
    let out_at = words.iter().position(|w| w == "--out").unwrap() + 1;
    let mut words = words;
    words[out_at] = again.to_str().unwrap().to_owned();
    let args: Vec<&str> = words.iter().map(String::as_str).collect();
    train(&args);
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(&again).unwrap(),
        "the reproduce command trained another checkpoint: {reproduce}"
    );
}

#[test]
fn time_budget_records_steps() {
    let dataset = support::synthetic_dataset(40, 2);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("budget.ckpt");
    let stdout = train(&[
        "--data",
        dataset.path().to_str().unwrap(),
        "--recipe",
        "fast",
        "--time-budget",
        "2s",
        "--warmup-epochs",
        "1",
        "--batch-size",
        "8",
        // The step count, and so the schedule, follows the measured speed;
        // at the fast recipe's 0.02 some step counts diverge on this tiny set.
        "--lr",
        "0.01",
        "--threads",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(stdout.contains("time budget of 2.0 s"), "{stdout}");
    let record = read_json(&dir.path().join("budget.ckpt.run.json"));
    assert_eq!(record["config"]["time_budget_seconds"], 2.0);
    let steps = record["config"]["steps"]
        .as_u64()
        .expect("the chosen step count");
    assert!(steps > 0);
    assert!(record["reproduce"]
        .as_str()
        .unwrap()
        .contains(&format!("--steps {steps}")));
    assert!(!record["reproduce"]
        .as_str()
        .unwrap()
        .contains("--time-budget"));
}

#[test]
fn bad_recipe_options_rejected() {
    let cases: [(&[&str], &str); 5] = [
        (&["--recipe", "slow"], "unknown recipe \"slow\""),
        (&["--schedule", "linear"], "unknown schedule \"linear\""),
        (
            &["--label-smoothing", "1"],
            "from 0 up to but not including 1",
        ),
        (&["--steps", "0"], "positive integer number of SGD steps"),
        (&["--time-budget", "0s"], "the time budget must be above 0"),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["--data", "d", "--out", "o.ckpt"];
        args.extend_from_slice(extra);
        let (status, _, stderr) = run_binary(TRAIN, &args);
        assert_eq!(status.code(), Some(2), "{args:?}:\n{stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: no '{expected}' in:\n{stderr}"
        );
    }
}

#[test]
fn val_split_too_large_rejected() {
    let dataset = support::synthetic_dataset(10, 2);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.ckpt");
    let args = [
        "--data",
        dataset.path().to_str().unwrap(),
        "--val-split",
        "50",
        "--out",
        out.to_str().unwrap(),
    ];
    let (status, _, stderr) = run_binary(TRAIN, &args);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("hold out fewer than 50"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn closed_stdout_still_saves_checkpoint() {
    // As in `train ... | head -1`: the reader goes away after the first
    // line, and every later line fails to write.
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dataset = support::synthetic_dataset(40, 4);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("piped.ckpt");
    let mut child = Command::new(TRAIN)
        .args(["--data", dataset.path().to_str().unwrap()])
        .args(["--steps", "6", "--batch-size", "8", "--threads", "2"])
        .args(["--out", out.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start train");
    let mut first = String::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    reader.read_line(&mut first).unwrap();
    drop(reader);

    let status = child.wait().unwrap();
    assert!(first.starts_with("training on"), "first line: {first}");
    assert!(status.success(), "train exited with {status}");
    assert!(out.exists(), "no checkpoint at {}", out.display());
    let record = dir.path().join("piped.ckpt.run.json");
    assert!(record.exists(), "no run record at {}", record.display());
}

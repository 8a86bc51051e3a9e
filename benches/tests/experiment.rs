//! Runs the real `experiment` binary against the real `serve` binary on a
//! tiny synthetic dataset, with one cap and loads of a few requests.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Records per synthetic `.bin` file: 80 training images, one batch of 64.
const RECORDS: usize = 16;

/// Returns the `serve` binary of the same build, building it when missing.
fn serve_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_experiment")).with_file_name("serve");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let profile = if path.to_string_lossy().contains("/release/") {
            vec!["--release"]
        } else {
            vec![]
        };
        let status = Command::new(cargo)
            .args(["build", "--locked", "-p", "cifaas-serve", "--bin", "serve"])
            .args(profile)
            .status()
            .expect("run cargo build for serve");
        assert!(status.success(), "cargo build of serve failed: {status}");
    }
    assert!(path.exists(), "no serve binary at {}", path.display());
    path
}

fn install_tools() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiment/install-tools.sh");
    let status = Command::new("bash")
        .arg(&script)
        .status()
        .expect("run install-tools.sh");
    assert!(status.success(), "{} failed: {status}", script.display());
}

#[test]
fn tiny_experiment_writes_outputs() {
    install_tools();
    let serve = serve_binary();
    let folder = tempfile::tempdir().unwrap();
    let data = folder.path().join("data");
    data::write_synthetic(&data, RECORDS, 3).unwrap();
    let out = folder.path().join("out");

    let output = Command::new(env!("CARGO_BIN_EXE_experiment"))
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .arg("--serve")
        .arg(&serve)
        .args(["--caps", "1", "--epochs", "1", "--cold-starts", "2"])
        .args(["--idle-seconds", "0.3", "--sample-ms", "50"])
        .args(["--get-requests", "2", "--predict-requests", "4"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "experiment failed: {stderr}");

    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("samples.json")).unwrap()).unwrap();
    let runs = results["runs"].as_array().unwrap();
    // Two modes, each one from-scratch start and two cold starts.
    assert_eq!(runs.len(), 6, "{stderr}");
    for run in runs {
        assert_eq!(run["cpus"].as_array().unwrap().len(), 1);
        assert!(run["startup_seconds"].as_f64().unwrap() > 0.0);
        let rss = run["ready_rss_kib"].as_u64().unwrap();
        assert!(rss > 0);
        assert!(run["ready_rss_anon_kib"].as_u64().unwrap() <= rss);
        let cpu = &run["cpus"][0];
        for sample in run["samples"].as_array().unwrap() {
            for processor in sample["processors"].as_array().unwrap() {
                assert_eq!(processor, cpu, "a thread ran outside the CPU set");
            }
        }
    }
    let full: Vec<&Value> = runs.iter().filter(|run| !run["get"].is_null()).collect();
    assert_eq!(full.len(), 2);
    for run in full {
        assert_eq!(run["get"]["complete"], 2);
        assert_eq!(run["get"]["failed"], 0);
        assert_eq!(run["get"]["non_2xx"], 0);
        assert_eq!(run["predict"]["complete"], 4);
        assert_eq!(run["predict"]["non_2xx"], 0);
        assert!(run["idle"]["seconds"].as_f64().unwrap() > 0.1);
    }

    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(table.contains("### Thread cap 1"), "{table}");
    assert!(
        table.contains("| cifaas function | cifaas server |"),
        "{table}"
    );
    for chart in [
        "startup-scratch.svg",
        "response-get.svg",
        "cpu-cap1.svg",
        "memory-cap1.svg",
    ] {
        let svg = std::fs::read_to_string(out.join(chart)).unwrap();
        assert!(svg.contains("<svg"), "{chart} is not an SVG");
    }
}

#[test]
fn cap_above_cpus_rejected() {
    let output = Command::new(env!("CARGO_BIN_EXE_experiment"))
        .args(["--data", "unused", "--caps", "1,4096"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("thread cap 4096 is more than"), "{stderr}");
}

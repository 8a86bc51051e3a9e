//! Concurrent predictions share forward passes and still get their own rows.

mod support;

use std::sync::{Arc, Barrier};
use std::thread;

use support::{post, Files, Serve};

fn image(seed: u8) -> Vec<u8> {
    (0..3072)
        .map(|index| (index as u8).wrapping_mul(seed).wrapping_add(seed))
        .collect()
}

fn batch_sizes(log: &str) -> Vec<usize> {
    log.lines()
        .filter_map(|line| line.split("batch of ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect()
}

#[test]
fn concurrent_predictions_are_batched() {
    let files = Files::new(20, 9);
    let mut args = files.args("server");
    args.extend(["--threads", "1", "--batch-wait", "50ms"].map(str::to_owned));
    let env = [("RUST_LOG", "info,cifaas_serve::batcher=debug")];
    let serve = Serve::start_with_env(&args, &env);
    serve.wait_until_ready();
    let addr = serve.addr();

    let alone: Vec<serde_json::Value> = (1..=8)
        .map(|seed| post(addr, "/predict", &image(seed)).json()["probabilities"].clone())
        .collect();
    let before = batch_sizes(&serve.log()).len();

    let barrier = Arc::new(Barrier::new(8));
    let requests: Vec<_> = (1..=8)
        .map(|seed| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                post(addr, "/predict", &image(seed))
            })
        })
        .collect();
    for (seed, request) in (1..=8).zip(requests) {
        let response = request.join().unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(
            response.json()["probabilities"],
            alone[seed - 1],
            "image {seed} got another image's rows"
        );
    }

    let sizes = batch_sizes(&serve.log())[before..].to_vec();
    assert_eq!(sizes.iter().sum::<usize>(), 8, "{sizes:?}");
    assert!(
        sizes.iter().any(|&size| size > 1),
        "no two concurrent predictions shared a pass: {sizes:?}"
    );
}

#[test]
fn max_batch_one_turns_batching_off() {
    let files = Files::new(20, 10);
    let mut args = files.args("server");
    args.extend(["--threads", "1", "--max-batch", "1"].map(str::to_owned));
    let env = [("RUST_LOG", "info,cifaas_serve::batcher=debug")];
    let serve = Serve::start_with_env(&args, &env);
    serve.wait_until_ready();
    let addr = serve.addr();
    let requests: Vec<_> = (1..=6)
        .map(|seed| thread::spawn(move || post(addr, "/predict", &image(seed)).status))
        .collect();
    for request in requests {
        assert_eq!(request.join().unwrap(), 200);
    }
    let sizes = batch_sizes(&serve.log());
    assert!(sizes.iter().all(|&size| size == 1), "{sizes:?}");
    assert!(sizes.len() >= 6, "{sizes:?}");
}

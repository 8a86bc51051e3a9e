//! Training and inference on synthetic data, and on the real CIFAR-10 test
//! set when it is present.

use std::path::{Path, PathBuf};

use data::{Cifar10, Split};
use model::{
    evaluate, evaluate_while, train, EpochReport, Evaluation, ModelError, Network, TrainConfig,
    IMAGE_BYTES,
};

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}

fn synthetic(dir: &Path, records: usize) -> Cifar10 {
    data::write_synthetic(dir, records, 5).expect("write synthetic dataset");
    Cifar10::open(dir).expect("open synthetic dataset")
}

fn quick_config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 32,
        seed: 9,
        ..TrainConfig::default()
    }
}

#[test]
fn training_learns_synthetic_classes() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = synthetic(dir.path(), 200);
    let mut reports: Vec<EpochReport> = Vec::new();
    let network = pool(2)
        .install(|| train(&quick_config(3), &dataset, &mut |r| reports.push(r.clone())))
        .expect("train");
    assert_eq!(reports.len(), 3);
    assert_eq!(reports[0].epoch, 1);
    assert!(reports[2].loss < reports[0].loss, "{reports:?}");
    let last = reports[2].test.as_ref().expect("test evaluation");
    assert_eq!(last.total, 200);
    assert!(last.accuracy() > 0.8, "test accuracy {}", last.accuracy());
    let again = pool(2)
        .install(|| evaluate(&network, &dataset.test, 64))
        .unwrap();
    assert_eq!(again.correct, last.correct, "evaluation is not repeatable");
    let per_class: usize = again.per_class.iter().map(|c| c.total).sum();
    assert_eq!(per_class, 200);
}

#[test]
fn training_identical_across_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = synthetic(dir.path(), 40);
    let config = TrainConfig {
        evaluate_each_epoch: false,
        ..quick_config(1)
    };
    let one = pool(1)
        .install(|| train(&config, &dataset, &mut |_| {}))
        .unwrap();
    let two = pool(2)
        .install(|| train(&config, &dataset, &mut |_| {}))
        .unwrap();
    let three = pool(3)
        .install(|| train(&config, &dataset, &mut |_| {}))
        .unwrap();
    assert!(
        one.parameters() == two.parameters(),
        "1 and 2 threads differ"
    );
    assert!(
        one.parameters() == three.parameters(),
        "1 and 3 threads differ"
    );
    let other_seed = TrainConfig { seed: 10, ..config };
    let four = pool(2)
        .install(|| train(&other_seed, &dataset, &mut |_| {}))
        .unwrap();
    assert!(one.parameters() != four.parameters(), "seed has no effect");
}

#[test]
fn predict_returns_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = synthetic(dir.path(), 20);
    let network = Network::new(3, 0.25, data::ChannelStats::compute(&dataset.train)).unwrap();
    let mut images = Vec::new();
    for index in 0..3 {
        images.extend_from_slice(dataset.test.image(index));
    }
    let rows = network.predict(&images).expect("predict");
    assert_eq!(rows.len(), 3);
    for row in &rows {
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "row sums to {sum}");
        assert!(row.iter().all(|p| (0.0..=1.0).contains(p)));
    }
    // Dropout is off in inference, so a second call gives the same rows,
    // and one image alone gives the same row as inside a batch.
    assert_eq!(network.predict(&images).unwrap(), rows);
    assert_eq!(
        network
            .predict(&images[IMAGE_BYTES..2 * IMAGE_BYTES])
            .unwrap()[0],
        rows[1]
    );
}

#[test]
fn predict_rejects_partial_images() {
    let network = Network::new(
        3,
        0.25,
        data::ChannelStats {
            mean: [0.5; 3],
            std: [0.25; 3],
        },
    )
    .unwrap();
    for len in [0, 1, IMAGE_BYTES - 1, IMAGE_BYTES + 1] {
        let err = network.predict(&vec![0u8; len]).unwrap_err();
        assert!(matches!(err, ModelError::Input(_)), "{len}: {err}");
        assert!(err.to_string().contains(&len.to_string()), "{err}");
    }
}

#[test]
fn predict_pixels_matches_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = synthetic(dir.path(), 20);
    let network = Network::new(5, 0.25, data::ChannelStats::compute(&dataset.train)).unwrap();
    // 70 images cross the inference batch boundary of 64.
    let images: Vec<u8> = (0..70)
        .flat_map(|index| dataset.test.image(index % 20).to_vec())
        .collect();
    let pixels: Vec<f32> = images.iter().map(|&byte| f32::from(byte)).collect();
    let from_bytes = network.predict(&images).unwrap();
    let from_pixels = network.predict_pixels(&pixels).unwrap();
    assert_eq!(
        from_pixels, from_bytes,
        "whole-number pixels differ from bytes"
    );

    let mut shifted = pixels.clone();
    shifted[0] += 0.5;
    let moved = network.predict_pixels(&shifted).unwrap();
    assert_ne!(moved[0], from_bytes[0], "a fractional pixel had no effect");
    assert_eq!(moved[1..], from_bytes[1..]);

    let error = network.predict_pixels(&pixels[..100]).unwrap_err();
    assert!(matches!(error, ModelError::Input(_)), "{error}");
    assert!(error.to_string().contains("100 pixel values"), "{error}");
}

#[test]
fn evaluate_while_stops_between_batches() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = synthetic(dir.path(), 50);
    let network = Network::new(5, 0.25, data::ChannelStats::compute(&dataset.train)).unwrap();
    let mut calls = 0;
    let stopped = evaluate_while(&network, &dataset.test, 16, || {
        calls += 1;
        calls <= 2
    })
    .unwrap();
    assert!(stopped.is_none(), "the evaluation ran past the stop");
    assert_eq!(calls, 3, "asked before each batch, then stopped");

    let mut calls = 0;
    let whole = evaluate_while(&network, &dataset.test, 16, || {
        calls += 1;
        true
    })
    .unwrap()
    .expect("the evaluation finished");
    assert_eq!(calls, 4, "50 images in batches of 16");
    assert_eq!(
        whole,
        Evaluation {
            seconds: whole.seconds,
            ..evaluate(&network, &dataset.test, 16).unwrap()
        }
    );
}

#[test]
fn invalid_options_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = synthetic(dir.path(), 10);
    let cases = [
        (
            TrainConfig {
                epochs: 0,
                ..quick_config(1)
            },
            "epochs",
        ),
        (
            TrainConfig {
                batch_size: 0,
                ..quick_config(1)
            },
            "batch size",
        ),
        (
            TrainConfig {
                lr: -1.0,
                ..quick_config(1)
            },
            "lr",
        ),
        (
            TrainConfig {
                momentum: 1.5,
                ..quick_config(1)
            },
            "momentum",
        ),
        (
            TrainConfig {
                dropout: 1.0,
                ..quick_config(1)
            },
            "dropout",
        ),
    ];
    for (config, word) in cases {
        let err = train(&config, &dataset, &mut |_| {}).unwrap_err();
        assert!(matches!(err, ModelError::Config(_)), "{word}: {err}");
        assert!(err.to_string().contains(word), "{word}: {err}");
    }
}

#[test]
fn diverging_loss_stops_training() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = synthetic(dir.path(), 64);
    let config = TrainConfig {
        lr: 1e6,
        ..quick_config(2)
    };
    let err = pool(2)
        .install(|| train(&config, &dataset, &mut |_| {}))
        .unwrap_err();
    assert!(matches!(err, ModelError::NonFinite(_)), "{err}");
    assert!(err.to_string().contains("lower the learning rate"), "{err}");
}

fn real_archive() -> Option<PathBuf> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/cifar-10-binary.tar.gz");
    path.exists().then_some(path)
}

/// One epoch on the first training batch of the real data set must beat
/// chance by a wide margin on the real test set.
#[test]
fn real_data_one_batch_epoch() {
    let Some(archive) = real_archive() else {
        eprintln!("skipped: real CIFAR-10 archive not found");
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let full = Cifar10::open_with_cache(&archive, cache.path()).expect("open real data");
    assert_eq!(full.test.len(), 10_000);
    let first_batch = full.folder.join("data_batch_1.bin");
    let subset = Cifar10 {
        train: Split::open(&[first_batch]).expect("open data_batch_1.bin"),
        ..full
    };
    let mut reports = Vec::new();
    pool(2)
        .install(|| train(&quick_config(1), &subset, &mut |r| reports.push(r.clone())))
        .expect("train on real data");
    let report = &reports[0];
    let test = report.test.as_ref().unwrap();
    eprintln!(
        "real data, 10,000 training images, 1 epoch: loss {:.4}, test accuracy {:.4}, \
         {:.1} images/s",
        report.loss,
        test.accuracy(),
        report.images_per_second
    );
    assert_eq!(test.total, 10_000);
    assert!(test.accuracy() > 0.3, "test accuracy {}", test.accuracy());
}

#[test]
fn trainer_step_checks_batch_length() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = synthetic(dir.path(), 20);
    let stats = data::ChannelStats::compute(&dataset.train);
    let mut network = Network::new(1, 0.25, stats).unwrap();
    let config = TrainConfig {
        batch_size: 8,
        ..TrainConfig::default()
    };
    let mut trainer = model::Trainer::new(&config, &network).unwrap();
    let before = network.parameters().to_vec();
    let outcome = trainer
        .step(&mut network, &dataset.train, &[0, 1, 2, 3, 4, 5, 6, 7])
        .expect("step");
    assert!(
        outcome.loss.is_finite() && outcome.loss > 0.0,
        "{outcome:?}"
    );
    assert!(outcome.correct <= 8);
    assert!(
        network.parameters() != before.as_slice(),
        "step changed nothing"
    );
    for indices in [&[][..], &[0; 9][..]] {
        let err = trainer
            .step(&mut network, &dataset.train, indices)
            .unwrap_err();
        assert!(matches!(err, ModelError::Config(_)), "{err}");
    }
    let err = trainer
        .step(&mut network, &dataset.train, &[10_000])
        .unwrap_err();
    assert!(matches!(err, ModelError::Data(_)), "{err}");
}

#[test]
fn predictions_follow_training_steps() {
    // Inference keeps the convolution weights packed with the network; a
    // training step must drop them, or predictions would use old weights.
    let dir = tempfile::tempdir().unwrap();
    let dataset = synthetic(dir.path(), 64);
    let stats = data::ChannelStats::compute(&dataset.train);
    let config = quick_config(1);
    let mut network = Network::new(3, config.dropout, stats).unwrap();
    let image = dataset.test.image(0).to_vec();
    let before = network.predict(&image).unwrap();

    let mut trainer = model::Trainer::new(&config, &network).unwrap();
    let indices: Vec<usize> = (0..32).collect();
    pool(2)
        .install(|| trainer.step(&mut network, &dataset.train, &indices))
        .unwrap();
    let after = network.predict(&image).unwrap();
    let fresh = Network::from_parameters(network.parameters().to_vec(), config.dropout, stats)
        .unwrap()
        .predict(&image)
        .unwrap();
    assert_eq!(after, fresh, "prediction after a step uses old weights");
    assert_ne!(before, after, "the step changed no prediction");
}

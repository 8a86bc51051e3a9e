//! One training step of the chunked, fused pipeline against the same step
//! composed from the batch kernels, with dropout off so both see the same
//! network function.

use data::{fill_batch, Cifar10};
use kernels::{
    conv2d_backward, conv2d_forward, linear_backward, linear_forward, maxpool2d_backward,
    maxpool2d_forward, relu_backward, relu_forward, softmax_cross_entropy, Conv2dGeometry,
    Conv2dGrads, LinearGeometry, LinearGrads, Pool2dGeometry, Shape4,
};
use model::{Network, TrainConfig, Trainer, TENSORS};

/// Splits the flat parameter vector into its ten tensors.
fn tensors(flat: &[f32]) -> Vec<&[f32]> {
    let mut rest = flat;
    TENSORS
        .iter()
        .map(|tensor| {
            let (head, tail) = rest.split_at(tensor.len());
            rest = tail;
            head
        })
        .collect()
}

struct Geometries {
    conv: [Conv2dGeometry; 4],
    pool: [Pool2dGeometry; 2],
    fc: LinearGeometry,
}

fn geometries(batch: usize) -> Geometries {
    let conv1 = Conv2dGeometry::new(Shape4::new(batch, 3, 32, 32), 32, 3, 1, 1).unwrap();
    let conv2 = Conv2dGeometry::new(conv1.output(), 32, 3, 1, 1).unwrap();
    let pool1 = Pool2dGeometry::new(conv2.output(), 2, 2).unwrap();
    let conv3 = Conv2dGeometry::new(pool1.output(), 64, 3, 1, 1).unwrap();
    let conv4 = Conv2dGeometry::new(conv3.output(), 64, 3, 1, 1).unwrap();
    let pool2 = Pool2dGeometry::new(conv4.output(), 2, 2).unwrap();
    let fc = LinearGeometry::new(batch, 4096, 10).unwrap();
    Geometries {
        conv: [conv1, conv2, conv3, conv4],
        pool: [pool1, pool2],
        fc,
    }
}

/// Returns the gradient of the mean cross-entropy with respect to every
/// parameter, flat, computed layer by layer with the batch kernels.
fn reference_gradient(params: &[f32], input: &[f32], labels: &[usize]) -> Vec<f32> {
    let batch = labels.len();
    let g = geometries(batch);
    let p = tensors(params);
    let zeros = |len: usize| vec![0.0f32; len];

    // Forward.
    let mut a1 = zeros(g.conv[0].output().len());
    conv2d_forward(&g.conv[0], input, p[0], p[1], &mut a1).unwrap();
    let mut r1 = zeros(a1.len());
    relu_forward(&a1, &mut r1).unwrap();
    let mut a2 = zeros(g.conv[1].output().len());
    conv2d_forward(&g.conv[1], &r1, p[2], p[3], &mut a2).unwrap();
    let mut p1 = zeros(g.pool[0].output().len());
    let mut arg1 = vec![0u32; p1.len()];
    maxpool2d_forward(&g.pool[0], &a2, &mut p1, &mut arg1).unwrap();
    let mut a3 = zeros(g.conv[2].output().len());
    conv2d_forward(&g.conv[2], &p1, p[4], p[5], &mut a3).unwrap();
    let mut r3 = zeros(a3.len());
    relu_forward(&a3, &mut r3).unwrap();
    let mut a4 = zeros(g.conv[3].output().len());
    conv2d_forward(&g.conv[3], &r3, p[6], p[7], &mut a4).unwrap();
    let mut p2 = zeros(g.pool[1].output().len());
    let mut arg2 = vec![0u32; p2.len()];
    maxpool2d_forward(&g.pool[1], &a4, &mut p2, &mut arg2).unwrap();
    let mut logits = zeros(batch * 10);
    linear_forward(&g.fc, &p2, p[8], p[9], &mut logits).unwrap();
    let mut dlogits = zeros(logits.len());
    softmax_cross_entropy(&logits, labels, 10, &mut dlogits).unwrap();

    // Backward, writing each layer's gradient into its own buffer.
    let mut grads: Vec<Vec<f32>> = TENSORS.iter().map(|t| zeros(t.len())).collect();
    let [dw1, db1, dw2, db2, dw3, db3, dw4, db4, dwf, dbf] = &mut grads[..] else {
        unreachable!()
    };
    let mut dp2 = zeros(p2.len());
    let fc = LinearGrads {
        input: Some(&mut dp2),
        weight: dwf,
        bias: dbf,
    };
    linear_backward(&g.fc, &p2, p[8], &dlogits, fc).unwrap();
    let mut da4 = zeros(a4.len());
    maxpool2d_backward(&g.pool[1], &dp2, &arg2, &mut da4).unwrap();
    let mut dr3 = zeros(r3.len());
    let conv4 = Conv2dGrads {
        input: Some(&mut dr3),
        weight: dw4,
        bias: db4,
    };
    conv2d_backward(&g.conv[3], &r3, p[6], &da4, conv4).unwrap();
    let mut da3 = zeros(a3.len());
    relu_backward(&r3, &dr3, &mut da3).unwrap();
    let mut dp1 = zeros(p1.len());
    let conv3 = Conv2dGrads {
        input: Some(&mut dp1),
        weight: dw3,
        bias: db3,
    };
    conv2d_backward(&g.conv[2], &p1, p[4], &da3, conv3).unwrap();
    let mut da2 = zeros(a2.len());
    maxpool2d_backward(&g.pool[0], &dp1, &arg1, &mut da2).unwrap();
    let mut dr1 = zeros(r1.len());
    let conv2 = Conv2dGrads {
        input: Some(&mut dr1),
        weight: dw2,
        bias: db2,
    };
    conv2d_backward(&g.conv[1], &r1, p[2], &da2, conv2).unwrap();
    let mut da1 = zeros(a1.len());
    relu_backward(&r1, &dr1, &mut da1).unwrap();
    let conv1 = Conv2dGrads {
        input: None,
        weight: dw1,
        bias: db1,
    };
    conv2d_backward(&g.conv[0], input, p[0], &da1, conv1).unwrap();
    grads.concat()
}

fn check_step(dataset: &Cifar10, indices: &[usize]) {
    let stats = data::ChannelStats::compute(&dataset.train);
    let mut network = Network::new(17, 0.0, stats).unwrap();
    let before = network.parameters().to_vec();
    let mut input = vec![0.0; indices.len() * 3072];
    let mut labels = vec![0; indices.len()];
    fill_batch(&dataset.train, &stats, indices, &mut input, &mut labels).unwrap();
    let gradient = reference_gradient(&before, &input, &labels);

    let config = TrainConfig {
        batch_size: indices.len(),
        dropout: 0.0,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(&config, &network).unwrap();
    trainer.step(&mut network, &dataset.train, indices).unwrap();

    // The first Nesterov step with an empty buffer moves each parameter by
    // lr * (g + momentum * g).
    let factor = config.lr * (1.0 + config.momentum);
    let mut worst = (0.0f32, 0usize);
    for (index, ((&old, &new), &g)) in before
        .iter()
        .zip(network.parameters())
        .zip(&gradient)
        .enumerate()
    {
        let expected = factor * g;
        let moved = old - new;
        let error = (moved - expected).abs() / (1e-7 + 1e-3 * expected.abs().max(1e-4));
        if error > worst.0 {
            worst = (error, index);
        }
    }
    let (error, index) = worst;
    assert!(
        error <= 1.0,
        "batch {}: parameter {index} moved {} but the reference step moves it {}",
        indices.len(),
        before[index] - network.parameters()[index],
        factor * gradient[index]
    );
}

#[test]
fn chunked_step_matches_batch_kernels() {
    let dir = tempfile::tempdir().unwrap();
    data::write_synthetic(dir.path(), 40, 8).unwrap();
    let dataset = Cifar10::open(dir.path()).unwrap();
    let full: Vec<usize> = (0..16).collect();
    let ragged: Vec<usize> = (20..31).collect();
    pool(2).install(|| {
        check_step(&dataset, &full);
        check_step(&dataset, &ragged);
    });
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

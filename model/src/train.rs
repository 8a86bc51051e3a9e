//! The training loop: seeded shuffles, Nesterov SGD and one report per epoch.

use std::time::Instant;

use data::{fill_batch, shuffled_indices, ChannelStats, Cifar10};
use kernels::{softmax_cross_entropy, Sgd};

use crate::evaluate::{evaluate, Evaluation};
use crate::layers::Layers;
use crate::network::argmax;
use crate::passes::{backward, forward, DropoutSeeds};
use crate::rng::mix;
use crate::workspace::Workspace;
use crate::{ModelError, Network, Result, CLASSES};

/// Images per forward pass when the test split is evaluated after an epoch.
const EVALUATION_BATCH: usize = 100;

/// Options of a training run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training split, at least 1.
    pub epochs: usize,
    /// Images per SGD step, at least 1.
    pub batch_size: usize,
    /// SGD learning rate, `> 0`.
    pub lr: f32,
    /// SGD momentum in `[0, 1)`; Nesterov momentum is used when it is
    /// positive.
    pub momentum: f32,
    /// L2 weight decay added to the gradient, `>= 0`.
    pub weight_decay: f32,
    /// Drop probability of the two dropout layers, in `[0, 1)`.
    pub dropout: f32,
    /// Seed of the initial parameters, the shuffles and the dropout masks.
    pub seed: u64,
    /// Evaluate on the test split after each epoch.
    pub evaluate_each_epoch: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 1,
            batch_size: 64,
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 0.0,
            dropout: 0.25,
            seed: 0,
            evaluate_each_epoch: true,
        }
    }
}

impl TrainConfig {
    fn optimiser(&self) -> Result<Sgd> {
        if self.epochs == 0 {
            return Err(ModelError::Config("epochs is 0; pass at least 1".into()));
        }
        if self.batch_size == 0 {
            return Err(ModelError::Config(
                "batch size is 0; pass at least 1".into(),
            ));
        }
        let sgd = Sgd {
            lr: self.lr,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
            nesterov: self.momentum > 0.0,
        };
        sgd.validate()
            .map_err(|err| ModelError::Config(err.to_string()))?;
        Ok(sgd)
    }
}

/// What one epoch of training measured.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch.
    pub loss: f64,
    /// Training accuracy over the epoch, with dropout on.
    pub train_accuracy: f64,
    /// Test evaluation after the epoch, when requested.
    pub test: Option<Evaluation>,
    /// Wall-clock seconds of the training part of the epoch.
    pub seconds: f64,
    /// Training images per second.
    pub images_per_second: f64,
}

/// Trains a new network on `dataset.train`, normalised with the training
/// split's channel statistics, and calls `on_epoch` after each epoch.
///
/// # Errors
/// [`ModelError::Config`] for an invalid option, and
/// [`ModelError::NonFinite`] when the loss stops being finite.
pub fn train(
    config: &TrainConfig,
    dataset: &Cifar10,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<Network> {
    let sgd = config.optimiser()?;
    if dataset.train.is_empty() {
        return Err(ModelError::Config(
            "the training split has no records".into(),
        ));
    }
    let stats = ChannelStats::compute(&dataset.train);
    let mut network = Network::new(config.seed, config.dropout, stats)?;
    let mut trainer = Trainer::new(config, sgd, &network)?;
    for epoch in 1..=config.epochs {
        let mut report = trainer.run_epoch(&mut network, dataset, epoch)?;
        if config.evaluate_each_epoch {
            report.test = Some(evaluate(&network, &dataset.test, EVALUATION_BATCH)?);
        }
        on_epoch(&report);
    }
    Ok(network)
}

/// The state a training run carries from step to step.
struct Trainer {
    config: TrainConfig,
    sgd: Sgd,
    workspace: Workspace,
    grads: Vec<f32>,
    momentum: Vec<f32>,
    labels: Vec<usize>,
    step: u64,
}

/// Sums over the steps of one epoch.
#[derive(Default)]
struct EpochTotals {
    loss: f64,
    correct: usize,
    images: usize,
}

impl Trainer {
    fn new(config: &TrainConfig, sgd: Sgd, network: &Network) -> Result<Self> {
        let layers = Layers::new(config.batch_size)?;
        Ok(Self {
            config: config.clone(),
            sgd,
            workspace: Workspace::new(&layers, true),
            grads: vec![0.0; network.params.len()],
            momentum: vec![0.0; network.params.len()],
            labels: vec![0; config.batch_size],
            step: 0,
        })
    }

    fn run_epoch(
        &mut self,
        network: &mut Network,
        dataset: &Cifar10,
        epoch: usize,
    ) -> Result<EpochReport> {
        let start = Instant::now();
        let order = shuffled_indices(dataset.train.len(), self.config.seed, epoch as u64);
        let mut totals = EpochTotals::default();
        for batch in order.chunks(self.config.batch_size) {
            let input = &mut self.workspace.act.input[..batch.len() * crate::network::IMAGE_BYTES];
            let labels = &mut self.labels[..batch.len()];
            fill_batch(&dataset.train, &network.stats, batch, input, labels)?;
            let (loss, correct) = self.step(network, batch.len())?;
            if !loss.is_finite() {
                return Err(ModelError::NonFinite(format!(
                    "loss is {loss} at epoch {epoch}, step {}; lower the learning rate \
                     (now {})",
                    self.step, self.config.lr
                )));
            }
            totals.loss += f64::from(loss) * batch.len() as f64;
            totals.correct += correct;
            totals.images += batch.len();
        }
        let seconds = start.elapsed().as_secs_f64();
        Ok(EpochReport {
            epoch,
            loss: totals.loss / totals.images as f64,
            train_accuracy: totals.correct as f64 / totals.images as f64,
            test: None,
            seconds,
            images_per_second: totals.images as f64 / seconds,
        })
    }

    /// Runs forward, loss, backward and one SGD update on the batch already
    /// in the workspace; returns the mean loss and the number of correct
    /// predictions.
    fn step(&mut self, network: &mut Network, batch: usize) -> Result<(f32, usize)> {
        self.step += 1;
        let layers = Layers::new(batch)?;
        let seeds = DropoutSeeds {
            first: mix(self.config.seed ^ mix(2 * self.step)),
            second: mix(self.config.seed ^ mix(2 * self.step + 1)),
        };
        let ws = &mut self.workspace;
        forward(&network.params, &layers, &network.dropout, Some(seeds), ws)?;

        let logits = &ws.act.logits[..batch * CLASSES];
        let labels = &self.labels[..batch];
        let correct = logits
            .chunks_exact(CLASSES)
            .zip(labels)
            .filter(|(row, &label)| argmax(row) == label)
            .count();
        let dlogits = &mut ws.grad.logits[..batch * CLASSES];
        let loss = softmax_cross_entropy(logits, labels, CLASSES, dlogits)?;

        backward(&network.params, &layers, ws, &mut self.grads)?;
        self.sgd
            .step(&mut network.params, &self.grads, &mut self.momentum)?;
        Ok((loss, correct))
    }
}

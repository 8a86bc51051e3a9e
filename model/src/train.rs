//! The training loop: seeded shuffles, Nesterov SGD and one report per epoch.

use std::time::Instant;

use data::{shuffled_indices, ChannelStats, Cifar10, Split};
use kernels::Sgd;
use rayon::prelude::*;

use crate::chunk::{Chunk, ChunkPlace, DropoutSeeds};
use crate::evaluate::{evaluate, Evaluation};
use crate::resume::TrainState;
use crate::rng::mix;
use crate::{ModelError, Network, Result};

/// Images per chunk of a training batch. Each chunk runs its forward and
/// backward pass on one thread and produces one partial gradient, and the
/// partials are added in chunk order. The value is a constant, never
/// derived from the thread count, so every pool size computes the same
/// floating-point operations in the same order.
pub(crate) const TRAIN_CHUNK: usize = 8;

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

/// Measurements of one training epoch.
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
    train_resumable(config, dataset, None, &mut |report, _| on_epoch(report))
}

/// Trains as [`train`] does, continuing from `resume` when given, and
/// passes `on_epoch` the state after each epoch, which
/// [`crate::save_train_state`] can store. A run resumed from the state of
/// epoch `k` ends with the same parameters as an uninterrupted run. The
/// shuffle depends only on the seed and the epoch, and the dropout masks on
/// the seed and the step count, and the state carries both counts.
///
/// # Errors
/// As [`train`], and [`ModelError::Config`] when `config` does not
/// continue the saved run (see [`TrainState::check_continues`]).
pub fn train_resumable(
    config: &TrainConfig,
    dataset: &Cifar10,
    resume: Option<TrainState>,
    on_epoch: &mut dyn FnMut(&EpochReport, &TrainState),
) -> Result<Network> {
    if dataset.train.is_empty() {
        return Err(ModelError::Config(
            "the training split has no records".into(),
        ));
    }
    let (mut network, mut trainer, first_epoch) = match resume {
        Some(state) => {
            state.check_continues(config)?;
            let mut trainer = Trainer::new(config, &state.network)?;
            trainer.momentum = state.momentum;
            trainer.steps_taken = state.steps_taken;
            (state.network, trainer, state.epochs_done + 1)
        }
        None => {
            let stats = ChannelStats::compute(&dataset.train);
            let network = Network::new(config.seed, config.dropout, stats)?;
            let trainer = Trainer::new(config, &network)?;
            (network, trainer, 1)
        }
    };
    for epoch in first_epoch..=config.epochs {
        let mut report = trainer.run_epoch(&mut network, dataset, epoch)?;
        if config.evaluate_each_epoch {
            report.test = Some(evaluate(&network, &dataset.test, EVALUATION_BATCH)?);
        }
        let state = TrainState {
            network: network.clone(),
            momentum: trainer.momentum.clone(),
            epochs_done: epoch,
            steps_taken: trainer.steps_taken,
            config: TrainConfig {
                epochs: epoch,
                ..config.clone()
            },
        };
        on_epoch(&report, &state);
    }
    Ok(network)
}

/// The state a training run carries from step to step: the optimiser,
/// the momentum buffers and the buffers of each chunk of a batch.
pub struct Trainer {
    config: TrainConfig,
    sgd: Sgd,
    chunks: Vec<Chunk>,
    /// One partial gradient per chunk, `[chunks, parameters]`.
    partials: Vec<f32>,
    momentum: Vec<f32>,
    steps_taken: u64,
}

/// Measurements of one training step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepOutcome {
    /// Mean loss over the batch, before the update.
    pub loss: f32,
    /// Images of the batch the network classified correctly, with dropout on.
    pub correct: usize,
}

/// Sums over the steps of one epoch.
#[derive(Default)]
struct EpochTotals {
    loss: f64,
    correct: usize,
    images: usize,
}

impl Trainer {
    /// Prepares to train `network` with `config`'s optimiser settings and
    /// batches of up to `config.batch_size` images.
    ///
    /// # Errors
    /// [`ModelError::Config`] for an invalid option.
    pub fn new(config: &TrainConfig, network: &Network) -> Result<Self> {
        let sgd = config.optimiser()?;
        let chunk_count = config.batch_size.div_ceil(TRAIN_CHUNK);
        let chunks = (0..chunk_count)
            .map(|index| {
                let images = (config.batch_size - index * TRAIN_CHUNK).min(TRAIN_CHUNK);
                Chunk::new(images, true)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config: config.clone(),
            sgd,
            chunks,
            partials: vec![0.0; chunk_count * network.params.len()],
            momentum: vec![0.0; network.params.len()],
            steps_taken: 0,
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
            let outcome = self.step(network, &dataset.train, batch)?;
            if !outcome.loss.is_finite() {
                return Err(ModelError::NonFinite(format!(
                    "loss is {} at epoch {epoch}, step {}; lower the learning rate \
                     (now {})",
                    outcome.loss, self.steps_taken, self.config.lr
                )));
            }
            totals.loss += f64::from(outcome.loss) * batch.len() as f64;
            totals.correct += outcome.correct;
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

    /// Runs one SGD step of `network` on the records of `split` named by
    /// `indices`: forward with dropout, loss, backward and the update. The
    /// dropout masks depend on the seed and on how many steps this trainer
    /// has taken.
    ///
    /// # Errors
    /// [`ModelError::Config`] when `indices` is empty or longer than the
    /// batch size, and [`ModelError::Data`] for an index out of range.
    pub fn step(
        &mut self,
        network: &mut Network,
        split: &Split,
        indices: &[usize],
    ) -> Result<StepOutcome> {
        if indices.is_empty() || indices.len() > self.config.batch_size {
            return Err(ModelError::Config(format!(
                "a step takes 1 to {} images, got {}",
                self.config.batch_size,
                indices.len()
            )));
        }
        self.steps_taken += 1;
        let step = self.steps_taken;
        let seeds = DropoutSeeds {
            first: mix(self.config.seed ^ mix(2 * step)),
            second: mix(self.config.seed ^ mix(2 * step + 1)),
        };
        let batch = indices.len();
        let chunk_count = batch.div_ceil(TRAIN_CHUNK);
        let params_len = network.params.len();
        let (params, stats, dropout) = (&network.params, &network.stats, &network.dropout);

        // Every chunk runs forward, loss and backward into its own partial.
        let run = |index: usize, chunk: &mut Chunk, partial: &mut [f32]| {
            let first_image = index * TRAIN_CHUNK;
            let chunk_indices = &indices[first_image..(first_image + TRAIN_CHUNK).min(batch)];
            let place = ChunkPlace {
                first_image,
                batch,
                seeds,
            };
            chunk.train(split, stats, params, dropout, chunk_indices, place, partial)
        };
        let chunks = &mut self.chunks[..chunk_count];
        let partials = &mut self.partials[..chunk_count * params_len];
        if chunk_count == 1 {
            run(0, &mut chunks[0], partials)?;
        } else {
            chunks
                .par_iter_mut()
                .zip(partials.par_chunks_mut(params_len))
                .enumerate()
                .try_for_each(|(index, (chunk, partial))| run(index, chunk, partial))?;
        }

        // Losses and partial gradients are added in chunk order.
        let loss_sum: f64 = chunks.iter().map(|chunk| chunk.loss_sum).sum();
        let correct = chunks.iter().map(|chunk| chunk.correct).sum();
        self.sgd
            .step_partial_sums(&mut network.params, partials, &mut self.momentum)?;
        let loss = (loss_sum / batch as f64) as f32;
        Ok(StepOutcome { loss, correct })
    }
}

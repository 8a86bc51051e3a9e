//! The training loop: seeded shuffles, Nesterov SGD and one report per epoch.

use std::time::{Duration, Instant};

use data::{shuffled_indices, Augment, ChannelStats, Cifar10, Split};
use kernels::Sgd;
use rayon::prelude::*;

use crate::chunk::{Chunk, ChunkPlace, DropoutSeeds};
use crate::evaluate::{evaluate, evaluate_indices, Evaluation};
use crate::holdout::Holdout;
use crate::packed::StepWeights;
use crate::resume::TrainState;
use crate::rng::mix;
use crate::schedule::{LrPlan, Schedule};
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
    /// Seed of the initial parameters, the shuffles, the dropout masks and
    /// the augmentation.
    pub seed: u64,
    /// Evaluate on the test split after each epoch.
    pub evaluate_each_epoch: bool,
    /// The learning-rate schedule; `lr` is its peak.
    pub schedule: Schedule,
    /// Epochs of linear learning-rate warm-up, `>= 0`; fractions count.
    pub warmup_epochs: f32,
    /// Label smoothing of the cross-entropy, in `[0, 1)`.
    pub label_smoothing: f32,
    /// Randomly crop (4 pixels of padding) and flip each training image.
    pub augment: bool,
    /// Training images held out as a validation set, which is evaluated
    /// after each epoch instead of being trained on.
    pub validation: usize,
    /// Stop after this many SGD steps, and fit the schedule to them, instead
    /// of after `epochs`.
    pub max_steps: Option<u64>,
    /// Wall-clock seconds of training after which the run stops. The run
    /// measures its speed during the warm-up and sets `max_steps` to the
    /// steps that fit, so the schedule ends with the budget. Not stored in
    /// the training state: the state stores the `max_steps` it chose.
    pub time_budget: Option<f64>,
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
            schedule: Schedule::Constant,
            warmup_epochs: 0.0,
            label_smoothing: 0.0,
            augment: false,
            validation: 0,
            max_steps: None,
            time_budget: None,
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
        self.validate_schedule()?;
        Ok(sgd)
    }

    fn validate_schedule(&self) -> Result<()> {
        if !(self.warmup_epochs.is_finite() && self.warmup_epochs >= 0.0) {
            return Err(ModelError::Config(format!(
                "warm-up of {} epochs is invalid; pass a finite number >= 0",
                self.warmup_epochs
            )));
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return Err(ModelError::Config(format!(
                "label smoothing {} is out of range; pass a number in [0, 1)",
                self.label_smoothing
            )));
        }
        if self.max_steps == Some(0) {
            return Err(ModelError::Config("max steps is 0; pass at least 1".into()));
        }
        if let Some(budget) = self.time_budget {
            if !(budget.is_finite() && budget > 0.0) {
                return Err(ModelError::Config(format!(
                    "time budget {budget} s is invalid; pass a number of seconds > 0"
                )));
            }
            if self.max_steps.is_some() {
                return Err(ModelError::Config(
                    "a time budget sets the step count itself; pass a time budget or max \
                     steps, not both"
                        .into(),
                ));
            }
            if self.schedule != Schedule::Constant && self.warmup_epochs == 0.0 {
                return Err(ModelError::Config(format!(
                    "a time budget with the {} schedule needs a warm-up, during which the \
                     speed is measured; pass a warm-up above 0 epochs",
                    self.schedule
                )));
            }
        }
        Ok(())
    }

    /// Returns the learning-rate plan of a run with `steps_per_epoch` steps
    /// per epoch, ending after `total_steps`.
    fn lr_plan(&self, steps_per_epoch: u64, total_steps: u64) -> LrPlan {
        let warmup = (f64::from(self.warmup_epochs) * steps_per_epoch as f64).round() as u64;
        LrPlan {
            schedule: self.schedule,
            base: self.lr,
            warmup_steps: warmup,
            total_steps,
        }
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
    /// Evaluation of the validation images after the epoch, when the run
    /// has a validation split.
    pub validation: Option<Evaluation>,
    /// Learning rate of the epoch's last step.
    pub lr: f32,
    /// Steps taken since the run began, this epoch's included.
    pub steps_taken: u64,
    /// Steps the whole run takes.
    pub total_steps: u64,
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

/// Progress of a run after one SGD step, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepProgress {
    /// 1-based epoch of the step.
    pub epoch: usize,
    /// Steps taken since the run began, this one included.
    pub steps_taken: u64,
    /// Steps the whole run takes; it can change once, when a time budget
    /// has measured the speed.
    pub total_steps: u64,
    /// Mean loss of this epoch's steps so far.
    pub loss: f64,
    /// Training accuracy of this epoch's steps so far.
    pub train_accuracy: f64,
    /// Images trained on in this epoch so far.
    pub images: usize,
    /// Seconds since this epoch began.
    pub epoch_seconds: f64,
}

/// Receives the progress of a training run.
pub trait TrainObserver {
    /// Called after each SGD step.
    fn on_step(&mut self, _progress: &StepProgress) {}

    /// Called after each epoch, with the state that continues the run.
    fn on_epoch(&mut self, report: &EpochReport, state: &TrainState);
}

impl<F: FnMut(&EpochReport, &TrainState)> TrainObserver for F {
    fn on_epoch(&mut self, report: &EpochReport, state: &TrainState) {
        self(report, state);
    }
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
    train_observed(
        config,
        dataset,
        resume,
        &mut |report: &EpochReport, state: &TrainState| on_epoch(report, state),
    )
}

/// Trains as [`train_resumable`] does, and reports each step and epoch to
/// `observer`.
///
/// # Errors
/// As [`train_resumable`].
pub fn train_observed(
    config: &TrainConfig,
    dataset: &Cifar10,
    resume: Option<TrainState>,
    observer: &mut dyn TrainObserver,
) -> Result<Network> {
    Ok(train_run(config, dataset, resume, observer)?.0)
}

/// Trains as [`train_observed`] does, and also returns the configuration the
/// run ended with, in which the step count a time budget chose replaces
/// the budget.
///
/// # Errors
/// As [`train_resumable`].
pub fn train_run(
    config: &TrainConfig,
    dataset: &Cifar10,
    resume: Option<TrainState>,
    observer: &mut dyn TrainObserver,
) -> Result<(Network, TrainConfig)> {
    let holdout = Holdout::new(dataset.train.len(), config.validation)?;
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
    let steps_per_epoch = holdout.train.len().div_ceil(config.batch_size) as u64;
    let total = config
        .max_steps
        .unwrap_or(config.epochs as u64 * steps_per_epoch);
    trainer.plan = Some(config.lr_plan(steps_per_epoch, total));
    let mut budget = config.time_budget.map(|seconds| Budget {
        limit: Duration::from_secs_f64(seconds),
        started: Instant::now(),
        measured: false,
    });
    let mut epoch = first_epoch;
    while trainer.steps_taken < trainer.total_steps()
        && (config.max_steps.is_some() || budget.is_some() || epoch <= config.epochs)
    {
        let mut report = trainer.run_epoch(
            &mut network,
            dataset,
            &holdout,
            epoch,
            budget.as_mut(),
            observer,
        )?;
        if config.evaluate_each_epoch {
            report.test = Some(evaluate(&network, &dataset.test, EVALUATION_BATCH)?);
        }
        if !holdout.validation.is_empty() {
            let validation = &holdout.validation;
            let evaluation =
                evaluate_indices(&network, &dataset.train, validation, EVALUATION_BATCH)?;
            report.validation = Some(evaluation);
        }
        let state = TrainState {
            network: network.clone(),
            momentum: trainer.momentum.clone(),
            epochs_done: epoch,
            steps_taken: trainer.steps_taken,
            config: TrainConfig {
                epochs: epoch,
                ..trainer.config.clone()
            },
        };
        observer.on_epoch(&report, &state);
        if budget.as_ref().is_some_and(Budget::is_spent) {
            break;
        }
        epoch += 1;
    }
    if budget.as_ref().is_some_and(|budget| !budget.measured) {
        log::warn!(
            "the time budget ended before the speed was measured, after {} steps",
            trainer.steps_taken
        );
        trainer.config.max_steps = Some(trainer.steps_taken);
    }
    let mut ended = trainer.config.clone();
    ended.epochs = last_epoch_run(&trainer, steps_per_epoch);
    ended.time_budget = None;
    Ok((network, ended))
}

/// Epochs that a run spans after its steps so far.
fn last_epoch_run(trainer: &Trainer, steps_per_epoch: u64) -> usize {
    trainer.steps_taken.div_ceil(steps_per_epoch.max(1)) as usize
}

/// Seconds of warm-up over which a time-budgeted run measures its speed,
/// at most; a shorter warm-up ends the measurement sooner.
const MEASURE_SECONDS: f64 = 20.0;

/// Share of a time budget spent measuring the speed, at most.
const MEASURE_SHARE: f64 = 0.1;

/// Fraction of the measured speed a time budget plans with, so that small
/// changes of speed still end the run within the budget.
const BUDGET_MARGIN: f64 = 0.97;

/// A wall-clock budget of a training run.
struct Budget {
    limit: Duration,
    started: Instant,
    /// The speed has been measured and the step count set.
    measured: bool,
}

impl Budget {
    fn is_spent(&self) -> bool {
        self.started.elapsed() >= self.limit
    }
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
    /// The learning rate of each step; without one, every step uses
    /// `config.lr`.
    plan: Option<LrPlan>,
    /// The epoch whose augmentation [`Trainer::step`] applies.
    epoch: usize,
    /// The convolution weights laid out for the current step.
    weights: StepWeights,
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
            plan: None,
            epoch: 1,
            weights: StepWeights::new(&network.params)?,
        })
    }

    fn total_steps(&self) -> u64 {
        self.plan.map_or(u64::MAX, |plan| plan.total_steps)
    }

    /// Sets the step count from the speed measured so far, once the
    /// warm-up or [`MEASURE_SECONDS`] is over.
    fn measure_speed(&mut self, budget: &mut Budget, first_step: u64, epoch_start: Instant) {
        let Some(plan) = self.plan.as_mut() else {
            return;
        };
        let elapsed = epoch_start.elapsed().as_secs_f64();
        let in_warmup = self.steps_taken < plan.warmup_steps;
        let window = MEASURE_SECONDS.min(MEASURE_SHARE * budget.limit.as_secs_f64());
        if budget.measured || (in_warmup && elapsed < window) {
            return;
        }
        let steps = (self.steps_taken - first_step) as f64;
        let left = budget.limit.as_secs_f64() - budget.started.elapsed().as_secs_f64();
        let more = (left.max(0.0) * BUDGET_MARGIN * steps / elapsed).floor() as u64;
        plan.total_steps = self.steps_taken + more.max(1);
        self.config.max_steps = Some(plan.total_steps);
        budget.measured = true;
        log::info!(
            "measured {:.1} steps/s; the time budget allows {} steps",
            steps / elapsed,
            plan.total_steps
        );
    }

    fn run_epoch(
        &mut self,
        network: &mut Network,
        dataset: &Cifar10,
        holdout: &Holdout,
        epoch: usize,
        mut budget: Option<&mut Budget>,
        observer: &mut dyn TrainObserver,
    ) -> Result<EpochReport> {
        let start = Instant::now();
        self.epoch = epoch;
        let positions = shuffled_indices(holdout.train.len(), self.config.seed, epoch as u64);
        let order: Vec<usize> = positions.iter().map(|&p| holdout.train[p]).collect();
        let first_step = self.steps_taken;
        let mut totals = EpochTotals::default();
        for batch in order.chunks(self.config.batch_size) {
            if self.steps_taken >= self.total_steps()
                || budget.as_deref().is_some_and(Budget::is_spent)
            {
                break;
            }
            let outcome = self.step(network, &dataset.train, batch)?;
            if !outcome.loss.is_finite() {
                return Err(ModelError::NonFinite(format!(
                    "loss is {} at epoch {epoch}, step {}; lower the learning rate \
                     (now {})",
                    outcome.loss, self.steps_taken, self.sgd.lr
                )));
            }
            totals.loss += f64::from(outcome.loss) * batch.len() as f64;
            totals.correct += outcome.correct;
            totals.images += batch.len();
            if let Some(budget) = budget.as_deref_mut() {
                self.measure_speed(budget, first_step, start);
            }
            observer.on_step(&StepProgress {
                epoch,
                steps_taken: self.steps_taken,
                total_steps: self.total_steps(),
                loss: totals.loss / totals.images as f64,
                train_accuracy: totals.correct as f64 / totals.images as f64,
                images: totals.images,
                epoch_seconds: start.elapsed().as_secs_f64(),
            });
        }
        let seconds = start.elapsed().as_secs_f64();
        let images = totals.images.max(1) as f64;
        Ok(EpochReport {
            epoch,
            loss: totals.loss / images,
            train_accuracy: totals.correct as f64 / images,
            test: None,
            validation: None,
            lr: self.sgd.lr,
            steps_taken: self.steps_taken,
            total_steps: self.total_steps(),
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
        if let Some(plan) = &self.plan {
            self.sgd.lr = plan.lr_at(self.steps_taken);
        }
        self.steps_taken += 1;
        let step = self.steps_taken;
        let seeds = DropoutSeeds {
            first: mix(self.config.seed ^ mix(2 * step)),
            second: mix(self.config.seed ^ mix(2 * step + 1)),
        };
        let augment = self.config.augment.then_some(Augment {
            seed: self.config.seed,
            epoch: self.epoch as u64,
        });
        let smoothing = self.config.label_smoothing;
        let batch = indices.len();
        let chunk_count = batch.div_ceil(TRAIN_CHUNK);
        let params_len = network.params.len();
        self.weights.repack(&network.params)?;
        let (params, stats, dropout) = (&network.params, &network.stats, &network.dropout);
        let weights = &self.weights;

        // Every chunk runs forward, loss and backward into its own partial.
        let run = |index: usize, chunk: &mut Chunk, partial: &mut [f32]| {
            let first_image = index * TRAIN_CHUNK;
            let chunk_indices = &indices[first_image..(first_image + TRAIN_CHUNK).min(batch)];
            let place = ChunkPlace {
                first_image,
                batch,
                seeds,
                augment,
                smoothing,
            };
            chunk.train(
                split,
                stats,
                params,
                weights,
                dropout,
                chunk_indices,
                place,
                partial,
            )
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
            .step_partial_sums(network.params_mut(), partials, &mut self.momentum)?;
        let loss = (loss_sum / batch as f64) as f32;
        Ok(StepOutcome { loss, correct })
    }
}

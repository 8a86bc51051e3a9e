//! Training state saved at the end of each epoch, so a run can continue
//! where it stopped and end with the same parameters as an uninterrupted
//! run.
//!
//! A state file is one little-endian binary file:
//!
//! | bytes | field |
//! |---|---|
//! | 8 | magic `CIFAASTS` |
//! | 4 | format version, `u32` (currently 2; version 1 is still read) |
//! | 8 | epochs completed, `u64` |
//! | 8 | SGD steps taken, `u64`, which seeds the next step's dropout masks |
//! | 8 + 8 | training seed and batch size, `u64` |
//! | 4 × 4 | learning rate, momentum, weight decay and dropout, `f32` |
//! | 4 | schedule: 0 constant, 1 cosine, 2 one-cycle, `u32` (from version 2) |
//! | 4 × 2 | warm-up epochs and label smoothing, `f32` (from version 2) |
//! | 4 | augmentation: 0 off, 1 on, `u32` (from version 2) |
//! | 8 × 2 | validation images and max steps (0 for none), `u64` (from version 2) |
//! | 8 + C | length `C` of the embedded model checkpoint, then the checkpoint |
//! | 8 + 4 P | number of momentum values `P`, then the values, `f32` |
//! | 8 | FNV-1a 64-bit hash of every byte before it, `u64` |

use std::fs;
use std::path::Path;

use crate::checkpoint::{decode_checkpoint, encode_checkpoint, fnv1a64, write_atomically};
use crate::schedule::Schedule;
use crate::{ModelError, Network, Result, TrainConfig};

/// The first eight bytes of every training state file.
pub const STATE_MAGIC: [u8; 8] = *b"CIFAASTS";
const STATE_VERSION: u32 = 2;

/// Everything a training run needs to continue after a completed epoch:
/// the network, the momentum buffers, the epoch and step counts, and the
/// options that must stay the same.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainState {
    /// The network after `epochs_done` epochs.
    pub network: Network,
    /// The Nesterov momentum buffer, laid out as the parameters.
    pub momentum: Vec<f32>,
    /// Epochs completed.
    pub epochs_done: usize,
    /// SGD steps taken; the dropout masks of step `n` derive from it.
    pub steps_taken: u64,
    /// The training options the state was made with.
    pub config: TrainConfig,
}

impl TrainState {
    /// Checks that `config` continues this state's run: the seed, batch
    /// size and optimiser settings must match, and `config.epochs` must be
    /// above the epochs already done.
    ///
    /// # Errors
    /// [`ModelError::Config`] naming the first option that differs.
    pub fn check_continues(&self, config: &TrainConfig) -> Result<()> {
        let saved = &self.config;
        if config.time_budget.is_some() {
            return Err(ModelError::Config(format!(
                "a time budget cannot continue a saved run; pass --steps {} instead, the step \
                 count the saved run planned",
                saved
                    .max_steps
                    .map_or_else(|| "N".to_owned(), |steps| steps.to_string())
            )));
        }
        let steps = |steps: Option<u64>| steps.map_or_else(|| "none".to_owned(), |s| s.to_string());
        let pairs = [
            ("--seed", saved.seed.to_string(), config.seed.to_string()),
            (
                "--batch-size",
                saved.batch_size.to_string(),
                config.batch_size.to_string(),
            ),
            ("--lr", saved.lr.to_string(), config.lr.to_string()),
            (
                "--momentum",
                saved.momentum.to_string(),
                config.momentum.to_string(),
            ),
            (
                "weight decay",
                saved.weight_decay.to_string(),
                config.weight_decay.to_string(),
            ),
            (
                "--dropout",
                saved.dropout.to_string(),
                config.dropout.to_string(),
            ),
            (
                "--schedule",
                saved.schedule.to_string(),
                config.schedule.to_string(),
            ),
            (
                "--warmup-epochs",
                saved.warmup_epochs.to_string(),
                config.warmup_epochs.to_string(),
            ),
            (
                "--label-smoothing",
                saved.label_smoothing.to_string(),
                config.label_smoothing.to_string(),
            ),
            (
                "--augment",
                saved.augment.to_string(),
                config.augment.to_string(),
            ),
            (
                "--val-split",
                saved.validation.to_string(),
                config.validation.to_string(),
            ),
            ("--steps", steps(saved.max_steps), steps(config.max_steps)),
        ];
        for (option, was, now) in pairs {
            if was != now {
                return Err(ModelError::Config(format!(
                    "the saved run used {option} {was}, this one {now}; pass {option} {was} to \
                     continue it"
                )));
            }
        }
        let finished = config
            .max_steps
            .is_some_and(|steps| self.steps_taken >= steps);
        if finished || (config.max_steps.is_none() && config.epochs <= self.epochs_done) {
            return Err(ModelError::Config(format!(
                "the saved run already completed {} epochs; pass --epochs above {} to train \
                 further",
                self.epochs_done, self.epochs_done
            )));
        }
        Ok(())
    }
}

/// Writes `state` to `path` through a synced temporary file and a rename,
/// as checkpoints are written.
///
/// # Errors
/// [`ModelError::Io`] naming the file.
pub fn save_train_state(state: &TrainState, path: &Path) -> Result<()> {
    write_atomically(path, &encode_train_state(state))
}

/// Returns the bytes of the training state file of `state`, as
/// [`save_train_state`] writes them.
pub fn encode_train_state(state: &TrainState) -> Vec<u8> {
    let config = &state.config;
    let mut out = Vec::new();
    out.extend_from_slice(&STATE_MAGIC);
    out.extend_from_slice(&STATE_VERSION.to_le_bytes());
    for value in [
        state.epochs_done as u64,
        state.steps_taken,
        config.seed,
        config.batch_size as u64,
    ] {
        out.extend_from_slice(&value.to_le_bytes());
    }
    for value in [
        config.lr,
        config.momentum,
        config.weight_decay,
        config.dropout,
    ] {
        out.extend_from_slice(&value.to_le_bytes());
    }
    out.extend_from_slice(&config.schedule.code().to_le_bytes());
    out.extend_from_slice(&config.warmup_epochs.to_le_bytes());
    out.extend_from_slice(&config.label_smoothing.to_le_bytes());
    out.extend_from_slice(&u32::from(config.augment).to_le_bytes());
    out.extend_from_slice(&(config.validation as u64).to_le_bytes());
    out.extend_from_slice(&config.max_steps.unwrap_or(0).to_le_bytes());
    let checkpoint = encode_checkpoint(&state.network);
    out.extend_from_slice(&(checkpoint.len() as u64).to_le_bytes());
    out.extend_from_slice(&checkpoint);
    out.extend_from_slice(&(state.momentum.len() as u64).to_le_bytes());
    out.extend_from_slice(bytemuck::cast_slice(&state.momentum));
    let checksum = fnv1a64(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    out
}

/// Reads a state written by [`save_train_state`].
///
/// # Errors
/// [`ModelError::Io`] when the file cannot be read, and
/// [`ModelError::Checkpoint`] naming the check that failed.
pub fn load_train_state(path: &Path) -> Result<TrainState> {
    let bytes = fs::read(path).map_err(|source| ModelError::Io {
        action: "cannot read training state",
        path: path.to_path_buf(),
        source,
    })?;
    decode_train_state(&bytes).map_err(|reason| ModelError::Checkpoint {
        path: path.to_path_buf(),
        reason,
    })
}

/// Parses the bytes of a training state file with the checks of
/// [`load_train_state`].
///
/// # Errors
/// A message naming the first check that failed.
pub fn decode_train_state(bytes: &[u8]) -> std::result::Result<TrainState, String> {
    if bytes.len() < STATE_MAGIC.len() + 4 + 8 || bytes[..8] != STATE_MAGIC {
        return Err(
            "not a cifaas training state: wrong magic number or too short; pass a \
                    file written by train at the end of an epoch"
                .into(),
        );
    }
    let (body, stored) = bytes.split_at(bytes.len() - 8);
    let stored = u64::from_le_bytes(stored.try_into().expect("8 bytes"));
    if fnv1a64(body) != stored {
        return Err("checksum mismatch: the training state is corrupt or truncated".into());
    }
    let mut fields = Fields {
        bytes: body,
        offset: 8,
    };
    let version = fields.u32()?;
    if !(1..=STATE_VERSION).contains(&version) {
        return Err(format!(
            "unknown training state version {version}; this build reads version {STATE_VERSION}"
        ));
    }
    let epochs_done = fields.u64()? as usize;
    let steps_taken = fields.u64()?;
    let seed = fields.u64()?;
    let batch_size = fields.u64()? as usize;
    let [lr, momentum, weight_decay, dropout] =
        [fields.f32()?, fields.f32()?, fields.f32()?, fields.f32()?];
    let mut config = TrainConfig {
        epochs: epochs_done,
        batch_size,
        lr,
        momentum,
        weight_decay,
        dropout,
        seed,
        ..TrainConfig::default()
    };
    if version >= 2 {
        read_version2_options(&mut fields, &mut config)?;
    }
    let checkpoint_len = fields.u64()? as usize;
    let network = decode_checkpoint(fields.take(checkpoint_len)?)?;
    let count = fields.u64()? as usize;
    if count != network.params.len() {
        return Err(format!(
            "{count} momentum values stored, the network has {} parameters",
            network.params.len()
        ));
    }
    let values: Vec<f32> = bytemuck::pod_collect_to_vec(fields.take(4 * count)?);
    if fields.offset != body.len() {
        return Err("unexpected bytes before the checksum".into());
    }
    Ok(TrainState {
        network,
        momentum: values,
        epochs_done,
        steps_taken,
        config,
    })
}

/// Reads the options that version 2 added after the optimiser settings.
fn read_version2_options(
    fields: &mut Fields<'_>,
    config: &mut TrainConfig,
) -> std::result::Result<(), String> {
    let code = fields.u32()?;
    config.schedule =
        Schedule::from_code(code).ok_or_else(|| format!("unknown schedule code {code}"))?;
    config.warmup_epochs = fields.f32()?;
    config.label_smoothing = fields.f32()?;
    config.augment = match fields.u32()? {
        0 => false,
        1 => true,
        other => return Err(format!("augmentation flag is {other}, expected 0 or 1")),
    };
    config.validation = fields.u64()? as usize;
    config.max_steps = Some(fields.u64()?).filter(|&steps| steps > 0);
    Ok(())
}

struct Fields<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Fields<'a> {
    fn take(&mut self, len: usize) -> std::result::Result<&'a [u8], String> {
        let end = self
            .offset
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| format!("truncated at offset {}", self.offset))?;
        let slice = &self.bytes[self.offset..end];
        self.offset = end;
        Ok(slice)
    }

    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn f32(&mut self) -> std::result::Result<f32, String> {
        Ok(f32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
}

//! The split of the training records into the images trained on and a
//! held-out validation set.

use data::shuffled_indices;

use crate::{ModelError, Result};

/// Key of the shuffle that picks the validation images. It is fixed, not
/// the training seed, so runs with different seeds hold out the same images
/// and their validation accuracies compare.
const HOLDOUT_KEY: u64 = 0x7661_6c69_6461_7465;

/// Record indices of the training split: those trained on and those held
/// out, each in ascending order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holdout {
    /// Records trained on.
    pub train: Vec<usize>,
    /// Records held out for validation.
    pub validation: Vec<usize>,
}

impl Holdout {
    /// Holds out `validation` of `records` training records, chosen by a
    /// fixed shuffle.
    ///
    /// # Errors
    /// [`ModelError::Config`] when fewer than one record would be left to
    /// train on.
    pub fn new(records: usize, validation: usize) -> Result<Self> {
        if records == 0 {
            return Err(ModelError::Config(
                "the training split has no records".into(),
            ));
        }
        if validation >= records {
            return Err(ModelError::Config(format!(
                "cannot hold out {validation} validation images from a training split of \
                 {records} records; hold out fewer than {records}"
            )));
        }
        if validation == 0 {
            return Ok(Self {
                train: (0..records).collect(),
                validation: Vec::new(),
            });
        }
        let order = shuffled_indices(records, HOLDOUT_KEY, 0);
        let mut held = order[..validation].to_vec();
        let mut train = order[validation..].to_vec();
        held.sort_unstable();
        train.sort_unstable();
        Ok(Self {
            train,
            validation: held,
        })
    }
}

//! Named training recipes: complete sets of training options that the
//! individual `train` options then override.

use std::fmt;
use std::str::FromStr;

use model::{Schedule, TrainConfig};

/// A named preset of training options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Recipe {
    /// The schedule of the original study, kept for comparison with its
    /// PyTorch figures: Nesterov SGD with momentum 0.9, a constant learning
    /// rate of 0.01, batch 64, dropout 0.25, no augmentation, no weight
    /// decay.
    #[default]
    Study,
    /// Test accuracy per minute of training: random crops and flips, a
    /// one-cycle learning rate with a peak of 0.02 after a warm-up of 0.3
    /// epochs, weight decay 5e-4, label smoothing 0.1 and dropout 0.1.
    Fast,
}

impl Recipe {
    /// Every recipe.
    pub const ALL: [Recipe; 2] = [Recipe::Study, Recipe::Fast];

    /// Returns the name used on the command line and in run records.
    pub fn name(self) -> &'static str {
        match self {
            Recipe::Study => "study",
            Recipe::Fast => "fast",
        }
    }

    /// Returns the training options of the recipe.
    pub fn config(self) -> TrainConfig {
        // The study's schedule is the library default, except that the test
        // set is evaluated once at the end unless `--test-each-epoch` asks.
        let study = TrainConfig {
            evaluate_each_epoch: false,
            ..TrainConfig::default()
        };
        match self {
            Recipe::Study => study,
            Recipe::Fast => TrainConfig {
                epochs: 10,
                lr: 0.02,
                weight_decay: 5e-4,
                dropout: 0.1,
                schedule: Schedule::OneCycle,
                warmup_epochs: 0.3,
                label_smoothing: 0.1,
                augment: true,
                ..study
            },
        }
    }
}

impl fmt::Display for Recipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Recipe {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|recipe| recipe.name() == value)
            .ok_or_else(|| format!("unknown recipe {value:?}; expected study or fast"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn study_recipe_is_the_default_config() {
        let study = Recipe::Study.config();
        let default = TrainConfig::default();
        assert_eq!(
            study,
            TrainConfig {
                evaluate_each_epoch: false,
                ..default
            }
        );
    }

    #[test]
    fn recipe_names_round_trip() {
        for recipe in Recipe::ALL {
            assert_eq!(recipe.name().parse::<Recipe>(), Ok(recipe));
        }
        let error = "slow".parse::<Recipe>().unwrap_err();
        assert!(error.contains("\"slow\""), "{error}");
    }
}

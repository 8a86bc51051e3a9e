//! Learning-rate schedules: the learning rate of each SGD step.

use std::f64::consts::PI;
use std::fmt;
use std::str::FromStr;

/// Shape of the learning rate over a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Schedule {
    /// The base rate at every step after the warm-up.
    #[default]
    Constant,
    /// A linear warm-up from near 0 to the base rate, then a half cosine
    /// down to 0 at the last step.
    Cosine,
    /// A linear warm-up from a 25th of the base rate to the base rate, then
    /// a linear decline to 0 at the last step, as Smith's one-cycle policy
    /// (without its momentum cycle).
    OneCycle,
}

impl Schedule {
    /// Every schedule, in the order of its code.
    pub const ALL: [Schedule; 3] = [Schedule::Constant, Schedule::Cosine, Schedule::OneCycle];

    /// Returns the name used on the command line and in run records.
    pub fn name(self) -> &'static str {
        match self {
            Schedule::Constant => "constant",
            Schedule::Cosine => "cosine",
            Schedule::OneCycle => "onecycle",
        }
    }

    /// Returns the code stored in training state files.
    pub(crate) fn code(self) -> u32 {
        match self {
            Schedule::Constant => 0,
            Schedule::Cosine => 1,
            Schedule::OneCycle => 2,
        }
    }

    /// Returns the schedule stored as `code`, if any.
    pub(crate) fn from_code(code: u32) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|schedule| schedule.code() == code)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Schedule {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|schedule| schedule.name() == value)
            .ok_or_else(|| {
                format!("unknown schedule {value:?}; expected constant, cosine or onecycle")
            })
    }
}

/// The learning rate of every step of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrPlan {
    /// The schedule's shape.
    pub schedule: Schedule,
    /// The peak learning rate, reached at the end of the warm-up.
    pub base: f32,
    /// Steps of linear warm-up.
    pub warmup_steps: u64,
    /// Steps of the whole run; the rate reaches 0 after the last.
    pub total_steps: u64,
}

impl LrPlan {
    /// Returns the learning rate of the step `step` (0-based). Computed in
    /// f64 from the step counts alone, so a resumed run gets the same rates.
    pub fn lr_at(&self, step: u64) -> f32 {
        let base = f64::from(self.base);
        // The warm-up does not depend on the step count, so a time budget
        // that sets the count during the warm-up changes no earlier rate.
        let warmup = self.warmup_steps;
        if step < warmup {
            let reached = (step + 1) as f64 / warmup as f64;
            let start = match self.schedule {
                Schedule::OneCycle => base / 25.0,
                Schedule::Constant | Schedule::Cosine => 0.0,
            };
            return (start + (base - start) * reached) as f32;
        }
        let decay_steps = self.total_steps.saturating_sub(warmup);
        // Fraction of the decay already done, from 0 at its first step
        // to just below 1 at the last, so no step gets a rate of 0.
        let done = if decay_steps == 0 {
            0.0
        } else {
            (step - warmup) as f64 / decay_steps as f64
        };
        let rate = match self.schedule {
            Schedule::Constant => base,
            Schedule::Cosine => 0.5 * base * (1.0 + (PI * done.min(1.0)).cos()),
            Schedule::OneCycle => base * (1.0 - done.min(1.0)),
        };
        rate as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(schedule: Schedule, warmup_steps: u64) -> LrPlan {
        LrPlan {
            schedule,
            base: 0.1,
            warmup_steps,
            total_steps: 100,
        }
    }

    fn close(a: f32, b: f64) -> bool {
        (f64::from(a) - b).abs() < 1e-6
    }

    #[test]
    fn constant_without_warmup_is_base_bits() {
        let plan = LrPlan {
            base: 0.01,
            ..plan(Schedule::Constant, 0)
        };
        for step in [0, 1, 50, 99, 100, 1000] {
            assert_eq!(plan.lr_at(step).to_bits(), 0.01f32.to_bits(), "step {step}");
        }
    }

    #[test]
    fn warmup_rises_linearly_to_base() {
        let cosine = plan(Schedule::Cosine, 10);
        assert!(close(cosine.lr_at(0), 0.01));
        assert!(close(cosine.lr_at(4), 0.05));
        assert!(close(cosine.lr_at(9), 0.1));
        let onecycle = plan(Schedule::OneCycle, 10);
        assert!(close(onecycle.lr_at(0), 0.004 + 0.096 * 0.1));
        assert!(close(onecycle.lr_at(9), 0.1));
        let constant = plan(Schedule::Constant, 10);
        assert!(close(constant.lr_at(4), 0.05));
        assert!(close(constant.lr_at(10), 0.1));
        assert!(close(constant.lr_at(99), 0.1));
    }

    #[test]
    fn decays_reach_near_zero_at_the_end() {
        let cosine = plan(Schedule::Cosine, 10);
        assert!(close(cosine.lr_at(10), 0.1));
        assert!(close(cosine.lr_at(55), 0.05));
        let last = cosine.lr_at(99);
        assert!(last > 0.0, "{last}");
        assert!(last < 1e-3, "{last}");
        let onecycle = plan(Schedule::OneCycle, 10);
        assert!(close(onecycle.lr_at(55), 0.05));
        assert!(close(onecycle.lr_at(99), 0.1 / 90.0));
    }

    #[test]
    fn decays_never_increase() {
        for schedule in [Schedule::Cosine, Schedule::OneCycle] {
            let plan = plan(schedule, 10);
            for step in 10..99 {
                assert!(
                    plan.lr_at(step + 1) <= plan.lr_at(step),
                    "{schedule} step {step}"
                );
            }
        }
    }

    #[test]
    fn names_and_codes_round_trip() {
        for schedule in Schedule::ALL {
            assert_eq!(schedule.name().parse::<Schedule>(), Ok(schedule));
            assert_eq!(Schedule::from_code(schedule.code()), Some(schedule));
        }
        assert!("linear"
            .parse::<Schedule>()
            .unwrap_err()
            .contains("\"linear\""));
        assert_eq!(Schedule::from_code(7), None);
    }
}

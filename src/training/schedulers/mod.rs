//! Learning-rate schedulers with PyTorch's formulas and saveable state.
//!
//! A scheduler is configured by an [`LrScheduler`] (serde-able) and run by a [`Scheduler`], which
//! holds the counters and the current learning rate of one parameter group. The trainer steps
//! [`LrScheduler::OneCycle`] and [`LrScheduler::Cyclic`] after every batch and the others after
//! every epoch (a [`LrScheduler::LinearWarmup`] after every batch or epoch, as configured).
//! As in PyTorch, a freshly built scheduler has already taken "step 0": its learning rate is the
//! schedule's value at step 0.
use crate::error::Result;
use crate::macros::ensure;
use crate::training::callbacks::Mode;
use crate::training::checks::{monitored, non_negative, positive};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::f64::consts::PI;

#[cfg(test)]
mod tests;

/// How [`LrScheduler::OneCycle`] moves between its learning rates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anneal {
    /// Cosine annealing.
    #[default]
    Cos,
    /// Linear interpolation.
    Linear,
}

/// The amplitude policy of [`LrScheduler::Cyclic`] (PyTorch's `mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CyclicMode {
    /// Constant amplitude.
    #[default]
    Triangular,
    /// Amplitude halved every cycle.
    Triangular2,
    /// Amplitude scaled by `gamma^step`.
    ExpRange,
}

/// Whether [`LrScheduler::ReduceOnPlateau`]'s threshold is relative or absolute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdMode {
    /// Better means beyond `best · (1 ± threshold)`.
    #[default]
    Rel,
    /// Better means beyond `best ± threshold`.
    Abs,
}

/// A learning-rate schedule (PyTorch's `torch.optim.lr_scheduler` classes). `t` below counts
/// scheduler steps: epochs, or batches for the per-batch schedules; `base` is the group's
/// configured learning rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum LrScheduler {
    /// `base · gamma^⌊t / step_size⌋` (per epoch).
    Step {
        /// Epochs between decays (≥ 1).
        step_size: usize,
        /// The decay factor.
        gamma: f64,
    },
    /// `base · gamma^(number of milestones ≤ t)` (per epoch).
    MultiStep {
        /// The epochs of the decays, strictly increasing.
        milestones: Vec<usize>,
        /// The decay factor.
        gamma: f64,
    },
    /// `base · gamma^t` (per epoch).
    Exponential {
        /// The decay factor per epoch.
        gamma: f64,
    },
    /// `eta_min + (base − eta_min)(1 + cos(π t / t_max)) / 2` (per epoch).
    CosineAnnealing {
        /// Epochs of the half cosine period (≥ 1).
        t_max: usize,
        /// The smallest learning rate.
        eta_min: f64,
    },
    /// SGDR: cosine annealing restarted after `t_0`, then `t_0 · t_mult`, … epochs.
    CosineAnnealingWarmRestarts {
        /// Epochs of the first cycle (≥ 1).
        t_0: usize,
        /// Factor of each cycle's length over the previous one's (≥ 1).
        t_mult: usize,
        /// The smallest learning rate.
        eta_min: f64,
    },
    /// The 1cycle policy (per batch): from `max_lr / div_factor` up to `max_lr` over the first
    /// `pct_start` of `total_steps`, then down to `max_lr / (div_factor · final_div_factor)`.
    /// `max_lr` defaults to the group's learning rate, `total_steps` to epochs × batches of the
    /// first `fit`. (PyTorch also cycles the momentum by default; this does not.)
    OneCycle {
        /// The peak learning rate (`None`: the group's learning rate).
        max_lr: Option<f64>,
        /// The schedule's length in batches (`None`: epochs × batches of the first `fit`).
        total_steps: Option<usize>,
        /// The fraction of the steps spent increasing the learning rate.
        pct_start: f64,
        /// How the learning rate moves between its values.
        anneal_strategy: Anneal,
        /// `max_lr / div_factor` is the starting learning rate.
        div_factor: f64,
        /// The final learning rate is the starting one divided by this.
        final_div_factor: f64,
        /// A third phase back down to the starting learning rate before the final descent
        /// (fast.ai's variant), instead of two phases.
        three_phase: bool,
    },
    /// Cyclical learning rate (per batch) between `base_lr` (default: the group's learning
    /// rate) and `max_lr`, `step_size_up` batches up and `step_size_down` (default: up) down.
    Cyclic {
        /// The lower bound (`None`: the group's learning rate).
        base_lr: Option<f64>,
        /// The upper bound.
        max_lr: f64,
        /// Batches of the increasing half cycle (≥ 1).
        step_size_up: usize,
        /// Batches of the decreasing half cycle (`None`: `step_size_up`).
        step_size_down: Option<usize>,
        /// The amplitude policy.
        mode: CyclicMode,
        /// `ExpRange`'s factor per batch.
        gamma: f64,
    },
    /// Multiplies the learning rate by `factor` when `monitor` (default: `val_loss` when there is
    /// validation data, else `loss`) has not improved for more than `patience` epochs; then waits
    /// `cooldown` epochs; never goes below `min_lr`.
    ReduceOnPlateau {
        /// The history key watched (`None`: `val_loss`, or `loss` without validation data).
        monitor: Option<String>,
        /// Whether `monitor` should go down or up.
        mode: Mode,
        /// The factor of each reduction, in (0, 1).
        factor: f64,
        /// Epochs without improvement tolerated.
        patience: usize,
        /// The smallest change that counts as an improvement.
        threshold: f64,
        /// Whether `threshold` is relative or absolute.
        threshold_mode: ThresholdMode,
        /// Epochs to wait after a reduction before counting again.
        cooldown: usize,
        /// The smallest learning rate.
        min_lr: f64,
        /// Reductions smaller than this are skipped.
        eps: f64,
    },
    /// Linear warm-up from `base · start_factor` to `base` over `warmup` steps (batches when
    /// `per_batch`, else epochs), then `then` (which starts counting its own steps at the end of
    /// the warm-up) or the constant `base`.
    LinearWarmup {
        /// Steps of the warm-up (≥ 1).
        warmup: usize,
        /// Count the warm-up in batches (else in epochs).
        per_batch: bool,
        /// The first learning rate is `base · start_factor`, in (0, 1].
        start_factor: f64,
        /// The schedule after the warm-up (`None`: constant `base`); not another warm-up.
        then: Option<Box<LrScheduler>>,
    },
}

impl LrScheduler {
    /// StepLR.
    pub fn step(step_size: usize, gamma: f64) -> Self {
        Self::Step { step_size, gamma }
    }
    /// MultiStepLR.
    pub fn multi_step(milestones: impl Into<Vec<usize>>, gamma: f64) -> Self {
        Self::MultiStep {
            milestones: milestones.into(),
            gamma,
        }
    }
    /// ExponentialLR.
    pub fn exponential(gamma: f64) -> Self {
        Self::Exponential { gamma }
    }
    /// CosineAnnealingLR.
    pub fn cosine(t_max: usize, eta_min: f64) -> Self {
        Self::CosineAnnealing { t_max, eta_min }
    }
    /// CosineAnnealingWarmRestarts.
    pub fn cosine_warm_restarts(t_0: usize, t_mult: usize, eta_min: f64) -> Self {
        Self::CosineAnnealingWarmRestarts {
            t_0,
            t_mult,
            eta_min,
        }
    }
    /// OneCycleLR with PyTorch's defaults (pct_start 0.3, cosine, div 25, final div 1e4).
    pub fn one_cycle(max_lr: Option<f64>) -> Self {
        Self::OneCycle {
            max_lr,
            total_steps: None,
            pct_start: 0.3,
            anneal_strategy: Anneal::Cos,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
        }
    }
    /// CyclicLR (triangular) with PyTorch's default step size (2000 batches up and down).
    pub fn cyclic(base_lr: Option<f64>, max_lr: f64) -> Self {
        Self::Cyclic {
            base_lr,
            max_lr,
            step_size_up: 2000,
            step_size_down: None,
            mode: CyclicMode::Triangular,
            gamma: 1.0,
        }
    }
    /// ReduceLROnPlateau with PyTorch's defaults (factor 0.1, patience 10, threshold 1e-4
    /// relative, no cooldown, min_lr 0, eps 1e-8).
    pub fn reduce_on_plateau() -> Self {
        Self::ReduceOnPlateau {
            monitor: None,
            mode: Mode::Auto,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }
    /// Linear warm-up over `warmup` epochs (or batches with `per_batch`) from a third of the
    /// learning rate (PyTorch's LinearLR default), followed by `then`.
    pub fn warmup(warmup: usize, per_batch: bool, then: Option<LrScheduler>) -> Self {
        Self::LinearWarmup {
            warmup,
            per_batch,
            start_factor: 1.0 / 3.0,
            then: then.map(Box::new),
        }
    }

    /// Whether the schedule advances after every batch (else after every epoch).
    pub fn per_batch(&self) -> bool {
        matches!(self, Self::OneCycle { .. } | Self::Cyclic { .. })
    }

    /// Checks the parameters; errors name `{field}.<parameter>`.
    pub fn validate(&self, field: &str) -> Result<()> {
        let need = |ok: bool, name: &str, reason: &str| -> Result<()> {
            ensure!(ok, config(format!("{field}.{name}")), "{reason}");
            Ok(())
        };
        let (at_least_one, is_positive, is_non_negative) =
            ("must be ≥ 1", "must be positive", "must be ≥ 0");
        match self {
            Self::Step { step_size, gamma } => {
                need(*step_size != 0, "step_size", at_least_one)?;
                need(positive(*gamma), "gamma", is_positive)?;
            }
            Self::MultiStep { milestones, gamma } => {
                let increasing = milestones.windows(2).all(|w| w[0] < w[1]);
                need(increasing, "milestones", "must be strictly increasing")?;
                need(positive(*gamma), "gamma", is_positive)?;
            }
            Self::Exponential { gamma } => need(positive(*gamma), "gamma", is_positive)?,
            Self::CosineAnnealing { t_max, eta_min } => {
                need(*t_max != 0, "t_max", at_least_one)?;
                need(non_negative(*eta_min), "eta_min", is_non_negative)?;
            }
            Self::CosineAnnealingWarmRestarts {
                t_0,
                t_mult,
                eta_min,
            } => {
                need(*t_0 != 0, "t_0", at_least_one)?;
                need(*t_mult != 0, "t_mult", at_least_one)?;
                need(non_negative(*eta_min), "eta_min", is_non_negative)?;
            }
            Self::OneCycle {
                max_lr,
                total_steps,
                pct_start,
                div_factor,
                final_div_factor,
                ..
            } => {
                need(max_lr.is_none_or(positive), "max_lr", is_positive)?;
                need(*total_steps != Some(0), "total_steps", at_least_one)?;
                let in_unit = (0.0..=1.0).contains(pct_start);
                need(in_unit, "pct_start", "must be in [0, 1]")?;
                need(positive(*div_factor), "div_factor", is_positive)?;
                need(positive(*final_div_factor), "final_div_factor", is_positive)?;
            }
            Self::Cyclic {
                base_lr,
                max_lr,
                step_size_up,
                step_size_down,
                gamma,
                ..
            } => {
                need(base_lr.is_none_or(positive), "base_lr", is_positive)?;
                need(positive(*max_lr), "max_lr", is_positive)?;
                let steps = *step_size_up != 0 && *step_size_down != Some(0);
                need(steps, "step_size_up", "step sizes must be ≥ 1")?;
                need(positive(*gamma), "gamma", is_positive)?;
            }
            Self::ReduceOnPlateau {
                factor,
                threshold,
                min_lr,
                eps,
                ..
            } => {
                need(
                    *factor > 0.0 && *factor < 1.0,
                    "factor",
                    "must be in (0, 1)",
                )?;
                need(non_negative(*threshold), "threshold", is_non_negative)?;
                need(non_negative(*min_lr), "min_lr", is_non_negative)?;
                need(non_negative(*eps), "eps", is_non_negative)?;
            }
            Self::LinearWarmup {
                warmup,
                start_factor,
                then,
                ..
            } => {
                need(*warmup != 0, "warmup", at_least_one)?;
                let in_range = *start_factor > 0.0 && *start_factor <= 1.0;
                need(in_range, "start_factor", "must be in (0, 1]")?;
                if let Some(t) = then {
                    let nested = matches!(**t, Self::LinearWarmup { .. });
                    need(!nested, "then", "cannot be another warm-up")?;
                    t.validate(&format!("{field}.then"))?;
                }
            }
        }
        Ok(())
    }
}

/// Running state of [`LrScheduler::ReduceOnPlateau`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Plateau {
    best: Option<f64>,
    num_bad_epochs: usize,
    cooldown_counter: usize,
}

/// A running schedule for one parameter group; serde-able so that training can resume.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scheduler {
    config: LrScheduler,
    base_lr: f64,
    /// Steps taken (epochs or batches, by the schedule's unit).
    t: usize,
    lr: f64,
    /// OneCycle's resolved total number of steps.
    total_steps: usize,
    plateau: Plateau,
    /// CosineAnnealingWarmRestarts: steps into the current cycle and its length.
    t_cur: usize,
    t_i: usize,
    then: Option<Box<Scheduler>>,
}

impl Scheduler {
    /// Starts `config` for a group whose configured learning rate is `base_lr`; `total_steps`
    /// (epochs × batches per epoch) is OneCycle's default length. `field` names the config in
    /// errors.
    pub fn new(
        config: &LrScheduler,
        base_lr: f64,
        total_steps: usize,
        field: &str,
    ) -> Result<Self> {
        config.validate(field)?;
        let then = match config {
            LrScheduler::LinearWarmup {
                then: Some(inner), ..
            } => Some(Box::new(Scheduler::new(
                inner,
                base_lr,
                total_steps,
                &format!("{field}.then"),
            )?)),
            _ => None,
        };
        let total_steps = match config {
            LrScheduler::OneCycle {
                total_steps: Some(n),
                ..
            } => *n,
            _ => total_steps.max(1),
        };
        let t_i = match config {
            LrScheduler::CosineAnnealingWarmRestarts { t_0, .. } => *t_0,
            _ => 0,
        };
        let mut s = Self {
            config: config.clone(),
            base_lr,
            t: 0,
            lr: base_lr,
            total_steps,
            plateau: Plateau::default(),
            t_cur: 0,
            t_i,
            then,
        };
        s.lr = s.closed_form();
        Ok(s)
    }

    /// The learning rate to use now.
    pub fn lr(&self) -> f64 {
        self.lr
    }
    /// The schedule being run.
    pub fn config(&self) -> &LrScheduler {
        &self.config
    }

    /// The schedule's value at the current step (ReduceOnPlateau: the current value).
    fn closed_form(&self) -> f64 {
        let base = self.base_lr;
        let t = self.t as f64;
        match &self.config {
            LrScheduler::Step { step_size, gamma } => {
                base * gamma.powi((self.t / step_size) as i32)
            }
            LrScheduler::MultiStep { milestones, gamma } => {
                base * gamma.powi(milestones.iter().filter(|&&m| m <= self.t).count() as i32)
            }
            LrScheduler::Exponential { gamma } => base * gamma.powi(self.t as i32),
            LrScheduler::CosineAnnealing { t_max, eta_min } => {
                eta_min + (base - eta_min) * (1.0 + (PI * t / *t_max as f64).cos()) / 2.0
            }
            LrScheduler::CosineAnnealingWarmRestarts { eta_min, .. } => {
                eta_min
                    + (base - eta_min) * (1.0 + (PI * self.t_cur as f64 / self.t_i as f64).cos())
                        / 2.0
            }
            LrScheduler::OneCycle {
                max_lr,
                pct_start,
                anneal_strategy,
                div_factor,
                final_div_factor,
                three_phase,
                ..
            } => {
                let max_lr = max_lr.unwrap_or(base);
                let initial = max_lr / div_factor;
                let min_lr = initial / final_div_factor;
                let total = self.total_steps as f64;
                // (end step, start lr, end lr) per phase, as in PyTorch
                let phases: Vec<(f64, f64, f64)> = if *three_phase {
                    vec![
                        (pct_start * total - 1.0, initial, max_lr),
                        (2.0 * pct_start * total - 2.0, max_lr, initial),
                        (total - 1.0, initial, min_lr),
                    ]
                } else {
                    vec![
                        (pct_start * total - 1.0, initial, max_lr),
                        (total - 1.0, max_lr, min_lr),
                    ]
                };
                let step = t.min(total - 1.0);
                let mut start_step = 0.0;
                let mut lr = min_lr;
                for (i, &(end_step, start, end)) in phases.iter().enumerate() {
                    if step <= end_step || i == phases.len() - 1 {
                        let pct = if end_step > start_step {
                            (step - start_step) / (end_step - start_step)
                        } else {
                            1.0
                        };
                        lr = match anneal_strategy {
                            Anneal::Cos => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
                            Anneal::Linear => (end - start) * pct + start,
                        };
                        break;
                    }
                    start_step = end_step;
                }
                lr
            }
            LrScheduler::Cyclic {
                base_lr,
                max_lr,
                step_size_up,
                step_size_down,
                mode,
                gamma,
            } => {
                let lo = base_lr.unwrap_or(base);
                let up = *step_size_up as f64;
                let down = step_size_down.map(|d| d as f64).unwrap_or(up);
                let total = up + down;
                let ratio = up / total;
                let cycle = (1.0 + t / total).floor();
                let x = 1.0 + t / total - cycle;
                let scale = if x <= ratio {
                    x / ratio
                } else {
                    (x - 1.0) / (ratio - 1.0)
                };
                let height = (max_lr - lo) * scale;
                lo + height
                    * match mode {
                        CyclicMode::Triangular => 1.0,
                        CyclicMode::Triangular2 => 1.0 / 2f64.powf(cycle - 1.0),
                        CyclicMode::ExpRange => gamma.powf(t),
                    }
            }
            LrScheduler::ReduceOnPlateau { .. } => self.lr,
            LrScheduler::LinearWarmup {
                warmup,
                start_factor,
                ..
            } => {
                if self.t < *warmup {
                    base * (start_factor + (1.0 - start_factor) * t / *warmup as f64)
                } else {
                    self.then.as_ref().map_or(base, |s| s.lr)
                }
            }
        }
    }

    /// Whether the schedule advances after a batch now.
    fn steps_per_batch(&self) -> bool {
        match &self.config {
            LrScheduler::LinearWarmup {
                warmup, per_batch, ..
            } => {
                if self.t < *warmup {
                    *per_batch
                } else {
                    self.then.as_ref().is_some_and(|s| s.steps_per_batch())
                }
            }
            c => c.per_batch(),
        }
    }

    fn advance(&mut self, record: Option<&BTreeMap<String, f64>>, field: &str) -> Result<()> {
        if let LrScheduler::LinearWarmup { warmup, .. } = &self.config {
            if self.t >= *warmup {
                if let Some(inner) = &mut self.then {
                    inner.advance(record, &format!("{field}.then"))?;
                }
                self.lr = self.closed_form();
                return Ok(());
            }
        }
        self.t += 1;
        match &self.config {
            LrScheduler::CosineAnnealingWarmRestarts { t_mult, .. } => {
                self.t_cur += 1;
                if self.t_cur >= self.t_i {
                    self.t_cur -= self.t_i;
                    self.t_i *= t_mult;
                }
            }
            LrScheduler::ReduceOnPlateau {
                monitor,
                mode,
                factor,
                patience,
                threshold,
                threshold_mode,
                cooldown,
                min_lr,
                eps,
            } => {
                let record = record.expect("plateau schedules step per epoch");
                let key = monitor.clone().unwrap_or_else(|| {
                    if record.contains_key("val_loss") {
                        "val_loss".into()
                    } else {
                        "loss".into()
                    }
                });
                let value = monitored(record, &key, format!("{field}.monitor"))?;
                let maximize = mode.maximizes(&key);
                let p = &mut self.plateau;
                let better = match p.best {
                    None => !value.is_nan(),
                    Some(best) => match (maximize, threshold_mode) {
                        (false, ThresholdMode::Rel) => value < best * (1.0 - threshold),
                        (false, ThresholdMode::Abs) => value < best - threshold,
                        (true, ThresholdMode::Rel) => value > best * (1.0 + threshold),
                        (true, ThresholdMode::Abs) => value > best + threshold,
                    },
                };
                if better {
                    p.best = Some(value);
                    p.num_bad_epochs = 0;
                } else {
                    p.num_bad_epochs += 1;
                }
                if p.cooldown_counter > 0 {
                    p.cooldown_counter -= 1;
                    p.num_bad_epochs = 0;
                }
                if p.num_bad_epochs > *patience {
                    let new_lr = (self.lr * factor).max(*min_lr);
                    if self.lr - new_lr > *eps {
                        self.lr = new_lr;
                    }
                    p.cooldown_counter = *cooldown;
                    p.num_bad_epochs = 0;
                }
            }
            _ => {}
        }
        self.lr = self.closed_form();
        Ok(())
    }

    /// Called after every training batch; advances the per-batch schedules.
    pub fn on_batch_end(&mut self) {
        if self.steps_per_batch() {
            // per-batch schedules never need the record
            let _ = self.advance(None, "");
        }
    }

    /// Called after every epoch with its record (`loss`, metrics, `val_…`); advances the
    /// per-epoch schedules. `field` names the scheduler's config in errors (a missing monitor).
    pub fn on_epoch_end(&mut self, record: &BTreeMap<String, f64>, field: &str) -> Result<()> {
        if self.steps_per_batch() {
            return Ok(());
        }
        self.advance(Some(record), field)
    }
}

//! Learning-rate schedulers with PyTorch's formulas and saveable state.
//!
//! A scheduler is configured by an [`LrScheduler`] (serde-able) and run by a [`Scheduler`], which
//! holds the counters and the current learning rate of one parameter group. The trainer steps
//! [`LrScheduler::OneCycle`] and [`LrScheduler::Cyclic`] after every batch and the others after
//! every epoch (a [`LrScheduler::LinearWarmup`] after every batch or epoch, as configured).
//! As in PyTorch, a freshly built scheduler has already taken "step 0": its learning rate is the
//! schedule's value at step 0.
use crate::error::{Result, WideDeepError};
use crate::training::callbacks::Mode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::f64::consts::PI;

/// How [`LrScheduler::OneCycle`] moves between its learning rates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anneal {
    #[default]
    Cos,
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
    #[default]
    Rel,
    Abs,
}

/// A learning-rate schedule (PyTorch's `torch.optim.lr_scheduler` classes). `t` below counts
/// scheduler steps: epochs, or batches for the per-batch schedules; `base` is the group's
/// configured learning rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum LrScheduler {
    /// `base · gamma^⌊t / step_size⌋` (per epoch).
    Step { step_size: usize, gamma: f64 },
    /// `base · gamma^(number of milestones ≤ t)` (per epoch).
    MultiStep { milestones: Vec<usize>, gamma: f64 },
    /// `base · gamma^t` (per epoch).
    Exponential { gamma: f64 },
    /// `eta_min + (base − eta_min)(1 + cos(π t / t_max)) / 2` (per epoch).
    CosineAnnealing { t_max: usize, eta_min: f64 },
    /// SGDR: cosine annealing restarted after `t_0`, then `t_0 · t_mult`, … epochs.
    CosineAnnealingWarmRestarts {
        t_0: usize,
        t_mult: usize,
        eta_min: f64,
    },
    /// The 1cycle policy (per batch): from `max_lr / div_factor` up to `max_lr` over the first
    /// `pct_start` of `total_steps`, then down to `max_lr / (div_factor · final_div_factor)`.
    /// `max_lr` defaults to the group's learning rate, `total_steps` to epochs × batches of the
    /// first `fit`. (PyTorch also cycles the momentum by default; this does not.)
    OneCycle {
        max_lr: Option<f64>,
        total_steps: Option<usize>,
        pct_start: f64,
        anneal_strategy: Anneal,
        div_factor: f64,
        final_div_factor: f64,
        three_phase: bool,
    },
    /// Cyclical learning rate (per batch) between `base_lr` (default: the group's learning
    /// rate) and `max_lr`, `step_size_up` batches up and `step_size_down` (default: up) down.
    Cyclic {
        base_lr: Option<f64>,
        max_lr: f64,
        step_size_up: usize,
        step_size_down: Option<usize>,
        mode: CyclicMode,
        gamma: f64,
    },
    /// Multiplies the learning rate by `factor` when `monitor` (default: `val_loss` when there is
    /// validation data, else `loss`) has not improved for more than `patience` epochs; then waits
    /// `cooldown` epochs; never goes below `min_lr`.
    ReduceOnPlateau {
        monitor: Option<String>,
        mode: Mode,
        factor: f64,
        patience: usize,
        threshold: f64,
        threshold_mode: ThresholdMode,
        cooldown: usize,
        min_lr: f64,
        eps: f64,
    },
    /// Linear warm-up from `base · start_factor` to `base` over `warmup` steps (batches when
    /// `per_batch`, else epochs), then `then` (which starts counting its own steps at the end of
    /// the warm-up) or the constant `base`.
    LinearWarmup {
        warmup: usize,
        per_batch: bool,
        start_factor: f64,
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
        let err = |name: &str, reason: &str| {
            Err(WideDeepError::config(format!("{field}.{name}"), reason))
        };
        let pos = |v: f64| v > 0.0 && v.is_finite();
        let nonneg = |v: f64| v >= 0.0 && v.is_finite();
        match self {
            Self::Step { step_size, gamma } => {
                if *step_size == 0 {
                    return err("step_size", "must be ≥ 1");
                }
                if !pos(*gamma) {
                    return err("gamma", "must be positive");
                }
            }
            Self::MultiStep { milestones, gamma } => {
                if milestones.windows(2).any(|w| w[0] >= w[1]) {
                    return err("milestones", "must be strictly increasing");
                }
                if !pos(*gamma) {
                    return err("gamma", "must be positive");
                }
            }
            Self::Exponential { gamma } => {
                if !pos(*gamma) {
                    return err("gamma", "must be positive");
                }
            }
            Self::CosineAnnealing { t_max, eta_min } => {
                if *t_max == 0 {
                    return err("t_max", "must be ≥ 1");
                }
                if !nonneg(*eta_min) {
                    return err("eta_min", "must be ≥ 0");
                }
            }
            Self::CosineAnnealingWarmRestarts {
                t_0,
                t_mult,
                eta_min,
            } => {
                if *t_0 == 0 {
                    return err("t_0", "must be ≥ 1");
                }
                if *t_mult == 0 {
                    return err("t_mult", "must be ≥ 1");
                }
                if !nonneg(*eta_min) {
                    return err("eta_min", "must be ≥ 0");
                }
            }
            Self::OneCycle {
                max_lr,
                total_steps,
                pct_start,
                div_factor,
                final_div_factor,
                ..
            } => {
                if max_lr.is_some_and(|v| !pos(v)) {
                    return err("max_lr", "must be positive");
                }
                if *total_steps == Some(0) {
                    return err("total_steps", "must be ≥ 1");
                }
                if !(0.0..=1.0).contains(pct_start) {
                    return err("pct_start", "must be in [0, 1]");
                }
                if !pos(*div_factor) {
                    return err("div_factor", "must be positive");
                }
                if !pos(*final_div_factor) {
                    return err("final_div_factor", "must be positive");
                }
            }
            Self::Cyclic {
                base_lr,
                max_lr,
                step_size_up,
                step_size_down,
                gamma,
                ..
            } => {
                if base_lr.is_some_and(|v| !pos(v)) {
                    return err("base_lr", "must be positive");
                }
                if !pos(*max_lr) {
                    return err("max_lr", "must be positive");
                }
                if *step_size_up == 0 || *step_size_down == Some(0) {
                    return err("step_size_up", "step sizes must be ≥ 1");
                }
                if !pos(*gamma) {
                    return err("gamma", "must be positive");
                }
            }
            Self::ReduceOnPlateau {
                factor,
                threshold,
                min_lr,
                eps,
                ..
            } => {
                if !(*factor > 0.0 && *factor < 1.0) {
                    return err("factor", "must be in (0, 1)");
                }
                if !nonneg(*threshold) {
                    return err("threshold", "must be ≥ 0");
                }
                if !nonneg(*min_lr) {
                    return err("min_lr", "must be ≥ 0");
                }
                if !nonneg(*eps) {
                    return err("eps", "must be ≥ 0");
                }
            }
            Self::LinearWarmup {
                warmup,
                start_factor,
                then,
                ..
            } => {
                if *warmup == 0 {
                    return err("warmup", "must be ≥ 1");
                }
                if !(*start_factor > 0.0 && *start_factor <= 1.0) {
                    return err("start_factor", "must be in (0, 1]");
                }
                if let Some(t) = then {
                    if matches!(**t, Self::LinearWarmup { .. }) {
                        return err("then", "cannot be another warm-up");
                    }
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
                let value = *record.get(&key).ok_or_else(|| {
                    WideDeepError::config(
                        format!("{field}.monitor"),
                        format!(
                            "`{key}` is not recorded; available: {}",
                            record.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    )
                })?;
                let maximize = match mode {
                    Mode::Min => false,
                    Mode::Max => true,
                    Mode::Auto => {
                        let k = key.trim_start_matches("val_");
                        !(k.contains("loss") || k == "rmse")
                    }
                };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn epochs(cfg: &LrScheduler, base: f64, n: usize) -> Vec<f64> {
        let mut s = Scheduler::new(cfg, base, 100, "s").unwrap();
        let rec = BTreeMap::new();
        let mut v = vec![s.lr()];
        for _ in 1..n {
            s.on_epoch_end(&rec, "s").unwrap();
            v.push(s.lr());
        }
        v
    }

    fn batches(cfg: &LrScheduler, base: f64, total: usize, n: usize) -> Vec<f64> {
        let mut s = Scheduler::new(cfg, base, total, "s").unwrap();
        let mut v = vec![s.lr()];
        for _ in 1..n {
            s.on_batch_end();
            v.push(s.lr());
        }
        v
    }

    fn close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-12 + 1e-9 * w.abs(),
                "step {i}: {g} vs {w}\n{got:?}\n{want:?}"
            );
        }
    }

    #[test]
    fn step_multistep_exponential_closed_forms() {
        close(
            &epochs(&LrScheduler::step(2, 0.5), 1.0, 6),
            &[1.0, 1.0, 0.5, 0.5, 0.25, 0.25],
        );
        close(
            &epochs(&LrScheduler::multi_step([1, 4], 0.1), 1.0, 6),
            &[1.0, 0.1, 0.1, 0.1, 0.01, 0.01],
        );
        close(
            &epochs(&LrScheduler::exponential(0.9), 0.1, 4),
            &[0.1, 0.09, 0.081, 0.0729],
        );
    }

    // The values below are PyTorch 2.11's, printed by `tests/fixtures/scheduler_reference.py`.
    #[test]
    fn cosine_schedules_match_pytorch() {
        close(
            &epochs(&LrScheduler::cosine(4, 0.01), 0.1, 7),
            &[
                0.1,
                0.08681980515339464,
                0.05500000000000001,
                0.023180194846605363,
                0.01,
                0.023180194846605363,
                0.05500000000000002,
            ],
        );
        close(
            &epochs(&LrScheduler::cosine_warm_restarts(2, 2, 0.0), 1.0, 9),
            &[
                1.0,
                0.5,
                1.0,
                0.8535533905932737,
                0.5,
                0.14644660940672627,
                1.0,
                0.9619397662556434,
                0.8535533905932737,
            ],
        );
    }

    #[test]
    fn one_cycle_matches_pytorch() {
        close(
            &batches(&LrScheduler::one_cycle(Some(1.0)), 0.1, 10, 10),
            &[
                0.040000000000000036,
                0.52,
                1.0,
                0.9504846320134737,
                0.8117456539497631,
                0.6112620219362893,
                0.38874197806371075,
                0.18825834605023697,
                0.049519367986526286,
                4e-06,
            ],
        );
        let three = LrScheduler::OneCycle {
            max_lr: Some(1.0),
            total_steps: Some(10),
            pct_start: 0.3,
            anneal_strategy: Anneal::Linear,
            div_factor: 10.0,
            final_div_factor: 100.0,
            three_phase: true,
        };
        close(
            &batches(&three, 0.1, 999, 10),
            &[
                0.1, 0.55, 1.0, 0.55, 0.1, 0.0802, 0.0604, 0.0406, 0.0208, 0.001,
            ],
        );
    }

    #[test]
    fn cyclic_matches_pytorch() {
        let tri2 = LrScheduler::Cyclic {
            base_lr: Some(0.1),
            max_lr: 1.0,
            step_size_up: 2,
            step_size_down: Some(3),
            mode: CyclicMode::Triangular2,
            gamma: 1.0,
        };
        close(
            &batches(&tri2, 0.5, 10, 11),
            &[0.1, 0.55, 1.0, 0.7, 0.4, 0.1, 0.325, 0.55, 0.4, 0.25, 0.1],
        );
        let exp = LrScheduler::Cyclic {
            base_lr: None,
            max_lr: 1.0,
            step_size_up: 2,
            step_size_down: None,
            mode: CyclicMode::ExpRange,
            gamma: 0.9,
        };
        close(
            &batches(&exp, 0.2, 10, 6),
            &[0.2, 0.56, 0.848, 0.4916, 0.2, 0.436196],
        );
    }

    #[test]
    fn reduce_on_plateau_matches_pytorch() {
        let cfg = LrScheduler::ReduceOnPlateau {
            monitor: Some("val_loss".into()),
            mode: Mode::Auto,
            factor: 0.5,
            patience: 1,
            threshold: 0.01,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 1,
            min_lr: 0.03,
            eps: 1e-8,
        };
        let mut s = Scheduler::new(&cfg, 0.2, 1, "lr_scheduler").unwrap();
        let losses = [
            1.0, 0.9, 0.895, 0.895, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9,
        ];
        let mut lrs = Vec::new();
        for l in losses {
            s.on_epoch_end(
                &BTreeMap::from([("val_loss".to_string(), l)]),
                "lr_scheduler",
            )
            .unwrap();
            lrs.push(s.lr());
        }
        close(
            &lrs,
            &[
                0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.03, 0.03, 0.03,
            ],
        );
        let e = s
            .on_epoch_end(&BTreeMap::from([("loss".to_string(), 1.0)]), "lr_scheduler")
            .unwrap_err();
        assert!(e.to_string().contains("lr_scheduler.monitor"), "{e}");
    }

    #[test]
    fn warmup_then_inner_schedule() {
        let cfg = LrScheduler::warmup(3, false, Some(LrScheduler::step(2, 0.1)));
        close(
            &epochs(&cfg, 0.9, 8),
            &[0.3, 0.5, 0.7, 0.9, 0.9, 0.09, 0.09, 0.009],
        );
        // per-batch warm-up hands over to a per-batch schedule
        let cfg = LrScheduler::warmup(2, true, Some(LrScheduler::one_cycle(None)));
        let v = batches(&cfg, 1.0, 10, 4);
        close(&v, &[1.0 / 3.0, 2.0 / 3.0, 0.04, 0.52]);
    }

    #[test]
    fn state_round_trips_and_validation_names_fields() {
        let mut s =
            Scheduler::new(&LrScheduler::cosine_warm_restarts(3, 2, 0.0), 1.0, 1, "x").unwrap();
        for _ in 0..4 {
            s.on_epoch_end(&BTreeMap::new(), "x").unwrap();
        }
        let json = serde_json::to_string(&s).unwrap();
        let mut r: Scheduler = serde_json::from_str(&json).unwrap();
        assert_eq!(r, s);
        s.on_epoch_end(&BTreeMap::new(), "x").unwrap();
        r.on_epoch_end(&BTreeMap::new(), "x").unwrap();
        assert_eq!(r.lr(), s.lr());
        let e = Scheduler::new(
            &LrScheduler::step(0, 0.1),
            1.0,
            1,
            "component_lr_scheduler.wide",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("component_lr_scheduler.wide.step_size"),
            "{e}"
        );
        let e = LrScheduler::warmup(2, false, Some(LrScheduler::exponential(-1.0)))
            .validate("lr_scheduler")
            .unwrap_err();
        assert!(e.to_string().contains("lr_scheduler.then.gamma"), "{e}");
    }
}

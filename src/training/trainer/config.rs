//! [`TrainerConfig`]: the settings of a [`Trainer`](super::Trainer), their builder setters and
//! their validation, and the per-group settings resolved from them.
use crate::distributed::Distributed;
use crate::error::Result;
use crate::macros::{ensure, setters};
use crate::training::callbacks::EarlyStopping;
use crate::training::checks::{non_negative, positive};
use crate::training::extras::TrainingExtras;
use crate::training::optim::Optimizer;
use crate::training::schedulers::LrScheduler;
use crate::training::{Metric, Objective};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything [`Trainer::fit`](super::Trainer::fit) needs besides the data. Defaults follow the
/// reference (Adam, lr 1e-3, batch size 32) except that shuffling is on and runs are seeded.
///
/// Every parameter group (`wide`, `deeptabular`, `deeptext_0`, `deepimage_0`, `head`, …; see
/// `WideDeep::param_groups`) is trained by `optimizer` with `lr` and `weight_decay`, scheduled by
/// `lr_scheduler`, unless the `component_*` maps give it its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainerConfig {
    /// The loss to minimise and how outputs become predictions.
    pub objective: Objective,
    /// The optimizer of every parameter group without its own.
    pub optimizer: Optimizer,
    /// The learning rate of every parameter group without its own.
    pub lr: f64,
    /// The weight decay of every parameter group without its own.
    pub weight_decay: f64,
    /// Rows per training batch.
    pub batch_size: usize,
    /// Batch size for evaluation and prediction (no gradients, so larger is faster).
    pub eval_batch_size: usize,
    /// Epochs run by each call of `fit` (after a resume: the epochs still to run).
    pub epochs: usize,
    /// Reshuffle the training rows every epoch.
    pub shuffle: bool,
    /// Seeds shuffling, the validation split and dropout: on CPU the same seed gives the same
    /// weights and metrics. One generator seeded with `seed` splits and then shuffles epoch after
    /// epoch (its position is checkpointed); libtorch (dropout) is re-seeded every epoch from
    /// `(seed, epoch)`. A resumed run continues exactly as the uninterrupted one.
    pub seed: u64,
    /// Fraction of the training rows held out for validation (stratified for classification)
    /// when no validation set is passed to `fit`.
    pub val_split: Option<f64>,
    /// Metrics recorded every epoch on the training rows and the validation data.
    pub metrics: Vec<Metric>,
    /// Stops training when a recorded value stops improving.
    pub early_stopping: Option<EarlyStopping>,
    /// The learning-rate schedule of every group without its own (`None`: constant).
    pub lr_scheduler: Option<LrScheduler>,
    /// 0: silent; 1: a progress bar per epoch (a summary line when stderr is not a terminal).
    pub verbose: u8,
    /// Learning rates per parameter group; the others use `lr`.
    pub component_lr: BTreeMap<String, f64>,
    /// Optimizers per parameter group; the others use `optimizer`.
    pub component_optimizer: BTreeMap<String, Optimizer>,
    /// Weight decay per parameter group; the others use `weight_decay`.
    pub component_weight_decay: BTreeMap<String, f64>,
    /// Learning-rate schedules per parameter group; the others use `lr_scheduler`.
    pub component_lr_scheduler: BTreeMap<String, LrScheduler>,
    /// On a NaN or infinite batch loss: `false` (default) stops with
    /// [`WideDeepError::NonFiniteLoss`](crate::WideDeepError::NonFiniteLoss); `true` skips the
    /// batch (no optimizer step) and counts it in the epoch record's `skipped_batches`.
    pub skip_nonfinite_batches: bool,
    /// Initializers, gradient clipping/accumulation, warm-up, weighted sampling, mixed
    /// precision and prefetching (see `training::extras`; flattened in the JSON).
    #[serde(flatten)]
    pub extras: TrainingExtras,
    /// Data-parallel training over a process group (PyTorch DDP semantics; see
    /// [`crate::distributed`]); `None`: this process alone. Not saved with the config.
    #[serde(skip)]
    pub distributed: Option<Distributed>,
    /// The checkpoint of a restartable run (e.g. under `torchrun --max-restarts`): `fit`
    /// resumes from it when it exists, runs only the epochs still missing to reach `epochs`, and
    /// rewrites it (atomically; rank 0 only when distributed) after every epoch. Not saved with
    /// the config.
    #[serde(skip)]
    pub resume_file: Option<std::path::PathBuf>,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        Self {
            objective: Objective::Binary,
            optimizer: Optimizer::default(),
            lr: 1e-3,
            weight_decay: 0.0,
            batch_size: 32,
            eval_batch_size: 4096,
            epochs: 1,
            shuffle: true,
            seed: 1,
            val_split: None,
            metrics: Vec::new(),
            early_stopping: None,
            lr_scheduler: None,
            verbose: 1,
            component_lr: BTreeMap::new(),
            component_optimizer: BTreeMap::new(),
            component_weight_decay: BTreeMap::new(),
            component_lr_scheduler: BTreeMap::new(),
            skip_nonfinite_batches: false,
            extras: TrainingExtras::default(),
            distributed: None,
            resume_file: None,
        }
    }
}

/// The resolved settings of one parameter group.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct GroupSettings {
    pub optimizer: Optimizer,
    pub lr: f64,
    pub weight_decay: f64,
    /// The config field of the group's schedule (for errors) and the schedule.
    pub scheduler: Option<(String, LrScheduler)>,
}

impl TrainerConfig {
    /// The defaults with `objective`.
    pub fn new(objective: Objective) -> Self {
        Self {
            objective,
            ..Default::default()
        }
    }
    setters!(
        objective: Objective,
        optimizer: Optimizer,
        lr: f64,
        weight_decay: f64,
        batch_size: usize,
        eval_batch_size: usize,
        epochs: usize,
        shuffle: bool,
        seed: u64,
        verbose: u8,
        skip_nonfinite_batches: bool,
    );
    /// Holds out `fraction` of the training rows for validation.
    pub fn val_split(mut self, fraction: f64) -> Self {
        self.val_split = Some(fraction);
        self
    }
    /// Sets the metrics recorded every epoch.
    pub fn metrics(mut self, metrics: impl Into<Vec<Metric>>) -> Self {
        self.metrics = metrics.into();
        self
    }
    /// Turns early stopping on.
    pub fn early_stopping(mut self, es: EarlyStopping) -> Self {
        self.early_stopping = Some(es);
        self
    }
    /// Sets the learning-rate schedule of every group without its own.
    pub fn lr_scheduler(mut self, scheduler: LrScheduler) -> Self {
        self.lr_scheduler = Some(scheduler);
        self
    }
    /// Sets the learning rate of one parameter group (`deeptext_0`, `head`, …).
    pub fn component_lr(mut self, group: &str, lr: f64) -> Self {
        self.component_lr.insert(group.to_string(), lr);
        self
    }
    /// Sets the optimizer of one parameter group.
    pub fn component_optimizer(mut self, group: &str, optimizer: Optimizer) -> Self {
        self.component_optimizer
            .insert(group.to_string(), optimizer);
        self
    }
    /// Sets the weight decay of one parameter group.
    pub fn component_weight_decay(mut self, group: &str, weight_decay: f64) -> Self {
        self.component_weight_decay
            .insert(group.to_string(), weight_decay);
        self
    }
    /// Sets the learning-rate schedule of one parameter group.
    pub fn component_lr_scheduler(mut self, group: &str, scheduler: LrScheduler) -> Self {
        self.component_lr_scheduler
            .insert(group.to_string(), scheduler);
        self
    }

    /// Trains data-parallel in the group `d` (one line turns a program into a distributed
    /// one; a group of one trains as before). Warm-up routines (`finetune`) and
    /// `skip_nonfinite_batches` are not supported distributed: `validate` rejects them.
    pub fn distributed(mut self, d: Distributed) -> Self {
        self.distributed = Some(d);
        self
    }

    /// Makes the run restartable from the checkpoint `path` (see
    /// [`TrainerConfig::resume_file`]).
    pub fn resume_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.resume_file = Some(path.into());
        self
    }

    /// Checks every field; errors name the field.
    pub fn validate(&self) -> Result<()> {
        if self.distributed.is_some() {
            super::data_parallel::check_supported(self)?;
        }
        ensure!(
            positive(self.lr),
            config("lr"),
            "must be positive, got {}",
            self.lr
        );
        ensure!(
            non_negative(self.weight_decay),
            config("weight_decay"),
            "must be finite and ≥ 0"
        );
        ensure!(self.batch_size != 0, config("batch_size"), "must be ≥ 1");
        ensure!(
            self.eval_batch_size != 0,
            config("eval_batch_size"),
            "must be ≥ 1"
        );
        if let Some(f) = self.val_split {
            ensure!(
                f > 0.0 && f < 1.0,
                config("val_split"),
                "must be in (0, 1), got {f}"
            );
        }
        for (k, v) in &self.component_lr {
            ensure!(
                positive(*v),
                config(format!("component_lr.{k}")),
                "must be positive, got {v}"
            );
        }
        for (k, v) in &self.component_weight_decay {
            ensure!(
                non_negative(*v),
                config(format!("component_weight_decay.{k}")),
                "must be finite and ≥ 0, got {v}"
            );
        }
        self.optimizer.validate("optimizer")?;
        for (k, o) in &self.component_optimizer {
            o.validate(&format!("component_optimizer.{k}"))?;
        }
        if let Some(s) = &self.lr_scheduler {
            s.validate("lr_scheduler")?;
        }
        for (k, s) in &self.component_lr_scheduler {
            s.validate(&format!("component_lr_scheduler.{k}"))?;
        }
        self.extras.validate()?;
        self.metrics
            .iter()
            .try_for_each(|m| m.check(&self.objective))
    }

    /// Checks that every `component_*` key names one of `groups`.
    pub(super) fn check_groups(&self, groups: &[(String, usize)]) -> Result<()> {
        let maps: [(&str, Vec<&String>); 4] = [
            ("component_lr", self.component_lr.keys().collect()),
            (
                "component_optimizer",
                self.component_optimizer.keys().collect(),
            ),
            (
                "component_weight_decay",
                self.component_weight_decay.keys().collect(),
            ),
            (
                "component_lr_scheduler",
                self.component_lr_scheduler.keys().collect(),
            ),
        ];
        for (field, keys) in maps {
            for k in keys {
                ensure!(
                    groups.iter().any(|(n, _)| n == k),
                    config(format!("{field}.{k}")),
                    "no such parameter group; the model has: {}",
                    groups
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        Ok(())
    }

    /// The optimizer, learning rate, weight decay and schedule of group `name`.
    pub(super) fn group_settings(&self, name: &str) -> GroupSettings {
        GroupSettings {
            optimizer: *self
                .component_optimizer
                .get(name)
                .unwrap_or(&self.optimizer),
            lr: *self.component_lr.get(name).unwrap_or(&self.lr),
            weight_decay: *self
                .component_weight_decay
                .get(name)
                .unwrap_or(&self.weight_decay),
            scheduler: match self.component_lr_scheduler.get(name) {
                Some(s) => Some((format!("component_lr_scheduler.{name}"), s.clone())),
                None => self
                    .lr_scheduler
                    .clone()
                    .map(|s| ("lr_scheduler".to_string(), s)),
            },
        }
    }
}

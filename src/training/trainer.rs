//! The [`Trainer`]: fits a [`WideDeep`] model, evaluates and predicts; checkpoints and resumes.
use crate::error::{Result, WideDeepError};
use crate::macros::setters;
use crate::models::{ModelInput, WideDeep};
use crate::training::amp;
use crate::training::callbacks::{
    weights_cpu, write_atomic, Callback, EarlyStopping, EarlyStoppingState, History, TrainState,
};
use crate::training::extras::{RowOrder, TrainingExtras};
use crate::training::grad::GradStep;
use crate::training::optim::{OptimizerStateMeta, Optimizers, ParamGroup};
use crate::training::prefetch::EpochBatches;
use crate::training::schedulers::{LrScheduler, Scheduler};
use crate::training::{Dataset, Metric, Objective};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::Path;
use tch::{nn, Kind, Tensor};

pub use crate::training::optim::Optimizer;

/// Everything [`Trainer::fit`] needs besides the data. Defaults follow the reference (Adam, lr
/// 1e-3, batch size 32) except that shuffling is on and runs are seeded.
///
/// Every parameter group (`wide`, `deeptabular`, `deeptext_0`, `deepimage_0`, `head`, …; see
/// `WideDeep::param_groups`) is trained by `optimizer` with `lr` and `weight_decay`, scheduled by
/// `lr_scheduler`, unless the `component_*` maps give it its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainerConfig {
    pub objective: Objective,
    pub optimizer: Optimizer,
    pub lr: f64,
    pub weight_decay: f64,
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
    pub metrics: Vec<Metric>,
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
    /// [`WideDeepError::NonFiniteLoss`]; `true` skips the batch (no optimizer step) and counts it
    /// in the epoch record's `skipped_batches`.
    pub skip_nonfinite_batches: bool,
    /// Initializers, gradient clipping/accumulation, warm-up, weighted sampling, mixed
    /// precision and prefetching (see `training::extras`; flattened in the JSON).
    #[serde(flatten)]
    pub extras: TrainingExtras,
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
        }
    }
}

/// The resolved settings of one parameter group.
#[derive(Clone, Debug, PartialEq)]
struct GroupSettings {
    optimizer: Optimizer,
    lr: f64,
    weight_decay: f64,
    scheduler: Option<(String, LrScheduler)>,
}

impl TrainerConfig {
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
    pub fn val_split(mut self, fraction: f64) -> Self {
        self.val_split = Some(fraction);
        self
    }
    pub fn metrics(mut self, metrics: impl Into<Vec<Metric>>) -> Self {
        self.metrics = metrics.into();
        self
    }
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

    /// Checks every field; errors name the field.
    pub fn validate(&self) -> Result<()> {
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(WideDeepError::config(
                "lr",
                format!("must be positive, got {}", self.lr),
            ));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(WideDeepError::config(
                "weight_decay",
                "must be finite and ≥ 0",
            ));
        }
        if self.batch_size == 0 {
            return Err(WideDeepError::config("batch_size", "must be ≥ 1"));
        }
        if self.eval_batch_size == 0 {
            return Err(WideDeepError::config("eval_batch_size", "must be ≥ 1"));
        }
        if let Some(f) = self.val_split {
            if !(f > 0.0 && f < 1.0) {
                return Err(WideDeepError::config(
                    "val_split",
                    format!("must be in (0, 1), got {f}"),
                ));
            }
        }
        for (k, v) in &self.component_lr {
            if !(*v > 0.0 && v.is_finite()) {
                return Err(WideDeepError::config(
                    format!("component_lr.{k}"),
                    format!("must be positive, got {v}"),
                ));
            }
        }
        for (k, v) in &self.component_weight_decay {
            if !(*v >= 0.0 && v.is_finite()) {
                return Err(WideDeepError::config(
                    format!("component_weight_decay.{k}"),
                    format!("must be finite and ≥ 0, got {v}"),
                ));
            }
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
    fn check_groups(&self, groups: &[(String, usize)]) -> Result<()> {
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
                if !groups.iter().any(|(n, _)| n == k) {
                    return Err(WideDeepError::config(
                        format!("{field}.{k}"),
                        format!(
                            "no such parameter group; the model has: {}",
                            groups
                                .iter()
                                .map(|(n, _)| n.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The optimizer, learning rate, weight decay and schedule of group `name`.
    fn group_settings(&self, name: &str) -> GroupSettings {
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

/// Trains and runs a [`WideDeep`] model.
///
/// The optimizers (one [`ParamGroup`] per model component) and learning-rate schedulers are
/// created by the first [`Trainer::fit`] and kept, so a second `fit` continues where the first
/// stopped; [`Trainer::save_checkpoint`] and [`Trainer::resume`] carry them across processes.
pub struct Trainer {
    model: WideDeep,
    pub(crate) config: TrainerConfig,
    history: History,
    callbacks: Vec<Box<dyn Callback>>,
    optimizers: Option<Optimizers>,
    /// Per group: the config field of its schedule (for errors) and the running schedule.
    schedulers: BTreeMap<String, (String, Scheduler)>,
    es_state: EarlyStoppingState,
    best_weights: Option<Vec<(String, Tensor)>>,
    /// Set by `resume`: the next `fit` continues the early-stopping state instead of resetting it.
    resumed: bool,
    /// Position of the shuffling generator after the last epoch (see [`Trainer::fit`]).
    shuffle_pos: Option<u128>,
    /// Clipping, accumulation and fp16 loss scaling of the running `fit` (training extras).
    grad: Option<GradStep>,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("model", &self.model)
            .field("config", &self.config)
            .field("history", &self.history)
            .field("callbacks", &self.callbacks.len())
            .finish()
    }
}

/// Outputs and loss of a pass over a data set.
struct Pass {
    outputs: Tensor,
    loss: f64,
}

/// What one epoch accumulates.
#[derive(Default)]
struct EpochSums {
    loss_sum: f64,
    seen: i64,
    skipped: usize,
    outs: Vec<Tensor>,
    targets: Vec<Tensor>,
    stop: bool,
    /// The progress bar, the epoch and the last epoch of this `fit` (for the summary line).
    bar: Option<(ProgressBar, usize, usize)>,
}

/// Format tag of checkpoint files.
const CHECKPOINT_FORMAT: &str = "widedeep-trainer-checkpoint";
const CHECKPOINT_VERSION: u32 = 1;
const META_KEY: &str = "__meta__";

/// The JSON part of a trainer checkpoint (stored as a `u8` tensor in the `.safetensors` file).
#[derive(Serialize, Deserialize)]
struct CheckpointMeta {
    format: String,
    version: u32,
    seed: u64,
    /// Epochs done (the history's length).
    epoch: usize,
    history: History,
    optimizer: Option<OptimizerStateMeta>,
    schedulers: BTreeMap<String, Scheduler>,
    early_stopping: EarlyStoppingState,
    has_best_weights: bool,
    /// Word position of the shuffling generator (decimal).
    shuffle_pos: Option<String>,
    config: TrainerConfig,
}

/// Errors with [`WideDeepError::NonFiniteResult`] at the first non-finite loss or metric of
/// an evaluation record.
pub(crate) fn check_finite_record(record: &BTreeMap<String, f64>) -> Result<()> {
    match record.iter().find(|(_, v)| !v.is_finite()) {
        None => Ok(()),
        Some((name, value)) => Err(WideDeepError::NonFiniteResult {
            what: name.clone(),
            value: *value,
            reason: if name == "loss" {
                "the loss overflows on these targets".into()
            } else {
                "the metric is undefined on this data (e.g. ROC AUC with only one class \
                 present) or overflows"
                    .into()
            },
        }),
    }
}

/// Errors with [`WideDeepError::NonFiniteResult`] at the first row of `out` (`[N, k]`)
/// holding a NaN or an infinity.
pub(crate) fn check_finite_rows(out: &Tensor) -> Result<()> {
    if out.numel() == 0 || bool::try_from(out.isfinite().all())? {
        return Ok(());
    }
    let bad = out
        .isfinite()
        .logical_not()
        .reshape([out.size()[0], -1])
        .any_dim(1, false);
    let row = Vec::<bool>::try_from(bad)?
        .iter()
        .position(|&b| b)
        .unwrap_or(0);
    let value = out.get(row as i64).reshape([-1]);
    let value = Vec::<f64>::try_from(value.to_kind(Kind::Double))?
        .into_iter()
        .find(|v| !v.is_finite())
        .unwrap_or(f64::NAN);
    Err(WideDeepError::NonFiniteResult {
        what: format!("the model output of row {row}"),
        value,
        reason: "the model overflows on this row's inputs (values far outside the training \
                 data?)"
            .into(),
    })
}

/// libtorch's seed for epoch `epoch` (dropout masks): `seed` for the first epoch, then a value
/// derived from `(seed, epoch)` only, so resumed runs draw what uninterrupted ones do.
fn torch_epoch_seed(seed: u64, epoch: usize) -> i64 {
    if epoch == 0 {
        return seed as i64;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch as u64);
    (rand::RngCore::next_u64(&mut rng) >> 1) as i64
}

impl Trainer {
    /// Pairs a model with a training configuration; checks that they fit together.
    ///
    /// A model whose config leaves `pred_dim` unset (the default) gets its output width from
    /// the objective here (`objective.pred_dim()`: the class count, the number of quantiles,
    /// the blocks of a multi-target objective): it is rebuilt from its config with that width
    /// and the same seed, unless it was changed after it was built (`var_store_mut`,
    /// `warm_start`, `set_trainable`) — then set the width by hand.
    pub fn new(model: WideDeep, config: TrainerConfig) -> Result<Self> {
        config.validate()?;
        crate::device::keep_freed_host_memory();
        let wanted = config.objective.pred_dim();
        let model = match model.rebuilt_for(wanted) {
            Some(rebuilt) if wanted >= 1 && wanted != model.pred_dim() => rebuilt?,
            _ => model,
        };
        config.objective.check_pred_dim(model.pred_dim())?;
        config.check_groups(&model.param_groups())?;
        Ok(Self {
            model,
            config,
            history: History::default(),
            callbacks: Vec::new(),
            optimizers: None,
            schedulers: BTreeMap::new(),
            es_state: EarlyStoppingState::new(),
            best_weights: None,
            resumed: false,
            shuffle_pos: None,
            grad: None,
        })
    }

    pub fn model(&self) -> &WideDeep {
        &self.model
    }
    pub fn model_mut(&mut self) -> &mut WideDeep {
        &mut self.model
    }
    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }
    pub fn history(&self) -> &History {
        &self.history
    }
    /// Forgets the optimizer and scheduler state, the shuffling position and the early-stopping
    /// state, so that the next `fit` starts them afresh (used between warm-up phases).
    pub(crate) fn reset_optimization(&mut self) {
        self.optimizers = None;
        self.schedulers.clear();
        self.shuffle_pos = None;
        self.es_state = EarlyStoppingState::new();
        self.best_weights = None;
        self.grad = None;
    }
    pub(crate) fn set_history(&mut self, history: History) {
        self.history = history;
    }

    /// Adds a callback run by every later `fit` (in the order added).
    pub fn add_callback(&mut self, callback: Box<dyn Callback>) {
        self.callbacks.push(callback);
    }

    /// The optimizers (one group per model component), once `fit` or `resume` created them.
    pub fn optimizers(&self) -> Option<&Optimizers> {
        self.optimizers.as_ref()
    }
    pub fn optimizers_mut(&mut self) -> Option<&mut Optimizers> {
        self.optimizers.as_mut()
    }

    /// The current learning rate of every parameter group (empty before the first `fit`).
    pub fn lrs(&self) -> BTreeMap<String, f64> {
        self.optimizers
            .as_ref()
            .map(Optimizers::lrs)
            .unwrap_or_default()
    }

    /// Trains for `config.epochs` epochs. Validation data is `val` when given, else a
    /// `val_split` of `train`, else none. Returns the history (one entry per epoch run, earlier
    /// `fit` calls and resumed epochs included).
    pub fn fit(&mut self, train: &Dataset, val: Option<&Dataset>) -> Result<&History> {
        self.check_data(train, "training")?;
        if let Some(v) = val {
            self.check_data(v, "validation")?;
        }
        self.before_fit(train, val)?; // extras: initializers, warm-up
        let cfg = self.config.clone();
        let _rng_guard = crate::torch_rng_lock();
        // one generator splits, then shuffles epoch after epoch; it continues across `fit` calls
        // and resumes (its position is saved in checkpoints)
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let split;
        let (train, val) = match (val, cfg.val_split) {
            (Some(v), _) => (train, Some(v)),
            (None, Some(f)) => {
                split = train.split(f, cfg.objective.is_classification(), &mut rng)?;
                (&split.0, Some(&split.1))
            }
            (None, None) => (train, None),
        };
        if let Some(es) = &cfg.early_stopping {
            if val.is_none() && es.monitor.starts_with("val_") {
                return Err(WideDeepError::config(
                    "early_stopping.monitor",
                    format!(
                        "`{}` needs validation data (pass it or set val_split)",
                        es.monitor
                    ),
                ));
            }
        }
        if let Some(pos) = self.shuffle_pos {
            rng.set_word_pos(pos);
        }
        // extras: row order (shuffle or weighted sampler), clipping/accumulation/AMP
        let order = self.row_order(train)?;
        let n_batches = order.rows(train.len()).div_ceil(cfg.batch_size);
        self.grad = Some(GradStep::new(
            cfg.extras.grad_settings(),
            self.model.var_store(),
        ));
        if self.optimizers.is_none() {
            self.optimizers = Some(self.build_optimizers());
            self.schedulers = self.build_schedulers(n_batches * cfg.epochs.max(1))?;
            self.apply_scheduled_lrs();
        }
        if !std::mem::take(&mut self.resumed) {
            self.es_state = EarlyStoppingState::new();
            self.best_weights = None;
        }
        let mut callbacks = std::mem::take(&mut self.callbacks);
        let result = self.fit_epochs(
            &cfg,
            (train, &order),
            val,
            n_batches,
            &mut rng,
            &mut callbacks,
        );
        callbacks.append(&mut self.callbacks);
        self.callbacks = callbacks;
        result?;
        Ok(&self.history)
    }

    /// The epoch loop of `fit`.
    fn fit_epochs(
        &mut self,
        cfg: &TrainerConfig,
        train: (&Dataset, &RowOrder),
        val: Option<&Dataset>,
        n_batches: usize,
        rng: &mut ChaCha8Rng,
        callbacks: &mut [Box<dyn Callback>],
    ) -> Result<()> {
        let first = self.history.len();
        self.hooks(callbacks, first, 0, n_batches, |c, s| c.on_train_begin(s))?;
        for _ in 0..cfg.epochs {
            let epoch = self.history.len();
            let total = first + cfg.epochs;
            let mut sums =
                self.train_epoch(cfg, train, (epoch, total), n_batches, rng, callbacks)?;
            self.shuffle_pos = Some(rng.get_word_pos());
            let record = self.epoch_record(cfg, &mut sums, val)?;
            let es_stop = self.early_stopping_update(cfg, epoch, &record)?;
            self.history.epochs.push(record.clone());
            for (field, s) in self.schedulers.values_mut() {
                s.on_epoch_end(&record, field)?;
            }
            self.apply_scheduled_lrs();
            let cb_stop = self.hooks(callbacks, epoch, 0, n_batches, |c, s| {
                c.on_epoch_end(s, &record)
            })?;
            if es_stop && cfg.verbose > 0 {
                eprintln!(
                    "early stopping after epoch {} (best: epoch {})",
                    epoch + 1,
                    self.es_state.best_epoch + 1
                );
            }
            if es_stop || cb_stop || sums.stop {
                break;
            }
        }
        if let Some(weights) = self.best_weights.take() {
            restore(self.model.var_store(), &weights);
        }
        let last = self.history.len().saturating_sub(1);
        self.hooks(callbacks, last, 0, n_batches, |c, s| c.on_train_end(s))?;
        Ok(())
    }

    /// Runs the callbacks' hook `f`; returns whether one of them requested a stop.
    fn hooks(
        &self,
        callbacks: &mut [Box<dyn Callback>],
        epoch: usize,
        batch: usize,
        n_batches: usize,
        mut f: impl FnMut(&mut dyn Callback, &mut TrainState) -> Result<()>,
    ) -> Result<bool> {
        if callbacks.is_empty() {
            return Ok(false);
        }
        let mut state = TrainState {
            model: &self.model,
            history: &self.history,
            epoch,
            batch,
            n_batches,
            optimizers: self.optimizers.as_ref().expect("built by fit"),
            stop: false,
        };
        for c in callbacks.iter_mut() {
            f(c.as_mut(), &mut state)?;
        }
        Ok(state.stop)
    }

    /// One pass over the (shuffled) training data with an optimizer step per batch.
    fn train_epoch(
        &mut self,
        cfg: &TrainerConfig,
        (train, order): (&Dataset, &RowOrder),
        (epoch, total_epochs): (usize, usize),
        n_batches: usize,
        rng: &mut ChaCha8Rng,
        callbacks: &mut [Box<dyn Callback>],
    ) -> Result<EpochSums> {
        tch::manual_seed(torch_epoch_seed(cfg.seed, epoch));
        // the stored order, a shuffle (the draws of `Dataset::shuffled`) or weighted draws
        let rows = order.epoch(rng);
        let mut sums = EpochSums {
            stop: self.hooks(callbacks, epoch, 0, n_batches, |c, s| c.on_epoch_begin(s))?,
            ..Default::default()
        };
        let bar = progress_bar(cfg.verbose, n_batches, epoch, total_epochs);
        let device = self.model.device();
        let prefetch = cfg.extras.prefetch_on(device);
        let batches = EpochBatches::new(train, rows.as_ref(), cfg.batch_size, device, prefetch);
        for (b, batch) in batches.enumerate() {
            // lazy image columns: this batch's images are decoded now
            let batch = if batch.is_lazy() {
                batch.materialize()?.to_device(device)
            } else {
                batch
            };
            sums.stop |= self.hooks(callbacks, epoch, b, n_batches, |c, s| c.on_batch_begin(s))?;
            let (lv, out) = match self.train_step(cfg, &batch, epoch, b) {
                Ok(x) => x,
                Err(e) => {
                    bar.abandon();
                    return Err(e);
                }
            };
            if lv.is_finite() {
                sums.loss_sum += lv * batch.len() as f64;
                sums.seen += batch.len();
                if !cfg.metrics.is_empty() {
                    sums.outs.push(out.detach());
                    sums.targets
                        .push(batch.target.as_ref().expect("checked").shallow_clone());
                }
            } else {
                sums.skipped += 1;
            }
            for (_, s) in self.schedulers.values_mut() {
                s.on_batch_end();
            }
            self.apply_scheduled_lrs();
            sums.stop |=
                self.hooks(callbacks, epoch, b, n_batches, |c, s| c.on_batch_end(s, lv))?;
            bar.inc(1);
            if b % 20 == 0 && sums.seen > 0 {
                bar.set_message(format!("loss {:.4}", sums.loss_sum / sums.seen as f64));
            }
        }
        let opt = self.optimizers.as_mut().expect("built by fit");
        self.grad.as_mut().expect("set by fit").finish_epoch(opt)?;
        sums.bar = Some((bar, epoch, total_epochs));
        Ok(sums)
    }

    /// Forward, loss, backward and optimizer step on one batch; returns the batch loss and the
    /// outputs `[batch, pred_dim]`. A non-finite loss is an error naming the (1-based) epoch and
    /// the batch, or, with `skip_nonfinite_batches`, a skipped batch (no step).
    fn train_step(
        &mut self,
        cfg: &TrainerConfig,
        batch: &Dataset,
        epoch: usize,
        b: usize,
    ) -> Result<(f64, Tensor)> {
        let grad = self.grad.as_mut().expect("set by fit");
        let target = batch.target.as_ref().expect("checked");
        // autocast with mixed precision; the loss is computed in f32
        let (out, aux) = grad.forward(|| self.model.forward_aux(&batch.input, true));
        let (out, aux) = (amp::to_f32(out), aux.map(amp::to_f32));
        let loss = match aux {
            Some(aux) => cfg.objective.loss(&out, target) + aux,
            None => cfg.objective.loss(&out, target),
        };
        let lv = loss.double_value(&[]);
        if !lv.is_finite() {
            if cfg.skip_nonfinite_batches {
                return Ok((lv, out));
            }
            return Err(WideDeepError::NonFiniteLoss {
                epoch: epoch + 1,
                batch: b,
                value: lv,
            });
        }
        // clipping, accumulation and loss scaling around the optimizer step
        let opt = self.optimizers.as_mut().expect("built by fit");
        grad.backward(&loss, opt)?;
        Ok((lv, out))
    }

    /// The epoch's record: `loss`, `skipped_batches` (when skipping is on), training metrics and
    /// the validation loss and metrics.
    fn epoch_record(
        &self,
        cfg: &TrainerConfig,
        sums: &mut EpochSums,
        val: Option<&Dataset>,
    ) -> Result<BTreeMap<String, f64>> {
        let mut record = BTreeMap::new();
        let loss = if sums.seen > 0 {
            sums.loss_sum / sums.seen as f64
        } else {
            f64::NAN
        };
        record.insert("loss".to_string(), loss);
        if cfg.skip_nonfinite_batches {
            record.insert("skipped_batches".to_string(), sums.skipped as f64);
        }
        if !sums.outs.is_empty() {
            let scores = cfg.objective.scores(&Tensor::cat(&sums.outs, 0));
            let target = Tensor::cat(&sums.targets, 0);
            self.add_metrics(&mut record, "", &scores, &target)?;
        }
        if let Some(v) = val {
            let pass = self.run(v, true)?;
            record.insert("val_loss".to_string(), pass.loss);
            let scores = cfg.objective.scores(&pass.outputs);
            self.add_metrics(
                &mut record,
                "val_",
                &scores,
                v.target.as_ref().expect("checked"),
            )?;
        }
        if let Some((bar, epoch, total)) = sums.bar.take() {
            finish_bar(&bar, cfg.verbose, epoch, total, &summarize(&record));
        }
        Ok(record)
    }

    /// Updates early stopping with the epoch's record; returns whether to stop.
    fn early_stopping_update(
        &mut self,
        cfg: &TrainerConfig,
        epoch: usize,
        record: &BTreeMap<String, f64>,
    ) -> Result<bool> {
        let Some(es) = &cfg.early_stopping else {
            return Ok(false);
        };
        let value = *record.get(&es.monitor).ok_or_else(|| {
            WideDeepError::config(
                "early_stopping.monitor",
                format!(
                    "`{}` is not recorded; available: {}",
                    es.monitor,
                    record.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        let (improved, stop) = self.es_state.update(es, epoch, value);
        if improved && es.restore_best_weights {
            self.best_weights = Some(snapshot(self.model.var_store()));
        }
        Ok(stop)
    }

    /// One [`ParamGroup`] per model parameter group holding trainable variables, with the
    /// group's optimizer, learning rate and weight decay.
    fn build_optimizers(&self) -> Optimizers {
        let vs = self.model.var_store();
        let names: HashMap<usize, String> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.numel() > 0)
            .map(|(k, t)| (t.data_ptr() as usize, k))
            .collect();
        let group_names: BTreeMap<usize, String> = self
            .model
            .param_groups()
            .into_iter()
            .map(|(n, i)| (i, n))
            .collect();
        let mut by_group: BTreeMap<usize, Vec<(String, Tensor)>> = BTreeMap::new();
        {
            let vars = vs.variables_.lock().unwrap_or_else(|e| e.into_inner());
            for (i, v) in vars.trainable_variables.iter().enumerate() {
                let name = names
                    .get(&(v.tensor.data_ptr() as usize))
                    .cloned()
                    .unwrap_or_else(|| format!("__unnamed_{i}"));
                by_group
                    .entry(v.group)
                    .or_default()
                    .push((name, v.tensor.shallow_clone()));
            }
        }
        let groups = by_group
            .into_iter()
            .map(|(id, params)| {
                let name = group_names
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| format!("group_{id}"));
                let s = self.config.group_settings(&name);
                ParamGroup::new(name, s.optimizer, s.lr, s.weight_decay, params)
            })
            .collect();
        Optimizers::new(groups)
    }

    /// The schedules of the optimizers' groups; `total_steps` is OneCycle's default length.
    fn build_schedulers(
        &self,
        total_steps: usize,
    ) -> Result<BTreeMap<String, (String, Scheduler)>> {
        let mut out = BTreeMap::new();
        for g in self.optimizers.as_ref().expect("built").groups() {
            let s = self.config.group_settings(g.name());
            if let Some((field, sched)) = s.scheduler {
                let run = Scheduler::new(&sched, s.lr, total_steps, &field)?;
                out.insert(g.name().to_string(), (field, run));
            }
        }
        Ok(out)
    }

    /// Sets every scheduled group's learning rate from its schedule.
    fn apply_scheduled_lrs(&mut self) {
        if let Some(opt) = self.optimizers.as_mut() {
            for (name, (_, s)) in &self.schedulers {
                if let Some(g) = opt.group_mut(name) {
                    g.set_lr(s.lr());
                }
            }
        }
    }

    /// Saves everything needed to continue training to one `.safetensors` file, written
    /// atomically: model weights (`model/<var>`), optimizer buffers (`optim/<var>/<buffer>`),
    /// early stopping's best weights, and as JSON the epoch, history, step counts, learning
    /// rates, scheduler and early-stopping states, seed and configuration.
    ///
    /// Random state: the shuffling generator's position is saved; libtorch's generator state
    /// cannot be read through tch, so every epoch re-seeds it from `(seed, epoch)` instead. With
    /// both, a resumed CPU run reproduces the uninterrupted one exactly.
    pub fn save_checkpoint(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut tensors: Vec<(String, Tensor)> = weights_cpu(&self.model)
            .into_iter()
            .map(|(k, t)| (format!("model/{k}"), t))
            .collect();
        let optimizer = self.optimizers.as_ref().map(|opt| {
            let (meta, bufs) = opt.state();
            tensors.extend(bufs.into_iter().map(|(k, t)| (format!("optim/{k}"), t)));
            meta
        });
        if let Some(best) = &self.best_weights {
            tensors.extend(best.iter().map(|(k, t)| {
                (
                    format!("es_best/{k}"),
                    t.to_device(tch::Device::Cpu).contiguous(),
                )
            }));
        }
        let meta = CheckpointMeta {
            format: CHECKPOINT_FORMAT.into(),
            version: CHECKPOINT_VERSION,
            seed: self.config.seed,
            epoch: self.history.len(),
            history: self.history.clone(),
            optimizer,
            schedulers: self
                .schedulers
                .iter()
                .map(|(k, (_, s))| (k.clone(), s.clone()))
                .collect(),
            early_stopping: self.es_state.clone(),
            has_best_weights: self.best_weights.is_some(),
            shuffle_pos: self.shuffle_pos.map(|p| p.to_string()),
            config: self.config.clone(),
        };
        let json = serde_json::to_vec(&meta)?;
        tensors.push((META_KEY.to_string(), Tensor::from_slice(&json)));
        write_atomic(path, |tmp| {
            Tensor::write_safetensors(&tensors, tmp).map_err(Into::into)
        })
    }

    /// Restores a checkpoint written by [`Trainer::save_checkpoint`] into this trainer (built
    /// with the same model configuration and seed): weights, optimizer and scheduler states,
    /// history and early-stopping state. The next [`Trainer::fit`] (with the same data) continues
    /// the run; it runs `config.epochs` more epochs. A missing file is an
    /// [`WideDeepError::Io`] error, a corrupt or mismatching one
    /// [`WideDeepError::BadCheckpoint`], both naming the file.
    pub fn resume(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bad = |reason: String| WideDeepError::BadCheckpoint {
            path: path.to_path_buf(),
            reason,
        };
        std::fs::metadata(path).map_err(|e| WideDeepError::io(path, e))?;
        let tensors = Tensor::read_safetensors(path).map_err(|e| bad(e.to_string()))?;
        let mut model_t = BTreeMap::new();
        let mut optim_t = Vec::new();
        let mut best_t = Vec::new();
        let mut meta = None;
        for (k, t) in tensors {
            if k == META_KEY {
                meta = Some(t);
            } else if let Some(n) = k.strip_prefix("model/") {
                model_t.insert(n.to_string(), t);
            } else if let Some(n) = k.strip_prefix("optim/") {
                optim_t.push((n.to_string(), t));
            } else if let Some(n) = k.strip_prefix("es_best/") {
                best_t.push((n.to_string(), t));
            } else {
                return Err(bad(format!("unexpected tensor `{k}`")));
            }
        }
        let meta = meta.ok_or_else(|| bad("no metadata; not a trainer checkpoint".into()))?;
        let bytes = Vec::<u8>::try_from(&meta).map_err(|e| bad(e.to_string()))?;
        let meta: CheckpointMeta =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("bad metadata: {e}")))?;
        if meta.format != CHECKPOINT_FORMAT || meta.version != CHECKPOINT_VERSION {
            return Err(bad(format!(
                "format {} v{}, expected {CHECKPOINT_FORMAT} v{CHECKPOINT_VERSION}",
                meta.format, meta.version
            )));
        }
        if meta.seed != self.config.seed {
            return Err(bad(format!(
                "trained with seed {}, this trainer's config has seed {}",
                meta.seed, self.config.seed
            )));
        }
        // weights: same names and shapes
        let vars = self.model.var_store().variables();
        if vars.len() != model_t.len() {
            return Err(bad(format!(
                "holds {} model variables, the model has {}",
                model_t.len(),
                vars.len()
            )));
        }
        for (k, v) in &vars {
            let t = model_t
                .get(k)
                .ok_or_else(|| bad(format!("no weights for model variable `{k}`")))?;
            if t.size() != v.size() {
                return Err(bad(format!(
                    "`{k}` has shape {:?}, the model {:?}",
                    t.size(),
                    v.size()
                )));
            }
        }
        // optimizers and schedules
        let mut optimizers = None;
        let mut schedulers = BTreeMap::new();
        if let Some(opt_meta) = &meta.optimizer {
            let mut opt = self.build_optimizers();
            opt.load_state(opt_meta, &optim_t)
                .map_err(|e| bad(e.to_string()))?;
            for g in opt.groups() {
                let s = self.config.group_settings(g.name());
                match (s.scheduler, meta.schedulers.get(g.name())) {
                    (None, None) => {}
                    (Some((field, cfg)), Some(run)) if run.config() == &cfg => {
                        schedulers.insert(g.name().to_string(), (field, run.clone()));
                    }
                    (configured, _) => {
                        let field = configured.map_or_else(|| "lr_scheduler".to_string(), |c| c.0);
                        return Err(bad(format!(
                            "the schedule of group `{}` differs from the configuration (`{field}`)",
                            g.name()
                        )));
                    }
                }
            }
            optimizers = Some(opt);
        } else if !optim_t.is_empty() {
            return Err(bad("optimizer buffers without optimizer state".into()));
        }
        // everything checked: apply
        tch::no_grad(|| {
            for (k, v) in &vars {
                let t = &model_t[k];
                v.shallow_clone()
                    .copy_(&t.to_device(v.device()).to_kind(v.kind()));
            }
        });
        self.optimizers = optimizers;
        self.schedulers = schedulers;
        self.apply_scheduled_lrs();
        self.history = meta.history;
        self.es_state = meta.early_stopping;
        self.best_weights = if meta.has_best_weights {
            let device = self.model.device();
            Some(
                best_t
                    .into_iter()
                    .map(|(k, t)| (k, t.to_device(device)))
                    .collect(),
            )
        } else {
            None
        };
        self.shuffle_pos = match meta.shuffle_pos {
            Some(p) => Some(
                p.parse()
                    .map_err(|_| bad(format!("bad shuffle position `{p}`")))?,
            ),
            None => None,
        };
        self.resumed = true;
        Ok(())
    }

    /// Raw model outputs `[N, pred_dim]` (logits for classification) in evaluation mode.
    ///
    /// A non-finite output (the model overflowing on inputs far outside its training data)
    /// is a [`WideDeepError::NonFiniteResult`] naming the first such row, never a silent NaN.
    pub fn predict_raw(&self, data: &Dataset) -> Result<Tensor> {
        self.model.check_input(&data.input)?;
        let out = self.run(data, false)?.outputs;
        check_finite_rows(&out)?;
        Ok(out)
    }

    /// Predictions: class indices `[N]` i64 for classification, values `[N]` f32 for regression.
    pub fn predict(&self, data: &Dataset) -> Result<Tensor> {
        Ok(self.config.objective.predict(&self.predict_raw(data)?))
    }

    /// Class probabilities `[N, n_classes]` (binary: `[1 − p, p]`).
    pub fn predict_proba(&self, data: &Dataset) -> Result<Tensor> {
        self.config
            .objective
            .predict_proba(&self.predict_raw(data)?)
    }

    /// Loss and every configured metric (or `metrics` when given) on `data`, which needs a target.
    pub fn evaluate(
        &self,
        data: &Dataset,
        metrics: Option<&[Metric]>,
    ) -> Result<BTreeMap<String, f64>> {
        self.check_data(data, "evaluation")?;
        let pass = self.run(data, true)?;
        check_finite_rows(&pass.outputs)?;
        let mut record = BTreeMap::from([("loss".to_string(), pass.loss)]);
        let scores = self.config.objective.scores(&pass.outputs);
        let target = data.target.as_ref().expect("checked");
        for m in metrics.unwrap_or(&self.config.metrics) {
            record.extend(m.compute_named(&self.config.objective, &scores, target)?);
        }
        check_finite_record(&record)?;
        Ok(record)
    }

    /// A forward pass in eval mode over `data` in batches; the loss when `with_loss`.
    fn run(&self, data: &Dataset, with_loss: bool) -> Result<Pass> {
        let device = self.model.device();
        tch::no_grad(|| {
            let mut outs = Vec::new();
            let mut loss_sum = 0f64;
            for batch in data.try_batches(self.config.eval_batch_size as i64) {
                let batch = batch?;
                let batch = if device == batch.device() {
                    batch
                } else {
                    batch.to_device(device)
                };
                let out = self.model.forward_t(&batch.input, false);
                if with_loss {
                    let target = batch.target.as_ref().expect("checked");
                    loss_sum += self.config.objective.loss(&out, target).double_value(&[])
                        * batch.len() as f64;
                }
                outs.push(out.to_device(tch::Device::Cpu));
            }
            let outputs = if outs.is_empty() {
                Tensor::zeros([0, self.model.pred_dim()], (Kind::Float, tch::Device::Cpu))
            } else {
                Tensor::cat(&outs, 0)
            };
            Ok(Pass {
                outputs,
                loss: loss_sum / data.len().max(1) as f64,
            })
        })
    }

    fn add_metrics(
        &self,
        record: &mut BTreeMap<String, f64>,
        prefix: &str,
        scores: &Tensor,
        target: &Tensor,
    ) -> Result<()> {
        for m in &self.config.metrics {
            for (name, v) in m.compute_named(&self.config.objective, scores, target)? {
                record.insert(format!("{prefix}{name}"), v);
            }
        }
        Ok(())
    }

    /// Checks rows, inputs and targets of a data set used with a target.
    fn check_data(&self, data: &Dataset, what: &str) -> Result<()> {
        if data.is_empty() {
            return Err(WideDeepError::Missing(format!(
                "the {what} data has no rows"
            )));
        }
        self.model.check_input(&data.input)?;
        let target = data
            .target
            .as_ref()
            .ok_or_else(|| WideDeepError::Missing(format!("the {what} data has no target")))?;
        self.config.objective.check_target(target)
    }
}

fn snapshot(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    vs.variables()
        .into_iter()
        .map(|(k, v)| (k, v.detach().copy()))
        .collect()
}

fn restore(vs: &nn::VarStore, weights: &[(String, Tensor)]) {
    let vars = vs.variables();
    tch::no_grad(|| {
        for (k, w) in weights {
            if let Some(v) = vars.get(k) {
                v.shallow_clone().copy_(w);
            }
        }
    });
}

fn summarize(record: &BTreeMap<String, f64>) -> String {
    let mut keys: Vec<&String> = record.keys().collect();
    // loss first, then train metrics, then validation values
    keys.sort_by_key(|k| {
        (
            k.starts_with("val_"),
            k.as_str() != "loss" && k.as_str() != "val_loss",
            k.as_str(),
        )
    });
    keys.iter()
        .map(|k| format!("{k} {:.4}", record[*k]))
        .collect::<Vec<_>>()
        .join("  ")
}

fn progress_bar(verbose: u8, n: usize, epoch: usize, epochs: usize) -> ProgressBar {
    if verbose == 0 || !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(n as u64), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(n as u64);
    let style =
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {elapsed} {msg}")
            .expect("valid template")
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("{}/{epochs}", epoch + 1));
    bar
}

fn finish_bar(bar: &ProgressBar, verbose: u8, epoch: usize, epochs: usize, summary: &str) {
    if verbose == 0 {
        return;
    }
    if bar.is_hidden() {
        eprintln!("epoch {}/{epochs}: {summary}", epoch + 1);
    } else {
        bar.finish_with_message(summary.to_string());
    }
}

impl ModelInput {
    /// Wraps the input in a [`Dataset`] without a target (for prediction).
    pub fn into_dataset(self) -> Result<Dataset> {
        Dataset::new(self, None)
    }
}

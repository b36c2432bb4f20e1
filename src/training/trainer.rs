//! The [`Trainer`]: fits a [`WideDeep`] model, evaluates and predicts.
use crate::error::{Result, WideDeepError};
use crate::models::{ModelInput, WideDeep};
use crate::training::callbacks::{EarlyStopping, EarlyStoppingState, History};
use crate::training::{Dataset, Metric, Objective};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use tch::{nn, nn::OptimizerConfig, Kind, Tensor};

/// Optimizers (one for the whole model; per-component optimizers come with the full trainer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Optimizer {
    Adam,
    AdamW,
    Sgd { momentum: f64 },
}

/// Everything [`Trainer::fit`] needs besides the data. Defaults follow the reference (Adam, lr
/// 1e-3, batch size 32) except that shuffling is on and runs are seeded.
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
    pub epochs: usize,
    /// Reshuffle the training rows every epoch.
    pub shuffle: bool,
    /// Seeds shuffling, the validation split and dropout: on CPU the same seed gives the same
    /// weights and metrics.
    pub seed: u64,
    /// Fraction of the training rows held out for validation (stratified for classification)
    /// when no validation set is passed to `fit`.
    pub val_split: Option<f64>,
    pub metrics: Vec<Metric>,
    pub early_stopping: Option<EarlyStopping>,
    /// 0: silent; 1: a progress bar per epoch (a summary line when stderr is not a terminal).
    pub verbose: u8,
    /// Learning rates per component, keyed by parameter group (`wide`, `deeptabular`,
    /// `deeptext_0`, `deepimage_0`, `head`, …; see `WideDeep::param_groups`); the others use
    /// `lr`.
    pub component_lr: BTreeMap<String, f64>,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        Self {
            objective: Objective::Binary,
            optimizer: Optimizer::Adam,
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
            verbose: 1,
            component_lr: BTreeMap::new(),
        }
    }
}

macro_rules! setters {
    ($($name:ident: $ty:ty),* $(,)?) => {
        $(pub fn $name(mut self, v: $ty) -> Self { self.$name = v; self })*
    };
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
    /// Sets the learning rate of one parameter group (`deeptext_0`, `head`, …).
    pub fn component_lr(mut self, group: &str, lr: f64) -> Self {
        self.component_lr.insert(group.to_string(), lr);
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
        if self.weight_decay.is_nan() || self.weight_decay < 0.0 {
            return Err(WideDeepError::config("weight_decay", "must be ≥ 0"));
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
        if let Optimizer::Sgd { momentum } = self.optimizer {
            if !(0.0..1.0).contains(&momentum) {
                return Err(WideDeepError::config(
                    "optimizer.momentum",
                    "must be in [0, 1)",
                ));
            }
        }
        self.metrics
            .iter()
            .try_for_each(|m| m.check(&self.objective))
    }
}

/// Trains and runs a [`WideDeep`] model.
#[derive(Debug)]
pub struct Trainer {
    model: WideDeep,
    config: TrainerConfig,
    history: History,
}

/// Outputs and loss of a pass over a data set.
struct Pass {
    outputs: Tensor,
    loss: f64,
}

impl Trainer {
    /// Pairs a model with a training configuration; checks that they fit together.
    pub fn new(model: WideDeep, config: TrainerConfig) -> Result<Self> {
        config.validate()?;
        config.objective.check_pred_dim(model.pred_dim())?;
        let groups = model.param_groups();
        for k in config.component_lr.keys() {
            if !groups.iter().any(|(n, _)| n == k) {
                return Err(WideDeepError::config(
                    format!("component_lr.{k}"),
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
        Ok(Self {
            model,
            config,
            history: History::default(),
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
    pub(crate) fn set_history(&mut self, history: History) {
        self.history = history;
    }

    /// Trains for `config.epochs` epochs. Validation data is `val` when given, else a
    /// `val_split` of `train`, else none. Returns the history (one entry per epoch run).
    pub fn fit(&mut self, train: &Dataset, val: Option<&Dataset>) -> Result<&History> {
        let cfg = self.config.clone();
        self.check_data(train, "training")?;
        if let Some(v) = val {
            self.check_data(v, "validation")?;
        }
        let _rng_guard = crate::torch_rng_lock();
        tch::manual_seed(cfg.seed as i64);
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
        let mut opt = self.optimizer()?;
        let device = self.model.device();
        let n_batches = (train.len() as usize).div_ceil(cfg.batch_size);
        let mut es_state = EarlyStoppingState::new();
        let mut best_weights: Option<Vec<(String, Tensor)>> = None;
        let first_epoch = self.history.len();

        for epoch in 0..cfg.epochs {
            let bar = progress_bar(cfg.verbose, n_batches, epoch, cfg.epochs);
            let data = if cfg.shuffle {
                train.shuffled(&mut rng)
            } else {
                train.slice(0, train.len())
            };
            let (mut loss_sum, mut seen) = (0f64, 0i64);
            let mut outs = Vec::with_capacity(n_batches);
            for (b, batch) in data.try_batches(cfg.batch_size as i64).enumerate() {
                let batch = batch?;
                let batch = if device == batch.device() {
                    batch
                } else {
                    batch.to_device(device)
                };
                let target = batch.target.as_ref().expect("checked");
                let (out, aux) = self.model.forward_aux(&batch.input, true);
                let loss = match aux {
                    Some(aux) => cfg.objective.loss(&out, target) + aux,
                    None => cfg.objective.loss(&out, target),
                };
                let lv = loss.double_value(&[]);
                if !lv.is_finite() {
                    bar.abandon();
                    return Err(WideDeepError::NonFiniteLoss {
                        epoch: first_epoch + epoch + 1,
                        batch: b,
                        value: lv,
                    });
                }
                opt.backward_step(&loss);
                loss_sum += lv * batch.len() as f64;
                seen += batch.len();
                if !cfg.metrics.is_empty() {
                    outs.push(out.detach());
                }
                bar.inc(1);
                if b % 20 == 0 {
                    bar.set_message(format!("loss {:.4}", loss_sum / seen as f64));
                }
            }
            let mut record = BTreeMap::new();
            record.insert("loss".to_string(), loss_sum / train.len() as f64);
            if !cfg.metrics.is_empty() {
                let scores = cfg.objective.scores(&Tensor::cat(&outs, 0));
                self.add_metrics(
                    &mut record,
                    "",
                    &scores,
                    data.target.as_ref().expect("checked"),
                )?;
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
            let summary = summarize(&record);
            finish_bar(&bar, cfg.verbose, epoch, cfg.epochs, &summary);
            let stop = match &cfg.early_stopping {
                Some(es) => {
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
                    let (improved, stop) = es_state.update(es, epoch, value);
                    if improved && es.restore_best_weights {
                        best_weights = Some(snapshot(self.model.var_store()));
                    }
                    stop
                }
                None => false,
            };
            self.history.epochs.push(record);
            if stop {
                if cfg.verbose > 0 {
                    eprintln!(
                        "early stopping after epoch {} (best: epoch {})",
                        epoch + 1,
                        es_state.best_epoch + 1
                    );
                }
                break;
            }
        }
        if let Some(weights) = best_weights {
            restore(self.model.var_store(), &weights);
        }
        Ok(&self.history)
    }

    /// Raw model outputs `[N, pred_dim]` (logits for classification) in evaluation mode.
    pub fn predict_raw(&self, data: &Dataset) -> Result<Tensor> {
        self.model.check_input(&data.input)?;
        Ok(self.run(data, false)?.outputs)
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
        let mut record = BTreeMap::from([("loss".to_string(), pass.loss)]);
        let scores = self.config.objective.scores(&pass.outputs);
        let target = data.target.as_ref().expect("checked");
        for m in metrics.unwrap_or(&self.config.metrics) {
            record.insert(
                m.name().to_string(),
                m.compute(&self.config.objective, &scores, target)?,
            );
        }
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
            let v = m.compute(&self.config.objective, scores, target)?;
            record.insert(format!("{prefix}{}", m.name()), v);
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
        check_target(&self.config.objective, target)
    }

    fn optimizer(&self) -> Result<nn::Optimizer> {
        let mut opt = self.base_optimizer()?;
        if !self.config.component_lr.is_empty() {
            // libtorch creates param groups up to the highest group id holding a variable
            let max_group = {
                let vars = self
                    .model
                    .var_store()
                    .variables_
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                vars.trainable_variables.iter().map(|v| v.group).max()
            };
            for (name, group) in self.model.param_groups() {
                if let (Some(lr), Some(max)) = (self.config.component_lr.get(&name), max_group) {
                    if group <= max {
                        opt.set_lr_group(group, *lr);
                    }
                }
            }
        }
        Ok(opt)
    }

    fn base_optimizer(&self) -> Result<nn::Optimizer> {
        let vs = self.model.var_store();
        let (lr, wd) = (self.config.lr, self.config.weight_decay);
        Ok(match self.config.optimizer {
            Optimizer::Adam => nn::Adam {
                wd,
                ..Default::default()
            }
            .build(vs, lr)?,
            Optimizer::AdamW => nn::AdamW {
                wd,
                ..Default::default()
            }
            .build(vs, lr)?,
            Optimizer::Sgd { momentum } => nn::Sgd {
                momentum,
                wd,
                ..Default::default()
            }
            .build(vs, lr)?,
        })
    }
}

/// Target values must be finite and, for classification, valid class indices.
fn check_target(objective: &Objective, target: &Tensor) -> Result<()> {
    let bad = |reason: String| WideDeepError::InputMismatch {
        input: "target".into(),
        reason,
    };
    if target.size().len() != 1 {
        return Err(bad(format!("expected shape [N], got {:?}", target.size())));
    }
    let t = target.to_device(tch::Device::Cpu).to_kind(Kind::Double);
    if !bool::try_from(t.isfinite().all())? {
        return Err(bad("contains NaN or infinite values".into()));
    }
    let (lo, hi) = (t.min().double_value(&[]), t.max().double_value(&[]));
    match objective {
        Objective::Binary => {
            if target.kind() != Kind::Float
                || !bool::try_from(t.eq(0.0).logical_or(&t.eq(1.0)).all())?
            {
                return Err(bad("binary targets must be f32 values 0 or 1".into()));
            }
        }
        Objective::Multiclass { n_classes } => {
            if target.kind() != Kind::Int64 || lo < 0.0 || hi >= *n_classes as f64 {
                return Err(bad(format!(
                    "multiclass targets must be i64 classes in 0..{n_classes}"
                )));
            }
        }
        Objective::Regression => {
            if target.kind() != Kind::Float {
                return Err(bad("regression targets must be f32".into()));
            }
        }
    }
    Ok(())
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

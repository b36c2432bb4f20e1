//! The [`BayesianTrainer`]: trains a [`BayesianModel`] by minimising the ELBO as the
//! reference's `BayesianTrainer` does, and predicts with sampled networks.
//!
//! One step on a batch of `B` rows out of `n_batches` per epoch: `n_train_samples` forward
//! passes, each with freshly sampled weights and its KL estimate `log q(w) − log p(w)`; the
//! loss is
//!
//! ```text
//! data_loss(mean of the sampled outputs, y)  +  (Σ over the samples of KL) / n_batches
//! ```
//!
//! with the data loss summed over the batch's rows (binary and multiclass cross-entropy,
//! `½ (y − ŷ)²` for regression) — exactly the reference's `sample_elbo`, so one epoch counts
//! the KL term once per sample against the whole training set's likelihood.
//!
//! Reused from the deterministic trainer: objectives (targets, scores, probabilities),
//! metrics, optimizers ([`Optimizers`] over the model's variables), the validation split,
//! early stopping and [`History`]. Not available here: callbacks (their
//! [`TrainState`](crate::training::TrainState) holds a `WideDeep`), learning-rate schedules,
//! the training extras and data-parallel runs.
mod config;
mod predict;
#[cfg(test)]
mod tests;

pub use config::BayesianTrainerConfig;

use crate::error::{Result, WideDeepError};
use crate::macros::{bail, ensure};
use crate::models::bayesian::{BayesianModel, WeightMode};
use crate::training::callbacks::{EarlyStoppingState, History};
use crate::training::checks::monitored;
use crate::training::optim::{Optimizers, ParamGroup};
use crate::training::{Dataset, Objective};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

/// Trains and runs a [`BayesianModel`] (see the [module documentation](self)).
pub struct BayesianTrainer {
    model: BayesianModel,
    config: BayesianTrainerConfig,
    history: History,
    /// Created by the first `fit`, continued by later ones.
    optimizers: Option<Optimizers>,
    /// Position of the shuffling generator after the last epoch.
    shuffle_pos: Option<u128>,
}

impl std::fmt::Debug for BayesianTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BayesianTrainer")
            .field("model", &self.model)
            .field("config", &self.config)
            .field("history", &self.history)
            .finish()
    }
}

/// The data loss summed over the rows of a batch (the reference's `reduction="sum"` losses).
///
/// # Shapes
/// - `out`: `[batch, pred_dim]`; `target`: `[batch]`; returns `[]`
fn summed_loss(objective: &Objective, out: &Tensor, target: &Tensor) -> Tensor {
    let rows = out.size()[0] as f64;
    match objective {
        Objective::Regression => objective.loss(out, target) * (0.5 * rows),
        _ => objective.loss(out, target) * rows,
    }
}

/// libtorch's seed of training epoch `epoch`: derived from `(seed, epoch)` only.
fn epoch_seed(seed: u64, epoch: usize) -> i64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1 + epoch as u64);
    (rand::RngCore::next_u64(&mut rng) >> 1) as i64
}

impl BayesianTrainer {
    /// Pairs a model with its training settings. A model whose config leaves `pred_dim` unset
    /// is rebuilt (same seed) with the objective's width; a set width that differs is an
    /// error naming `pred_dim`.
    pub fn new(model: BayesianModel, config: BayesianTrainerConfig) -> Result<Self> {
        config.validate()?;
        let model = model.for_width(config.objective.pred_dim())?;
        Ok(Self {
            model,
            config,
            history: History::default(),
            optimizers: None,
            shuffle_pos: None,
        })
    }

    /// The model.
    pub fn model(&self) -> &BayesianModel {
        &self.model
    }
    /// The settings.
    pub fn config(&self) -> &BayesianTrainerConfig {
        &self.config
    }
    /// One record per epoch trained so far.
    pub fn history(&self) -> &History {
        &self.history
    }
    pub(crate) fn set_history(&mut self, history: History) {
        self.history = history;
    }
    /// The optimizers, once `fit` created them.
    pub fn optimizers(&self) -> Option<&Optimizers> {
        self.optimizers.as_ref()
    }

    /// Checks rows, inputs and target of a data set used with a target.
    fn check_data(&self, data: &Dataset, what: &str) -> Result<()> {
        ensure!(!data.is_empty(), missing(), "the {what} data has no rows");
        self.model.check_input(&data.input)?;
        let Some(target) = &data.target else {
            bail!(missing(), "the {what} data has no target");
        };
        self.config.objective.check_target(target)
    }

    /// Trains for `config.epochs` epochs. Validation data is `val` when given, else a
    /// `val_split` of `train`, else none. Every epoch records `loss` (the ELBO per training
    /// row: summed data loss plus the scaled KL terms, over the rows), `kl` (the KL estimate
    /// of the last step's networks, summed over its samples), the training metrics and, with
    /// validation data, `val_loss` and the validation metrics (see
    /// [`BayesianTrainer::evaluate`]). Returns the history.
    pub fn fit(&mut self, train: &Dataset, val: Option<&Dataset>) -> Result<&History> {
        self.check_data(train, "training")?;
        if let Some(v) = val {
            self.check_data(v, "validation")?;
        }
        let cfg = self.config.clone();
        let _rng_guard = crate::torch_rng_lock();
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
            ensure!(
                val.is_some() || !es.monitor.starts_with("val_"),
                config("early_stopping.monitor"),
                "`{}` needs validation data (pass it or set val_split)",
                es.monitor
            );
        }
        if let Some(pos) = self.shuffle_pos {
            rng.set_word_pos(pos);
        }
        let device = self.model.device();
        let on_device;
        let train = if train.device() == device {
            train
        } else {
            on_device = train.to_device(device);
            &on_device
        };
        let n_batches = (train.len() as usize).div_ceil(cfg.batch_size);
        let mut optimizers = match self.optimizers.take() {
            Some(o) => o,
            None => self.new_optimizers(),
        };
        let mut es_state = EarlyStoppingState::new();
        let mut best: Option<Vec<(String, Tensor)>> = None;
        let mut result = Ok(());
        for _ in 0..cfg.epochs {
            let epoch = self.history.len();
            let record = self
                .train_epoch(&cfg, &mut optimizers, &mut rng, train, n_batches, epoch)
                .and_then(|mut record| {
                    if let Some(v) = val {
                        let eval = self.evaluate_n(v, cfg.n_val_samples, None)?;
                        for (k, x) in eval {
                            record.insert(format!("val_{k}"), x);
                        }
                    }
                    Ok(record)
                });
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            self.shuffle_pos = Some(rng.get_word_pos());
            if cfg.verbose > 0 {
                eprintln!("epoch {}: {}", epoch + 1, summarize(&record));
            }
            let mut stop = false;
            if let Some(es) = &cfg.early_stopping {
                let value = match monitored(&record, &es.monitor, "early_stopping.monitor") {
                    Ok(v) => v,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                };
                let (improved, s) = es_state.update(es, epoch, value);
                if improved && es.restore_best_weights {
                    best = Some(snapshot(&self.model));
                }
                stop = s;
            }
            self.history.epochs.push(record);
            if stop {
                break;
            }
        }
        if let Some(weights) = best {
            restore(&self.model, &weights);
        }
        self.optimizers = Some(optimizers);
        result?;
        Ok(&self.history)
    }

    /// One optimizer group over every variable that requires a gradient, in name order.
    fn new_optimizers(&self) -> Optimizers {
        let mut params: Vec<(String, Tensor)> = self
            .model
            .var_store()
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let cfg = &self.config;
        Optimizers::new(vec![ParamGroup::new(
            "bayesian",
            cfg.optimizer,
            cfg.lr,
            cfg.weight_decay,
            params,
        )])
    }

    /// One pass over the (shuffled) training rows; returns the epoch's record (training part).
    fn train_epoch(
        &self,
        cfg: &BayesianTrainerConfig,
        optimizers: &mut Optimizers,
        rng: &mut ChaCha8Rng,
        train: &Dataset,
        n_batches: usize,
        epoch: usize,
    ) -> Result<BTreeMap<String, f64>> {
        tch::manual_seed(epoch_seed(cfg.seed, epoch));
        let data = if cfg.shuffle {
            train.shuffled(rng)
        } else {
            train.slice(0, train.len())
        };
        let (mut loss_sum, mut last_kl) = (0.0, f64::NAN);
        let mut outs = Vec::new();
        for (b, batch) in data.batches(cfg.batch_size as i64).enumerate() {
            let target = batch.target.as_ref().expect("checked");
            let (loss, kl, out) = self.elbo(&batch, n_batches, cfg.n_train_samples);
            let lv = loss.double_value(&[]);
            ensure!(
                lv.is_finite(),
                WideDeepError::NonFiniteLoss {
                    epoch: epoch + 1,
                    batch: b,
                    value: lv,
                }
            );
            optimizers.zero_grad();
            loss.backward();
            optimizers.step();
            loss_sum += lv;
            last_kl = kl;
            if !cfg.metrics.is_empty() {
                outs.push((out.detach(), target.shallow_clone()));
            }
        }
        let mut record = BTreeMap::new();
        record.insert("loss".to_string(), loss_sum / train.len() as f64);
        record.insert("kl".to_string(), last_kl);
        if !outs.is_empty() {
            let (o, t): (Vec<Tensor>, Vec<Tensor>) = outs.into_iter().unzip();
            let scores = cfg.objective.scores(&Tensor::cat(&o, 0));
            let target = Tensor::cat(&t, 0);
            for m in &cfg.metrics {
                record.extend(m.compute_named(&cfg.objective, &scores, &target)?);
            }
        }
        Ok(record)
    }

    /// The ELBO loss of one batch with `n_samples` sampled networks (see the module
    /// documentation); returns the loss (`[]`, with its graph), the summed KL value and the
    /// mean output `[batch, pred_dim]`.
    fn elbo(&self, batch: &Dataset, n_batches: usize, n_samples: usize) -> (Tensor, f64, Tensor) {
        let target = batch.target.as_ref().expect("checked");
        let mut out_sum: Option<Tensor> = None;
        let mut kl_sum: Option<Tensor> = None;
        for _ in 0..n_samples {
            let (out, kl) = self
                .model
                .forward(&batch.input, WeightMode::SampleWithKl, true);
            out_sum = Some(match out_sum.take() {
                Some(s) => s + out,
                None => out,
            });
            if let Some(kl) = kl {
                kl_sum = Some(match kl_sum.take() {
                    Some(s) => s + kl,
                    None => kl,
                });
            }
        }
        let out = out_sum.expect("n_samples ≥ 1") / n_samples as f64;
        let data = summed_loss(&self.config.objective, &out, target);
        match kl_sum {
            Some(kl) => {
                let kv = kl.double_value(&[]);
                (data + kl / n_batches as f64, kv, out)
            }
            None => (data, 0.0, out),
        }
    }
}

fn snapshot(model: &BayesianModel) -> Vec<(String, Tensor)> {
    model
        .var_store()
        .variables()
        .into_iter()
        .map(|(k, v)| (k, v.detach().copy()))
        .collect()
}

fn restore(model: &BayesianModel, weights: &[(String, Tensor)]) {
    let vars = model.var_store().variables();
    tch::no_grad(|| {
        for (k, w) in weights {
            if let Some(v) = vars.get(k) {
                v.shallow_clone().copy_(w);
            }
        }
    });
}

/// The record as one line, losses first.
fn summarize(record: &BTreeMap<String, f64>) -> String {
    let mut keys: Vec<&String> = record.keys().collect();
    keys.sort_by_key(|k| (k.starts_with("val_"), !k.ends_with("loss"), k.as_str()));
    keys.iter()
        .map(|k| format!("{k} {:.4}", record[*k]))
        .collect::<Vec<_>>()
        .join("  ")
}

/// The mean of `t` over its rows as f64 (for records).
pub(crate) fn mean_f64(t: &Tensor) -> f64 {
    t.to_kind(Kind::Double).mean(Kind::Double).double_value(&[])
}

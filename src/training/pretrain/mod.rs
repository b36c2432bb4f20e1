//! Self-supervised pretraining of the deep tabular component on unlabelled rows, before
//! it is fine-tuned with the [`Trainer`](crate::training::Trainer) (the reference's
//! `self_supervised_training`).
//!
//! The parts every route shares live here: the loop settings ([`PretrainConfig`]), the loop
//! itself with its progress bar, history and mixed precision ([`Pretrainer`]; the trainer's
//! autocast and loss scaling, see [`PretrainConfig::precision`]), checkpoints that save and resume
//! a run exactly ([`Pretrainer::save_checkpoint`], [`Pretrainer::resume`]), and the hand-over
//! of the pretrained encoder to a [`WideDeep`] as its `deeptabular` component
//! ([`Pretrainer::transfer_to`], [`Pretrainer::wide_deep`]). A route is a
//! [`PretrainModel`]: an encoder (built under the variable prefix `deeptabular`, as in a
//! `WideDeep`) plus whatever the route adds, its forward pass and the loss of its output.
//!
//! Routes, each a [`PretrainModel`] run by the same [`Pretrainer`]: [`encoder_decoder`]
//! (masked reconstruction, the reference's `EncoderDecoderTrainer`, for TabMlp, TabResnet and
//! TabNet: [`EncoderDecoderTrainer`] = `Pretrainer<EncoderDecoder>`) and [`contrastive`]
//! (contrastive–denoising, the reference's `ContrastiveDenoisingTrainer`, for the attention
//! models: [`ContrastiveDenoisingTrainer`] = `Pretrainer<ContrastiveDenoising>`).
pub mod contrastive;
pub mod encoder_decoder;

pub use contrastive::{
    CdLossType, ContrastiveDenoising, ContrastiveDenoisingConfig, ContrastiveDenoisingTrainer,
    DenoiseMlpType,
};
pub use encoder_decoder::{EncoderDecoder, EncoderDecoderConfig, EncoderDecoderTrainer};

use crate::error::{Result, WideDeepError};
use crate::macros::{bail, ensure, setters};
use crate::models::{ModelInput, TabModelConfig, WideDeep, WideDeepConfig};
use crate::training::amp::Precision;
use crate::training::callbacks::write_atomic;
use crate::training::grad::{GradSettings, GradStep};
use crate::training::optim::{OptimizerStateMeta, Optimizers, ParamGroup};
use crate::training::trainer::fit::{finish_bar, progress_bar, torch_epoch_seed};
use crate::training::trainer::{bad_checkpoint, CheckpointTensors, META_KEY};
use crate::training::{Dataset, Optimizer};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{nn, Device, Tensor};

/// The variable prefix of the encoder in every [`PretrainModel`]: the `deeptabular`
/// component's prefix in a [`WideDeep`], so that the weights carry over by name.
pub const ENCODER_PREFIX: &str = "deeptabular";

/// Settings of the pretraining loop, shared by every route. Defaults: the reference's optimizer
/// (AdamW, learning rate 1e-3, weight decay 0.01) and batch size (32), one epoch, the
/// evaluation in batches of the training batch size (the defaults of both the reference's
/// `EncoderDecoderTrainer` and its `ContrastiveDenoisingTrainer`); unlike the reference, rows
/// are shuffled every epoch (`shuffle`) and runs are reproducible from `seed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PretrainConfig {
    /// Epochs per [`Pretrainer::fit`] call (≥ 1).
    pub epochs: usize,
    /// Rows per batch (≥ 2: the losses need statistics over the rows of a batch). A last
    /// batch of one row is skipped.
    pub batch_size: usize,
    /// Rows per batch of [`Pretrainer::evaluate`] and of the validation loss (≥ 2); `None`:
    /// `batch_size`. It matters where the loss depends on the batch (contrastive–denoising: the
    /// InfoNCE loss contrasts the rows of a batch, and SAINT attends across them).
    pub eval_batch_size: Option<usize>,
    /// Learning rate (> 0).
    pub lr: f64,
    /// Weight decay (decoupled for AdamW, an L2 penalty for the others; ≥ 0).
    pub weight_decay: f64,
    /// The update rule of every parameter.
    pub optimizer: Optimizer,
    /// A fresh order of the rows every epoch (drawn from `seed` and the epoch).
    pub shuffle: bool,
    /// Seeds the row order and libtorch's draws (masks, dropout) of each epoch.
    pub seed: u64,
    /// 0: silent; 1: a progress bar (or a line per epoch when stderr is not a terminal).
    pub verbose: u8,
    /// Precision of the training forward pass, as the [`Trainer`](crate::training::Trainer)'s
    /// (`TrainerConfig::precision`): bf16 autocast on the CPU or CUDA, fp16 autocast with
    /// dynamic loss scaling (the default `GradScalerConfig`, restarted by every `fit`) on CUDA
    /// only (on the CPU a warning and f32). The loss is computed in f32, evaluation runs in
    /// f32.
    pub precision: Precision,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        Self {
            epochs: 1,
            batch_size: 32,
            eval_batch_size: None,
            lr: 1e-3,
            weight_decay: 0.01,
            optimizer: Optimizer::adamw(),
            shuffle: true,
            seed: 1,
            verbose: 1,
            precision: Precision::Fp32,
        }
    }
}

impl PretrainConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    setters!(
        epochs: usize,
        batch_size: usize,
        lr: f64,
        weight_decay: f64,
        optimizer: Optimizer,
        shuffle: bool,
        seed: u64,
        verbose: u8,
        precision: Precision,
    );

    /// Sets `eval_batch_size`.
    pub fn eval_batch_size(mut self, rows: usize) -> Self {
        self.eval_batch_size = Some(rows);
        self
    }

    /// The rows per evaluation batch: `eval_batch_size`, or `batch_size`.
    pub fn resolved_eval_batch_size(&self) -> usize {
        self.eval_batch_size.unwrap_or(self.batch_size)
    }

    /// Checks every field; errors name it (`pretrain.batch_size`).
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.epochs >= 1,
            config("pretrain.epochs"),
            "must be ≥ 1, got 0"
        );
        ensure!(
            self.batch_size >= 2,
            config("pretrain.batch_size"),
            "must be ≥ 2 (the losses use statistics over the rows of a batch), got {}",
            self.batch_size
        );
        if let Some(rows) = self.eval_batch_size {
            ensure!(
                rows >= 2,
                config("pretrain.eval_batch_size"),
                "must be ≥ 2 (the losses use statistics over the rows of a batch), got {rows}"
            );
        }
        ensure!(
            self.lr > 0.0 && self.lr.is_finite(),
            config("pretrain.lr"),
            "must be finite and > 0, got {}",
            self.lr
        );
        ensure!(
            self.weight_decay >= 0.0 && self.weight_decay.is_finite(),
            config("pretrain.weight_decay"),
            "must be finite and ≥ 0, got {}",
            self.weight_decay
        );
        self.optimizer.validate("pretrain.optimizer")
    }
}

/// A pretraining route: an encoder whose variables live under [`ENCODER_PREFIX`] in
/// [`PretrainModel::var_store`], what the route adds to it (a decoder, projection heads), the
/// forward pass of a batch and the self-supervised loss of its output. The two are apart so that
/// with mixed precision ([`PretrainConfig::precision`]) the forward pass runs under autocast and
/// the loss in f32.
pub trait PretrainModel {
    /// The route's name, in checkpoints and errors (`encoder_decoder`).
    const NAME: &'static str;
    /// What the forward pass gives the loss.
    type Output;
    /// Every variable: the encoder's under [`ENCODER_PREFIX`], the route's own elsewhere.
    fn var_store(&self) -> &nn::VarStore;
    /// The encoder's configuration: what a [`WideDeepConfig::deeptabular`] must hold to take
    /// the pretrained weights.
    fn encoder_config(&self) -> &TabModelConfig;
    /// The route's whole configuration as JSON (a resumed run must match it).
    fn config_json(&self) -> Result<serde_json::Value>;
    /// Checks that `input` carries the encoder's columns.
    fn check_input(&self, input: &ModelInput) -> Result<()>;
    /// The forward pass of one batch; `train` switches masking, corruptions, dropout and batch
    /// norm to training behaviour. Under autocast its tensors may come out in f16 / bf16.
    ///
    /// # Shapes
    /// - `input`: the encoder's input, `[batch, …]`
    fn forward(&self, input: &ModelInput, train: bool) -> Self::Output;
    /// The loss of a forward pass's output, computed in f32 (outputs in f16 / bf16 are cast to
    /// f32 first).
    ///
    /// # Shapes
    /// - returns a scalar
    fn loss(&self, output: Self::Output) -> Tensor;
}

/// One epoch of a pretraining run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PretrainRecord {
    /// Mean training loss over the epoch's rows.
    pub loss: f64,
    /// Loss on the validation rows (evaluation mode), when given.
    pub val_loss: Option<f64>,
}

/// Runs a [`PretrainModel`]'s self-supervised training: AdamW (by default) over every
/// variable, the epochs of [`PretrainConfig`], checkpoints, and the hand-over of the encoder.
pub struct Pretrainer<M: PretrainModel> {
    model: M,
    config: PretrainConfig,
    optimizers: Optimizers,
    history: Vec<PretrainRecord>,
}

impl<M: PretrainModel> std::fmt::Debug for Pretrainer<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pretrainer")
            .field("route", &M::NAME)
            .field("config", &self.config)
            .field("epochs_done", &self.history.len())
            .finish()
    }
}

/// Format tag of pretraining checkpoints.
const CHECKPOINT_FORMAT: &str = "widedeep-pretrain-checkpoint";
const CHECKPOINT_VERSION: u32 = 1;

/// The JSON part of a pretraining checkpoint.
#[derive(Serialize, Deserialize)]
struct CheckpointMeta {
    format: String,
    version: u32,
    route: String,
    model: serde_json::Value,
    config: PretrainConfig,
    history: Vec<PretrainRecord>,
    optimizer: OptimizerStateMeta,
}

/// The categorical and continuous columns of `input` (all that pretraining reads) on `device`.
///
/// # Shapes
/// - `input.cat`: `[n, n_cat]` i64, `input.cont`: `[n, n_cont]` f32; the result holds them alone
fn tab_input(input: &ModelInput, device: Device) -> ModelInput {
    ModelInput {
        cat: input.cat.as_ref().map(|t| t.to_device(device)),
        cont: input.cont.as_ref().map(|t| t.to_device(device)),
        ..Default::default()
    }
}

impl<M: PretrainModel> Pretrainer<M> {
    /// Checks `config` and sets up the optimizer over every trainable variable of `model`.
    pub fn new(model: M, config: PretrainConfig) -> Result<Self> {
        config.validate()?;
        crate::device::keep_freed_host_memory();
        let optimizers = Self::build_optimizers(&model, &config);
        Ok(Self {
            model,
            config,
            optimizers,
            history: Vec::new(),
        })
    }

    fn build_optimizers(model: &M, config: &PretrainConfig) -> Optimizers {
        let vs = model.var_store();
        let mut params: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        Optimizers::new(vec![ParamGroup::new(
            M::NAME,
            config.optimizer,
            config.lr,
            config.weight_decay,
            params,
        )])
    }

    /// The route's model (encoder and the rest).
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The loop settings.
    pub fn config(&self) -> &PretrainConfig {
        &self.config
    }

    /// One record per epoch run so far (resumed epochs included).
    pub fn history(&self) -> &[PretrainRecord] {
        &self.history
    }

    /// The encoder's weights as `(name, tensor)` pairs, named as in a [`WideDeep`]
    /// (`deeptabular.…`), sorted by name.
    ///
    /// # Shapes
    /// - each tensor has its variable's shape
    pub fn encoder_weights(&self) -> Vec<(String, Tensor)> {
        let head = format!("{ENCODER_PREFIX}.");
        let mut v: Vec<(String, Tensor)> = self
            .model
            .var_store()
            .variables()
            .into_iter()
            .filter(|(k, _)| k.starts_with(&head))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The device of the weights.
    pub fn device(&self) -> Device {
        self.model.var_store().device()
    }

    /// Runs `config.epochs` more epochs over the rows of `data` (only its categorical and
    /// continuous columns are read; its target, if any, is ignored), evaluating on `val` after
    /// each. Epoch `e`'s row order and random draws (masks, corruptions, dropout) come from
    /// `(seed, e)` alone, so a run resumed from a checkpoint continues exactly as the
    /// uninterrupted one. A last batch of one row is skipped. A non-finite batch loss stops
    /// with [`WideDeepError::NonFiniteLoss`].
    pub fn fit(&mut self, data: &Dataset, val: Option<&Dataset>) -> Result<&[PretrainRecord]> {
        self.check_data(data, "data")?;
        if let Some(v) = val {
            self.check_data(v, "val")?;
        }
        let device = self.device();
        let cfg = self.config.clone();
        let x = tab_input(&data.input, device);
        let first = self.history.len();
        let last = first + cfg.epochs;
        let n = data.len();
        let bs = cfg.batch_size as i64;
        let n_batches = (n as usize).div_ceil(cfg.batch_size);
        // mixed precision: autocast around the forward pass, fp16 loss scaling around the step
        let settings = GradSettings {
            precision: cfg.precision,
            ..GradSettings::default()
        };
        let mut grad = GradStep::new(settings, self.model.var_store());
        for epoch in first..last {
            // the epoch's training pass, holding libtorch's generator (masks, dropout)
            let (bar, loss) = {
                let _rng = crate::torch_rng_lock();
                tch::manual_seed(torch_epoch_seed(cfg.seed, epoch));
                let order = cfg.shuffle.then(|| {
                    let mut order: Vec<i64> = (0..n).collect();
                    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
                    rng.set_stream(epoch as u64 + 1);
                    order.shuffle(&mut rng);
                    Tensor::from_slice(&order).to_device(device)
                });
                let bar = progress_bar(cfg.verbose, n_batches, epoch, last);
                let (mut sum, mut seen) = (0.0, 0i64);
                for b in 0..n_batches as i64 {
                    let rows_b = bs.min(n - b * bs);
                    if rows_b < 2 {
                        continue;
                    }
                    let input = match &order {
                        Some(o) => {
                            let idx = o.narrow(0, b * bs, rows_b);
                            x.map(|t| t.index_select(0, &idx))
                        }
                        None => x.map(|t| t.narrow(0, b * bs, rows_b)),
                    };
                    let output = grad.forward(|| self.model.forward(&input, true));
                    let loss = self.model.loss(output);
                    let value = loss.double_value(&[]);
                    if !value.is_finite() {
                        bar.abandon();
                        bail!(WideDeepError::NonFiniteLoss {
                            epoch: epoch + 1,
                            batch: b as usize + 1,
                            value,
                        });
                    }
                    if let Err(e) = grad.backward(&loss, &mut self.optimizers) {
                        bar.abandon();
                        return Err(e);
                    }
                    sum += value * rows_b as f64;
                    seen += rows_b;
                    bar.inc(1);
                    if cfg.verbose > 0 && b % 16 == 0 {
                        bar.set_message(format!("loss {:.4}", sum / seen.max(1) as f64));
                    }
                }
                (bar, sum / seen.max(1) as f64)
            };
            let val_loss = val.map(|v| self.evaluate(v)).transpose()?;
            let summary = match val_loss {
                Some(v) => format!("loss {loss:.4}  val_loss {v:.4}"),
                None => format!("loss {loss:.4}"),
            };
            finish_bar(&bar, cfg.verbose, epoch, last, &summary);
            self.history.push(PretrainRecord { loss, val_loss });
        }
        Ok(&self.history)
    }

    /// The mean loss over the rows of `data` in evaluation mode (no masking, corruption or
    /// dropout), in batches of [`PretrainConfig::eval_batch_size`] rows (a last batch of one
    /// row is left out), each batch weighted by its rows. A non-finite mean is a
    /// [`WideDeepError::NonFiniteResult`].
    pub fn evaluate(&self, data: &Dataset) -> Result<f64> {
        self.check_data(data, "data")?;
        let x = tab_input(&data.input, self.device());
        let (n, bs) = (data.len(), self.config.resolved_eval_batch_size() as i64);
        let (mut sum, mut seen) = (0.0, 0i64);
        tch::no_grad(|| {
            for start in (0..n).step_by(bs as usize) {
                let rows = bs.min(n - start);
                if rows < 2 {
                    continue;
                }
                let batch = x.map(|t| t.narrow(0, start, rows));
                let loss = self.model.loss(self.model.forward(&batch, false));
                sum += loss.double_value(&[]) * rows as f64;
                seen += rows;
            }
        });
        ensure!(
            seen > 0,
            input("data"),
            "needs at least two rows to evaluate the pretraining loss"
        );
        let mean = sum / seen as f64;
        ensure!(
            mean.is_finite(),
            WideDeepError::NonFiniteResult {
                what: format!("{} evaluation loss", M::NAME),
                value: mean,
                reason: "the model overflowed on the evaluated rows".into(),
            }
        );
        Ok(mean)
    }

    /// Checks that `data` has at least two rows and the encoder's columns; errors name the
    /// data set (`val.cat`).
    fn check_data(&self, data: &Dataset, name: &str) -> Result<()> {
        ensure!(
            data.len() >= 2,
            input(name),
            "pretraining needs at least two rows, got {}",
            data.len()
        );
        ensure!(
            !data.is_lazy(),
            input(name),
            "pretraining reads tabular columns only; lazy image columns are not supported"
        );
        self.model
            .check_input(&tab_input(&data.input, Device::Cpu))
            .map_err(|e| match e {
                WideDeepError::InputMismatch { input, reason } => WideDeepError::InputMismatch {
                    input: format!("{name}.{input}"),
                    reason,
                },
                e => e,
            })
    }

    /// Saves everything needed to continue the run to one `.safetensors` file, written
    /// atomically: the weights (`model/<var>`), the optimizer's buffers (`optim/<var>/<buf>`),
    /// and as JSON the route's configuration, the loop settings, the history and the
    /// optimizer's step counts.
    pub fn save_checkpoint(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut tensors: Vec<(String, Tensor)> = self
            .model
            .var_store()
            .variables()
            .into_iter()
            .map(|(k, t)| (format!("model/{k}"), t.detach().to_device(Device::Cpu)))
            .collect();
        let (optimizer, bufs) = self.optimizers.state();
        tensors.extend(bufs.into_iter().map(|(k, t)| (format!("optim/{k}"), t)));
        let meta = CheckpointMeta {
            format: CHECKPOINT_FORMAT.into(),
            version: CHECKPOINT_VERSION,
            route: M::NAME.into(),
            model: self.model.config_json()?,
            config: self.config.clone(),
            history: self.history.clone(),
            optimizer,
        };
        let json = serde_json::to_vec(&meta)?;
        tensors.push((META_KEY.into(), Tensor::from_slice(&json)));
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        write_atomic(path.as_ref(), |tmp| {
            Tensor::write_safetensors(&tensors, tmp).map_err(Into::into)
        })
    }

    /// Restores a checkpoint written by [`Pretrainer::save_checkpoint`] of the same route,
    /// model configuration and seed: weights, optimizer state and history. The next
    /// [`Pretrainer::fit`] on the same data continues the run. A missing file is an
    /// [`WideDeepError::Io`] error, a corrupt or mismatching one
    /// [`WideDeepError::BadCheckpoint`], both naming the file.
    pub fn resume(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bad = |reason: String| bad_checkpoint(path, reason);
        let parts = CheckpointTensors::read(path, false)?;
        let meta: CheckpointMeta = parts.meta(path, "pretraining")?;
        let (weights, optim) = (parts.model, parts.optim);
        ensure!(
            meta.format == CHECKPOINT_FORMAT && meta.version == CHECKPOINT_VERSION,
            bad(format!(
                "format {} v{}, expected {CHECKPOINT_FORMAT} v{CHECKPOINT_VERSION}",
                meta.format, meta.version
            ))
        );
        ensure!(
            meta.route == M::NAME,
            bad(format!(
                "a `{}` checkpoint, this is `{}`",
                meta.route,
                M::NAME
            ))
        );
        ensure!(
            meta.model == self.model.config_json()?,
            bad(format!(
                "written for another `{}` configuration than this one",
                M::NAME
            ))
        );
        ensure!(
            meta.config.seed == self.config.seed,
            bad(format!(
                "run with seed {}, this configuration has seed {}",
                meta.config.seed, self.config.seed
            ))
        );
        let vars = self.model.var_store().variables();
        ensure!(
            vars.len() == weights.len(),
            bad(format!(
                "holds {} variables, the model has {}",
                weights.len(),
                vars.len()
            ))
        );
        for (k, v) in &vars {
            let Some(t) = weights.get(k) else {
                bail!(bad(format!("no weights for variable `{k}`")));
            };
            ensure!(
                t.size() == v.size(),
                bad(format!(
                    "`{k}` has shape {:?}, the model {:?}",
                    t.size(),
                    v.size()
                ))
            );
        }
        let mut optimizers = Self::build_optimizers(&self.model, &self.config);
        optimizers
            .load_state(&meta.optimizer, &optim)
            .map_err(|e| bad(e.to_string()))?;
        tch::no_grad(|| {
            for (k, v) in &vars {
                v.shallow_clone()
                    .copy_(&weights[k].to_device(v.device()).to_kind(v.kind()));
            }
        });
        self.optimizers = optimizers;
        self.history = meta.history;
        Ok(())
    }

    /// Copies the pretrained encoder into `model`'s `deeptabular` component (batch-norm
    /// statistics included). `model` must have been built from a [`WideDeepConfig`] whose
    /// `deeptabular` is [`PretrainModel::encoder_config`]; otherwise an
    /// [`WideDeepError::InvalidConfig`] naming `deeptabular`.
    pub fn transfer_to(&self, model: &mut WideDeep) -> Result<()> {
        let bad = |reason: String| WideDeepError::config("deeptabular", reason);
        let wanted = self.model.encoder_config();
        match model.config().and_then(|c| c.deeptabular.as_ref()) {
            Some(tab) if tab == wanted => {}
            Some(tab) => bail!(bad(format!(
                "the model's `{}` configuration differs from the pretrained `{}` encoder's",
                tab.name(),
                wanted.name()
            ))),
            None => bail!(bad(
                "the model has no deeptabular component built from a configuration".into()
            )),
        }
        let head = format!("{ENCODER_PREFIX}.");
        let src: BTreeMap<String, Tensor> = self.encoder_weights().into_iter().collect();
        let dst = model.var_store_mut().variables();
        let own = dst.keys().filter(|k| k.starts_with(&head)).count();
        ensure!(
            own == src.len(),
            bad(format!(
                "the model's deeptabular component has {own} variables, the encoder {}",
                src.len()
            ))
        );
        tch::no_grad(|| -> Result<()> {
            for (k, t) in &src {
                let Some(d) = dst.get(k) else {
                    bail!(bad(format!("the model has no variable `{k}`")));
                };
                ensure!(
                    d.size() == t.size(),
                    bad(format!(
                        "`{k}` has shape {:?} in the model and {:?} in the encoder",
                        d.size(),
                        t.size()
                    ))
                );
                d.shallow_clone()
                    .copy_(&t.to_device(d.device()).to_kind(d.kind()));
            }
            Ok(())
        })
    }

    /// Builds the [`WideDeep`] of `config` on `device` and copies the pretrained encoder into
    /// its `deeptabular` component (see [`Pretrainer::transfer_to`]); the rest of the model
    /// (wide part, other components, prediction layer) starts from `config.seed` as usual.
    pub fn wide_deep(&self, config: &WideDeepConfig, device: Device) -> Result<WideDeep> {
        let mut model = WideDeep::new(config, device)?;
        self.transfer_to(&mut model)?;
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loop_settings_round_trip_through_json() {
        let cfg = PretrainConfig::new()
            .eval_batch_size(256)
            .precision(Precision::Bf16)
            .seed(3);
        let json = serde_json::to_value(&cfg).unwrap();
        assert_eq!(json["precision"], "bf16");
        assert_eq!(json["eval_batch_size"], 256);
        let back: PretrainConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, cfg);
        assert_eq!(back.resolved_eval_batch_size(), 256);
        // settings written before these fields existed read with their defaults
        let old: PretrainConfig =
            serde_json::from_str(r#"{"epochs": 2, "batch_size": 64, "seed": 5}"#).unwrap();
        assert_eq!(old, PretrainConfig::new().epochs(2).batch_size(64).seed(5));
        assert_eq!(
            (old.precision, old.eval_batch_size),
            (Precision::Fp32, None)
        );
        assert_eq!(old.resolved_eval_batch_size(), 64);
    }

    #[test]
    fn bad_loop_settings_name_the_field() {
        for (cfg, field) in [
            (PretrainConfig::new().epochs(0), "pretrain.epochs"),
            (PretrainConfig::new().batch_size(1), "pretrain.batch_size"),
            (
                PretrainConfig::new().eval_batch_size(1),
                "pretrain.eval_batch_size",
            ),
            (PretrainConfig::new().lr(f64::NAN), "pretrain.lr"),
            (
                PretrainConfig::new().weight_decay(-0.1),
                "pretrain.weight_decay",
            ),
        ] {
            match cfg.validate() {
                Err(WideDeepError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
                r => panic!("expected InvalidConfig for {field}, got {r:?}"),
            }
        }
        PretrainConfig::new().eval_batch_size(2).validate().unwrap();
    }
}

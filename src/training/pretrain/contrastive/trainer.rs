//! The pretraining loop, its checkpoints, and the hand-over of the pretrained encoder to a
//! `WideDeep`.
use super::config::ContrastiveDenoisingConfig;
use super::model::CdModel;
use crate::error::{Result, WideDeepError};
use crate::macros::{bail, ensure};
use crate::models::tabular::TabModelConfig;
use crate::models::{ModelInput, WideDeep, WideDeepConfig};
use crate::training::callbacks::{write_atomic, History};
use crate::training::optim::{OptimizerStateMeta, Optimizers, ParamGroup};
use crate::training::trainer::{finish_bar, progress_bar, torch_epoch_seed};
use crate::training::Dataset;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{nn, Device, Tensor};

const CHECKPOINT_FORMAT: &str = "widedeep-contrastive-denoising-checkpoint";
const CHECKPOINT_VERSION: u32 = 1;
const META_KEY: &str = "__meta__";
/// Prefix of the encoder's variables: the path a `WideDeep` gives its tabular component.
const ENCODER: &str = "deeptabular";

/// The JSON part of a pretraining checkpoint.
#[derive(Serialize, Deserialize)]
struct CheckpointMeta {
    format: String,
    version: u32,
    model: TabModelConfig,
    config: ContrastiveDenoisingConfig,
    history: History,
    optimizer: Option<OptimizerStateMeta>,
}

/// Contrastive–denoising self-supervised pretraining of an attention model (the reference's
/// `ContrastiveDenoisingTrainer`; SAINT, Somepalli et al. 2021, Figure 1).
///
/// Each batch goes through the model twice: clean, and corrupted by CutMix on the input rows
/// and MixUp on their column tokens. The loss is InfoNCE between the (projected) encodings of
/// the two views, the reconstruction of the clean columns from the corrupted encoding
/// (cross-entropy per categorical column, squared error per continuous column), or both.
/// Labels are not used. Supported models: TabTransformer (with `embed_continuous`), SAINT,
/// FT-Transformer, TabFastFormer, ContextAttentionMlp, SelfAttentionMlp, and TabPerceiver with
/// the contrastive loss only (its latents do not map back to columns; the reference rejects
/// TabPerceiver altogether).
///
/// The encoder's variables are named as in a `WideDeep` whose `deeptabular` is the same
/// configuration, so [`ContrastiveDenoisingTrainer::transfer_to`] hands them over for
/// fine-tuning with the [`Trainer`](crate::training::Trainer).
///
/// Differences from the reference: the rows are shuffled every epoch and the run is seeded;
/// after a validation pass training continues in training mode (the reference stays in
/// evaluation mode after its first validation, which switches the corruptions off); the
/// denoising classes of a column are its indices including 0 (unseen/null), and with one
/// shared categorical MLP each column's classes are its own (the reference maps every column
/// onto the same first classes).
#[derive(Debug)]
pub struct ContrastiveDenoisingTrainer {
    vs: nn::VarStore,
    model: CdModel,
    tab: TabModelConfig,
    cfg: ContrastiveDenoisingConfig,
    optimizers: Option<Optimizers>,
    history: History,
}

/// The categorical and continuous inputs of `data` on `device` (the rest is not used).
fn tab_input(data: &Dataset, device: Device) -> ModelInput {
    ModelInput {
        cat: data.input.cat.as_ref().map(|t| t.to_device(device)),
        cont: data.input.cont.as_ref().map(|t| t.to_device(device)),
        ..Default::default()
    }
}

/// Rows `idx` of `input`.
///
/// # Shapes
/// - `idx`: `[n]` i64; every tensor of the result has `n` rows
fn rows(input: &ModelInput, idx: &Tensor) -> ModelInput {
    input.map(|t| t.index_select(0, idx))
}

impl ContrastiveDenoisingTrainer {
    /// Builds the encoder of `model` and the pretraining heads on `device`, seeded with
    /// `config.seed`. Errors name the field: an unsupported model
    /// (`contrastive_denoising.model`), a projection head whose input width is not the
    /// encoder's token width, the denoising loss with TabPerceiver, any invalid setting.
    pub fn new(
        model: impl Into<TabModelConfig>,
        config: ContrastiveDenoisingConfig,
        device: Device,
    ) -> Result<Self> {
        let tab = model.into();
        config.validate()?;
        crate::device::keep_freed_host_memory();
        let vs = nn::VarStore::new(device);
        let model = {
            let _rng = crate::torch_rng_lock();
            tch::manual_seed(config.seed as i64);
            CdModel::new(&vs.root(), &tab, &config)?
        };
        Ok(Self {
            vs,
            model,
            tab,
            cfg: config,
            optimizers: None,
            history: History::default(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &ContrastiveDenoisingConfig {
        &self.cfg
    }

    /// Sets the epochs the next [`ContrastiveDenoisingTrainer::pretrain`] runs.
    pub fn set_epochs(&mut self, epochs: usize) {
        self.cfg.epochs = epochs;
    }

    /// The configuration of the pretrained model (what a `WideDeepConfig::deeptabular` needs
    /// to receive the weights).
    pub fn model_config(&self) -> &TabModelConfig {
        &self.tab
    }

    /// Per-epoch `loss` (mean of the batch losses) and, with validation data, `val_loss`.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The device of the weights.
    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// The encoder's weights as `(name, tensor)` pairs, named as in a `WideDeep`
    /// (`deeptabular.…`), sorted by name.
    ///
    /// # Shapes
    /// - each tensor has its variable's shape
    pub fn encoder_weights(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENCODER}.")))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Checks that `data` carries the columns the encoder reads; `what` names the data set.
    fn check_data(&self, data: &Dataset, what: &str) -> Result<()> {
        ensure!(
            !data.is_empty(),
            input(what.to_string()),
            "no rows to pretrain on"
        );
        self.model
            .encoder
            .check_input(&tab_input(data, Device::Cpu))
            .map_err(|e| match e {
                WideDeepError::InputMismatch { input, reason } => WideDeepError::InputMismatch {
                    input: format!("{what}.{input}"),
                    reason,
                },
                e => e,
            })
    }

    /// A fresh optimizer over every trainable variable (encoder and heads).
    fn new_optimizers(&self) -> Optimizers {
        let mut params: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        Optimizers::new(vec![ParamGroup::new(
            "pretrain",
            self.cfg.optimizer,
            self.cfg.lr,
            self.cfg.weight_decay,
            params,
        )])
    }

    /// Pretrains for `config.epochs` more epochs on the rows of `train` (targets, if any, are
    /// ignored), recording the loss on `val` after every epoch when given. Epoch `e` shuffles
    /// with a generator seeded from `(seed, e)` and re-seeds libtorch (dropout, CutMix, MixUp)
    /// from `(seed, e)`, so a run resumed from a checkpoint continues exactly as the
    /// uninterrupted one (on the CPU). Returns the history.
    pub fn pretrain(&mut self, train: &Dataset, val: Option<&Dataset>) -> Result<&History> {
        self.check_data(train, "train")?;
        if let Some(v) = val {
            self.check_data(v, "val")?;
        }
        let device = self.device();
        let x = tab_input(train, device);
        let xv = val.map(|v| tab_input(v, device));
        let n = train.len();
        let bs = self.cfg.batch_size as i64;
        let n_batches = (n + bs - 1) / bs;
        let mut optimizers = self
            .optimizers
            .take()
            .unwrap_or_else(|| self.new_optimizers());
        let _rng = crate::torch_rng_lock();
        let first = self.history.len();
        let last = first + self.cfg.epochs;
        let result = (|| -> Result<()> {
            for epoch in first..last {
                tch::manual_seed(torch_epoch_seed(self.cfg.seed, epoch));
                let mut order: Vec<i64> = (0..n).collect();
                if self.cfg.shuffle {
                    let mut rng = ChaCha8Rng::seed_from_u64(self.cfg.seed);
                    rng.set_stream(epoch as u64 + 1);
                    order.shuffle(&mut rng);
                }
                let order = Tensor::from_slice(&order).to_device(device);
                let bar = progress_bar(self.cfg.verbose, n_batches as usize, epoch, last);
                let mut sum = 0.0;
                for b in 0..n_batches {
                    let len = bs.min(n - b * bs);
                    let batch = rows(&x, &order.narrow(0, b * bs, len));
                    optimizers.zero_grad();
                    let loss = self.model.loss(&batch, true);
                    let lv = loss.double_value(&[]);
                    if !lv.is_finite() {
                        bar.abandon();
                        bail!(WideDeepError::NonFiniteLoss {
                            epoch: epoch + 1,
                            batch: b as usize + 1,
                            value: lv,
                        });
                    }
                    loss.backward();
                    optimizers.step();
                    sum += lv;
                    bar.inc(1);
                    if b % 20 == 0 {
                        bar.set_message(format!("loss {:.4}", sum / (b + 1) as f64));
                    }
                }
                let mut record = BTreeMap::new();
                record.insert("loss".to_string(), sum / n_batches as f64);
                if let Some(xv) = &xv {
                    record.insert("val_loss".to_string(), self.eval_loss(xv)?);
                }
                let summary = record
                    .iter()
                    .map(|(k, v)| format!("{k} {v:.4}"))
                    .collect::<Vec<_>>()
                    .join("  ");
                finish_bar(&bar, self.cfg.verbose, epoch, last, &summary);
                self.history.epochs.push(record);
            }
            Ok(())
        })();
        self.optimizers = Some(optimizers);
        result?;
        Ok(&self.history)
    }

    /// Mean batch loss in evaluation mode (no corruption: the corrupted branch is the clean
    /// one, as in the reference).
    fn eval_loss(&self, x: &ModelInput) -> Result<f64> {
        let n = x.batch_size();
        let bs = self.cfg.eval_batch_size as i64;
        let mut sum = 0.0;
        let mut k = 0;
        tch::no_grad(|| {
            for s in (0..n).step_by(bs as usize) {
                let len = bs.min(n - s);
                let batch = x.map(|t| t.narrow(0, s, len));
                sum += self.model.loss(&batch, false).double_value(&[]);
                k += 1;
            }
        });
        let v = sum / k.max(1) as f64;
        ensure!(
            v.is_finite(),
            WideDeepError::NonFiniteResult {
                what: "validation loss".into(),
                value: v,
                reason: "the model overflowed on the validation rows".into(),
            }
        );
        Ok(v)
    }

    /// The mean pretraining loss of `data` in evaluation mode (batches of `eval_batch_size`).
    pub fn evaluate(&self, data: &Dataset) -> Result<f64> {
        self.check_data(data, "data")?;
        self.eval_loss(&tab_input(data, self.device()))
    }

    /// Saves everything needed to continue pretraining to one `.safetensors` file, written
    /// atomically: the weights (`model/<var>`), the optimizer's buffers (`optim/<var>/<buf>`)
    /// and as JSON the model configuration, the settings, the history and the step counts.
    pub fn save_checkpoint(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut tensors: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .map(|(k, t)| {
                (
                    format!("model/{k}"),
                    t.detach().to_device(Device::Cpu).contiguous(),
                )
            })
            .collect();
        let optimizer = self.optimizers.as_ref().map(|o| {
            let (meta, bufs) = o.state();
            tensors.extend(bufs.into_iter().map(|(k, t)| (format!("optim/{k}"), t)));
            meta
        });
        let meta = CheckpointMeta {
            format: CHECKPOINT_FORMAT.into(),
            version: CHECKPOINT_VERSION,
            model: self.tab.clone(),
            config: self.cfg.clone(),
            history: self.history.clone(),
            optimizer,
        };
        tensors.push((
            META_KEY.into(),
            Tensor::from_slice(&serde_json::to_vec(&meta)?),
        ));
        write_atomic(path.as_ref(), |tmp| {
            Tensor::write_safetensors(&tensors, tmp).map_err(Into::into)
        })
    }

    /// Restores a checkpoint of [`ContrastiveDenoisingTrainer::save_checkpoint`] into this
    /// trainer, built with the same model configuration and settings (the epochs, verbosity
    /// and evaluation batch size may differ). The next `pretrain` continues the run. A missing
    /// file is an `Io` error, a corrupt or mismatching one `BadCheckpoint`, both naming it.
    pub fn resume(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bad = |reason: String| WideDeepError::BadCheckpoint {
            path: path.to_path_buf(),
            reason,
        };
        std::fs::metadata(path).map_err(|e| WideDeepError::io(path, e))?;
        let tensors = Tensor::read_safetensors(path).map_err(|e| bad(e.to_string()))?;
        let mut model = BTreeMap::new();
        let mut optim = Vec::new();
        let mut meta = None;
        for (k, t) in tensors {
            if k == META_KEY {
                meta = Some(t);
            } else if let Some(n) = k.strip_prefix("model/") {
                model.insert(n.to_string(), t);
            } else if let Some(n) = k.strip_prefix("optim/") {
                optim.push((n.to_string(), t));
            } else {
                bail!(bad(format!("unexpected tensor `{k}`")));
            }
        }
        let meta = meta.ok_or_else(|| bad("no metadata; not a pretraining checkpoint".into()))?;
        let bytes = Vec::<u8>::try_from(&meta).map_err(|e| bad(e.to_string()))?;
        let meta: CheckpointMeta =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("bad metadata: {e}")))?;
        ensure!(
            meta.format == CHECKPOINT_FORMAT && meta.version == CHECKPOINT_VERSION,
            bad(format!(
                "format {} v{}, expected {CHECKPOINT_FORMAT} v{CHECKPOINT_VERSION}",
                meta.format, meta.version
            ))
        );
        ensure!(
            meta.model == self.tab,
            bad("it pretrained a different model configuration".into())
        );
        let same = |c: &ContrastiveDenoisingConfig| ContrastiveDenoisingConfig {
            epochs: 0,
            verbose: 0,
            eval_batch_size: 1,
            ..c.clone()
        };
        ensure!(
            same(&meta.config) == same(&self.cfg),
            bad("it was pretrained with different settings".into())
        );
        let vars = self.vs.variables();
        for (k, v) in &vars {
            let t = model
                .get(k)
                .ok_or_else(|| bad(format!("no weights for `{k}`")))?;
            ensure!(
                t.size() == v.size(),
                bad(format!(
                    "`{k}` has shape {:?}, the model {:?}",
                    t.size(),
                    v.size()
                ))
            );
        }
        if let Some(extra) = model.keys().find(|k| !vars.contains_key(*k)) {
            bail!(bad(format!("the model has no variable `{extra}`")));
        }
        let optimizers = match &meta.optimizer {
            Some(m) => {
                let mut o = self.new_optimizers();
                o.load_state(m, &optim).map_err(|e| bad(e.to_string()))?;
                Some(o)
            }
            None => None,
        };
        tch::no_grad(|| {
            for (k, v) in &vars {
                v.shallow_clone()
                    .copy_(&model[k].to_device(v.device()).to_kind(v.kind()));
            }
        });
        self.optimizers = optimizers;
        self.history = meta.history;
        Ok(())
    }

    /// Copies the pretrained encoder into `model`'s `deeptabular` component, which must have
    /// been built from the same configuration ([`ContrastiveDenoisingTrainer::model_config`]);
    /// the MLP on top of the encoder (if any) and the rest of `model` keep their weights.
    /// Returns the number of variables copied. A mismatch is an `InvalidConfig` error on
    /// `deeptabular`.
    pub fn transfer_to(&self, model: &mut WideDeep) -> Result<usize> {
        let field = "deeptabular";
        if let Some(c) = model.config() {
            ensure!(
                c.deeptabular.as_ref() == Some(&self.tab),
                config(field),
                "the model's deeptabular configuration is not the pretrained one ({})",
                self.tab.name()
            );
        }
        let src: BTreeMap<String, Tensor> = self.encoder_weights().into_iter().collect();
        let dst = model.var_store().variables();
        let prefix = format!("{ENCODER}.");
        let mut n = 0;
        tch::no_grad(|| -> Result<()> {
            for (name, d) in dst.iter().filter(|(k, _)| k.starts_with(&prefix)) {
                let Some(s) = src.get(name) else {
                    continue;
                };
                ensure!(
                    s.size() == d.size(),
                    config(field),
                    "`{name}` has shape {:?} in the model and {:?} pretrained",
                    d.size(),
                    s.size()
                );
                d.shallow_clone()
                    .copy_(&s.to_device(d.device()).to_kind(d.kind()));
                n += 1;
            }
            Ok(())
        })?;
        ensure!(
            n == src.len(),
            config(field),
            "the model has {n} of the {} pretrained encoder variables",
            src.len()
        );
        Ok(n)
    }

    /// Builds the `WideDeep` of `config` (whose `deeptabular` is set to the pretrained model's
    /// configuration) on this trainer's device and copies the pretrained encoder into it.
    pub fn widedeep(&self, config: WideDeepConfig) -> Result<WideDeep> {
        let config = config.deeptabular(self.tab.clone());
        let mut m = WideDeep::new(&config, self.device())?;
        self.transfer_to(&mut m)?;
        Ok(m)
    }
}

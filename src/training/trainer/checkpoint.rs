//! Trainer checkpoints: [`Trainer::save_checkpoint`] writes everything needed to continue
//! training to one `.safetensors` file, [`Trainer::resume`] restores it.
use super::optimization::{build_optimizers, Optimization};
use super::{Trainer, TrainerConfig};
use crate::error::{Result, WideDeepError};
use crate::macros::{bail, ensure};
use crate::training::callbacks::{weights_cpu, write_atomic, EarlyStoppingState, History};
use crate::training::optim::OptimizerStateMeta;
use crate::training::schedulers::Scheduler;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tch::Tensor;

/// Format tag of checkpoint files.
const CHECKPOINT_FORMAT: &str = "widedeep-trainer-checkpoint";
const CHECKPOINT_VERSION: u32 = 1;
/// The name of the JSON metadata tensor in every checkpoint file (trainer and pretraining).
pub(crate) const META_KEY: &str = "__meta__";

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

/// The tensors of a checkpoint file, by prefix.
#[derive(Default)]
pub(crate) struct CheckpointTensors {
    /// `model/<var>`, by variable name.
    pub(crate) model: BTreeMap<String, Tensor>,
    /// `optim/<var>/<buffer>`.
    pub(crate) optim: Vec<(String, Tensor)>,
    /// `es_best/<var>`: early stopping's best weights.
    pub(crate) best: Vec<(String, Tensor)>,
    /// The JSON metadata as a `u8` tensor.
    meta: Option<Tensor>,
}

impl CheckpointTensors {
    /// Reads the checkpoint file `path` and sorts its tensors by prefix (`es_best/` only
    /// `with_best`). A missing file is a [`WideDeepError::Io`] error; an unreadable one, or one
    /// holding a tensor of another name, a [`WideDeepError::BadCheckpoint`] naming it.
    pub(crate) fn read(path: &Path, with_best: bool) -> Result<Self> {
        let bad = |reason: String| bad_checkpoint(path, reason);
        std::fs::metadata(path).map_err(|e| WideDeepError::io(path, e))?;
        let tensors = Tensor::read_safetensors(path).map_err(|e| bad(e.to_string()))?;
        let mut parts = Self::default();
        for (k, t) in tensors {
            if k == META_KEY {
                parts.meta = Some(t);
            } else if let Some(n) = k.strip_prefix("model/") {
                parts.model.insert(n.to_string(), t);
            } else if let Some(n) = k.strip_prefix("optim/") {
                parts.optim.push((n.to_string(), t));
            } else if let Some(n) = k.strip_prefix("es_best/").filter(|_| with_best) {
                parts.best.push((n.to_string(), t));
            } else {
                bail!(bad(format!("unexpected tensor `{k}`")));
            }
        }
        Ok(parts)
    }

    /// The JSON metadata of the file `path`, decoded; `what` names the kind of checkpoint
    /// expected (`trainer`) in the [`WideDeepError::BadCheckpoint`] of a file without it.
    pub(crate) fn meta<T: serde::de::DeserializeOwned>(
        &self,
        path: &Path,
        what: &str,
    ) -> Result<T> {
        let bad = |reason: String| bad_checkpoint(path, reason);
        let meta = self
            .meta
            .as_ref()
            .ok_or_else(|| bad(format!("no metadata; not a {what} checkpoint")))?;
        let bytes = Vec::<u8>::try_from(meta).map_err(|e| bad(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("bad metadata: {e}")))
    }
}

impl Trainer {
    /// Saves everything needed to continue training to one `.safetensors` file, written
    /// atomically: model weights (`model/<var>`), optimizer buffers (`optim/<var>/<buffer>`),
    /// early stopping's best weights, and as JSON the epoch, history, step counts, learning
    /// rates, scheduler and early-stopping states, seed and configuration.
    ///
    /// Random state: the shuffling generator's position is saved; libtorch's generator state
    /// cannot be read through tch, so every epoch re-seeds it from `(seed, epoch)` instead. With
    /// both, a resumed CPU run reproduces the uninterrupted one exactly.
    pub fn save_checkpoint(&self, path: impl AsRef<Path>) -> Result<()> {
        self.write_checkpoint(self.optimization.as_ref(), path.as_ref())
    }

    /// [`Trainer::save_checkpoint`] with the optimizers and schedules `optimization` (those of
    /// a running `fit`, which holds them).
    pub(super) fn write_checkpoint(
        &self,
        optimization: Option<&Optimization>,
        path: &Path,
    ) -> Result<()> {
        let mut tensors: Vec<(String, Tensor)> = weights_cpu(&self.model)
            .into_iter()
            .map(|(k, t)| (format!("model/{k}"), t))
            .collect();
        let optimizer = optimization.map(|o| {
            let (meta, bufs) = o.optimizers.state();
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
            schedulers: optimization
                .iter()
                .flat_map(|o| &o.schedulers)
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
        let bad = |reason: String| bad_checkpoint(path, reason);
        let parts = CheckpointTensors::read(path, true)?;
        let meta: CheckpointMeta = parts.meta(path, "trainer")?;
        ensure!(
            meta.format == CHECKPOINT_FORMAT && meta.version == CHECKPOINT_VERSION,
            bad(format!(
                "format {} v{}, expected {CHECKPOINT_FORMAT} v{CHECKPOINT_VERSION}",
                meta.format, meta.version
            ))
        );
        ensure!(
            meta.seed == self.config.seed,
            bad(format!(
                "trained with seed {}, this trainer's config has seed {}",
                meta.seed, self.config.seed
            ))
        );
        self.check_weights(&parts.model, path)?;
        let optimization = match &meta.optimizer {
            Some(opt_meta) => {
                Some(self.restored_optimization(&meta, opt_meta, &parts.optim, path)?)
            }
            None => {
                ensure!(
                    parts.optim.is_empty(),
                    bad("optimizer buffers without optimizer state".into())
                );
                None
            }
        };
        // everything checked: apply
        let vars = self.model.var_store().variables();
        tch::no_grad(|| {
            for (k, v) in &vars {
                let t = &parts.model[k];
                v.shallow_clone()
                    .copy_(&t.to_device(v.device()).to_kind(v.kind()));
            }
        });
        self.optimization = optimization;
        self.history = meta.history;
        self.es_state = meta.early_stopping;
        self.best_weights = if meta.has_best_weights {
            let device = self.model.device();
            Some(
                parts
                    .best
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

    /// Checks that `weights` holds every model variable with its shape, and nothing else.
    fn check_weights(&self, weights: &BTreeMap<String, Tensor>, path: &Path) -> Result<()> {
        let vars = self.model.var_store().variables();
        ensure!(
            vars.len() == weights.len(),
            bad_checkpoint(
                path,
                format!(
                    "holds {} model variables, the model has {}",
                    weights.len(),
                    vars.len()
                )
            )
        );
        for (k, v) in &vars {
            let Some(t) = weights.get(k) else {
                bail!(bad_checkpoint(
                    path,
                    format!("no weights for model variable `{k}`")
                ));
            };
            ensure!(
                t.size() == v.size(),
                bad_checkpoint(
                    path,
                    format!("`{k}` has shape {:?}, the model {:?}", t.size(), v.size())
                )
            );
        }
        Ok(())
    }

    /// The optimizers with the saved state and the saved schedules, which must be those of
    /// the configuration.
    fn restored_optimization(
        &self,
        meta: &CheckpointMeta,
        opt_meta: &OptimizerStateMeta,
        buffers: &[(String, Tensor)],
        path: &Path,
    ) -> Result<Optimization> {
        let mut optimizers = build_optimizers(&self.model, &self.config);
        optimizers
            .load_state(opt_meta, buffers)
            .map_err(|e| bad_checkpoint(path, e.to_string()))?;
        let mut schedulers = BTreeMap::new();
        for g in optimizers.groups() {
            let s = self.config.group_settings(g.name());
            match (s.scheduler, meta.schedulers.get(g.name())) {
                (None, None) => {}
                (Some((field, cfg)), Some(run)) if run.config() == &cfg => {
                    schedulers.insert(g.name().to_string(), (field, run.clone()));
                }
                (configured, _) => {
                    let field = configured.map_or_else(|| "lr_scheduler".to_string(), |c| c.0);
                    bail!(bad_checkpoint(
                        path,
                        format!(
                            "the schedule of group `{}` differs from the configuration (`{field}`)",
                            g.name()
                        )
                    ));
                }
            }
        }
        Ok(Optimization::with_schedulers(optimizers, schedulers))
    }
}

/// [`WideDeepError::BadCheckpoint`] for the file `path`.
pub(crate) fn bad_checkpoint(path: &Path, reason: String) -> WideDeepError {
    WideDeepError::BadCheckpoint {
        path: path.to_path_buf(),
        reason,
    }
}

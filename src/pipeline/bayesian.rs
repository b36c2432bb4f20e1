//! [`BayesianPipeline`]: fitted preprocessors plus a trained [`BayesianTrainer`]; predicts
//! from DataFrames with sampled networks and saves to (and loads from) one directory, written
//! atomically like a [`Pipeline`](super::Pipeline) (`pipeline.json` with `"kind":
//! "bayesian"`, `model.safetensors`, `history.json`).
use super::{
    read_manifest, save_atomically, write_json, write_manifest, Checksums, Preprocessors,
    FORMAT_VERSION, HISTORY, MANIFEST, WEIGHTS,
};
use crate::error::{Result, WideDeepError};
use crate::macros::bail;
use crate::models::bayesian::{BayesianModel, BayesianModelConfig};
use crate::training::{BayesianTrainer, BayesianTrainerConfig, History, Metric, Uncertainty};
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Device, Tensor};

/// The `kind` of a Bayesian pipeline's manifest.
pub(crate) const KIND: &str = "bayesian";

#[derive(Serialize, Deserialize)]
struct BayesianManifest {
    format_version: u32,
    widedeep_version: String,
    kind: String,
    preprocessors: Preprocessors,
    model: BayesianModelConfig,
    trainer: BayesianTrainerConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checksums: Option<Checksums>,
}

/// Preprocessors plus a trained Bayesian model: DataFrame in, predictions with their spread
/// out. Every prediction takes `n_samples`, the number of networks drawn from the posterior
/// (≥ 1; see [`BayesianTrainer::predict_uncertainty`]).
#[derive(Debug)]
pub struct BayesianPipeline {
    /// The fitted preprocessors.
    pub preprocessors: Preprocessors,
    /// The trained model with its settings and history.
    pub trainer: BayesianTrainer,
}

impl BayesianPipeline {
    /// Bundles fitted preprocessors and a trainer (usually after `fit`).
    pub fn new(preprocessors: Preprocessors, trainer: BayesianTrainer) -> Self {
        Self {
            preprocessors,
            trainer,
        }
    }

    /// Predictive mean and per-row spread over `n_samples` sampled networks for the rows of
    /// `df`. Regression values (mean and spread) are in the target's units when the target
    /// encoder scales them.
    ///
    /// # Shapes
    /// - returns `mean` and `std` `[N, k]` f32 and `class` `[N]` i64 (see [`Uncertainty`])
    pub fn predict_uncertainty(&self, df: &DataFrame, n_samples: usize) -> Result<Uncertainty> {
        let data = self.preprocessors.transform(df)?;
        let u = self.trainer.predict_uncertainty(&data, n_samples)?;
        if !self.preprocessors.scales_targets() || u.class.is_some() {
            return Ok(u);
        }
        let objective = &self.trainer.config().objective;
        let mean = self.preprocessors.unscale(objective, &u.mean, false)?;
        let upper = self
            .preprocessors
            .unscale(objective, &(&u.mean + &u.std), false)?;
        Ok(Uncertainty {
            std: (upper - &mean).abs(),
            mean,
            class: None,
        })
    }

    /// Class indices `[N]` i64, or regression values `[N]` f32 in the target's units, from
    /// the predictive mean of `n_samples` sampled networks.
    pub fn predict(&self, df: &DataFrame, n_samples: usize) -> Result<Tensor> {
        let u = self.predict_uncertainty(df, n_samples)?;
        Ok(match u.class {
            Some(c) => c,
            None => u.mean.view([-1]),
        })
    }

    /// Class probabilities `[N, n_classes]` averaged over `n_samples` sampled networks
    /// (binary: `[1 − p, p]`); an error for regression.
    pub fn predict_proba(&self, df: &DataFrame, n_samples: usize) -> Result<Tensor> {
        self.trainer
            .predict_proba(&self.preprocessors.transform(df)?, n_samples)
    }

    /// Loss and metrics of the predictive mean of `n_samples` networks on `df`, which must
    /// hold the target column (see [`BayesianTrainer::evaluate`]; a scaled regression target
    /// is evaluated on the scaled values).
    pub fn evaluate(
        &self,
        df: &DataFrame,
        n_samples: usize,
        metrics: Option<&[Metric]>,
    ) -> Result<BTreeMap<String, f64>> {
        self.trainer
            .evaluate(&self.preprocessors.transform(df)?, n_samples, metrics)
    }

    /// The training history.
    pub fn history(&self) -> &History {
        self.trainer.history()
    }

    /// Saves everything to `dir`, atomically and with checksums, under the same rules as
    /// [`Pipeline::save`](super::Pipeline::save).
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        save_atomically(dir.as_ref(), |tmp| {
            self.trainer.model().var_store().save(tmp.join(WEIGHTS))?;
            let manifest = BayesianManifest {
                format_version: FORMAT_VERSION,
                widedeep_version: env!("CARGO_PKG_VERSION").into(),
                kind: KIND.into(),
                preprocessors: self.preprocessors.clone(),
                model: self.trainer.model().config(),
                trainer: self.trainer.config().clone(),
                checksums: None,
            };
            write_manifest(tmp, manifest, |m, sums| m.checksums = Some(sums))?;
            write_json(&tmp.join(HISTORY), self.trainer.history())
        })
    }

    /// Loads a pipeline saved by [`BayesianPipeline::save`] onto `device`, with the checks of
    /// [`Pipeline::load`](super::Pipeline::load) (format version, checksums, every weight
    /// present with its shape); a directory holding a deterministic pipeline is a
    /// [`WideDeepError::BadPipeline`] saying so.
    pub fn load(dir: impl AsRef<Path>, device: Device) -> Result<Self> {
        let dir = dir.as_ref();
        let bad = |reason: String| WideDeepError::BadPipeline {
            path: dir.to_path_buf(),
            reason,
        };
        let value = read_manifest(dir)?;
        if value.get("kind").and_then(|k| k.as_str()) != Some(KIND) {
            bail!(bad(format!(
                "{MANIFEST} holds a deterministic pipeline; load it with Pipeline::load"
            )));
        }
        let manifest: BayesianManifest =
            serde_json::from_value(value).map_err(|e| bad(format!("{MANIFEST}: {e}")))?;
        let history: History = std::fs::read_to_string(dir.join(HISTORY))
            .map_err(|e| bad(format!("{HISTORY}: {e}")))
            .and_then(|t| serde_json::from_str(&t).map_err(|e| bad(format!("{HISTORY}: {e}"))))?;
        let model = BayesianModel::new(&manifest.model, device)?;
        crate::models::weights::load_var_store(model.var_store(), &dir.join(WEIGHTS))
            .map_err(|reason| bad(format!("{WEIGHTS}: {reason}")))?;
        let mut trainer = BayesianTrainer::new(model, manifest.trainer)?;
        trainer.set_history(history);
        Ok(Self {
            preprocessors: manifest.preprocessors,
            trainer,
        })
    }
}

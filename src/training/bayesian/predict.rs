//! Prediction with sampled networks: per-sample outputs, their mean and per-row spread, and
//! evaluation on the predictive mean.
//!
//! Sample `s` of a prediction is one network: libtorch's generator is re-seeded from
//! `(seed, s)` before every batch, so every batch of sample `s` sees the same weights, and the
//! result depends neither on `eval_batch_size` nor on earlier calls.
use super::BayesianTrainer;
use crate::error::Result;
use crate::macros::{bail, ensure};
use crate::models::bayesian::WeightMode;
use crate::training::trainer::check_finite_rows;
use crate::training::{Dataset, Metric, Uncertainty};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

/// libtorch's seed of prediction sample `s`.
fn sample_seed(seed: u64, s: usize) -> i64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6261_7965_7369_616e);
    rng.set_stream(s as u64);
    (rand::RngCore::next_u64(&mut rng) >> 1) as i64
}

impl BayesianTrainer {
    /// Raw outputs `[N, pred_dim]` f32 on the CPU of one pass over `data` with weights drawn by
    /// `mode` (sample `s`'s network for the sampling modes). The caller holds the RNG lock.
    fn raw_pass(&self, data: &Dataset, mode: WeightMode, s: usize) -> Result<Tensor> {
        let device = self.model.device();
        let outs = tch::no_grad(|| {
            data.batches(self.config.eval_batch_size as i64)
                .map(|batch| {
                    let batch = if batch.device() == device {
                        batch
                    } else {
                        batch.to_device(device)
                    };
                    tch::manual_seed(sample_seed(self.config.seed, s));
                    let (out, _) = self.model.forward(&batch.input, mode, false);
                    out.to_device(Device::Cpu).to_kind(Kind::Float)
                })
                .collect::<Vec<_>>()
        });
        let out = Tensor::cat(&outs, 0);
        check_finite_rows(&out)?;
        Ok(out)
    }

    /// What a sample contributes: class probabilities `[N, k]` for classification (binary
    /// `[1 − p, p]`), values `[N, 1]` for regression.
    fn per_sample(&self, raw: &Tensor) -> Result<Tensor> {
        let objective = &self.config.objective;
        if objective.is_classification() {
            objective.predict_proba(raw)
        } else {
            Ok(raw.shallow_clone())
        }
    }

    fn check_prediction(&self, data: &Dataset, n_samples: usize) -> Result<()> {
        ensure!(
            n_samples >= 1,
            config("n_samples"),
            "must be ≥ 1 (the number of sampled networks); for the posterior-mean network use \
             predict_raw_mean_weights"
        );
        ensure!(
            !data.is_empty(),
            missing(),
            "the prediction data has no rows"
        );
        self.model.check_input(&data.input)
    }

    /// The outputs of `n_samples` networks drawn from the posterior: class probabilities
    /// (binary `[1 − p, p]`) or regression values, sample `s` in row `s` (reproducible: see
    /// the module documentation). `n_samples` 0 is an error naming `n_samples`.
    ///
    /// # Shapes
    /// - returns `[n_samples, N, k]` f32 on the CPU (`k` = the class count, 1 for regression)
    pub fn predict_samples(&self, data: &Dataset, n_samples: usize) -> Result<Tensor> {
        self.check_prediction(data, n_samples)?;
        let _rng = crate::torch_rng_lock();
        let samples = (0..n_samples)
            .map(|s| self.per_sample(&self.raw_pass(data, WeightMode::Sample, s)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tensor::stack(&samples, 0))
    }

    /// The predictive mean over `n_samples` sampled networks and its per-row spread
    /// (population standard deviation over the samples), with the class of the mean for
    /// classification — the same [`Uncertainty`] as
    /// [`Trainer::predict_uncertainty`](crate::training::Trainer::predict_uncertainty).
    ///
    /// # Shapes
    /// - returns `mean` and `std` `[N, k]` f32 (probabilities, or values with `k` = 1) and
    ///   `class` `[N]` i64 (`None` for regression)
    pub fn predict_uncertainty(&self, data: &Dataset, n_samples: usize) -> Result<Uncertainty> {
        self.check_prediction(data, n_samples)?;
        let _rng = crate::torch_rng_lock();
        self.uncertainty_locked(data, n_samples)
    }

    fn uncertainty_locked(&self, data: &Dataset, n_samples: usize) -> Result<Uncertainty> {
        Uncertainty::from_passes(
            (0..n_samples).map(|s| self.per_sample(&self.raw_pass(data, WeightMode::Sample, s)?)),
            self.config.objective.is_classification(),
            self.model.pred_dim(),
        )
    }

    /// Predictions from the predictive mean of `n_samples` sampled networks: class indices
    /// (binary: mean probability > 0.5) or values.
    ///
    /// # Shapes
    /// - returns `[N]` i64 for classification, `[N]` f32 for regression
    pub fn predict(&self, data: &Dataset, n_samples: usize) -> Result<Tensor> {
        let u = self.predict_uncertainty(data, n_samples)?;
        Ok(match u.class {
            Some(c) => c,
            None => u.mean.view([-1]),
        })
    }

    /// Class probabilities averaged over `n_samples` sampled networks (binary `[1 − p, p]`);
    /// an error for regression.
    ///
    /// # Shapes
    /// - returns `[N, n_classes]` f32
    pub fn predict_proba(&self, data: &Dataset, n_samples: usize) -> Result<Tensor> {
        if !self.config.objective.is_classification() {
            bail!(
                config("objective"),
                "predict_proba needs a classification objective; use predict for regression"
            );
        }
        Ok(self.predict_uncertainty(data, n_samples)?.mean)
    }

    /// Raw outputs of the network with every weight at its posterior mean `μ` (what the
    /// reference's `predict` returns unless asked for samples): no sampling, no spread.
    ///
    /// # Shapes
    /// - returns `[N, pred_dim]` f32 on the CPU (logits for classification)
    pub fn predict_raw_mean_weights(&self, data: &Dataset) -> Result<Tensor> {
        ensure!(
            !data.is_empty(),
            missing(),
            "the prediction data has no rows"
        );
        self.model.check_input(&data.input)?;
        self.raw_pass(data, WeightMode::Mean, 0)
    }

    /// `loss` and every configured metric (or `metrics` when given) of the predictive mean of
    /// `n_samples` sampled networks on `data`, which needs a target. `loss` is the mean
    /// negative log-likelihood of the predictive mean: `−log p̄(y)` for classification,
    /// `½ (y − ȳ)²` for regression.
    pub fn evaluate(
        &self,
        data: &Dataset,
        n_samples: usize,
        metrics: Option<&[Metric]>,
    ) -> Result<BTreeMap<String, f64>> {
        self.check_data(data, "evaluation")?;
        self.check_prediction(data, n_samples)?;
        let _rng = crate::torch_rng_lock();
        self.evaluate_n(data, n_samples, metrics)
    }

    /// [`BayesianTrainer::evaluate`] for a caller that holds the RNG lock (checked data).
    pub(super) fn evaluate_n(
        &self,
        data: &Dataset,
        n_samples: usize,
        metrics: Option<&[Metric]>,
    ) -> Result<BTreeMap<String, f64>> {
        let objective = &self.config.objective;
        let u = self.uncertainty_locked(data, n_samples)?;
        let target = data
            .target
            .as_ref()
            .expect("checked")
            .to_device(Device::Cpu);
        let (loss, scores) = if objective.is_classification() {
            let labels = if u.mean.size()[1] == 2 && target.kind() != Kind::Int64 {
                target.to_kind(Kind::Int64)
            } else {
                target.shallow_clone()
            };
            let p = u
                .mean
                .gather(1, &labels.view([-1, 1]), false)
                .clamp_min(1e-12);
            let scores = if self.model.pred_dim() == 1 {
                u.mean.select(1, 1)
            } else {
                u.mean.shallow_clone()
            };
            (super::mean_f64(&p.log().neg()), scores)
        } else {
            let v = u.mean.view([-1]);
            let d = &v - target.to_kind(Kind::Float);
            (0.5 * super::mean_f64(&d.square()), v)
        };
        let mut record = BTreeMap::from([("loss".to_string(), loss)]);
        for m in metrics.unwrap_or(&self.config.metrics) {
            record.extend(m.compute_named(objective, &scores, &target)?);
        }
        Ok(record)
    }
}

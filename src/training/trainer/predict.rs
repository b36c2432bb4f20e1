//! Prediction and evaluation: forward passes in evaluation mode over a [`Dataset`] in batches,
//! and the checks that no NaN or infinity reaches the caller silently.
use super::Trainer;
use crate::error::{Result, WideDeepError};
use crate::macros::{bail, ensure};
use crate::training::{BatchSource, Dataset, Metric};
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

/// Outputs and loss of a pass over a data set.
pub(super) struct Pass {
    /// `[N, pred_dim]` f32 on the CPU.
    pub outputs: Tensor,
    /// The mean loss over the rows (0 without a loss).
    pub loss: f64,
}

/// Errors with [`WideDeepError::NonFiniteResult`] at the first non-finite loss or metric of
/// an evaluation record.
pub(crate) fn check_finite_record(record: &BTreeMap<String, f64>) -> Result<()> {
    let Some((name, value)) = record.iter().find(|(_, v)| !v.is_finite()) else {
        return Ok(());
    };
    bail!(WideDeepError::NonFiniteResult {
        what: name.clone(),
        value: *value,
        reason: if name == "loss" {
            "the loss overflows on these targets".into()
        } else {
            "the metric is undefined on this data (e.g. ROC AUC with only one class \
             present) or overflows"
                .into()
        },
    })
}

/// Errors with [`WideDeepError::NonFiniteResult`] at the first row of `out` holding a NaN or an
/// infinity.
///
/// # Shapes
/// - `out`: `[N, k]` (or any shape whose first dimension is the row)
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
    bail!(WideDeepError::NonFiniteResult {
        what: format!("the model output of row {row}"),
        value,
        reason: "the model overflows on this row's inputs (values far outside the training \
                 data?)"
            .into(),
    })
}

impl Trainer {
    /// Raw model outputs (logits for classification) in evaluation mode.
    ///
    /// A non-finite output (the model overflowing on inputs far outside its training data)
    /// is a [`WideDeepError::NonFiniteResult`] naming the first such row, never a silent NaN.
    ///
    /// # Shapes
    /// - returns `[N, pred_dim]` f32 on the CPU, `N = data.len()`
    pub fn predict_raw(&self, data: &Dataset) -> Result<Tensor> {
        self.model.check_input(&data.input)?;
        let out = self.run(data, false)?.outputs;
        check_finite_rows(&out)?;
        Ok(out)
    }

    /// Predictions (see [`Objective::predict`](crate::training::Objective::predict)).
    ///
    /// # Shapes
    /// - returns `[N]` i64 class indices for classification, `[N]` f32 values for regression,
    ///   `[N, Q]` for quantile regression, `[N, T]` f32 for a multi-target objective
    pub fn predict(&self, data: &Dataset) -> Result<Tensor> {
        Ok(self.config.objective.predict(&self.predict_raw(data)?))
    }

    /// Class probabilities (binary: `[1 − p, p]`); an error for regression objectives.
    ///
    /// # Shapes
    /// - returns `[N, n_classes]` f32 (multi-target: `[N, T, C]`, see
    ///   [`Objective::predict_proba`](crate::training::Objective::predict_proba))
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

    /// Loss and every configured metric (or `metrics` when given) on data streamed batch by
    /// batch (e.g. a [`ScanDataset`](crate::pipeline::ScanDataset)): the same record as
    /// [`Trainer::evaluate`] on the same rows in memory. Holds the outputs and targets of all
    /// rows (a few numbers per row), never their inputs.
    pub fn evaluate_stream(
        &self,
        data: &dyn BatchSource,
        metrics: Option<&[Metric]>,
    ) -> Result<BTreeMap<String, f64>> {
        let (pass, target) = self.run_stream(data, "evaluation")?;
        check_finite_rows(&pass.outputs)?;
        let mut record = BTreeMap::from([("loss".to_string(), pass.loss)]);
        let scores = self.config.objective.scores(&pass.outputs);
        for m in metrics.unwrap_or(&self.config.metrics) {
            record.extend(m.compute_named(&self.config.objective, &scores, &target)?);
        }
        check_finite_record(&record)?;
        Ok(record)
    }

    /// [`run`](Self::run) with the loss over every batch of `data` (epoch 0, in
    /// `eval_batch_size` batches); also returns the targets `[N]` (or `[N, T]`) in row order.
    pub(super) fn run_stream(&self, data: &dyn BatchSource, what: &str) -> Result<(Pass, Tensor)> {
        ensure!(data.rows() > 0, missing(), "the {what} data has no rows");
        let (mut outs, mut targets, mut loss_sum, mut rows) = (Vec::new(), Vec::new(), 0f64, 0i64);
        for batch in data.batches(0, self.config.eval_batch_size, self.config.seed)? {
            let batch = batch?;
            self.check_data(&batch, what)?;
            let pass = self.run(&batch, true)?;
            loss_sum += pass.loss * batch.len() as f64;
            rows += batch.len();
            outs.push(pass.outputs);
            targets.push(batch.target.expect("checked").to_device(tch::Device::Cpu));
        }
        ensure!(rows > 0, missing(), "the {what} data has no rows");
        let pass = Pass {
            outputs: Tensor::cat(&outs, 0),
            loss: loss_sum / rows as f64,
        };
        Ok((pass, Tensor::cat(&targets, 0)))
    }

    /// A forward pass in eval mode over `data` in batches; the loss when `with_loss`.
    pub(super) fn run(&self, data: &Dataset, with_loss: bool) -> Result<Pass> {
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

    /// Adds every configured metric of `scores` against `target` to `record`, the keys
    /// prefixed with `prefix`.
    pub(super) fn add_metrics(
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
    pub(super) fn check_data(&self, data: &Dataset, what: &str) -> Result<()> {
        ensure!(!data.is_empty(), missing(), "the {what} data has no rows");
        self.model.check_input(&data.input)?;
        let Some(target) = &data.target else {
            bail!(missing(), "the {what} data has no target");
        };
        self.config.objective.check_target(target)
    }
}

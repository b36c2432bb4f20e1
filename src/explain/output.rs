//! Evaluating the model for the explainer: batched calls, the link to the explained
//! [`Output`](super::Output), the deep components' share of the output, and the outputs' names.
use super::{Explainer, Output};
use crate::error::Result;
use crate::models::ModelInput;
use tch::{Device, Kind, Tensor};
use widedeep_preprocessing::TargetKind;

impl Explainer<'_> {
    /// Rows per model call: `batch_size`, lowered so that a call holds at most
    /// `max_batch_elements` input elements (`per_row` elements per row).
    pub(crate) fn rows_per_call(&self, per_row: usize) -> usize {
        (self.config.max_batch_elements / per_row.max(1)).clamp(1, self.config.batch_size)
    }

    /// Input elements of one row.
    pub(crate) fn elements_per_row(input: &ModelInput) -> usize {
        input
            .tensors()
            .map(|t| t.size().iter().skip(1).product::<i64>() as usize)
            .sum()
    }

    /// The explained output of raw model outputs.
    ///
    /// # Shapes
    /// - `raw`: `[n, pred_dim]`
    /// - returns `[n, k]` (k = `pred_dim`)
    pub(crate) fn link(&self, raw: &Tensor) -> Tensor {
        match self.config.output {
            Output::Raw => raw.shallow_clone(),
            Output::Probability if raw.size()[1] == 1 => raw.sigmoid(),
            Output::Probability => raw.softmax(-1, Kind::Float),
        }
    }

    /// `f` of every row of `input` in calls of at most [`Explainer::rows_per_call`] rows,
    /// without gradients, concatenated as f64 on the CPU.
    ///
    /// # Shapes
    /// - `input`: `[n, ...]` per input; `f` maps `[b, ...]` to `[b, k]`
    /// - returns `[n, k]`
    fn eval_batched(&self, input: &ModelInput, f: impl Fn(&ModelInput) -> Tensor) -> Tensor {
        let n = input.batch_size();
        let step = self.rows_per_call(Self::elements_per_row(input)) as i64;
        let mut outs = Vec::new();
        tch::no_grad(|| {
            let mut s = 0;
            while s < n {
                let len = step.min(n - s);
                let chunk = input.map(|t| t.narrow(0, s, len));
                outs.push(f(&chunk).to_kind(Kind::Double).to_device(Device::Cpu));
                s += len;
            }
        });
        Tensor::cat(&outs, 0)
    }

    /// Linked outputs of every row of `input`, in eval mode, batched.
    ///
    /// # Shapes
    /// - `input`: `[n, ...]` per input
    /// - returns `[n, k]` f64 on the CPU
    pub(crate) fn eval_linked(&self, input: &ModelInput) -> Result<Tensor> {
        Ok(self.eval_batched(input, |chunk| {
            self.link(&self.model.forward_t(chunk, false))
        }))
    }

    /// The deep components' share of the raw output (the output without the wide part and its
    /// bias).
    ///
    /// # Shapes
    /// - `input`: `[n, ...]` per input
    /// - returns `[n, pred_dim]`
    pub(crate) fn deep_output(&self, input: &ModelInput) -> Tensor {
        let feats: Vec<Tensor> = self
            .model
            .components()
            .iter()
            .map(|c| c.forward_t(input, false))
            .collect();
        if feats.is_empty() {
            let n = input.batch_size();
            return Tensor::zeros(
                [n, self.model.pred_dim()],
                (Kind::Float, self.model.device()),
            );
        }
        self.model.combine(None, &feats, false)
    }

    /// [`Explainer::deep_output`] of every row, batched.
    ///
    /// # Shapes
    /// - `input`: `[n, ...]` per input
    /// - returns `[n, pred_dim]` f64 on the CPU
    pub(crate) fn eval_deep(&self, input: &ModelInput) -> Tensor {
        self.eval_batched(input, |chunk| self.deep_output(chunk))
    }
}

/// The output names without a pipeline: `raw`/`probability`, or per class.
pub(super) fn default_output_names(output: Output, pred_dim: usize) -> Vec<String> {
    match (output, pred_dim) {
        (Output::Raw, 1) => vec!["raw".into()],
        (Output::Probability, 1) => vec!["probability".into()],
        (Output::Raw, k) => (0..k).map(|c| format!("logit[{c}]")).collect(),
        (Output::Probability, k) => (0..k).map(|c| format!("P({c})")).collect(),
    }
}

/// The output names of a pipeline's target: `logit P(class)`, `P(class)`, `prediction`.
pub(super) fn pipeline_output_names(
    output: Output,
    kind: TargetKind,
    classes: &[String],
) -> Vec<String> {
    match (kind, output) {
        (TargetKind::Binary, Output::Raw) => {
            vec![format!("logit P({})", classes.get(1).map_or("1", |s| s))]
        }
        (TargetKind::Binary, Output::Probability) => {
            vec![format!("P({})", classes.get(1).map_or("1", |s| s))]
        }
        (TargetKind::Multiclass, Output::Raw) => {
            classes.iter().map(|c| format!("logit[{c}]")).collect()
        }
        (TargetKind::Multiclass, Output::Probability) => {
            classes.iter().map(|c| format!("P({c})")).collect()
        }
        (TargetKind::Regression, _) => vec!["prediction".into()],
    }
}

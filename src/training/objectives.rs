//! Objectives: the loss to minimise, the model's output width and how raw outputs become
//! probabilities and predictions.
use crate::error::{Result, WideDeepError};
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use tch::{Kind, Reduction, Tensor};

/// What the model is trained for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "objective", rename_all = "snake_case")]
pub enum Objective {
    /// Binary classification: one logit, binary cross-entropy (`"binary"`, `"logistic"`).
    Binary,
    /// Multiclass classification: one logit per class, cross-entropy (`"multiclass"`,
    /// `"multi_logistic"`).
    Multiclass { n_classes: i64 },
    /// Regression with mean squared error (`"regression"`, `"mse"`).
    Regression,
}

impl Objective {
    /// The model's output width for this objective.
    pub fn pred_dim(&self) -> i64 {
        match self {
            Objective::Multiclass { n_classes } => *n_classes,
            _ => 1,
        }
    }

    /// Whether targets are class labels.
    pub fn is_classification(&self) -> bool {
        !matches!(self, Objective::Regression)
    }

    /// The objective's name, as accepted by [`FromStr`].
    pub fn name(&self) -> &'static str {
        match self {
            Objective::Binary => "binary",
            Objective::Multiclass { .. } => "multiclass",
            Objective::Regression => "regression",
        }
    }

    /// Checks that a model output width `pred_dim` fits this objective.
    pub fn check_pred_dim(&self, pred_dim: i64) -> Result<()> {
        if pred_dim != self.pred_dim() {
            return Err(WideDeepError::config(
                "pred_dim",
                format!(
                    "the {} objective needs {} output(s), the model has {pred_dim}",
                    self.name(),
                    self.pred_dim()
                ),
            ));
        }
        if let Objective::Multiclass { n_classes } = self {
            if *n_classes < 2 {
                return Err(WideDeepError::config(
                    "n_classes",
                    "multiclass needs at least 2 classes",
                ));
            }
        }
        Ok(())
    }

    /// Mean loss of raw outputs `[batch, pred_dim]` against targets (`[batch]` f32 for binary
    /// and regression, `[batch]` i64 for multiclass).
    pub fn loss(&self, out: &Tensor, target: &Tensor) -> Tensor {
        match self {
            Objective::Binary => out.view([-1]).binary_cross_entropy_with_logits::<Tensor>(
                target,
                None,
                None,
                Reduction::Mean,
            ),
            Objective::Multiclass { .. } => {
                out.cross_entropy_loss::<Tensor>(target, None, Reduction::Mean, -100, 0.0)
            }
            Objective::Regression => out.view([-1]).mse_loss(target, Reduction::Mean),
        }
    }

    /// Raw outputs → scores used by the metrics: probabilities of the positive class `[batch]`
    /// (binary), class probabilities `[batch, k]` (multiclass), values `[batch]` (regression).
    pub fn scores(&self, out: &Tensor) -> Tensor {
        match self {
            Objective::Binary => out.view([-1]).sigmoid(),
            Objective::Multiclass { .. } => out.softmax(-1, Kind::Float),
            Objective::Regression => out.view([-1]),
        }
    }

    /// Raw outputs → predictions: class indices `[batch]` i64 or values `[batch]` f32.
    pub fn predict(&self, out: &Tensor) -> Tensor {
        match self {
            Objective::Binary => out.view([-1]).gt(0.0).to_kind(Kind::Int64),
            Objective::Multiclass { .. } => out.argmax(-1, false),
            Objective::Regression => out.view([-1]),
        }
    }

    /// Raw outputs → class probabilities `[batch, n_classes]` (binary: `[1 − p, p]`).
    pub fn predict_proba(&self, out: &Tensor) -> Result<Tensor> {
        match self {
            Objective::Binary => {
                let p = out.view([-1, 1]).sigmoid();
                Ok(Tensor::cat(&[p.ones_like() - &p, p], 1))
            }
            Objective::Multiclass { .. } => Ok(out.softmax(-1, Kind::Float)),
            Objective::Regression => Err(WideDeepError::config(
                "objective",
                "predict_proba needs a classification objective; use predict for regression",
            )),
        }
    }
}

impl FromStr for Objective {
    type Err = WideDeepError;

    /// Parses the reference's names. Multiclass parses with `n_classes = 0`; set it (or use
    /// [`Objective::Multiclass`] directly) before training.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "binary" | "logistic" => Ok(Objective::Binary),
            "multiclass" | "multi_logistic" => Ok(Objective::Multiclass { n_classes: 0 }),
            "regression" | "mse" => Ok(Objective::Regression),
            other => Err(WideDeepError::config(
                "objective",
                format!("unknown objective `{other}`"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: &[f32]) -> Tensor {
        Tensor::from_slice(v)
    }

    #[test]
    fn losses_match_hand_computation() {
        // BCE with logits: mean(-(y log σ(z) + (1-y) log(1-σ(z))))
        let z = [0.0f32, 2.0];
        let y = [1.0f32, 0.0];
        let s = |x: f32| 1.0 / (1.0 + (-x).exp());
        let expected = -((s(z[0]).ln()) + (1.0 - s(z[1])).ln()) / 2.0;
        let got = Objective::Binary
            .loss(&f(&z).view([2, 1]), &f(&y))
            .double_value(&[]);
        assert!((got - expected as f64).abs() < 1e-6, "{got} vs {expected}");

        let mse = Objective::Regression.loss(&f(&[1.0, 3.0]).view([2, 1]), &f(&[0.0, 1.0]));
        assert!((mse.double_value(&[]) - 2.5).abs() < 1e-6);

        // CE of logits [0, ln 3] for class 1: -ln(3/4)
        let out = f(&[0.0, 3f32.ln()]).view([1, 2]);
        let ce = Objective::Multiclass { n_classes: 2 }.loss(&out, &Tensor::from_slice(&[1i64]));
        assert!((ce.double_value(&[]) - (4.0f64 / 3.0).ln()).abs() < 1e-6);
    }

    #[test]
    fn probabilities_and_predictions() {
        let out = f(&[0.0, 10.0, -10.0]).view([3, 1]);
        let proba = Objective::Binary.predict_proba(&out).unwrap();
        assert_eq!(proba.size(), [3, 2]);
        assert!((proba.double_value(&[0, 1]) - 0.5).abs() < 1e-6);
        let pred = Vec::<i64>::try_from(Objective::Binary.predict(&out)).unwrap();
        assert_eq!(pred, vec![0, 1, 0]);
        assert!(Objective::Regression.predict_proba(&out).is_err());
    }

    #[test]
    fn names_and_pred_dims() {
        assert_eq!("logistic".parse::<Objective>().unwrap(), Objective::Binary);
        assert_eq!("MSE".parse::<Objective>().unwrap(), Objective::Regression);
        assert!("poisson-ish".parse::<Objective>().is_err());
        assert!(Objective::Multiclass { n_classes: 3 }
            .check_pred_dim(3)
            .is_ok());
        assert!(Objective::Binary.check_pred_dim(2).is_err());
    }
}

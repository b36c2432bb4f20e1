//! The reference's objective names and aliases, parsed by [`FromStr`] for [`Objective`].
use super::{FocalRActivation, Objective, PositiveActivation, DEFAULT_QUANTILES};
use crate::error::{Result, WideDeepError};
use crate::macros::bail;
use std::str::FromStr;

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
            "multitarget" | "multi_target" => bail!(
                config("objective"),
                "multitarget needs its targets: build Objective::MultiTarget {{ targets, .. }}"
            ),
            other => bail!(config("objective"), "unknown objective `{other}`"),
        })
    }
}

//! Scaling of a regression target and its inverse.

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::TargetEncoder;
use crate::column;
use crate::error::{PreprocessingError, Result};
use crate::macros::{bail, ensure};

/// How a regression target is scaled before training; predictions are mapped back with
/// [`TargetEncoder::inverse_values`] (a `Pipeline` does it on `predict` and `evaluate`).
/// Targets on very different scales (several regression targets, or one with a large
/// spread) train much better scaled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetScaling {
    /// Values pass through (the default).
    #[default]
    None,
    /// `(y − mean) / std` (population standard deviation; 1 for a constant target).
    Standard,
    /// `(y − median) / IQR` (interquartile range, linearly interpolated quantiles; 1 when it
    /// is 0): insensitive to outliers.
    Robust,
    /// `ln(1 + y)`, for non-negative, right-skewed targets (prices, counts); values must be
    /// greater than −1.
    Log,
}

/// Fitted statistics of a [`TargetScaling`]: `y' = (y − center) / scale` (after `ln(1 + y)`
/// for [`TargetScaling::Log`], whose center is 0 and scale 1).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct FittedScale {
    pub(super) center: f64,
    pub(super) scale: f64,
}

impl TargetEncoder {
    /// The configured scaling.
    pub fn target_scaling(&self) -> TargetScaling {
        self.scaling
    }

    /// Whether predictions need [`inverse_values`](Self::inverse_values) to come back to the
    /// target's units (a fitted scaling other than [`TargetScaling::None`]).
    pub fn is_scaled(&self) -> bool {
        self.fitted_scale.is_some()
    }

    /// Maps scaled values (model predictions) back to the target's units; the identity
    /// without a scaling.
    ///
    /// # Shapes
    /// - `values`: `[n]` f32 in the scaled units
    /// - returns `[n]` f32 in the target's units
    pub fn inverse_values(&self, values: &[f32]) -> Vec<f32> {
        let Some(f) = self.fitted_scale else {
            return values.to_vec();
        };
        values
            .iter()
            .map(|&v| {
                let y = f64::from(v) * f.scale + f.center;
                let y = match self.scaling {
                    TargetScaling::Log => y.exp_m1(),
                    _ => y,
                };
                y as f32
            })
            .collect()
    }

    /// The regression values scaled per the fitted scaling, as `f32`.
    pub(super) fn scaled(&self, values: &[f64]) -> Result<Vec<f32>> {
        values
            .iter()
            .enumerate()
            .map(|(row, &v)| {
                let out_of_range = |reason: &str| PreprocessingError::OutOfRange {
                    column: self.column.clone(),
                    row,
                    value: v,
                    reason: reason.into(),
                };
                let x = match (self.scaling, self.fitted_scale) {
                    (TargetScaling::Log, Some(_)) if v <= -1.0 => {
                        bail!(out_of_range("log scaling needs values greater than -1"))
                    }
                    (TargetScaling::Log, Some(f)) => (v.ln_1p() - f.center) / f.scale,
                    (_, Some(f)) => (v - f.center) / f.scale,
                    (_, None) => v,
                };
                let x = x as f32;
                ensure!(x.is_finite(), out_of_range("beyond the range of f32"));
                Ok(x)
            })
            .collect()
    }
}

/// The values of a numeric regression target, rejecting null, NaN and infinity.
pub(super) fn regression_values(col: &Column, name: &str) -> Result<Vec<f64>> {
    let values = column::as_f64(col)?;
    let mut out = Vec::with_capacity(values.len());
    for (row, value) in values.iter().enumerate() {
        match value {
            None => {
                bail!(PreprocessingError::NullValue {
                    column: name.to_owned(),
                    row,
                })
            }
            Some(v) if !v.is_finite() => bail!(PreprocessingError::non_finite(name, row, v)),
            Some(v) => out.push(v),
        }
    }
    Ok(out)
}

/// The statistics of `scaling` on `values` (finite, non-empty).
pub(super) fn fit_scale(
    scaling: TargetScaling,
    values: &[f64],
    name: &str,
) -> Result<Option<FittedScale>> {
    let n = values.len() as f64;
    let out_of_range = |row: usize, reason: &str| PreprocessingError::OutOfRange {
        column: name.to_owned(),
        row,
        value: values[row],
        reason: reason.into(),
    };
    let unit = |s: f64| if s.is_finite() && s > 0.0 { s } else { 1.0 };
    let fitted = match scaling {
        TargetScaling::None => return Ok(None),
        TargetScaling::Standard => {
            let mean = values.iter().sum::<f64>() / n;
            let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
            ensure!(
                mean.is_finite() && var.is_finite(),
                out_of_range(0, "the target's mean or variance overflows")
            );
            FittedScale {
                center: mean,
                scale: unit(var.sqrt()),
            }
        }
        TargetScaling::Robust => {
            let mut sorted = values.to_vec();
            sorted.sort_unstable_by(f64::total_cmp);
            let q = |p: f64| {
                let pos = (sorted.len() - 1) as f64 * p;
                let lo = pos.floor() as usize;
                let hi = (lo + 1).min(sorted.len() - 1);
                sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo])
            };
            FittedScale {
                center: q(0.5),
                scale: unit(q(0.75) - q(0.25)),
            }
        }
        TargetScaling::Log => {
            if let Some(row) = values.iter().position(|&v| v <= -1.0) {
                bail!(out_of_range(
                    row,
                    "log scaling needs values greater than -1",
                ));
            }
            FittedScale {
                center: 0.0,
                scale: 1.0,
            }
        }
    };
    Ok(Some(fitted))
}

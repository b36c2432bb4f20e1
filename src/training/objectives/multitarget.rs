//! Several targets in one model: regression, binary and multiclass targets side by side.
use super::losses;
use crate::error::{Result, WideDeepError};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// One target of a [`Objective::MultiTarget`](super::Objective::MultiTarget). Targets take
/// consecutive blocks of the model output in their order: 1 column for `Regression` and
/// `Binary`, `n_classes` columns for `Multiclass`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TargetSpec {
    /// Mean squared error on one column.
    Regression,
    /// Binary cross-entropy on one logit, optionally with a positive-class weight.
    Binary {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pos_weight: Option<f64>,
    },
    /// Cross-entropy over `n_classes` logits, optionally with class weights.
    Multiclass {
        n_classes: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        class_weight: Option<Vec<f64>>,
    },
}

impl TargetSpec {
    /// Output columns this target takes.
    pub fn width(&self) -> i64 {
        match self {
            TargetSpec::Multiclass { n_classes, .. } => *n_classes,
            _ => 1,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            TargetSpec::Regression => "regression",
            TargetSpec::Binary { .. } => "binary",
            TargetSpec::Multiclass { .. } => "multiclass",
        }
    }
}

/// How per-target losses combine (after the per-target weights).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetReduction {
    /// The mean of the weighted per-target losses (the reference's default).
    #[default]
    Mean,
    /// Their sum.
    Sum,
}

pub(super) fn validate(targets: &[TargetSpec], weights: Option<&[f64]>, field: &str) -> Result<()> {
    if targets.is_empty() {
        return Err(WideDeepError::config(
            format!("{field}.targets"),
            "needs at least one target",
        ));
    }
    for (i, t) in targets.iter().enumerate() {
        match t {
            TargetSpec::Binary {
                pos_weight: Some(w),
            } if !(*w > 0.0 && w.is_finite()) => {
                return Err(WideDeepError::config(
                    format!("{field}.targets[{i}].pos_weight"),
                    format!("must be positive, got {w}"),
                ));
            }
            TargetSpec::Multiclass {
                n_classes,
                class_weight,
            } => {
                if *n_classes < 2 {
                    return Err(WideDeepError::config(
                        format!("{field}.targets[{i}].n_classes"),
                        format!("must be ≥ 2, got {n_classes}"),
                    ));
                }
                if let Some(w) = class_weight {
                    super::check_class_weight(
                        w,
                        *n_classes,
                        &format!("{field}.targets[{i}].class_weight"),
                    )?;
                }
            }
            _ => {}
        }
    }
    if let Some(w) = weights {
        if w.len() != targets.len() {
            return Err(WideDeepError::config(
                format!("{field}.weights"),
                format!("has {} values for {} targets", w.len(), targets.len()),
            ));
        }
        if let Some(bad) = w.iter().find(|v| !(**v >= 0.0 && v.is_finite())) {
            return Err(WideDeepError::config(
                format!("{field}.weights"),
                format!("must be finite and ≥ 0, got {bad}"),
            ));
        }
    }
    Ok(())
}

/// Column offset of each target's block.
fn offsets(targets: &[TargetSpec]) -> Vec<i64> {
    targets
        .iter()
        .scan(0, |acc, t| {
            let start = *acc;
            *acc += t.width();
            Some(start)
        })
        .collect()
}

/// Weighted, reduced loss of `out` `[N, Σ widths]` against `target` `[N, T]`.
pub(super) fn loss(
    targets: &[TargetSpec],
    weights: Option<&[f64]>,
    reduction: TargetReduction,
    out: &Tensor,
    target: &Tensor,
) -> Tensor {
    let losses: Vec<Tensor> = targets
        .iter()
        .zip(offsets(targets))
        .enumerate()
        .map(|(i, (spec, start))| {
            let o = out.narrow(1, start, spec.width());
            let y = target.select(1, i as i64);
            let l = match spec {
                TargetSpec::Regression => losses::mse(&o.view([-1]), &y),
                TargetSpec::Binary { pos_weight } => {
                    losses::bce_with_logits(&o.view([-1]), &y, *pos_weight)
                }
                TargetSpec::Multiclass { class_weight, .. } => {
                    losses::cross_entropy(&o, &y, class_weight.as_deref())
                }
            };
            match weights {
                Some(w) => l * w[i],
                None => l,
            }
        })
        .collect();
    let stacked = Tensor::stack(&losses, 0);
    match reduction {
        TargetReduction::Mean => stacked.mean(out.kind()),
        TargetReduction::Sum => stacked.sum(out.kind()),
    }
}

/// Each target as a single-target problem, for the metrics: the objective it would have alone
/// (binary, multiclass or regression), its scores (`[N]` probabilities or values, `[N, k]`
/// class probabilities; `scores` as [`scores`] gives them) and its target column (`[N]` f32,
/// or i64 class indices).
pub(crate) fn per_target(
    targets: &[TargetSpec],
    scores: &Tensor,
    target: &Tensor,
) -> Vec<(super::Objective, Tensor, Tensor)> {
    targets
        .iter()
        .zip(offsets(targets))
        .enumerate()
        .map(|(i, (spec, start))| {
            let s = scores.narrow(1, start, spec.width()).contiguous();
            let y = target.select(1, i as i64);
            match spec {
                TargetSpec::Regression => (
                    super::Objective::Regression,
                    s.reshape([-1]),
                    y.to_kind(Kind::Float),
                ),
                TargetSpec::Binary { .. } => (
                    super::Objective::Binary,
                    s.reshape([-1]),
                    y.to_kind(Kind::Float),
                ),
                TargetSpec::Multiclass { n_classes, .. } => (
                    super::Objective::Multiclass {
                        n_classes: *n_classes,
                    },
                    s,
                    y.to_kind(Kind::Int64),
                ),
            }
        })
        .collect()
}

/// Per-target predictions `[N, T]` f32: values, 0/1 labels or class indices.
pub(super) fn predict(targets: &[TargetSpec], out: &Tensor) -> Tensor {
    let cols: Vec<Tensor> = targets
        .iter()
        .zip(offsets(targets))
        .map(|(spec, start)| {
            let o = out.narrow(1, start, spec.width());
            match spec {
                TargetSpec::Regression => o.view([-1]).to_kind(Kind::Float),
                TargetSpec::Binary { .. } => o.view([-1]).gt(0.0).to_kind(Kind::Float),
                TargetSpec::Multiclass { .. } => o.argmax(-1, false).to_kind(Kind::Float),
            }
        })
        .collect();
    Tensor::stack(&cols, 1)
}

/// Per-target scores `[N, Σ widths]`: values (regression), `σ(logit)` (binary), softmax
/// blocks (multiclass).
pub(super) fn scores(targets: &[TargetSpec], out: &Tensor) -> Tensor {
    let cols: Vec<Tensor> = targets
        .iter()
        .zip(offsets(targets))
        .map(|(spec, start)| {
            let o = out.narrow(1, start, spec.width());
            match spec {
                TargetSpec::Regression => o,
                TargetSpec::Binary { .. } => o.sigmoid(),
                TargetSpec::Multiclass { .. } => o.softmax(-1, Kind::Float),
            }
        })
        .collect();
    Tensor::cat(&cols, 1)
}

/// Class probabilities per target, `[N, T, C]` with `C` the largest class count among the
/// classification targets (2 for binary ones): `proba.select(1, t)` is target `t`'s
/// `[N, C]` probabilities — `[1 − p, p]` for a binary target, its softmax for a multiclass
/// one — with zeros in the columns beyond its class count; a regression target's slice is all
/// zeros (its values come from `predict`). So `proba[:, t, 1]` is the positive-class
/// probability of binary target `t` (a multilabel model's labels).
pub(super) fn predict_proba(targets: &[TargetSpec], out: &Tensor) -> Result<Tensor> {
    let c = targets
        .iter()
        .filter_map(|t| match t {
            TargetSpec::Regression => None,
            TargetSpec::Binary { .. } => Some(2),
            TargetSpec::Multiclass { n_classes, .. } => Some(*n_classes),
        })
        .max()
        .ok_or_else(|| {
            WideDeepError::config(
                "objective",
                "predict_proba needs at least one classification target",
            )
        })?;
    let n = out.size()[0];
    let slices: Vec<Tensor> = targets
        .iter()
        .zip(offsets(targets))
        .map(|(spec, start)| {
            let o = out.narrow(1, start, spec.width());
            let p = match spec {
                TargetSpec::Regression => {
                    return Tensor::zeros([n, c], (Kind::Float, out.device()));
                }
                TargetSpec::Binary { .. } => {
                    let p = o.sigmoid().to_kind(Kind::Float);
                    Tensor::cat(&[p.ones_like() - &p, p], 1)
                }
                TargetSpec::Multiclass { .. } => o.softmax(-1, Kind::Float),
            };
            let width = p.size()[1];
            if width < c {
                let pad = Tensor::zeros([n, c - width], (Kind::Float, out.device()));
                Tensor::cat(&[p, pad], 1)
            } else {
                p
            }
        })
        .collect();
    Ok(Tensor::stack(&slices, 1))
}

/// Checks a `[N, T]` target: its shape, its type and each column's values.
pub(super) fn check_target(targets: &[TargetSpec], target: &Tensor) -> Result<()> {
    let bad = |reason: String| WideDeepError::InputMismatch {
        input: "target".into(),
        reason,
    };
    let size = target.size();
    if size.len() != 2 || size[1] != targets.len() as i64 {
        return Err(bad(format!(
            "a multi-target objective with {} targets needs shape [N, {}], got {size:?}",
            targets.len(),
            targets.len()
        )));
    }
    if !matches!(target.kind(), Kind::Float | Kind::Double | Kind::Int64) {
        return Err(bad(format!(
            "multi-target targets must be f32, f64 or i64, got {:?}",
            target.kind()
        )));
    }
    let t = target.to_device(tch::Device::Cpu).to_kind(Kind::Double);
    for (i, spec) in targets.iter().enumerate() {
        let col = t.select(1, i as i64);
        let what = format!("target[:, {i}] ({})", spec.name());
        if !bool::try_from(col.isfinite().all())? {
            return Err(bad(format!("{what} contains NaN or infinite values")));
        }
        match spec {
            TargetSpec::Regression => {}
            TargetSpec::Binary { .. } => {
                if !bool::try_from(col.eq(0.0).logical_or(&col.eq(1.0)).all())? {
                    return Err(bad(format!("{what} must hold 0 or 1")));
                }
            }
            TargetSpec::Multiclass { n_classes, .. } => {
                let integral = bool::try_from(col.eq_tensor(&col.round()).all())?;
                let (lo, hi) = (col.min().double_value(&[]), col.max().double_value(&[]));
                if !integral || lo < 0.0 || hi >= *n_classes as f64 {
                    return Err(bad(format!(
                        "{what} must hold class indices in 0..{n_classes}"
                    )));
                }
            }
        }
    }
    Ok(())
}

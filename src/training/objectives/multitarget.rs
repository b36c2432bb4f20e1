//! Several targets in one model: regression, binary and multiclass targets side by side.
use super::{losses, Objective};
use crate::error::Result;
use crate::macros::{bail, ensure};
use crate::training::checks::{non_negative, positive};
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
        /// The weight of positive rows (`None`: 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pos_weight: Option<f64>,
    },
    /// Cross-entropy over `n_classes` logits, optionally with class weights.
    Multiclass {
        /// The number of classes (≥ 2).
        n_classes: i64,
        /// One weight per class (`None`: all 1).
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

    /// The (unweighted) objective this target would have alone, for the metrics.
    pub(crate) fn objective(&self) -> Objective {
        match self {
            TargetSpec::Regression => Objective::Regression,
            TargetSpec::Binary { .. } => Objective::Binary,
            TargetSpec::Multiclass { n_classes, .. } => Objective::Multiclass {
                n_classes: *n_classes,
            },
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

/// Checks the targets and their weights; errors name `{field}.targets[i].<parameter>` or
/// `{field}.weights`.
pub(super) fn validate(targets: &[TargetSpec], weights: Option<&[f64]>, field: &str) -> Result<()> {
    ensure!(
        !targets.is_empty(),
        config(format!("{field}.targets")),
        "needs at least one target"
    );
    for (i, t) in targets.iter().enumerate() {
        match t {
            TargetSpec::Binary {
                pos_weight: Some(w),
            } => ensure!(
                positive(*w),
                config(format!("{field}.targets[{i}].pos_weight")),
                "must be positive, got {w}"
            ),
            TargetSpec::Multiclass {
                n_classes,
                class_weight,
            } => {
                ensure!(
                    *n_classes >= 2,
                    config(format!("{field}.targets[{i}].n_classes")),
                    "must be ≥ 2, got {n_classes}"
                );
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
        ensure!(
            w.len() == targets.len(),
            config(format!("{field}.weights")),
            "has {} values for {} targets",
            w.len(),
            targets.len()
        );
        if let Some(bad) = w.iter().find(|v| !non_negative(**v)) {
            bail!(
                config(format!("{field}.weights")),
                "must be finite and ≥ 0, got {bad}"
            );
        }
    }
    Ok(())
}

/// Each target with its block of `out`'s columns.
///
/// # Shapes
/// - `out`: `[N, Σ widths]`; the blocks are `[N, width]` views
fn blocks<'a>(
    targets: &'a [TargetSpec],
    out: &'a Tensor,
) -> impl Iterator<Item = (&'a TargetSpec, Tensor)> + 'a {
    targets.iter().scan(0, move |start, spec| {
        let block = out.narrow(1, *start, spec.width());
        *start += spec.width();
        Some((spec, block))
    })
}

/// Weighted, reduced loss of `out` against `target`.
///
/// # Shapes
/// - `out`: `[N, Σ widths]`; `target`: `[N, T]`; returns `[]`
pub(super) fn loss(
    targets: &[TargetSpec],
    weights: Option<&[f64]>,
    reduction: TargetReduction,
    out: &Tensor,
    target: &Tensor,
) -> Tensor {
    let losses: Vec<Tensor> = blocks(targets, out)
        .enumerate()
        .map(|(i, (spec, o))| {
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
///
/// # Shapes
/// - `scores`: `[N, Σ widths]`; `target`: `[N, T]`
pub(crate) fn per_target(
    targets: &[TargetSpec],
    scores: &Tensor,
    target: &Tensor,
) -> Vec<(Objective, Tensor, Tensor)> {
    blocks(targets, scores)
        .enumerate()
        .map(|(i, (spec, s))| {
            let s = s.contiguous();
            let y = target.select(1, i as i64);
            match spec {
                TargetSpec::Multiclass { .. } => (spec.objective(), s, y.to_kind(Kind::Int64)),
                _ => (spec.objective(), s.reshape([-1]), y.to_kind(Kind::Float)),
            }
        })
        .collect()
}

/// Per-target predictions: values, 0/1 labels or class indices.
///
/// # Shapes
/// - `out`: `[N, Σ widths]`; returns `[N, T]` f32
pub(super) fn predict(targets: &[TargetSpec], out: &Tensor) -> Tensor {
    let cols: Vec<Tensor> = blocks(targets, out)
        .map(|(spec, o)| match spec {
            TargetSpec::Regression => o.view([-1]).to_kind(Kind::Float),
            TargetSpec::Binary { .. } => o.view([-1]).gt(0.0).to_kind(Kind::Float),
            TargetSpec::Multiclass { .. } => o.argmax(-1, false).to_kind(Kind::Float),
        })
        .collect();
    Tensor::stack(&cols, 1)
}

/// Per-target scores: values (regression), `σ(logit)` (binary), softmax blocks (multiclass).
///
/// # Shapes
/// - `out`: `[N, Σ widths]`; returns `[N, Σ widths]`
pub(super) fn scores(targets: &[TargetSpec], out: &Tensor) -> Tensor {
    let cols: Vec<Tensor> = blocks(targets, out)
        .map(|(spec, o)| match spec {
            TargetSpec::Regression => o,
            TargetSpec::Binary { .. } => o.sigmoid(),
            TargetSpec::Multiclass { .. } => o.softmax(-1, Kind::Float),
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
///
/// # Shapes
/// - `out`: `[N, Σ widths]`; returns `[N, T, C]` f32
pub(super) fn predict_proba(targets: &[TargetSpec], out: &Tensor) -> Result<Tensor> {
    let classes = targets.iter().filter_map(|t| match t {
        TargetSpec::Regression => None,
        TargetSpec::Binary { .. } => Some(2),
        TargetSpec::Multiclass { n_classes, .. } => Some(*n_classes),
    });
    let Some(c) = classes.max() else {
        bail!(
            config("objective"),
            "predict_proba needs at least one classification target"
        );
    };
    let n = out.size()[0];
    let slices: Vec<Tensor> = blocks(targets, out)
        .map(|(spec, o)| {
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

/// Checks a target: its shape, its type and each column's values.
///
/// # Shapes
/// - `target`: `[N, T]` with `T = targets.len()`
pub(super) fn check_target(targets: &[TargetSpec], target: &Tensor) -> Result<()> {
    let size = target.size();
    ensure!(
        size.len() == 2 && size[1] == targets.len() as i64,
        input("target"),
        "a multi-target objective with {} targets needs shape [N, {}], got {size:?}",
        targets.len(),
        targets.len()
    );
    ensure!(
        matches!(target.kind(), Kind::Float | Kind::Double | Kind::Int64),
        input("target"),
        "multi-target targets must be f32, f64 or i64, got {:?}",
        target.kind()
    );
    let t = target.to_device(tch::Device::Cpu).to_kind(Kind::Double);
    for (i, spec) in targets.iter().enumerate() {
        let col = t.select(1, i as i64);
        let what = format!("target[:, {i}] ({})", spec.name());
        ensure!(
            bool::try_from(col.isfinite().all())?,
            input("target"),
            "{what} contains NaN or infinite values"
        );
        match spec {
            TargetSpec::Regression => {}
            TargetSpec::Binary { .. } => ensure!(
                bool::try_from(col.eq(0.0).logical_or(&col.eq(1.0)).all())?,
                input("target"),
                "{what} must hold 0 or 1"
            ),
            TargetSpec::Multiclass { n_classes, .. } => {
                let integral = bool::try_from(col.eq_tensor(&col.round()).all())?;
                let (lo, hi) = (col.min().double_value(&[]), col.max().double_value(&[]));
                ensure!(
                    integral && lo >= 0.0 && hi < *n_classes as f64,
                    input("target"),
                    "{what} must hold class indices in 0..{n_classes}"
                );
            }
        }
    }
    Ok(())
}

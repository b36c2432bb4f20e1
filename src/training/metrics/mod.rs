//! Metrics computed over a whole epoch's predictions (exact, not running averages).
//!
//! Each metric reads the objective's scores ([`Objective::scores`]): positive-class
//! probabilities `[N]` (binary objectives: threshold 0.5 for label metrics), class
//! probabilities `[N, k]` (multiclass: argmax for label metrics), values `[N]` (regression
//! objectives; ZILN's expected value; the quantile closest to 0.5 for quantile regression),
//! and [`Metric::check`] rejects metrics that do not fit the objective.
use crate::error::Result;
use crate::macros::ensure;
use crate::training::checks::positive;
use crate::training::objectives::ScoreKind;
use crate::training::Objective;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

mod classification;
pub mod ranking;
#[cfg(test)]
mod tests;
pub mod topk;

pub use classification::{accuracy, binary_auc, ovr_macro_auc, top_k_accuracy, Average};
use classification::{count_score, Score};

/// Evaluation metrics.
///
/// Precision, recall, F1 and F-beta score the positive class in binary problems and are
/// macro-averaged over classes in multiclass ones unless micro averaging is asked for. The
/// ranking metrics (`…AtK`) read rows in consecutive groups of `n_items` (see [`ranking`]).
/// Serialized as `"accuracy"`, `{"f_beta": {"beta": 2.0, "average": "macro"}}`, ….
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Fraction of correct labels.
    Accuracy,
    /// Positive-class (binary) or macro (multiclass) precision.
    Precision,
    /// Positive-class (binary) or macro (multiclass) recall.
    Recall,
    /// Positive-class (binary) or macro (multiclass) F1.
    F1,
    /// ROC AUC: binary, or one-vs-rest macro for multiclass.
    Auc,
    /// Coefficient of determination.
    R2,
    /// Root mean squared error.
    Rmse,
    /// Mean absolute error.
    Mae,
    /// Multiclass: the target is among the `k` most likely classes.
    TopKAccuracy {
        /// How many of the most likely classes count (1 to the number of classes).
        k: usize,
    },
    /// Micro-averaged precision (pooled counts over all classes).
    MicroPrecision,
    /// Micro-averaged recall.
    MicroRecall,
    /// Micro-averaged F1.
    MicroF1,
    /// `F_β = (1 + β²)·P·R / (β²·P + R)` (β > 0; β = 1 is F1), positive class for binary.
    FBeta {
        /// The weight of recall over precision (> 0).
        beta: f64,
        /// How classes combine in multiclass problems.
        average: Average,
    },
    /// NDCG@k over groups of `n_items` rows (graded relevance `2^rel − 1`).
    NdcgAtK {
        /// The top items scored (1 to `n_items`).
        k: usize,
        /// Rows per group.
        n_items: usize,
    },
    /// MAP@k over groups of `n_items` rows.
    MapAtK {
        /// The top items scored (1 to `n_items`).
        k: usize,
        /// Rows per group.
        n_items: usize,
    },
    /// HitRatio@k over groups of `n_items` rows.
    HitRatioAtK {
        /// The top items scored (1 to `n_items`).
        k: usize,
        /// Rows per group.
        n_items: usize,
    },
    /// Precision@k over groups of `n_items` rows.
    PrecisionAtK {
        /// The top items scored (1 to `n_items`).
        k: usize,
        /// Rows per group.
        n_items: usize,
    },
    /// Recall@k over groups of `n_items` rows.
    RecallAtK {
        /// The top items scored (1 to `n_items`).
        k: usize,
        /// Rows per group.
        n_items: usize,
    },
}

impl Metric {
    /// The key used in the training history (`val_` is prefixed for validation):
    /// `accuracy`, `top3_accuracy`, `precision`, `micro_precision`, `f2` (macro F-beta),
    /// `micro_f0.5`, `auc`, `r2`, `rmse`, `mae`, `ndcg@10`, `map@10`, `hr@10`,
    /// `precision@10`, `recall@10`.
    pub fn name(&self) -> String {
        match self {
            Metric::Accuracy => "accuracy".into(),
            Metric::Precision => "precision".into(),
            Metric::Recall => "recall".into(),
            Metric::F1 => "f1".into(),
            Metric::Auc => "auc".into(),
            Metric::R2 => "r2".into(),
            Metric::Rmse => "rmse".into(),
            Metric::Mae => "mae".into(),
            Metric::TopKAccuracy { k } => format!("top{k}_accuracy"),
            Metric::MicroPrecision => "micro_precision".into(),
            Metric::MicroRecall => "micro_recall".into(),
            Metric::MicroF1 => "micro_f1".into(),
            Metric::FBeta { beta, average } => match average {
                Average::Macro => format!("f{beta}"),
                Average::Micro => format!("micro_f{beta}"),
            },
            Metric::NdcgAtK { k, .. } => format!("ndcg@{k}"),
            Metric::MapAtK { k, .. } => format!("map@{k}"),
            Metric::HitRatioAtK { k, .. } => format!("hr@{k}"),
            Metric::PrecisionAtK { k, .. } => format!("precision@{k}"),
            Metric::RecallAtK { k, .. } => format!("recall@{k}"),
        }
    }

    /// Whether larger values are better (for early stopping on a metric).
    pub fn higher_is_better(&self) -> bool {
        !matches!(self, Metric::Rmse | Metric::Mae)
    }

    fn ranking_params(&self) -> Option<(usize, usize)> {
        match *self {
            Metric::NdcgAtK { k, n_items }
            | Metric::MapAtK { k, n_items }
            | Metric::HitRatioAtK { k, n_items }
            | Metric::PrecisionAtK { k, n_items }
            | Metric::RecallAtK { k, n_items } => Some((k, n_items)),
            _ => None,
        }
    }

    /// Checks the metric's own parameters and that it makes sense for `objective`; errors
    /// name the field (`metrics.ndcg@5.k`, …) or the mismatch.
    pub fn check(&self, objective: &Objective) -> Result<()> {
        let field = |f: &str| format!("metrics.{}.{f}", self.name());
        if let Some((k, n_items)) = self.ranking_params() {
            ensure!(n_items != 0, config(field("n_items")), "must be ≥ 1");
            ensure!(
                k != 0 && k <= n_items,
                config(field("k")),
                "must be in 1..={n_items} (n_items), got {k}"
            );
        }
        if let Metric::FBeta { beta, .. } = self {
            ensure!(
                positive(*beta),
                config(field("beta")),
                "must be positive, got {beta}"
            );
        }
        if let Objective::MultiTarget { targets, .. } = objective {
            // applies when it applies to at least one target (computed on those, plus their
            // mean)
            ensure!(
                targets.iter().any(|t| self.check(&t.objective()).is_ok()),
                config("metrics"),
                "{} applies to none of the targets of the multi_target objective",
                self.name()
            );
            return Ok(());
        }
        let kind = objective.score_kind();
        let ok = match self {
            Metric::Accuracy
            | Metric::Precision
            | Metric::Recall
            | Metric::F1
            | Metric::MicroPrecision
            | Metric::MicroRecall
            | Metric::MicroF1
            | Metric::FBeta { .. } => matches!(
                kind,
                ScoreKind::Binary | ScoreKind::Multiclass(_) | ScoreKind::Labels(_)
            ),
            Metric::TopKAccuracy { k } => match kind {
                ScoreKind::Multiclass(n) => {
                    ensure!(
                        *k != 0 && (n < 2 || *k as i64 <= n),
                        config(field("k")),
                        "must be in 1..={n} (the number of classes), got {k}"
                    );
                    true
                }
                _ => false,
            },
            Metric::Auc => matches!(kind, ScoreKind::Binary | ScoreKind::Multiclass(_)),
            Metric::R2 | Metric::Rmse | Metric::Mae => {
                matches!(kind, ScoreKind::Value | ScoreKind::Quantiles(_))
            }
            Metric::NdcgAtK { .. }
            | Metric::MapAtK { .. }
            | Metric::HitRatioAtK { .. }
            | Metric::PrecisionAtK { .. }
            | Metric::RecallAtK { .. } => matches!(
                kind,
                ScoreKind::Binary | ScoreKind::Value | ScoreKind::Quantiles(_)
            ),
        };
        ensure!(
            ok,
            config("metrics"),
            "{} does not apply to the {} objective",
            self.name(),
            objective.name()
        );
        Ok(())
    }

    /// The metric under its [`name`](Self::name) and, for a multi-target objective, also per
    /// target: `name[i]` for each target `i` it applies to (R², RMSE and MAE for regression
    /// targets; accuracy, AUC, F1, … for binary and multiclass ones), `name` being their
    /// mean. These are the keys of the training history and of `evaluate`.
    ///
    /// # Shapes
    /// - as [`compute`](Self::compute)
    pub fn compute_named(
        &self,
        objective: &Objective,
        scores: &Tensor,
        target: &Tensor,
    ) -> Result<Vec<(String, f64)>> {
        let Objective::MultiTarget { targets, .. } = objective else {
            return Ok(vec![(
                self.name(),
                self.compute(objective, scores, target)?,
            )]);
        };
        self.check(objective)?;
        let mut per_target = Vec::new();
        for (i, (single, s, y)) in
            crate::training::objectives::multitarget::per_target(targets, scores, target)
                .into_iter()
                .enumerate()
        {
            if self.check(&single).is_ok() {
                per_target.push((
                    format!("{}[{i}]", self.name()),
                    self.compute(&single, &s, &y)?,
                ));
            }
        }
        let mean = per_target.iter().map(|(_, v)| v).sum::<f64>() / per_target.len() as f64;
        let mut out = vec![(self.name(), mean)];
        out.extend(per_target);
        Ok(out)
    }

    /// Computes the metric from `scores` (see [`Objective::scores`]) and targets `[N]` (a
    /// multi-target objective: `[N, T]`, and the value is the mean over the targets the
    /// metric applies to; see [`compute_named`](Self::compute_named)).
    ///
    /// # Shapes
    /// - `scores`: what [`Objective::scores`] returns for `objective` (`[N]` or `[N, k]`)
    /// - `target`: `[N]` (`[N, T]` for a multi-target objective)
    pub fn compute(&self, objective: &Objective, scores: &Tensor, target: &Tensor) -> Result<f64> {
        if matches!(objective, Objective::MultiTarget { .. }) {
            return Ok(self.compute_named(objective, scores, target)?[0].1);
        }
        self.check(objective)?;
        let scores = scores.to_device(Device::Cpu).to_kind(Kind::Float);
        let target = target.to_device(Device::Cpu);
        let n = target.size().first().copied().unwrap_or(0);
        if let Some((_, n_items)) = self.ranking_params() {
            ensure!(
                n % n_items as i64 == 0,
                input("target"),
                "{}: {n} rows are not whole groups of n_items = {n_items}",
                self.name()
            );
        }
        let kind = objective.score_kind();
        let value = match kind {
            ScoreKind::Value | ScoreKind::Quantiles(_) => {
                let s = match kind {
                    ScoreKind::Quantiles(j) => scores.select(1, j as i64),
                    _ => scores.view([-1]),
                };
                let p = to_f32(&s)?;
                let y = to_f32(&target.to_kind(Kind::Float).view([-1]))?;
                match self {
                    Metric::R2 => r2(&p, &y),
                    Metric::Rmse => rmse(&p, &y),
                    Metric::Mae => mae(&p, &y),
                    _ => self.ranking(&p, &y),
                }
            }
            ScoreKind::Binary => {
                let p = to_f32(&scores.view([-1]))?;
                let yf = to_f32(&target.to_kind(Kind::Float).view([-1]))?;
                let y: Vec<i64> = yf.iter().map(|&v| (v > 0.5) as i64).collect();
                if *self == Metric::Auc {
                    binary_auc(&p, &y)
                } else if self.ranking_params().is_some() {
                    self.ranking(&p, &yf)
                } else {
                    let pred: Vec<i64> = p.iter().map(|&s| (s > 0.5) as i64).collect();
                    self.labels(&pred, &y, 2, true)
                }
            }
            ScoreKind::Multiclass(k) => {
                let y = Vec::<i64>::try_from(target.to_kind(Kind::Int64).view([-1]))?;
                match self {
                    Metric::Auc => ovr_macro_auc(&to_f32(&scores.view([-1]))?, k as usize, &y),
                    Metric::TopKAccuracy { k: top } => {
                        top_k_accuracy(&to_f32(&scores.view([-1]))?, k as usize, &y, *top)
                    }
                    _ => {
                        let pred = Vec::<i64>::try_from(scores.argmax(-1, false))?;
                        self.labels(&pred, &y, k as usize, false)
                    }
                }
            }
            ScoreKind::Labels(k) => {
                let y = Vec::<i64>::try_from(target.to_kind(Kind::Int64).view([-1]))?;
                let pred = Vec::<i64>::try_from(scores.to_kind(Kind::Int64).view([-1]))?;
                self.labels(&pred, &y, k as usize, k == 2)
            }
            ScoreKind::None => unreachable!("check rejects metrics without scores"),
        };
        Ok(value)
    }

    fn labels(&self, pred: &[i64], y: &[i64], k: usize, binary: bool) -> f64 {
        let s = |score, average| count_score(score, pred, y, k, binary, average);
        match *self {
            Metric::Precision => s(Score::Precision, Average::Macro),
            Metric::Recall => s(Score::Recall, Average::Macro),
            Metric::F1 => s(Score::FBeta(1.0), Average::Macro),
            Metric::MicroPrecision => s(Score::Precision, Average::Micro),
            Metric::MicroRecall => s(Score::Recall, Average::Micro),
            Metric::MicroF1 => s(Score::FBeta(1.0), Average::Micro),
            Metric::FBeta { beta, average } => s(Score::FBeta(beta), average),
            _ => accuracy(pred, y),
        }
    }

    fn ranking(&self, scores: &[f32], rel: &[f32]) -> f64 {
        match *self {
            Metric::NdcgAtK { k, n_items } => ranking::ndcg_at_k(scores, rel, n_items, k),
            Metric::MapAtK { k, n_items } => ranking::map_at_k(scores, rel, n_items, k),
            Metric::HitRatioAtK { k, n_items } => ranking::hit_ratio_at_k(scores, rel, n_items, k),
            Metric::PrecisionAtK { k, n_items } => ranking::precision_at_k(scores, rel, n_items, k),
            Metric::RecallAtK { k, n_items } => ranking::recall_at_k(scores, rel, n_items, k),
            _ => f64::NAN,
        }
    }
}

fn to_f32(t: &Tensor) -> Result<Vec<f32>> {
    Ok(Vec::<f32>::try_from(t.contiguous())?)
}

/// Coefficient of determination `1 − SS_res / SS_tot` (for a constant target, 1 when the
/// predictions are exact and 0 otherwise, as scikit-learn's `force_finite`).
pub fn r2(pred: &[f32], y: &[f32]) -> f64 {
    let mean = y.iter().map(|&v| v as f64).sum::<f64>() / y.len() as f64;
    let ss_res: f64 = pred
        .iter()
        .zip(y)
        .map(|(&p, &t)| (t as f64 - p as f64).powi(2))
        .sum();
    let ss_tot: f64 = y.iter().map(|&t| (t as f64 - mean).powi(2)).sum();
    if ss_tot == 0.0 {
        // a constant target: 1 for a perfect prediction, else 0 (scikit-learn's
        // `force_finite`)
        return if ss_res == 0.0 { 1.0 } else { 0.0 };
    }
    1.0 - ss_res / ss_tot
}

/// Root mean squared error.
pub fn rmse(pred: &[f32], y: &[f32]) -> f64 {
    let mse = pred
        .iter()
        .zip(y)
        .map(|(&p, &t)| (t as f64 - p as f64).powi(2))
        .sum::<f64>()
        / y.len() as f64;
    mse.sqrt()
}

/// Mean absolute error.
pub fn mae(pred: &[f32], y: &[f32]) -> f64 {
    pred.iter()
        .zip(y)
        .map(|(&p, &t)| (t as f64 - p as f64).abs())
        .sum::<f64>()
        / y.len() as f64
}

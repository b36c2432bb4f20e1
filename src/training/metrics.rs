//! Metrics computed over a whole epoch's predictions (exact, not running averages).
use crate::error::{Result, WideDeepError};
use crate::training::Objective;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// Evaluation metrics. Precision, recall and F1 are for the positive class in binary problems
/// and macro-averaged over classes in multiclass ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Accuracy,
    Precision,
    Recall,
    F1,
    /// Area under the ROC curve (binary).
    Auc,
    R2,
    Rmse,
}

impl Metric {
    /// The key used in the training history (`val_` is prefixed for validation).
    pub fn name(&self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
            Metric::F1 => "f1",
            Metric::Auc => "auc",
            Metric::R2 => "r2",
            Metric::Rmse => "rmse",
        }
    }

    /// Whether larger values are better (for early stopping on a metric).
    pub fn higher_is_better(&self) -> bool {
        !matches!(self, Metric::Rmse)
    }

    /// Checks that the metric makes sense for `objective`.
    pub fn check(&self, objective: &Objective) -> Result<()> {
        let ok = match self {
            Metric::Accuracy | Metric::Precision | Metric::Recall | Metric::F1 => {
                objective.is_classification()
            }
            Metric::Auc => matches!(objective, Objective::Binary),
            Metric::R2 | Metric::Rmse => !objective.is_classification(),
        };
        if ok {
            Ok(())
        } else {
            Err(WideDeepError::config(
                "metrics",
                format!(
                    "{} does not apply to the {} objective",
                    self.name(),
                    objective.name()
                ),
            ))
        }
    }

    /// Computes the metric from `scores` (see [`Objective::scores`]) and targets.
    pub fn compute(&self, objective: &Objective, scores: &Tensor, target: &Tensor) -> Result<f64> {
        self.check(objective)?;
        let scores = scores.to_device(Device::Cpu).to_kind(Kind::Float);
        let target = target.to_device(Device::Cpu);
        let value = match objective {
            Objective::Regression => {
                let p = to_f32(&scores.view([-1]))?;
                let y = to_f32(&target.to_kind(Kind::Float).view([-1]))?;
                match self {
                    Metric::R2 => r2(&p, &y),
                    _ => rmse(&p, &y),
                }
            }
            Objective::Binary => {
                let p = to_f32(&scores.view([-1]))?;
                let y: Vec<i64> = to_f32(&target.to_kind(Kind::Float).view([-1]))?
                    .iter()
                    .map(|&v| (v > 0.5) as i64)
                    .collect();
                if *self == Metric::Auc {
                    binary_auc(&p, &y)
                } else {
                    let pred: Vec<i64> = p.iter().map(|&s| (s > 0.5) as i64).collect();
                    classification(*self, &pred, &y, 2, true)
                }
            }
            Objective::Multiclass { n_classes } => {
                let pred = Vec::<i64>::try_from(scores.argmax(-1, false))?;
                let y = Vec::<i64>::try_from(target.to_kind(Kind::Int64).view([-1]))?;
                classification(*self, &pred, &y, *n_classes as usize, false)
            }
        };
        Ok(value)
    }
}

fn to_f32(t: &Tensor) -> Result<Vec<f32>> {
    Ok(Vec::<f32>::try_from(t.contiguous())?)
}

fn classification(m: Metric, pred: &[i64], y: &[i64], k: usize, binary: bool) -> f64 {
    if m == Metric::Accuracy {
        return accuracy(pred, y);
    }
    let classes: Vec<i64> = if binary {
        vec![1]
    } else {
        (0..k as i64).collect()
    };
    let per_class: Vec<f64> = classes
        .iter()
        .map(|&c| {
            let (mut tp, mut fp, mut fn_) = (0f64, 0f64, 0f64);
            for (&p, &t) in pred.iter().zip(y) {
                match (p == c, t == c) {
                    (true, true) => tp += 1.0,
                    (true, false) => fp += 1.0,
                    (false, true) => fn_ += 1.0,
                    _ => {}
                }
            }
            let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
            let recall = if tp + fn_ > 0.0 { tp / (tp + fn_) } else { 0.0 };
            match m {
                Metric::Precision => precision,
                Metric::Recall => recall,
                _ if precision + recall > 0.0 => 2.0 * precision * recall / (precision + recall),
                _ => 0.0,
            }
        })
        .collect();
    per_class.iter().sum::<f64>() / per_class.len() as f64
}

/// Fraction of equal labels.
pub fn accuracy(pred: &[i64], y: &[i64]) -> f64 {
    if y.is_empty() {
        return f64::NAN;
    }
    pred.iter().zip(y).filter(|(p, t)| p == t).count() as f64 / y.len() as f64
}

/// ROC AUC from scores and 0/1 labels (Mann–Whitney, ties counted half). NaN when a class is
/// absent.
pub fn binary_auc(scores: &[f32], y: &[i64]) -> f64 {
    let n_pos = y.iter().filter(|&&v| v == 1).count() as f64;
    let n_neg = y.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return f64::NAN;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // average 1-based ranks over ties, summed over the positives
    let mut rank_sum_pos = 0f64;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_pos += idx[i..=j].iter().filter(|&&k| y[k] == 1).count() as f64 * avg_rank;
        i = j + 1;
    }
    (rank_sum_pos - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

/// Coefficient of determination.
pub fn r2(pred: &[f32], y: &[f32]) -> f64 {
    let mean = y.iter().map(|&v| v as f64).sum::<f64>() / y.len() as f64;
    let ss_res: f64 = pred
        .iter()
        .zip(y)
        .map(|(&p, &t)| (t as f64 - p as f64).powi(2))
        .sum();
    let ss_tot: f64 = y.iter().map(|&t| (t as f64 - mean).powi(2)).sum();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_by_hand() {
        // pairs (pos, neg): (0.8,0.1) (0.8,0.4) (0.8,0.8 tie=½) (0.35,0.1) (0.35,0.4 lost) (0.35,0.8 lost)
        let s = [0.1f32, 0.4, 0.35, 0.8, 0.8];
        let y = [0i64, 0, 1, 1, 0];
        assert!((binary_auc(&s, &y) - 3.5 / 6.0).abs() < 1e-12);
        assert!(binary_auc(&s, &[1, 1, 1, 1, 1]).is_nan());
    }

    #[test]
    fn binary_precision_recall_f1() {
        let obj = Objective::Binary;
        let scores = Tensor::from_slice(&[0.9f32, 0.8, 0.2, 0.6, 0.1]);
        let y = Tensor::from_slice(&[1f32, 0., 1., 1., 0.]);
        // predicted 1 1 0 1 0 → tp 2, fp 1, fn 1
        let get = |m: Metric| m.compute(&obj, &scores, &y).unwrap();
        assert!((get(Metric::Accuracy) - 0.6).abs() < 1e-12);
        assert!((get(Metric::Precision) - 2.0 / 3.0).abs() < 1e-12);
        assert!((get(Metric::Recall) - 2.0 / 3.0).abs() < 1e-12);
        assert!((get(Metric::F1) - 2.0 / 3.0).abs() < 1e-12);
        // positives 0.9, 0.2, 0.6 vs negatives 0.8, 0.1: 4 of 6 pairs ordered
        assert!((get(Metric::Auc) - 4.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn multiclass_macro_average() {
        let obj = Objective::Multiclass { n_classes: 3 };
        let scores = Tensor::from_slice(&[
            0.8f32, 0.1, 0.1, 0.1, 0.8, 0.1, 0.1, 0.8, 0.1, 0.1, 0.1, 0.8,
        ])
        .view([4, 3]);
        let y = Tensor::from_slice(&[0i64, 1, 2, 2]);
        // pred 0 1 1 2: class0 p=1 r=1, class1 p=1/2 r=1, class2 p=1 r=1/2
        let p = Metric::Precision.compute(&obj, &scores, &y).unwrap();
        assert!((p - 2.5 / 3.0).abs() < 1e-12);
        let r = Metric::Recall.compute(&obj, &scores, &y).unwrap();
        assert!((r - 2.5 / 3.0).abs() < 1e-12);
        assert!((Metric::Accuracy.compute(&obj, &scores, &y).unwrap() - 0.75).abs() < 1e-12);
        assert!(Metric::Auc.check(&obj).is_err());
    }

    #[test]
    fn regression_metrics() {
        let p = [1.0f32, 2.0, 3.0];
        let y = [1.0f32, 2.0, 5.0];
        assert!((rmse(&p, &y) - (4.0f64 / 3.0).sqrt()).abs() < 1e-9);
        // mean 8/3, ss_tot = 25/9+4/9+49/9 = 78/9, ss_res = 4
        assert!((r2(&p, &y) - (1.0 - 4.0 / (78.0 / 9.0))).abs() < 1e-9);
        assert!(Metric::Accuracy.check(&Objective::Regression).is_err());
    }
}

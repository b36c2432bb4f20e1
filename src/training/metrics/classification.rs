//! Label and score metrics for classification: accuracy, top-k accuracy, precision, recall,
//! F-beta (binary, macro, micro) and ROC AUC (binary, one-vs-rest macro).

/// How per-class precision, recall and F-beta are combined in multiclass problems.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Average {
    /// The unweighted mean over the classes that occur in the targets or the predictions
    /// (scikit-learn's `average="macro"`; the reference's `average=True`).
    #[default]
    Macro,
    /// Counts pooled over all classes before dividing (scikit-learn's `average="micro"`); for
    /// single-label data precision, recall and F-beta all equal the accuracy.
    Micro,
}

/// Which count-based score to compute.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Score {
    Precision,
    Recall,
    FBeta(f64),
}

/// Fraction of equal labels (NaN for no rows).
pub fn accuracy(pred: &[i64], y: &[i64]) -> f64 {
    if y.is_empty() {
        return f64::NAN;
    }
    pred.iter().zip(y).filter(|(p, t)| p == t).count() as f64 / y.len() as f64
}

/// Fraction of rows whose target is among the `k` highest scores; `probs` is row-major
/// `[N, n_classes]`. Ties are broken towards the lower class index.
pub fn top_k_accuracy(probs: &[f32], n_classes: usize, y: &[i64], k: usize) -> f64 {
    if y.is_empty() || n_classes == 0 {
        return f64::NAN;
    }
    let hits = probs
        .chunks(n_classes)
        .zip(y)
        .filter(|(row, &t)| {
            let t = t as usize;
            if t >= row.len() {
                return false;
            }
            // rank of the target: classes scoring higher, plus equal ones before it
            let higher = row
                .iter()
                .enumerate()
                .filter(|&(c, &s)| s > row[t] || (s == row[t] && c < t))
                .count();
            higher < k
        })
        .count();
    hits as f64 / y.len() as f64
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

fn from_counts(score: Score, tp: f64, fp: f64, fn_: f64) -> f64 {
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fn_);
    match score {
        Score::Precision => precision,
        Score::Recall => recall,
        Score::FBeta(beta) => {
            let b2 = beta * beta;
            ratio((1.0 + b2) * precision * recall, b2 * precision + recall)
        }
    }
}

/// Precision, recall or F-beta from labels in `0..k`. `binary` scores the positive class 1
/// only (as scikit-learn's `average="binary"`); otherwise `average` combines the classes.
/// Undefined ratios (no predicted or no true rows of a class) count as 0.
pub(crate) fn count_score(
    score: Score,
    pred: &[i64],
    y: &[i64],
    k: usize,
    binary: bool,
    average: Average,
) -> f64 {
    if y.is_empty() {
        return f64::NAN;
    }
    let k = k.max(2);
    let (mut tp, mut fp, mut fn_) = (vec![0f64; k], vec![0f64; k], vec![0f64; k]);
    let mut seen = vec![false; k];
    for (&p, &t) in pred.iter().zip(y) {
        let (p, t) = (
            p.clamp(0, k as i64 - 1) as usize,
            t.clamp(0, k as i64 - 1) as usize,
        );
        seen[p] = true;
        seen[t] = true;
        if p == t {
            tp[t] += 1.0;
        } else {
            fp[p] += 1.0;
            fn_[t] += 1.0;
        }
    }
    if binary && average == Average::Macro {
        return from_counts(score, tp[1], fp[1], fn_[1]);
    }
    match average {
        Average::Micro => from_counts(score, tp.iter().sum(), fp.iter().sum(), fn_.iter().sum()),
        Average::Macro => {
            let per: Vec<f64> = (0..k)
                .filter(|&c| seen[c])
                .map(|c| from_counts(score, tp[c], fp[c], fn_[c]))
                .collect();
            per.iter().sum::<f64>() / per.len().max(1) as f64
        }
    }
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

/// One-vs-rest ROC AUC averaged over classes (scikit-learn's `multi_class="ovr",
/// average="macro"`): class `c`'s AUC uses column `c` of `probs` (row-major `[N, n_classes]`)
/// against `y == c`. Classes absent from `y` (AUC undefined) are left out; NaN if none is left.
pub fn ovr_macro_auc(probs: &[f32], n_classes: usize, y: &[i64]) -> f64 {
    let aucs: Vec<f64> = (0..n_classes)
        .map(|c| {
            let col: Vec<f32> = probs.chunks(n_classes).map(|r| r[c]).collect();
            let yc: Vec<i64> = y.iter().map(|&t| (t == c as i64) as i64).collect();
            binary_auc(&col, &yc)
        })
        .filter(|a| !a.is_nan())
        .collect();
    if aucs.is_empty() {
        f64::NAN
    } else {
        aucs.iter().sum::<f64>() / aucs.len() as f64
    }
}

//! Ranking metrics for recommendation-style data, grouped as the reference groups them.
//!
//! **Grouping**: the rows come in consecutive groups of `n_items` (one group per user or
//! query, e.g. each user's candidate items in a fixed order), so the flat scores `[N]` and
//! targets `[N]` are read as `[N / n_items, n_items]` matrices; `N` must be a multiple of
//! `n_items`. Within a group the items are ranked by score, highest first (ties: the earlier
//! row first), and the metric is the mean over groups. Relevance is the target: graded
//! (`2^rel − 1` gain) for NDCG, `rel > 0` for the others. As in the reference, MAP@k and
//! Recall@k divide by the number of relevant items of the whole group (at least 1) and
//! Precision@k by `k`.
//!
//! Because groups are consecutive rows, these metrics are meant for evaluation data kept in
//! order (`Trainer::evaluate`, or a validation set passed to `fit`): training-set values are
//! computed on shuffled rows and a `val_split` draws rows out of groups.

/// Indices of the `k` best-scored items of `scores`, best first.
fn top_k(scores: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

fn groups<'a>(
    scores: &'a [f32],
    rel: &'a [f32],
    n_items: usize,
) -> impl Iterator<Item = (&'a [f32], &'a [f32])> {
    scores.chunks(n_items).zip(rel.chunks(n_items))
}

fn mean_over_groups(
    scores: &[f32],
    rel: &[f32],
    n_items: usize,
    f: impl Fn(&[f32], &[f32]) -> f64,
) -> f64 {
    if scores.is_empty() || n_items == 0 {
        return f64::NAN;
    }
    let v: Vec<f64> = groups(scores, rel, n_items).map(|(s, r)| f(s, r)).collect();
    v.iter().sum::<f64>() / v.len() as f64
}

/// NDCG@k: `DCG = Σ_{i<k} (2^{rel_i} − 1)/log2(i + 2)` over the top-k items divided by the
/// DCG of the ideal order (0 when the group has no relevance).
pub fn ndcg_at_k(scores: &[f32], rel: &[f32], n_items: usize, k: usize) -> f64 {
    mean_over_groups(scores, rel, n_items, |s, r| {
        let gain = |v: f32| 2f64.powf(v as f64) - 1.0;
        let disc = |i: usize| 1.0 / ((i + 2) as f64).log2();
        let dcg: f64 = top_k(s, k)
            .iter()
            .enumerate()
            .map(|(i, &j)| gain(r[j]) * disc(i))
            .sum();
        let mut ideal: Vec<f32> = r.to_vec();
        ideal.sort_by(|a, b| b.total_cmp(a));
        let idcg: f64 = ideal
            .iter()
            .take(k)
            .enumerate()
            .map(|(i, &v)| gain(v) * disc(i))
            .sum();
        if idcg > 0.0 {
            dcg / idcg
        } else {
            0.0
        }
    })
}

/// MAP@k: `Σ_{i<k} P@(i+1)·rel_i / max(#relevant in the group, 1)`.
pub fn map_at_k(scores: &[f32], rel: &[f32], n_items: usize, k: usize) -> f64 {
    mean_over_groups(scores, rel, n_items, |s, r| {
        let n_rel = r.iter().filter(|&&v| v > 0.0).count().max(1) as f64;
        let mut hits = 0f64;
        let mut sum = 0f64;
        for (i, &j) in top_k(s, k).iter().enumerate() {
            if r[j] > 0.0 {
                hits += 1.0;
                sum += hits / (i + 1) as f64;
            }
        }
        sum / n_rel
    })
}

/// HitRatio@k: 1 when any of the top-k items is relevant, else 0.
pub fn hit_ratio_at_k(scores: &[f32], rel: &[f32], n_items: usize, k: usize) -> f64 {
    mean_over_groups(scores, rel, n_items, |s, r| {
        top_k(s, k).iter().any(|&j| r[j] > 0.0) as i64 as f64
    })
}

/// Precision@k: relevant items among the top k, divided by `k`.
pub fn precision_at_k(scores: &[f32], rel: &[f32], n_items: usize, k: usize) -> f64 {
    mean_over_groups(scores, rel, n_items, |s, r| {
        top_k(s, k).iter().filter(|&&j| r[j] > 0.0).count() as f64 / k as f64
    })
}

/// Recall@k: relevant items among the top k, divided by `max(#relevant in the group, 1)`.
pub fn recall_at_k(scores: &[f32], rel: &[f32], n_items: usize, k: usize) -> f64 {
    mean_over_groups(scores, rel, n_items, |s, r| {
        let n_rel = r.iter().filter(|&&v| v > 0.0).count().max(1) as f64;
        top_k(s, k).iter().filter(|&&j| r[j] > 0.0).count() as f64 / n_rel
    })
}

//! The background data set: the rows that stand in for "feature absent" (Shapley methods) or
//! serve as references (gradient methods), with a weight each.
use crate::error::{Result, WideDeepError};
use crate::macros::{bail, ensure};
use crate::models::ModelInput;
use linfa::traits::{Fit, Predict};
use linfa::DatasetBase;
use linfa_clustering::KMeans;
use ndarray::Array2;
use rand::seq::index::sample as sample_indices;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_xoshiro::rand_core::SeedableRng as _;
use rand_xoshiro::Xoshiro256Plus;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// How the background is drawn from the data given to the explainer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackgroundKind {
    /// A uniform random sample of rows (without replacement), equal weights.
    #[default]
    Sample,
    /// k-means summary: the data row nearest each k-means centre, weighted by the size of its
    /// cluster (see [`Background::kmeans`]).
    KMeans,
}

/// At most this many rows are clustered by [`Background::kmeans`] (a seeded sample of them).
pub const KMEANS_MAX_ROWS: usize = 10_000;

/// Most Lloyd iterations of [`Background::kmeans`] (it stops earlier when the centres move by
/// less than linfa's default tolerance, 10⁻⁴).
const KMEANS_MAX_ITERATIONS: u64 = 100;

/// Background rows (a [`ModelInput`] of `len()` rows) with weights summing to 1.
#[derive(Debug)]
pub struct Background {
    input: ModelInput,
    weights: Vec<f64>,
    rows: Vec<usize>,
}

impl Background {
    /// Wraps given rows with given weights (normalised to sum 1).
    ///
    /// # Shapes
    /// - `input`: `[M, ...]` per input, `weights`: `[M]`
    pub fn weighted(input: ModelInput, weights: Vec<f64>) -> Result<Self> {
        let n = input.batch_size() as usize;
        let field = "explain.background";
        ensure!(
            input.tensors().next().is_some() && n > 0,
            config(field),
            "needs at least one row"
        );
        ensure!(
            weights.len() == n,
            config(field),
            "{} weights for {n} rows",
            weights.len()
        );
        ensure!(
            weights.iter().all(|w| w.is_finite() && *w >= 0.0),
            config(field),
            "weights must be finite and non-negative"
        );
        let total: f64 = weights.iter().sum();
        if total <= 0.0 {
            bail!(config(field), "weights sum to 0");
        }
        Ok(Self {
            input,
            weights: weights.iter().map(|w| w / total).collect(),
            rows: (0..n).collect(),
        })
    }

    /// `n` rows of `data` drawn uniformly without replacement (all rows when `n ≥` their
    /// number), equal weights.
    ///
    /// # Shapes
    /// - `data`: `[N, ...]` per input; the background holds `[min(n, N), ...]`
    pub fn sample(data: &ModelInput, n: usize, seed: u64) -> Result<Self> {
        let total = check_data(data)?;
        let rows: Vec<usize> = if n >= total {
            (0..total).collect()
        } else {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut r = sample_indices(&mut rng, total, n).into_vec();
            r.sort_unstable();
            r
        };
        Ok(Self::from_rows(data, rows.clone(), vec![1.0; rows.len()]))
    }

    /// A k-means summary of `data` in `k` weighted rows: k-means (linfa's, k-means++ start,
    /// seeded) over the wide and categorical columns one-hot encoded and the continuous
    /// columns standardised, on at most [`KMEANS_MAX_ROWS`] rows; each centre is then replaced
    /// by the data row nearest to it, so every background row is a real input (a centre of
    /// categorical codes would not be), weighted by its cluster's share of the rows. Text and
    /// image columns take no part in the distance; data with only those falls back to
    /// [`Background::sample`].
    ///
    /// # Shapes
    /// - `data`: `[N, ...]` per input; the background holds `[≤ k, ...]` (an empty cluster
    ///   gives no row)
    pub fn kmeans(data: &ModelInput, k: usize, seed: u64) -> Result<Self> {
        let total = check_data(data)?;
        if k >= total {
            return Self::sample(data, k, seed);
        }
        ensure!(
            k > 0,
            config("explain.background_size"),
            "must be at least 1"
        );
        let fit_rows: Vec<usize> = if total > KMEANS_MAX_ROWS {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut r = sample_indices(&mut rng, total, KMEANS_MAX_ROWS).into_vec();
            r.sort_unstable();
            r
        } else {
            (0..total).collect()
        };
        let idx = Tensor::from_slice(&fit_rows.iter().map(|&r| r as i64).collect::<Vec<_>>());
        let Some(x) = tch::no_grad(|| features(data, &idx)) else {
            return Self::sample(data, k, seed);
        };
        let (rows, weights) = cluster_medoids(&x, k, seed)?;
        let rows = rows.into_iter().map(|i| fit_rows[i]).collect();
        Ok(Self::from_rows(data, rows, weights))
    }

    /// Rows `rows` of `data` with weights `weights` (normalised to sum 1).
    fn from_rows(data: &ModelInput, rows: Vec<usize>, weights: Vec<f64>) -> Self {
        let idx = Tensor::from_slice(&rows.iter().map(|&r| r as i64).collect::<Vec<_>>());
        let input = data.map(|t| t.index_select(0, &idx.to_device(t.device())));
        let total: f64 = weights.iter().sum();
        Self {
            input,
            weights: weights.iter().map(|w| w / total).collect(),
            rows,
        }
    }

    /// Number of background rows.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// Whether there are no rows (never, for a background that was built).
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// The rows.
    ///
    /// # Shapes
    /// - returns `[len(), ...]` per input
    pub fn input(&self) -> &ModelInput {
        &self.input
    }

    /// Weights (sum 1), one per row.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Which rows of the data they were drawn from (`0..len()` for [`Background::weighted`]).
    pub fn rows(&self) -> &[usize] {
        &self.rows
    }

    /// A copy with the rows on `device`.
    pub(crate) fn to_device(&self, device: Device) -> Background {
        Background {
            input: self.input.to_device(device),
            weights: self.weights.clone(),
            rows: self.rows.clone(),
        }
    }
}

/// The number of rows of `data`; errors when it has none.
fn check_data(data: &ModelInput) -> Result<usize> {
    let n = data.batch_size();
    ensure!(
        data.tensors().next().is_some() && n > 0,
        config("explain.background"),
        "the background data has no rows"
    );
    Ok(n as usize)
}

/// The clustering features of rows `idx` (on the CPU, f32 `[n, D]`), `None` when only text or
/// image inputs are present.
fn features(data: &ModelInput, idx: &Tensor) -> Option<Tensor> {
    let mut parts = Vec::new();
    // each index column one-hot over its own range: a differing column adds 2 to the squared
    // distance
    let mut one_hot = |t: &Tensor| {
        let t = t.to_device(Device::Cpu).index_select(0, idx);
        for j in 0..t.size()[1] {
            let col = t.select(1, j);
            let lo = col.min().int64_value(&[]);
            let width = col.max().int64_value(&[]) - lo + 1;
            parts.push((col - lo).one_hot(width).to_kind(Kind::Float));
        }
    };
    if let Some(w) = &data.wide {
        one_hot(w);
    }
    if let Some(c) = &data.cat {
        one_hot(c);
    }
    if let Some(c) = &data.cont {
        let c = c
            .to_device(Device::Cpu)
            .index_select(0, idx)
            .to_kind(Kind::Float);
        let mean = c.mean_dim(0, true, Kind::Float);
        let std = c.std_dim(0, false, true).clamp_min(1e-6);
        parts.push((c - mean) / std);
    }
    if parts.is_empty() {
        None
    } else {
        Some(Tensor::cat(&parts, 1))
    }
}

/// k-means of the rows of `x` into `k` clusters (linfa: one run from a k-means++ start seeded
/// by `seed`, then Lloyd iterations), then each cluster's medoid: the row nearest its centre.
/// Returns the medoids' row indices (ascending) with their clusters' shares of the rows.
///
/// # Shapes
/// - `x`: `[n, D]` f32
fn cluster_medoids(x: &Tensor, k: usize, seed: u64) -> Result<(Vec<usize>, Vec<f64>)> {
    let (n, d) = (x.size()[0] as usize, x.size()[1] as usize);
    let flat: Vec<f32> = Vec::try_from(x.contiguous().view([-1]))?;
    let fail = |e: &dyn std::fmt::Display| {
        WideDeepError::config("explain.background", format!("k-means: {e}"))
    };
    let records = Array2::from_shape_vec((n, d), flat).map_err(|e| fail(&e))?;
    let dataset = DatasetBase::from(records);
    let model = KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(seed))
        .n_runs(1)
        .max_n_iterations(KMEANS_MAX_ITERATIONS)
        .fit(&dataset)
        .map_err(|e| fail(&e))?;
    let labels = model.predict(&dataset);
    let centres = model.centroids();
    // medoid of each cluster: the row nearest its centre (the first on ties)
    let mut best: Vec<Option<(f32, usize)>> = vec![None; k];
    let mut size = vec![0usize; k];
    for (i, &c) in labels.iter().enumerate() {
        size[c] += 1;
        let row = dataset.records().row(i);
        let di: f32 = row
            .iter()
            .zip(centres.row(c))
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        if best[c].is_none_or(|(bd, _)| di < bd) {
            best[c] = Some((di, i));
        }
    }
    // (each row is in one cluster: the medoids are distinct; empty clusters have none)
    let mut picked: Vec<(usize, f64)> = best
        .iter()
        .zip(&size)
        .filter_map(|(b, &s)| b.map(|(_, i)| (i, s as f64 / n as f64)))
        .collect();
    picked.sort_by_key(|(r, _)| *r);
    Ok(picked.into_iter().unzip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs() -> ModelInput {
        // three well separated groups of continuous rows plus a categorical column that agrees
        let mut cont = Vec::new();
        let mut cat = Vec::new();
        for g in 0..3 {
            for i in 0..20 {
                cont.push(g as f32 * 10.0 + (i % 5) as f32 * 0.1);
                cont.push(-(g as f32) * 10.0);
                cat.push(g as i64 + 1);
            }
        }
        ModelInput {
            cont: Some(Tensor::from_slice(&cont).view([60, 2])),
            cat: Some(Tensor::from_slice(&cat).view([60, 1])),
            ..Default::default()
        }
    }

    #[test]
    fn kmeans_finds_the_groups_with_real_rows_and_their_weights() {
        let data = blobs();
        let bg = Background::kmeans(&data, 3, 7).unwrap();
        assert_eq!(bg.len(), 3);
        let mut groups: Vec<usize> = bg.rows().iter().map(|r| r / 20).collect();
        groups.sort_unstable();
        assert_eq!(groups, [0, 1, 2]);
        for w in bg.weights() {
            assert!((w - 1.0 / 3.0).abs() < 1e-12);
        }
        let again = Background::kmeans(&data, 3, 7).unwrap();
        assert_eq!(bg.rows(), again.rows());
        // the rows are copies of data rows
        let r = bg.rows()[1] as i64;
        assert!(bg
            .input()
            .cont
            .as_ref()
            .unwrap()
            .get(1)
            .equal(&data.cont.as_ref().unwrap().get(r)));
    }

    #[test]
    fn sample_is_seeded_and_capped() {
        let data = blobs();
        let a = Background::sample(&data, 10, 3).unwrap();
        let b = Background::sample(&data, 10, 3).unwrap();
        assert_eq!(a.rows(), b.rows());
        assert_eq!(a.len(), 10);
        assert_eq!(Background::sample(&data, 500, 3).unwrap().len(), 60);
        assert!((a.weights().iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn bad_weights_are_errors() {
        let data = blobs();
        assert!(Background::weighted(data.map(|t| t.shallow_clone()), vec![1.0; 3]).is_err());
        assert!(Background::weighted(data.map(|t| t.shallow_clone()), vec![0.0; 60]).is_err());
        assert!(Background::sample(&ModelInput::default(), 5, 0).is_err());
    }
}

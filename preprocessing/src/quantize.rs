//! Binning of continuous columns, shared by [`TabPreprocessor::quantize`] and
//! [`WidePreprocessor::quantize`].
//!
//! [`TabPreprocessor::quantize`]: crate::TabPreprocessor::quantize
//! [`WidePreprocessor::quantize`]: crate::WidePreprocessor::quantize

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::column;
use crate::error::{PreprocessingError, Result};
use crate::macros::{bail, ensure};

/// How a continuous column is binned (turned into a categorical one).
///
/// Bins are right-closed, `(e_i, e_{i+1}]`, except the first, which also holds its lower edge;
/// values below the first edge fall in the first bin and values above the last edge in the
/// last bin. A value in bin `i` (0-based) gets the label `i + 1`; null and NaN get 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantization {
    /// `n ≥ 2` bins with quantile edges fitted on the training data (the `k / n` quantiles,
    /// linearly interpolated as NumPy's default, for `k = 0..=n`). Repeated edges are merged,
    /// so a column with many equal values gets fewer bins; a constant column gets one.
    Bins(usize),
    /// Explicit bin edges, lowest to highest: `m + 1` strictly increasing finite values give
    /// `m` bins.
    Edges(Vec<f64>),
}

impl Quantization {
    /// Checks the setting for column `col`; errors are
    /// [`InvalidConfig`](PreprocessingError::InvalidConfig) with field `"quantize"`.
    pub(crate) fn validate(&self, col: &str) -> Result<()> {
        match self {
            Quantization::Bins(n) => {
                ensure!(
                    *n >= 2,
                    config("quantize"),
                    "`{col}`: the number of bins must be at least 2, got {n}"
                );
            }
            Quantization::Edges(edges) => {
                ensure!(
                    edges.len() >= 2,
                    config("quantize"),
                    "`{col}`: needs at least 2 edges, got {}",
                    edges.len()
                );
                if let Some(e) = edges.iter().find(|e| !e.is_finite()) {
                    bail!(config("quantize"), "`{col}`: edges must be finite, got {e}");
                }
                if let Some(w) = edges.windows(2).find(|w| w[0] >= w[1]) {
                    bail!(
                        config("quantize"),
                        "`{col}`: edges must be strictly increasing, got {} then {}",
                        w[0],
                        w[1]
                    );
                }
            }
        }
        Ok(())
    }

    /// The bin edges for column `name`: the given ones, or quantiles of the finite values of
    /// `col`. Errors: an infinite value ([`NonFinite`](PreprocessingError::NonFinite)), no
    /// finite value ([`AllNull`](PreprocessingError::AllNull)).
    pub(crate) fn fit_edges(&self, col: &Column, name: &str) -> Result<Vec<f64>> {
        match self {
            Quantization::Edges(edges) => Ok(edges.clone()),
            Quantization::Bins(n) => {
                let (mut observed, _) = observed_values(col, name)?;
                Ok(quantile_edges(&mut observed, *n))
            }
        }
    }
}

/// Sets `col`'s quantization in a preprocessor's list, replacing an earlier one.
pub(crate) fn set(list: &mut Vec<(String, Quantization)>, col: &str, q: Quantization) {
    list.retain(|(c, _)| c != col);
    list.push((col.to_owned(), q));
}

/// The non-null, non-NaN values of a numeric column and its length. Errors: an infinite
/// value ([`NonFinite`](PreprocessingError::NonFinite)), no such value
/// ([`AllNull`](PreprocessingError::AllNull)).
pub(crate) fn observed_values(col: &Column, name: &str) -> Result<(Vec<f64>, usize)> {
    let values = column::as_f64(col)?;
    let mut observed = Vec::with_capacity(values.len() - values.null_count());
    for (row, value) in values.iter().enumerate() {
        match value {
            Some(v) if v.is_infinite() => bail!(PreprocessingError::non_finite(name, row, v)),
            Some(v) if !v.is_nan() => observed.push(v),
            _ => {}
        }
    }
    ensure!(!observed.is_empty(), PreprocessingError::all_null(name));
    Ok((observed, values.len()))
}

/// Number of bins of fitted `edges` (one for a constant column's two equal edges).
pub(crate) fn n_bins(edges: &[f64]) -> usize {
    edges.len().saturating_sub(1).max(1)
}

/// Label of `value`: 0 for null/NaN, else the 1-based bin (see [`Quantization`]).
#[inline]
pub(crate) fn label(edges: &[f64], value: Option<f64>) -> i64 {
    match value {
        Some(v) if !v.is_nan() => {
            let inner = &edges[1..edges.len().saturating_sub(1).max(1)];
            inner.partition_point(|&e| e < v) as i64 + 1
        }
        _ => 0,
    }
}

/// Midpoint of the bin with label `code` (`None` for 0 and out-of-range codes).
pub(crate) fn midpoint(edges: &[f64], code: i64) -> Option<f64> {
    let i = usize::try_from(code).ok()?.checked_sub(1)?;
    if i >= n_bins(edges) {
        return None;
    }
    let hi = edges.get(i + 1).unwrap_or(&edges[i]);
    Some((edges[i] + hi) / 2.0)
}

/// Human-readable name of the bin with label `code` (1-based): `"[e0, e1]"` for the first,
/// `"(e_i, e_{i+1}]"` for the others.
pub(crate) fn bin_name(edges: &[f64], code: i64) -> String {
    let i = (code.max(1) - 1) as usize;
    let lo = edges[i.min(edges.len() - 1)];
    let hi = edges[(i + 1).min(edges.len() - 1)];
    let open = if i == 0 { '[' } else { '(' };
    format!("{open}{lo}, {hi}]")
}

/// Writes the bin labels of one column into `out` (shape `[n_rows]`); an infinite value is a
/// [`NonFinite`](PreprocessingError::NonFinite) error naming the column and row.
pub(crate) fn fill_labels(
    values: &Float64Chunked,
    edges: &[f64],
    name: &str,
    out: &mut [i64],
) -> Result<()> {
    for (row, (slot, value)) in out.iter_mut().zip(values.iter()).enumerate() {
        if let Some(v) = value.filter(|v| v.is_infinite()) {
            bail!(PreprocessingError::non_finite(name, row, v));
        }
        *slot = label(edges, value);
    }
    Ok(())
}

/// The `k / n` quantiles (`k = 0..=n`) of `values` (non-empty, no NaN), linearly
/// interpolated between order statistics, with repeated values merged. Reorders `values`.
pub(crate) fn quantile_edges(values: &mut [f64], n: usize) -> Vec<f64> {
    values.sort_unstable_by(f64::total_cmp);
    let last = values.len() - 1;
    let mut edges: Vec<f64> = Vec::with_capacity(n + 1);
    for k in 0..=n {
        let pos = last as f64 * k as f64 / n as f64;
        let lo = (pos.floor() as usize).min(last);
        let hi = (lo + 1).min(last);
        let e = values[lo] + (pos - lo as f64) * (values[hi] - values[lo]);
        if edges.last().is_none_or(|&prev| e > prev) {
            edges.push(e);
        }
    }
    if edges.len() == 1 {
        edges.push(edges[0]);
    }
    edges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_names_and_midpoints() {
        let edges = [0.0, 18.0, 65.0, 120.0];
        let got: Vec<i64> = [
            Some(-5.0),
            Some(0.0),
            Some(18.0),
            Some(18.5),
            Some(500.0),
            None,
        ]
        .iter()
        .map(|v| label(&edges, *v))
        .collect();
        assert_eq!(got, vec![1, 1, 1, 2, 3, 0]);
        assert_eq!(label(&edges, Some(f64::NAN)), 0);
        assert_eq!(bin_name(&edges, 1), "[0, 18]");
        assert_eq!(bin_name(&edges, 3), "(65, 120]");
        assert_eq!(midpoint(&edges, 2), Some(41.5));
        assert_eq!(midpoint(&edges, 0), None);
        assert_eq!(midpoint(&edges, 4), None);
        // A constant column: two equal edges, one bin.
        assert_eq!(n_bins(&[3.0, 3.0]), 1);
        assert_eq!(label(&[3.0, 3.0], Some(7.0)), 1);
    }

    #[test]
    fn quantiles_merge_repeats() {
        let mut v = vec![1.0, 1.0, 1.0, 1.0, 2.0];
        assert_eq!(quantile_edges(&mut v, 4), vec![1.0, 2.0]);
        let mut v: Vec<f64> = (0..=100).map(f64::from).collect();
        assert_eq!(
            quantile_edges(&mut v, 4),
            vec![0.0, 25.0, 50.0, 75.0, 100.0]
        );
    }

    #[test]
    fn validation_names_the_column() {
        let err = Quantization::Bins(1).validate("age").unwrap_err();
        assert!(err.to_string().contains("`age`"), "{err}");
        assert!(Quantization::Edges(vec![1.0, 1.0]).validate("a").is_err());
        assert!(Quantization::Edges(vec![1.0, f64::INFINITY])
            .validate("a")
            .is_err());
        assert!(Quantization::Edges(vec![1.0, 2.0]).validate("a").is_ok());
    }
}

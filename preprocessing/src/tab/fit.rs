//! What `fit` learns: the fitted state of each column and the statistics behind it.

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::TabPreprocessor;
use crate::column::{self, DtypeClass};
use crate::contract::Fit;
use crate::embed::embed_dim;
use crate::error::{PreprocessingError, Result};
use crate::macros::{bail, ensure};
use crate::quantize;
use crate::stream::{FitChunks, KeyUnion, ValueSketch, DEFAULT_SKETCH_CAPACITY};

/// What `fit` learned (saved under `fitted` in the JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct TabFitted {
    /// One entry per categorical column, in `cat_cols` order.
    pub(super) cat: Vec<FittedCat>,
    /// One entry per continuous column that is not quantized, in `continuous_cols` order.
    pub(super) cont: Vec<FittedCont>,
    /// One entry per quantized column, in `continuous_cols` order.
    #[serde(default)]
    pub(super) quant: Vec<FittedQuant>,
}

/// A quantized continuous column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct FittedQuant {
    /// Bin edges, lowest to highest (two equal values for a constant column).
    pub(super) edges: Vec<f64>,
    /// Embedding dimension of the bin labels.
    pub(super) embed_dim: usize,
}

impl FittedQuant {
    /// Number of bins (one for a constant column).
    pub(super) fn n_bins(&self) -> usize {
        quantize::n_bins(&self.edges)
    }
}

/// A categorical column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct FittedCat {
    /// Distinct values in sorted order; value `categories[i]` has code `i + 1`.
    pub(super) categories: Vec<String>,
    /// Embedding dimension.
    pub(super) embed_dim: usize,
    /// The column's dtype class at fit time (`None` in saves from before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) dtype: Option<DtypeClass>,
}

/// A continuous column that stays continuous.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct FittedCont {
    /// Imputation value for null and NaN.
    pub(super) median: f64,
    /// Shift applied before dividing by `std` (0 when not scaled).
    pub(super) mean: f64,
    /// Divisor (1 when not scaled).
    pub(super) std: f64,
    /// Whether this column gets a missing-value indicator column.
    pub(super) indicator: bool,
}

impl TabPreprocessor {
    /// The embedding dimension of the categorical (or quantized) column `name` with
    /// `cardinality` codes: the one set by `embed_dim_for`, else the embedding rule's.
    fn embed_dim_of(&self, name: &str, cardinality: usize) -> usize {
        self.embed_dims
            .iter()
            .find(|(c, _)| c == name)
            .map_or_else(|| embed_dim(cardinality, self.embedding_rule), |(_, d)| *d)
    }

    /// Bin edges and embedding dimension of the quantized column `name`.
    fn fit_quantized(&self, col: &Column, name: &str) -> Result<FittedQuant> {
        let q = self
            .quantization_of(name)
            .expect("called for quantized columns only");
        let edges = q.fit_edges(col, name)?;
        let n_bins = quantize::n_bins(&edges);
        let embed_dim = self.embed_dim_of(name, n_bins + 1);
        Ok(FittedQuant { edges, embed_dim })
    }

    /// Median, scaling statistics and indicator flag of the continuous column `name`.
    fn fit_continuous(&self, col: &Column, name: &str) -> Result<FittedCont> {
        let (mut observed, n_rows) = quantize::observed_values(col, name)?;
        let n_missing = n_rows - observed.len();
        let median = median(&mut observed);
        let (mut mean, mut std) = (0.0, 1.0);
        if self.scaling.applies_to(name) {
            // Statistics of the imputed column: observed values plus `n_missing` medians.
            let n = n_rows as f64;
            let missing = n_missing as f64;
            let stats = |s: f64| {
                let m = (observed.iter().map(|v| v / s).sum::<f64>() + missing * (median / s)) / n;
                let ss: f64 = observed
                    .iter()
                    .map(|v| (v / s - m) * (v / s - m))
                    .sum::<f64>()
                    + missing * (median / s - m) * (median / s - m);
                (m * s, (ss / n).sqrt() * s)
            };
            (mean, std) = stats(1.0);
            if !mean.is_finite() || !std.is_finite() {
                // Sums of values near f64::MAX overflow: the same on values divided by the
                // largest magnitude.
                let s = observed.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                (mean, std) = stats(s);
            }
            // A constant column (up to rounding) is only centred.
            if !std.is_finite() || std <= 10.0 * f64::EPSILON * mean.abs() {
                std = 1.0;
            }
            if !mean.is_finite() {
                let s = observed.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                let row = column::as_f64(col)?
                    .iter()
                    .position(|v| v.is_some_and(|v| v.abs() == s));
                bail!(PreprocessingError::OutOfRange {
                    column: name.to_owned(),
                    row: row.unwrap_or(0),
                    value: s,
                    reason: "the column's mean overflows".into(),
                });
            }
        }
        Ok(FittedCont {
            median,
            mean,
            std,
            indicator: self.missing_indicator && n_missing > 0,
        })
    }
}

impl Fit for TabPreprocessor {
    /// Learns categories, medians and scaling statistics from `df`.
    ///
    /// Errors: [`InvalidConfig`](PreprocessingError::InvalidConfig) (no column, embedding
    /// dimension 0, `embed_dim_for`/`Scaling::Columns`/`quantize` naming an unlisted column,
    /// bad bins or edges),
    /// [`DuplicateColumn`](PreprocessingError::DuplicateColumn),
    /// [`ConflictingRole`](PreprocessingError::ConflictingRole),
    /// [`EmptyFrame`](PreprocessingError::EmptyFrame),
    /// [`MissingColumn`](PreprocessingError::MissingColumn),
    /// [`WrongType`](PreprocessingError::WrongType),
    /// [`AllNull`](PreprocessingError::AllNull) (no non-null, non-NaN value) and
    /// [`NonFinite`](PreprocessingError::NonFinite) (an infinite continuous value).
    fn fit(&mut self, df: &DataFrame) -> Result<()> {
        self.validate_config()?;
        ensure!(df.height() > 0, PreprocessingError::EmptyFrame);
        self.check_columns(df)?;
        let cat = column::par_map(df.height(), self.cat_cols.len(), |j| {
            let name = &self.cat_cols[j];
            let col = column::get(df, name)?;
            let categories = column::distinct_keys(col)?;
            ensure!(!categories.is_empty(), PreprocessingError::all_null(name));
            Ok(FittedCat {
                embed_dim: self.embed_dim_of(name, categories.len() + 1),
                categories,
                dtype: DtypeClass::of(col.dtype()),
            })
        })?;
        let plain: Vec<&String> = self.plain_cols().collect();
        let cont = column::par_map(df.height(), plain.len(), |j| {
            self.fit_continuous(column::get(df, plain[j])?, plain[j])
        })?;
        let quantized: Vec<&String> = self.quant_cols().collect();
        let quant = column::par_map(df.height(), quantized.len(), |j| {
            let name = quantized[j];
            self.fit_quantized(column::get(df, name)?, name)
        })?;
        self.fitted = Some(TabFitted { cat, cont, quant });
        Ok(())
    }

    fn is_fitted(&self) -> bool {
        self.fitted.is_some()
    }
}

/// Median of `values` (non-empty, no NaN); the mean of the two middle values for an even
/// count. Reorders `values`.
fn median(values: &mut [f64]) -> f64 {
    let n = values.len();
    let mid = n / 2;
    let (below, upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        upper
    } else {
        let lower = below.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mid_value = (lower + upper) / 2.0;
        if mid_value.is_finite() {
            mid_value
        } else {
            lower / 2.0 + upper / 2.0
        }
    }
}

/// What [`FitChunks`] accumulates for a [`TabPreprocessor`].
#[derive(Debug)]
pub struct TabPartial {
    /// Per categorical column: its distinct keys and its dtype class in the first chunk.
    cat: Vec<(KeyUnion, Option<Option<DtypeClass>>)>,
    /// Per plain continuous column.
    cont: Vec<ValueSketch>,
    /// Per quantized column.
    quant: Vec<ValueSketch>,
    rows: usize,
}

impl TabPreprocessor {
    /// [`FittedCont`] from a sketch that no longer holds every value: the median of its sample,
    /// the exact mean and standard deviation of the observed values combined with the
    /// missing ones imputed by that median.
    fn fit_continuous_sketch(&self, s: &ValueSketch, name: &str) -> Result<FittedCont> {
        ensure!(s.observed() > 0, PreprocessingError::all_null(name));
        let median = median(&mut s.kept().to_vec());
        let n_missing = s.rows() - s.observed();
        let (mut mean, mut std) = (0.0, 1.0);
        if self.scaling.applies_to(name) {
            let (na, nb) = (s.observed() as f64, n_missing as f64);
            let n = na + nb;
            let delta = median - s.mean();
            mean = s.mean() + delta * nb / n;
            std = ((s.variance() * na + delta * delta * na * nb / n) / n).sqrt();
            if !std.is_finite() || std <= 10.0 * f64::EPSILON * mean.abs() {
                std = 1.0;
            }
            ensure!(
                mean.is_finite(),
                PreprocessingError::OutOfRange {
                    column: name.to_owned(),
                    row: 0,
                    value: s.mean(),
                    reason: "the column's mean overflows".into(),
                }
            );
        }
        Ok(FittedCont {
            median,
            mean,
            std,
            indicator: self.missing_indicator && n_missing > 0,
        })
    }
}

impl FitChunks for TabPreprocessor {
    type Partial = TabPartial;

    fn begin(&self) -> Result<TabPartial> {
        self.validate_config()?;
        let sketch = |k: usize| ValueSketch::new(DEFAULT_SKETCH_CAPACITY, k as u64);
        Ok(TabPartial {
            cat: vec![(KeyUnion::default(), None); self.cat_cols.len()],
            cont: (0..self.plain_cols().count()).map(sketch).collect(),
            quant: (0..self.quant_cols().count())
                .map(|k| sketch(1000 + k))
                .collect(),
            rows: 0,
        })
    }

    /// Errors: those of [`fit`](Fit::fit) for the chunk, rows counted from the stream's start.
    fn update(
        &self,
        p: &mut TabPartial,
        _pass: usize,
        chunk: &DataFrame,
        offset: usize,
    ) -> Result<()> {
        if chunk.height() == 0 {
            return Ok(());
        }
        self.check_columns(chunk)?;
        for (name, (keys, dtype)) in self.cat_cols.iter().zip(&mut p.cat) {
            let col = column::get(chunk, name)?;
            keys.add(col)?;
            dtype.get_or_insert_with(|| DtypeClass::of(col.dtype()));
        }
        for (name, s) in self.plain_cols().zip(&mut p.cont) {
            s.add(column::get(chunk, name)?, name, offset)?;
        }
        for (name, s) in self.quant_cols().zip(&mut p.quant) {
            s.add(column::get(chunk, name)?, name, offset)?;
        }
        p.rows += chunk.height();
        Ok(())
    }

    fn finish(&mut self, p: TabPartial) -> Result<()> {
        ensure!(p.rows > 0, PreprocessingError::EmptyFrame);
        let cat = self
            .cat_cols
            .iter()
            .zip(p.cat)
            .map(|(name, (keys, dtype))| {
                let categories = keys.into_sorted();
                ensure!(!categories.is_empty(), PreprocessingError::all_null(name));
                Ok(FittedCat {
                    embed_dim: self.embed_dim_of(name, categories.len() + 1),
                    categories,
                    dtype: dtype.flatten(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let cont = self
            .plain_cols()
            .zip(&p.cont)
            .map(|(name, s)| {
                if s.is_exact() {
                    self.fit_continuous(&s.to_column(name), name)
                } else {
                    self.fit_continuous_sketch(s, name)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let quant = self
            .quant_cols()
            .zip(&p.quant)
            .map(|(name, s)| self.fit_quantized(&s.to_column(name), name))
            .collect::<Result<Vec<_>>>()?;
        self.fitted = Some(TabFitted { cat, cont, quant });
        Ok(())
    }
}

//! Label encoding, imputation and scaling for the deep tabular component.

use ndarray::Array2;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::column::{self, DtypeClass, KeyDtypes};
use crate::contract::{Fit, Persist, Transform};
use crate::embed::{embed_dim, EmbeddingRule};
use crate::error::{PreprocessingError, Result};
use crate::macros::{bail, ensure};
use crate::quantize;
pub use crate::quantize::Quantization;
use crate::wide::check_unique;

/// Suffix of the name of a continuous column's missing-value indicator.
const MISSING_SUFFIX: &str = "_missing";

/// Which continuous columns are standardized (`(x - mean) / std`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scaling {
    /// No column is scaled.
    None,
    /// Every continuous column is scaled (the default).
    #[default]
    All,
    /// Only the named continuous columns are scaled.
    Columns(Vec<String>),
}

impl Scaling {
    fn applies_to(&self, column: &str) -> bool {
        match self {
            Self::None => false,
            Self::All => true,
            Self::Columns(cols) => cols.iter().any(|c| c == column),
        }
    }
}

/// Prepares the input of the deep tabular component: categorical columns become an `i64`
/// matrix of label codes, continuous columns an `f32` matrix of imputed, standardized values.
///
/// * **Categorical** columns (string, categorical, boolean or integer dtype) are label encoded
///   `1..=n` in sorted order of the distinct values' string forms; null and values unseen at
///   fit time map to `0`. Each column's cardinality is `n + 1` and its embedding dimension
///   comes from [`embed_dim_for`](Self::embed_dim_for) or else the [`EmbeddingRule`].
/// * **Continuous** columns (integer or float dtype): null and NaN are imputed with the median
///   of the column's non-null values seen at fit time; then, per [`Scaling`], standardized
///   with the mean and population standard deviation of the imputed fit column (a standard
///   deviation of 0 is replaced by 1). Infinite values are an error. With
///   [`missing_indicator(true)`](Self::missing_indicator), each continuous column that had a
///   null or NaN at fit time gets a `0/1` column `"<col>_missing"`, placed after all
///   continuous columns.
/// * **Quantized** continuous columns (see [`quantize`](Self::quantize)) become categorical:
///   their bin labels (`1..=n_bins`, 0 = null/NaN) follow the categorical columns in
///   [`TabData::cat`] and [`TabMeta::cat`] (cardinality `n_bins + 1`), in the order of the
///   continuous columns, and they leave [`TabData::cont`].
///
/// ```
/// use polars::prelude::*;
/// use widedeep_preprocessing::{TabPreprocessor, Transform};
///
/// let df = df!(
///     "city" => ["Oslo", "Lima", "Oslo"],
///     "temp" => [Some(1.0f64), None, Some(3.0)],
/// )
/// .unwrap();
/// let mut tab = TabPreprocessor::new(&["city"], &["temp"]).missing_indicator(true);
/// let data = tab.fit_transform(&df).unwrap();
/// assert_eq!(data.cat.column(0).to_vec(), vec![2, 1, 2]); // Lima = 1, Oslo = 2
/// assert_eq!(data.cont.shape(), &[3, 2]); // temp, temp_missing
/// assert_eq!(tab.meta().unwrap().cont, vec!["temp", "temp_missing"]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TabPreprocessor {
    cat_cols: Vec<String>,
    continuous_cols: Vec<String>,
    embedding_rule: EmbeddingRule,
    /// Explicit embedding dimensions, in the order they were set.
    embed_dims: Vec<(String, usize)>,
    scaling: Scaling,
    missing_indicator: bool,
    /// Continuous columns turned into categorical ones, in the order they were set.
    #[serde(default)]
    quantize: Vec<(String, Quantization)>,
    fitted: Option<TabFitted>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct TabFitted {
    /// One entry per categorical column, in `cat_cols` order.
    cat: Vec<FittedCat>,
    /// One entry per continuous column that is not quantized, in `continuous_cols` order.
    cont: Vec<FittedCont>,
    /// One entry per quantized column, in `continuous_cols` order.
    #[serde(default)]
    quant: Vec<FittedQuant>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct FittedQuant {
    /// Bin edges, lowest to highest (two equal values for a constant column).
    edges: Vec<f64>,
    embed_dim: usize,
}

impl FittedQuant {
    fn n_bins(&self) -> usize {
        quantize::n_bins(&self.edges)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct FittedCat {
    /// Distinct values in sorted order; value `categories[i]` has code `i + 1`.
    categories: Vec<String>,
    embed_dim: usize,
    /// The column's dtype class at fit time (`None` in saves from before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dtype: Option<DtypeClass>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct FittedCont {
    /// Imputation value for null and NaN.
    median: f64,
    /// Shift applied before dividing by `std` (0 when not scaled).
    mean: f64,
    /// Divisor (1 when not scaled).
    std: f64,
    /// Whether this column gets a missing-value indicator column.
    indicator: bool,
}

impl FittedCont {
    /// The output value for one input value: `Err(None)` if it is infinite,
    /// `Err(Some(reason))` if the result does not fit in an `f32`.
    #[inline]
    fn apply(&self, value: Option<f64>) -> std::result::Result<f32, Option<&'static str>> {
        let v = match value {
            Some(v) if v.is_nan() => self.median,
            Some(v) if v.is_infinite() => return Err(None),
            Some(v) => v,
            None => self.median,
        };
        let out = ((v - self.mean) / self.std) as f32;
        if out.is_finite() {
            Ok(out)
        } else {
            Err(Some(if self.std == 1.0 && self.mean == 0.0 {
                "beyond the range of f32"
            } else {
                "beyond the range of f32 after scaling"
            }))
        }
    }
}

/// Output of [`TabPreprocessor::transform`]. Both arrays have standard (row-major) layout.
#[derive(Clone, Debug, PartialEq)]
pub struct TabData {
    /// Categorical codes, shape `[n_rows, n_cat_cols + n_quantized]` (`[n_rows, 0]` without
    /// categorical columns): the categorical columns, then the quantized continuous columns.
    /// Column `j` takes values in `0..cardinality_j`; 0 means null or unseen.
    pub cat: Array2<i64>,
    /// Continuous values, shape `[n_rows, n_cont_out]` where `n_cont_out` is the number of
    /// continuous columns that are not quantized plus the number of missing-indicator columns
    /// (listed in [`TabMeta::cont`]).
    pub cont: Array2<f32>,
    /// Configured columns that were entirely null (or NaN) in the transformed frame: every
    /// row got index 0 or the imputed value. Also reported on stderr.
    pub all_null: Vec<String>,
}

impl TabData {
    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.cat.nrows()
    }
}

/// Column metadata of a fitted [`TabPreprocessor`], what the deep tabular models need to
/// size their embeddings and input layers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TabMeta {
    /// One entry per column of [`TabData::cat`], in order: the categorical columns, then the
    /// quantized continuous columns.
    pub cat: Vec<CatColumnMeta>,
    /// Names of the columns of [`TabData::cont`], in order: the continuous columns, then the
    /// missing-indicator columns (`"<col>_missing"`).
    pub cont: Vec<String>,
}

/// Metadata of one categorical column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatColumnMeta {
    /// Column name.
    pub name: String,
    /// Number of distinct fitted values + 1 (the reserved index 0): the embedding table needs
    /// this many rows.
    pub cardinality: usize,
    /// Embedding dimension.
    pub embed_dim: usize,
}

impl TabPreprocessor {
    /// A preprocessor with the given categorical and continuous columns, the
    /// [`FastaiNew`](EmbeddingRule::FastaiNew) embedding rule, [`Scaling::All`] and no
    /// missing indicators. The configuration is validated by [`fit`](Self::fit).
    pub fn new(cat_cols: &[&str], continuous_cols: &[&str]) -> Self {
        Self {
            cat_cols: cat_cols.iter().map(|c| (*c).to_owned()).collect(),
            continuous_cols: continuous_cols.iter().map(|c| (*c).to_owned()).collect(),
            embedding_rule: EmbeddingRule::default(),
            embed_dims: Vec::new(),
            scaling: Scaling::default(),
            missing_indicator: false,
            quantize: Vec::new(),
            fitted: None,
        }
    }

    /// Sets the rule giving embedding dimensions of categorical columns without an explicit
    /// one.
    pub fn embedding_rule(mut self, rule: EmbeddingRule) -> Self {
        self.embedding_rule = rule;
        self.fitted = None;
        self
    }

    /// Sets an explicit embedding dimension for the categorical column `col` (replacing an
    /// earlier one for the same column). `col` must be a categorical column and `dim > 0`.
    pub fn embed_dim_for(mut self, col: &str, dim: usize) -> Self {
        self.embed_dims.retain(|(c, _)| c != col);
        self.embed_dims.push((col.to_owned(), dim));
        self.fitted = None;
        self
    }

    /// Sets which continuous columns are standardized.
    pub fn scaling(mut self, scaling: Scaling) -> Self {
        self.scaling = scaling;
        self.fitted = None;
        self
    }

    /// Whether to add a `0/1` missing-value indicator column for each continuous column that
    /// has a null or NaN at fit time.
    pub fn missing_indicator(mut self, on: bool) -> Self {
        self.missing_indicator = on;
        self.fitted = None;
        self
    }

    /// Turns the continuous column `col` into a categorical one: its values are binned per
    /// `q` (replacing an earlier setting for the same column) and the bin labels are embedded
    /// like any categorical column. `col` must be one of the continuous columns; its embedding
    /// dimension comes from [`embed_dim_for`](Self::embed_dim_for) or else the rule applied
    /// to `n_bins + 1`. Checked by [`fit`](Self::fit): `Bins(n)` needs `n ≥ 2`, `Edges` at
    /// least two finite, strictly increasing values
    /// ([`InvalidConfig`](PreprocessingError::InvalidConfig), field `"quantize"`, naming the
    /// column).
    ///
    /// ```
    /// use polars::prelude::*;
    /// use widedeep_preprocessing::{Quantization, TabPreprocessor, Transform};
    ///
    /// let df = df!("age" => [17.0f64, 25.0, 40.0, 70.0], "hours" => [10.0f64, 40.0, 45.0, 60.0])
    ///     .unwrap();
    /// let mut tab = TabPreprocessor::new(&[], &["age", "hours"])
    ///     .quantize("age", Quantization::Edges(vec![0.0, 18.0, 65.0, 120.0]));
    /// let data = tab.fit_transform(&df).unwrap();
    /// assert_eq!(data.cat.column(0).to_vec(), vec![1, 2, 2, 3]);
    /// assert_eq!(data.cont.shape(), &[4, 1]); // only `hours` stays continuous
    /// assert_eq!(tab.meta().unwrap().cat[0].cardinality, 4);
    /// ```
    pub fn quantize(mut self, col: &str, q: Quantization) -> Self {
        quantize::set(&mut self.quantize, col, q);
        self.fitted = None;
        self
    }

    /// The fitted bin edges of the quantized column `col` (`None` for other columns or an
    /// unfitted preprocessor).
    pub fn bin_edges(&self, col: &str) -> Option<&[f64]> {
        let fitted = self.fitted.as_ref()?;
        let j = self.quant_cols().position(|c| c == col)?;
        fitted.quant.get(j).map(|q| q.edges.as_slice())
    }

    /// The configured categorical columns.
    pub fn cat_cols(&self) -> &[String] {
        &self.cat_cols
    }

    /// The configured continuous columns.
    pub fn continuous_cols(&self) -> &[String] {
        &self.continuous_cols
    }

    /// Column metadata: names, cardinalities and embedding dimensions of the categorical
    /// columns, names of the continuous output columns.
    pub fn meta(&self) -> Result<TabMeta> {
        let fitted = self.fitted()?;
        let quantized = self
            .quant_cols()
            .zip(&fitted.quant)
            .map(|(name, q)| CatColumnMeta {
                name: name.clone(),
                cardinality: q.n_bins() + 1,
                embed_dim: q.embed_dim,
            });
        let cat = self
            .cat_cols
            .iter()
            .zip(&fitted.cat)
            .map(|(name, f)| CatColumnMeta {
                name: name.clone(),
                cardinality: f.categories.len() + 1,
                embed_dim: f.embed_dim,
            })
            .chain(quantized)
            .collect();
        let indicators = self
            .plain_cols()
            .zip(&fitted.cont)
            .filter(|(_, f)| f.indicator)
            .map(|(name, _)| format!("{name}{MISSING_SUFFIX}"));
        let cont = self.plain_cols().cloned().chain(indicators).collect();
        Ok(TabMeta { cat, cont })
    }

    /// Maps transformed data back to a DataFrame with the categorical columns (as strings)
    /// followed by the continuous columns (as `f64`, unscaled), in configuration order.
    ///
    /// Code 0 (and any code outside `1..cardinality`) becomes null; imputed values stay at
    /// the fitted median; a quantized column comes back as the midpoint of its bin; indicator
    /// columns are dropped. Values pass through `f32`, so
    /// continuous values come back to within `f32` precision.
    ///
    /// Errors: [`NotFitted`](PreprocessingError::NotFitted), and
    /// [`InvalidConfig`](PreprocessingError::InvalidConfig) (field `"data"`) if the arrays'
    /// shapes do not match this preprocessor.
    pub fn inverse_transform(&self, data: &TabData) -> Result<DataFrame> {
        let fitted = self.fitted()?;
        let n_rows = data.cat.nrows();
        let n_cat = self.cat_cols.len();
        let n_cat_out = n_cat + fitted.quant.len();
        let n_cont_out = fitted.cont.len() + fitted.cont.iter().filter(|f| f.indicator).count();
        ensure!(
            data.cat.ncols() == n_cat_out
                && data.cont.ncols() == n_cont_out
                && data.cont.nrows() == n_rows,
            config("data"),
            "expected cat [n, {}] and cont [n, {}], got cat {:?} and cont {:?}",
            n_cat_out,
            n_cont_out,
            data.cat.shape(),
            data.cont.shape()
        );
        let mut columns = Vec::with_capacity(self.cat_cols.len() + self.continuous_cols.len());
        for (j, (name, f)) in self.cat_cols.iter().zip(&fitted.cat).enumerate() {
            let values: StringChunked = data
                .cat
                .column(j)
                .iter()
                .map(|&code| category(&f.categories, code))
                .collect();
            columns.push(values.with_name(name.as_str().into()).into_column());
        }
        let (mut plain, mut quant) = (0, 0);
        for name in &self.continuous_cols {
            if self.quantization_of(name).is_some() {
                let f = &fitted.quant[quant];
                let values: Float64Chunked = data
                    .cat
                    .column(n_cat + quant)
                    .iter()
                    .map(|&code| quantize::midpoint(&f.edges, code))
                    .collect();
                columns.push(values.with_name(name.as_str().into()).into_column());
                quant += 1;
            } else {
                let f = &fitted.cont[plain];
                let values: Vec<f64> = data
                    .cont
                    .column(plain)
                    .iter()
                    .map(|&x| f64::from(x) * f.std + f.mean)
                    .collect();
                columns.push(Column::new(name.as_str().into(), values));
                plain += 1;
            }
        }
        column::frame(n_rows, columns)
    }

    /// The category string behind code `index` of categorical column `col`; `None` for code 0,
    /// an out-of-range code, an unknown column or an unfitted preprocessor.
    pub fn category_of(&self, col: &str, index: i64) -> Option<&str> {
        let fitted = self.fitted.as_ref()?;
        let j = self.cat_cols.iter().position(|c| c == col)?;
        category(&fitted.cat.get(j)?.categories, index)
    }

    /// The fitted state, checked against the configuration (it may come from a hand-edited
    /// JSON file).
    fn fitted(&self) -> Result<&TabFitted> {
        let fitted = self
            .fitted
            .as_ref()
            .ok_or_else(|| PreprocessingError::not_fitted("TabPreprocessor"))?;
        let consistent = fitted.cat.len() == self.cat_cols.len()
            && fitted.cont.len() == self.plain_cols().count()
            && fitted.quant.len() == self.quant_cols().count()
            && fitted.quant.iter().all(|q| !q.edges.is_empty());
        ensure!(
            consistent,
            config("fitted"),
            "the fitted state does not match the configured columns"
        );
        Ok(fitted)
    }

    fn validate_config(&self) -> Result<()> {
        ensure!(
            !self.cat_cols.is_empty() || !self.continuous_cols.is_empty(),
            config("columns"),
            "no categorical or continuous column given"
        );
        check_unique(self.cat_cols.iter().map(String::as_str), "cat_cols")?;
        check_unique(
            self.continuous_cols.iter().map(String::as_str),
            "continuous_cols",
        )?;
        if let Some(c) = self
            .cat_cols
            .iter()
            .find(|c| self.continuous_cols.contains(c))
        {
            bail!(PreprocessingError::ConflictingRole { column: c.clone() });
        }
        for (col, q) in &self.quantize {
            ensure!(
                self.continuous_cols.contains(col),
                config("quantize"),
                "`{col}` is not a continuous column"
            );
            q.validate(col)?;
        }
        for (col, dim) in &self.embed_dims {
            ensure!(
                self.cat_cols.contains(col) || self.quantization_of(col).is_some(),
                config("embed_dim_for"),
                "`{col}` is not a categorical or quantized column"
            );
            ensure!(
                *dim >= 1,
                config("embed_dim_for"),
                "embedding dimension of `{col}` must be at least 1"
            );
        }
        if let Scaling::Columns(cols) = &self.scaling {
            check_unique(cols.iter().map(String::as_str), "scaling")?;
            if let Some(col) = cols.iter().find(|c| !self.continuous_cols.contains(c)) {
                bail!(config("scaling"), "`{col}` is not a continuous column");
            }
            if let Some(col) = cols.iter().find(|c| self.quantization_of(c).is_some()) {
                bail!(config("scaling"), "`{col}` is quantized, not scaled");
            }
        }
        Ok(())
    }

    /// Checks that every configured column exists with a usable dtype.
    fn check_columns(&self, df: &DataFrame) -> Result<()> {
        for name in &self.cat_cols {
            column::check_key_dtype(column::get(df, name)?, name, KeyDtypes::Discrete)?;
        }
        for name in &self.continuous_cols {
            column::check_numeric(column::get(df, name)?, name)?;
        }
        Ok(())
    }

    fn quantization_of(&self, col: &str) -> Option<&Quantization> {
        self.quantize.iter().find(|(c, _)| c == col).map(|(_, q)| q)
    }

    /// Continuous columns that stay continuous, in configuration order.
    fn plain_cols(&self) -> impl Iterator<Item = &String> {
        self.continuous_cols
            .iter()
            .filter(|c| self.quantization_of(c).is_none())
    }

    /// Quantized continuous columns, in configuration order.
    fn quant_cols(&self) -> impl Iterator<Item = &String> {
        self.continuous_cols
            .iter()
            .filter(|c| self.quantization_of(c).is_some())
    }

    fn fit_quantized(&self, col: &Column, name: &str) -> Result<FittedQuant> {
        let q = self
            .quantization_of(name)
            .expect("called for quantized columns only");
        let edges = q.fit_edges(col, name)?;
        let n_bins = quantize::n_bins(&edges);
        let embed_dim = self
            .embed_dims
            .iter()
            .find(|(c, _)| c == name)
            .map_or_else(|| embed_dim(n_bins + 1, self.embedding_rule), |(_, d)| *d);
        Ok(FittedQuant { edges, embed_dim })
    }

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
            let embed_dim = self.embed_dims.iter().find(|(c, _)| c == name).map_or_else(
                || embed_dim(categories.len() + 1, self.embedding_rule),
                |(_, d)| *d,
            );
            Ok(FittedCat {
                categories,
                embed_dim,
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

impl Transform for TabPreprocessor {
    /// Categorical codes and continuous values, see [`TabData`].
    type Output = TabData;

    /// Encodes `df` with the fitted state.
    ///
    /// Returns `cat` of shape `[df.height(), n_cat_cols + n_quantized]` and `cont` of shape
    /// `[df.height(), n_cont_out]`. Errors: [`NotFitted`](PreprocessingError::NotFitted),
    /// [`MissingColumn`](PreprocessingError::MissingColumn),
    /// [`WrongType`](PreprocessingError::WrongType),
    /// [`DtypeChanged`](PreprocessingError::DtypeChanged) (a categorical column keyed
    /// differently than at fit time, e.g. strings then integers),
    /// [`NonFinite`](PreprocessingError::NonFinite) (an infinite continuous value) and
    /// [`OutOfRange`](PreprocessingError::OutOfRange) (a finite value beyond `f32` after
    /// scaling). A column that is entirely null is not an error: every row gets index 0 or
    /// the imputed value, and the column is listed in [`TabData::all_null`] and reported on
    /// stderr.
    fn transform(&self, df: &DataFrame) -> Result<TabData> {
        let fitted = self.fitted()?;
        self.check_columns(df)?;
        for (name, f) in self.cat_cols.iter().zip(&fitted.cat) {
            column::check_fitted_dtype(column::get(df, name)?, name, f.dtype)?;
        }
        let n_rows = df.height();

        // Output column j < n_cat is categorical column j; the rest are quantized columns.
        let n_cat = self.cat_cols.len();
        let quantized: Vec<&String> = self.quant_cols().collect();
        let cat_columns = column::par_map(n_rows, n_cat + quantized.len(), |j| {
            let mut out = vec![0i64; n_rows];
            if j < n_cat {
                let col = column::get(df, &self.cat_cols[j])?;
                column::encode_into(col, &fitted.cat[j].categories, 0, &mut out)?;
            } else {
                let name = quantized[j - n_cat];
                let values = column::as_f64(column::get(df, name)?)?;
                quantize::fill_labels(&values, &fitted.quant[j - n_cat].edges, name, &mut out)?;
            }
            Ok(out)
        })?;
        let cat = column::assemble(n_rows, &cat_columns);
        drop(cat_columns);

        // Output column j < n_cont is plain continuous column j; the rest are indicators.
        let plain: Vec<&String> = self.plain_cols().collect();
        let n_cont = plain.len();
        let sources: Vec<usize> = (0..n_cont)
            .chain((0..n_cont).filter(|&j| fitted.cont[j].indicator))
            .collect();
        let cont_columns = column::par_map(n_rows, sources.len(), |j| {
            let src = sources[j];
            let name = plain[src];
            let values = column::as_f64(column::get(df, name)?)?;
            let mut out = vec![0f32; n_rows];
            if j < n_cont {
                fill_continuous(&values, &fitted.cont[src], name, &mut out)?;
            } else {
                fill_indicator(&values, &mut out);
            }
            Ok(out)
        })?;
        let cont = column::assemble(n_rows, &cont_columns);
        let all_null = column::warn_all_missing(
            df,
            self.cat_cols.iter().chain(&self.continuous_cols),
            "TabPreprocessor",
        );
        Ok(TabData {
            cat,
            cont,
            all_null,
        })
    }
}

impl Persist for TabPreprocessor {}

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

fn category(categories: &[String], code: i64) -> Option<&str> {
    let i = usize::try_from(code).ok()?.checked_sub(1)?;
    categories.get(i).map(String::as_str)
}

/// Imputes and scales one continuous column into `out` (shape `[n_rows]`).
fn fill_continuous(
    values: &Float64Chunked,
    fitted: &FittedCont,
    name: &str,
    out: &mut [f32],
) -> Result<()> {
    for (row, (slot, value)) in out.iter_mut().zip(values.iter()).enumerate() {
        *slot = fitted.apply(value).map_err(|why| {
            let v = value.unwrap_or(f64::NAN);
            match why {
                None => PreprocessingError::non_finite(name, row, v),
                Some(reason) => PreprocessingError::OutOfRange {
                    column: name.to_owned(),
                    row,
                    value: v,
                    reason: reason.to_owned(),
                },
            }
        })?;
    }
    Ok(())
}

/// Writes 1 where `values` is null or NaN, else 0, into `out` (shape `[n_rows]`).
fn fill_indicator(values: &Float64Chunked, out: &mut [f32]) {
    for (slot, value) in out.iter_mut().zip(values.iter()) {
        *slot = match value {
            Some(v) if !v.is_nan() => 0.0,
            _ => 1.0,
        };
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use ndarray::array;

    use super::*;

    fn approx(a: f32, b: f64) -> bool {
        (f64::from(a) - b).abs() < 1e-5
    }

    /// Checks the first `expected.len()` values of column `j`.
    fn assert_column(data: &Array2<f32>, j: usize, expected: &[f64]) {
        let got = data.column(j).to_vec();
        assert!(got.len() >= expected.len());
        for (row, (g, e)) in got.iter().zip(expected).enumerate() {
            assert!(
                approx(*g, *e),
                "column {j} row {row}: got {g}, expected {e}"
            );
        }
    }

    /// color: blue=1, green=2, red=3. x: observed [1, 3, 10] -> median 3; imputed
    /// [1, 3, 3, 3, 10] has mean 4 and population std sqrt(48 / 5). n: [2, 4, 4, 4, 6] has
    /// mean 4 and std sqrt(8 / 5).
    fn small() -> DataFrame {
        df!(
            "color" => [Some("red"), Some("blue"), None, Some("red"), Some("green")],
            "x" => [Some(1.0f64), None, Some(3.0), Some(f64::NAN), Some(10.0)],
            "n" => [2i64, 4, 4, 4, 6],
        )
        .unwrap()
    }

    fn adult() -> DataFrame {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../datasets/adult.parquet");
        ParquetReader::new(File::open(path).unwrap())
            .finish()
            .unwrap()
    }

    #[test]
    fn label_encoding_scaling_and_imputation() {
        let mut tab = TabPreprocessor::new(&["color"], &["x", "n"]);
        let data = tab.fit_transform(&small()).unwrap();
        assert_eq!(data.cat, array![[3], [1], [0], [3], [2]]);
        let sx = (48.0f64 / 5.0).sqrt();
        let sn = (8.0f64 / 5.0).sqrt();
        assert_column(
            &data.cont,
            0,
            &[-3.0 / sx, -1.0 / sx, -1.0 / sx, -1.0 / sx, 6.0 / sx],
        );
        assert_column(&data.cont, 1, &[-2.0 / sn, 0.0, 0.0, 0.0, 2.0 / sn]);
        let meta = tab.meta().unwrap();
        assert_eq!(
            meta.cat,
            vec![CatColumnMeta {
                name: "color".into(),
                cardinality: 4,
                embed_dim: 3, // round(1.6 * 4^0.56) = round(3.48)
            }]
        );
        assert_eq!(meta.cont, vec!["x", "n"]);
        assert_eq!(tab.category_of("color", 2), Some("green"));
        assert_eq!(tab.category_of("color", 0), None);
        assert_eq!(tab.category_of("color", 4), None);
        assert_eq!(tab.category_of("x", 1), None);
    }

    #[test]
    fn unscaled_median_imputation() {
        let mut tab = TabPreprocessor::new(&[], &["x", "n"]).scaling(Scaling::None);
        let data = tab.fit_transform(&small()).unwrap();
        assert_eq!(data.cat.shape(), &[5, 0]);
        assert_column(&data.cont, 0, &[1.0, 3.0, 3.0, 3.0, 10.0]);
        assert_column(&data.cont, 1, &[2.0, 4.0, 4.0, 4.0, 6.0]);
        // Even count: mean of the two middle values.
        let df = df!("x" => [Some(4.0f64), None, Some(1.0), Some(2.0), Some(9.0)]).unwrap();
        let mut tab = TabPreprocessor::new(&[], &["x"]).scaling(Scaling::None);
        let data = tab.fit_transform(&df).unwrap();
        assert_column(&data.cont, 0, &[4.0, 3.0, 1.0, 2.0, 9.0]);
    }

    #[test]
    fn scaling_selected_columns_and_constant_column() {
        let df = df!("a" => [1.0f64, 3.0], "b" => [1.0f64, 3.0], "c" => [0.1f64, 0.1]).unwrap();
        let mut tab = TabPreprocessor::new(&[], &["a", "b", "c"])
            .scaling(Scaling::Columns(vec!["b".into(), "c".into()]));
        let data = tab.fit_transform(&df).unwrap();
        assert_column(&data.cont, 0, &[1.0, 3.0]);
        assert_column(&data.cont, 1, &[-1.0, 1.0]);
        // std 0 -> 1: only centred.
        assert_column(&data.cont, 2, &[0.0, 0.0]);
    }

    #[test]
    fn unseen_and_null_categories_are_zero() {
        let mut tab = TabPreprocessor::new(&["color"], &[]);
        tab.fit(&small()).unwrap();
        let new = df!("color" => [Some("purple"), None, Some("blue")]).unwrap();
        assert_eq!(tab.transform(&new).unwrap().cat, array![[0], [0], [1]]);
        // Integer and boolean categories are keyed by their string form.
        let df = df!("k" => [10i32, 2, 10], "b" => [true, false, true]).unwrap();
        let mut tab = TabPreprocessor::new(&["k", "b"], &[]);
        let data = tab.fit_transform(&df).unwrap();
        assert_eq!(data.cat, array![[1, 2], [2, 1], [1, 2]]);
        assert_eq!(data.cont.shape(), &[3, 0]);
    }

    #[test]
    fn missing_indicator_columns() {
        let mut tab = TabPreprocessor::new(&["color"], &["x", "n"])
            .missing_indicator(true)
            .scaling(Scaling::None);
        let data = tab.fit_transform(&small()).unwrap();
        assert_eq!(data.cont.shape(), &[5, 3]);
        assert_column(&data.cont, 2, &[0.0, 1.0, 0.0, 1.0, 0.0]);
        assert_eq!(tab.meta().unwrap().cont, vec!["x", "n", "x_missing"]);
        // At transform time the indicator follows the new data; `n` gets none.
        let new = df!(
            "color" => ["red"],
            "x" => [None::<f64>],
            "n" => [Some(1i64)],
        )
        .unwrap();
        let data = tab.transform(&new).unwrap();
        assert_eq!(data.cont, array![[3.0f32, 1.0, 1.0]]);
    }

    #[test]
    fn inverse_transform_round_trip() {
        let mut tab = TabPreprocessor::new(&["color"], &["x", "n"]).missing_indicator(true);
        let data = tab.fit_transform(&small()).unwrap();
        let back = tab.inverse_transform(&data).unwrap();
        let names: Vec<&str> = back.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(names, vec!["color", "x", "n"]);
        let color: Vec<Option<&str>> = back
            .column("color")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(
            color,
            vec![Some("red"), Some("blue"), None, Some("red"), Some("green")]
        );
        let x: Vec<f64> = back
            .column("x")
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        let expected = [1.0, 3.0, 3.0, 3.0, 10.0];
        for (g, e) in x.iter().zip(expected) {
            assert!((g - e).abs() < 1e-5, "{g} vs {e}");
        }
        let n: Vec<f64> = back
            .column("n")
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        for (g, e) in n.iter().zip([2.0, 4.0, 4.0, 4.0, 6.0]) {
            assert!((g - e).abs() < 1e-5, "{g} vs {e}");
        }
        let bad = TabData {
            cat: Array2::zeros((2, 2)),
            cont: Array2::zeros((2, 3)),
            all_null: Vec::new(),
        };
        let err = tab.inverse_transform(&bad).unwrap_err();
        assert!(
            matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "data")
        );
    }

    #[test]
    fn save_load_gives_identical_output() {
        let mut tab = TabPreprocessor::new(&["color"], &["x", "n"])
            .missing_indicator(true)
            .embedding_rule(EmbeddingRule::Google)
            .embed_dim_for("color", 7);
        let before = tab.fit_transform(&small()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tab.json");
        tab.save(&path).unwrap();
        let loaded = TabPreprocessor::load(&path).unwrap();
        assert_eq!(loaded, tab);
        assert_eq!(loaded.transform(&small()).unwrap(), before);
        assert_eq!(loaded.meta().unwrap().cat[0].embed_dim, 7);
    }

    #[test]
    fn config_errors() {
        let df = small();
        let err = TabPreprocessor::new(&[], &[]).fit(&df).unwrap_err();
        assert!(matches!(err, PreprocessingError::InvalidConfig { .. }));
        let err = TabPreprocessor::new(&["color"], &["color"])
            .fit(&df)
            .unwrap_err();
        assert!(
            matches!(err, PreprocessingError::ConflictingRole { ref column } if column == "color")
        );
        let err = TabPreprocessor::new(&[], &["x", "x"]).fit(&df).unwrap_err();
        assert!(
            matches!(err, PreprocessingError::DuplicateColumn { ref column, ref field }
            if column == "x" && field == "continuous_cols")
        );
        let err = TabPreprocessor::new(&["color"], &[])
            .embed_dim_for("color", 0)
            .fit(&df)
            .unwrap_err();
        assert!(
            matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "embed_dim_for")
        );
        let err = TabPreprocessor::new(&["color"], &[])
            .embed_dim_for("x", 3)
            .fit(&df)
            .unwrap_err();
        assert!(
            matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "embed_dim_for")
        );
        let err = TabPreprocessor::new(&[], &["x"])
            .scaling(Scaling::Columns(vec!["color".into()]))
            .fit(&df)
            .unwrap_err();
        assert!(
            matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "scaling")
        );
    }

    #[test]
    fn data_errors() {
        let df = small();
        let err = TabPreprocessor::new(&["nope"], &[]).fit(&df).unwrap_err();
        assert!(
            matches!(err, PreprocessingError::MissingColumn { ref column } if column == "nope")
        );
        let err = TabPreprocessor::new(&[], &["color"]).fit(&df).unwrap_err();
        assert!(
            matches!(err, PreprocessingError::WrongType { ref column, ref expected, .. }
            if column == "color" && expected == "numeric")
        );
        let err = TabPreprocessor::new(&["x"], &[]).fit(&df).unwrap_err();
        assert!(matches!(err, PreprocessingError::WrongType { ref column, .. } if column == "x"));
        let err = TabPreprocessor::new(&["color"], &[])
            .fit(&df.head(Some(0)))
            .unwrap_err();
        assert!(matches!(err, PreprocessingError::EmptyFrame));
        let nulls = df!(
            "s" => [None::<&str>, None],
            "f" => [Some(f64::NAN), None],
        )
        .unwrap();
        let err = TabPreprocessor::new(&["s"], &[]).fit(&nulls).unwrap_err();
        assert!(matches!(err, PreprocessingError::AllNull { ref column } if column == "s"));
        let err = TabPreprocessor::new(&[], &["f"]).fit(&nulls).unwrap_err();
        assert!(matches!(err, PreprocessingError::AllNull { ref column } if column == "f"));
        let inf = df!("f" => [1.0f64, f64::NEG_INFINITY]).unwrap();
        let err = TabPreprocessor::new(&[], &["f"]).fit(&inf).unwrap_err();
        assert!(
            matches!(err, PreprocessingError::NonFinite { ref column, row: 1, value }
            if column == "f" && value == f64::NEG_INFINITY)
        );
        let mut tab = TabPreprocessor::new(&[], &["x"]);
        let err = tab.transform(&df).unwrap_err();
        assert!(matches!(err, PreprocessingError::NotFitted { .. }));
        assert!(matches!(
            tab.meta().unwrap_err(),
            PreprocessingError::NotFitted { .. }
        ));
        tab.fit(&df).unwrap();
        let inf = df!("x" => [1.0f64, 2.0, f64::INFINITY]).unwrap();
        let err = tab.transform(&inf).unwrap_err();
        assert!(
            matches!(err, PreprocessingError::NonFinite { ref column, row: 2, .. } if column == "x")
        );
        let err = tab.transform(&df!("y" => [1.0f64]).unwrap()).unwrap_err();
        assert!(matches!(err, PreprocessingError::MissingColumn { ref column } if column == "x"));
    }

    #[test]
    fn values_beyond_f32_are_typed_errors_naming_column_and_row() {
        let fit = df!("x" => [1.0f64, 2.0, 3.0]).unwrap();
        let mut tab = TabPreprocessor::new(&[], &["x"]);
        tab.fit(&fit).unwrap();
        let huge = df!("x" => [1.0f64, 1e300]).unwrap();
        let err = tab.transform(&huge).unwrap_err();
        assert!(
            matches!(err, PreprocessingError::OutOfRange { ref column, row: 1, value, .. }
                if column == "x" && value == 1e300),
            "{err}"
        );
        // Unscaled: a value beyond f32 is caught too.
        let mut raw = TabPreprocessor::new(&[], &["x"]).scaling(Scaling::None);
        raw.fit(&fit).unwrap();
        assert!(matches!(
            raw.transform(&huge).unwrap_err(),
            PreprocessingError::OutOfRange { row: 1, .. }
        ));
        // Fitted on huge values, scaling brings them back into range: no error, finite.
        let big = df!("x" => [1e300f64, -1e300, f64::MAX, -f64::MAX]).unwrap();
        let mut tab = TabPreprocessor::new(&[], &["x"]);
        let data = tab.fit_transform(&big).unwrap();
        assert!(data.cont.iter().all(|v| v.is_finite()), "{:?}", data.cont);
        // Unscaled, the same values cannot be represented.
        let mut raw = TabPreprocessor::new(&[], &["x"]).scaling(Scaling::None);
        raw.fit(&big).unwrap();
        assert!(raw.transform(&big).is_err());
    }

    #[test]
    fn changed_dtype_is_an_error_and_all_null_is_reported() {
        let fit = df!("c" => ["a", "b", "a"], "x" => [1.0f64, 2.0, 3.0]).unwrap();
        let mut tab = TabPreprocessor::new(&["c"], &["x"]);
        tab.fit(&fit).unwrap();
        let ints = df!("c" => [1i64, 2, 3], "x" => [1.0f64, 2.0, 3.0]).unwrap();
        let err = tab.transform(&ints).unwrap_err();
        assert!(
            matches!(err, PreprocessingError::DtypeChanged { ref column, ref fitted, .. }
                if column == "c" && fitted == "text"),
            "{err}"
        );
        // Categorical (dictionary) strings key like strings.
        let mut cat = fit.clone();
        let c = fit
            .column("c")
            .unwrap()
            .cast(&DataType::from_categories(Categories::global()))
            .unwrap();
        cat.replace("c", c).unwrap();
        assert_eq!(tab.transform(&cat).unwrap(), tab.transform(&fit).unwrap());
        // An all-null column transforms, and is reported.
        let nulls = df!(
            "c" => [None::<&str>, None],
            "x" => [None::<f64>, Some(f64::NAN)],
        )
        .unwrap();
        let data = tab.transform(&nulls).unwrap();
        assert_eq!(data.all_null, vec!["c", "x"]);
        assert_eq!(data.cat.column(0).to_vec(), vec![0, 0]);
        let null_dtype = DataFrame::new(
            2,
            vec![
                Column::full_null("c".into(), 2, &DataType::Null),
                Column::new("x".into(), [1.0f64, 2.0]),
            ],
        )
        .unwrap();
        assert_eq!(tab.transform(&null_dtype).unwrap().all_null, vec!["c"]);
        assert!(tab.transform(&fit).unwrap().all_null.is_empty());
    }

    #[test]
    fn utf8_byte_strings_are_text() {
        let strings = df!("c" => ["x", "y", "x"]).unwrap();
        let bytes = DataFrame::new(
            3,
            vec![Column::new(
                "c".into(),
                [b"x".as_slice(), b"y".as_slice(), b"x".as_slice()],
            )],
        )
        .unwrap();
        assert_eq!(bytes.column("c").unwrap().dtype(), &DataType::Binary);
        let mut tab = TabPreprocessor::new(&["c"], &[]);
        let expected = tab.fit_transform(&strings).unwrap();
        assert_eq!(tab.transform(&bytes).unwrap(), expected);
        let mut from_bytes = TabPreprocessor::new(&["c"], &[]);
        assert_eq!(from_bytes.fit_transform(&bytes).unwrap(), expected);
        let bad = DataFrame::new(
            2,
            vec![Column::new(
                "c".into(),
                [b"x".as_slice(), [0xff, 0xfe].as_slice()],
            )],
        )
        .unwrap();
        let err = tab.transform(&bad).unwrap_err();
        assert!(
            matches!(err, PreprocessingError::InvalidUtf8 { ref column, row: 1 } if column == "c"),
            "{err}"
        );
    }

    #[test]
    fn errors_are_deterministic_on_large_frames() {
        // Large enough for the multi-threaded path: the first bad column in configuration
        // order is reported, at its first bad row.
        let n = 50_000;
        let mut a = vec![1.0f64; n];
        let mut b = vec![1.0f64; n];
        a[40_000] = f64::INFINITY;
        b[10] = f64::INFINITY;
        let df = df!("ok" => vec![0.5f64; n], "a" => a, "b" => b).unwrap();
        for _ in 0..5 {
            let err = TabPreprocessor::new(&[], &["ok", "a", "b"])
                .fit(&df)
                .unwrap_err();
            assert!(
                matches!(err, PreprocessingError::NonFinite { ref column, row: 40_000, .. }
                if column == "a")
            );
        }
        let mut tab = TabPreprocessor::new(&[], &["ok", "a", "b"]);
        tab.fit(&df.slice(20, 100)).unwrap();
        let err = tab.transform(&df).unwrap_err();
        assert!(
            matches!(err, PreprocessingError::NonFinite { ref column, row: 40_000, .. }
            if column == "a")
        );
    }

    #[test]
    fn load_errors_are_typed() {
        let dir = tempfile::tempdir().unwrap();
        let missing = TabPreprocessor::load(dir.path().join("nope.json")).unwrap_err();
        assert!(matches!(missing, PreprocessingError::Io(_)));
        let garbage = dir.path().join("garbage.json");
        std::fs::write(&garbage, b"{ not json").unwrap();
        let err = TabPreprocessor::load(&garbage).unwrap_err();
        assert!(matches!(err, PreprocessingError::Json(_)));
        // A hand-edited file whose fitted state does not match its columns.
        let mut tab = TabPreprocessor::new(&["color"], &["x"]);
        tab.fit(&small()).unwrap();
        let mut json: serde_json::Value = serde_json::to_value(&tab).unwrap();
        json["cat_cols"] = serde_json::json!(["color", "n"]);
        let edited = dir.path().join("edited.json");
        std::fs::write(&edited, json.to_string()).unwrap();
        let tab = TabPreprocessor::load(&edited).unwrap();
        let err = tab.transform(&small()).unwrap_err();
        assert!(
            matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "fitted")
        );
    }

    #[test]
    fn adult_shapes_and_cardinalities() {
        let df = adult();
        let cats = [
            "workclass",
            "education",
            "marital-status",
            "occupation",
            "relationship",
            "race",
            "gender",
            "native-country",
        ];
        let mut tab = TabPreprocessor::new(&cats, &["age", "hours-per-week"]);
        let data = tab.fit_transform(&df).unwrap();
        assert_eq!(data.cat.shape(), &[48_842, 8]);
        assert_eq!(data.cont.shape(), &[48_842, 2]);
        assert!(data.cat.is_standard_layout() && data.cont.is_standard_layout());
        let meta = tab.meta().unwrap();
        // Distinct values + 1 (checked with Python Polars); fastai_new embedding dims.
        let expected = [
            ("workclass", 10, 6),
            ("education", 17, 8),
            ("marital-status", 8, 5),
            ("occupation", 16, 8),
            ("relationship", 7, 5),
            ("race", 6, 4),
            ("gender", 3, 3),
            ("native-country", 43, 13),
        ];
        for (m, (name, card, dim)) in meta.cat.iter().zip(expected) {
            assert_eq!(
                (m.name.as_str(), m.cardinality, m.embed_dim),
                (name, card, dim)
            );
        }
        // workclass sorted: "?"=1, "Federal-gov"=2, "Local-gov"=3, ..., "Private"=5.
        assert_eq!(
            data.cat.column(0).slice(ndarray::s![..3]).to_vec(),
            vec![5, 5, 3]
        );
        assert_eq!(tab.category_of("workclass", 1), Some("?"));
        assert!(data.cat.iter().all(|&c| c > 0));
        // age: first rows 25, 38, 28; mean 38.64358543876172, std 13.71036957798688.
        assert_column(
            &data.cont,
            0,
            &[
                -0.9951289322402811,
                -0.04694150913298847,
                -0.776316449984752,
            ],
        );
        let back = tab.inverse_transform(&data).unwrap();
        assert_eq!(back.shape(), (48_842, 10));
    }

    #[test]
    fn quantile_bins_by_hand() {
        // 1..=9 in 3 bins: quantiles at positions 0, 8/3, 16/3, 8 of the sorted values give
        // edges [1, 3 + 2/3, 6 + 1/3, 9]; right-closed bins: 1-3 -> 1, 4-6 -> 2, 7-9 -> 3.
        let df = df!(
            "x" => [Some(5.0f64), Some(1.0), Some(9.0), Some(3.0), Some(4.0), Some(7.0), Some(2.0),
                    Some(8.0), Some(6.0), None],
            "y" => [1.0f64; 10],
        )
        .unwrap();
        let mut tab = TabPreprocessor::new(&[], &["x", "y"]).quantize("x", Quantization::Bins(3));
        let data = tab.fit_transform(&df).unwrap();
        assert_eq!(
            data.cat.column(0).to_vec(),
            vec![2, 1, 3, 1, 2, 3, 1, 3, 2, 0]
        );
        let edges = tab.bin_edges("x").unwrap();
        let expected = [1.0, 3.0 + 2.0 / 3.0, 6.0 + 1.0 / 3.0, 9.0];
        assert_eq!(edges.len(), 4);
        for (g, e) in edges.iter().zip(expected) {
            assert!((g - e).abs() < 1e-12, "{edges:?}");
        }
        let meta = tab.meta().unwrap();
        assert_eq!(
            meta.cat,
            vec![CatColumnMeta {
                name: "x".into(),
                cardinality: 4,
                embed_dim: 3, // round(1.6 * 4^0.56)
            }]
        );
        assert_eq!(meta.cont, vec!["y"]);
        assert_eq!(data.cont.shape(), &[10, 1]);
        // New data: below/above the fitted range clamp to the end bins; edges are right-closed.
        let new =
            df!("x" => [-100.0f64, 3.6, 3.7, 6.4, 1e9, f64::NAN], "y" => [0.0f64; 6]).unwrap();
        assert_eq!(
            tab.transform(&new).unwrap().cat.column(0).to_vec(),
            vec![1, 1, 2, 3, 3, 0]
        );
        assert!(tab.bin_edges("y").is_none());
    }

    #[test]
    fn quantile_bins_merge_repeated_edges() {
        // Mostly zeros (like capital-gain): 5 bins of [0 × 6, 1, 5, 10, 100] take the sorted
        // values at positions 0, 1.8, 3.6, 5.4, 7.2 and 9.
        let values = [0.0f64, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 5.0, 10.0, 100.0];
        let df = df!("g" => values).unwrap();
        let mut tab = TabPreprocessor::new(&[], &["g"]).quantize("g", Quantization::Bins(5));
        let data = tab.fit_transform(&df).unwrap();
        // positions: 0 -> 0; 1.8 -> 0; 3.6 -> 0; 5.4 -> 0 + 0.4 * 1 = 0.4; 7.2 -> 5 + 0.2 * 5 = 6;
        // 9 -> 100. Merged: [0, 0.4, 6, 100] -> 3 bins.
        let edges = tab.bin_edges("g").unwrap();
        let expected = [0.0, 0.4, 6.0, 100.0];
        for (g, e) in edges.iter().zip(expected) {
            assert!((g - e).abs() < 1e-12, "{edges:?}");
        }
        assert_eq!(edges.len(), 4);
        assert_eq!(
            data.cat.column(0).to_vec(),
            vec![1, 1, 1, 1, 1, 1, 2, 2, 3, 3]
        );
        assert_eq!(tab.meta().unwrap().cat[0].cardinality, 4);
        assert_eq!(data.cont.shape(), &[10, 0]);
        // A constant column gets one bin.
        let df = df!("c" => [2.0f64, 2.0, 2.0]).unwrap();
        let mut tab = TabPreprocessor::new(&[], &["c"]).quantize("c", Quantization::Bins(4));
        let data = tab.fit_transform(&df).unwrap();
        assert_eq!(data.cat.column(0).to_vec(), vec![1, 1, 1]);
        assert_eq!(tab.meta().unwrap().cat[0].cardinality, 2);
    }

    #[test]
    fn explicit_edges_follow_the_categorical_columns() {
        let mut tab = TabPreprocessor::new(&["color"], &["x", "n"])
            .quantize("n", Quantization::Edges(vec![0.0, 3.0, 5.0, 10.0]))
            .embed_dim_for("n", 2)
            .missing_indicator(true);
        let data = tab.fit_transform(&small()).unwrap();
        // n = [2, 4, 4, 4, 6]: (-inf, 3] -> 1, (3, 5] -> 2, (5, inf) -> 3.
        assert_eq!(data.cat, array![[3, 1], [1, 2], [0, 2], [3, 2], [2, 3]]);
        let meta = tab.meta().unwrap();
        let names: Vec<_> = meta
            .cat
            .iter()
            .map(|c| (c.name.as_str(), c.cardinality, c.embed_dim))
            .collect();
        assert_eq!(names, vec![("color", 4, 3), ("n", 4, 2)]);
        assert_eq!(meta.cont, vec!["x", "x_missing"]);
        assert_eq!(data.cont.shape(), &[5, 2]);
        assert_eq!(tab.bin_edges("n").unwrap(), &[0.0, 3.0, 5.0, 10.0]);
        // Back: the quantized column is the midpoint of its bin, in configuration order.
        let back = tab.inverse_transform(&data).unwrap();
        let names: Vec<&str> = back.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(names, vec!["color", "x", "n"]);
        let n: Vec<Option<f64>> = back.column("n").unwrap().f64().unwrap().iter().collect();
        assert_eq!(
            n,
            vec![Some(1.5), Some(4.0), Some(4.0), Some(4.0), Some(7.5)]
        );
        // Save and load keep the edges.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tab.json");
        tab.save(&path).unwrap();
        let loaded = TabPreprocessor::load(&path).unwrap();
        assert_eq!(loaded, tab);
        assert_eq!(loaded.transform(&small()).unwrap(), data);
    }

    #[test]
    fn bad_quantization_is_a_typed_error_naming_the_column() {
        let df = small();
        let cases = [
            ("x", Quantization::Edges(vec![0.0, 2.0, 2.0])),
            ("x", Quantization::Edges(vec![3.0, 1.0])),
            ("x", Quantization::Edges(vec![1.0])),
            ("x", Quantization::Edges(vec![0.0, f64::NAN])),
            ("x", Quantization::Bins(1)),
            ("color", Quantization::Bins(3)),
        ];
        for (col, q) in cases {
            let err = TabPreprocessor::new(&["color"], &["x"])
                .quantize(col, q.clone())
                .fit(&df)
                .unwrap_err();
            assert!(
                matches!(err, PreprocessingError::InvalidConfig { ref field, ref reason }
                    if field == "quantize" && reason.contains(&format!("`{col}`"))),
                "{q:?}: {err}"
            );
        }
        let err = TabPreprocessor::new(&[], &["x"])
            .quantize("x", Quantization::Bins(2))
            .scaling(Scaling::Columns(vec!["x".into()]))
            .fit(&df)
            .unwrap_err();
        assert!(
            matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "scaling")
        );
        let nulls = df!("f" => [None::<f64>, Some(f64::NAN)]).unwrap();
        let err = TabPreprocessor::new(&[], &["f"])
            .quantize("f", Quantization::Bins(2))
            .fit(&nulls)
            .unwrap_err();
        assert!(matches!(err, PreprocessingError::AllNull { ref column } if column == "f"));
        let mut tab = TabPreprocessor::new(&[], &["x"]).quantize("x", Quantization::Bins(2));
        tab.fit(&df).unwrap();
        let inf = df!("x" => [1.0f64, f64::INFINITY]).unwrap();
        assert!(matches!(
            tab.transform(&inf).unwrap_err(),
            PreprocessingError::NonFinite { ref column, row: 1, .. } if column == "x"
        ));
    }
}

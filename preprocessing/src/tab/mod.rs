//! Label encoding, imputation and scaling for the deep tabular component.

mod fit;
#[cfg(test)]
mod tests;
mod transform;

use ndarray::Array2;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::column::{self, check_unique, KeyDtypes};
use crate::contract::{self, Persist};
use crate::embed::EmbeddingRule;
use crate::error::{PreprocessingError, Result};
use crate::macros::{bail, ensure};
use crate::quantize;
pub use crate::quantize::Quantization;
use fit::TabFitted;

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

/// Output of [`TabPreprocessor::transform`](crate::Transform::transform). Both arrays have standard (row-major) layout.
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
    /// missing indicators. The configuration is validated by [`fit`](crate::Fit::fit).
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
    /// to `n_bins + 1`. Checked by [`fit`](crate::Fit::fit): `Bins(n)` needs `n ≥ 2`, `Edges` at
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
    ///
    /// # Shapes
    /// - `data.cat`: `[n_rows, n_cat_cols + n_quantized]` i64, `data.cont`: `[n_rows, n_cont_out]` f32
    /// - returns a DataFrame of `n_rows` rows and `n_cat_cols + n_continuous_cols` columns
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
        contract::fitted_state(self.fitted.as_ref(), "TabPreprocessor", |fitted| {
            fitted.cat.len() == self.cat_cols.len()
                && fitted.cont.len() == self.plain_cols().count()
                && fitted.quant.len() == self.quant_cols().count()
                && fitted.quant.iter().all(|q| !q.edges.is_empty())
        })
    }

    fn validate_config(&self) -> Result<()> {
        ensure!(
            !self.cat_cols.is_empty() || !self.continuous_cols.is_empty(),
            config("columns"),
            "no categorical or continuous column given"
        );
        check_unique(&self.cat_cols, "cat_cols")?;
        check_unique(&self.continuous_cols, "continuous_cols")?;
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
            check_unique(cols, "scaling")?;
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
}

impl Persist for TabPreprocessor {}

fn category(categories: &[String], code: i64) -> Option<&str> {
    let i = usize::try_from(code).ok()?.checked_sub(1)?;
    categories.get(i).map(String::as_str)
}

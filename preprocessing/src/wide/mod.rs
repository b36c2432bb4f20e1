//! Global index encoding for the wide (linear) component.

mod crossed;
mod stream;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::BTreeMap;

use ndarray::Array2;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::column::{self, check_unique, DtypeClass, KeyDtypes};
use crate::contract::{self, Fit, Persist, Transform};
use crate::error::{PreprocessingError, Result};
use crate::macros::ensure;
use crate::quantize::{self, Quantization};
use crossed::{fit_crossed, transform_crossed};

/// Separator between the parts of a crossed column's name and of its values.
const CROSS_SEP: &str = "-";

/// Encodes categorical columns, and crosses of them, into one matrix of *global* indices for
/// the wide component (an embedding bag used as a linear model).
///
/// At fit time every distinct `(column, value)` pair gets its own index in `1..=wide_dim()`:
/// the wide columns first, in the order given, then the crossed columns; within a column the
/// values are numbered in sorted order of their string form. Index `0` stands for a null or a
/// value not seen at fit time, so transforming new data never fails on a new category.
///
/// A crossed column combines two or more columns; its value is the parts' values joined
/// with `-` (e.g. `"Bachelors-Adm-clerical"`) and its name is the column names joined the same
/// way (e.g. `"education-occupation"`). A row with a null in any part gets index 0.
///
/// Wide columns may have a string, categorical, boolean, integer, float or UTF-8 bytes dtype;
/// values are keyed by their string form. A numeric column can instead be binned
/// ([`quantize`](Self::quantize)): its values become bins such as `"(25, 40]"`, each with its
/// own index, wherever the column is used (as a wide column or a part of a crossed one).
///
/// ```
/// use polars::prelude::*;
/// use widedeep_preprocessing::{Transform, WidePreprocessor};
///
/// let df = df!("color" => ["red", "blue", "red"], "size" => ["S", "M", "S"]).unwrap();
/// let mut wide = WidePreprocessor::new(&["color", "size"])
///     .crossed_cols(vec![vec!["color".into(), "size".into()]]);
/// let data = wide.fit_transform(&df).unwrap();
/// // color: blue=1, red=2; size: M=3, S=4; color-size: blue-M=5, red-S=6.
/// assert_eq!(data.indices.row(0).to_vec(), vec![2, 4, 6]);
/// assert_eq!(wide.wide_dim(), 6);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WidePreprocessor {
    wide_cols: Vec<String>,
    crossed_cols: Vec<Vec<String>>,
    /// Continuous columns binned before keying, in the order they were set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    quantize: Vec<(String, Quantization)>,
    fitted: Option<WideFitted>,
}

/// What `fit` learned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct WideFitted {
    /// Sorted distinct values of each wide column, in `wide_cols` order.
    vocabs: Vec<Vec<String>>,
    /// Sorted distinct value tuples of each crossed column, in `crossed_cols` order.
    crossed: Vec<Vec<Vec<String>>>,
    /// Bin edges of each quantized column, in `quantize` order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    edges: Vec<Vec<f64>>,
    /// Dtype class of every column used, at fit time (empty in saves from before it was
    /// recorded).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    dtypes: BTreeMap<String, DtypeClass>,
}

impl WideFitted {
    /// Number of indices used by each output column, in output order.
    fn sizes(&self) -> impl Iterator<Item = usize> + '_ {
        self.vocabs
            .iter()
            .map(Vec::len)
            .chain(self.crossed.iter().map(Vec::len))
    }
}

/// Output of [`WidePreprocessor::transform`].
#[derive(Clone, Debug, PartialEq)]
pub struct WideData {
    /// Global indices, shape `[n_rows, n_wide_cols + n_crossed]`, standard (row-major) layout.
    /// Values lie in `0..=wide_dim`; 0 means null or unseen.
    pub indices: Array2<i64>,
    /// Configured columns that were entirely null (or NaN) in the transformed frame: every
    /// row got index 0 for them. Also reported on stderr.
    pub all_null: Vec<String>,
}

impl WidePreprocessor {
    /// A preprocessor for the given wide columns (no crossed columns).
    pub fn new(wide_cols: &[&str]) -> Self {
        Self {
            wide_cols: wide_cols.iter().map(|c| (*c).to_owned()).collect(),
            crossed_cols: Vec::new(),
            quantize: Vec::new(),
            fitted: None,
        }
    }

    /// Bins the numeric column `col` per `q` (replacing an earlier setting for the same
    /// column): each bin becomes one wide feature, named like `"(25, 40]"` (the first bin is
    /// closed on both sides, `"[17, 25]"`), wherever `col` is used — as a wide column or as a
    /// part of a crossed column. Null and NaN get index 0; an infinite value is an error. The
    /// same [`Quantization`] as [`TabPreprocessor::quantize`](crate::TabPreprocessor::quantize).
    ///
    /// ```
    /// use polars::prelude::*;
    /// use widedeep_preprocessing::{Quantization, Transform, WidePreprocessor};
    ///
    /// let df = df!("age" => [17.0f64, 25.0, 40.0, 70.0]).unwrap();
    /// let mut wide = WidePreprocessor::new(&["age"])
    ///     .quantize("age", Quantization::Edges(vec![0.0, 18.0, 65.0, 120.0]));
    /// let data = wide.fit_transform(&df).unwrap();
    /// assert_eq!(wide.wide_dim(), 3);
    /// let names: Vec<String> = data.indices.iter().map(|&i| wide.feature_of(i).unwrap().1).collect();
    /// assert_eq!(names, ["[0, 18]", "(18, 65]", "(18, 65]", "(65, 120]"]);
    /// ```
    pub fn quantize(mut self, col: &str, q: Quantization) -> Self {
        quantize::set(&mut self.quantize, col, q);
        self.fitted = None;
        self
    }

    /// The fitted bin edges of the quantized column `col` (`None` for other columns or an
    /// unfitted preprocessor).
    pub fn bin_edges(&self, col: &str) -> Option<&[f64]> {
        let j = self.quantize.iter().position(|(c, _)| c == col)?;
        self.fitted.as_ref()?.edges.get(j).map(Vec::as_slice)
    }

    /// Every column read (wide columns, then crossed parts), each once.
    fn used_cols(&self) -> Vec<&String> {
        let mut cols: Vec<&String> = Vec::new();
        for c in self
            .wide_cols
            .iter()
            .chain(self.crossed_cols.iter().flatten())
        {
            if !cols.contains(&c) {
                cols.push(c);
            }
        }
        cols
    }

    /// `df` with each quantized column replaced by the names of its bins (a string column).
    fn binned<'a>(&self, df: &'a DataFrame, edges: &[Vec<f64>]) -> Result<Cow<'a, DataFrame>> {
        if self.quantize.is_empty() {
            return Ok(Cow::Borrowed(df));
        }
        let mut out = df.clone();
        for ((name, _), edges) in self.quantize.iter().zip(edges) {
            let col = column::get(df, name)?;
            column::check_numeric(col, name)?;
            let values = column::as_f64(col)?;
            let mut labels = vec![0i64; values.len()];
            quantize::fill_labels(&values, edges, name, &mut labels)?;
            let names: StringChunked = labels
                .iter()
                .map(|&l| (l > 0).then(|| quantize::bin_name(edges, l)))
                .collect();
            out.replace(name, names.with_name(name.as_str().into()).into_column())?;
        }
        Ok(Cow::Owned(out))
    }

    /// Adds crossed columns: each inner list names two or more columns to combine (they need
    /// not be among the wide columns). Replaces any previously set crossed columns.
    pub fn crossed_cols(mut self, crossed: Vec<Vec<String>>) -> Self {
        self.crossed_cols = crossed;
        self.fitted = None;
        self
    }

    /// The configured wide columns.
    pub fn wide_cols(&self) -> &[String] {
        &self.wide_cols
    }

    /// The configured crossed columns.
    pub fn crossed(&self) -> &[Vec<String>] {
        &self.crossed_cols
    }

    /// Number of distinct fitted `(column, value)` pairs over all wide and crossed columns;
    /// indices run `1..=wide_dim()`, so an embedding table needs `wide_dim() + 1` rows.
    /// 0 before fitting.
    pub fn wide_dim(&self) -> usize {
        self.fitted.as_ref().map_or(0, |f| f.sizes().sum())
    }

    /// One name per output column: the wide column names, then the crossed column names
    /// (parts joined with `-`, e.g. `"education-occupation"`).
    pub fn feature_names(&self) -> Vec<String> {
        self.wide_cols
            .iter()
            .cloned()
            .chain(self.crossed_cols.iter().map(|parts| parts.join(CROSS_SEP)))
            .collect()
    }

    /// The `(feature name, value)` behind a global index in `1..=wide_dim()`, e.g.
    /// `("education", "Bachelors")` or `("education-occupation", "Bachelors-Adm-clerical")`.
    /// `None` for 0, an out-of-range index or an unfitted preprocessor.
    pub fn feature_of(&self, index: i64) -> Option<(String, String)> {
        let fitted = self.fitted().ok()?;
        let mut rest = usize::try_from(index).ok()?.checked_sub(1)?;
        for (j, vocab) in fitted.vocabs.iter().enumerate() {
            if rest < vocab.len() {
                return Some((self.wide_cols[j].clone(), vocab[rest].clone()));
            }
            rest -= vocab.len();
        }
        for (k, combos) in fitted.crossed.iter().enumerate() {
            if rest < combos.len() {
                let name = self.crossed_cols[k].join(CROSS_SEP);
                return Some((name, combos[rest].join(CROSS_SEP)));
            }
            rest -= combos.len();
        }
        None
    }

    /// The fitted state, checked against the configuration (it may come from a hand-edited
    /// JSON file).
    fn fitted(&self) -> Result<&WideFitted> {
        contract::fitted_state(self.fitted.as_ref(), "WidePreprocessor", |fitted| {
            fitted.vocabs.len() == self.wide_cols.len()
                && fitted.crossed.len() == self.crossed_cols.len()
                && fitted.edges.len() == self.quantize.len()
                && fitted.edges.iter().all(|e| !e.is_empty())
                && fitted
                    .crossed
                    .iter()
                    .zip(&self.crossed_cols)
                    .all(|(combos, parts)| combos.iter().all(|c| c.len() == parts.len()))
        })
    }

    fn validate_config(&self) -> Result<()> {
        ensure!(
            !self.wide_cols.is_empty() || !self.crossed_cols.is_empty(),
            config("wide_cols"),
            "no wide or crossed column given"
        );
        check_unique(&self.wide_cols, "wide_cols")?;
        for parts in &self.crossed_cols {
            ensure!(
                parts.len() >= 2,
                config("crossed_cols"),
                "a crossed column needs at least two columns, got {:?}",
                parts
            );
            check_unique(parts, "crossed_cols")?;
        }
        let names: Vec<String> = self
            .crossed_cols
            .iter()
            .map(|p| p.join(CROSS_SEP))
            .collect();
        check_unique(&names, "crossed_cols")?;
        for (col, q) in &self.quantize {
            ensure!(
                self.used_cols().contains(&col),
                config("quantize"),
                "`{col}` is not a wide column or a part of a crossed column"
            );
            q.validate(col)?;
        }
        Ok(())
    }
}

impl Fit for WidePreprocessor {
    /// Learns the vocabulary of every wide and crossed column from `df`.
    ///
    /// Errors: [`InvalidConfig`](PreprocessingError::InvalidConfig) when no column is
    /// configured or a crossed column has fewer than two parts,
    /// [`DuplicateColumn`](PreprocessingError::DuplicateColumn),
    /// [`EmptyFrame`](PreprocessingError::EmptyFrame),
    /// [`MissingColumn`](PreprocessingError::MissingColumn),
    /// [`WrongType`](PreprocessingError::WrongType) and
    /// [`AllNull`](PreprocessingError::AllNull) (for a crossed column: no row with all parts
    /// non-null).
    fn fit(&mut self, df: &DataFrame) -> Result<()> {
        self.validate_config()?;
        ensure!(df.height() > 0, PreprocessingError::EmptyFrame);
        let edges = self
            .quantize
            .iter()
            .map(|(name, q)| {
                let col = column::get(df, name)?;
                column::check_numeric(col, name)?;
                q.fit_edges(col, name)
            })
            .collect::<Result<Vec<_>>>()?;
        let binned = self.binned(df, &edges)?;
        let df = binned.as_ref();
        let mut dtypes = BTreeMap::new();
        for name in self.used_cols() {
            if let Some(class) = DtypeClass::of(checked_column(df, name)?.dtype()) {
                dtypes.insert(name.clone(), class);
            }
        }
        let vocabs = column::par_map(df.height(), self.wide_cols.len(), |j| {
            let name = &self.wide_cols[j];
            let vocab = column::distinct_keys(checked_column(df, name)?)?;
            ensure!(!vocab.is_empty(), PreprocessingError::all_null(name));
            Ok(vocab)
        })?;
        let crossed = column::par_map(df.height(), self.crossed_cols.len(), |k| {
            fit_crossed(df, &self.crossed_cols[k])
        })?;
        self.fitted = Some(WideFitted {
            vocabs,
            crossed,
            edges,
            dtypes,
        });
        Ok(())
    }

    fn is_fitted(&self) -> bool {
        self.fitted.is_some()
    }
}

impl Transform for WidePreprocessor {
    /// Global indices, see [`WideData`].
    type Output = WideData;

    /// Encodes `df` with the fitted vocabularies.
    ///
    /// Returns indices of shape `[df.height(), n_wide_cols + n_crossed]`. Errors:
    /// [`NotFitted`](PreprocessingError::NotFitted), [`MissingColumn`](PreprocessingError::MissingColumn),
    /// [`WrongType`](PreprocessingError::WrongType),
    /// [`DtypeChanged`](PreprocessingError::DtypeChanged) (a column keyed differently than at
    /// fit time), [`NonFinite`](PreprocessingError::NonFinite) (an infinite value in a
    /// quantized column). An entirely null column is listed in [`WideData::all_null`].
    ///
    /// # Shapes
    /// - `df`: `n_rows = df.height()` rows with every wide and crossed part column
    /// - returns `indices`: `[n_rows, n_wide_cols + n_crossed]` i64 in `0..=wide_dim()`
    fn transform(&self, df: &DataFrame) -> Result<WideData> {
        let fitted = self.fitted()?;
        let binned = self.binned(df, &fitted.edges)?;
        let df = binned.as_ref();
        // Check all columns up front so the first error is the first bad column.
        for name in self.used_cols() {
            let col = checked_column(df, name)?;
            column::check_fitted_dtype(col, name, fitted.dtypes.get(name).copied())?;
        }
        let n_wide = self.wide_cols.len();
        let n_out = n_wide + self.crossed_cols.len();
        let offsets: Vec<i64> = fitted
            .sizes()
            .scan(0i64, |acc, size| {
                let start = *acc;
                *acc += size as i64;
                Some(start)
            })
            .collect();
        let n_rows = df.height();
        let columns = column::par_map(n_rows, n_out, |j| {
            let mut out = vec![0i64; n_rows];
            if j < n_wide {
                let col = checked_column(df, &self.wide_cols[j])?;
                column::encode_into(col, &fitted.vocabs[j], offsets[j], &mut out)?;
            } else {
                let k = j - n_wide;
                let (parts, combos) = (&self.crossed_cols[k], &fitted.crossed[k]);
                transform_crossed(df, parts, combos, offsets[j], &mut out)?;
            }
            Ok(out)
        })?;
        let indices = column::assemble(n_rows, &columns);
        let all_null =
            column::warn_all_missing(df, self.used_cols().into_iter(), "WidePreprocessor");
        Ok(WideData { indices, all_null })
    }
}

impl Persist for WidePreprocessor {}

fn checked_column<'a>(df: &'a DataFrame, name: &str) -> Result<&'a Column> {
    let col = column::get(df, name)?;
    column::check_key_dtype(col, name, KeyDtypes::DiscreteOrFloat)?;
    Ok(col)
}

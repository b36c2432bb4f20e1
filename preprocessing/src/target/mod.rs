//! Encoding of the target column.

mod classes;
mod scale;
mod stream;
#[cfg(test)]
mod tests;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::column::{self, DtypeClass};
use crate::contract::{Fit, Persist, Transform};
use crate::error::{PreprocessingError, Result};
use crate::macros::ensure;
pub use scale::TargetScaling;
use scale::{fit_scale, regression_values, FittedScale};

/// The learning task, which decides how the target is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TargetKind {
    /// Two classes, encoded `0.0` / `1.0` (`f32`).
    Binary,
    /// `k` classes, encoded `0..k` (`i64`).
    Multiclass,
    /// A real number, passed through as `f32`.
    Regression,
}

/// Encoded target values, one per row: shape `[n_rows]`.
#[derive(Clone, Debug, PartialEq)]
pub enum TargetData {
    /// Binary labels (`0.0`/`1.0`) or regression values.
    F32(Vec<f32>),
    /// Multiclass labels in `0..n_classes`.
    I64(Vec<i64>),
}

impl TargetData {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Self::F32(v) => v.len(),
            Self::I64(v) => v.len(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values if they are `f32` (binary, regression).
    pub fn as_f32(&self) -> Option<&[f32]> {
        match self {
            Self::F32(v) => Some(v),
            Self::I64(_) => None,
        }
    }

    /// The values if they are `i64` (multiclass).
    pub fn as_i64(&self) -> Option<&[i64]> {
        match self {
            Self::I64(v) => Some(v),
            Self::F32(_) => None,
        }
    }
}

/// Encodes a target column for a [`TargetKind`].
///
/// * **Regression**: an integer or float column, passed through as `f32`.
/// * **Binary**: a string, categorical, boolean, integer or float column with exactly two
///   distinct values. Classes are sorted (numbers numerically, everything else by string
///   form) and the second one is the positive class (`1.0`) unless
///   [`positive_class`](Self::positive_class) says otherwise; so integer `0`/`1` stay `0`/`1`
///   and `false`/`true` become `0`/`1`.
/// * **Multiclass**: same dtypes, at least two classes, sorted the same way and numbered
///   `0..k`.
///
/// A null is an error ([`NullValue`](PreprocessingError::NullValue)), as is NaN or an
/// infinite value ([`NonFinite`](PreprocessingError::NonFinite)) and, for classification, a
/// class not seen at fit time ([`UnknownClass`](PreprocessingError::UnknownClass)).
///
/// ```
/// use polars::prelude::*;
/// use widedeep_preprocessing::{TargetData, TargetEncoder, TargetKind, Transform};
///
/// let df = df!("income" => ["<=50K", ">50K", "<=50K"]).unwrap();
/// let mut enc = TargetEncoder::new("income", TargetKind::Binary);
/// assert_eq!(enc.fit_transform(&df).unwrap(), TargetData::F32(vec![0.0, 1.0, 0.0]));
/// assert_eq!(enc.classes(), ["<=50K", ">50K"]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetEncoder {
    column: String,
    kind: TargetKind,
    positive_class: Option<String>,
    /// Class labels in index order (empty for regression).
    classes: Vec<String>,
    fitted: bool,
    /// Scaling of a regression target.
    #[serde(default, skip_serializing_if = "is_default")]
    scaling: TargetScaling,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fitted_scale: Option<FittedScale>,
    /// The column's dtype class at fit time, for classification (absent in older saves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dtype: Option<DtypeClass>,
}

fn is_default(s: &TargetScaling) -> bool {
    *s == TargetScaling::None
}

impl TargetEncoder {
    /// An encoder for the target `column`.
    pub fn new(column: &str, kind: TargetKind) -> Self {
        Self {
            column: column.to_owned(),
            kind,
            positive_class: None,
            classes: Vec::new(),
            fitted: false,
            scaling: TargetScaling::None,
            fitted_scale: None,
            dtype: None,
        }
    }

    /// Scales a regression target (see [`TargetScaling`]); checked by [`fit`](Self::fit),
    /// which rejects it for classification targets
    /// ([`InvalidConfig`](PreprocessingError::InvalidConfig), field `"scaling"`).
    ///
    /// ```
    /// use polars::prelude::*;
    /// use widedeep_preprocessing::{TargetData, TargetEncoder, TargetKind, TargetScaling, Transform};
    ///
    /// let df = df!("price" => [10.0f64, 20.0, 30.0]).unwrap();
    /// let mut enc = TargetEncoder::new("price", TargetKind::Regression)
    ///     .scaling(TargetScaling::Standard);
    /// let TargetData::F32(y) = enc.fit_transform(&df).unwrap() else { unreachable!() };
    /// assert!((y[0] + 1.2247).abs() < 1e-4 && y[1].abs() < 1e-6);
    /// assert_eq!(enc.inverse_values(&y), vec![10.0, 20.0, 30.0]);
    /// ```
    pub fn scaling(mut self, scaling: TargetScaling) -> Self {
        self.scaling = scaling;
        self.fitted = false;
        self.fitted_scale = None;
        self
    }

    /// For a binary target, the class (in string form) to encode as `1.0`. It must be one of
    /// the two classes found at fit time.
    pub fn positive_class(mut self, class: &str) -> Self {
        self.positive_class = Some(class.to_owned());
        self.fitted = false;
        self
    }

    /// The target column's name.
    pub fn column(&self) -> &str {
        &self.column
    }

    /// The task.
    pub fn kind(&self) -> TargetKind {
        self.kind
    }

    /// Class labels (string form) in index order; empty for regression or before fitting.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Number of classes: 2 for binary, `k` for multiclass, 0 for regression or before
    /// fitting.
    pub fn n_classes(&self) -> usize {
        self.classes.len()
    }

    /// The label of class `index`, `None` when out of range.
    pub fn label_of(&self, index: usize) -> Option<&str> {
        self.classes.get(index).map(String::as_str)
    }

    fn checked_column<'a>(&self, df: &'a DataFrame) -> Result<&'a Column> {
        let col = column::get(df, &self.column)?;
        match self.kind {
            TargetKind::Regression => column::check_numeric(col, &self.column)?,
            TargetKind::Binary | TargetKind::Multiclass => {
                column::check_key_dtype(col, &self.column, column::KeyDtypes::DiscreteOrFloat)?
            }
        }
        Ok(col)
    }
}

impl Fit for TargetEncoder {
    /// Learns the classes (classification) and checks the values.
    ///
    /// Errors: [`EmptyFrame`](PreprocessingError::EmptyFrame),
    /// [`MissingColumn`](PreprocessingError::MissingColumn),
    /// [`WrongType`](PreprocessingError::WrongType),
    /// [`NullValue`](PreprocessingError::NullValue),
    /// [`NonFinite`](PreprocessingError::NonFinite), and
    /// [`InvalidConfig`](PreprocessingError::InvalidConfig) with field `"target"` (wrong
    /// number of classes) or `"positive_class"` (not one of the classes).
    fn fit(&mut self, df: &DataFrame) -> Result<()> {
        ensure!(df.height() > 0, PreprocessingError::EmptyFrame);
        let col = self.checked_column(df)?;
        self.fitted = false;
        self.fitted_scale = None;
        self.dtype = None;
        ensure!(
            self.scaling == TargetScaling::None || self.kind == TargetKind::Regression,
            config("scaling"),
            "target `{}` is a classification target; only regression targets are scaled",
            self.column
        );
        self.classes = match self.kind {
            TargetKind::Regression => {
                let values = regression_values(col, &self.column)?;
                self.fitted_scale = fit_scale(self.scaling, &values, &self.column)?;
                Vec::new()
            }
            TargetKind::Binary | TargetKind::Multiclass => {
                self.dtype = DtypeClass::of(col.dtype());
                self.fit_classes(col)?
            }
        };
        self.fitted = true;
        Ok(())
    }

    fn is_fitted(&self) -> bool {
        self.fitted
    }
}

impl Transform for TargetEncoder {
    /// One label or value per row, see [`TargetData`].
    type Output = TargetData;

    /// Encodes the target column of `df`: `F32` of length `df.height()` for binary and
    /// regression, `I64` for multiclass.
    ///
    /// Errors: [`NotFitted`](PreprocessingError::NotFitted) and those of
    /// [`fit`](Self::fit), plus [`UnknownClass`](PreprocessingError::UnknownClass).
    ///
    /// # Shapes
    /// - `df`: `n_rows = df.height()` rows with the target column
    /// - returns `[n_rows]`: f32 (binary `0.0`/`1.0`, regression) or i64 (multiclass `0..k`)
    fn transform(&self, df: &DataFrame) -> Result<TargetData> {
        ensure!(self.fitted, PreprocessingError::not_fitted("TargetEncoder"));
        let col = self.checked_column(df)?;
        column::check_fitted_dtype(col, &self.column, self.dtype)?;
        match self.kind {
            TargetKind::Regression => {
                let values = regression_values(col, &self.column)?;
                Ok(TargetData::F32(self.scaled(&values)?))
            }
            TargetKind::Binary => {
                let codes = self.class_codes(col)?;
                Ok(TargetData::F32(
                    codes.into_iter().map(|c| c as f32).collect(),
                ))
            }
            TargetKind::Multiclass => Ok(TargetData::I64(self.class_codes(col)?)),
        }
    }
}

impl Persist for TargetEncoder {}

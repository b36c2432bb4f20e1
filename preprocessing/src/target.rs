//! Encoding of the target column.

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::column::{self, DtypeClass};
use crate::contract::{Fit, Persist, Transform};
use crate::error::{PreprocessingError, Result};
use crate::macros::{bail, ensure};

/// How a regression target is scaled before training; predictions are mapped back with
/// [`TargetEncoder::inverse_values`] (a `Pipeline` does it on `predict` and `evaluate`).
/// Targets on very different scales (several regression targets, or one with a large
/// spread) train much better scaled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetScaling {
    /// Values pass through (the default).
    #[default]
    None,
    /// `(y − mean) / std` (population standard deviation; 1 for a constant target).
    Standard,
    /// `(y − median) / IQR` (interquartile range, linearly interpolated quantiles; 1 when it
    /// is 0): insensitive to outliers.
    Robust,
    /// `ln(1 + y)`, for non-negative, right-skewed targets (prices, counts); values must be
    /// greater than −1.
    Log,
}

/// Fitted statistics of a [`TargetScaling`]: `y' = (y − center) / scale` (after `ln(1 + y)`
/// for [`TargetScaling::Log`], whose center is 0 and scale 1).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct FittedScale {
    center: f64,
    scale: f64,
}

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

    /// The configured scaling.
    pub fn target_scaling(&self) -> TargetScaling {
        self.scaling
    }

    /// Whether predictions need [`inverse_values`](Self::inverse_values) to come back to the
    /// target's units (a fitted scaling other than [`TargetScaling::None`]).
    pub fn is_scaled(&self) -> bool {
        self.fitted_scale.is_some()
    }

    /// Maps scaled values (model predictions) back to the target's units; the identity
    /// without a scaling.
    pub fn inverse_values(&self, values: &[f32]) -> Vec<f32> {
        let Some(f) = self.fitted_scale else {
            return values.to_vec();
        };
        values
            .iter()
            .map(|&v| {
                let y = f64::from(v) * f.scale + f.center;
                let y = match self.scaling {
                    TargetScaling::Log => y.exp_m1(),
                    _ => y,
                };
                y as f32
            })
            .collect()
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

    /// The regression values scaled per the fitted scaling, as `f32`.
    fn scaled(&self, values: &[f64]) -> Result<Vec<f32>> {
        values
            .iter()
            .enumerate()
            .map(|(row, &v)| {
                let out_of_range = |reason: &str| PreprocessingError::OutOfRange {
                    column: self.column.clone(),
                    row,
                    value: v,
                    reason: reason.into(),
                };
                let x = match (self.scaling, self.fitted_scale) {
                    (TargetScaling::Log, Some(_)) if v <= -1.0 => {
                        bail!(out_of_range("log scaling needs values greater than -1"))
                    }
                    (TargetScaling::Log, Some(f)) => (v.ln_1p() - f.center) / f.scale,
                    (_, Some(f)) => (v - f.center) / f.scale,
                    (_, None) => v,
                };
                let x = x as f32;
                if x.is_finite() {
                    Ok(x)
                } else {
                    Err(out_of_range("beyond the range of f32"))
                }
            })
            .collect()
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

    /// Sorted class labels, positive class last for a binary target.
    fn fit_classes(&self, col: &Column) -> Result<Vec<String>> {
        let name = &self.column;
        let mut classes = match Values::of(col)? {
            Values::Int(ca) => {
                no_nulls(&ca, name)?;
                let set: PlHashSet<i64> = ca.iter().flatten().collect();
                let mut v: Vec<i64> = set.into_iter().collect();
                v.sort_unstable();
                v.iter().map(i64::to_string).collect()
            }
            Values::Float(ca) => {
                no_nulls(&ca, name)?;
                let mut set = PlHashSet::new();
                for (row, v) in ca.iter().flatten().enumerate() {
                    ensure!(v.is_finite(), PreprocessingError::non_finite(name, row, v));
                    set.insert(float_key(v));
                }
                let mut v: Vec<f64> = set.into_iter().map(f64::from_bits).collect();
                v.sort_unstable_by(f64::total_cmp);
                v.iter().map(f64::to_string).collect()
            }
            Values::Str(col) => {
                let ca = col.str()?;
                no_nulls(ca, name)?;
                let set: PlHashSet<&str> = ca.iter().flatten().collect();
                let mut v: Vec<String> = set.into_iter().map(str::to_owned).collect();
                v.sort_unstable();
                v
            }
        };
        let n = classes.len();
        if self.kind == TargetKind::Multiclass {
            ensure!(
                n >= 2,
                config("target"),
                "multiclass target `{name}` has {n} distinct value(s), expected at least 2"
            );
            return Ok(classes);
        }
        ensure!(
            n == 2,
            config("target"),
            "binary target `{name}` has {n} distinct value(s), expected exactly 2"
        );
        if let Some(positive) = &self.positive_class {
            let Some(pos) = classes.iter().position(|c| same_label(c, positive)) else {
                bail!(
                    config("positive_class"),
                    "`{positive}` is not a class of `{name}` (classes: {classes:?})"
                );
            };
            if pos == 0 {
                classes.swap(0, 1);
            }
        }
        Ok(classes)
    }

    /// Class index of every row.
    fn class_codes(&self, col: &Column) -> Result<Vec<i64>> {
        let name = &self.column;
        let unknown = |value: String| PreprocessingError::UnknownClass {
            column: name.clone(),
            value,
        };
        let indexed = || self.classes.iter().enumerate().map(|(i, c)| (c, i as i64));
        match Values::of(col)? {
            Values::Int(ca) => {
                let lookup: PlHashMap<i64, i64> = indexed()
                    .filter_map(|(c, i)| Some((column::canonical_int(c)?, i)))
                    .collect();
                no_nulls(&ca, name)?;
                ca.iter()
                    .flatten()
                    .map(|v| {
                        lookup
                            .get(&v)
                            .copied()
                            .ok_or_else(|| unknown(v.to_string()))
                    })
                    .collect()
            }
            Values::Float(ca) => {
                let lookup: PlHashMap<u64, i64> = indexed()
                    .filter_map(|(c, i)| Some((float_key(c.parse::<f64>().ok()?), i)))
                    .collect();
                no_nulls(&ca, name)?;
                ca.iter()
                    .flatten()
                    .enumerate()
                    .map(|(row, v)| {
                        ensure!(v.is_finite(), PreprocessingError::non_finite(name, row, v));
                        lookup
                            .get(&float_key(v))
                            .copied()
                            .ok_or_else(|| unknown(v.to_string()))
                    })
                    .collect()
            }
            Values::Str(col) => {
                let lookup: PlHashMap<&str, i64> =
                    indexed().map(|(c, i)| (c.as_str(), i)).collect();
                let ca = col.str()?;
                no_nulls(ca, name)?;
                ca.iter()
                    .flatten()
                    .map(|v| lookup.get(v).copied().ok_or_else(|| unknown(v.to_owned())))
                    .collect()
            }
        }
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

/// A classification target column, viewed in the form its values are keyed by.
enum Values {
    /// Integer dtypes, as `Int64`.
    Int(Int64Chunked),
    /// Float dtypes, as `Float64`.
    Float(Float64Chunked),
    /// Everything else (string, categorical, boolean, null), as `String`.
    Str(Column),
}

impl Values {
    fn of(col: &Column) -> Result<Self> {
        let dtype = col.dtype();
        Ok(if dtype.is_integer() {
            Self::Int(col.strict_cast(&DataType::Int64)?.i64()?.clone())
        } else if dtype.is_float() {
            Self::Float(column::as_f64(col)?)
        } else {
            Self::Str(column::as_strings(col)?)
        })
    }
}

/// Errors with [`PreprocessingError::NullValue`] at the first null of `ca`.
fn no_nulls<T: PolarsDataType>(ca: &ChunkedArray<T>, name: &str) -> Result<()> {
    match ca.first_null() {
        Some(row) => Err(PreprocessingError::NullValue {
            column: name.to_owned(),
            row,
        }),
        None => Ok(()),
    }
}

/// Hash key of a finite float; `-0.0` and `0.0` share one.
fn float_key(v: f64) -> u64 {
    if v == 0.0 {
        0.0f64.to_bits()
    } else {
        v.to_bits()
    }
}

/// Whether two class labels name the same class: equal strings, or equal numbers
/// (so `"1"` and `"1.0"` agree).
fn same_label(a: &str, b: &str) -> bool {
    a == b || matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if x == y)
}

/// The values of a numeric regression target, rejecting null, NaN and infinity.
fn regression_values(col: &Column, name: &str) -> Result<Vec<f64>> {
    let values = column::as_f64(col)?;
    let mut out = Vec::with_capacity(values.len());
    for (row, value) in values.iter().enumerate() {
        match value {
            None => {
                bail!(PreprocessingError::NullValue {
                    column: name.to_owned(),
                    row,
                })
            }
            Some(v) if !v.is_finite() => bail!(PreprocessingError::non_finite(name, row, v)),
            Some(v) => out.push(v),
        }
    }
    Ok(out)
}

/// The statistics of `scaling` on `values` (finite, non-empty).
fn fit_scale(scaling: TargetScaling, values: &[f64], name: &str) -> Result<Option<FittedScale>> {
    let n = values.len() as f64;
    let out_of_range = |row: usize, reason: &str| PreprocessingError::OutOfRange {
        column: name.to_owned(),
        row,
        value: values[row],
        reason: reason.into(),
    };
    let unit = |s: f64| if s.is_finite() && s > 0.0 { s } else { 1.0 };
    let fitted = match scaling {
        TargetScaling::None => return Ok(None),
        TargetScaling::Standard => {
            let mean = values.iter().sum::<f64>() / n;
            let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
            ensure!(
                mean.is_finite() && var.is_finite(),
                out_of_range(0, "the target's mean or variance overflows")
            );
            FittedScale {
                center: mean,
                scale: unit(var.sqrt()),
            }
        }
        TargetScaling::Robust => {
            let mut sorted = values.to_vec();
            sorted.sort_unstable_by(f64::total_cmp);
            let q = |p: f64| {
                let pos = (sorted.len() - 1) as f64 * p;
                let lo = pos.floor() as usize;
                let hi = (lo + 1).min(sorted.len() - 1);
                sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo])
            };
            FittedScale {
                center: q(0.5),
                scale: unit(q(0.75) - q(0.25)),
            }
        }
        TargetScaling::Log => {
            if let Some(row) = values.iter().position(|&v| v <= -1.0) {
                bail!(out_of_range(
                    row,
                    "log scaling needs values greater than -1",
                ));
            }
            FittedScale {
                center: 0.0,
                scale: 1.0,
            }
        }
    };
    Ok(Some(fitted))
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use super::*;

    fn read(name: &str) -> DataFrame {
        let path = format!("{}/../datasets/{name}", env!("CARGO_MANIFEST_DIR"));
        ParquetReader::new(File::open(path).unwrap())
            .finish()
            .unwrap()
    }

    #[test]
    fn binary_strings_sorted_and_positive_class() {
        let df = df!("y" => ["yes", "no", "yes"]).unwrap();
        let mut enc = TargetEncoder::new("y", TargetKind::Binary);
        assert_eq!(
            enc.fit_transform(&df).unwrap(),
            TargetData::F32(vec![1.0, 0.0, 1.0])
        );
        assert_eq!(enc.classes(), ["no", "yes"]);
        assert_eq!(enc.n_classes(), 2);
        assert_eq!(enc.label_of(1), Some("yes"));
        assert_eq!(enc.label_of(2), None);
        let mut enc = TargetEncoder::new("y", TargetKind::Binary).positive_class("no");
        assert_eq!(
            enc.fit_transform(&df).unwrap(),
            TargetData::F32(vec![0.0, 1.0, 0.0])
        );
        assert_eq!(enc.classes(), ["yes", "no"]);
        let err = TargetEncoder::new("y", TargetKind::Binary)
            .positive_class("maybe")
            .fit(&df)
            .unwrap_err();
        assert!(
            matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "positive_class")
        );
    }

    #[test]
    fn binary_ints_bools_and_floats() {
        let df = df!(
            "i" => [1i32, 0, 0, 1],
            "b" => [true, false, false, true],
            "f" => [1.0f64, 0.0, 0.0, 1.0],
            "big" => [10i64, 2, 2, 10],
        )
        .unwrap();
        let expected = TargetData::F32(vec![1.0, 0.0, 0.0, 1.0]);
        for col in ["i", "b", "f", "big"] {
            let mut enc = TargetEncoder::new(col, TargetKind::Binary);
            assert_eq!(enc.fit_transform(&df).unwrap(), expected, "column {col}");
        }
        // Integers sort numerically: 2 < 10.
        let mut enc = TargetEncoder::new("big", TargetKind::Binary);
        enc.fit(&df).unwrap();
        assert_eq!(enc.classes(), ["2", "10"]);
        // A float positive class matches its numeric value.
        let mut enc = TargetEncoder::new("f", TargetKind::Binary).positive_class("0.0");
        assert_eq!(
            enc.fit_transform(&df).unwrap(),
            TargetData::F32(vec![0.0, 1.0, 1.0, 0.0])
        );
    }

    #[test]
    fn binary_needs_two_classes() {
        let df = df!("y" => ["a", "b", "c"]).unwrap();
        let err = TargetEncoder::new("y", TargetKind::Binary)
            .fit(&df)
            .unwrap_err();
        match err {
            PreprocessingError::InvalidConfig { field, reason } => {
                assert_eq!(field, "target");
                assert!(reason.contains('3'), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn multiclass_sorted_and_unknown_class() {
        let df = df!("k" => [3i64, 10, 2, 3]).unwrap();
        let mut enc = TargetEncoder::new("k", TargetKind::Multiclass);
        assert_eq!(
            enc.fit_transform(&df).unwrap(),
            TargetData::I64(vec![1, 2, 0, 1])
        );
        assert_eq!(enc.classes(), ["2", "3", "10"]);
        let new = df!("k" => [2i64, 7]).unwrap();
        let err = enc.transform(&new).unwrap_err();
        assert!(
            matches!(err, PreprocessingError::UnknownClass { ref column, ref value }
            if column == "k" && value == "7")
        );
        let df = df!("s" => ["b", "a", "c"]).unwrap();
        let mut enc = TargetEncoder::new("s", TargetKind::Multiclass);
        assert_eq!(
            enc.fit_transform(&df).unwrap(),
            TargetData::I64(vec![1, 0, 2])
        );
        let err = enc.transform(&df!("s" => ["d"]).unwrap()).unwrap_err();
        assert!(matches!(err, PreprocessingError::UnknownClass { ref value, .. } if value == "d"));
    }

    #[test]
    fn regression_values_and_errors() {
        let df = df!("y" => [1.5f64, -2.0], "i" => [3i64, 4]).unwrap();
        let mut enc = TargetEncoder::new("y", TargetKind::Regression);
        assert_eq!(
            enc.fit_transform(&df).unwrap(),
            TargetData::F32(vec![1.5, -2.0])
        );
        assert_eq!(enc.n_classes(), 0);
        let mut enc = TargetEncoder::new("i", TargetKind::Regression);
        assert_eq!(
            enc.fit_transform(&df).unwrap().as_f32(),
            Some(&[3.0f32, 4.0][..])
        );
        let nan = df!("y" => [1.0f64, f64::NAN]).unwrap();
        let err = TargetEncoder::new("y", TargetKind::Regression)
            .fit(&nan)
            .unwrap_err();
        assert!(
            matches!(err, PreprocessingError::NonFinite { ref column, row: 1, value }
            if column == "y" && value.is_nan())
        );
        let inf = df!("y" => [f64::INFINITY]).unwrap();
        let err = TargetEncoder::new("y", TargetKind::Regression)
            .fit(&inf)
            .unwrap_err();
        assert!(matches!(err, PreprocessingError::NonFinite { row: 0, .. }));
        let null = df!("y" => [Some(1.0f64), None]).unwrap();
        let err = TargetEncoder::new("y", TargetKind::Regression)
            .fit(&null)
            .unwrap_err();
        assert!(
            matches!(err, PreprocessingError::NullValue { ref column, row: 1 } if column == "y")
        );
        let s = df!("y" => ["a"]).unwrap();
        let err = TargetEncoder::new("y", TargetKind::Regression)
            .fit(&s)
            .unwrap_err();
        assert!(matches!(err, PreprocessingError::WrongType { ref column, .. } if column == "y"));
    }

    #[test]
    fn regression_scaling_and_its_inverse() {
        let df = df!("y" => [1.0f64, 2.0, 3.0, 4.0, 100.0]).unwrap();
        let values =
            |enc: &mut TargetEncoder| enc.fit_transform(&df).unwrap().as_f32().unwrap().to_vec();
        // Standard: mean 22, population std sqrt(1522).
        let mut std =
            TargetEncoder::new("y", TargetKind::Regression).scaling(TargetScaling::Standard);
        let y = values(&mut std);
        let sd = 1522f64.sqrt();
        for (got, raw) in y.iter().zip([1.0, 2.0, 3.0, 4.0, 100.0]) {
            assert!((f64::from(*got) - (raw - 22.0) / sd).abs() < 1e-6);
        }
        // Robust: median 3, IQR 4 - 2 = 2.
        let mut robust =
            TargetEncoder::new("y", TargetKind::Regression).scaling(TargetScaling::Robust);
        assert_eq!(values(&mut robust), vec![-1.0, -0.5, 0.0, 0.5, 48.5]);
        // Log: ln(1 + y).
        let mut log = TargetEncoder::new("y", TargetKind::Regression).scaling(TargetScaling::Log);
        let y = values(&mut log);
        assert!((y[4] - 101f32.ln()).abs() < 1e-6);
        for enc in [&std, &robust, &log] {
            assert!(enc.is_scaled());
            let back = enc.inverse_values(enc.transform(&df).unwrap().as_f32().unwrap());
            for (b, raw) in back.iter().zip([1.0f32, 2.0, 3.0, 4.0, 100.0]) {
                assert!((b - raw).abs() < 1e-4 * raw.max(1.0), "{b} vs {raw}");
            }
        }
        // Saved and loaded with the fitted statistics.
        let back: TargetEncoder =
            serde_json::from_str(&serde_json::to_string(&robust).unwrap()).unwrap();
        assert_eq!(back, robust);
        // A constant target scales by 1.
        let c = df!("y" => [5.0f64, 5.0]).unwrap();
        let mut enc =
            TargetEncoder::new("y", TargetKind::Regression).scaling(TargetScaling::Standard);
        assert_eq!(
            enc.fit_transform(&c).unwrap(),
            TargetData::F32(vec![0.0, 0.0])
        );
        // Errors: log of a value ≤ −1 names the row; classification targets are not scaled.
        let neg = df!("y" => [0.5f64, -3.0]).unwrap();
        let err = TargetEncoder::new("y", TargetKind::Regression)
            .scaling(TargetScaling::Log)
            .fit(&neg)
            .unwrap_err();
        assert!(
            matches!(err, PreprocessingError::OutOfRange { row: 1, .. }),
            "{err}"
        );
        let err = log.transform(&neg).unwrap_err();
        assert!(
            matches!(err, PreprocessingError::OutOfRange { row: 1, .. }),
            "{err}"
        );
        let err = TargetEncoder::new("y", TargetKind::Binary)
            .scaling(TargetScaling::Standard)
            .fit(&df!("y" => [0i64, 1]).unwrap())
            .unwrap_err();
        assert!(
            matches!(err, PreprocessingError::InvalidConfig { ref field, .. } if field == "scaling")
        );
        // Beyond f32 without scaling: a typed error naming the row, not an infinity.
        let mut raw = TargetEncoder::new("y", TargetKind::Regression);
        raw.fit(&df).unwrap();
        let err = raw
            .transform(&df!("y" => [1.0f64, 1e300]).unwrap())
            .unwrap_err();
        assert!(
            matches!(err, PreprocessingError::OutOfRange { row: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn class_dtype_changes_are_errors_and_bytes_are_text() {
        let mut enc = TargetEncoder::new("y", TargetKind::Binary);
        enc.fit(&df!("y" => ["0", "1"]).unwrap()).unwrap();
        let err = enc.transform(&df!("y" => [0i64, 1]).unwrap()).unwrap_err();
        assert!(
            matches!(err, PreprocessingError::DtypeChanged { ref column, .. } if column == "y")
        );
        let bytes = DataFrame::new(
            2,
            vec![Column::new("y".into(), [b"1".as_slice(), b"0".as_slice()])],
        )
        .unwrap();
        assert_eq!(
            enc.transform(&bytes).unwrap(),
            TargetData::F32(vec![1.0, 0.0])
        );
    }

    #[test]
    fn classification_errors() {
        let null = df!("y" => [Some("a"), Some("b"), None]).unwrap();
        let err = TargetEncoder::new("y", TargetKind::Binary)
            .fit(&null)
            .unwrap_err();
        assert!(
            matches!(err, PreprocessingError::NullValue { ref column, row: 2 } if column == "y")
        );
        let nan = df!("y" => [0.0f64, 1.0, f64::NAN]).unwrap();
        let err = TargetEncoder::new("y", TargetKind::Binary)
            .fit(&nan)
            .unwrap_err();
        assert!(matches!(err, PreprocessingError::NonFinite { row: 2, .. }));
        let df = df!("y" => ["a", "b"]).unwrap();
        let err = TargetEncoder::new("nope", TargetKind::Binary)
            .fit(&df)
            .unwrap_err();
        assert!(
            matches!(err, PreprocessingError::MissingColumn { ref column } if column == "nope")
        );
        let err = TargetEncoder::new("y", TargetKind::Binary)
            .fit(&df.head(Some(0)))
            .unwrap_err();
        assert!(matches!(err, PreprocessingError::EmptyFrame));
        let err = TargetEncoder::new("y", TargetKind::Binary)
            .transform(&df)
            .unwrap_err();
        assert!(matches!(err, PreprocessingError::NotFitted { .. }));
        let mut enc = TargetEncoder::new("y", TargetKind::Binary);
        enc.fit(&df).unwrap();
        let err = enc
            .transform(&df!("y" => [Some("a"), None]).unwrap())
            .unwrap_err();
        assert!(matches!(err, PreprocessingError::NullValue { row: 1, .. }));
    }

    #[test]
    fn bundled_datasets() {
        let adult = read("adult.parquet");
        let mut enc = TargetEncoder::new("income", TargetKind::Binary);
        let y = enc.fit_transform(&adult).unwrap();
        assert_eq!(enc.classes(), ["<=50K", ">50K"]);
        let y = y.as_f32().unwrap();
        assert_eq!(y.len(), 48_842);
        assert_eq!(y.iter().filter(|&&v| v == 1.0).count(), 11_687);

        let ecoli = read("ecoli.parquet");
        let mut enc = TargetEncoder::new("class", TargetKind::Multiclass);
        let y = enc.fit_transform(&ecoli).unwrap();
        assert_eq!(
            enc.classes(),
            ["cp", "im", "imL", "imS", "imU", "om", "omL", "pp"]
        );
        let y = y.as_i64().unwrap();
        assert_eq!(y.iter().filter(|&&v| v == 0).count(), 143);
        assert_eq!(y.iter().filter(|&&v| v == 7).count(), 52);

        let housing = read("california_housing.parquet");
        let mut enc = TargetEncoder::new("MedHouseVal", TargetKind::Regression);
        assert_eq!(enc.fit_transform(&housing).unwrap().len(), 20_640);
    }

    #[test]
    fn save_load_round_trip() {
        let df = df!("y" => ["yes", "no", "yes"]).unwrap();
        let mut enc = TargetEncoder::new("y", TargetKind::Binary).positive_class("no");
        let before = enc.fit_transform(&df).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("target.json");
        enc.save(&path).unwrap();
        let loaded = TargetEncoder::load(&path).unwrap();
        assert_eq!(loaded, enc);
        assert_eq!(loaded.transform(&df).unwrap(), before);
    }
}

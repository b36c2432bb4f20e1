//! The classes of a classification target: learning them, and coding each row.

use polars::prelude::*;

use super::{TargetEncoder, TargetKind};
use crate::column;
use crate::error::{PreprocessingError, Result};
use crate::macros::{bail, ensure};

impl TargetEncoder {
    /// Sorted class labels, positive class last for a binary target.
    pub(super) fn fit_classes(&self, col: &Column) -> Result<Vec<String>> {
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
    pub(super) fn class_codes(&self, col: &Column) -> Result<Vec<i64>> {
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
    if let Some(row) = ca.first_null() {
        bail!(PreprocessingError::NullValue {
            column: name.to_owned(),
            row,
        });
    }
    Ok(())
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

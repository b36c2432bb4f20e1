//! Implicit-feedback interaction data (who interacted with what, and when): splits for
//! honest evaluation, seeded negative sampling and dense id indices.
//!
//! * [`leave_last_out`]: each user's last `n` interactions by time become the test rows.
//! * [`time_split`]: one global time cutoff.
//! * [`negative_sampling`]: each positive row followed by `n` sampled items the user never
//!   interacted with, uniformly or by popularity, with a `0/1` `label` column.
//! * [`IdIndex`]: raw user/item ids ↔ dense indices `0..n`; [`Interactions`] the `(user,
//!   item)` pairs of a frame in those indices, which the retrieval models and the ranking
//!   evaluation of `widedeep` read.
//!
//! Ids are keyed by their string form, as the categorical columns of the other preprocessors
//! (integer columns take a fast path with the same keys): a user `7` stored as `i32` in one
//! frame and as `i64` in another is the same user. Nulls in an id or time column are a
//! [`NullValue`](crate::PreprocessingError::NullValue) error naming the column and row.
//!
//! ```
//! use polars::prelude::*;
//! use widedeep_preprocessing::interactions::leave_last_out;
//!
//! let df = df!(
//!     "user_id" => [1i64, 1, 1, 2, 2],
//!     "item" => ["a", "b", "c", "a", "d"],
//!     "timestamp" => [10i64, 30, 20, 5, 6],
//! )
//! .unwrap();
//! let (train, test) = leave_last_out(&df, "user_id", "timestamp", 1).unwrap();
//! assert_eq!(train.height(), 3);
//! // user 1's latest interaction is `b` (time 30), user 2's is `d`
//! let held_out: Vec<_> = test.column("item").unwrap().str().unwrap().iter().flatten().collect();
//! assert_eq!(held_out, ["b", "d"]);
//! ```

mod index;
mod negatives;
mod split;
#[cfg(test)]
mod tests;

pub use index::{IdIndex, Interactions};
pub use negatives::{negative_sampling, Sampling, LABEL};
pub use split::{leave_last_out, time_split};

use polars::prelude::*;

use crate::column::{self, check_key_dtype, KeyDtypes};
use crate::error::{PreprocessingError, Result};
use crate::macros::{bail, ensure};

/// Whether a dtype's values are keyed through `i64` (every integer dtype but `u64`, which
/// could overflow; it goes through its string form, which is the same key).
fn int_keyed(dtype: &DataType) -> bool {
    dtype.is_integer() && !matches!(dtype, DataType::UInt64)
}

/// Each row's group: the dense index (in order of first appearance) of its value in the id
/// column `name`, and the number of distinct values. A null is an error naming the row.
pub(crate) fn group_rows(df: &DataFrame, name: &str) -> Result<(Vec<u32>, usize)> {
    let col = id_column(df, name)?;
    let mut ids = Vec::with_capacity(col.len());
    if int_keyed(col.dtype()) {
        let ints = col.cast(&DataType::Int64)?;
        let mut seen: PlHashMap<i64, u32> = PlHashMap::new();
        for (row, v) in ints.i64()?.iter().enumerate() {
            let v = v.ok_or_else(|| null_at(name, row))?;
            let next = seen.len() as u32;
            ids.push(*seen.entry(v).or_insert(next));
        }
        Ok((ids, seen.len()))
    } else {
        let strings = column::as_strings(col)?;
        let mut seen: PlHashMap<&str, u32> = PlHashMap::new();
        for (row, v) in strings.str()?.iter().enumerate() {
            let v = v.ok_or_else(|| null_at(name, row))?;
            let next = seen.len() as u32;
            ids.push(*seen.entry(v).or_insert(next));
        }
        Ok((ids, seen.len()))
    }
}

/// The id column `name` of `df`, checked: present, and of a keyed dtype (string,
/// categorical, boolean or integer).
fn id_column<'a>(df: &'a DataFrame, name: &str) -> Result<&'a Column> {
    let col = column::get(df, name)?;
    check_key_dtype(col, name, KeyDtypes::Discrete)?;
    Ok(col)
}

fn null_at(column: &str, row: usize) -> PreprocessingError {
    PreprocessingError::NullValue {
        column: column.to_owned(),
        row,
    }
}

/// The values of a time column: integers (integer and temporal dtypes, by their physical
/// `i64` value) or floats.
pub(crate) enum Times {
    /// Integer or temporal column.
    Int(Vec<i64>),
    /// Float column (finite values only).
    Float(Vec<f64>),
}

impl Times {
    /// Reads the time column `name`: integer, float or temporal (date, datetime, duration,
    /// time) dtype, no null, no NaN or infinity.
    pub(crate) fn read(df: &DataFrame, name: &str) -> Result<Self> {
        let col = column::get(df, name)?;
        let dtype = col.dtype();
        if dtype.is_float() {
            let values = column::as_f64(col)?;
            let mut out = Vec::with_capacity(values.len());
            for (row, v) in values.iter().enumerate() {
                let v = v.ok_or_else(|| null_at(name, row))?;
                ensure!(v.is_finite(), PreprocessingError::non_finite(name, row, v));
                out.push(v);
            }
            return Ok(Self::Float(out));
        }
        let ints = if dtype.is_integer() && !matches!(dtype, DataType::UInt64) {
            col.cast(&DataType::Int64)?
        } else if dtype.is_temporal() {
            col.to_physical_repr().cast(&DataType::Int64)?
        } else {
            bail!(column::wrong_type(
                name,
                "integer, float or temporal (date, datetime)",
                dtype
            ));
        };
        let mut out = Vec::with_capacity(ints.len());
        for (row, v) in ints.i64()?.iter().enumerate() {
            out.push(v.ok_or_else(|| null_at(name, row))?);
        }
        Ok(Self::Int(out))
    }

    /// Orders rows `a` and `b` by time, ties by row (the later row is the later interaction).
    pub(crate) fn cmp(&self, a: usize, b: usize) -> std::cmp::Ordering {
        let by_time = match self {
            Self::Int(v) => v[a].cmp(&v[b]),
            Self::Float(v) => v[a].total_cmp(&v[b]),
        };
        by_time.then(a.cmp(&b))
    }

    /// Whether row `row` is strictly before `cutoff`.
    pub(crate) fn before(&self, row: usize, cutoff: i64) -> bool {
        match self {
            Self::Int(v) => v[row] < cutoff,
            Self::Float(v) => v[row] < cutoff as f64,
        }
    }
}

/// The rows `rows` of `df` (ascending), as a new frame.
pub(crate) fn take_rows(df: &DataFrame, rows: Vec<IdxSize>) -> Result<DataFrame> {
    Ok(df.take(&IdxCa::from_vec("idx".into(), rows))?)
}

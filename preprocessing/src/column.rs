//! Column access, dtype checks and the vectorized key/encode kernels shared by the
//! preprocessors.
//!
//! Categorical values are keyed by their string form. Integer columns take a fast path that
//! hashes the integers directly (their string form is the decimal one, so the two agree);
//! every other accepted dtype is cast to `String` once with Polars and then hashed.

use std::num::NonZeroUsize;
use std::thread;

use ndarray::Array2;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{PreprocessingError, Result};
use crate::macros::{bail, ensure};

/// Looks up `name` in `df`, mapping absence to [`PreprocessingError::MissingColumn`].
pub(crate) fn get<'a>(df: &'a DataFrame, name: &str) -> Result<&'a Column> {
    df.column(name)
        .map_err(|_| PreprocessingError::missing(name))
}

/// Integer dtypes that cast losslessly to `Int64`.
fn is_small_int(dtype: &DataType) -> bool {
    matches!(
        dtype,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
    )
}

/// Which dtypes a categorical column may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyDtypes {
    /// String, categorical/enum, boolean and integer.
    Discrete,
    /// [`Discrete`](Self::Discrete) plus floats.
    DiscreteOrFloat,
}

impl KeyDtypes {
    fn expected(self) -> &'static str {
        match self {
            Self::Discrete => "string, categorical, boolean or integer",
            Self::DiscreteOrFloat => "string, categorical, boolean, integer or float",
        }
    }
}

/// How a keyed (categorical) column's values turn into keys, recorded at fit time so that a
/// column whose dtype changed since is an error instead of mapping every row to "unknown".
///
/// Integer widths (`i32` vs `i64`) share one class, as do string, categorical, enum and
/// UTF-8 byte-string (`Binary`) columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DtypeClass {
    /// String, categorical, enum or UTF-8 bytes.
    Text,
    /// Any integer dtype.
    Integer,
    /// `f32` or `f64`.
    Float,
    /// Boolean.
    Boolean,
}

impl DtypeClass {
    /// The class of `dtype`; `None` for the `Null` dtype (an all-null column, which fits any
    /// class) and for dtypes that cannot be keyed.
    pub fn of(dtype: &DataType) -> Option<Self> {
        if matches!(dtype, DataType::String | DataType::Binary)
            || dtype.is_categorical()
            || dtype.is_enum()
        {
            Some(Self::Text)
        } else if dtype.is_integer() {
            Some(Self::Integer)
        } else if dtype.is_float() {
            Some(Self::Float)
        } else if matches!(dtype, DataType::Boolean) {
            Some(Self::Boolean)
        } else {
            None
        }
    }
}

impl std::fmt::Display for DtypeClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Integer => "integer",
            Self::Float => "float",
            Self::Boolean => "boolean",
        })
    }
}

/// Errors with [`PreprocessingError::DtypeChanged`] when `column`'s dtype class differs from
/// `fitted` (the class recorded at fit time; `None` — an older save or an all-null fit
/// column — checks nothing). An all-null `Null` column passes: it is reported by
/// [`all_missing`] instead.
pub(crate) fn check_fitted_dtype(
    column: &Column,
    name: &str,
    fitted: Option<DtypeClass>,
) -> Result<()> {
    let (Some(fitted), Some(found)) = (fitted, DtypeClass::of(column.dtype())) else {
        return Ok(());
    };
    ensure!(
        fitted == found,
        PreprocessingError::DtypeChanged {
            column: name.to_owned(),
            fitted: fitted.to_string(),
            found: format!("{} ({found})", column.dtype()),
        }
    );
    Ok(())
}

/// Whether every value of `column` is missing: null, or NaN for a float column. Such a
/// column transforms (to index 0 or the imputed value for every row) but tells the model
/// nothing, so transforms report it in their output's `all_null` and on stderr.
pub(crate) fn all_missing(column: &Column) -> bool {
    if column.is_empty() {
        return false;
    }
    if column.null_count() == column.len() {
        return true;
    }
    if column.dtype().is_float() {
        if let Ok(values) = as_f64(column) {
            return values.iter().all(|v| v.is_none_or(f64::is_nan));
        }
    }
    false
}

/// The names among `names` whose column in `df` is entirely missing (see [`all_missing`]),
/// each reported once on stderr as a warning naming `what` (the preprocessor).
pub(crate) fn warn_all_missing<'a>(
    df: &DataFrame,
    names: impl Iterator<Item = &'a String>,
    what: &str,
) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for name in names {
        if found.contains(name) {
            continue;
        }
        if df.column(name).is_ok_and(all_missing) {
            found.push(name.clone());
        }
    }
    if !found.is_empty() && df.height() > 0 {
        eprintln!(
            "widedeep warning: {what}: column(s) {} are entirely null/NaN in the {} rows to transform; \
             every row gets the unseen/imputed value",
            found
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", "),
            df.height()
        );
    }
    found
}

/// Errors with [`PreprocessingError::DuplicateColumn`] on the first repeated name.
pub(crate) fn check_unique(names: &[String], field: &str) -> Result<()> {
    let mut seen = PlHashSet::new();
    for name in names {
        if !seen.insert(name.as_str()) {
            bail!(PreprocessingError::DuplicateColumn {
                column: name.to_owned(),
                field: field.to_owned(),
            });
        }
    }
    Ok(())
}

/// Checks that `column` can be used as a categorical (keyed) column.
pub(crate) fn check_key_dtype(column: &Column, name: &str, allowed: KeyDtypes) -> Result<()> {
    let dtype = column.dtype();
    let ok = matches!(
        dtype,
        DataType::String | DataType::Binary | DataType::Boolean | DataType::Null
    ) || dtype.is_categorical()
        || dtype.is_enum()
        || dtype.is_integer()
        || (allowed == KeyDtypes::DiscreteOrFloat && dtype.is_float());
    ensure!(ok, wrong_type(name, allowed.expected(), dtype));
    Ok(())
}

/// Checks that `column` is numeric (integer or float; an all-null column also passes).
pub(crate) fn check_numeric(column: &Column, name: &str) -> Result<()> {
    let dtype = column.dtype();
    ensure!(
        dtype.is_primitive_numeric() || matches!(dtype, DataType::Null),
        wrong_type(name, "numeric", dtype)
    );
    Ok(())
}

pub(crate) fn wrong_type(name: &str, expected: &str, found: &DataType) -> PreprocessingError {
    PreprocessingError::WrongType {
        column: name.to_owned(),
        expected: expected.to_owned(),
        found: found.to_string(),
    }
}

/// The column cast to `String` (a cheap clone when it already is one). A byte-string
/// (`Binary`) column — what pandas writes for `bytes` objects — is read as UTF-8 text; bytes
/// that are not UTF-8 are an [`InvalidUtf8`](PreprocessingError::InvalidUtf8) error naming
/// the column and row.
pub(crate) fn as_strings(column: &Column) -> Result<Column> {
    if matches!(column.dtype(), DataType::Binary) {
        let texts = utf8_texts(column.binary()?, column.name())?;
        let ca: StringChunked = texts.into_iter().collect();
        return Ok(ca.with_name(column.name().clone()).into_column());
    }
    Ok(column.cast(&DataType::String)?)
}

/// The values of a byte-string column `name` read as UTF-8 text (`None` for nulls), borrowed;
/// bytes that are not UTF-8 are an [`InvalidUtf8`](PreprocessingError::InvalidUtf8) error
/// naming the column and row.
pub(crate) fn utf8_texts<'a>(bytes: &'a BinaryChunked, name: &str) -> Result<Vec<Option<&'a str>>> {
    let mut texts = Vec::with_capacity(bytes.len());
    for (row, value) in bytes.iter().enumerate() {
        let text = value.map(std::str::from_utf8).transpose();
        texts.push(text.map_err(|_| PreprocessingError::InvalidUtf8 {
            column: name.to_owned(),
            row,
        })?);
    }
    Ok(texts)
}

/// The column cast to `Float64`.
pub(crate) fn as_f64(column: &Column) -> Result<Float64Chunked> {
    Ok(column.cast(&DataType::Float64)?.f64()?.clone())
}

/// Sorted distinct string forms of the non-null values of `column`.
pub(crate) fn distinct_keys(column: &Column) -> Result<Vec<String>> {
    let mut keys: Vec<String> = if is_small_int(column.dtype()) {
        let ints = column.cast(&DataType::Int64)?;
        let set: PlHashSet<i64> = ints.i64()?.iter().flatten().collect();
        set.into_iter().map(|v| v.to_string()).collect()
    } else {
        let strings = as_strings(column)?;
        let set: PlHashSet<&str> = strings.str()?.iter().flatten().collect();
        set.into_iter().map(str::to_owned).collect()
    };
    keys.sort_unstable();
    Ok(keys)
}

/// The integer whose decimal string form is exactly `key` (so `"7"` but not `"07"` or `"+7"`).
pub(crate) fn canonical_int(key: &str) -> Option<i64> {
    let v = key.parse::<i64>().ok()?;
    (v.to_string() == key).then_some(v)
}

/// Writes into `out` the code of each value of `column` in `vocab`: `offset + position + 1`
/// for a value found at `position`, 0 for a null or a value not in `vocab`.
///
/// `out` must have the column's length. One pass over the values with a hash lookup.
pub(crate) fn encode_into(
    column: &Column,
    vocab: &[String],
    offset: i64,
    out: &mut [i64],
) -> Result<()> {
    debug_assert_eq!(out.len(), column.len());
    if is_small_int(column.dtype()) {
        let lookup: PlHashMap<i64, i64> = vocab
            .iter()
            .enumerate()
            .filter_map(|(i, key)| Some((canonical_int(key)?, offset + i as i64 + 1)))
            .collect();
        let ints = column.cast(&DataType::Int64)?;
        for (slot, value) in out.iter_mut().zip(ints.i64()?.iter()) {
            *slot = value.and_then(|v| lookup.get(&v).copied()).unwrap_or(0);
        }
    } else {
        let lookup: PlHashMap<&str, i64> = vocab
            .iter()
            .enumerate()
            .map(|(i, key)| (key.as_str(), offset + i as i64 + 1))
            .collect();
        let strings = as_strings(column)?;
        for (slot, value) in out.iter_mut().zip(strings.str()?.iter()) {
            *slot = value.and_then(|v| lookup.get(v).copied()).unwrap_or(0);
        }
    }
    Ok(())
}

/// Below this many rows, work is done on the calling thread only.
const PAR_MIN_ROWS: usize = 16_384;

fn n_threads(n_rows: usize, n_jobs: usize) -> usize {
    if n_rows < PAR_MIN_ROWS {
        return 1;
    }
    thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(n_jobs)
}

/// Runs `job(i)` for `i` in `0..n_jobs`, spread over the available cores when the data has at
/// least `PAR_MIN_ROWS` rows, and returns the results in order. On failure returns the error
/// of the lowest-numbered failing job, so errors do not depend on scheduling.
pub(crate) fn par_map<R: Send>(
    n_rows: usize,
    n_jobs: usize,
    job: impl Fn(usize) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let threads = n_threads(n_rows, n_jobs);
    if threads <= 1 {
        return (0..n_jobs).map(job).collect();
    }
    let mut slots: Vec<Option<Result<R>>> = (0..n_jobs).map(|_| None).collect();
    thread::scope(|scope| {
        let job = &job;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    // Every job runs, even after a failure, so that every slot is filled.
                    (t..n_jobs)
                        .step_by(threads)
                        .map(|i| (i, job(i)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            let done = handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            for (i, result) in done {
                slots[i] = Some(result);
            }
        }
    });
    slots.into_iter().flatten().collect()
}

/// Assembles equally long columns (`columns[j]` has `n_rows` values) into a row-major
/// `[n_rows, columns.len()]` array, in parallel over row blocks for large arrays.
///
/// Filling a row-major array column by column writes with a stride of the row length, which
/// on a million rows is several times slower than computing contiguous columns and then
/// interleaving them here with sequential writes.
pub(crate) fn assemble<T>(n_rows: usize, columns: &[Vec<T>]) -> Array2<T>
where
    T: Copy + Default + Send + Sync,
{
    let n_cols = columns.len();
    debug_assert!(columns.iter().all(|c| c.len() == n_rows));
    let mut data = vec![T::default(); n_rows * n_cols];
    if n_cols > 0 && n_rows > 0 {
        let fill_block = |first_row: usize, block: &mut [T]| {
            for (r, row) in block.chunks_exact_mut(n_cols).enumerate() {
                for (slot, column) in row.iter_mut().zip(columns) {
                    *slot = column[first_row + r];
                }
            }
        };
        let threads = n_threads(n_rows, usize::MAX);
        if threads <= 1 {
            fill_block(0, &mut data);
        } else {
            let rows_per_block = n_rows.div_ceil(threads);
            thread::scope(|scope| {
                for (t, block) in data.chunks_mut(rows_per_block * n_cols).enumerate() {
                    let fill_block = &fill_block;
                    scope.spawn(move || fill_block(t * rows_per_block, block));
                }
            });
        }
    }
    Array2::from_shape_vec((n_rows, n_cols), data)
        .expect("the buffer has n_rows * n_cols elements by construction")
}

/// Builds a `DataFrame`, mapping a Polars error into ours.
pub(crate) fn frame(height: usize, columns: Vec<Column>) -> Result<DataFrame> {
    Ok(DataFrame::new(height, columns)?)
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;

    #[test]
    fn assemble_row_major() {
        let a = assemble(3, &[vec![1, 2, 3], vec![4, 5, 6]]);
        assert_eq!(a, array![[1, 4], [2, 5], [3, 6]]);
        assert!(a.is_standard_layout());
        let big: Vec<Vec<i64>> = (0..3)
            .map(|j| (0..40_000).map(|i| i * 3 + j).collect())
            .collect();
        let a = assemble(40_000, &big);
        assert_eq!(
            a.as_slice().unwrap(),
            (0..120_000).collect::<Vec<i64>>().as_slice()
        );
        assert_eq!(assemble::<f32>(5, &[]).shape(), &[5, 0]);
    }

    #[test]
    fn distinct_keys_sorted_by_string_form() {
        let c = Column::new("a".into(), [Some(10i32), None, Some(2), Some(10)]);
        assert_eq!(distinct_keys(&c).unwrap(), vec!["10", "2"]);
        let c = Column::new("b".into(), [Some(true), None, Some(false)]);
        assert_eq!(distinct_keys(&c).unwrap(), vec!["false", "true"]);
    }

    #[test]
    fn encode_ints_and_strings() {
        let vocab = vec!["10".to_string(), "2".to_string()];
        let c = Column::new("a".into(), [Some(2i64), None, Some(10), Some(7)]);
        let mut out = vec![0; 4];
        encode_into(&c, &vocab, 5, &mut out).unwrap();
        assert_eq!(out, vec![7, 0, 6, 0]);
        // The same vocabulary applies to the string form.
        let c = Column::new("a".into(), [Some("2"), None, Some("10"), Some("x")]);
        encode_into(&c, &vocab, 0, &mut out).unwrap();
        assert_eq!(out, vec![2, 0, 1, 0]);
        // Only the canonical string form of an integer matches it.
        let vocab = vec!["07".to_string(), "7".to_string()];
        let c = Column::new("a".into(), [7i64]);
        let mut out = vec![0; 1];
        encode_into(&c, &vocab, 0, &mut out).unwrap();
        assert_eq!(out, vec![2]);
    }

    #[test]
    fn dtype_checks() {
        let c = Column::new("f".into(), [1.5f64]);
        assert!(check_key_dtype(&c, "f", KeyDtypes::DiscreteOrFloat).is_ok());
        let err = check_key_dtype(&c, "f", KeyDtypes::Discrete).unwrap_err();
        assert!(matches!(err, PreprocessingError::WrongType { ref column, .. } if column == "f"));
        let c = Column::new("s".into(), ["x"]);
        let err = check_numeric(&c, "s").unwrap_err();
        assert!(
            matches!(err, PreprocessingError::WrongType { ref column, ref expected, .. }
                if column == "s" && expected == "numeric")
        );
    }
}

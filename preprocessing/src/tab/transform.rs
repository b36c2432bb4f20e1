//! The transform kernels: label codes, imputed and scaled values, missing indicators.

use polars::prelude::*;

use super::fit::FittedCont;
use super::{TabData, TabPreprocessor};
use crate::column;
use crate::contract::Transform;
use crate::error::{PreprocessingError, Result};
use crate::quantize;

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
    ///
    /// # Shapes
    /// - `df`: `n_rows = df.height()` rows with every configured column
    /// - returns `cat`: `[n_rows, n_cat_cols + n_quantized]` i64 (codes `0..cardinality`),
    ///   `cont`: `[n_rows, n_cont_out]` f32 (see [`TabMeta::cont`](crate::TabMeta::cont))
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

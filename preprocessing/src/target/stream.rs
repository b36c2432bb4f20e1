//! [`FitChunks`] for the target encoder: the classes from one row per distinct value of every
//! chunk, regression scaling from a [`ValueSketch`].

use std::collections::HashSet;

use polars::prelude::*;

use super::scale::{fit_scale, regression_values, FittedScale};
use super::{TargetEncoder, TargetKind, TargetScaling};
use crate::column::{self, DtypeClass};
use crate::error::{PreprocessingError, Result};
use crate::macros::{bail, ensure};
use crate::stream::{FitChunks, ValueSketch, DEFAULT_SKETCH_CAPACITY};

/// What [`FitChunks`] accumulates for a [`TargetEncoder`].
#[derive(Debug)]
pub struct TargetPartial {
    /// String forms of the classes seen so far.
    seen: HashSet<String>,
    /// One row of the target column per class seen, in its original dtype.
    distinct: Option<Column>,
    /// The dtype class of the first chunk's column.
    dtype: Option<Option<DtypeClass>>,
    /// The values of a regression target.
    sketch: ValueSketch,
    rows: usize,
}

impl TargetEncoder {
    /// The checks `fit` makes on a classification target's values: no null, no NaN or
    /// infinity in a float column.
    fn check_classes_chunk(&self, col: &Column) -> Result<()> {
        let name = &self.column;
        if col.null_count() > 0 {
            let row = col
                .is_null()
                .iter()
                .position(|n| n == Some(true))
                .unwrap_or(0);
            bail!(PreprocessingError::NullValue {
                column: name.clone(),
                row,
            });
        }
        if col.dtype().is_float() {
            for (row, v) in column::as_f64(col)?.iter().enumerate() {
                if let Some(v) = v.filter(|v| !v.is_finite()) {
                    bail!(PreprocessingError::non_finite(name, row, v));
                }
            }
        }
        Ok(())
    }
}

impl FitChunks for TargetEncoder {
    type Partial = TargetPartial;

    fn begin(&self) -> Result<TargetPartial> {
        ensure!(
            self.scaling == TargetScaling::None || self.kind == TargetKind::Regression,
            config("scaling"),
            "target `{}` is a classification target; only regression targets are scaled",
            self.column
        );
        Ok(TargetPartial {
            seen: HashSet::new(),
            distinct: None,
            dtype: None,
            sketch: ValueSketch::new(DEFAULT_SKETCH_CAPACITY, 3000),
            rows: 0,
        })
    }

    /// Errors: those of [`fit`](crate::Fit::fit) for the chunk, rows counted from the
    /// stream's start.
    fn update(
        &self,
        p: &mut TargetPartial,
        _pass: usize,
        chunk: &DataFrame,
        offset: usize,
    ) -> Result<()> {
        if chunk.height() == 0 {
            return Ok(());
        }
        let col = self.checked_column(chunk)?;
        let at = |e: PreprocessingError| e.offset_rows(offset);
        match self.kind {
            TargetKind::Regression => {
                let values = regression_values(col, &self.column).map_err(at)?;
                if self.scaling == TargetScaling::Log {
                    fit_scale(self.scaling, &values, &self.column).map_err(at)?;
                }
                p.sketch.add_values(&values);
            }
            TargetKind::Binary | TargetKind::Multiclass => {
                self.check_classes_chunk(col).map_err(at)?;
                p.dtype.get_or_insert_with(|| DtypeClass::of(col.dtype()));
                let keys = column::as_strings(col)?;
                let mut rows: Vec<IdxSize> = Vec::new();
                for (row, key) in keys.str()?.iter().enumerate() {
                    if let Some(k) = key {
                        if !p.seen.contains(k) {
                            p.seen.insert(k.to_owned());
                            rows.push(row as IdxSize);
                        }
                    }
                }
                let new = col.take_slice(&rows)?;
                match &mut p.distinct {
                    Some(d) => {
                        d.append(&new)?;
                    }
                    None => p.distinct = Some(new),
                }
            }
        }
        p.rows += chunk.height();
        Ok(())
    }

    fn finish(&mut self, p: TargetPartial) -> Result<()> {
        ensure!(p.rows > 0, PreprocessingError::EmptyFrame);
        self.fitted = false;
        self.fitted_scale = None;
        self.dtype = None;
        self.classes = match self.kind {
            TargetKind::Regression => {
                let s = &p.sketch;
                self.fitted_scale = match self.scaling {
                    // beyond the sketch's capacity the mean and variance are still exact
                    TargetScaling::Standard if !s.is_exact() => {
                        let std = s.variance().sqrt();
                        Some(FittedScale {
                            center: s.mean(),
                            scale: if std.is_finite() && std > 0.0 {
                                std
                            } else {
                                1.0
                            },
                        })
                    }
                    _ => fit_scale(self.scaling, s.kept(), &self.column)?,
                };
                Vec::new()
            }
            TargetKind::Binary | TargetKind::Multiclass => {
                self.dtype = p.dtype.flatten();
                let distinct = p.distinct.ok_or(PreprocessingError::EmptyFrame)?;
                self.fit_classes(&distinct)?
            }
        };
        self.fitted = true;
        Ok(())
    }
}

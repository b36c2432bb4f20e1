//! [`FitChunks`] for the wide preprocessor: vocabularies and crossed combinations as unions of
//! the chunks' distinct values; quantile bin edges from a [`ValueSketch`] in a first pass.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;

use super::crossed::fit_crossed;
use super::{checked_column, WideFitted, WidePreprocessor};
use crate::column::{self, DtypeClass};
use crate::error::{PreprocessingError, Result};
use crate::macros::ensure;
use crate::quantize::Quantization;
use crate::stream::{FitChunks, KeyUnion, ValueSketch, DEFAULT_SKETCH_CAPACITY};

/// What [`FitChunks`] accumulates for a [`WidePreprocessor`].
#[derive(Debug)]
pub struct WidePartial {
    /// Bin edges of each quantized column (known up front for explicit edges, after the
    /// first pass for quantile bins).
    edges: Vec<Option<Vec<f64>>>,
    /// Sketches of the columns quantized into quantile bins (first pass).
    sketches: Vec<Option<ValueSketch>>,
    vocabs: Vec<KeyUnion>,
    crossed: Vec<BTreeSet<Vec<String>>>,
    dtypes: BTreeMap<String, DtypeClass>,
    rows: usize,
}

impl WidePreprocessor {
    fn has_quantile_bins(&self) -> bool {
        self.quantize
            .iter()
            .any(|(_, q)| matches!(q, Quantization::Bins(_)))
    }
}

impl FitChunks for WidePreprocessor {
    type Partial = WidePartial;

    /// Two when a column is quantized into quantile bins (its edges are needed before its
    /// values can be keyed), else one.
    fn passes(&self) -> usize {
        if self.has_quantile_bins() {
            2
        } else {
            1
        }
    }

    fn begin(&self) -> Result<WidePartial> {
        self.validate_config()?;
        let (edges, sketches) = self
            .quantize
            .iter()
            .enumerate()
            .map(|(k, (_, q))| match q {
                Quantization::Edges(e) => (Some(e.clone()), None),
                Quantization::Bins(_) => (
                    None,
                    Some(ValueSketch::new(DEFAULT_SKETCH_CAPACITY, 2000 + k as u64)),
                ),
            })
            .unzip();
        Ok(WidePartial {
            edges,
            sketches,
            vocabs: vec![KeyUnion::default(); self.wide_cols.len()],
            crossed: vec![BTreeSet::new(); self.crossed_cols.len()],
            dtypes: BTreeMap::new(),
            rows: 0,
        })
    }

    /// Errors: those of [`fit`](crate::Fit::fit) for the chunk, rows counted from the
    /// stream's start.
    fn update(
        &self,
        p: &mut WidePartial,
        pass: usize,
        chunk: &DataFrame,
        offset: usize,
    ) -> Result<()> {
        if chunk.height() == 0 {
            return Ok(());
        }
        if pass + 1 < self.passes() {
            for ((name, _), sketch) in self.quantize.iter().zip(&mut p.sketches) {
                if let Some(s) = sketch {
                    let col = column::get(chunk, name)?;
                    column::check_numeric(col, name)?;
                    s.add(col, name, offset)?;
                }
            }
            return Ok(());
        }
        let edges: Vec<Vec<f64>> = p.edges.iter().flatten().cloned().collect();
        let binned = self
            .binned(chunk, &edges)
            .map_err(|e| e.offset_rows(offset))?;
        let df = binned.as_ref();
        for name in self.used_cols() {
            let col = checked_column(df, name)?;
            if !p.dtypes.contains_key(name.as_str()) && p.rows == 0 {
                if let Some(class) = DtypeClass::of(col.dtype()) {
                    p.dtypes.insert(name.clone(), class);
                }
            }
        }
        for (name, keys) in self.wide_cols.iter().zip(&mut p.vocabs) {
            keys.add(checked_column(df, name)?)?;
        }
        for (parts, combos) in self.crossed_cols.iter().zip(&mut p.crossed) {
            match fit_crossed(df, parts) {
                Ok(found) => combos.extend(found),
                // no row of this chunk has every part
                Err(PreprocessingError::AllNull { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        p.rows += chunk.height();
        Ok(())
    }

    fn end_pass(&self, p: &mut WidePartial, pass: usize) -> Result<()> {
        if pass + 1 < self.passes() {
            for (((name, q), sketch), edges) in
                self.quantize.iter().zip(&p.sketches).zip(&mut p.edges)
            {
                if let Some(s) = sketch {
                    *edges = Some(q.fit_edges(&s.to_column(name), name)?);
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, p: WidePartial) -> Result<()> {
        ensure!(p.rows > 0, PreprocessingError::EmptyFrame);
        let vocabs = self
            .wide_cols
            .iter()
            .zip(p.vocabs)
            .map(|(name, keys)| {
                let vocab = keys.into_sorted();
                ensure!(!vocab.is_empty(), PreprocessingError::all_null(name));
                Ok(vocab)
            })
            .collect::<Result<Vec<_>>>()?;
        let crossed = self
            .crossed_cols
            .iter()
            .zip(p.crossed)
            .map(|(parts, combos)| {
                ensure!(
                    !combos.is_empty(),
                    PreprocessingError::all_null(&parts.join(super::CROSS_SEP))
                );
                Ok(combos.into_iter().collect())
            })
            .collect::<Result<Vec<_>>>()?;
        self.fitted = Some(WideFitted {
            vocabs,
            crossed,
            edges: p.edges.into_iter().flatten().collect(),
            dtypes: p.dtypes,
        });
        Ok(())
    }
}

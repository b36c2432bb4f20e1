//! Fitting in bounded memory from a stream of chunks (the pages of Parquet files larger than
//! memory): [`FitChunks`], implemented by [`TabPreprocessor`](crate::TabPreprocessor),
//! [`WidePreprocessor`](crate::WidePreprocessor), [`TargetEncoder`](crate::TargetEncoder),
//! [`TextPreprocessor`](crate::TextPreprocessor) (word-level and pretrained vocabularies) and
//! [`ImagePreprocessor`](crate::ImagePreprocessor).
//!
//! What each statistic costs and how exact it is:
//!
//! | statistic | kept while streaming | result |
//! |---|---|---|
//! | categories, wide vocabularies, crossed combinations, classes | the distinct values | exact |
//! | mean and standard deviation of a continuous column or a regression target | count, mean and squared deviations, merged chunk by chunk (Chan et al.) | exact up to rounding (relative 1e-12) |
//! | word-level text vocabulary (`min_freq`, `max_vocab`) | the count of every distinct word | exact |
//! | image normalisation statistics | per-channel sums of the decoded pixels and of their squares | exact |
//! | median (imputation), quantile bin edges, robust target scaling | a [`ValueSketch`]: every value while there are at most `capacity` of them, then a uniform reservoir sample of `capacity` values | exact up to `capacity` values; beyond, the quantiles of a uniform sample of `capacity` values, whose rank error is at most `ε = sqrt(ln(2/δ) / (2·capacity))` with probability `1 − δ` (Dvoretzky–Kiefer–Wolfowitz): `ε < 0.0085` for the default capacity 2^18 and δ = 10⁻⁹ |
//!
//! So on data with at most [`DEFAULT_SKETCH_CAPACITY`] non-null values per continuous column,
//! fitting chunk by chunk gives exactly the preprocessor `fit` gives on the whole frame
//! (means and standard deviations included: they are then computed from the kept values by
//! `fit`'s own code).
//!
//! WordPiece and BPE vocabularies are not fitted chunk by chunk (their trainers take every
//! text in one call): [`TextPreprocessor::fit_texts`](crate::TextPreprocessor::fit_texts)
//! trains them on the texts as they arrive, keeping word counts only.
//!
//! Memory: the distinct values of every key column and the distinct words of a text column
//! (bounded by the cardinality, not by the rows) plus `capacity` `f64` values per continuous
//! column (2 MiB at the default).
mod sketch;

pub use sketch::{ValueSketch, DEFAULT_SKETCH_CAPACITY};

use polars::prelude::DataFrame;

use crate::contract::Fit;
use crate::error::Result;

/// A preprocessor that can be fitted from a stream of chunks of rows instead of one frame.
///
/// The caller runs [`passes`](Self::passes) passes over the same chunks in the same order:
/// [`begin`](Self::begin) once, then for each pass [`update`](Self::update) on every chunk
/// followed by [`end_pass`](Self::end_pass), then [`finish`](Self::finish), which stores the
/// fitted state as `fit` would. Errors name the column and the row, counted from the first
/// row of the stream (`offset` is the position of the chunk's first row).
///
/// ```
/// use polars::prelude::*;
/// use widedeep_preprocessing::stream::FitChunks;
/// use widedeep_preprocessing::{Fit, TabPreprocessor};
///
/// let df = df!("city" => ["Oslo", "Lima", "Oslo", "Rome"], "temp" => [1.0f64, 2.0, 3.0, 8.0])
///     .unwrap();
/// let mut whole = TabPreprocessor::new(&["city"], &["temp"]);
/// whole.fit(&df).unwrap();
/// let mut chunked = TabPreprocessor::new(&["city"], &["temp"]);
/// chunked.fit_chunks(&[df.slice(0, 3), df.slice(3, 1)]).unwrap();
/// assert_eq!(chunked, whole);
/// ```
pub trait FitChunks: Fit {
    /// What is accumulated between chunks.
    type Partial: Send;

    /// How many passes over the chunks the fit needs (1, or 2 for a wide preprocessor that
    /// quantizes a column into quantile bins: the bin edges first, then the vocabularies).
    fn passes(&self) -> usize {
        1
    }

    /// Checks the configuration and starts an empty accumulation.
    fn begin(&self) -> Result<Self::Partial>;

    /// Adds the rows of `chunk` (rows `offset..offset + chunk.height()` of the stream) in
    /// pass `pass` (0-based).
    fn update(
        &self,
        partial: &mut Self::Partial,
        pass: usize,
        chunk: &DataFrame,
        offset: usize,
    ) -> Result<()>;

    /// Ends pass `pass` (after its last chunk).
    fn end_pass(&self, _partial: &mut Self::Partial, _pass: usize) -> Result<()> {
        Ok(())
    }

    /// Stores the fitted state computed from everything seen. An empty stream is
    /// [`EmptyFrame`](crate::PreprocessingError::EmptyFrame).
    fn finish(&mut self, partial: Self::Partial) -> Result<()>;

    /// Fits from chunks held in memory (all passes over `chunks`): for tests and small data;
    /// the streaming callers drive [`begin`](Self::begin), [`update`](Self::update) and
    /// [`finish`](Self::finish) themselves.
    fn fit_chunks(&mut self, chunks: &[DataFrame]) -> Result<()> {
        let mut partial = self.begin()?;
        for pass in 0..self.passes() {
            let mut offset = 0;
            for chunk in chunks {
                self.update(&mut partial, pass, chunk, offset)?;
                offset += chunk.height();
            }
            self.end_pass(&mut partial, pass)?;
        }
        self.finish(partial)
    }
}

/// The distinct string keys of a column over all chunks, in the order `fit` gives them.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeyUnion {
    keys: std::collections::BTreeSet<String>,
}

impl KeyUnion {
    /// Adds the distinct keys of `column` (see `column::distinct_keys`).
    pub(crate) fn add(&mut self, column: &polars::prelude::Column) -> Result<()> {
        self.keys.extend(crate::column::distinct_keys(column)?);
        Ok(())
    }

    /// The keys, sorted as `column::distinct_keys` sorts them (string order).
    pub(crate) fn into_sorted(self) -> Vec<String> {
        self.keys.into_iter().collect()
    }
}

#[cfg(test)]
mod tests;

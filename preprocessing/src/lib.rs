#![warn(missing_docs)]
//! Preprocessors for `widedeep`: Polars [`DataFrame`](polars::prelude::DataFrame)s in, plain
//! [`ndarray`] arrays out. No libtorch.
//!
//! * [`WidePreprocessor`] turns categorical (and crossed) columns into one `i64` matrix of
//!   global indices for the wide (linear) component, shape `[n_rows, n_wide_cols + n_crossed]`.
//! * [`TabPreprocessor`] label-encodes categorical (and binned continuous) columns into an
//!   `i64` matrix `[n_rows, n_cat_cols + n_quantized]` and imputes/scales continuous columns
//!   into an `f32` matrix `[n_rows, n_cont_out]`, and reports the column metadata ([`TabMeta`]) the deep tabular
//!   models need (cardinalities, embedding dimensions).
//! * [`TextPreprocessor`] tokenizes a text column into an `i64` matrix of token ids
//!   `[n_rows, maxlen]` (trained word-level / WordPiece / BPE vocabulary or a Hugging Face
//!   `tokenizer.json`), optionally with an embedding matrix from GloVe-format word vectors.
//! * [`ImagePreprocessor`] decodes an image column (paths or bytes) in parallel into `u8` RGB
//!   pixels `[n_rows, 3, height, width]` (the image model normalises them per batch;
//!   [`ImageData::normalized`] gives the `f32` form), or batch by batch with prefetch.
//! * [`SequencePreprocessor`] builds per-user behaviour sequences (the items seen before each
//!   interaction, sorted by time) for the sequence recommenders: `i64` histories
//!   `[n_samples, max_seq_length]`, target items `[n_samples]`, and the samples' rows of the
//!   frame for the other preprocessors.
//! * [`interactions`]: implicit-feedback tools — per-user leave-last-out and global time
//!   splits, seeded negative sampling, dense id indices ([`interactions::IdIndex`]).
//! * [`TargetEncoder`] turns the target column into `[n_rows]` `f32` (binary, regression) or
//!   `i64` (multiclass) labels.
//!
//! Index `0` is reserved everywhere for null and unseen values, so transforming new data never
//! fails because of a category that was not present at fit time. Every bad input gives a typed
//! [`PreprocessingError`] naming the offending column; nothing here panics on user data.
//!
//! # The contract
//!
//! Every preprocessor implements the same three traits (after linfa's `Fit` / `Transformer`
//! split), so there is one way to use any of them:
//!
//! * [`Fit`]: `fit(&mut self, df) -> Result<()>` checks the configuration and learns the
//!   fitted state from a DataFrame; `is_fitted(&self)` says whether it has one.
//! * [`Transform`]: `transform(&self, df) -> Result<Self::Output>` applies the fitted state
//!   (each preprocessor's `Output` is listed above, with its shapes), and
//!   `fit_transform(&mut self, df)` does both on one frame.
//! * [`Persist`]: `save(path)` writes the configuration and fitted state as JSON (atomically),
//!   `load(path)` reads it back.
//!
//! Bring them into scope to call these methods:
//!
//! ```
//! use polars::prelude::*;
//! use widedeep_preprocessing::{Fit, TargetEncoder, TargetKind, Transform};
//!
//! let df = df!("y" => ["no", "yes", "no"]).unwrap();
//! let mut target = TargetEncoder::new("y", TargetKind::Binary);
//! assert!(!target.is_fitted());
//! let y = target.fit_transform(&df).unwrap();
//! assert_eq!(y.as_f32(), Some(&[0.0, 1.0, 0.0][..]));
//! ```

pub mod embed;
pub mod error;
pub mod image;
pub mod interactions;
pub mod quantize;
pub mod sequence;
pub mod stream;
pub mod tab;
pub mod target;
pub mod text;
pub mod wide;

mod column;
mod contract;
mod macros;
mod persist;

pub use column::DtypeClass;
pub use contract::{Fit, Persist, Transform};
pub use embed::{embed_dim, EmbeddingRule};
pub use error::{PreprocessingError, Result};
pub use image::{
    ImageBatches, ImageData, ImageMeta, ImagePreprocessor, ImageRows, ImageSource, Normalization,
    OnError,
};
pub use quantize::Quantization;
pub use sequence::{
    SequenceData, SequenceMeta, SequencePreprocessor, SequenceReport, SequenceSpec,
};
pub use tab::{CatColumnMeta, Scaling, TabData, TabMeta, TabPreprocessor};
pub use target::{TargetData, TargetEncoder, TargetKind, TargetScaling};
pub use text::{Side, TextData, TextMeta, TextPreprocessor, Vocab};
pub use wide::{WideData, WidePreprocessor};

#![warn(missing_docs)]
//! Preprocessors for `widedeep`: Polars [`DataFrame`](polars::prelude::DataFrame)s in, plain
//! [`ndarray`] arrays out. No libtorch.
//!
//! * [`WidePreprocessor`] turns categorical (and crossed) columns into one `i64` matrix of
//!   global indices for the wide (linear) component, shape `[n_rows, n_wide_cols + n_crossed]`.
//! * [`TabPreprocessor`] label-encodes categorical columns into an `i64` matrix
//!   `[n_rows, n_cat_cols]` and imputes/scales continuous columns into an `f32` matrix
//!   `[n_rows, n_cont_out]`, and reports the column metadata ([`TabMeta`]) the deep tabular
//!   models need (cardinalities, embedding dimensions).
//! * [`TextPreprocessor`] tokenizes a text column into an `i64` matrix of token ids
//!   `[n_rows, maxlen]` (trained word-level / WordPiece / BPE vocabulary or a Hugging Face
//!   `tokenizer.json`), optionally with an embedding matrix from GloVe-format word vectors.
//! * [`ImagePreprocessor`] decodes an image column (paths or bytes) in parallel into a
//!   normalised `f32` array `[n_rows, 3, height, width]`, or batch by batch with prefetch.
//! * [`TargetEncoder`] turns the target column into `f32` (binary, regression) or `i64`
//!   (multiclass) labels.
//!
//! Index `0` is reserved everywhere for null and unseen values, so transforming new data never
//! fails because of a category that was not present at fit time. Every bad input gives a typed
//! [`PreprocessingError`] naming the offending column; nothing here panics on user data.
//!
//! All fitted preprocessors are `serde` types and save to / load from JSON.

pub mod embed;
pub mod error;
pub mod image;
pub mod quantize;
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
pub use tab::{CatColumnMeta, Scaling, TabData, TabMeta, TabPreprocessor};
pub use target::{TargetData, TargetEncoder, TargetKind, TargetScaling};
pub use text::{Side, TextData, TextMeta, TextPreprocessor, Vocab};
pub use wide::{WideData, WidePreprocessor};

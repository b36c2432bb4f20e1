//! The crate's error type.
use std::path::PathBuf;

/// Everything that can go wrong in `widedeep`, from data to saved pipelines.
#[derive(Debug, thiserror::Error)]
pub enum WideDeepError {
    /// Bad data or configuration caught by a preprocessor (names the column).
    #[error(transparent)]
    Preprocessing(#[from] widedeep_preprocessing::PreprocessingError),
    /// A configuration value is invalid; `field` names it.
    #[error("invalid value for `{field}`: {reason}")]
    InvalidConfig { field: String, reason: String },
    /// Model inputs do not match what the model was built for.
    #[error("input mismatch for `{input}`: {reason}")]
    InputMismatch { input: String, reason: String },
    /// Training diverged.
    #[error("non-finite loss ({value}) at epoch {epoch}, batch {batch}")]
    NonFiniteLoss {
        epoch: usize,
        batch: usize,
        value: f64,
    },
    /// An operation needs something that was not provided (e.g. a target for `fit`).
    #[error("{0}")]
    Missing(String),
    /// A saved pipeline directory is incomplete or from an incompatible version.
    #[error("cannot load pipeline from {path}: {reason}")]
    BadPipeline { path: PathBuf, reason: String },
    /// A trainer checkpoint file is missing, corrupt or does not fit the model/configuration.
    #[error("cannot resume from checkpoint {path}: {reason}")]
    BadCheckpoint { path: PathBuf, reason: String },
    /// A device string such as `cuda:1` could not be used.
    #[error("invalid device `{0}`: expected cpu, cuda or cuda:N with an available GPU")]
    Device(String),
    #[error(transparent)]
    Tch(#[from] tch::TchError),
    #[error(transparent)]
    Polars(#[from] polars::prelude::PolarsError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

impl WideDeepError {
    pub(crate) fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidConfig {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// `Result` with [`WideDeepError`].
pub type Result<T> = std::result::Result<T, WideDeepError>;

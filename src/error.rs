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
    InvalidConfig {
        /// The field at fault, with its owner (`tab_mlp.mlp.dropout`, `trainer.lr`).
        field: String,
        /// Why the value is invalid.
        reason: String,
    },
    /// Model inputs do not match what the model was built for.
    #[error("input mismatch for `{input}`: {reason}")]
    InputMismatch {
        /// The input at fault (`wide`, `cat`, `text[0]`, `target`, …).
        input: String,
        /// What does not match.
        reason: String,
    },
    /// Training diverged.
    #[error("non-finite loss ({value}) at epoch {epoch}, batch {batch}")]
    NonFiniteLoss {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based batch within the epoch.
        batch: usize,
        /// The loss value (NaN or ±inf).
        value: f64,
    },
    /// A prediction, loss or metric is not a finite number: the model overflowed on some
    /// row (inputs far outside what it was trained on), or a metric is undefined on the
    /// data (ROC AUC with one class present). `what` names it (`prediction of row 12`,
    /// `auc`, `loss`).
    #[error("{what} is not finite ({value}): {reason}")]
    NonFiniteResult {
        /// What is not finite.
        what: String,
        /// The value found.
        value: f64,
        /// The likely cause.
        reason: String,
    },
    /// An operation needs something that was not provided (e.g. a target for `fit`).
    #[error("{0}")]
    Missing(String),
    /// A saved pipeline directory is incomplete or from an incompatible version.
    #[error("cannot load pipeline from {path}: {reason}")]
    BadPipeline {
        /// The pipeline directory.
        path: PathBuf,
        /// What is wrong, naming the file.
        reason: String,
    },
    /// A trainer checkpoint file is missing, corrupt or does not fit the model/configuration.
    #[error("cannot resume from checkpoint {path}: {reason}")]
    BadCheckpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A device string such as `cuda:1` could not be used.
    #[error("invalid device `{0}`: expected cpu, cuda or cuda:N with an available GPU")]
    Device(String),
    /// A model component does not fit: its size overflows, exceeds the memory available, or
    /// libtorch could not allocate it. `requested` says what was asked for (the table and its
    /// shape, or libtorch's byte count).
    #[error("cannot allocate `{component}`: {requested}: {reason}")]
    ModelTooLarge {
        /// The component (`wide`, `deeptabular (tab_mlp)`, `deeptext_0`, …).
        component: String,
        /// The size asked for.
        requested: String,
        /// Why it cannot be allocated.
        reason: String,
    },
    /// Distributed training failed: the group could not be joined, a collective failed or
    /// timed out, or the ranks disagree (different data or models). `lost_ranks` names the
    /// ranks found gone (their heartbeat stopped, or the store's host is unreachable).
    #[error("distributed training, rank {rank} of {world_size}: {reason}")]
    Distributed {
        /// This process's rank.
        rank: usize,
        /// The number of processes.
        world_size: usize,
        /// The ranks found lost (empty when none was).
        lost_ranks: Vec<usize>,
        /// What failed.
        reason: String,
    },
    /// An error raised by libtorch, its C++ backtrace removed (only the lines before `Exception raised from …`).
    #[error(transparent)]
    Tch(tch::TchError),
    /// An error raised by Polars.
    #[error(transparent)]
    Polars(#[from] polars::prelude::PolarsError),
    /// An I/O error on `path`.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A JSON (de)serialization error.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A data set that is not bundled cannot be fetched, or its files lack what is expected.
    #[error("data set `{name}`: {reason}")]
    Dataset {
        /// The data set (`movielens100k`).
        name: String,
        /// What failed, and what to do about it.
        reason: String,
    },
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

impl From<tch::TchError> for WideDeepError {
    fn from(e: tch::TchError) -> Self {
        match e {
            tch::TchError::Torch(msg) => Self::Tch(tch::TchError::Torch(short_torch_message(&msg))),
            other => Self::Tch(other),
        }
    }
}

/// libtorch's message without the C++ backtrace it appends (`Exception raised from …` and
/// `frame #N: …` lines): the lines before it, trimmed. Messages that arrive wrapped in a Rust
/// panic (`… Torch("…")`) are unwrapped first.
pub(crate) fn short_torch_message(message: &str) -> String {
    let mut m = message;
    if let Some(at) = m.find("Torch(\"") {
        m = &m[at + "Torch(\"".len()..];
    }
    // a message quoted by `Debug` has escaped newlines
    let m = m.replace("\\n", "\n");
    let cut = ["Exception raised from", "frame #0", "\nframe #"]
        .iter()
        .filter_map(|marker| m.find(marker))
        .min()
        .unwrap_or(m.len());
    let kept = m[..cut]
        .trim()
        .trim_end_matches("\")")
        .trim_end_matches('"');
    kept.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `Result` with [`WideDeepError`].
pub type Result<T> = std::result::Result<T, WideDeepError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torch_backtraces_are_cut() {
        let raw =
            "shape '[2, 3]' is invalid for input of size 4\nException raised from view_impl at \
                   /pytorch/aten/src/ATen/native/TensorShape.cpp:3612 (most recent call first):\n\
                   frame #0: c10::Error::Error(c10::SourceLocation, std::string) + 0x9d\n\
                   frame #1: at::native::view_impl + 0x3f";
        let e: WideDeepError = tch::TchError::Torch(raw.into()).into();
        assert_eq!(
            e.to_string(),
            "Internal torch error: shape '[2, 3]' is invalid for input of size 4"
        );
        let panic = "called `Result::unwrap()` on an `Err` value: Torch(\"[enforce fail at \
                     alloc_cpu.cpp:117] not enough memory\\nframe #0: c10::ThrowEnforceNotMet\")";
        assert_eq!(
            short_torch_message(panic),
            "[enforce fail at alloc_cpu.cpp:117] not enough memory"
        );
    }
}

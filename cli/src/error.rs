//! The command's one error type.
use std::path::PathBuf;

/// Everything a `widedeep` command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A bad experiment file: the file, the line (when it can be found), the field path and why.
    #[error("{}{}: `{path}`: {message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Config {
        /// The TOML file.
        file: PathBuf,
        /// 1-based line of the offending key, when found.
        line: Option<usize>,
        /// Dotted field path, e.g. `model.deeptabular.mlp.dropout`.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// An error of the library (preprocessing, model, training, saving).
    #[error(transparent)]
    Library(#[from] widedeep::WideDeepError),
    /// A Polars error while reading or writing data.
    #[error("{context}: {source}")]
    Polars {
        /// What was being done (naming the file).
        context: String,
        /// The Polars error.
        source: widedeep::polars::prelude::PolarsError,
    },
    /// A file or folder that cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Bad command-line usage or inputs (naming the argument or the value).
    #[error("{0}")]
    Usage(String),
}

/// The command's result type.
pub type Result<T> = std::result::Result<T, CliError>;

impl CliError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
    /// A Polars error while doing `context`.
    pub fn polars(
        context: impl Into<String>,
        source: widedeep::polars::prelude::PolarsError,
    ) -> Self {
        Self::Polars {
            context: context.into(),
            source,
        }
    }
}

impl From<std::convert::Infallible> for CliError {
    fn from(e: std::convert::Infallible) -> Self {
        match e {}
    }
}

//! The crate's single error type.

/// Everything that can go wrong while fitting, applying, saving or loading a preprocessor.
///
/// Variants that concern user data name the offending column (and row, where there is one),
/// so a failure on a million-row frame points straight at the bad value.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessingError {
    /// A configured column is not present in the DataFrame.
    #[error("column `{column}` not found in the DataFrame")]
    MissingColumn {
        /// The column that was looked up.
        column: String,
    },
    /// A column has a dtype the preprocessor cannot use in the role it was given.
    #[error("column `{column}` has dtype {found}, expected {expected}")]
    WrongType {
        /// The offending column.
        column: String,
        /// What was expected, in words (e.g. `"numeric"`).
        expected: String,
        /// The dtype found.
        found: String,
    },
    /// A column has no non-null value at fit time, so nothing can be learned from it.
    #[error("column `{column}` has no non-null value")]
    AllNull {
        /// The offending column.
        column: String,
    },
    /// `fit` was given a DataFrame with no rows.
    #[error("the DataFrame has no rows")]
    EmptyFrame,
    /// A NaN or infinite value where only finite values are allowed (a target, or an
    /// infinite value in a continuous feature).
    #[error("column `{column}` has the non-finite value {value} at row {row}")]
    NonFinite {
        /// The offending column.
        column: String,
        /// Zero-based row of the first such value.
        row: usize,
        /// The value found.
        value: f64,
    },
    /// A finite value that leaves the range of the output type (`f32`) after the
    /// transformation that applies to it (scaling, a target's encoding), or whose fitted
    /// statistics overflow. Such a value would otherwise become an infinity or a NaN in the
    /// model.
    #[error("column `{column}` row {row}: the value {value} is out of range ({reason})")]
    OutOfRange {
        /// The offending column.
        column: String,
        /// Zero-based row of the first such value.
        row: usize,
        /// The input value.
        value: f64,
        /// What overflowed.
        reason: String,
    },
    /// A column's dtype differs from the one it had at fit time in a way that changes how its
    /// values are keyed (e.g. a categorical fitted on strings and given as integers, which
    /// would map every row to "unknown").
    #[error("column `{column}` had dtype class {fitted} at fit time, found {found}")]
    DtypeChanged {
        /// The offending column.
        column: String,
        /// The dtype class seen at fit time.
        fitted: String,
        /// The dtype found now.
        found: String,
    },
    /// A byte-string (`Binary`) column used as text holds bytes that are not UTF-8.
    #[error("column `{column}` row {row}: the bytes are not valid UTF-8 text")]
    InvalidUtf8 {
        /// The offending column.
        column: String,
        /// Zero-based row of the first such value.
        row: usize,
    },
    /// A null where none is allowed (a target).
    #[error("column `{column}` has a null at row {row}")]
    NullValue {
        /// The offending column.
        column: String,
        /// Zero-based row of the first null.
        row: usize,
    },
    /// A column was listed both as categorical and as continuous.
    #[error("column `{column}` is listed both as categorical and as continuous")]
    ConflictingRole {
        /// The offending column.
        column: String,
    },
    /// A column name appears twice in one configuration list.
    #[error("column `{column}` is listed more than once in `{field}`")]
    DuplicateColumn {
        /// The repeated column.
        column: String,
        /// The configuration field holding the list.
        field: String,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration for `{field}`: {reason}")]
    InvalidConfig {
        /// The configuration field at fault.
        field: String,
        /// Why it is invalid.
        reason: String,
    },
    /// `transform` (or another method needing fitted state) was called before `fit`.
    #[error("{what} is not fitted; call `fit` first")]
    NotFitted {
        /// The unfitted component.
        what: String,
    },
    /// A target value that was not seen at fit time.
    #[error("column `{column}` has the class `{value}` that was not seen at fit time")]
    UnknownClass {
        /// The target column.
        column: String,
        /// The unseen value, in string form.
        value: String,
    },
    /// A file named in the configuration or the data (a tokenizer, word vectors, an image) is
    /// missing, unreadable or malformed.
    #[error("{path}: {reason}")]
    BadFile {
        /// The file at fault.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An image held in a bytes column cannot be decoded.
    #[error("column `{column}` row {row}: cannot decode the image: {reason}")]
    BadImage {
        /// The image column.
        column: String,
        /// Zero-based row.
        row: usize,
        /// The decoder's message.
        reason: String,
    },
    /// The tokenizer failed (training, encoding or (de)serialization).
    #[error("tokenizer: {reason}")]
    Tokenizer {
        /// The tokenizer's message.
        reason: String,
    },
    /// No user of the frame has more than `min_history` interactions, so no behaviour
    /// sequence (sample) can be built.
    #[error(
        "no sample is left: none of the {users} users has more than {min_history} interaction(s)"
    )]
    NoSamples {
        /// Distinct users in the frame.
        users: usize,
        /// The configured minimum history.
        min_history: usize,
    },
    /// An error raised by Polars.
    #[error(transparent)]
    Polars(#[from] polars::prelude::PolarsError),
    /// An I/O error while saving or loading.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A (de)serialization error while saving or loading.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// `Result` with [`PreprocessingError`] as the error type.
pub type Result<T> = std::result::Result<T, PreprocessingError>;

impl PreprocessingError {
    /// The same error with its row number, if it has one, moved `offset` rows down: for an
    /// error found in a chunk that starts at row `offset` of a file or stream.
    ///
    /// ```
    /// use widedeep_preprocessing::PreprocessingError;
    /// let e = PreprocessingError::NullValue { column: "y".into(), row: 3 };
    /// assert_eq!(e.offset_rows(100).to_string(), "column `y` has a null at row 103");
    /// ```
    pub fn offset_rows(mut self, offset: usize) -> Self {
        match &mut self {
            Self::NonFinite { row, .. }
            | Self::OutOfRange { row, .. }
            | Self::InvalidUtf8 { row, .. }
            | Self::NullValue { row, .. }
            | Self::BadImage { row, .. } => *row += offset,
            _ => {}
        }
        self
    }

    pub(crate) fn missing(column: &str) -> Self {
        Self::MissingColumn {
            column: column.to_owned(),
        }
    }

    pub(crate) fn all_null(column: &str) -> Self {
        Self::AllNull {
            column: column.to_owned(),
        }
    }

    pub(crate) fn non_finite(column: &str, row: usize, value: f64) -> Self {
        Self::NonFinite {
            column: column.to_owned(),
            row,
            value,
        }
    }

    pub(crate) fn not_fitted(what: &str) -> Self {
        Self::NotFitted {
            what: what.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_column() {
        let e = PreprocessingError::missing("age");
        assert_eq!(e.to_string(), "column `age` not found in the DataFrame");
        let e = PreprocessingError::NonFinite {
            column: "y".into(),
            row: 3,
            value: f64::INFINITY,
        };
        assert_eq!(
            e.to_string(),
            "column `y` has the non-finite value inf at row 3"
        );
    }
}

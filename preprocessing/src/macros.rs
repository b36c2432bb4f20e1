//! Early returns with typed errors (polars' `polars_bail!` / `polars_ensure!`):
//!
//! ```text
//! ensure!(n >= 2, config("quantize"), "`{col}`: the number of bins must be at least 2, got {n}");
//! bail!(PreprocessingError::EmptyFrame);
//! ```

/// Returns early with an error: `bail!(config(field), "fmt", args..)` for
/// [`PreprocessingError::InvalidConfig`](crate::PreprocessingError::InvalidConfig), or
/// `bail!(error)` for any value that converts into a `PreprocessingError`.
macro_rules! bail {
    (config($field:expr), $($fmt:tt)+) => {
        return Err($crate::error::PreprocessingError::InvalidConfig {
            field: ($field).into(),
            reason: format!($($fmt)+),
        })
    };
    ($err:expr $(,)?) => {
        return Err(::std::convert::From::from($err))
    };
}
pub(crate) use bail;

/// `ensure!(condition, <bail! arguments>)`: returns the [`bail!`] error unless `condition`
/// holds.
macro_rules! ensure {
    ($cond:expr, $($rest:tt)+) => {
        if !($cond) {
            $crate::macros::bail!($($rest)+);
        }
    };
}
pub(crate) use ensure;

#[cfg(test)]
mod tests {
    use crate::error::{PreprocessingError, Result};

    fn check(n: usize) -> Result<usize> {
        ensure!(n >= 2, config("bins"), "must be at least 2, got {n}");
        ensure!(n != 3, PreprocessingError::EmptyFrame);
        Ok(n)
    }

    #[test]
    fn macros_build_the_errors_they_name() {
        assert_eq!(check(4).unwrap(), 4);
        assert!(
            matches!(check(1), Err(PreprocessingError::InvalidConfig { field, reason })
            if field == "bins" && reason == "must be at least 2, got 1")
        );
        assert!(matches!(check(3), Err(PreprocessingError::EmptyFrame)));
    }
}

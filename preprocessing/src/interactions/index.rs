//! Raw ids ↔ dense indices, and interaction pairs in those indices.
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::{id_column, int_keyed};
use crate::column::{self, check_fitted_dtype, DtypeClass};
use crate::contract::{fitted_state, Fit, Persist, Transform};
use crate::error::{PreprocessingError, Result};
use crate::macros::ensure;

/// Maps the distinct values of one id column (users or items) to dense indices `0..len()`
/// and back: the row of an id in an embedding table.
///
/// The order is the sorted order of the distinct values: numeric for integer columns (so
/// MovieLens' `movie_id` 1, 2, … become 0, 1, …), by string form otherwise. Unlike the
/// categorical encoders there is no reserved slot: an id unseen at fit time (or a null)
/// transforms to `None`. Values are keyed by their string form (integers by their decimal
/// form), so an index fitted on an `i32` column applies to the same ids stored as `i64`; a
/// column whose dtype class changed since fit (integers fitted, strings given) is a
/// [`DtypeChanged`](PreprocessingError::DtypeChanged) error. Fitting a column with a null is
/// a [`NullValue`](PreprocessingError::NullValue) error.
///
/// ```
/// use polars::prelude::*;
/// use widedeep_preprocessing::interactions::IdIndex;
/// use widedeep_preprocessing::{Fit, Transform};
///
/// let df = df!("movie_id" => [30i64, 2, 30, 10]).unwrap();
/// let mut index = IdIndex::new("movie_id");
/// index.fit(&df).unwrap();
/// assert_eq!(index.keys().unwrap(), ["2", "10", "30"]);
/// let new = df!("movie_id" => [10i64, 7]).unwrap();
/// assert_eq!(index.transform(&new).unwrap(), [Some(1), None]);
/// assert_eq!(index.key(2), Some("30"));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdIndex {
    column: String,
    #[serde(default)]
    fitted: Option<Fitted>,
}

/// The fitted state: the ids in index order (and a lookup rebuilt when loaded).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "SavedIds", into = "SavedIds")]
struct Fitted {
    dtype: Option<DtypeClass>,
    keys: Vec<String>,
    lookup: PlHashMap<String, usize>,
}

#[derive(Clone, Serialize, Deserialize)]
struct SavedIds {
    dtype: Option<DtypeClass>,
    keys: Vec<String>,
}

impl From<SavedIds> for Fitted {
    fn from(s: SavedIds) -> Self {
        Fitted::new(s.dtype, s.keys)
    }
}

impl From<Fitted> for SavedIds {
    fn from(f: Fitted) -> Self {
        SavedIds {
            dtype: f.dtype,
            keys: f.keys,
        }
    }
}

impl Fitted {
    fn new(dtype: Option<DtypeClass>, keys: Vec<String>) -> Self {
        let lookup = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i))
            .collect();
        Self {
            dtype,
            keys,
            lookup,
        }
    }
}

impl IdIndex {
    /// An unfitted index of the id column `column`.
    pub fn new(column: &str) -> Self {
        Self {
            column: column.to_owned(),
            fitted: None,
        }
    }

    /// Fits a new index of `column` on `df` (`new` then [`Fit::fit`]).
    pub fn fitted_on(df: &DataFrame, column: &str) -> Result<Self> {
        let mut index = Self::new(column);
        index.fit(df)?;
        Ok(index)
    }

    /// The id column.
    pub fn column(&self) -> &str {
        &self.column
    }

    fn state(&self) -> Result<&Fitted> {
        fitted_state(self.fitted.as_ref(), "IdIndex", |_| true)
    }

    /// The number of ids (0 before fit).
    pub fn len(&self) -> usize {
        self.fitted.as_ref().map_or(0, |f| f.keys.len())
    }

    /// Whether the index has no ids (always before fit).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ids in index order, in their string form.
    pub fn keys(&self) -> Result<&[String]> {
        Ok(&self.state()?.keys)
    }

    /// The index of the id whose string form is `key` (`"42"` for the integer 42).
    pub fn index_of(&self, key: &str) -> Option<usize> {
        self.fitted.as_ref()?.lookup.get(key).copied()
    }

    /// The id (string form) at `index`.
    pub fn key(&self, index: usize) -> Option<&str> {
        self.fitted.as_ref()?.keys.get(index).map(String::as_str)
    }
}

impl Fit for IdIndex {
    /// Learns the sorted distinct ids of the column; a null is an error naming the row, an
    /// empty frame is [`PreprocessingError::EmptyFrame`].
    fn fit(&mut self, df: &DataFrame) -> Result<()> {
        ensure!(df.height() > 0, PreprocessingError::EmptyFrame);
        let name = self.column.as_str();
        let col = id_column(df, name)?;
        if let Some(row) = first_null(col) {
            return Err(super::null_at(name, row));
        }
        let keys: Vec<String> = if int_keyed(col.dtype()) {
            let ints = col.cast(&DataType::Int64)?;
            let set: PlHashSet<i64> = ints.i64()?.iter().flatten().collect();
            let mut v: Vec<i64> = set.into_iter().collect();
            v.sort_unstable();
            v.into_iter().map(|v| v.to_string()).collect()
        } else {
            column::distinct_keys(col)?
        };
        self.fitted = Some(Fitted::new(DtypeClass::of(col.dtype()), keys));
        Ok(())
    }

    fn is_fitted(&self) -> bool {
        self.fitted.is_some()
    }
}

fn first_null(col: &Column) -> Option<usize> {
    if col.null_count() == 0 {
        return None;
    }
    col.is_null().iter().position(|v| v == Some(true))
}

impl Transform for IdIndex {
    /// The index of each row's id, `None` for a null or an id unseen at fit time.
    type Output = Vec<Option<usize>>;

    fn transform(&self, df: &DataFrame) -> Result<Vec<Option<usize>>> {
        let state = self.state()?;
        let name = self.column.as_str();
        let col = id_column(df, name)?;
        check_fitted_dtype(col, name, state.dtype)?;
        let mut codes = vec![0i64; col.len()];
        column::encode_into(col, &state.keys, 0, &mut codes)?;
        Ok(codes
            .into_iter()
            .map(|c| (c > 0).then(|| c as usize - 1))
            .collect())
    }
}

impl Persist for IdIndex {}

/// The `(user, item)` pairs of an interaction frame as dense indices of two [`IdIndex`]es:
/// what the retrieval models train on and the ranking evaluation reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interactions {
    /// The number of users (the user index's length).
    pub n_users: usize,
    /// The number of items (the item index's length).
    pub n_items: usize,
    /// Each pair's user index, in the frame's row order.
    pub users: Vec<usize>,
    /// Each pair's item index.
    pub items: Vec<usize>,
    /// Rows left out because their user or item is not in the index (or is null): cold-start
    /// rows an id-based model cannot score.
    pub n_dropped: usize,
}

impl Interactions {
    /// The pairs of `df`'s rows, read from the columns of `users` and `items` (fitted
    /// indices); rows whose user or item the indices do not know are dropped and counted in
    /// [`Interactions::n_dropped`].
    pub fn from_frame(df: &DataFrame, users: &IdIndex, items: &IdIndex) -> Result<Self> {
        let u = users.transform(df)?;
        let i = items.transform(df)?;
        let mut out = Self {
            n_users: users.len(),
            n_items: items.len(),
            ..Self::default()
        };
        for (u, i) in u.into_iter().zip(i) {
            match (u, i) {
                (Some(u), Some(i)) => {
                    out.users.push(u);
                    out.items.push(i);
                }
                _ => out.n_dropped += 1,
            }
        }
        Ok(out)
    }

    /// Pairs from plain index vectors (checked: equal lengths, every index in range).
    pub fn from_pairs(
        n_users: usize,
        n_items: usize,
        users: Vec<usize>,
        items: Vec<usize>,
    ) -> Result<Self> {
        ensure!(
            users.len() == items.len(),
            config("items"),
            "{} users but {} items",
            users.len(),
            items.len()
        );
        if let Some(u) = users.iter().find(|&&u| u >= n_users) {
            crate::macros::bail!(config("users"), "user index {u} ≥ n_users {n_users}");
        }
        if let Some(i) = items.iter().find(|&&i| i >= n_items) {
            crate::macros::bail!(config("items"), "item index {i} ≥ n_items {n_items}");
        }
        Ok(Self {
            n_users,
            n_items,
            users,
            items,
            n_dropped: 0,
        })
    }

    /// The number of pairs.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether there is no pair.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Each user's distinct items, sorted (`n_users` lists; empty for users without pairs).
    pub fn items_by_user(&self) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.n_users];
        for (&u, &i) in self.users.iter().zip(&self.items) {
            out[u].push(i);
        }
        for items in &mut out {
            items.sort_unstable();
            items.dedup();
        }
        out
    }

    /// How many pairs each item has (`n_items` counts): its popularity.
    pub fn item_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.n_items];
        for &i in &self.items {
            counts[i] += 1;
        }
        counts
    }
}

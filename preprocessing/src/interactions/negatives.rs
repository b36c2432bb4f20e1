//! Seeded negative sampling for implicit feedback.
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::group_rows;
use crate::error::Result;
use crate::macros::{bail, ensure};

/// The name of the `0/1` label column [`negative_sampling`] adds.
pub const LABEL: &str = "label";

/// How [`negative_sampling`] draws negative items.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    /// Every item of the frame equally likely (the default).
    #[default]
    Uniform,
    /// Items in proportion to their number of interactions in the frame (popular items are
    /// harder negatives, and match how in-batch negatives are distributed).
    Popularity,
}

/// Rejection draws per negative before falling back to drawing from the user's exact
/// complement (users who interacted with most of the sampling mass).
const MAX_TRIES: usize = 64;

/// Adds sampled negatives to implicit-feedback interactions: every row of `df` is a positive
/// (`label` 1) and is followed by `n_neg_per_pos` negatives (`label` 0) for the same user:
/// items drawn by `sampling` among the items of `df` that this user **never** interacted with
/// in `df`.
///
/// The result has three columns: `user_col` and `item_col` with `df`'s dtypes and values,
/// and [`LABEL`] (`i64`). Its rows come in groups of `1 + n_neg_per_pos` (the positive first),
/// the order of `df`'s rows, which is what the grouped ranking metrics
/// (`Metric::NdcgAtK { n_items: 1 + n_neg_per_pos, .. }` in `widedeep`) read. Negatives are
/// drawn with replacement: one positive's negatives may repeat an item. The draws depend only
/// on `df`'s rows and `seed`.
///
/// Errors: a missing column or a wrong dtype (naming it), a null user or item (naming the
/// row), `n_neg_per_pos == 0` (`InvalidConfig` on `n_neg_per_pos`), a column named `label`
/// or the same column given twice (`InvalidConfig` naming the column), and a user who
/// interacted with every item (no negative exists; `InvalidConfig` naming the user).
pub fn negative_sampling(
    df: &DataFrame,
    user_col: &str,
    item_col: &str,
    n_neg_per_pos: usize,
    sampling: Sampling,
    seed: u64,
) -> Result<DataFrame> {
    ensure!(
        n_neg_per_pos >= 1,
        config("n_neg_per_pos"),
        "must be at least 1"
    );
    ensure!(
        user_col != item_col,
        config(item_col),
        "the user and item columns must differ"
    );
    for name in [user_col, item_col] {
        ensure!(
            name != LABEL,
            config(name),
            "`{LABEL}` is the name of the label column this function adds; rename the column"
        );
    }
    let (users, n_users) = group_rows(df, user_col)?;
    let (items, n_items) = group_rows(df, item_col)?;
    // one row holding each item (its first), and each user's distinct items
    let mut item_row = vec![0 as IdxSize; n_items];
    let mut first_seen = vec![false; n_items];
    let mut seen: Vec<Vec<u32>> = vec![Vec::new(); n_users];
    let mut counts = vec![0u64; n_items];
    for (row, (&u, &i)) in users.iter().zip(&items).enumerate() {
        if !first_seen[i as usize] {
            first_seen[i as usize] = true;
            item_row[i as usize] = row as IdxSize;
        }
        seen[u as usize].push(i);
        counts[i as usize] += 1;
    }
    for (u, s) in seen.iter_mut().enumerate() {
        s.sort_unstable();
        s.dedup();
        if s.len() == n_items {
            let row = users.iter().position(|&x| x as usize == u).unwrap_or(0);
            let value = df.column(user_col)?.get(row)?;
            bail!(
                config("n_neg_per_pos"),
                "user {value} of `{user_col}` interacted with all {n_items} items: no negative \
                 exists"
            );
        }
    }
    let weights: Vec<u64> = match sampling {
        Sampling::Uniform => vec![1; n_items],
        Sampling::Popularity => counts,
    };
    let mut sampler = Sampler::new(weights);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let group = 1 + n_neg_per_pos;
    let n_out = df.height() * group;
    let (mut user_rows, mut item_rows) = (Vec::with_capacity(n_out), Vec::with_capacity(n_out));
    let mut label = Vec::with_capacity(n_out);
    for (row, &u) in users.iter().enumerate() {
        user_rows.extend(std::iter::repeat_n(row as IdxSize, group));
        item_rows.push(row as IdxSize);
        label.push(1i64);
        for _ in 0..n_neg_per_pos {
            let j = sampler.draw(&mut rng, u, &seen[u as usize]);
            item_rows.push(item_row[j]);
            label.push(0);
        }
    }
    let take = |name: &str, rows: Vec<IdxSize>| -> Result<Column> {
        Ok(df
            .column(name)?
            .take(&IdxCa::from_vec("idx".into(), rows))?)
    };
    let columns = vec![
        take(user_col, user_rows)?,
        take(item_col, item_rows)?,
        Column::new(LABEL.into(), label),
    ];
    Ok(DataFrame::new(n_out, columns)?)
}

/// Draws item indices by integer weights, skipping a user's items.
struct Sampler {
    /// Cumulative weights: item `j` is drawn for `x` in `[cum[j-1], cum[j])`.
    cum: Vec<u64>,
    weights: Vec<u64>,
    /// Per user (drawn for once rejection failed): the complement's items and cumulative
    /// weights.
    complements: PlHashMap<u32, (Vec<usize>, Vec<u64>)>,
}

impl Sampler {
    fn new(weights: Vec<u64>) -> Self {
        let cum = weights
            .iter()
            .scan(0u64, |acc, &w| {
                *acc += w;
                Some(*acc)
            })
            .collect();
        Self {
            cum,
            weights,
            complements: PlHashMap::new(),
        }
    }

    /// The item whose cumulative range holds a uniform draw in `[0, total)`.
    fn pick(cum: &[u64], rng: &mut ChaCha8Rng) -> usize {
        let total = *cum.last().expect("at least one item");
        let x = rng.random_range(0..total);
        cum.partition_point(|&c| c <= x)
    }

    /// An item user `u` (whose sorted items are `seen`) never interacted with: rejection
    /// draws from the full distribution, then the exact complement's distribution (the same
    /// distribution restricted to the complement either way).
    fn draw(&mut self, rng: &mut ChaCha8Rng, u: u32, seen: &[u32]) -> usize {
        for _ in 0..MAX_TRIES {
            let j = Self::pick(&self.cum, rng);
            if seen.binary_search(&(j as u32)).is_err() {
                return j;
            }
        }
        let weights = &self.weights;
        let (items, cum) = self.complements.entry(u).or_insert_with(|| {
            let items: Vec<usize> = (0..weights.len())
                .filter(|&j| seen.binary_search(&(j as u32)).is_err() && weights[j] > 0)
                .collect();
            let mut acc = 0;
            let cum = items
                .iter()
                .map(|&j| {
                    acc += weights[j];
                    acc
                })
                .collect();
            (items, cum)
        });
        items[Self::pick(cum, rng)]
    }
}

//! Train/test splits of interaction data: per user by recency, or at one global time.
use polars::prelude::*;

use super::{group_rows, take_rows, Times};
use crate::error::Result;
use crate::macros::ensure;

/// Splits interactions per user by time: each user's last `n` interactions (by `time_col`)
/// go to the second frame, the rest to the first — the "leave-last-out" protocol of
/// sequential and top-k recommendation studies.
///
/// * Users with `n` or fewer interactions stay **wholly in train** (the first frame): a user
///   with nothing left to train on could not be ranked by an id-based model, and the test
///   part would measure cold-start instead.
/// * Ties in time: the later row of `df` is the later interaction (a stable order).
/// * Both frames keep `df`'s columns and the original order of its rows.
///
/// `user_col` may be of any id dtype (string, categorical, boolean, integer); `time_col` an
/// integer, float or temporal (date, datetime) column. Errors: a missing column, a wrong
/// dtype, a null user or time, a NaN time (each naming the column and row), `n == 0`
/// (`InvalidConfig` on `n`).
pub fn leave_last_out(
    df: &DataFrame,
    user_col: &str,
    time_col: &str,
    n: usize,
) -> Result<(DataFrame, DataFrame)> {
    ensure!(
        n >= 1,
        config("n"),
        "the number of held-out interactions per user must be at least 1"
    );
    let (groups, n_users) = group_rows(df, user_col)?;
    let times = Times::read(df, time_col)?;
    // the rows of each user, then each user's rows in time order
    let mut by_user: Vec<Vec<usize>> = vec![Vec::new(); n_users];
    for (row, &g) in groups.iter().enumerate() {
        by_user[g as usize].push(row);
    }
    let mut is_test = vec![false; df.height()];
    for rows in &mut by_user {
        if rows.len() <= n {
            continue;
        }
        rows.sort_by(|&a, &b| times.cmp(a, b));
        for &row in &rows[rows.len() - n..] {
            is_test[row] = true;
        }
    }
    partition(df, &is_test)
}

/// Splits interactions at one global time: rows with `time_col < cutoff` go to the first
/// frame (train), rows at or after `cutoff` to the second (test). Both keep `df`'s columns
/// and row order; either may be empty.
///
/// `cutoff` is compared with the column's values as they are stored: integers (Unix seconds
/// for MovieLens), the physical value of a temporal column (days for a date, the unit of a
/// datetime since the epoch), or a float column's values. Errors: a missing column, a wrong
/// dtype, a null or NaN time (naming the column and row).
pub fn time_split(df: &DataFrame, time_col: &str, cutoff: i64) -> Result<(DataFrame, DataFrame)> {
    let times = Times::read(df, time_col)?;
    let is_test: Vec<bool> = (0..df.height()).map(|r| !times.before(r, cutoff)).collect();
    partition(df, &is_test)
}

/// `df`'s rows with `is_test` false, then those with it true, each in their original order.
fn partition(df: &DataFrame, is_test: &[bool]) -> Result<(DataFrame, DataFrame)> {
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (row, &t) in is_test.iter().enumerate() {
        if t {
            test.push(row as IdxSize);
        } else {
            train.push(row as IdxSize);
        }
    }
    Ok((take_rows(df, train)?, take_rows(df, test)?))
}

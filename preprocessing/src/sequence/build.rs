//! Fitting the vocabularies and building the per-user histories.

use ndarray::{Array1, Array2};
use polars::prelude::*;

use super::{
    check_some_samples, FittedVocab, SeqFitted, SequenceData, SequencePreprocessor, SequenceReport,
    PAD_ID, UNSEEN_ID,
};
use crate::column::{self, DtypeClass};
use crate::contract::{Fit, Transform};
use crate::error::{PreprocessingError, Result};
use crate::macros::{bail, ensure};

impl SequencePreprocessor {
    /// The vocabulary of the keyed column `name` (`embed_dim` from the rule when `None`).
    fn fit_vocab(
        &self,
        df: &DataFrame,
        name: &str,
        embed_dim: Option<usize>,
    ) -> Result<FittedVocab> {
        let col = column::get(df, name)?;
        let values = column::distinct_keys(col)?;
        ensure!(!values.is_empty(), PreprocessingError::all_null(name));
        Ok(FittedVocab {
            embed_dim: embed_dim.unwrap_or_else(|| self.embed_dim_of(name, values.len() + 2)),
            values,
            dtype: DtypeClass::of(col.dtype()),
        })
    }

    /// Errors on a null user id, a null time or a NaN time, naming the column and row.
    fn check_keys(&self, df: &DataFrame) -> Result<()> {
        for name in [&self.spec.user_col, &self.spec.time_col] {
            let col = column::get(df, name)?;
            if col.null_count() > 0 {
                let row = col
                    .is_null()
                    .iter()
                    .position(|v| v == Some(true))
                    .unwrap_or(0);
                bail!(PreprocessingError::NullValue {
                    column: name.clone(),
                    row,
                });
            }
        }
        let time = column::get(df, &self.spec.time_col)?;
        if time.dtype().is_float() {
            let values = column::as_f64(time)?;
            let nan = values.iter().position(|v| v.is_some_and(f64::is_nan));
            if let Some(row) = nan {
                bail!(PreprocessingError::non_finite(
                    &self.spec.time_col,
                    row,
                    f64::NAN
                ));
            }
        }
        Ok(())
    }

    /// Each user's rows of `df`, sorted by time (ties in frame order); users in sorted order
    /// of their ids. Checks the key columns first.
    fn users_in_time_order(&self, df: &DataFrame) -> Result<Vec<Vec<usize>>> {
        self.check_keys(df)?;
        let (user, time) = (&self.spec.user_col, &self.spec.time_col);
        let mut row_name = String::from("__widedeep_row");
        while row_name == *user || row_name == *time {
            row_name.push('_');
        }
        let keys = df
            .select([user.as_str(), time.as_str()])?
            .with_row_index(row_name.as_str().into(), None)?;
        let sorted = keys.sort(
            [user.as_str(), time.as_str()],
            SortMultipleOptions::default().with_maintain_order(true),
        )?;
        let source: Vec<usize> = sorted
            .column(&row_name)?
            .idx()?
            .iter()
            .map(|r| r.map_or(0, |r| r as usize))
            .collect();
        // the frame is sorted by user, so each user's positions are ascending in time
        let grouped = sorted.group_by_stable([user.as_str()])?;
        let mut users = Vec::with_capacity(grouped.get_groups().len());
        for group in grouped.get_groups().iter() {
            let mut positions: Vec<usize> = match group {
                GroupsIndicator::Idx((_, idx)) => idx.iter().map(|&i| i as usize).collect(),
                GroupsIndicator::Slice([first, len]) => {
                    (first as usize..(first + len) as usize).collect()
                }
            };
            positions.sort_unstable();
            users.push(positions.into_iter().map(|p| source[p]).collect());
        }
        Ok(users)
    }

    /// How many samples the users of `df` give (without building them).
    fn count(&self, df: &DataFrame) -> Result<SequenceReport> {
        self.check_keys(df)?;
        let grouped = df.group_by([self.spec.user_col.as_str()])?;
        let sizes = grouped.get_groups().iter().map(|g| g.len());
        Ok(report(sizes, self.spec.min_history))
    }
}

/// The counts of users of the given sizes with `min_history`.
fn report(sizes: impl Iterator<Item = usize>, min_history: usize) -> SequenceReport {
    let mut r = SequenceReport::default();
    for n in sizes {
        r.n_users += 1;
        if n > min_history {
            r.n_samples += n - min_history;
        } else {
            r.dropped_users += 1;
            r.dropped_rows += n;
        }
    }
    r
}

/// The codes of the keyed column `name` of `df` in `vocab`, in row order: `k + 2` for
/// `vocab.values[k]`, [`UNSEEN_ID`] for nulls and unseen values.
fn encode(df: &DataFrame, name: &str, vocab: &FittedVocab) -> Result<Vec<i64>> {
    let col = column::get(df, name)?;
    column::check_fitted_dtype(col, name, vocab.dtype)?;
    let mut out = vec![0i64; df.height()];
    column::encode_into(col, &vocab.values, 1, &mut out)?;
    for v in &mut out {
        if *v == 0 {
            *v = UNSEEN_ID;
        }
    }
    Ok(out)
}

impl Fit for SequencePreprocessor {
    /// Learns the vocabularies of the item, action and other sequence columns from `df`.
    ///
    /// Errors: [`InvalidConfig`](PreprocessingError::InvalidConfig) (`max_seq_length` 0,
    /// `embed_dim_for` naming another column or 0),
    /// [`DuplicateColumn`](PreprocessingError::DuplicateColumn) (a column in two roles),
    /// [`EmptyFrame`](PreprocessingError::EmptyFrame),
    /// [`MissingColumn`](PreprocessingError::MissingColumn),
    /// [`WrongType`](PreprocessingError::WrongType),
    /// [`NullValue`](PreprocessingError::NullValue) (a null user id or time),
    /// [`NonFinite`](PreprocessingError::NonFinite) (a NaN time),
    /// [`AllNull`](PreprocessingError::AllNull) (a sequence column without values) and
    /// [`NoSamples`](PreprocessingError::NoSamples) (no user has more than `min_history`
    /// interactions).
    fn fit(&mut self, df: &DataFrame) -> Result<()> {
        self.validate_config()?;
        ensure!(df.height() > 0, PreprocessingError::EmptyFrame);
        self.check_columns(df)?;
        check_some_samples(&self.count(df)?, self.spec.min_history)?;
        let spec = &self.spec;
        let items = self.fit_vocab(df, &spec.item_col, None)?;
        let actions = spec
            .action_col
            .as_ref()
            .map(|a| self.fit_vocab(df, a, Some(1)))
            .transpose()?;
        let others = spec
            .other_seq_cols
            .iter()
            .map(|c| self.fit_vocab(df, c, None))
            .collect::<Result<Vec<_>>>()?;
        self.fitted = Some(SeqFitted {
            items,
            actions,
            others,
        });
        Ok(())
    }

    fn is_fitted(&self) -> bool {
        self.fitted.is_some()
    }
}

impl Transform for SequencePreprocessor {
    /// The samples, see [`SequenceData`].
    type Output = SequenceData;

    /// Builds one sample per interaction with at least `min_history` earlier interactions of
    /// the same user (see the [module documentation](super)). Users with too little history
    /// are dropped, counted in [`SequenceData::report`] and reported on stderr.
    ///
    /// Errors: [`NotFitted`](PreprocessingError::NotFitted),
    /// [`MissingColumn`](PreprocessingError::MissingColumn),
    /// [`WrongType`](PreprocessingError::WrongType),
    /// [`DtypeChanged`](PreprocessingError::DtypeChanged) (a sequence column keyed
    /// differently than at fit time), [`NullValue`](PreprocessingError::NullValue) (a null
    /// user id or time), [`NonFinite`](PreprocessingError::NonFinite) (a NaN time),
    /// [`NoSamples`](PreprocessingError::NoSamples) (no sample left, e.g. an empty frame) and
    /// [`InvalidConfig`](PreprocessingError::InvalidConfig) (`max_seq_length`: histories too
    /// large to allocate).
    ///
    /// # Shapes
    /// - `df`: interactions, one per row, with every configured column
    /// - returns `items`, `actions`, each of `others`: `[n_samples, max_seq_length]` i64;
    ///   `target_item`, `lengths`: `[n_samples]` i64; `rows` and `frame`: `n_samples` rows
    fn transform(&self, df: &DataFrame) -> Result<SequenceData> {
        let f = self.fitted()?;
        let spec = &self.spec;
        self.check_columns(df)?;
        let items = encode(df, &spec.item_col, &f.items)?;
        let actions = match (&spec.action_col, &f.actions) {
            (Some(name), Some(vocab)) => Some(encode(df, name, vocab)?),
            _ => None,
        };
        let others = spec
            .other_seq_cols
            .iter()
            .zip(&f.others)
            .map(|(name, vocab)| encode(df, name, vocab))
            .collect::<Result<Vec<_>>>()?;
        let users = self.users_in_time_order(df)?;
        let (l, min_history) = (spec.max_seq_length, spec.min_history);
        let report = report(users.iter().map(Vec::len), min_history);
        if report.dropped_users > 0 {
            eprintln!(
                "widedeep warning: SequencePreprocessor: {} of {} users have at most {} \
                 interaction(s) and give no sample ({} rows dropped)",
                report.dropped_users, report.n_users, min_history, report.dropped_rows
            );
        }
        check_some_samples(&report, min_history)?;

        let n = report.n_samples;
        // the history arrays: checked before they are allocated
        let cells = n
            .checked_mul(l)
            .filter(|&c| c <= isize::MAX as usize / std::mem::size_of::<i64>());
        let Some(cells) = cells else {
            bail!(
                config("max_seq_length"),
                "{n} samples × {l} positions do not fit in memory"
            );
        };
        let mut hist = vec![PAD_ID; cells];
        let mut hist_actions = vec![PAD_ID; if actions.is_some() { cells } else { 0 }];
        let mut hist_others = vec![vec![PAD_ID; cells]; others.len()];
        let (mut target, mut lengths, mut rows) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for user in users.iter().filter(|u| u.len() > min_history) {
            for p in min_history..user.len() {
                let history = &user[p.saturating_sub(l)..p];
                // left padding: the history ends at the last column
                let at = rows.len() * l + (l - history.len());
                for (j, &r) in history.iter().enumerate() {
                    hist[at + j] = items[r];
                    if let Some(a) = &actions {
                        hist_actions[at + j] = a[r];
                    }
                    for (out, codes) in hist_others.iter_mut().zip(&others) {
                        out[at + j] = codes[r];
                    }
                }
                target.push(items[user[p]]);
                lengths.push(history.len() as i64);
                rows.push(user[p]);
            }
        }
        let shape = (n, l);
        let array = |v: Vec<i64>| {
            Array2::from_shape_vec(shape, v).expect("n_samples × max_seq_length codes")
        };
        let take: Vec<IdxSize> = rows.iter().map(|&r| r as IdxSize).collect();
        let frame = df.take(&IdxCa::from_vec("".into(), take))?;
        Ok(SequenceData {
            items: array(hist),
            target_item: Array1::from(target),
            actions: actions.map(|_| array(hist_actions)),
            others: hist_others.into_iter().map(array).collect(),
            lengths: Array1::from(lengths),
            rows,
            frame,
            report,
        })
    }
}

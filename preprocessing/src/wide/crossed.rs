//! Crossed columns: the value tuples of two or more columns, learned at fit time and looked up
//! at transform time.

use polars::prelude::*;

use super::{checked_column, CROSS_SEP};
use crate::column;
use crate::error::{PreprocessingError, Result};
use crate::macros::ensure;

/// Per-part codes of a crossed column: for each part, the code (1-based position in
/// `vocab`, 0 = null/unseen) of every row.
fn part_codes(df: &DataFrame, parts: &[String], vocabs: &[Vec<String>]) -> Result<Vec<Vec<i64>>> {
    parts
        .iter()
        .zip(vocabs)
        .map(|(name, vocab)| {
            let col = checked_column(df, name)?;
            let mut codes = vec![0i64; df.height()];
            column::encode_into(col, vocab, 0, &mut codes)?;
            Ok(codes)
        })
        .collect()
}

/// Learns the sorted distinct value tuples of a crossed column.
pub(super) fn fit_crossed(df: &DataFrame, parts: &[String]) -> Result<Vec<Vec<String>>> {
    let vocabs = parts
        .iter()
        .map(|name| column::distinct_keys(checked_column(df, name)?))
        .collect::<Result<Vec<_>>>()?;
    let codes = part_codes(df, parts, &vocabs)?;
    let mut seen: PlHashSet<Box<[i64]>> = PlHashSet::new();
    let mut key = vec![0i64; parts.len()];
    for row in 0..df.height() {
        for (slot, part) in key.iter_mut().zip(&codes) {
            *slot = part[row];
        }
        if key.iter().all(|&c| c > 0) && !seen.contains(key.as_slice()) {
            seen.insert(key.clone().into_boxed_slice());
        }
    }
    ensure!(
        !seen.is_empty(),
        PreprocessingError::all_null(&parts.join(CROSS_SEP))
    );
    let mut combos: Vec<Vec<String>> = seen
        .into_iter()
        .map(|key| {
            key.iter()
                .zip(&vocabs)
                .map(|(&c, vocab)| vocab[(c - 1) as usize].clone())
                .collect()
        })
        .collect();
    combos.sort_unstable();
    Ok(combos)
}

/// Writes into `out` (shape `[n_rows]`) the global indices of a crossed column:
/// `offset + 1 ..= offset + combos.len()`, 0 for null/unseen.
pub(super) fn transform_crossed(
    df: &DataFrame,
    parts: &[String],
    combos: &[Vec<String>],
    offset: i64,
    out: &mut [i64],
) -> Result<()> {
    // Per-part vocabularies restricted to the values that occur in a fitted combination.
    let vocabs: Vec<Vec<String>> = (0..parts.len())
        .map(|p| {
            let mut values: Vec<String> = combos.iter().map(|c| c[p].clone()).collect();
            values.sort_unstable();
            values.dedup();
            values
        })
        .collect();
    let lookup: PlHashMap<Box<[i64]>, i64> = combos
        .iter()
        .enumerate()
        .map(|(i, combo)| {
            let key: Box<[i64]> = combo
                .iter()
                .zip(&vocabs)
                .map(|(value, vocab)| {
                    // Every combination value is in its part's vocabulary by construction.
                    vocab.binary_search(value).map_or(0, |pos| pos as i64 + 1)
                })
                .collect();
            (key, offset + i as i64 + 1)
        })
        .collect();
    let codes = part_codes(df, parts, &vocabs)?;
    let mut key = vec![0i64; parts.len()];
    for (row, slot) in out.iter_mut().enumerate() {
        for (k, part) in key.iter_mut().zip(&codes) {
            *k = part[row];
        }
        if key.iter().all(|&c| c > 0) {
            *slot = lookup.get(key.as_slice()).copied().unwrap_or(0);
        } else {
            *slot = 0;
        }
    }
    Ok(())
}

//! A seeded uniform sample of the rows of Parquet data (a file, a folder or a pattern), drawn
//! in bounded memory
//! ([`sample_parquet`]), e.g. as the background of an
//! [`Explainer`](crate::explain::Explainer) or a quick fit on a file larger than memory.
use super::ParquetScan;
use crate::error::{Result, WideDeepError};
use crate::macros::ensure;
use polars::prelude::{DataFrame, IdxCa, IdxSize};
use rand::distr::Open01;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// The most rows [`sample_parquet`] reads at once.
const PAGE_ROWS: usize = 65_536;

/// A uniform sample of `k` of the row numbers `0..total` (`1 ≤ k ≤ total`), sorted:
/// reservoir sampling by Li's Algorithm L over the stream of row numbers, which draws
/// `O(k (1 + ln(total / k)))` random numbers rather than one per row. Every `k`-subset is
/// equally likely.
fn reservoir(total: usize, k: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut kept: Vec<usize> = (0..k).collect();
    let kf = k as f64;
    // `w` is distributed as the largest of k uniforms: the reservoir's current threshold
    let mut w = (rng.sample::<f64, _>(Open01).ln() / kf).exp();
    // the last row number of the stream seen so far
    let mut last = k - 1;
    while last + 1 < total {
        // rows skipped before the next one that enters the reservoir: geometric with
        // success probability w (ln(1 - w) < 0; w = 0 gives an infinite skip)
        let skip = (rng.sample::<f64, _>(Open01).ln() / (-w).ln_1p()).floor();
        // the next row is last + skip + 1; stop when it falls past the end (NaN too)
        if skip.is_nan() || skip >= (total - 1 - last) as f64 {
            break;
        }
        last += skip as usize + 1;
        kept[rng.random_range(0..k)] = last;
        w *= (rng.sample::<f64, _>(Open01).ln() / kf).exp();
    }
    kept.sort_unstable();
    kept
}

/// A uniform random sample of `min(n, rows)` rows of the Parquet data `path` — a file, or a
/// folder or pattern of files with one schema (see [`ParquetScan`]; rows are numbered across
/// the files in reading order) — reproducible from `seed`, drawn without loading the data:
/// memory is bounded by the `n` sampled rows plus one page of at most 65 536 rows.
///
/// The row numbers are drawn first, from the row counts in the file's metadata, by
/// reservoir sampling (Li's Algorithm L) with a ChaCha8 generator seeded with `seed`: every
/// set of `min(n, rows)` rows is equally likely, so each row is in the sample with
/// probability `min(n, rows) / rows`. The file is then read page by page (pages follow its
/// row groups as in [`Pipeline::predict_parquet`](super::Pipeline::predict_parquet)), pages
/// holding no sampled row are skipped, and the sampled rows of each page are kept.
///
/// The sampled rows are returned **in file order** (not in the order they were drawn), with
/// every column of the file and its dtype. With `n ≥ rows` the result is the whole data.
/// The same files, `n` and `seed` always give the same rows.
///
/// ```no_run
/// use widedeep::pipeline::sample_parquet;
/// let background = sample_parquet("big.parquet", 1_000, 42)?;
/// assert!(background.height() <= 1_000);
/// # Ok::<(), widedeep::error::WideDeepError>(())
/// ```
///
/// # Errors
/// - [`WideDeepError::InvalidConfig`]: `n` is 0 (`n`);
/// - [`WideDeepError::Io`]: `path` cannot be opened (naming the path);
/// - [`WideDeepError::InputMismatch`]: a file is not readable Parquet or has another schema
///   than the first, or a page cannot be decoded or has fewer rows than its metadata says
///   (naming the file and the page);
/// - [`WideDeepError::Missing`]: no file matches, or a file has no rows.
pub fn sample_parquet(path: impl AsRef<Path>, n: usize, seed: u64) -> Result<DataFrame> {
    let path = path.as_ref();
    ensure!(
        n > 0,
        config("n"),
        "the sample size must be at least 1 (got 0)"
    );
    let scan = ParquetScan::open(path, PAGE_ROWS)?;
    let total = scan.rows();
    let k = n.min(total);
    let rows = if k == total {
        (0..total).collect()
    } else {
        reservoir(total, k, &mut ChaCha8Rng::seed_from_u64(seed))
    };
    let mut sample: Option<DataFrame> = None;
    let mut next = 0;
    // the first row of the current file among all files' rows
    let mut offset = 0;
    for source in scan.sources() {
        for (i, &(start, len)) in source.pages.iter().enumerate() {
            let first = offset + start;
            let end = next + rows[next..].partition_point(|&r| r < first + len);
            if end == next {
                continue;
            }
            let page = source.read(i)?;
            ensure!(
                page.height() == len,
                input(source.path().display().to_string()),
                "page {} of {} (rows {start}..{}) has {} rows, its metadata {len}",
                i + 1,
                source.pages.len(),
                start + len,
                page.height()
            );
            let local: Vec<IdxSize> = rows[next..end]
                .iter()
                .map(|&r| (r - first) as IdxSize)
                .collect();
            let taken = page
                .take(&IdxCa::from_vec("row".into(), local))
                .map_err(|e| source.page_error(i, WideDeepError::Polars(e)))?;
            drop(page);
            match sample.as_mut() {
                None => sample = Some(taken),
                Some(s) => {
                    s.vstack_mut(&taken)
                        .map_err(|e| source.page_error(i, WideDeepError::Polars(e)))?;
                }
            }
            next = end;
        }
        offset += source.pages.iter().map(|p| p.1).sum::<usize>();
    }
    let Some(mut sample) = sample else {
        return Err(WideDeepError::Missing(
            "the Parquet data has no rows".into(),
        ));
    };
    sample.align_chunks_par();
    Ok(sample)
}

#[cfg(test)]
mod tests {
    use super::reservoir;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn reservoir_draws_distinct_sorted_rows_in_range() {
        for seed in 0..200 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            for (total, k) in [(2, 1), (10, 3), (1_000, 7), (1_000_000, 50), (5, 4)] {
                let rows = reservoir(total, k, &mut rng);
                assert_eq!(rows.len(), k);
                assert!(rows.windows(2).all(|w| w[0] < w[1]), "{rows:?}");
                assert!(*rows.last().unwrap() < total);
            }
        }
        // a huge stream with a small reservoir stops without overflow
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let rows = reservoir(usize::MAX / 2, 3, &mut rng);
        assert_eq!(rows.len(), 3);
    }

    #[test]
    fn reservoir_reaches_the_end_of_the_stream() {
        // the last row of a 1 000-row stream is kept with probability 5 / 1000 per draw:
        // over 4 000 seeds it is kept about 20 times (binomial sd ≈ 4.5)
        let hits = (0..4_000u64)
            .filter(|&s| {
                let rows = reservoir(1_000, 5, &mut ChaCha8Rng::seed_from_u64(s));
                rows.contains(&999)
            })
            .count();
        assert!((5..=40).contains(&hits), "{hits}");
    }
}

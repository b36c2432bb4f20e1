//! [`ValueSketch`]: exact moments and a bounded sample of a numeric column seen chunk by chunk.

use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::column;
use crate::error::{PreprocessingError, Result};
use crate::macros::bail;

/// Values a [`ValueSketch`] keeps by default (2^18 = 262,144, 2 MiB of `f64`).
pub const DEFAULT_SKETCH_CAPACITY: usize = 1 << 18;

/// The observed values of a numeric column seen chunk by chunk, in bounded memory: exact count,
/// mean and sum of squared deviations (merged chunk by chunk as Chan et al.), and every value
/// while there are at most `capacity` of them; beyond that a uniform reservoir sample of
/// `capacity` values (Vitter's algorithm R, seeded), whose empirical quantiles are within
/// `sqrt(ln(2/δ) / (2·capacity))` in rank of the true ones with probability `1 − δ`.
///
/// Null and NaN are missing values (counted, not kept); an infinite value is an error.
///
/// ```
/// use polars::prelude::*;
/// use widedeep_preprocessing::stream::ValueSketch;
///
/// let mut s = ValueSketch::new(4, 0);
/// let c = Column::new("x".into(), [Some(1.0f64), None, Some(3.0)]);
/// s.add(&c, "x", 0).unwrap();
/// assert!(s.is_exact());
/// assert_eq!((s.rows(), s.observed(), s.mean()), (3, 2, 2.0));
/// ```
#[derive(Clone, Debug)]
pub struct ValueSketch {
    capacity: usize,
    values: Vec<f64>,
    observed: u64,
    rows: u64,
    mean: f64,
    m2: f64,
    rng: ChaCha8Rng,
}

impl ValueSketch {
    /// An empty sketch keeping at most `capacity` values (at least 1), sampling with `seed`.
    pub fn new(capacity: usize, seed: u64) -> Self {
        Self {
            capacity: capacity.max(1),
            values: Vec::new(),
            observed: 0,
            rows: 0,
            mean: 0.0,
            m2: 0.0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Adds the rows of the numeric column `col` (named `name`, its first row being row
    /// `offset` of the stream). Errors: an infinite value
    /// ([`NonFinite`](PreprocessingError::NonFinite), at its row of the stream).
    pub fn add(&mut self, col: &Column, name: &str, offset: usize) -> Result<()> {
        let values = column::as_f64(col)?;
        let mut observed = Vec::with_capacity(values.len() - values.null_count());
        for (row, value) in values.iter().enumerate() {
            match value {
                Some(v) if v.is_infinite() => {
                    bail!(PreprocessingError::non_finite(name, offset + row, v))
                }
                Some(v) if !v.is_nan() => observed.push(v),
                _ => {}
            }
        }
        self.rows += values.len() as u64;
        self.add_observed(&observed);
        Ok(())
    }

    /// Adds observed values (finite) and no missing one.
    pub fn add_values(&mut self, values: &[f64]) {
        self.rows += values.len() as u64;
        self.add_observed(values);
    }

    fn add_observed(&mut self, chunk: &[f64]) {
        if chunk.is_empty() {
            return;
        }
        let nb = chunk.len() as f64;
        let mean_b = chunk.iter().sum::<f64>() / nb;
        let m2_b: f64 = chunk.iter().map(|v| (v - mean_b) * (v - mean_b)).sum();
        let na = self.observed as f64;
        let n = na + nb;
        let delta = mean_b - self.mean;
        self.mean += delta * nb / n;
        self.m2 += m2_b + delta * delta * na * nb / n;
        for &v in chunk {
            if self.values.len() < self.capacity {
                self.values.push(v);
            } else {
                let j = self.rng.random_range(0..=self.observed);
                if (j as usize) < self.capacity {
                    self.values[j as usize] = v;
                }
            }
            self.observed += 1;
        }
    }

    /// Whether every observed value is kept (at most `capacity` of them).
    pub fn is_exact(&self) -> bool {
        self.observed as usize <= self.capacity
    }

    /// Rows seen, missing ones included.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Observed (non-null, non-NaN) values seen.
    pub fn observed(&self) -> u64 {
        self.observed
    }

    /// Mean of the observed values (0 when there is none).
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Population variance of the observed values (0 when there is none).
    pub fn variance(&self) -> f64 {
        if self.observed == 0 {
            0.0
        } else {
            self.m2 / self.observed as f64
        }
    }

    /// The kept values: all observed values in order when [`is_exact`](Self::is_exact), else
    /// the reservoir sample.
    pub fn kept(&self) -> &[f64] {
        &self.values
    }

    /// A `Float64` column named `name`: when exact, the observed values followed by one null
    /// per missing row (so `fit`'s own statistics apply to it unchanged); else the sample.
    pub(crate) fn to_column(&self, name: &str) -> Column {
        let missing = if self.is_exact() {
            (self.rows - self.observed) as usize
        } else {
            0
        };
        let values: Vec<Option<f64>> = self
            .values
            .iter()
            .copied()
            .map(Some)
            .chain(std::iter::repeat_n(None, missing))
            .collect();
        Column::new(name.into(), values)
    }
}

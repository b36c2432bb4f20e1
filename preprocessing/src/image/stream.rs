//! Images decoded on demand: chosen rows ([`ImageRows`]) or batch by batch on a worker thread
//! ([`ImageBatches`]).

use std::sync::mpsc;

use polars::prelude::DataFrame;

use super::decode::{OwnedRaws, Picked};
use super::{ImageData, ImageFitted, ImagePreprocessor};
use crate::error::Result;
use crate::macros::{bail, ensure};

impl ImagePreprocessor {
    /// Decodes the images of `df` batch by batch on a worker thread that stays up to
    /// `prefetch` batches ahead of the consumer, so that only those batches are in memory.
    ///
    /// # Shapes
    /// - `df`: `n_rows = df.height()` rows with the image column
    /// - yields `n_rows.div_ceil(batch_size)` batches of `pixels` `[batch_size, 3, height, width]`
    ///   u8 (the last one shorter)
    pub fn batches(
        &self,
        df: &DataFrame,
        batch_size: usize,
        prefetch: usize,
    ) -> Result<ImageBatches> {
        ensure!(batch_size >= 1, config("batch_size"), "must be ≥ 1");
        let fitted = self.fitted()?.clone();
        let raws = self.owned_raws(df)?;
        let this = self.clone();
        let n = raws.len();
        let (tx, rx) = mpsc::sync_channel(prefetch.max(1));
        let handle = std::thread::spawn(move || {
            for start in (0..n).step_by(batch_size) {
                let end = (start + batch_size).min(n);
                let batch = this.decode_range(&raws, start..end, &fitted);
                if let Ok(b) = &batch {
                    this.warn(b, end - start);
                }
                let failed = batch.is_err();
                if tx.send(batch).is_err() || failed {
                    break;
                }
            }
        });
        Ok(ImageBatches {
            rx,
            handle: Some(handle),
            n_batches: n.div_ceil(batch_size),
        })
    }

    /// The image inputs of `df`'s rows, owned, to decode on demand ([`ImageRows::decode`])
    /// instead of all at once. Needs `fit` (for the statistics of failed rows' mean images).
    pub fn rows(&self, df: &DataFrame) -> Result<ImageRows> {
        Ok(ImageRows {
            fitted: self.fitted()?.clone(),
            raws: self.owned_raws(df)?,
            prep: self.clone(),
        })
    }
}

/// The encoded images (paths or bytes) of a DataFrame's image column, owned, decoded on
/// demand: [`ImageRows::decode`] turns any rows into the `u8` pixels `transform` would give
/// for them. From [`ImagePreprocessor::rows`]; for data sets whose decoded images do not fit
/// in memory (the trainer decodes them batch by batch).
pub struct ImageRows {
    prep: ImagePreprocessor,
    fitted: ImageFitted,
    raws: OwnedRaws,
}

impl std::fmt::Debug for ImageRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageRows")
            .field("column", &self.prep.img_col)
            .field("rows", &self.raws.len())
            .finish()
    }
}

impl ImageRows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.raws.len()
    }
    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.raws.len() == 0
    }
    /// `(width, height)` of the decoded images.
    pub fn output_size(&self) -> (u32, u32) {
        self.prep.output_size()
    }
    /// Decodes `rows` (indices into the DataFrame, any order, repeats allowed) in parallel:
    /// `u8` `[rows.len(), 3, height, width]`, equal to those rows of
    /// [`ImagePreprocessor::transform`](crate::Transform::transform). Errors name the file or row.
    ///
    /// # Shapes
    /// - `rows`: `[n]` row indices, each below [`len`](Self::len)
    /// - returns `pixels`: `[n, 3, height, width]` u8
    pub fn decode(&self, rows: &[usize]) -> Result<ImageData> {
        if let Some(&r) = rows.iter().find(|&&r| r >= self.raws.len()) {
            bail!(
                config("rows"),
                "row {r} out of range for {} rows",
                self.raws.len()
            );
        }
        let picked = Picked {
            raws: &self.raws,
            rows,
        };
        let batch = self.prep.decode_u8(&picked, 0..rows.len(), false, true)?;
        let data = self.prep.to_planar(batch, &self.fitted);
        self.prep.warn(&data, rows.len());
        Ok(data)
    }
}

/// Batches of decoded images from [`ImagePreprocessor::batches`], in row order.
pub struct ImageBatches {
    rx: mpsc::Receiver<Result<ImageData>>,
    handle: Option<std::thread::JoinHandle<()>>,
    n_batches: usize,
}

impl ImageBatches {
    /// Number of batches in total.
    pub fn n_batches(&self) -> usize {
        self.n_batches
    }
}

impl Iterator for ImageBatches {
    type Item = Result<ImageData>;
    fn next(&mut self) -> Option<Self::Item> {
        match self.rx.recv() {
            Ok(b) => Some(b),
            Err(_) => {
                if let Some(h) = self.handle.take() {
                    let _ = h.join();
                }
                None
            }
        }
    }
}

impl Drop for ImageBatches {
    fn drop(&mut self) {
        // Dropping the receiver makes the worker's next send fail, so it stops.
        let (_tx, rx) = mpsc::sync_channel(1);
        drop(std::mem::replace(&mut self.rx, rx));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

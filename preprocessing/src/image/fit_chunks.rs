//! [`FitChunks`] for the image preprocessor: the per-channel sums of the decoded pixels,
//! added chunk by chunk (exactly what `fit` adds).

use polars::prelude::*;

use super::{
    ImageFitted, ImagePreprocessor, Normalization, FIT_CHUNK, IMAGENET_MEAN, IMAGENET_STD,
};
use crate::error::{PreprocessingError, Result};
use crate::macros::ensure;
use crate::stream::FitChunks;

/// What [`FitChunks`] accumulates for an [`ImagePreprocessor`].
#[derive(Debug, Default)]
pub struct ImagePartial {
    ok: usize,
    sum: [u64; 3],
    sq: [u64; 3],
    rows: usize,
}

impl FitChunks for ImagePreprocessor {
    type Partial = ImagePartial;

    fn begin(&self) -> Result<ImagePartial> {
        self.validate()?;
        Ok(ImagePartial::default())
    }

    fn update(
        &self,
        p: &mut ImagePartial,
        _pass: usize,
        chunk: &DataFrame,
        offset: usize,
    ) -> Result<()> {
        if chunk.height() == 0 {
            return Ok(());
        }
        let raws = self.raws(chunk)?;
        if self.normalization == Normalization::Fitted {
            for start in (0..raws.len()).step_by(FIT_CHUNK) {
                let batch = self
                    .decode_u8(
                        &raws,
                        start..(start + FIT_CHUNK).min(raws.len()),
                        true,
                        true,
                    )
                    .map_err(|e| e.offset_rows(offset))?;
                p.ok += batch.failed.iter().filter(|&&f| !f).count();
                for c in 0..3 {
                    p.sum[c] += batch.sum[c];
                    p.sq[c] += batch.sq[c];
                }
            }
        }
        p.rows += chunk.height();
        Ok(())
    }

    fn finish(&mut self, p: ImagePartial) -> Result<()> {
        ensure!(p.rows > 0, PreprocessingError::EmptyFrame);
        let (mean, std) = match &self.normalization {
            Normalization::ImageNet => (IMAGENET_MEAN, IMAGENET_STD),
            Normalization::Custom { mean, std } => (*mean, *std),
            Normalization::None => ([0.0; 3], [1.0; 3]),
            Normalization::Fitted => self.fitted_stats(p.ok, &p.sum, &p.sq)?,
        };
        self.fitted = Some(ImageFitted { mean, std });
        Ok(())
    }
}

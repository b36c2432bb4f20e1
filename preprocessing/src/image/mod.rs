//! Parallel decoding, resizing and cropping of an image column into `u8` RGB pixels, plus the
//! per-channel statistics the deep image component normalises them with (per batch, on the
//! model's device).

mod decode;
mod fit_chunks;
mod resize;
mod stream;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use ndarray::Array4;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::contract::{self, Fit, Persist, Transform};
use crate::error::{PreprocessingError, Result};
use crate::macros::ensure;
pub use stream::{ImageBatches, ImageRows};

/// Rows decoded at a time by [`ImagePreprocessor::fit`] for fitted statistics.
const FIT_CHUNK: usize = 1024;

/// ImageNet channel means (RGB, on the `[0, 1]` scale).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (RGB, on the `[0, 1]` scale).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Where the image bytes come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImageSource {
    /// The column holds file paths (strings) relative to `root`.
    Paths {
        /// The directory the paths are relative to.
        root: PathBuf,
    },
    /// The column holds encoded image files (binary dtype).
    Bytes,
}

/// How pixel values (first scaled to `[0, 1]`) are normalised, per RGB channel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Normalization {
    /// `(x − mean) / std` with the ImageNet statistics (for pretrained backbones; default).
    #[default]
    ImageNet,
    /// `(x − mean) / std` with the mean and standard deviation of the training images.
    Fitted,
    /// Given statistics.
    Custom {
        /// Per-channel (RGB) means on the `[0, 1]` scale.
        mean: [f32; 3],
        /// Per-channel (RGB) standard deviations on the `[0, 1]` scale (positive).
        std: [f32; 3],
    },
    /// Values stay in `[0, 1]`.
    None,
}

/// What happens with a missing or undecodable image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// An error naming the file (or the row of a bytes column). The default.
    #[default]
    Fail,
    /// A mean image (every pixel the rounded channel means, i.e. about 0 after
    /// normalisation); the number of such images is reported in a warning on stderr and in
    /// [`ImageData::n_failed`].
    Zero,
}

/// The resampling filter of the resize.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    /// Nearest neighbour (box filter when downscaling).
    Nearest,
    /// Bilinear (the default).
    #[default]
    Triangle,
    /// Bicubic (Catmull-Rom spline).
    CatmullRom,
    /// Lanczos with a window of 3 pixels.
    Lanczos3,
}

/// Output of [`ImagePreprocessor::transform`] (or one batch of [`ImageBatches`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ImageData {
    /// RGB pixels `[n_rows, 3, height, width]` (NCHW), `0..=255`, not normalised: the model
    /// normalises each batch with [`ImageMeta::mean`] / [`ImageMeta::std`] (a quarter of the
    /// memory of normalised `f32`). [`ImageData::normalized`] gives the `f32` form.
    pub pixels: Array4<u8>,
    /// Number of rows replaced by mean images ([`OnError::Zero`]).
    pub n_failed: usize,
}

impl ImageData {
    /// `(x / 255 − mean) / std` per channel: normalised `f32` `[n_rows, 3, height, width]`.
    ///
    /// # Shapes
    /// - `self.pixels`: `[n_rows, 3, height, width]` u8; `mean`, `std`: `[3]` (RGB)
    /// - returns `[n_rows, 3, height, width]` f32
    pub fn normalized(&self, mean: [f32; 3], std: [f32; 3]) -> Array4<f32> {
        let lut: [[f32; 256]; 3] =
            std::array::from_fn(|c| std::array::from_fn(|v| (v as f32 / 255.0 - mean[c]) / std[c]));
        let mut out = Array4::<f32>::zeros(self.pixels.raw_dim());
        for (c, lut) in lut.iter().enumerate() {
            let src = self.pixels.index_axis(ndarray::Axis(1), c);
            let mut dst = out.index_axis_mut(ndarray::Axis(1), c);
            dst.zip_mut_with(&src, |d, &v| *d = lut[v as usize]);
        }
        out
    }
}

/// What an image model needs to know about the fitted preprocessor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageMeta {
    /// The image column.
    pub name: String,
    /// Output width in pixels.
    pub width: u32,
    /// Output height in pixels.
    pub height: u32,
    /// Per-channel (RGB) means on the `[0, 1]` scale: the model computes
    /// `(x / 255 − mean) / std`.
    pub mean: [f32; 3],
    /// Per-channel (RGB) standard deviations on the `[0, 1]` scale.
    pub std: [f32; 3],
}

/// Decodes an image column into `u8` RGB NCHW arrays and fits the statistics they are
/// normalised with.
///
/// Each image is read from a path column (relative to a root directory) or a bytes column,
/// decoded (PNG or JPEG), converted to RGB (grayscale is expanded to three channels), resized
/// so that it covers `width × height` with its aspect ratio kept (the shorter side fits), centre
/// cropped to `width × height` (default 224 × 224; smaller images are scaled up) and kept as
/// `u8` (like the reference's uint8 arrays). Scaling to `[0, 1]` and normalisation
/// ([`Normalization::ImageNet`] by default, or the mean/std fitted on the training images, see
/// [`meta`](Self::meta)) happen per batch inside the image model, on its device. Images are
/// decoded in parallel on all cores.
///
/// [`transform`](Self::transform) materialises every image; for data that does not fit in
/// memory, [`batches`](Self::batches) decodes batch by batch on a worker thread, `prefetch`
/// batches ahead.
///
/// A missing or corrupt image is an error naming the file ([`OnError::Fail`], the default) or,
/// with [`OnError::Zero`], a mean image counted in a warning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImagePreprocessor {
    img_col: String,
    source: ImageSource,
    width: u32,
    height: u32,
    normalization: Normalization,
    on_error: OnError,
    filter: Filter,
    fitted: Option<ImageFitted>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct ImageFitted {
    mean: [f32; 3],
    std: [f32; 3],
}

impl ImagePreprocessor {
    /// Images from the path column `img_col`, relative to `root`.
    pub fn from_paths(img_col: &str, root: impl Into<PathBuf>) -> Self {
        Self::new(img_col, ImageSource::Paths { root: root.into() })
    }

    /// Images from the bytes (binary) column `img_col`.
    pub fn from_bytes(img_col: &str) -> Self {
        Self::new(img_col, ImageSource::Bytes)
    }

    /// Images of the column `img_col` read from `source`, with the defaults: 224 × 224,
    /// [`Normalization::ImageNet`], [`OnError::Fail`], [`Filter::Triangle`].
    pub fn new(img_col: &str, source: ImageSource) -> Self {
        Self {
            img_col: img_col.to_owned(),
            source,
            width: 224,
            height: 224,
            normalization: Normalization::ImageNet,
            on_error: OnError::Fail,
            filter: Filter::Triangle,
            fitted: None,
        }
    }

    /// Output size (default 224 × 224).
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.width = width;
        self.height = height;
        self
    }
    /// How the model normalises the pixels (default [`Normalization::ImageNet`]).
    pub fn normalization(mut self, n: Normalization) -> Self {
        self.normalization = n;
        self
    }
    /// What a missing or undecodable image gives (default [`OnError::Fail`]).
    pub fn on_error(mut self, on_error: OnError) -> Self {
        self.on_error = on_error;
        self
    }
    /// The resampling filter of the resize (default [`Filter::Triangle`]).
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }
    /// Changes the root directory of a path column (e.g. after moving a saved pipeline).
    pub fn set_root(&mut self, root: impl Into<PathBuf>) {
        if let ImageSource::Paths { root: r } = &mut self.source {
            *r = root.into();
        }
    }

    /// The image column.
    pub fn column(&self) -> &str {
        &self.img_col
    }
    /// `(width, height)` of the output.
    pub fn output_size(&self) -> (u32, u32) {
        (self.width, self.height)
    }
    /// The per-channel `(mean, std)` used for normalisation (after `fit`).
    pub fn stats(&self) -> Result<([f32; 3], [f32; 3])> {
        let f = self.fitted()?;
        Ok((f.mean, f.std))
    }
    /// Column, output size and normalisation statistics (after `fit`), for the image model.
    pub fn meta(&self) -> Result<ImageMeta> {
        let f = self.fitted()?;
        Ok(ImageMeta {
            name: self.img_col.clone(),
            width: self.width,
            height: self.height,
            mean: f.mean,
            std: f.std,
        })
    }

    fn validate(&self) -> Result<()> {
        ensure!(
            self.width > 0 && self.height > 0,
            config("size"),
            "must be positive, got {}×{}",
            self.width,
            self.height
        );
        if let Normalization::Custom { std, .. } = &self.normalization {
            ensure!(
                std.iter().all(|s| *s > 0.0 && s.is_finite()),
                config("normalization.std"),
                "must be positive"
            );
        }
        Ok(())
    }

    /// The fitted state ([`NotFitted`](PreprocessingError::NotFitted) before `fit`).
    fn fitted(&self) -> Result<&ImageFitted> {
        contract::fitted_state(self.fitted.as_ref(), "ImagePreprocessor", |_| true)
    }

    /// Per-channel mean and standard deviation (of pixel values in `[0, 1]`) of `ok`
    /// decoded images whose byte values sum to `sum` and their squares to `sq`;
    /// [`AllNull`](PreprocessingError::AllNull) without any.
    fn fitted_stats(
        &self,
        ok: usize,
        sum: &[u64; 3],
        sq: &[u64; 3],
    ) -> Result<([f32; 3], [f32; 3])> {
        ensure!(ok > 0, PreprocessingError::all_null(&self.img_col));
        let n = (ok * (self.width * self.height) as usize) as f64 * 255.0;
        let mut mean = [0f32; 3];
        let mut std = [0f32; 3];
        for c in 0..3 {
            let m = sum[c] as f64 / n;
            let sq = sq[c] as f64 / (n * 255.0);
            mean[c] = m as f32;
            let s = (sq - m * m).max(0.0).sqrt();
            std[c] = if s > 1e-6 { s as f32 } else { 1.0 };
        }
        Ok((mean, std))
    }

    fn fit_inner(&mut self, df: &DataFrame, keep: bool) -> Result<Option<ImageData>> {
        self.validate()?;
        ensure!(df.height() > 0, PreprocessingError::EmptyFrame);
        let raws = self.raws(df)?;
        let (mean, std, kept) = match &self.normalization {
            Normalization::ImageNet => (IMAGENET_MEAN, IMAGENET_STD, None),
            Normalization::Custom { mean, std } => (*mean, *std, None),
            Normalization::None => ([0.0; 3], [1.0; 3], None),
            Normalization::Fitted => {
                // all rows at once when they are kept (fit_transform), else in chunks so that
                // fitting never holds more than a chunk of decoded images
                let chunk = if keep { raws.len() } else { FIT_CHUNK };
                let (mut ok, mut sum, mut sq) = (0usize, [0u64; 3], [0u64; 3]);
                let mut kept = None;
                for start in (0..raws.len()).step_by(chunk) {
                    let batch =
                        self.decode_u8(&raws, start..(start + chunk).min(raws.len()), true, true)?;
                    ok += batch.failed.iter().filter(|&&f| !f).count();
                    for c in 0..3 {
                        sum[c] += batch.sum[c];
                        sq[c] += batch.sq[c];
                    }
                    if keep {
                        kept = Some(batch);
                    }
                }
                let (mean, std) = self.fitted_stats(ok, &sum, &sq)?;
                (mean, std, kept)
            }
        };
        let fitted = ImageFitted { mean, std };
        let kept = kept.map(|batch| self.to_planar(batch, &fitted));
        self.fitted = Some(fitted);
        Ok(kept)
    }

    /// Decoding, resizing and cropping only: RGB bytes `[n_rows, height, width, 3]` (HWC, not
    /// normalised; needs no `fit`) and the number of zero images of failed rows
    /// ([`OnError::Zero`]). A compact form for caching or for other tools.
    ///
    /// # Shapes
    /// - `df`: `n_rows = df.height()` rows with the image column
    /// - returns `[n_rows, height, width, 3]` u8 and the number of failed rows
    pub fn decode_resize(&self, df: &DataFrame) -> Result<(ndarray::Array4<u8>, usize)> {
        self.validate()?;
        let raws = self.raws(df)?;
        let batch = self.decode_u8(&raws, 0..raws.len(), false, false)?;
        let n_failed = batch.failed.iter().filter(|&&f| f).count();
        let shape = (raws.len(), self.height as usize, self.width as usize, 3);
        let pixels = ndarray::Array4::from_shape_vec(shape, batch.data).expect("sized above");
        Ok((pixels, n_failed))
    }

    fn warn(&self, data: &ImageData, n: usize) {
        if data.n_failed > 0 {
            eprintln!(
                "widedeep warning: {} of {n} images of column `{}` could not be read and were replaced by mean images",
                data.n_failed, self.img_col
            );
        }
    }
}

impl Fit for ImagePreprocessor {
    /// Sets the normalisation statistics: fixed ones, or (for [`Normalization::Fitted`]) the
    /// per-channel mean and standard deviation of the images of `df`.
    fn fit(&mut self, df: &DataFrame) -> Result<()> {
        self.fit_inner(df, false).map(|_| ())
    }

    fn is_fitted(&self) -> bool {
        self.fitted.is_some()
    }
}

impl Transform for ImagePreprocessor {
    /// `u8` pixels, see [`ImageData`].
    type Output = ImageData;

    /// Decodes every image of `df`: `u8` `[n_rows, 3, height, width]`.
    ///
    /// # Shapes
    /// - `df`: `n_rows = df.height()` rows with the image column
    /// - returns `pixels`: `[n_rows, 3, height, width]` u8
    fn transform(&self, df: &DataFrame) -> Result<ImageData> {
        let fitted = self.fitted()?;
        let raws = self.raws(df)?;
        let data = self.decode_range(&raws, 0..raws.len(), fitted)?;
        self.warn(&data, raws.len());
        Ok(data)
    }

    /// [`fit`](Self::fit) then [`transform`](Self::transform), decoding each image once.
    ///
    /// # Shapes
    /// - `df`: `n_rows = df.height()` rows with the image column
    /// - returns `pixels`: `[n_rows, 3, height, width]` u8
    fn fit_transform(&mut self, df: &DataFrame) -> Result<ImageData> {
        match self.fit_inner(df, true)? {
            Some(data) => {
                self.warn(&data, df.height());
                Ok(data)
            }
            None => self.transform(df),
        }
    }
}

impl Persist for ImagePreprocessor {}

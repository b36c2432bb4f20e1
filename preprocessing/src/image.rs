//! Parallel decoding, resizing and cropping of an image column into `u8` RGB pixels, plus the
//! per-channel statistics the deep image component normalises them with (per batch, on the
//! model's device).

use std::path::PathBuf;
use std::sync::mpsc;

use image::DynamicImage;
use ndarray::Array4;
use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::column;
use crate::contract::{Fit, Persist, Transform};
use crate::error::{PreprocessingError, Result};
use crate::macros::{bail, ensure};

/// ImageNet channel means (RGB, on the `[0, 1]` scale).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (RGB, on the `[0, 1]` scale).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Where the image bytes come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImageSource {
    /// The column holds file paths (strings) relative to `root`.
    Paths { root: PathBuf },
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
    Custom { mean: [f32; 3], std: [f32; 3] },
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
    Nearest,
    /// Bilinear (the default).
    #[default]
    Triangle,
    CatmullRom,
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
    /// Output width and height in pixels.
    pub width: u32,
    pub height: u32,
    /// Per-channel (RGB) normalisation statistics on the `[0, 1]` scale: the model computes
    /// `(x / 255 − mean) / std`.
    pub mean: [f32; 3],
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

/// Encoded image of one row: a path or bytes.
enum Raw<'a> {
    Path(PathBuf),
    Bytes(&'a [u8]),
    Null,
}

/// The raw inputs of a column, owned so that a worker thread can hold them.
enum OwnedRaws {
    Paths(Vec<Option<PathBuf>>),
    Bytes(Vec<Option<Vec<u8>>>),
}

impl OwnedRaws {
    fn len(&self) -> usize {
        match self {
            OwnedRaws::Paths(v) => v.len(),
            OwnedRaws::Bytes(v) => v.len(),
        }
    }
    fn get(&self, i: usize) -> Raw<'_> {
        match self {
            OwnedRaws::Paths(v) => v[i].clone().map_or(Raw::Null, Raw::Path),
            OwnedRaws::Bytes(v) => v[i].as_deref().map_or(Raw::Null, Raw::Bytes),
        }
    }
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
    pub fn normalization(mut self, n: Normalization) -> Self {
        self.normalization = n;
        self
    }
    pub fn on_error(mut self, on_error: OnError) -> Self {
        self.on_error = on_error;
        self
    }
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

    fn fitted(&self) -> Result<&ImageFitted> {
        self.fitted
            .as_ref()
            .ok_or_else(|| PreprocessingError::not_fitted("ImagePreprocessor"))
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
    pub fn decode_resize(&self, df: &DataFrame) -> Result<(ndarray::Array4<u8>, usize)> {
        self.validate()?;
        let raws = self.raws(df)?;
        let batch = self.decode_u8(&raws, 0..raws.len(), false, false)?;
        let n_failed = batch.failed.iter().filter(|&&f| f).count();
        let shape = (raws.len(), self.height as usize, self.width as usize, 3);
        let pixels = ndarray::Array4::from_shape_vec(shape, batch.data).expect("sized above");
        Ok((pixels, n_failed))
    }

    /// Decodes the images of `df` batch by batch on a worker thread that stays up to
    /// `prefetch` batches ahead of the consumer, so that only those batches are in memory.
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

    fn warn(&self, data: &ImageData, n: usize) {
        if data.n_failed > 0 {
            eprintln!(
                "widedeep warning: {} of {n} images of column `{}` could not be read and were replaced by mean images",
                data.n_failed, self.img_col
            );
        }
    }

    fn raws<'a>(&self, df: &'a DataFrame) -> Result<Vec<Raw<'a>>> {
        let col = column::get(df, &self.img_col)?;
        match &self.source {
            ImageSource::Paths { root } => match col.dtype() {
                DataType::String => Ok(col
                    .str()?
                    .iter()
                    .map(|p| p.map_or(Raw::Null, |p| Raw::Path(root.join(p))))
                    .collect()),
                other => Err(column::wrong_type(&self.img_col, "string (paths)", other)),
            },
            ImageSource::Bytes => match col.dtype() {
                DataType::Binary => Ok(col
                    .binary()?
                    .iter()
                    .map(|b| b.map_or(Raw::Null, Raw::Bytes))
                    .collect()),
                other => Err(column::wrong_type(&self.img_col, "binary", other)),
            },
        }
    }

    fn owned_raws(&self, df: &DataFrame) -> Result<OwnedRaws> {
        let raws = self.raws(df)?;
        Ok(match &self.source {
            ImageSource::Paths { .. } => OwnedRaws::Paths(
                raws.into_iter()
                    .map(|r| match r {
                        Raw::Path(p) => Some(p),
                        _ => None,
                    })
                    .collect(),
            ),
            ImageSource::Bytes => OwnedRaws::Bytes(
                raws.into_iter()
                    .map(|r| match r {
                        Raw::Bytes(b) => Some(b.to_vec()),
                        _ => None,
                    })
                    .collect(),
            ),
        })
    }

    fn decode_range<R: RawSlice + ?Sized>(
        &self,
        raws: &R,
        range: std::ops::Range<usize>,
        stats: &ImageFitted,
    ) -> Result<ImageData> {
        Ok(self.to_planar(self.decode_u8(raws, range, false, true)?, stats))
    }

    /// Phase 1, in parallel: decode, resize and crop rows `range` into RGB bytes, planar
    /// `[n, 3, height, width]` or interleaved `[n, height, width, 3]`, with per-channel sums for
    /// fitting.
    fn decode_u8<R: RawSlice + ?Sized>(
        &self,
        raws: &R,
        range: std::ops::Range<usize>,
        with_stats: bool,
        planar: bool,
    ) -> Result<U8Batch> {
        let (w, h) = (self.width as usize, self.height as usize);
        let size = 3 * w * h;
        let n = range.len();
        let mut data = zeroed_pixels(n * size);
        let results: Vec<Result<([u64; 3], [u64; 3])>> = data
            .par_chunks_mut(size.max(1))
            .enumerate()
            .map(|(i, out)| {
                let pos = range.start + i;
                let img = self.decode_one(raws.raw(pos), raws.row_id(pos))?;
                resize_crop_into(&img, out, w, h, self.filter, planar);
                let mut sum = [0u64; 3];
                let mut sq = [0u64; 3];
                if !with_stats {
                    return Ok((sum, sq));
                }
                if planar {
                    for (c, plane) in out.chunks_exact(w * h).enumerate() {
                        if c > 0 && img.channels == 1 {
                            // gray: the three planes are equal
                            sum[c] = sum[0];
                            sq[c] = sq[0];
                            continue;
                        }
                        let (mut s1, mut s2) = (0u64, 0u64);
                        for &v in plane {
                            s1 += v as u64;
                            s2 += (v as u64) * (v as u64);
                        }
                        sum[c] = s1;
                        sq[c] = s2;
                    }
                } else {
                    for px in out.chunks_exact(3) {
                        for c in 0..3 {
                            let v = px[c] as u64;
                            sum[c] += v;
                            sq[c] += v * v;
                        }
                    }
                }
                Ok((sum, sq))
            })
            .collect();
        let mut failed = vec![false; n];
        let (mut sum, mut sq) = ([0u64; 3], [0u64; 3]);
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok((s1, s2)) => {
                    for c in 0..3 {
                        sum[c] += s1[c];
                        sq[c] += s2[c];
                    }
                }
                Err(e) => match self.on_error {
                    OnError::Fail => bail!(e),
                    OnError::Zero => failed[i] = true,
                },
            }
        }
        Ok(U8Batch {
            data,
            planar,
            failed,
            sum,
            sq,
        })
    }

    /// Phase 2, in parallel: interleaved RGB bytes `[n, h, w, 3]` → planar `[n, 3, h, w]`;
    /// failed rows become the mean image (the channel means rounded to bytes).
    fn to_planar(&self, batch: U8Batch, stats: &ImageFitted) -> ImageData {
        let (w, h) = (self.width as usize, self.height as usize);
        let plane = w * h;
        let n = batch.failed.len();
        let n_failed = batch.failed.iter().filter(|&&f| f).count();
        let fill: [u8; 3] =
            std::array::from_fn(|c| (stats.mean[c] * 255.0).round().clamp(0.0, 255.0) as u8);
        if batch.planar {
            let mut data = batch.data;
            if plane > 0 {
                for (img, _) in data
                    .chunks_exact_mut(3 * plane)
                    .zip(&batch.failed)
                    .filter(|(_, &f)| f)
                {
                    for (c, p) in img.chunks_exact_mut(plane).enumerate() {
                        p.fill(fill[c]);
                    }
                }
            }
            return ImageData {
                pixels: Array4::from_shape_vec((n, 3, h, w), data).expect("sized above"),
                n_failed,
            };
        }
        let mut data = vec![0u8; n * 3 * plane];
        if plane > 0 {
            data.par_chunks_mut(3 * plane)
                .zip(batch.data.par_chunks(3 * plane))
                .zip(batch.failed.par_iter())
                .for_each(|((out, src), &failed)| {
                    let (r, rest) = out.split_at_mut(plane);
                    let (g, b) = rest.split_at_mut(plane);
                    if failed {
                        r.fill(fill[0]);
                        g.fill(fill[1]);
                        b.fill(fill[2]);
                        return;
                    }
                    for (((px, r), g), b) in src
                        .chunks_exact(3)
                        .zip(r.iter_mut())
                        .zip(g.iter_mut())
                        .zip(b.iter_mut())
                    {
                        *r = px[0];
                        *g = px[1];
                        *b = px[2];
                    }
                });
        }
        ImageData {
            pixels: Array4::from_shape_vec((n, 3, h, w), data).expect("sized above"),
            n_failed,
        }
    }

    /// Decodes one image into 8-bit gray or RGB.
    fn decode_one(&self, raw: Raw<'_>, row: usize) -> Result<Pixels> {
        let img = match raw {
            Raw::Null => {
                bail!(PreprocessingError::NullValue {
                    column: self.img_col.clone(),
                    row,
                })
            }
            Raw::Path(path) => {
                let bytes = std::fs::read(&path).map_err(|e| PreprocessingError::BadFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                image::load_from_memory(&bytes).map_err(|e| PreprocessingError::BadFile {
                    path,
                    reason: e.to_string(),
                })?
            }
            Raw::Bytes(bytes) => {
                image::load_from_memory(bytes).map_err(|e| PreprocessingError::BadImage {
                    column: self.img_col.clone(),
                    row,
                    reason: e.to_string(),
                })?
            }
        };
        let (w, h) = (img.width() as usize, img.height() as usize);
        Ok(match img {
            DynamicImage::ImageLuma8(g) => Pixels {
                data: g.into_raw(),
                w,
                h,
                channels: 1,
            },
            DynamicImage::ImageLumaA8(_) | DynamicImage::ImageLuma16(_) => Pixels {
                data: img.to_luma8().into_raw(),
                w,
                h,
                channels: 1,
            },
            DynamicImage::ImageRgb8(rgb) => Pixels {
                data: rgb.into_raw(),
                w,
                h,
                channels: 3,
            },
            other => Pixels {
                data: other.to_rgb8().into_raw(),
                w,
                h,
                channels: 3,
            },
        })
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
    fn transform(&self, df: &DataFrame) -> Result<ImageData> {
        let fitted = self.fitted()?;
        let raws = self.raws(df)?;
        let data = self.decode_range(&raws, 0..raws.len(), fitted)?;
        self.warn(&data, raws.len());
        Ok(data)
    }

    /// [`fit`](Self::fit) then [`transform`](Self::transform), decoding each image once.
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

/// Decoded RGB bytes of a batch (phase 1).
struct U8Batch {
    /// `[n, 3, height, width]` when `planar`, else `[n, height, width, 3]`.
    data: Vec<u8>,
    planar: bool,
    failed: Vec<bool>,
    /// Per-channel sums of the values and their squares over the good rows.
    sum: [u64; 3],
    sq: [u64; 3],
}

/// A decoded 8-bit image, gray (`channels` 1) or RGB (3), row-major interleaved.
struct Pixels {
    data: Vec<u8>,
    w: usize,
    h: usize,
    channels: usize,
}

/// Row access shared by borrowed and owned raw inputs.
trait RawSlice: Sync {
    fn raw(&self, i: usize) -> Raw<'_>;
    /// The DataFrame row of position `i` (for error messages).
    fn row_id(&self, i: usize) -> usize {
        i
    }
}

/// Chosen rows of owned raw inputs, in the given order.
struct Picked<'a> {
    raws: &'a OwnedRaws,
    rows: &'a [usize],
}

impl RawSlice for Picked<'_> {
    fn raw(&self, i: usize) -> Raw<'_> {
        self.raws.get(self.rows[i])
    }
    fn row_id(&self, i: usize) -> usize {
        self.rows[i]
    }
}

impl RawSlice for Vec<Raw<'_>> {
    fn raw(&self, i: usize) -> Raw<'_> {
        match &self[i] {
            Raw::Path(p) => Raw::Path(p.clone()),
            Raw::Bytes(b) => Raw::Bytes(b),
            Raw::Null => Raw::Null,
        }
    }
}

impl RawSlice for OwnedRaws {
    fn raw(&self, i: usize) -> Raw<'_> {
        self.get(i)
    }
}

/// Rows decoded at a time by [`ImagePreprocessor::fit`] for fitted statistics.
const FIT_CHUNK: usize = 1024;

type TapsKey = (usize, usize, usize, usize, Filter);
/// A zeroed byte buffer for decoded images. Large buffers come straight from the kernel
/// (untouched zero pages); on Linux they are marked for transparent huge pages before the first
/// write, so that filling e.g. 150 MB of 224 × 224 images takes a few hundred page faults
/// instead of tens of thousands.
fn zeroed_pixels(len: usize) -> Vec<u8> {
    let buf = vec![0u8; len];
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        if len >= 4 * HUGE {
            let start = buf.as_ptr() as usize;
            let aligned = start.div_ceil(HUGE) * HUGE;
            let end = (start + len) / HUGE * HUGE;
            if end > aligned {
                // SAFETY: a hint on whole pages inside `buf`'s allocation; it changes neither
                // the contents nor the validity of the memory (errors are ignored: it is advice)
                unsafe {
                    libc::madvise(
                        aligned as *mut libc::c_void,
                        end - aligned,
                        libc::MADV_HUGEPAGE,
                    );
                }
            }
        }
    }
    buf
}

/// Horizontal and vertical taps of one resize.
type SharedTaps = std::rc::Rc<(Vec<Taps>, Vec<Taps>)>;

/// The contributions of source pixels to one output coordinate.
struct Taps {
    start: usize,
    weights: Vec<f32>,
}

fn kernel(filter: Filter, x: f64) -> f64 {
    let x = x.abs();
    match filter {
        Filter::Nearest => f64::from(x < 0.5),
        Filter::Triangle => (1.0 - x).max(0.0),
        Filter::CatmullRom => {
            if x < 1.0 {
                1.5 * x * x * x - 2.5 * x * x + 1.0
            } else if x < 2.0 {
                -0.5 * x * x * x + 2.5 * x * x - 4.0 * x + 2.0
            } else {
                0.0
            }
        }
        Filter::Lanczos3 => {
            if x < 1e-9 {
                1.0
            } else if x < 3.0 {
                let px = std::f64::consts::PI * x;
                3.0 * px.sin() * (px / 3.0).sin() / (px * px)
            } else {
                0.0
            }
        }
    }
}

/// Taps for `out_len` outputs covering source positions `offset .. offset + span` of a
/// `src_len`-pixel axis. Downscaling widens the kernel (antialiasing).
fn taps(src_len: usize, offset: f64, span: f64, out_len: usize, filter: Filter) -> Vec<Taps> {
    let ratio = span / out_len as f64;
    let stretch = ratio.max(1.0);
    let support = match filter {
        Filter::Nearest => 0.5,
        Filter::Triangle => 1.0,
        Filter::CatmullRom => 2.0,
        Filter::Lanczos3 => 3.0,
    } * stretch;
    (0..out_len)
        .map(|o| {
            let centre = offset + (o as f64 + 0.5) * ratio;
            if filter == Filter::Nearest && stretch == 1.0 {
                let i = (centre.floor() as usize).min(src_len - 1);
                return Taps {
                    start: i,
                    weights: vec![1.0],
                };
            }
            let lo = ((centre - support).floor().max(0.0)) as usize;
            let hi = ((centre + support).ceil() as usize).min(src_len);
            let mut w: Vec<f64> = (lo..hi)
                .map(|i| kernel(filter, (i as f64 + 0.5 - centre) / stretch))
                .collect();
            let total: f64 = w.iter().sum();
            if total.abs() < 1e-12 {
                let i = (centre.floor().max(0.0) as usize).min(src_len - 1);
                return Taps {
                    start: i,
                    weights: vec![1.0],
                };
            }
            w.iter_mut().for_each(|v| *v /= total);
            // trim zero weights at both ends
            let first = w.iter().position(|v| v.abs() > 1e-9).unwrap_or(0);
            let last = w.iter().rposition(|v| v.abs() > 1e-9).unwrap_or(0);
            Taps {
                start: lo + first,
                weights: w[first..=last].iter().map(|&v| v as f32).collect(),
            }
        })
        .collect()
}

/// Scales `img` so that it covers `w × h` with its aspect ratio kept, centre crops, and writes
/// RGB bytes into `out`, planar `[3, h, w]` or interleaved `[h, w, 3]` (a separable resampler
/// over the cropped region only; gray images are expanded to three equal channels).
fn resize_crop_into(
    img: &Pixels,
    out: &mut [u8],
    w: usize,
    h: usize,
    filter: Filter,
    planar: bool,
) {
    let (iw, ih, ch) = (img.w, img.h, img.channels);
    if iw == 0 || ih == 0 || w == 0 || h == 0 {
        return;
    }
    let scale = (w as f64 / iw as f64).max(h as f64 / ih as f64);
    let (span_x, span_y) = (w as f64 / scale, h as f64 / scale);
    let (off_x, off_y) = ((iw as f64 - span_x) / 2.0, (ih as f64 - span_y) / 2.0);
    // images of one data set mostly share a size: reuse the taps of the previous image
    thread_local! {
        static TAPS: std::cell::RefCell<Option<(TapsKey, SharedTaps)>> =
            const { std::cell::RefCell::new(None) };
    }
    let key: TapsKey = (iw, ih, w, h, filter);
    let both = TAPS.with(|cell| {
        let mut cell = cell.borrow_mut();
        match &*cell {
            Some((k, t)) if *k == key => t.clone(),
            _ => {
                let t = std::rc::Rc::new((
                    taps(iw, off_x, span_x, w, filter),
                    taps(ih, off_y, span_y, h, filter),
                ));
                *cell = Some((key, t.clone()));
                t
            }
        }
    });
    let (tx, ty) = (&both.0, &both.1);
    let row_lo = ty.iter().map(|t| t.start).min().unwrap_or(0);
    let row_hi = ty
        .iter()
        .map(|t| t.start + t.weights.len())
        .max()
        .unwrap_or(0);
    // horizontal pass over the source rows that the vertical taps read: [rows, w, ch]
    let mut tmp = vec![0f32; (row_hi - row_lo) * w * ch];
    for (r, y) in (row_lo..row_hi).enumerate() {
        let src = &img.data[y * iw * ch..(y + 1) * iw * ch];
        let dst = &mut tmp[r * w * ch..(r + 1) * w * ch];
        for (x, t) in tx.iter().enumerate() {
            for c in 0..ch {
                let mut acc = 0f32;
                for (k, &wt) in t.weights.iter().enumerate() {
                    acc += wt * src[(t.start + k) * ch + c] as f32;
                }
                dst[x * ch + c] = acc;
            }
        }
    }
    // vertical pass into RGB bytes
    let mut acc = vec![0f32; w * ch];
    for (y, t) in ty.iter().enumerate() {
        acc.iter_mut().for_each(|a| *a = 0.0);
        for (k, &wt) in t.weights.iter().enumerate() {
            let r = t.start + k - row_lo;
            let src = &tmp[r * w * ch..(r + 1) * w * ch];
            for (a, &v) in acc.iter_mut().zip(src) {
                *a += wt * v;
            }
        }
        let byte = |a: f32| (a + 0.5).clamp(0.0, 255.0) as u8; // round half up
        if planar {
            let plane = w * h;
            for c in 0..ch {
                let dst = &mut out[c * plane + y * w..c * plane + (y + 1) * w];
                for (x, d) in dst.iter_mut().enumerate() {
                    *d = byte(acc[x * ch + c]);
                }
            }
            continue;
        }
        let dst = &mut out[y * w * 3..(y + 1) * w * 3];
        if ch == 3 {
            for (d, &a) in dst.iter_mut().zip(&acc) {
                *d = (a + 0.5).clamp(0.0, 255.0) as u8; // round half up
            }
        } else {
            for (px, &a) in dst.chunks_exact_mut(3).zip(&acc) {
                let v = (a + 0.5).clamp(0.0, 255.0) as u8;
                px.copy_from_slice(&[v, v, v]);
            }
        }
    }
    if planar && ch == 1 {
        let plane = w * h;
        let (first, rest) = out.split_at_mut(plane);
        rest[..plane].copy_from_slice(first);
        rest[plane..2 * plane].copy_from_slice(first);
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
    pub fn is_empty(&self) -> bool {
        self.raws.len() == 0
    }
    /// `(width, height)` of the decoded images.
    pub fn output_size(&self) -> (u32, u32) {
        self.prep.output_size()
    }
    /// Decodes `rows` (indices into the DataFrame, any order, repeats allowed) in parallel:
    /// `u8` `[rows.len(), 3, height, width]`, equal to those rows of
    /// [`ImagePreprocessor::transform`]. Errors name the file or row.
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

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, ImageFormat, Luma, Rgb, RgbImage};
    use std::io::Cursor;

    fn png(img: &image::DynamicImage) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        img.write_to(&mut buf, ImageFormat::Png).unwrap();
        buf.into_inner()
    }

    /// A 6×4 RGB image whose red channel encodes x and green encodes y.
    fn gradient() -> image::DynamicImage {
        image::DynamicImage::ImageRgb8(RgbImage::from_fn(6, 4, |x, y| {
            Rgb([(x * 40) as u8, (y * 60) as u8, 100])
        }))
    }

    fn bytes_frame(images: Vec<Option<Vec<u8>>>) -> DataFrame {
        let col = Column::new("img".into(), images);
        DataFrame::new(col.len(), vec![col]).unwrap()
    }

    #[test]
    fn center_crop_without_resize_keeps_the_middle_columns() {
        let df = bytes_frame(vec![Some(png(&gradient()))]);
        let mut p = ImagePreprocessor::from_bytes("img")
            .size(4, 4)
            .normalization(Normalization::None);
        let (raw, _) = p.decode_resize(&df).unwrap();
        assert_eq!(raw.shape(), &[1, 4, 4, 3]);
        assert_eq!(raw[[0, 0, 0, 0]], 40); // column 1 of the source
        let d = p.fit_transform(&df).unwrap();
        assert_eq!(d.pixels.shape(), &[1, 3, 4, 4]);
        // columns 1..5 of the 6-wide image, planar
        let red: Vec<u8> = (0..4).map(|x| d.pixels[[0, 0, 0, x]]).collect();
        assert_eq!(red, vec![40, 80, 120, 160]);
        assert_eq!(d.pixels[[0, 1, 3, 0]], 180);
        assert_eq!(d.pixels[[0, 2, 0, 0]], 100);
        let (mean, std) = p.stats().unwrap();
        assert_eq!((mean, std), ([0.0; 3], [1.0; 3]));
        let f = d.normalized(mean, std);
        assert!((f[[0, 1, 3, 0]] - 180.0 / 255.0).abs() < 1e-6);
    }

    #[test]
    fn grayscale_smaller_than_the_crop_is_upscaled_to_rgb() {
        let gray = image::DynamicImage::ImageLuma8(GrayImage::from_pixel(3, 2, Luma([51])));
        let df = bytes_frame(vec![Some(png(&gray))]);
        let mut p = ImagePreprocessor::from_bytes("img").size(8, 8);
        let d = p.fit_transform(&df).unwrap();
        assert_eq!(d.pixels.shape(), &[1, 3, 8, 8]);
        let meta = p.meta().unwrap();
        assert_eq!((meta.mean, meta.std), (IMAGENET_MEAN, IMAGENET_STD));
        let f = d.normalized(meta.mean, meta.std);
        for c in 0..3 {
            assert_eq!(d.pixels[[0, c, 5, 7]], 51);
            let want = (0.2 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
            assert!((f[[0, c, 5, 7]] - want).abs() < 1e-5);
        }
    }

    #[test]
    fn fitted_statistics_and_save_load() {
        let a = image::DynamicImage::ImageLuma8(GrayImage::from_pixel(4, 4, Luma([0])));
        let b = image::DynamicImage::ImageLuma8(GrayImage::from_pixel(4, 4, Luma([255])));
        let df = bytes_frame(vec![Some(png(&a)), Some(png(&b))]);
        let mut p = ImagePreprocessor::from_bytes("img")
            .size(4, 4)
            .normalization(Normalization::Fitted);
        let d = p.fit_transform(&df).unwrap();
        let (mean, std) = p.stats().unwrap();
        assert!(mean.iter().all(|m| (m - 0.5).abs() < 1e-6), "{mean:?}");
        assert!(std.iter().all(|s| (s - 0.5).abs() < 1e-6), "{std:?}");
        let f = d.normalized(mean, std);
        assert!((f[[0, 0, 0, 0]] + 1.0).abs() < 1e-6);
        assert!((f[[1, 2, 3, 3]] - 1.0).abs() < 1e-6);
        // fit alone (chunked statistics) gives the same statistics
        let mut alone = ImagePreprocessor::from_bytes("img")
            .size(4, 4)
            .normalization(Normalization::Fitted);
        alone.fit(&df).unwrap();
        assert_eq!(alone.stats().unwrap(), (mean, std));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("img.json");
        p.save(&path).unwrap();
        let q = ImagePreprocessor::load(&path).unwrap();
        assert_eq!(p, q);
        assert_eq!(q.transform(&df).unwrap(), d);
    }

    #[test]
    fn missing_and_corrupt_images_fail_or_become_zero() {
        let dir = tempfile::tempdir().unwrap();
        gradient().save(dir.path().join("a.png")).unwrap();
        std::fs::write(dir.path().join("bad.png"), b"not a png").unwrap();
        let df = df!("p" => ["a.png", "missing.png", "bad.png"]).unwrap();
        let mut p = ImagePreprocessor::from_paths("p", dir.path()).size(4, 4);
        p.fit(&df).unwrap();
        let err = p.transform(&df).unwrap_err().to_string();
        assert!(err.contains("missing.png"), "{err}");
        let only_bad = df!("p" => ["bad.png"]).unwrap();
        let err = p.transform(&only_bad).unwrap_err().to_string();
        assert!(err.contains("bad.png"), "{err}");
        let z = p.clone().on_error(OnError::Zero).transform(&df).unwrap();
        assert_eq!(z.n_failed, 2);
        // failed rows are the mean image: about 0 once normalised
        let f = z.normalized(IMAGENET_MEAN, IMAGENET_STD);
        assert!(f
            .slice(ndarray::s![1..3, .., .., ..])
            .iter()
            .all(|&v| v.abs() < 0.01));
        assert!(f
            .slice(ndarray::s![0, .., .., ..])
            .iter()
            .any(|&v| v.abs() > 0.1));
        let corrupt = bytes_frame(vec![Some(b"\x89PNG garbage".to_vec())]);
        let mut b = ImagePreprocessor::from_bytes("img");
        let err = b.fit_transform(&corrupt).unwrap_err();
        assert!(
            matches!(err, PreprocessingError::BadImage { row: 0, .. }),
            "{err}"
        );
        // wrong dtypes name the column
        let err = ImagePreprocessor::from_bytes("p")
            .fit_transform(&df)
            .unwrap_err();
        assert!(err.to_string().contains("`p`"), "{err}");
    }

    #[test]
    fn rows_decode_any_rows_like_the_full_transform() {
        let imgs: Vec<Option<Vec<u8>>> = (0..5)
            .map(|i| {
                Some(png(&image::DynamicImage::ImageLuma8(
                    GrayImage::from_pixel(5, 5, Luma([i * 40])),
                )))
            })
            .collect();
        let df = bytes_frame(imgs);
        let mut p = ImagePreprocessor::from_bytes("img").size(3, 3);
        let full = p.fit_transform(&df).unwrap();
        let rows = p.rows(&df).unwrap();
        assert_eq!(rows.len(), 5);
        let got = rows.decode(&[4, 1, 1]).unwrap();
        assert_eq!(got.pixels.shape(), &[3, 3, 3, 3]);
        for (k, r) in [4, 1, 1].into_iter().enumerate() {
            assert_eq!(
                got.pixels.index_axis(ndarray::Axis(0), k),
                full.pixels.index_axis(ndarray::Axis(0), r)
            );
        }
        assert!(rows.decode(&[5]).is_err());
        // errors name the DataFrame row, not the position in the batch
        let bad = bytes_frame(vec![Some(png(&gradient())), Some(b"junk".to_vec())]);
        let err = p.rows(&bad).unwrap().decode(&[1]).unwrap_err();
        assert!(
            matches!(err, PreprocessingError::BadImage { row: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn batches_equal_the_full_transform() {
        let imgs: Vec<Option<Vec<u8>>> = (0..7)
            .map(|i| {
                Some(png(&image::DynamicImage::ImageLuma8(
                    GrayImage::from_pixel(5, 5, Luma([i * 30])),
                )))
            })
            .collect();
        let df = bytes_frame(imgs);
        let mut p = ImagePreprocessor::from_bytes("img").size(3, 3);
        let full = p.fit_transform(&df).unwrap();
        let batches = p.batches(&df, 3, 2).unwrap();
        assert_eq!(batches.n_batches(), 3);
        let parts: Vec<ImageData> = batches.map(|b| b.unwrap()).collect();
        assert_eq!(parts.len(), 3);
        let views: Vec<_> = parts.iter().map(|p| p.pixels.view()).collect();
        let joined = ndarray::concatenate(ndarray::Axis(0), &views).unwrap();
        assert_eq!(joined, full.pixels);
        // dropping a half-consumed iterator stops the worker
        let mut it = p.batches(&df, 1, 1).unwrap();
        assert!(it.next().is_some());
        drop(it);
    }
}

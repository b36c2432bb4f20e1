//! Parallel decoding, resizing and normalisation of an image column for the deep image
//! component.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use image::imageops::{self, FilterType};
use image::RgbImage;
use ndarray::Array4;
use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::column;
use crate::error::{PreprocessingError, Result};
use crate::persist;

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
    /// A zero image (all outputs 0, i.e. the mean image after normalisation); the number of
    /// such images is reported in a warning on stderr and in [`ImageData::n_failed`].
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

impl Filter {
    fn to_image(self) -> FilterType {
        match self {
            Filter::Nearest => FilterType::Nearest,
            Filter::Triangle => FilterType::Triangle,
            Filter::CatmullRom => FilterType::CatmullRom,
            Filter::Lanczos3 => FilterType::Lanczos3,
        }
    }
}

/// Output of [`ImagePreprocessor::transform`] (or one batch of [`ImageBatches`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ImageData {
    /// Normalised RGB pixels `[n_rows, 3, height, width]` (NCHW).
    pub pixels: Array4<f32>,
    /// Number of rows replaced by zero images ([`OnError::Zero`]).
    pub n_failed: usize,
}

/// Decodes an image column into normalised `f32` NCHW arrays.
///
/// Each image is read from a path column (relative to a root directory) or a bytes column,
/// decoded (PNG or JPEG), converted to RGB (grayscale is expanded to three channels), resized
/// so that it covers `width × height` with its aspect ratio kept (the shorter side fits), centre
/// cropped to `width × height` (default 224 × 224; smaller images are scaled up), scaled to
/// `[0, 1]` and normalised ([`Normalization::ImageNet`] by default, or the mean/std fitted on
/// the training images). Images are decoded in parallel on all cores.
///
/// [`transform`](Self::transform) materialises every image; for data that does not fit in
/// memory, [`batches`](Self::batches) decodes batch by batch on a worker thread, `prefetch`
/// batches ahead.
///
/// A missing or corrupt image is an error naming the file ([`OnError::Fail`], the default) or,
/// with [`OnError::Zero`], a zero image counted in a warning.
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
    pub fn is_fitted(&self) -> bool {
        self.fitted.is_some()
    }
    /// The per-channel `(mean, std)` used for normalisation (after `fit`).
    pub fn stats(&self) -> Result<([f32; 3], [f32; 3])> {
        let f = self.fitted()?;
        Ok((f.mean, f.std))
    }

    fn validate(&self) -> Result<()> {
        if self.width == 0 || self.height == 0 {
            return Err(PreprocessingError::config(
                "size",
                format!("must be positive, got {}×{}", self.width, self.height),
            ));
        }
        if let Normalization::Custom { std, .. } = &self.normalization {
            if std.iter().any(|s| !(*s > 0.0 && s.is_finite())) {
                return Err(PreprocessingError::config(
                    "normalization.std",
                    "must be positive",
                ));
            }
        }
        Ok(())
    }

    fn fitted(&self) -> Result<&ImageFitted> {
        self.fitted
            .as_ref()
            .ok_or_else(|| PreprocessingError::not_fitted("ImagePreprocessor"))
    }

    /// Sets the normalisation statistics: fixed ones, or (for [`Normalization::Fitted`]) the
    /// per-channel mean and standard deviation of the images of `df`.
    pub fn fit(&mut self, df: &DataFrame) -> Result<&mut Self> {
        self.fit_inner(df, false).map(|_| self)
    }

    fn fit_inner(&mut self, df: &DataFrame, keep: bool) -> Result<Option<ImageData>> {
        self.validate()?;
        if df.height() == 0 {
            return Err(PreprocessingError::EmptyFrame);
        }
        let raws = self.raws(df)?;
        let (mean, std, kept) = match &self.normalization {
            Normalization::ImageNet => (IMAGENET_MEAN, IMAGENET_STD, None),
            Normalization::Custom { mean, std } => (*mean, *std, None),
            Normalization::None => ([0.0; 3], [1.0; 3], None),
            Normalization::Fitted => {
                let unit = ImageFitted {
                    mean: [0.0; 3],
                    std: [1.0; 3],
                };
                let (data, failed) = self.decode_rows(&raws, 0..raws.len(), &unit)?;
                let plane = (self.width * self.height) as usize;
                let ok = data.pixels.shape()[0] - data.n_failed;
                if ok == 0 {
                    return Err(PreprocessingError::all_null(&self.img_col));
                }
                let mut sum = [0f64; 3];
                let mut sq = [0f64; 3];
                for img in data.pixels.as_slice().expect("standard").chunks(3 * plane) {
                    for c in 0..3 {
                        for &v in &img[c * plane..(c + 1) * plane] {
                            sum[c] += v as f64;
                            sq[c] += (v as f64) * (v as f64);
                        }
                    }
                }
                // zero images of failed rows add nothing to the sums; divide by the good ones
                let n = (ok * plane) as f64;
                let mut mean = [0f32; 3];
                let mut std = [0f32; 3];
                for c in 0..3 {
                    let m = sum[c] / n;
                    mean[c] = m as f32;
                    let s = (sq[c] / n - m * m).max(0.0).sqrt();
                    std[c] = if s > 1e-6 { s as f32 } else { 1.0 };
                }
                (mean, std, keep.then_some((data, failed)))
            }
        };
        let fitted = ImageFitted { mean, std };
        let kept = kept.map(|(mut data, failed)| {
            normalize_in_place(
                &mut data,
                &failed,
                &fitted,
                (self.width * self.height) as usize,
            );
            data
        });
        self.fitted = Some(fitted);
        Ok(kept)
    }

    /// Decodes every image of `df`: `[n_rows, 3, height, width]`.
    pub fn transform(&self, df: &DataFrame) -> Result<ImageData> {
        let fitted = self.fitted()?;
        let raws = self.raws(df)?;
        let data = self.decode_range(&raws, 0..raws.len(), fitted)?;
        self.warn(&data, raws.len());
        Ok(data)
    }

    /// [`fit`](Self::fit) then [`transform`](Self::transform), decoding each image once.
    pub fn fit_transform(&mut self, df: &DataFrame) -> Result<ImageData> {
        match self.fit_inner(df, true)? {
            Some(data) => {
                self.warn(&data, df.height());
                Ok(data)
            }
            None => self.transform(df),
        }
    }

    /// Decodes the images of `df` batch by batch on a worker thread that stays up to
    /// `prefetch` batches ahead of the consumer, so that only those batches are in memory.
    pub fn batches(
        &self,
        df: &DataFrame,
        batch_size: usize,
        prefetch: usize,
    ) -> Result<ImageBatches> {
        if batch_size == 0 {
            return Err(PreprocessingError::config("batch_size", "must be ≥ 1"));
        }
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

    fn warn(&self, data: &ImageData, n: usize) {
        if data.n_failed > 0 {
            eprintln!(
                "widedeep warning: {} of {n} images of column `{}` could not be read and were replaced by zero images",
                data.n_failed, self.img_col
            );
        }
    }

    /// Saves the preprocessor as JSON.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        persist::save_json(self, path.as_ref())
    }

    /// Loads a preprocessor saved by [`save`](Self::save).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        persist::load_json(path.as_ref())
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
        Ok(self.decode_rows(raws, range, stats)?.0)
    }

    /// Decodes rows `range`; also returns which rows failed (and are zero images).
    fn decode_rows<R: RawSlice + ?Sized>(
        &self,
        raws: &R,
        range: std::ops::Range<usize>,
        stats: &ImageFitted,
    ) -> Result<(ImageData, Vec<bool>)> {
        let (w, h) = (self.width as usize, self.height as usize);
        let plane = w * h;
        let n = range.len();
        let mut pixels = Array4::<f32>::zeros((n, 3, h, w));
        let slice = pixels.as_slice_mut().expect("standard layout");
        let results: Vec<std::result::Result<(), PreprocessingError>> = slice
            .par_chunks_mut(3 * plane)
            .enumerate()
            .map(|(i, out)| {
                let row = range.start + i;
                let img = self.decode_one(raws.raw(row), row)?;
                write_normalized(&img, out, plane, stats);
                Ok(())
            })
            .collect();
        let mut failed = vec![false; n];
        for (i, r) in results.into_iter().enumerate() {
            if let Err(e) = r {
                match self.on_error {
                    OnError::Fail => return Err(e),
                    OnError::Zero => failed[i] = true,
                }
            }
        }
        let n_failed = failed.iter().filter(|&&f| f).count();
        Ok((ImageData { pixels, n_failed }, failed))
    }

    /// Decodes, converts to RGB, resizes (aspect kept, covering) and centre crops one image.
    fn decode_one(&self, raw: Raw<'_>, row: usize) -> Result<RgbImage> {
        let img = match raw {
            Raw::Null => {
                return Err(PreprocessingError::NullValue {
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
        let img = img.to_rgb8();
        Ok(resize_crop(
            &img,
            self.width,
            self.height,
            self.filter.to_image(),
        ))
    }
}

/// Row access shared by borrowed and owned raw inputs.
trait RawSlice: Sync {
    fn raw(&self, i: usize) -> Raw<'_>;
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

/// Scales `img` so that it covers `w × h` with its aspect ratio kept, then centre crops. Only
/// the source region that survives the crop is resampled.
fn resize_crop(img: &RgbImage, w: u32, h: u32, filter: FilterType) -> RgbImage {
    let (iw, ih) = img.dimensions();
    if (iw, ih) == (w, h) {
        return img.clone();
    }
    let scale = (w as f64 / iw as f64).max(h as f64 / ih as f64);
    let cw = ((w as f64 / scale).round() as u32).clamp(1, iw);
    let ch = ((h as f64 / scale).round() as u32).clamp(1, ih);
    let x0 = (iw - cw) / 2;
    let y0 = (ih - ch) / 2;
    if (cw, ch) == (w, h) {
        return imageops::crop_imm(img, x0, y0, w, h).to_image();
    }
    if (x0, y0, cw, ch) == (0, 0, iw, ih) {
        return imageops::resize(img, w, h, filter);
    }
    let view = imageops::crop_imm(img, x0, y0, cw, ch).to_image();
    imageops::resize(&view, w, h, filter)
}

/// Writes `img` as planar RGB `(x / 255 − mean) / std` into `out` (`3 * plane` values).
fn write_normalized(img: &RgbImage, out: &mut [f32], plane: usize, stats: &ImageFitted) {
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * stats.std[c]));
    let shift: [f32; 3] = std::array::from_fn(|c| stats.mean[c] / stats.std[c]);
    for (i, px) in img.as_raw().chunks_exact(3).enumerate() {
        r[i] = px[0] as f32 * scale[0] - shift[0];
        g[i] = px[1] as f32 * scale[1] - shift[1];
        b[i] = px[2] as f32 * scale[2] - shift[2];
    }
}

/// Normalises `[0, 1]` pixels in place; rows that failed stay zero.
fn normalize_in_place(data: &mut ImageData, failed: &[bool], stats: &ImageFitted, plane: usize) {
    let slice = data.pixels.as_slice_mut().expect("standard layout");
    slice
        .par_chunks_mut(3 * plane)
        .zip(failed)
        .for_each(|(img, &failed)| {
            if failed {
                return;
            }
            for c in 0..3 {
                let (m, s) = (stats.mean[c], stats.std[c]);
                img[c * plane..(c + 1) * plane]
                    .iter_mut()
                    .for_each(|v| *v = (*v - m) / s);
            }
        });
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
    use image::{GrayImage, ImageFormat, Luma, Rgb};
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
        let d = p.fit_transform(&df).unwrap();
        assert_eq!(d.pixels.shape(), &[1, 3, 4, 4]);
        // columns 1..5 of the 6-wide image
        let red: Vec<f32> = (0..4).map(|x| d.pixels[[0, 0, 0, x]]).collect();
        let want: Vec<f32> = (1..5).map(|x| (x * 40) as f32 / 255.0).collect();
        assert!(
            red.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6),
            "{red:?}"
        );
        assert!((d.pixels[[0, 1, 3, 0]] - 180.0 / 255.0).abs() < 1e-6);
        assert!((d.pixels[[0, 2, 0, 0]] - 100.0 / 255.0).abs() < 1e-6);
    }

    #[test]
    fn grayscale_smaller_than_the_crop_is_upscaled_to_rgb() {
        let gray = image::DynamicImage::ImageLuma8(GrayImage::from_pixel(3, 2, Luma([51])));
        let df = bytes_frame(vec![Some(png(&gray))]);
        let mut p = ImagePreprocessor::from_bytes("img").size(8, 8);
        let d = p.fit_transform(&df).unwrap();
        assert_eq!(d.pixels.shape(), &[1, 3, 8, 8]);
        for c in 0..3 {
            let want = (0.2 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
            assert!((d.pixels[[0, c, 5, 7]] - want).abs() < 1e-5);
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
        assert!((d.pixels[[0, 0, 0, 0]] + 1.0).abs() < 1e-6);
        assert!((d.pixels[[1, 2, 3, 3]] - 1.0).abs() < 1e-6);
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
        assert!(z
            .pixels
            .slice(ndarray::s![1..3, .., .., ..])
            .iter()
            .all(|&v| v == 0.0));
        assert!(z
            .pixels
            .slice(ndarray::s![0, .., .., ..])
            .iter()
            .any(|&v| v != 0.0));
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

//! Decoding an image column: raw inputs (paths or bytes), parallel decoding into `u8` RGB
//! batches with their channel sums, and the planar layout the model reads.

use std::path::PathBuf;

use image::DynamicImage;
use ndarray::Array4;
use polars::prelude::*;
use rayon::prelude::*;

use super::resize::resize_crop_into;
use super::{ImageData, ImageFitted, ImagePreprocessor, ImageSource, OnError};
use crate::column;
use crate::error::{PreprocessingError, Result};
use crate::macros::bail;

/// Encoded image of one row: a path or bytes.
pub(super) enum Raw<'a> {
    Path(PathBuf),
    Bytes(&'a [u8]),
    Null,
}

/// The raw inputs of a column, owned so that a worker thread can hold them.
pub(super) enum OwnedRaws {
    Paths(Vec<Option<PathBuf>>),
    Bytes(Vec<Option<Vec<u8>>>),
}

impl OwnedRaws {
    /// Number of rows.
    pub(super) fn len(&self) -> usize {
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
    pub(super) fn raws<'a>(&self, df: &'a DataFrame) -> Result<Vec<Raw<'a>>> {
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

    pub(super) fn owned_raws(&self, df: &DataFrame) -> Result<OwnedRaws> {
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

    pub(super) fn decode_range<R: RawSlice + ?Sized>(
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
    pub(super) fn decode_u8<R: RawSlice + ?Sized>(
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
    pub(super) fn to_planar(&self, batch: U8Batch, stats: &ImageFitted) -> ImageData {
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
    pub(super) fn decode_one(&self, raw: Raw<'_>, row: usize) -> Result<Pixels> {
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

/// Decoded RGB bytes of a batch (phase 1).
pub(super) struct U8Batch {
    /// `[n, 3, height, width]` when `planar`, else `[n, height, width, 3]`.
    pub(super) data: Vec<u8>,
    pub(super) planar: bool,
    pub(super) failed: Vec<bool>,
    /// Per-channel sums of the values and their squares over the good rows.
    pub(super) sum: [u64; 3],
    pub(super) sq: [u64; 3],
}

/// A decoded 8-bit image, gray (`channels` 1) or RGB (3), row-major interleaved.
pub(super) struct Pixels {
    pub(super) data: Vec<u8>,
    pub(super) w: usize,
    pub(super) h: usize,
    pub(super) channels: usize,
}

/// Row access shared by borrowed and owned raw inputs.
pub(super) trait RawSlice: Sync {
    fn raw(&self, i: usize) -> Raw<'_>;
    /// The DataFrame row of position `i` (for error messages).
    fn row_id(&self, i: usize) -> usize {
        i
    }
}

/// Chosen rows of owned raw inputs, in the given order.
pub(super) struct Picked<'a> {
    pub(super) raws: &'a OwnedRaws,
    pub(super) rows: &'a [usize],
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

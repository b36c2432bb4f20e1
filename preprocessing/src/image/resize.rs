//! A separable resampler: scales an image to cover the output size, centre crops, and writes
//! RGB bytes.

use super::decode::Pixels;
use super::Filter;

type TapsKey = (usize, usize, usize, usize, Filter);
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
pub(super) fn resize_crop_into(
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

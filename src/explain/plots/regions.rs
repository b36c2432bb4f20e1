//! The heat map of an image column's region values, beside and over the image.
use super::draw::{
    check_row, detail_of, detail_row, diverging, err, font, method_title, DrawResult, Figure, AXIS,
};
use super::render::render;
use super::PlotOptions;
use crate::error::Result;
use crate::explain::{DetailKind, Explanation};
use crate::macros::{bail, ensure};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// An RGB image for [`image_regions`]: `pixels` `[height, width, 3]` row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `[height, width, 3]` bytes, row-major.
    pub pixels: Vec<u8>,
}

impl RgbImage {
    /// One image of a model input tensor (any dtype and scaling: normalised floats or raw
    /// bytes): each channel's range is stretched to 0–255 together; one channel is shown as
    /// grey.
    ///
    /// # Shapes
    /// - `t`: `[C, H, W]` or `[1, C, H, W]`, C 1 or 3
    pub fn from_tensor(t: &tch::Tensor) -> Result<RgbImage> {
        let t = if t.dim() == 4 && t.size()[0] == 1 {
            t.squeeze_dim(0)
        } else {
            t.shallow_clone()
        };
        let size = t.size();
        ensure!(
            size.len() == 3 && (size[0] == 1 || size[0] == 3),
            config("image"),
            "expected an image tensor [C, H, W] with 1 or 3 channels, got {size:?}"
        );
        let (c, h, w) = (size[0] as usize, size[1] as usize, size[2] as usize);
        let v = crate::explain::to_vec_f64(&t);
        let (lo, hi) = v
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        let span = if hi > lo { hi - lo } else { 1.0 };
        let mut pixels = Vec::with_capacity(h * w * 3);
        for y in 0..h {
            for x in 0..w {
                for ch in 0..3 {
                    let src = if c == 1 { 0 } else { ch };
                    let p = (v[(src * h + y) * w + x] - lo) / span;
                    pixels.push((p * 255.0).round().clamp(0.0, 255.0) as u8);
                }
            }
        }
        Ok(RgbImage {
            width: w as u32,
            height: h as u32,
            pixels,
        })
    }

    /// The pixel at column `x`, row `y`.
    fn at(&self, x: u32, y: u32) -> (u8, u8, u8) {
        let i = ((y * self.width + x) * 3) as usize;
        (self.pixels[i], self.pixels[i + 1], self.pixels[i + 2])
    }
}

/// The region values of one image feature and row, with the image when given.
struct Regions {
    title: String,
    rows: usize,
    cols: usize,
    /// `[rows, cols]` row-major.
    values: Vec<f64>,
    image: Option<RgbImage>,
}

impl Regions {
    /// The colour of the region under the point (u, v) ∈ [0, 1)².
    fn region_value(&self, u: f64, v: f64) -> f64 {
        let r = ((v * self.rows as f64) as usize).min(self.rows - 1);
        let c = ((u * self.cols as f64) as usize).min(self.cols - 1);
        self.values[r * self.cols + c]
    }

    /// The largest |value| (at least 1e-12): the ends of the colour scale.
    fn scale(&self) -> f64 {
        self.values
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()))
            .max(1e-12)
    }
}

/// Draws the outline of the rectangle from `from` to `to` (pixels) in the axis colour.
fn frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    from: (i32, i32),
    to: (i32, i32),
) -> DrawResult {
    root.draw(&Rectangle::new([from, to], ShapeStyle::from(&AXIS)))
        .map_err(err)
}

impl Figure for Regions {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let (w, h) = root.dim_in_pixel();
        let (w, h) = (w as i32, h as i32);
        root.draw(&Text::new(
            self.title.clone(),
            (w / 2, 14),
            font(19).pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(err)?;
        let panels = if self.image.is_some() { 3 } else { 1 };
        let bar_w = 110; // colour bar and its labels
        let gap = 28;
        let top = 80;
        let side = ((w - bar_w - 2 * 24 - gap * (panels - 1)) / panels)
            .min(h - top - 24)
            .max(40);
        let used = panels * side + (panels - 1) * gap + bar_w;
        let mut x0 = (w - used) / 2;
        let max = self.scale();
        // a panel of `n × n` cells coloured by `cell(u, v)` (u, v: the cell centre in [0, 1))
        let panel = |x0: i32, caption: &str, n: u32, cell: &dyn Fn(f64, f64) -> RGBColor| {
            root.draw(&Text::new(
                caption.to_string(),
                (x0 + side / 2, top - 10),
                font(15).pos(Pos::new(HPos::Center, VPos::Bottom)),
            ))
            .map_err(err)?;
            for j in 0..n {
                for i in 0..n {
                    let (a, b) = (i as i32 * side / n as i32, j as i32 * side / n as i32);
                    let (c, d) = (
                        (i as i32 + 1) * side / n as i32,
                        (j as i32 + 1) * side / n as i32,
                    );
                    let u = (i as f64 + 0.5) / n as f64;
                    let v = (j as f64 + 0.5) / n as f64;
                    root.draw(&Rectangle::new(
                        [(x0 + a, top + b), (x0 + c, top + d)],
                        cell(u, v).filled(),
                    ))
                    .map_err(err)?;
                }
            }
            frame(root, (x0, top), (x0 + side, top + side))
        };
        let img_px = |img: &RgbImage, u: f64, v: f64| {
            let x = ((u * img.width as f64) as u32).min(img.width - 1);
            let y = ((v * img.height as f64) as u32).min(img.height - 1);
            img.at(x, y)
        };
        // image resolution shown: at most 112 cells a side (SVG files stay small)
        let n_img = self
            .image
            .as_ref()
            .map_or(1, |i| i.width.max(i.height).min(112));
        if let Some(img) = &self.image {
            panel(x0, "image", n_img, &|u, v| {
                let (r, g, b) = img_px(img, u, v);
                RGBColor(r, g, b)
            })?;
            x0 += side + gap;
        }
        // the region grid, with each region's value written in it when there is room
        panel(x0, "value per region", 1, &|_, _| WHITE)?;
        for r in 0..self.rows as i32 {
            for c in 0..self.cols as i32 {
                let (rows, cols) = (self.rows as i32, self.cols as i32);
                let v = self.values[(r * cols + c) as usize];
                root.draw(&Rectangle::new(
                    [
                        (x0 + c * side / cols, top + r * side / rows),
                        (x0 + (c + 1) * side / cols, top + (r + 1) * side / rows),
                    ],
                    diverging(v / max).filled(),
                ))
                .map_err(err)?;
            }
        }
        frame(root, (x0, top), (x0 + side, top + side))?;
        let (cw, ch) = (side / self.cols as i32, side / self.rows as i32);
        // enough decimals for two significant digits of the largest value
        let decimals = (1.0 - max.log10()).ceil().clamp(2.0, 6.0) as usize;
        if cw >= 44 && ch >= 22 {
            for r in 0..self.rows {
                for c in 0..self.cols {
                    let v = self.values[r * self.cols + c];
                    let colour = if v.abs() / max > 0.6 { &WHITE } else { &BLACK };
                    let mut text = format!("{v:+.decimals$}");
                    if text
                        .trim_start_matches(['+', '-'])
                        .chars()
                        .all(|c| c == '0' || c == '.')
                    {
                        text = format!("{:.decimals$}", 0.0);
                    }
                    root.draw(&Text::new(
                        text,
                        (
                            x0 + c as i32 * side / self.cols as i32 + cw / 2,
                            top + r as i32 * side / self.rows as i32 + ch / 2,
                        ),
                        font(((cw / 4).min(ch / 2)).clamp(9, 14) as u32)
                            .color(colour)
                            .pos(Pos::new(HPos::Center, VPos::Center)),
                    ))
                    .map_err(err)?;
                }
            }
        }
        x0 += side + gap;
        if let Some(img) = &self.image {
            // grey image under the region colours
            panel(x0, "overlay", n_img, &|u, v| {
                let (r, g, b) = img_px(img, u, v);
                let grey = (0.299 * r as f64 + 0.587 * g as f64 + 0.114 * b as f64) / 255.0;
                let tint = diverging(self.region_value(u, v) / max);
                let mix = |t: u8| (0.4 * grey * 255.0 + 0.6 * t as f64).round() as u8;
                RGBColor(mix(tint.0), mix(tint.1), mix(tint.2))
            })?;
            x0 += side + gap;
        }
        // colour bar: +max on top, −max at the bottom
        let (bx, bw) = (x0 - gap + 18, 18);
        let steps = 64;
        for s in 0..steps {
            let t = 1.0 - 2.0 * (s as f64 + 0.5) / steps as f64;
            let (a, b) = (s * side / steps, (s + 1) * side / steps);
            root.draw(&Rectangle::new(
                [(bx, top + a), (bx + bw, top + b)],
                diverging(t).filled(),
            ))
            .map_err(err)?;
        }
        frame(root, (bx, top), (bx + bw, top + side))?;
        for (label, y) in [
            (format!("{:+.decimals$}", max), top),
            ("0".to_string(), top + side / 2),
            (format!("{:+.decimals$}", -max), top + side),
        ] {
            root.draw(&PathElement::new(
                vec![(bx + bw, y), (bx + bw + 5, y)],
                AXIS,
            ))
            .map_err(err)?;
            root.draw(&Text::new(
                label,
                (bx + bw + 8, y),
                font(13).pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(err)?;
        }
        Ok(())
    }
}

/// The per-region values of image feature `feature` in row `row` for output `output` as a
/// heat map over the image's grid of regions (red raises the output, blue lowers it, white
/// is 0; the colour bar gives the scale, symmetric around 0), with each value written in its
/// region when the grid leaves room. With `image` (e.g. [`RgbImage::from_tensor`] of the
/// row's input) the image is drawn on the left and, on the right, under the region colours.
/// Needs the region values of a gradient method (integrated gradients, GradientSHAP).
/// Written to `path` (`.png` or `.svg`).
pub fn image_regions(
    e: &Explanation,
    row: usize,
    feature: &str,
    output: usize,
    image: Option<&RgbImage>,
    path: impl AsRef<Path>,
    opts: &PlotOptions,
) -> Result<()> {
    opts.validate_for(e, output)?;
    check_row(e, row)?;
    let detail = detail_of(e, feature, "region", "image")?;
    let DetailKind::Regions { rows, cols } = detail.kind else {
        bail!(config("feature"), "`{feature}` is not an image feature");
    };
    if let Some(img) = image {
        ensure!(
            img.width > 0
                && img.height > 0
                && img.pixels.len() == (img.width * img.height * 3) as usize,
            config("image"),
            "pixels must hold width × height × 3 bytes"
        );
    }
    let values = detail_row(detail, row, output, e.n_outputs());
    let sum: f64 = values.iter().sum();
    let height = if opts.height > 0 {
        opts.height
    } else {
        let panels = if image.is_some() { 3 } else { 1 };
        let side = ((opts.width as i32 - 110 - 48 - 28 * (panels - 1)) / panels).clamp(120, 420);
        side as u32 + 110
    };
    let fig = Regions {
        title: opts.title_or(|| {
            format!(
                "{feature}, row {row}: {} (regions sum to {sum:+.3}; {})",
                e.output_names[output],
                method_title(&e.method)
            )
        }),
        rows,
        cols,
        values,
        image: image.cloned(),
    };
    render(&fig, (opts.width, height), path.as_ref())
}

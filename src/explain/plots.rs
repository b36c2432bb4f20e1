//! Plots of attributions: [`bar`] (global importance), [`beeswarm`] (every row's values,
//! coloured by feature value), [`waterfall`] (one prediction from the base value to the output)
//! and [`text_html`] (token highlighting for text columns).
//!
//! The format follows the file extension: `.png` or `.svg`. PNG text is drawn with the bundled
//! DejaVu Sans font (Bitstream Vera licence, DejaVu changes public domain; see
//! `src/explain/fonts/LICENSE-DejaVu.txt`), so plots render the same on machines without
//! fonts; SVG files name the `sans-serif` family.
use super::{fmt_num, Explanation, GlobalImportance};
use crate::error::{Result, WideDeepError};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontTransform;
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};
use serde::{Deserialize, Serialize};
use std::path::Path;

static FONT: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // the bundled file is a valid font; a failure would only lose PNG text
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Size and content settings shared by the plots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlotOptions {
    /// Image width in pixels. Default 960.
    pub width: u32,
    /// Image height in pixels; 0 (default) sizes it to the number of rows shown.
    pub height: u32,
    /// Most features shown; the rest are summed into one row. Default 12.
    pub max_features: usize,
    /// Replaces the default title.
    pub title: Option<String>,
}

impl Default for PlotOptions {
    fn default() -> Self {
        Self {
            width: 960,
            height: 0,
            max_features: 12,
            title: None,
        }
    }
}

impl PlotOptions {
    pub fn width(mut self, v: u32) -> Self {
        self.width = v;
        self
    }
    pub fn height(mut self, v: u32) -> Self {
        self.height = v;
        self
    }
    pub fn max_features(mut self, v: usize) -> Self {
        self.max_features = v;
        self
    }
    pub fn title(mut self, v: &str) -> Self {
        self.title = Some(v.into());
        self
    }

    fn validate(&self) -> Result<()> {
        if self.width < 200 || self.max_features == 0 || (self.height != 0 && self.height < 150) {
            return Err(WideDeepError::config(
                "plot_options",
                "width must be ≥ 200, height 0 or ≥ 150, max_features ≥ 1",
            ));
        }
        Ok(())
    }

    fn height_for(&self, rows: usize) -> u32 {
        if self.height > 0 {
            self.height
        } else {
            150 + 36 * rows as u32
        }
    }
}

// colours of shap's red–blue scale
const BLUE: RGBColor = RGBColor(0, 139, 251);
const RED: RGBColor = RGBColor(255, 0, 82);
const GREY: RGBColor = RGBColor(150, 150, 150);
const AXIS: RGBColor = RGBColor(90, 90, 90);

fn blend(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * t).round() as u8;
    RGBColor(mix(BLUE.0, RED.0), mix(BLUE.1, RED.1), mix(BLUE.2, RED.2))
}

type DrawResult = std::result::Result<(), String>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// The chart of the bar, beeswarm and waterfall plots: one row per feature (labels drawn by the
/// caller in a `label_area` wide left margin), values along x over `x`, rows over `y`, a light
/// vertical grid with `x_labels` ticks and the axis description `x_desc`.
#[allow(clippy::type_complexity)]
fn row_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &str,
    label_area: u32,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    x_labels: usize,
    x_desc: &str,
) -> std::result::Result<
    ChartContext<
        'a,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    String,
> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, font(20))
        .margin(16)
        .margin_left(8)
        .x_label_area_size(48)
        .y_label_area_size(label_area)
        .build_cartesian_2d(x, y)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(235, 235, 235))
        .axis_style(AXIS)
        .x_labels(x_labels)
        .x_label_formatter(&|v| fmt_num(*v))
        .x_label_style(font(14))
        .x_desc(x_desc)
        .axis_desc_style(font(15))
        .draw()
        .map_err(err)?;
    Ok(chart)
}

/// Something that draws itself on any plotters backend.
trait Figure {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult;
}

/// Renders `fig` to `path` (`.png` or `.svg`).
fn render<F: Figure>(fig: &F, path: &Path) -> Result<()> {
    register_font();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    let (w, h) = fig.size();
    let fail = |e: String| {
        WideDeepError::io(
            path,
            std::io::Error::other(format!("drawing the plot failed: {e}")),
        )
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| WideDeepError::io(parent, e))?;
    }
    match ext.as_deref() {
        Some("png") => {
            let mut buf = vec![255u8; (w * h * 3) as usize];
            {
                let font = ab_glyph::FontRef::try_from_slice(FONT)
                    .map_err(|e| fail(format!("bundled font: {e}")))?;
                let inner = BitMapBackend::with_buffer(&mut buf, (w, h));
                let root = PngBackend { inner, font }.into_drawing_area();
                fig.draw(&root).map_err(fail)?;
                root.present().map_err(|e| fail(err(e)))?;
            }
            let file = std::fs::File::create(path).map_err(|e| WideDeepError::io(path, e))?;
            let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            enc.write_header()
                .and_then(|mut wr| wr.write_image_data(&buf))
                .map_err(|e| WideDeepError::io(path, std::io::Error::other(e)))?;
            Ok(())
        }
        Some("svg") => {
            let mut text = String::new();
            {
                let root = SVGBackend::with_string(&mut text, (w, h)).into_drawing_area();
                fig.draw(&root).map_err(fail)?;
                root.present().map_err(|e| fail(err(e)))?;
            }
            std::fs::write(path, text).map_err(|e| WideDeepError::io(path, e))
        }
        _ => Err(WideDeepError::config(
            "path",
            format!("{}: plots are written as .png or .svg", path.display()),
        )),
    }
}

/// The bitmap backend with text drawn by ab_glyph directly: plotters 0.3.7 places each glyph
/// at a truncated pen position and drops its side bearing, which spaces PNG labels unevenly.
struct PngBackend<'a> {
    inner: BitMapBackend<'a>,
    font: ab_glyph::FontRef<'static>,
}

impl PngBackend<'_> {
    /// Glyphs with their pen positions, the advance width, the ascent and the descent.
    #[allow(clippy::type_complexity)]
    fn layout(&self, text: &str, size: f32) -> (Vec<(ab_glyph::GlyphId, f32)>, f32, f32, f32) {
        use ab_glyph::{Font, ScaleFont};
        let scaled = self.font.as_scaled(ab_glyph::PxScale::from(size));
        let mut pen = 0.0f32;
        let mut prev = None;
        let mut glyphs = Vec::with_capacity(text.len());
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                pen += scaled.kern(p, id);
            }
            glyphs.push((id, pen));
            pen += scaled.h_advance(id);
            prev = Some(id);
        }
        (glyphs, pen, scaled.ascent(), scaled.descent())
    }
}

impl DrawingBackend for PngBackend<'_> {
    type ErrorType = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }
    fn ensure_prepared(&mut self) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }
    fn present(&mut self) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }
    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_path(path, style)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }
    fn estimate_text_size<TStyle: BackendTextStyle>(
        &self,
        text: &str,
        style: &TStyle,
    ) -> std::result::Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        let (_, width, ascent, descent) = self.layout(text, style.size() as f32);
        Ok((width.ceil() as u32, (ascent - descent).ceil() as u32))
    }
    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> std::result::Result<(), DrawingErrorKind<Self::ErrorType>> {
        use ab_glyph::Font;
        if !matches!(style.transform(), FontTransform::None) {
            return self.inner.draw_text(text, style, pos);
        }
        let size = style.size() as f32;
        let (glyphs, width, ascent, descent) = self.layout(text, size);
        let anchor = style.anchor();
        let x0 = pos.0 as f32
            - match anchor.h_pos {
                HPos::Left => 0.0,
                HPos::Center => width / 2.0,
                HPos::Right => width,
            };
        let baseline = pos.1 as f32
            + match anchor.v_pos {
                VPos::Top => ascent,
                VPos::Center => (ascent + descent) / 2.0,
                VPos::Bottom => descent,
            };
        let color = style.color();
        let scale = ab_glyph::PxScale::from(size);
        for (id, x) in glyphs {
            let glyph = id.with_scale_and_position(scale, ab_glyph::point(x0 + x, baseline));
            if let Some(outline) = self.font.outline_glyph(glyph) {
                let b = outline.px_bounds();
                let mut pixels = Vec::new();
                outline.draw(|gx, gy, c| pixels.push((gx, gy, c)));
                for (gx, gy, c) in pixels {
                    if c <= 0.0 {
                        continue;
                    }
                    let at = (b.min.x as i32 + gx as i32, b.min.y as i32 + gy as i32);
                    let tint = BackendColor {
                        alpha: color.alpha * c.min(1.0) as f64,
                        rgb: color.rgb,
                    };
                    self.inner.draw_pixel(at, tint)?;
                }
            }
        }
        Ok(())
    }
}

fn font(size: u32) -> TextStyle<'static> {
    TextStyle::from(("sans-serif", size).into_font()).color(&BLACK)
}

/// Shortens labels longer than 42 characters.
fn clip(label: &str) -> String {
    if label.chars().count() > 42 {
        format!("{}…", label.chars().take(41).collect::<String>())
    } else {
        label.to_string()
    }
}

fn label_width<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    labels: &[String],
    style: &TextStyle,
) -> u32 {
    labels
        .iter()
        .map(|l| {
            root.estimate_text_size(l, style)
                .map_or(8 * l.len() as u32, |s| s.0)
        })
        .max()
        .unwrap_or(0)
}

fn padded_range(lo: f64, hi: f64, pad: f64) -> (f64, f64) {
    let (lo, hi) = if (hi - lo).abs() < 1e-12 {
        (lo - 1.0, hi + 1.0)
    } else {
        (lo, hi)
    };
    let d = (hi - lo) * pad;
    (lo - d, hi + d)
}

/// Feature indices by decreasing importance: the first `max - 1` (or all when they fit) and
/// the rest.
fn split_top(order: Vec<usize>, max: usize) -> (Vec<usize>, Vec<usize>) {
    if order.len() <= max {
        (order, Vec::new())
    } else {
        let rest = order[max - 1..].to_vec();
        (order[..max - 1].to_vec(), rest)
    }
}

// ---------------------------------------------------------------- bar

struct Bar {
    labels: Vec<String>,
    values: Vec<f64>,
    title: String,
    x_desc: String,
    size: (u32, u32),
}

impl Figure for Bar {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(err)?;
        let n = self.labels.len();
        let label_style = font(15);
        let left = label_width(root, &self.labels, &label_style) + 24;
        let max = self.values.iter().cloned().fold(0.0, f64::max);
        let xmax = if max > 0.0 { max * 1.18 } else { 1.0 };
        let mut chart = row_chart(
            root,
            &self.title,
            left,
            0.0..xmax,
            -0.5..(n as f64 - 0.5),
            6,
            &self.x_desc,
        )?;
        for (i, (label, &v)) in self.labels.iter().zip(&self.values).enumerate() {
            let y = (n - 1 - i) as f64;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, y - 0.32), (v, y + 0.32)],
                    BLUE.filled(),
                )))
                .map_err(err)?;
            let (px, py) = chart.backend_coord(&(0.0, y));
            root.draw(&Text::new(
                clip(label),
                (px - 10, py),
                label_style.pos(Pos::new(HPos::Right, VPos::Center)),
            ))
            .map_err(err)?;
            let (vx, _) = chart.backend_coord(&(v, y));
            root.draw(&Text::new(
                format!("{:.3}", v),
                (vx + 6, py),
                font(13)
                    .color(&BLUE)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(err)?;
        }
        Ok(())
    }
}

/// Horizontal bars of the largest importances (the rest summed into one bar), most important
/// on top.
pub fn bar(
    importance: &GlobalImportance,
    path: impl AsRef<Path>,
    opts: &PlotOptions,
) -> Result<()> {
    opts.validate()?;
    if importance.feature_names.is_empty() {
        return Err(WideDeepError::Missing("no features to plot".into()));
    }
    let ranked = importance.ranked();
    let order: Vec<usize> = (0..ranked.len()).collect();
    let (top, rest) = split_top(order, opts.max_features);
    let mut labels: Vec<String> = top.iter().map(|&i| ranked[i].0.clone()).collect();
    let mut values: Vec<f64> = top.iter().map(|&i| ranked[i].1).collect();
    if !rest.is_empty() {
        labels.push(format!("{} other features (sum)", rest.len()));
        values.push(rest.iter().map(|&i| ranked[i].1).sum());
    }
    let fig = Bar {
        size: (opts.width, opts.height_for(labels.len())),
        labels,
        values,
        title: opts
            .title
            .clone()
            .unwrap_or_else(|| "Global feature importance".into()),
        x_desc: importance.source.clone(),
    };
    render(&fig, path.as_ref())
}

// ---------------------------------------------------------------- beeswarm

struct Swarm {
    labels: Vec<String>,
    /// per shown row of the plot: (value, colour position in [0, 1] or None)
    points: Vec<Vec<(f64, Option<f64>)>>,
    title: String,
    x_desc: String,
    size: (u32, u32),
}

/// Vertical offsets (in row units, within ±0.4) that spread points with close values.
fn swarm_offsets(values: &[f64], lo: f64, hi: f64) -> Vec<f64> {
    let bins = 110.0;
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut counts = std::collections::HashMap::new();
    let mut layer = vec![0i64; values.len()];
    for &i in &idx {
        let b = (((values[i] - lo) / (hi - lo)) * bins).floor() as i64;
        let c = counts.entry(b).or_insert(0i64);
        layer[i] = *c;
        *c += 1;
    }
    let max_layer = counts.values().copied().max().unwrap_or(1).max(1);
    let step = if max_layer > 1 {
        0.8 / (max_layer - 1) as f64
    } else {
        0.0
    }
    .min(0.08);
    layer
        .iter()
        .map(|&l| {
            let k = ((l + 1) / 2) as f64;
            let sign = if l % 2 == 1 { 1.0 } else { -1.0 };
            (sign * k * step).clamp(-0.4, 0.4)
        })
        .collect()
}

impl Figure for Swarm {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(err)?;
        let n = self.labels.len();
        let label_style = font(15);
        let left = label_width(root, &self.labels, &label_style) + 24;
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for row in &self.points {
            for &(v, _) in row {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        let (lo, hi) = padded_range(lo.min(0.0), hi.max(0.0), 0.05);
        let (chart_area, legend) = root.split_horizontally(self.size.0 - 110);
        let mut chart = row_chart(
            &chart_area,
            &self.title,
            left,
            lo..hi,
            -0.5..(n as f64 - 0.5),
            7,
            &self.x_desc,
        )?;
        let (zx, top) = chart.backend_coord(&(0.0, n as f64 - 0.5));
        let (_, bottom) = chart.backend_coord(&(0.0, -0.5));
        chart_area
            .draw(&PathElement::new(vec![(zx, top), (zx, bottom)], GREY))
            .map_err(err)?;
        for (i, (label, row)) in self.labels.iter().zip(&self.points).enumerate() {
            let y = (n - 1 - i) as f64;
            let (px, py) = chart.backend_coord(&(lo, y));
            chart_area
                .draw(&Text::new(
                    clip(label),
                    (px - 10, py),
                    label_style.pos(Pos::new(HPos::Right, VPos::Center)),
                ))
                .map_err(err)?;
            let values: Vec<f64> = row.iter().map(|p| p.0).collect();
            let offsets = swarm_offsets(&values, lo, hi);
            // grey (no value) first, then coloured ones on top
            let mut order: Vec<usize> = (0..row.len()).collect();
            order.sort_by_key(|&j| row[j].1.is_some());
            chart
                .draw_series(order.into_iter().map(|j| {
                    let colour = row[j].1.map_or(GREY, blend);
                    Circle::new((row[j].0, y + offsets[j]), 3, colour.mix(0.85).filled())
                }))
                .map_err(err)?;
        }
        // colour bar
        let (lw, lh) = legend.dim_in_pixel();
        let (x0, x1) = (18i32, 32i32);
        let (y0, y1) = (70i32, lh as i32 - 90);
        let steps = 60;
        for s in 0..steps {
            let t = 1.0 - s as f64 / (steps - 1) as f64;
            let ya = y0 + (y1 - y0) * s / steps;
            let yb = y0 + (y1 - y0) * (s + 1) / steps;
            legend
                .draw(&Rectangle::new([(x0, ya), (x1, yb + 1)], blend(t).filled()))
                .map_err(err)?;
        }
        let small = font(13);
        legend
            .draw(&Text::new(
                "high",
                (x1 + 6, y0),
                small.pos(Pos::new(HPos::Left, VPos::Top)),
            ))
            .map_err(err)?;
        legend
            .draw(&Text::new(
                "low",
                (x1 + 6, y1),
                small.pos(Pos::new(HPos::Left, VPos::Bottom)),
            ))
            .map_err(err)?;
        legend
            .draw(&Text::new(
                "feature value",
                (4, y0 - 30),
                small.pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(err)?;
        legend
            .draw(&Circle::new((x0 + 3, y1 + 28), 3, GREY.filled()))
            .map_err(err)?;
        legend
            .draw(&Text::new(
                "no value",
                (x0 + 12, y1 + 28),
                small.pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(err)?;
        let _ = lw;
        Ok(())
    }
}

/// One dot per explained row and feature at its value, coloured by the feature's value in that
/// row (blue low → red high, between its 5th and 95th percentiles; grey without one); features
/// by decreasing mean |value|, the rest summed into one row.
pub fn beeswarm(
    explanation: &Explanation,
    output: usize,
    path: impl AsRef<Path>,
    opts: &PlotOptions,
) -> Result<()> {
    opts.validate()?;
    check_output(explanation, output)?;
    let e = explanation;
    if e.n_features() == 0 || e.n_rows == 0 {
        return Err(WideDeepError::Missing("no values to plot".into()));
    }
    let imp = e.global_importance_for(output);
    let mut order: Vec<usize> = (0..e.n_features()).collect();
    order.sort_by(|&a, &b| imp.importance[b].total_cmp(&imp.importance[a]));
    let (top, rest) = split_top(order, opts.max_features);
    let mut labels = Vec::new();
    let mut points = Vec::new();
    for &j in &top {
        labels.push(e.feature_names[j].clone());
        let vals: Vec<f64> = (0..e.n_rows).filter_map(|r| e.data_value(r, j)).collect();
        let scale = percentile_range(vals);
        points.push(
            (0..e.n_rows)
                .map(|r| {
                    let c = match (e.data_value(r, j), scale) {
                        (Some(v), Some((lo, hi))) => {
                            Some(if hi > lo { (v - lo) / (hi - lo) } else { 0.5 })
                        }
                        _ => None,
                    };
                    (e.value(r, j, output), c)
                })
                .collect(),
        );
    }
    if !rest.is_empty() {
        labels.push(format!("{} other features (sum)", rest.len()));
        points.push(
            (0..e.n_rows)
                .map(|r| (rest.iter().map(|&j| e.value(r, j, output)).sum(), None))
                .collect(),
        );
    }
    let fig = Swarm {
        size: (opts.width, opts.height_for(labels.len())),
        labels,
        points,
        title: opts
            .title
            .clone()
            .unwrap_or_else(|| format!("{} values of {} rows", method_title(&e.method), e.n_rows)),
        x_desc: format!("value (impact on {})", e.output_names[output]),
    };
    render(&fig, path.as_ref())
}

/// The 5th and 95th percentiles (min and max when those coincide), `None` without values.
fn percentile_range(mut vals: Vec<f64>) -> Option<(f64, f64)> {
    vals.retain(|v| v.is_finite());
    if vals.is_empty() {
        return None;
    }
    vals.sort_by(f64::total_cmp);
    let at = |q: f64| vals[((vals.len() - 1) as f64 * q).round() as usize];
    let (lo, hi) = (at(0.05), at(0.95));
    if hi > lo {
        Some((lo, hi))
    } else {
        Some((vals[0], vals[vals.len() - 1]))
    }
}

fn check_output(e: &Explanation, output: usize) -> Result<()> {
    if output >= e.n_outputs() {
        return Err(WideDeepError::config(
            "output",
            format!(
                "output {output} out of range: the explanation has {}",
                e.n_outputs()
            ),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- waterfall

struct Waterfall {
    /// bottom row first: (label, start, end, is the additivity gap)
    steps: Vec<(String, f64, f64, bool)>,
    base: f64,
    fx: f64,
    title: String,
    x_desc: String,
    size: (u32, u32),
}

impl Figure for Waterfall {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(err)?;
        let n = self.steps.len();
        let label_style = font(15);
        let labels: Vec<String> = self.steps.iter().map(|s| clip(&s.0)).collect();
        let left = label_width(root, &labels, &label_style) + 24;
        let (mut lo, mut hi) = (self.base.min(self.fx), self.base.max(self.fx));
        for (_, a, b, _) in &self.steps {
            lo = lo.min(a.min(*b));
            hi = hi.max(a.max(*b));
        }
        let (lo, hi) = padded_range(lo, hi, 0.12);
        // rows 0..n for the steps, plus room above and below for the f(x) and E[f(X)] marks
        let mut chart = row_chart(
            root,
            &self.title,
            left,
            lo..hi,
            -1.3..(n as f64 + 0.3),
            7,
            &self.x_desc,
        )?;
        let dashed = |x: f64, y0: f64, y1: f64| {
            let (px, py0) = chart.backend_coord(&(x, y0));
            let (_, py1) = chart.backend_coord(&(x, y1));
            let mut segs = Vec::new();
            let mut y = py1.min(py0);
            while y < py1.max(py0) {
                segs.push(PathElement::new(
                    vec![(px, y), (px, (y + 4).min(py1.max(py0)))],
                    GREY,
                ));
                y += 8;
            }
            segs
        };
        for seg in dashed(self.base, -0.75, n as f64 - 0.5) {
            root.draw(&seg).map_err(err)?;
        }
        for seg in dashed(self.fx, -0.5, n as f64 - 0.25) {
            root.draw(&seg).map_err(err)?;
        }
        // a mark's text starts at its line, towards the middle of the plot
        let mid = (lo + hi) / 2.0;
        let mark = |x: f64, y: f64, text: String| {
            let (px, py) = chart.backend_coord(&(x, y));
            let (px, h) = if x <= mid {
                (px - 2, HPos::Left)
            } else {
                (px + 2, HPos::Right)
            };
            Text::new(text, (px, py), font(14).pos(Pos::new(h, VPos::Center)))
        };
        root.draw(&mark(
            self.base,
            -1.0,
            format!("E[f(X)] = {}", fmt3(self.base)),
        ))
        .map_err(err)?;
        root.draw(&mark(
            self.fx,
            n as f64,
            format!("f(x) = {}", fmt3(self.fx)),
        ))
        .map_err(err)?;
        let span = hi - lo;
        for (i, (label, a, b, is_gap)) in self.steps.iter().enumerate() {
            let y = i as f64;
            let up = b >= a;
            let colour = match (is_gap, up) {
                (true, _) => GREY,
                (false, true) => RED,
                (false, false) => BLUE,
            };
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(*a, y - 0.34), (*b, y + 0.34)],
                    colour.filled(),
                )))
                .map_err(err)?;
            let (px, py) = chart.backend_coord(&(lo, y));
            root.draw(&Text::new(
                clip(label),
                (px - 10, py),
                label_style.pos(Pos::new(HPos::Right, VPos::Center)),
            ))
            .map_err(err)?;
            let delta = b - a;
            let text = format!("{}{}", if up { "+" } else { "−" }, fmt3(delta.abs()));
            // the value goes inside a long bar, beside a short one
            let (ax, _) = chart.backend_coord(&(*a, y));
            let (bx, _) = chart.backend_coord(&(*b, y));
            let width = (bx - ax).abs();
            let tw = root
                .estimate_text_size(&text, &font(13))
                .map_or(60, |s| s.0 as i32);
            let (pos, style) = if width > tw + 12 {
                (
                    ((ax + bx) / 2, py),
                    font(13)
                        .color(&WHITE)
                        .pos(Pos::new(HPos::Center, VPos::Center)),
                )
            } else if up {
                (
                    (ax.max(bx) + 6, py),
                    font(13)
                        .color(&colour)
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                )
            } else {
                (
                    (ax.min(bx) - 6, py),
                    font(13)
                        .color(&colour)
                        .pos(Pos::new(HPos::Right, VPos::Center)),
                )
            };
            let _ = span;
            root.draw(&Text::new(text, pos, style)).map_err(err)?;
        }
        Ok(())
    }
}

/// A method's display name.
fn method_title(name: &str) -> &str {
    match name {
        "integrated_gradients" => "Integrated gradients",
        "gradient_shap" => "GradientSHAP",
        "kernel_shap" => "KernelSHAP",
        "permutation_shap" => "Permutation SHAP",
        "exact_shapley" => "Exact Shapley",
        other => other,
    }
}

fn fmt3(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// How one prediction is built: from the base value E[f(X)] (bottom) each feature's value is
/// added, the largest on top, up to f(x); features beyond `max_features − 1` are summed into
/// one step. Labels read `feature = value`.
pub fn waterfall(
    explanation: &Explanation,
    row: usize,
    output: usize,
    path: impl AsRef<Path>,
    opts: &PlotOptions,
) -> Result<()> {
    opts.validate()?;
    check_output(explanation, output)?;
    let e = explanation;
    if row >= e.n_rows {
        return Err(WideDeepError::config(
            "row",
            format!("row {row} out of range: the explanation has {}", e.n_rows),
        ));
    }
    let mut order: Vec<usize> = (0..e.n_features()).collect();
    order.sort_by(|&a, &b| {
        e.value(row, b, output)
            .abs()
            .total_cmp(&e.value(row, a, output).abs())
    });
    let (top, rest) = split_top(order, opts.max_features);
    // bottom row first: the summed rest, then the shown features from least to most important
    let mut items: Vec<(String, f64)> = Vec::new();
    if !rest.is_empty() {
        items.push((
            format!("{} other features", rest.len()),
            rest.iter().map(|&j| e.value(row, j, output)).sum(),
        ));
    }
    for &j in top.iter().rev() {
        let shown = e.display_value(row, j);
        let label = if shown.is_empty() {
            e.feature_names[j].clone()
        } else {
            format!("{} = {}", e.feature_names[j], shown)
        };
        items.push((label, e.value(row, j, output)));
    }
    let base = e.base_value(row, output);
    let fx = e.prediction(row, output);
    let mut at = base;
    let mut steps = items
        .into_iter()
        .map(|(label, v)| {
            let s = (label, at, at + v, false);
            at += v;
            s
        })
        .collect::<Vec<_>>();
    // a visible additivity gap (gradient methods) gets its own grey step, so the bars reach f(x)
    if (fx - at).abs() > 1e-3 * (fx - base).abs().max(1e-9) {
        steps.push(("additivity gap".into(), at, fx, true));
    }
    let fig = Waterfall {
        size: (opts.width, opts.height_for(steps.len() + 2)),
        base,
        fx,
        title: opts.title.clone().unwrap_or_else(|| {
            format!(
                "Row {row}: {} ({})",
                e.output_names[output],
                method_title(&e.method)
            )
        }),
        x_desc: e.output_names[output].clone(),
        steps,
    };
    render(&fig, path.as_ref())
}

// ---------------------------------------------------------------- text

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An HTML fragment highlighting the tokens of text feature `feature` in row `row`: red
/// backgrounds push output `output` up, blue down, the opacity follows |value| relative to the
/// row's largest; hovering shows the value. `tokens` gives the token strings (e.g. decoded by
/// the tokenizer), one per position; without it the explanation's own token strings are shown
/// (explainers made by `Explainer::for_pipeline` record them), else the token ids. Positions whose id
/// is `pad_id` are skipped.
pub fn text_html(
    explanation: &Explanation,
    row: usize,
    feature: &str,
    output: usize,
    tokens: Option<&[String]>,
    pad_id: Option<i64>,
) -> Result<String> {
    check_output(explanation, output)?;
    let e = explanation;
    let detail = e.detail(feature).ok_or_else(|| {
        WideDeepError::config(
            "feature",
            format!("`{feature}` has no token values (only text features explained by a gradient method do)"),
        )
    })?;
    let super::DetailKind::Tokens {
        seq_len,
        token_ids,
        tokens: known,
    } = &detail.kind
    else {
        return Err(WideDeepError::config(
            "feature",
            format!("`{feature}` is not a text feature"),
        ));
    };
    if row >= e.n_rows {
        return Err(WideDeepError::config(
            "row",
            format!("row {row} out of range: the explanation has {}", e.n_rows),
        ));
    }
    if let Some(t) = tokens {
        if t.len() != *seq_len {
            return Err(WideDeepError::config(
                "tokens",
                format!("{} tokens for {seq_len} positions", t.len()),
            ));
        }
    }
    let k = e.n_outputs();
    let vals: Vec<f64> = (0..*seq_len)
        .map(|q| detail.values[(row * seq_len + q) * k + output])
        .collect();
    let ids = &token_ids[row * seq_len..(row + 1) * seq_len];
    let max = vals.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
    let mut html = format!(
        "<div class=\"widedeep-tokens\" style=\"font-family: sans-serif; line-height: 1.9\">\
         <div style=\"font-size: 0.85em; color: #555\">{} — row {row}, {} (sum {:.4})</div>",
        escape(feature),
        escape(&e.output_names[output]),
        vals.iter().sum::<f64>()
    );
    for q in 0..*seq_len {
        if pad_id == Some(ids[q]) {
            continue;
        }
        let text = match (tokens, known.get(row * seq_len + q)) {
            (Some(t), _) => t[q].clone(),
            (None, Some(t)) => t.clone(),
            (None, None) => ids[q].to_string(),
        };
        let v = vals[q];
        let a = (v.abs() / max * 0.85).min(0.85);
        let (r, g, b) = if v >= 0.0 {
            (RED.0, RED.1, RED.2)
        } else {
            (BLUE.0, BLUE.1, BLUE.2)
        };
        html.push_str(&format!(
            "<span title=\"{v:+.4}\" style=\"background: rgba({r},{g},{b},{a:.3}); \
             padding: 2px 3px; margin: 1px; border-radius: 3px\">{}</span> ",
            escape(&text)
        ));
    }
    html.push_str("</div>");
    Ok(html)
}

/// [`text_html`] wrapped in a standalone HTML page written to `path`.
pub fn write_text_html(
    explanation: &Explanation,
    row: usize,
    feature: &str,
    output: usize,
    tokens: Option<&[String]>,
    pad_id: Option<i64>,
    path: impl AsRef<Path>,
) -> Result<()> {
    let body = text_html(explanation, row, feature, output, tokens, pad_id)?;
    let page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\
         <body>{body}</body></html>\n",
        escape(feature)
    );
    let path = path.as_ref();
    std::fs::write(path, page).map_err(|e| WideDeepError::io(path, e))
}

// ---------------------------------------------------------------- image regions

/// An RGB image for [`image_regions`]: `pixels` `[height, width, 3]` row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl RgbImage {
    /// One image of a model input tensor `[C, H, W]` (or `[1, C, H, W]`), any dtype and
    /// scaling (normalised floats or raw bytes): each channel's range is stretched to 0–255
    /// together; one channel is shown as grey.
    pub fn from_tensor(t: &tch::Tensor) -> Result<RgbImage> {
        let t = if t.dim() == 4 && t.size()[0] == 1 {
            t.squeeze_dim(0)
        } else {
            t.shallow_clone()
        };
        let size = t.size();
        if size.len() != 3 || !(size[0] == 1 || size[0] == 3) {
            return Err(WideDeepError::config(
                "image",
                format!("expected an image tensor [C, H, W] with 1 or 3 channels, got {size:?}"),
            ));
        }
        let (c, h, w) = (size[0] as usize, size[1] as usize, size[2] as usize);
        let v = super::to_vec_f64(&t);
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

    fn at(&self, x: u32, y: u32) -> (u8, u8, u8) {
        let i = ((y * self.width + x) * 3) as usize;
        (self.pixels[i], self.pixels[i + 1], self.pixels[i + 2])
    }
}

/// Blue (−1) – white (0) – red (+1).
fn diverging(t: f64) -> RGBColor {
    let t = t.clamp(-1.0, 1.0);
    let (c, a) = if t >= 0.0 { (RED, t) } else { (BLUE, -t) };
    let mix = |w: u8, c: u8| (w as f64 + (c as f64 - w as f64) * a).round() as u8;
    RGBColor(mix(255, c.0), mix(255, c.1), mix(255, c.2))
}

struct Regions {
    size: (u32, u32),
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

    fn scale(&self) -> f64 {
        self.values
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()))
            .max(1e-12)
    }
}

impl Figure for Regions {
    fn size(&self) -> (u32, u32) {
        self.size
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(err)?;
        let (w, h) = self.size;
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
            root.draw(&Rectangle::new(
                [(x0, top), (x0 + side, top + side)],
                ShapeStyle::from(&AXIS),
            ))
            .map_err(err)
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
        root.draw(&Rectangle::new(
            [(x0, top), (x0 + side, top + side)],
            ShapeStyle::from(&AXIS),
        ))
        .map_err(err)?;
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
        root.draw(&Rectangle::new(
            [(bx, top), (bx + bw, top + side)],
            ShapeStyle::from(&AXIS),
        ))
        .map_err(err)?;
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
pub fn image_regions(
    explanation: &Explanation,
    row: usize,
    feature: &str,
    output: usize,
    image: Option<&RgbImage>,
    path: impl AsRef<Path>,
    opts: &PlotOptions,
) -> Result<()> {
    opts.validate()?;
    check_output(explanation, output)?;
    let e = explanation;
    if row >= e.n_rows {
        return Err(WideDeepError::config(
            "row",
            format!("row {row} out of range: the explanation has {}", e.n_rows),
        ));
    }
    let detail = e.detail(feature).ok_or_else(|| {
        WideDeepError::config(
            "feature",
            format!(
                "`{feature}` has no region values (only image features explained by a \
                 gradient method do)"
            ),
        )
    })?;
    let super::DetailKind::Regions { rows, cols } = detail.kind else {
        return Err(WideDeepError::config(
            "feature",
            format!("`{feature}` is not an image feature"),
        ));
    };
    if let Some(img) = image {
        if img.width == 0
            || img.height == 0
            || img.pixels.len() != (img.width * img.height * 3) as usize
        {
            return Err(WideDeepError::config(
                "image",
                "pixels must hold width × height × 3 bytes",
            ));
        }
    }
    let k = e.n_outputs();
    let positions = rows * cols;
    let values: Vec<f64> = (0..positions)
        .map(|q| detail.values[(row * positions + q) * k + output])
        .collect();
    let sum: f64 = values.iter().sum();
    let height = if opts.height > 0 {
        opts.height
    } else {
        let panels = if image.is_some() { 3 } else { 1 };
        let side = ((opts.width as i32 - 110 - 48 - 28 * (panels - 1)) / panels).clamp(120, 420);
        side as u32 + 110
    };
    let fig = Regions {
        size: (opts.width, height),
        title: opts.title.clone().unwrap_or_else(|| {
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
    render(&fig, path.as_ref())
}

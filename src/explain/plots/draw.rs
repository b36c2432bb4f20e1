//! Drawing helpers shared by the chart families: shap's colours, fonts, the row chart of the
//! bar, beeswarm and waterfall plots, labels, ranges and the checks of plot arguments.
use crate::error::Result;
use crate::explain::{fmt_num, Detail, Explanation};
use crate::macros::{bail, ensure};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

// colours of shap's red–blue scale
/// Low values, negative attributions.
pub(super) const BLUE: RGBColor = RGBColor(0, 139, 251);
/// High values, positive attributions.
pub(super) const RED: RGBColor = RGBColor(255, 0, 82);
/// No value; the additivity gap.
pub(super) const GREY: RGBColor = RGBColor(150, 150, 150);
/// Axes and frames.
pub(super) const AXIS: RGBColor = RGBColor(90, 90, 90);

/// Blue (0) – red (1), clamped.
pub(super) fn blend(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * t).round() as u8;
    RGBColor(mix(BLUE.0, RED.0), mix(BLUE.1, RED.1), mix(BLUE.2, RED.2))
}

/// Blue (−1) – white (0) – red (+1), clamped.
pub(super) fn diverging(t: f64) -> RGBColor {
    let t = t.clamp(-1.0, 1.0);
    let (c, a) = if t >= 0.0 { (RED, t) } else { (BLUE, -t) };
    let mix = |w: u8, c: u8| (w as f64 + (c as f64 - w as f64) * a).round() as u8;
    RGBColor(mix(255, c.0), mix(255, c.1), mix(255, c.2))
}

/// What drawing returns: plotters' errors as text.
pub(super) type DrawResult = std::result::Result<(), String>;

/// A plotters error as text.
pub(super) fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// Something that draws itself on any plotters backend.
pub(super) trait Figure {
    /// Draws the whole figure on `root` (already filled white).
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult;
}

/// The bundled `sans-serif` font at `size` pixels, black.
pub(super) fn font(size: u32) -> TextStyle<'static> {
    TextStyle::from(("sans-serif", size).into_font()).color(&BLACK)
}

/// `font(size)` in `colour`, anchored at `(h, v)`.
pub(super) fn anchored<'a>(size: u32, colour: &'a RGBColor, h: HPos, v: VPos) -> TextStyle<'a> {
    font(size).color(colour).pos(Pos::new(h, v))
}

/// The chart of [`row_chart`]: values along x, rows along y.
pub(super) type RowChart<'a, DB> =
    ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The chart of the bar, beeswarm and waterfall plots: one row per feature (labels drawn by the
/// caller in a `label_area` wide left margin, see [`row_label`]), values along x over `x`,
/// rows over `y`, a light vertical grid with `x_labels` ticks and the axis description
/// `x_desc`.
pub(super) fn row_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &str,
    label_area: u32,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    x_labels: usize,
    x_desc: &str,
) -> std::result::Result<RowChart<'a, DB>, String> {
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

/// The style of the row labels of a row chart.
pub(super) fn label_style() -> TextStyle<'static> {
    font(15)
}

/// Width of the left margin that holds `labels` in [`label_style`].
pub(super) fn label_margin<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    labels: &[String],
) -> u32 {
    let style = label_style();
    let widest = labels
        .iter()
        .map(|l| {
            root.estimate_text_size(l, &style)
                .map_or(8 * l.len() as u32, |s| s.0)
        })
        .max()
        .unwrap_or(0);
    widest + 24
}

/// Draws a row's label (shortened by [`clip`]) right-aligned left of `(x, y)`, the left end
/// of the row in pixels.
pub(super) fn row_label<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    label: &str,
    (x, y): (i32, i32),
) -> DrawResult {
    area.draw(&Text::new(
        clip(label),
        (x - 10, y),
        label_style().pos(Pos::new(HPos::Right, VPos::Center)),
    ))
    .map_err(err)
}

/// Draws a filled bar from `(x0, y0)` to `(x1, y1)` in chart coordinates.
pub(super) fn fill_bar<DB: DrawingBackend>(
    chart: &mut RowChart<'_, DB>,
    (x0, y0): (f64, f64),
    (x1, y1): (f64, f64),
    colour: RGBColor,
) -> DrawResult {
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(x0, y0), (x1, y1)],
            colour.filled(),
        )))
        .map(|_| ())
        .map_err(err)
}

/// Shortens labels longer than 42 characters.
pub(super) fn clip(label: &str) -> String {
    if label.chars().count() > 42 {
        format!("{}…", label.chars().take(41).collect::<String>())
    } else {
        label.to_string()
    }
}

/// `lo..hi` widened by `pad` of its span on each side (by 1 when it is empty).
pub(super) fn padded_range(lo: f64, hi: f64, pad: f64) -> (f64, f64) {
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
pub(super) fn split_top(order: Vec<usize>, max: usize) -> (Vec<usize>, Vec<usize>) {
    if order.len() <= max {
        (order, Vec::new())
    } else {
        let rest = order[max - 1..].to_vec();
        (order[..max - 1].to_vec(), rest)
    }
}

/// A method's display name.
pub(super) fn method_title(name: &str) -> &str {
    match name {
        "integrated_gradients" => "Integrated gradients",
        "gradient_shap" => "GradientSHAP",
        "kernel_shap" => "KernelSHAP",
        "permutation_shap" => "Permutation SHAP",
        "exact_shapley" => "Exact Shapley",
        other => other,
    }
}

/// A value with three decimals (none from 1000 on).
pub(super) fn fmt3(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// Errors unless `output` is one of the explanation's outputs.
pub(super) fn check_output(e: &Explanation, output: usize) -> Result<()> {
    ensure!(
        output < e.n_outputs(),
        config("output"),
        "output {output} out of range: the explanation has {}",
        e.n_outputs()
    );
    Ok(())
}

/// Errors unless `row` is one of the explanation's rows.
pub(super) fn check_row(e: &Explanation, row: usize) -> Result<()> {
    ensure!(
        row < e.n_rows,
        config("row"),
        "row {row} out of range: the explanation has {}",
        e.n_rows
    );
    Ok(())
}

/// The token or region values of `feature`; the error says that only `what` (`"text"`,
/// `"image"`) features explained by a gradient method have `values` (`"token"`, `"region"`).
pub(super) fn detail_of<'e>(
    e: &'e Explanation,
    feature: &str,
    values: &str,
    what: &str,
) -> Result<&'e Detail> {
    let Some(detail) = e.detail(feature) else {
        bail!(
            config("feature"),
            "`{feature}` has no {values} values (only {what} features explained by a gradient \
             method do)"
        );
    };
    Ok(detail)
}

/// The values `[positions]` of `detail` in row `row` for output `output` (of `n_outputs`).
pub(super) fn detail_row(detail: &Detail, row: usize, output: usize, n_outputs: usize) -> Vec<f64> {
    let positions = detail.positions();
    (0..positions)
        .map(|q| detail.values[(row * positions + q) * n_outputs + output])
        .collect()
}

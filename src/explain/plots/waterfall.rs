//! The waterfall plot: one prediction built up from the base value, feature by feature.
use super::draw::{
    anchored, check_row, clip, err, fill_bar, fmt3, font, label_margin, method_title, padded_range,
    row_chart, row_label, split_top, DrawResult, Figure, BLUE, GREY, RED,
};
use super::render::render;
use super::PlotOptions;
use crate::error::Result;
use crate::explain::Explanation;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// The steps from the base value `base` (bottom) to the prediction `fx` (top).
struct Waterfall {
    /// bottom row first: (label, start, end, is the additivity gap)
    steps: Vec<(String, f64, f64, bool)>,
    base: f64,
    fx: f64,
    title: String,
    x_desc: String,
}

impl Figure for Waterfall {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let n = self.steps.len();
        let labels: Vec<String> = self.steps.iter().map(|s| clip(&s.0)).collect();
        let left = label_margin(root, &labels);
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
        for (i, (label, a, b, is_gap)) in self.steps.iter().enumerate() {
            let y = i as f64;
            let up = b >= a;
            let colour = match (is_gap, up) {
                (true, _) => GREY,
                (false, true) => RED,
                (false, false) => BLUE,
            };
            fill_bar(&mut chart, (*a, y - 0.34), (*b, y + 0.34), colour)?;
            let (px, py) = chart.backend_coord(&(lo, y));
            row_label(root, label, (px, py))?;
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
                    anchored(13, &WHITE, HPos::Center, VPos::Center),
                )
            } else if up {
                (
                    (ax.max(bx) + 6, py),
                    anchored(13, &colour, HPos::Left, VPos::Center),
                )
            } else {
                (
                    (ax.min(bx) - 6, py),
                    anchored(13, &colour, HPos::Right, VPos::Center),
                )
            };
            root.draw(&Text::new(text, pos, style)).map_err(err)?;
        }
        Ok(())
    }
}

/// How one prediction is built: from the base value E[f(X)] (bottom) each feature's value is
/// added, the largest on top, up to f(x); features beyond `max_features − 1` are summed into
/// one step. Labels read `feature = value`. Written to `path` (`.png` or `.svg`).
pub fn waterfall(
    e: &Explanation,
    row: usize,
    output: usize,
    path: impl AsRef<Path>,
    opts: &PlotOptions,
) -> Result<()> {
    opts.validate_for(e, output)?;
    check_row(e, row)?;
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
    let size = (opts.width, opts.height_for(steps.len() + 2));
    let fig = Waterfall {
        base,
        fx,
        title: opts.title_or(|| {
            format!(
                "Row {row}: {} ({})",
                e.output_names[output],
                method_title(&e.method)
            )
        }),
        x_desc: e.output_names[output].clone(),
        steps,
    };
    render(&fig, size, path.as_ref())
}

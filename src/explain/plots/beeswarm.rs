//! The beeswarm plot: every row's value of each feature, coloured by the feature's value.
use super::draw::{
    blend, err, font, label_margin, method_title, padded_range, row_chart, row_label, split_top,
    DrawResult, Figure, GREY,
};
use super::render::render;
use super::PlotOptions;
use crate::error::Result;
use crate::explain::Explanation;
use crate::macros::ensure;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// One row of dots per label, the first on top, and a colour bar on the right.
struct Swarm {
    labels: Vec<String>,
    /// per shown row of the plot: (value, colour position in [0, 1] or None)
    points: Vec<Vec<(f64, Option<f64>)>>,
    title: String,
    x_desc: String,
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

impl Swarm {
    /// The colour bar (high on top, low at the bottom) and the grey "no value" dot.
    fn legend<DB: DrawingBackend>(&self, legend: &DrawingArea<DB, Shift>) -> DrawResult {
        let (_, lh) = legend.dim_in_pixel();
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
        let texts = [
            ("high", (x1 + 6, y0), VPos::Top),
            ("low", (x1 + 6, y1), VPos::Bottom),
            ("feature value", (4, y0 - 30), VPos::Center),
        ];
        for (text, at, v) in texts {
            legend
                .draw(&Text::new(text, at, small.pos(Pos::new(HPos::Left, v))))
                .map_err(err)?;
        }
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
        Ok(())
    }
}

impl Figure for Swarm {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let n = self.labels.len();
        let left = label_margin(root, &self.labels);
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for row in &self.points {
            for &(v, _) in row {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        let (lo, hi) = padded_range(lo.min(0.0), hi.max(0.0), 0.05);
        let (chart_area, legend) = root.split_horizontally(root.dim_in_pixel().0 - 110);
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
            row_label(&chart_area, label, chart.backend_coord(&(lo, y)))?;
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
        self.legend(&legend)
    }
}

/// One dot per explained row and feature at its value, coloured by the feature's value in that
/// row (blue low → red high, between its 5th and 95th percentiles; grey without one); features
/// by decreasing mean |value|, the rest summed into one row. Written to `path` (`.png` or
/// `.svg`).
pub fn beeswarm(
    e: &Explanation,
    output: usize,
    path: impl AsRef<Path>,
    opts: &PlotOptions,
) -> Result<()> {
    opts.validate_for(e, output)?;
    ensure!(
        e.n_features() > 0 && e.n_rows > 0,
        missing(),
        "no values to plot"
    );
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
    let size = (opts.width, opts.height_for(labels.len()));
    let fig = Swarm {
        labels,
        points,
        title: opts.title_or(|| format!("{} values of {} rows", method_title(&e.method), e.n_rows)),
        x_desc: format!("value (impact on {})", e.output_names[output]),
    };
    render(&fig, size, path.as_ref())
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

//! The bar chart of global importances.
use super::draw::{
    anchored, err, fill_bar, label_margin, row_chart, row_label, split_top, DrawResult, Figure,
    BLUE,
};
use super::render::render;
use super::PlotOptions;
use crate::error::Result;
use crate::explain::GlobalImportance;
use crate::macros::ensure;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use std::path::Path;

/// One bar per label, the first on top, with its value written beside it.
struct Bar {
    labels: Vec<String>,
    values: Vec<f64>,
    title: String,
    x_desc: String,
}

impl Figure for Bar {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let n = self.labels.len();
        let left = label_margin(root, &self.labels);
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
            fill_bar(&mut chart, (0.0, y - 0.32), (v, y + 0.32), BLUE)?;
            let (px, py) = chart.backend_coord(&(0.0, y));
            row_label(root, label, (px, py))?;
            let (vx, _) = chart.backend_coord(&(v, y));
            root.draw(&Text::new(
                format!("{:.3}", v),
                (vx + 6, py),
                anchored(13, &BLUE, HPos::Left, VPos::Center),
            ))
            .map_err(err)?;
        }
        Ok(())
    }
}

/// Horizontal bars of the largest importances (the rest summed into one bar), most important
/// on top, written to `path` (`.png` or `.svg`).
pub fn bar(
    importance: &GlobalImportance,
    path: impl AsRef<Path>,
    opts: &PlotOptions,
) -> Result<()> {
    opts.validate()?;
    ensure!(
        !importance.feature_names.is_empty(),
        missing(),
        "no features to plot"
    );
    let ranked = importance.ranked();
    let order: Vec<usize> = (0..ranked.len()).collect();
    let (top, rest) = split_top(order, opts.max_features);
    let mut labels: Vec<String> = top.iter().map(|&i| ranked[i].0.clone()).collect();
    let mut values: Vec<f64> = top.iter().map(|&i| ranked[i].1).collect();
    if !rest.is_empty() {
        labels.push(format!("{} other features (sum)", rest.len()));
        values.push(rest.iter().map(|&i| ranked[i].1).sum());
    }
    let size = (opts.width, opts.height_for(labels.len()));
    let fig = Bar {
        labels,
        values,
        title: opts.title_or(|| "Global feature importance".into()),
        x_desc: importance.source.clone(),
    };
    render(&fig, size, path.as_ref())
}

//! Plots of attributions: [`bar`] (global importance), [`beeswarm`] (every row's values,
//! coloured by feature value), [`waterfall`] (one prediction from the base value to the output),
//! [`image_regions`] (heat map of an image column's regions) and [`text_html`] (token
//! highlighting for text columns).
//!
//! The format follows the file extension: `.png` or `.svg`. PNG text is drawn with the bundled
//! DejaVu Sans font (Bitstream Vera licence, DejaVu changes public domain; see
//! `src/explain/fonts/LICENSE-DejaVu.txt`), so plots render the same on machines without
//! fonts; SVG files name the `sans-serif` family.
mod bar;
mod beeswarm;
mod draw;
mod regions;
mod render;
mod text;
mod waterfall;

pub use bar::bar;
pub use beeswarm::beeswarm;
pub use regions::{image_regions, RgbImage};
pub use text::{text_html, write_text_html};
pub use waterfall::waterfall;

use crate::error::Result;
use crate::macros::{ensure, setters};
use serde::{Deserialize, Serialize};

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
    setters!(width: u32, height: u32, max_features: usize);

    /// Sets the title.
    pub fn title(mut self, v: &str) -> Self {
        self.title = Some(v.into());
        self
    }

    /// Checks the size and `max_features`.
    fn validate(&self) -> Result<()> {
        ensure!(
            self.width >= 200 && self.max_features > 0 && (self.height == 0 || self.height >= 150),
            config("plot_options"),
            "width must be ≥ 200, height 0 or ≥ 150, max_features ≥ 1"
        );
        Ok(())
    }

    /// Checks the options, then that `output` is one of `e`'s outputs.
    fn validate_for(&self, e: &crate::explain::Explanation, output: usize) -> Result<()> {
        self.validate()?;
        draw::check_output(e, output)
    }

    /// The image height for `rows` rows of a row chart: `height`, or sized to the rows.
    fn height_for(&self, rows: usize) -> u32 {
        if self.height > 0 {
            self.height
        } else {
            150 + 36 * rows as u32
        }
    }

    /// The title: the one set, else `default()`.
    fn title_or(&self, default: impl FnOnce() -> String) -> String {
        self.title.clone().unwrap_or_else(default)
    }
}

#[cfg(test)]
mod tests;

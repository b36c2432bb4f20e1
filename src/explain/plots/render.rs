//! Writing a [`Figure`] to a file: PNG through plotters' bitmap backend with the bundled font
//! drawn by ab_glyph ([`PngBackend`]), or SVG.
use super::draw::{err, Figure};
use crate::error::{Result, WideDeepError};
use crate::macros::bail;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use plotters::style::FontTransform;
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};
use std::path::Path;

/// DejaVu Sans (see `src/explain/fonts/LICENSE-DejaVu.txt`).
static FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");

/// Registers the bundled font as plotters' `sans-serif` (once per process).
fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // the bundled file is a valid font; a failure would only lose PNG text
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Renders `fig` on a white `(width, height)` pixels canvas to `path` (`.png` or `.svg`),
/// creating the parent folder.
pub(super) fn render<F: Figure>(fig: &F, (w, h): (u32, u32), path: &Path) -> Result<()> {
    register_font();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
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
                root.fill(&WHITE).map_err(|e| fail(err(e)))?;
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
                root.fill(&WHITE).map_err(|e| fail(err(e)))?;
                fig.draw(&root).map_err(fail)?;
                root.present().map_err(|e| fail(err(e)))?;
            }
            std::fs::write(path, text).map_err(|e| WideDeepError::io(path, e))
        }
        _ => bail!(
            config("path"),
            "{}: plots are written as .png or .svg",
            path.display()
        ),
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

//! Image-level tests of every chart family on a small fixed explanation: the PNG has the
//! expected pixel size, is not blank, and rendering twice gives the same bytes.
use super::*;
use crate::explain::{Detail, DetailKind, Explanation};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Three rows, features `a` (categorical), `review` (text, 4 tokens) and `photo` (image, a
/// 2 × 3 grid of regions), one output; the token and region values sum to the feature's.
fn fixture() -> Explanation {
    let values = vec![0.5, -0.2, 0.3, 1.0, 0.1, -0.3, -0.5, 0.4, 0.2];
    let (n, p) = (3, 3);
    let spread = |j: usize, positions: usize, shape: fn(usize) -> f64| -> Vec<f64> {
        let total: f64 = (0..positions).map(shape).sum();
        (0..n)
            .flat_map(|r| (0..positions).map(move |q| (r, q)))
            .map(|(r, q)| values[r * p + j] * shape(q) / total)
            .collect()
    };
    let tokens: Vec<String> = ["the", "cat", "sat", "<pad>"]
        .iter()
        .cycle()
        .take(n * 4)
        .map(|t| t.to_string())
        .collect();
    Explanation {
        method: "kernel_shap".into(),
        output: "raw".into(),
        output_names: vec!["raw".into()],
        feature_names: vec!["a".into(), "review".into(), "photo".into()],
        groups: vec![
            vec!["cat:a".into()],
            vec!["text:review".into()],
            vec!["image:photo".into()],
        ],
        n_rows: n,
        predictions: (0..n)
            .map(|r| 0.1 + values[r * p..(r + 1) * p].iter().sum::<f64>())
            .collect(),
        base_values: vec![0.1; n],
        additivity_gap: vec![0.0; n],
        data: vec![
            Some(1.0),
            None,
            None,
            Some(2.0),
            None,
            None,
            Some(3.0),
            None,
            None,
        ],
        display: ["x", "the cat sat", "image 3×4×6"]
            .iter()
            .cycle()
            .take(n * p)
            .map(|s| s.to_string())
            .collect(),
        details: vec![
            Detail {
                feature: "review".into(),
                kind: DetailKind::Tokens {
                    seq_len: 4,
                    token_ids: [5, 7, 9, 0].iter().cycle().take(n * 4).copied().collect(),
                    tokens,
                },
                values: spread(1, 4, |q| [1.0, -0.5, 2.0, 0.0][q]),
            },
            Detail {
                feature: "photo".into(),
                kind: DetailKind::Regions { rows: 2, cols: 3 },
                values: spread(2, 6, |q| q as f64 - 1.5),
            },
        ],
        values,
    }
}

/// A 6 × 4 RGB gradient.
fn image() -> RgbImage {
    RgbImage {
        width: 6,
        height: 4,
        pixels: (0..6 * 4 * 3).map(|i| (i * 3) as u8).collect(),
    }
}

/// Width, height and the RGB pixels of a PNG file.
fn decode(path: &Path) -> (u32, u32, Vec<u8>) {
    let file = std::fs::File::open(path).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// Draws a plot with `draw(path)` twice as PNG and once as SVG, then checks that the PNG is
/// `size` pixels, not blank (many colours, a visible share of non-white pixels) and identical
/// both times, and that the SVG is identical both times too.
fn check_family(name: &str, size: (u32, u32), draw: impl Fn(&Path) -> crate::Result<()>) {
    let dir = tempfile::tempdir().unwrap();
    let path = |run: usize, ext: &str| -> PathBuf { dir.path().join(format!("{name}{run}.{ext}")) };
    for run in 0..2 {
        draw(&path(run, "png")).unwrap();
        draw(&path(run, "svg")).unwrap();
    }
    let (w, h, pixels) = decode(&path(0, "png"));
    assert_eq!((w, h), size, "{name}: pixel size");
    let colours: HashSet<&[u8]> = pixels.chunks(3).collect();
    assert!(colours.len() >= 8, "{name}: {} colours", colours.len());
    let inked = pixels.chunks(3).filter(|c| *c != [255, 255, 255]).count();
    assert!(
        inked * 100 > (w * h) as usize,
        "{name}: {inked} of {} pixels drawn",
        w * h
    );
    for ext in ["png", "svg"] {
        let (a, b) = (
            std::fs::read(path(0, ext)).unwrap(),
            std::fs::read(path(1, ext)).unwrap(),
        );
        assert!(a == b, "{name}.{ext}: two renderings differ");
    }
}

#[test]
fn bar_png_is_sized_drawn_and_deterministic() {
    let e = fixture();
    let opts = PlotOptions::default();
    // 3 bars: 150 + 36 per row
    check_family("bar", (960, 258), |p| bar(&e.global_importance(), p, &opts));
    let fixed = PlotOptions::default().width(640).height(300).title("fixed");
    check_family("bar_fixed", (640, 300), |p| {
        bar(&e.global_importance(), p, &fixed)
    });
}

#[test]
fn beeswarm_png_is_sized_drawn_and_deterministic() {
    let e = fixture();
    // two features shown and one summed row
    let opts = PlotOptions::default().max_features(2);
    check_family("swarm", (960, 222), |p| beeswarm(&e, 0, p, &opts));
}

#[test]
fn waterfall_png_is_sized_drawn_and_deterministic() {
    let mut e = fixture();
    let opts = PlotOptions::default();
    // 3 steps plus the base value and f(x) marks
    check_family("fall", (960, 330), |p| waterfall(&e, 1, 0, p, &opts));
    // a gradient method's gap adds a grey step
    e.predictions[1] += 0.5;
    check_family("fall_gap", (960, 366), |p| waterfall(&e, 1, 0, p, &opts));
}

#[test]
fn image_regions_png_is_sized_drawn_and_deterministic() {
    let e = fixture();
    let opts = PlotOptions::default();
    // with the image: three panels of (960 − 110 − 48 − 2·28) / 3 = 248 pixels, plus 110
    let img = image();
    check_family("regions", (960, 358), |p| {
        image_regions(&e, 2, "photo", 0, Some(&img), p, &opts)
    });
    // alone: one panel, capped at 420 pixels
    check_family("regions_bare", (960, 530), |p| {
        image_regions(&e, 0, "photo", 0, None, p, &opts)
    });
    let broken = RgbImage {
        pixels: vec![0; 5],
        ..image()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.png");
    assert!(image_regions(&e, 0, "photo", 0, Some(&broken), &path, &opts).is_err());
    assert!(image_regions(&e, 0, "review", 0, None, &path, &opts).is_err());
    assert!(image_regions(&e, 3, "photo", 0, None, &path, &opts).is_err());
}

#[test]
fn token_highlighting_is_deterministic_and_skips_padding() {
    let e = fixture();
    let html = text_html(&e, 0, "review", 0, None, Some(0)).unwrap();
    assert_eq!(html, text_html(&e, 0, "review", 0, None, Some(0)).unwrap());
    // three tokens shown (the padding skipped): red for the positive, blue for the negative
    assert_eq!(html.matches("<span").count(), 3, "{html}");
    assert!(html.contains(">the</span>") && !html.contains("&lt;pad&gt;"));
    assert!(html.contains("rgba(255,0,82,") && html.contains("rgba(0,139,251,"));
    // given token strings replace the recorded ones
    let mine: Vec<String> = ["w", "x", "y", "z"].iter().map(|s| s.to_string()).collect();
    let html = text_html(&e, 0, "review", 0, Some(&mine), None).unwrap();
    assert!(html.contains(">z</span>") && !html.contains(">cat</span>"));
    assert!(text_html(&e, 0, "review", 0, Some(&mine[..2]), None).is_err());
    assert!(text_html(&e, 0, "photo", 0, None, None).is_err());
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("tokens.html");
    write_text_html(&e, 1, "review", 0, None, Some(0), &page).unwrap();
    let text = std::fs::read_to_string(&page).unwrap();
    assert!(text.starts_with("<!DOCTYPE html>") && text.contains("widedeep-tokens"));
}

#[test]
fn plots_write_png_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let e = crate::explain::explanation::tests::toy();
    let opts = super::PlotOptions::default();
    for ext in ["png", "svg"] {
        let bar = dir.path().join(format!("bar.{ext}"));
        let swarm = dir.path().join(format!("swarm.{ext}"));
        let fall = dir.path().join(format!("fall.{ext}"));
        super::bar(&e.global_importance(), &bar, &opts).unwrap();
        super::beeswarm(&e, 0, &swarm, &opts).unwrap();
        super::waterfall(&e, 1, 0, &fall, &opts.clone().max_features(2)).unwrap();
        for p in [&bar, &swarm, &fall] {
            let bytes = std::fs::read(p).unwrap();
            assert!(bytes.len() > 1000, "{}", p.display());
            if ext == "png" {
                assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
            } else {
                let text = String::from_utf8(bytes).unwrap();
                assert!(text.contains("<svg"));
            }
        }
        if ext == "svg" {
            let text = std::fs::read_to_string(&fall).unwrap();
            // max_features 2: the largest of row 1 (a = 1) and the other two summed
            assert!(
                text.contains("a = y") && text.contains("2 other features"),
                "{text}"
            );
        }
    }
    assert!(super::bar(&e.global_importance(), dir.path().join("x.jpg"), &opts).is_err());
    assert!(super::waterfall(&e, 5, 0, dir.path().join("w.png"), &opts).is_err());
    assert!(super::beeswarm(&e, 1, dir.path().join("b.png"), &opts).is_err());
}

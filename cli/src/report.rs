//! `widedeep report --run DIR`: one self-contained HTML page about a training run.
//!
//! The page embeds every image as a `data:` URI (it opens from anywhere, offline): learning
//! curves of the loss and every metric (training and validation); for classifiers the confusion
//! matrix, ROC and precision-recall curves with their areas and the calibration curve; for
//! regression predicted-vs-actual and residuals; and, when the run has `explanation.json`, the
//! global importance and the beeswarm (PNG, drawn by the library's plots). The charts are SVG
//! written here (text rendered by the browser); each image is also written to `DIR/report/`.
use crate::error::{CliError, Result};
use polars::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use widedeep::prelude::*;

const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// One line or point set of a chart.
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    scatter: bool,
}

/// A simple x-y chart rendered as SVG.
struct Chart {
    title: String,
    x_label: String,
    y_label: String,
    series: Vec<Series>,
    diagonal: bool,
    unit_square: bool,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    (0..=4).map(|i| lo + (hi - lo) * i as f64 / 4.0).collect()
}

fn fmt_tick(v: f64) -> String {
    if v.abs() >= 1000.0 || (v != 0.0 && v.abs() < 0.01) {
        format!("{v:.1e}")
    } else {
        format!("{v:.2}")
    }
}

impl Chart {
    fn svg(&self) -> String {
        let (w, h, ml, mr, mt, mb) = (560.0, 380.0, 64.0, 150.0, 36.0, 48.0);
        let pts = self.series.iter().flat_map(|s| s.points.iter());
        let finite: Vec<(f64, f64)> = pts
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .copied()
            .collect();
        let (mut x0, mut x1, mut y0, mut y1) = if self.unit_square {
            (0.0, 1.0, 0.0, 1.0)
        } else {
            finite.iter().fold(
                (
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                ),
                |(a, b, c, d), &(x, y)| (a.min(x), b.max(x), c.min(y), d.max(y)),
            )
        };
        if !x0.is_finite() {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        if x1 - x0 < 1e-12 {
            x1 = x0 + 1.0;
        }
        if y1 - y0 < 1e-12 {
            y1 = y0 + 1.0;
        }
        let pad = (y1 - y0) * 0.05;
        if !self.unit_square {
            y0 -= pad;
            y1 += pad;
        }
        let pw = w - ml - mr;
        let ph = h - mt - mb;
        let sx = |x: f64| ml + (x - x0) / (x1 - x0) * pw;
        let sy = |y: f64| mt + ph - (y - y0) / (y1 - y0) * ph;
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11"><rect width="{w}" height="{h}" fill="white"/><text x="{}" y="20" font-size="14" text-anchor="middle">{}</text>"#,
            ml + pw / 2.0,
            esc(&self.title)
        );
        for t in ticks(x0, x1) {
            let _ = write!(
                s,
                r##"<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#ddd"/><text x="{0}" y="{3}" text-anchor="middle">{4}</text>"##,
                sx(t),
                mt,
                mt + ph,
                mt + ph + 15.0,
                fmt_tick(t)
            );
        }
        for t in ticks(y0, y1) {
            let _ = write!(
                s,
                r##"<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="#ddd"/><text x="{3}" y="{4}" text-anchor="end">{5}</text>"##,
                ml,
                sy(t),
                ml + pw,
                ml - 5.0,
                sy(t) + 4.0,
                fmt_tick(t)
            );
        }
        let _ = write!(
            s,
            r##"<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="none" stroke="#333"/><text x="{}" y="{}" text-anchor="middle">{}</text><text transform="translate(14,{}) rotate(-90)" text-anchor="middle">{}</text>"##,
            ml + pw / 2.0,
            h - 10.0,
            esc(&self.x_label),
            mt + ph / 2.0,
            esc(&self.y_label)
        );
        if self.diagonal {
            let (a, b) = (x0.max(y0), x1.min(y1));
            let _ = write!(
                s,
                r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999" stroke-dasharray="4 4"/>"##,
                sx(a),
                sy(a),
                sx(b),
                sy(b)
            );
        }
        for (i, series) in self.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let pts: Vec<(f64, f64)> = series
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|&(x, y)| (sx(x), sy(y)))
                .collect();
            if series.scatter {
                for (x, y) in &pts {
                    let _ = write!(
                        s,
                        r#"<circle cx="{x:.1}" cy="{y:.1}" r="2" fill="{color}" fill-opacity="0.5"/>"#
                    );
                }
            } else if !pts.is_empty() {
                let path: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
                let _ = write!(
                    s,
                    r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
                    path.join(" ")
                );
            }
            let ly = mt + 14.0 + 16.0 * i as f64;
            let _ = write!(
                s,
                r#"<rect x="{}" y="{}" width="12" height="4" fill="{color}"/><text x="{}" y="{}">{}</text>"#,
                ml + pw + 10.0,
                ly - 4.0,
                ml + pw + 26.0,
                ly + 1.0,
                esc(&series.name)
            );
        }
        s.push_str("</svg>");
        s
    }
}

/// Standard base64 (for `data:` URIs).
pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// ROC points and area for scores `s` of the positive labels `y` (ties handled by grouping).
fn roc(y: &[bool], s: &[f64]) -> (Vec<(f64, f64)>, f64) {
    let mut idx: Vec<usize> = (0..y.len()).collect();
    idx.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
    let p = y.iter().filter(|&&v| v).count() as f64;
    let n = y.len() as f64 - p;
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut pts = vec![(0.0, 0.0)];
    let mut i = 0;
    while i < idx.len() {
        let score = s[idx[i]];
        while i < idx.len() && s[idx[i]] == score {
            if y[idx[i]] {
                tp += 1.0
            } else {
                fp += 1.0
            }
            i += 1;
        }
        pts.push((fp / n.max(1.0), tp / p.max(1.0)));
    }
    let auc = pts
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
        .sum();
    (pts, auc)
}

/// Precision-recall points and average precision.
fn pr(y: &[bool], s: &[f64]) -> (Vec<(f64, f64)>, f64) {
    let mut idx: Vec<usize> = (0..y.len()).collect();
    idx.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
    let p = y.iter().filter(|&&v| v).count() as f64;
    let (mut tp, mut k) = (0.0, 0.0);
    let (mut pts, mut ap, mut last_recall) = (Vec::new(), 0.0, 0.0);
    let mut i = 0;
    while i < idx.len() {
        let score = s[idx[i]];
        while i < idx.len() && s[idx[i]] == score {
            tp += f64::from(u8::from(y[idx[i]]));
            k += 1.0;
            i += 1;
        }
        let (precision, recall) = (tp / k, tp / p.max(1.0));
        ap += (recall - last_recall) * precision;
        last_recall = recall;
        pts.push((recall, precision));
    }
    (pts, ap)
}

fn column_f64(df: &DataFrame, name: &str) -> Result<Vec<f64>> {
    df.column(name)
        .and_then(|c| c.cast(&DataType::Float64))
        .and_then(|c| {
            c.f64()
                .map(|c| c.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
        })
        .map_err(|e| CliError::polars(format!("column `{name}` of test_predictions.parquet"), e))
}

/// What the report wrote.
#[derive(Debug)]
pub struct Report {
    /// The HTML page.
    pub html: PathBuf,
    /// The images embedded in it (also written beside it).
    pub images: Vec<PathBuf>,
}

/// Writes `DIR/report.html` (or `output`) for the run in `dir`.
pub fn report(dir: &Path, output: Option<&Path>) -> Result<Report> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read_to_string(&p).map_err(|e| CliError::io(&p, e))
    };
    let history: History = serde_json::from_str(&read("history.json")?)
        .map_err(|e| CliError::Usage(format!("{}: {e}", dir.join("history.json").display())))?;
    let metrics: serde_json::Value = serde_json::from_str(&read("metrics.json")?)
        .map_err(|e| CliError::Usage(format!("{}: {e}", dir.join("metrics.json").display())))?;
    let preds = widedeep::datasets::read_parquet(dir.join("test_predictions.parquet"))?;
    let img_dir = dir.join("report");
    std::fs::create_dir_all(&img_dir).map_err(|e| CliError::io(&img_dir, e))?;
    let mut sections: Vec<(String, Vec<(String, String)>)> = Vec::new(); // (heading, [(file, data uri)])
    let mut images = Vec::new();
    let mut add = |section: &str, file: &str, mime: &str, bytes: Vec<u8>| -> Result<()> {
        let path = img_dir.join(file);
        std::fs::write(&path, &bytes).map_err(|e| CliError::io(&path, e))?;
        images.push(path);
        let uri = format!("data:{mime};base64,{}", base64(&bytes));
        match sections.iter_mut().find(|(h, _)| h == section) {
            Some((_, v)) => v.push((file.to_string(), uri)),
            None => sections.push((section.to_string(), vec![(file.to_string(), uri)])),
        }
        Ok(())
    };

    // learning curves: one chart per key without its `val_` prefix
    let mut keys: Vec<String> = Vec::new();
    for e in &history.epochs {
        for k in e.keys() {
            let base = k.strip_prefix("val_").unwrap_or(k).to_string();
            if !keys.contains(&base) && base != "lr" && !base.contains("skipped") {
                keys.push(base);
            }
        }
    }
    for key in &keys {
        let epochs: Vec<f64> = (1..=history.len()).map(|e| e as f64).collect();
        let mut series = Vec::new();
        for (name, k) in [
            ("training", key.clone()),
            ("validation", format!("val_{key}")),
        ] {
            let v = history.series(&k);
            if v.iter().any(|x| x.is_finite()) {
                series.push(Series {
                    name: name.into(),
                    points: epochs.iter().copied().zip(v).collect(),
                    scatter: false,
                });
            }
        }
        let chart = Chart {
            title: format!("{key} per epoch"),
            x_label: "epoch".into(),
            y_label: key.clone(),
            series,
            diagonal: false,
            unit_square: false,
        };
        add(
            "Learning curves",
            &format!("curve_{key}.svg"),
            "image/svg+xml",
            chart.svg().into_bytes(),
        )?;
    }

    let target = column_f64(&preds, "target")?;
    let proba_cols: Vec<String> = preds
        .get_column_names()
        .iter()
        .filter_map(|n| n.strip_prefix("proba_").map(str::to_string))
        .collect();
    let mut summary: BTreeMap<String, f64> = BTreeMap::new();
    let mut confusion_html = String::new();
    if proba_cols.is_empty() {
        let pred = column_f64(&preds, "prediction")?;
        let step = (pred.len() / 2000).max(1);
        let pairs: Vec<(f64, f64)> = target
            .iter()
            .zip(&pred)
            .step_by(step)
            .map(|(&t, &p)| (t, p))
            .collect();
        let chart = Chart {
            title: "predicted vs actual (test rows)".into(),
            x_label: "actual".into(),
            y_label: "predicted".into(),
            series: vec![Series {
                name: "rows".into(),
                points: pairs.clone(),
                scatter: true,
            }],
            diagonal: true,
            unit_square: false,
        };
        add(
            "Regression",
            "predicted_vs_actual.svg",
            "image/svg+xml",
            chart.svg().into_bytes(),
        )?;
        let chart = Chart {
            title: "residuals (actual − predicted)".into(),
            x_label: "predicted".into(),
            y_label: "residual".into(),
            series: vec![Series {
                name: "rows".into(),
                points: pairs.iter().map(|&(t, p)| (p, t - p)).collect(),
                scatter: true,
            }],
            diagonal: false,
            unit_square: false,
        };
        add(
            "Regression",
            "residuals.svg",
            "image/svg+xml",
            chart.svg().into_bytes(),
        )?;
    } else {
        let k = proba_cols.len();
        let probs: Vec<Vec<f64>> = proba_cols
            .iter()
            .map(|c| column_f64(&preds, &format!("proba_{c}")))
            .collect::<Result<_>>()?;
        let n = target.len();
        let truth: Vec<usize> = target.iter().map(|&t| t.max(0.0) as usize).collect();
        let predicted: Vec<usize> = (0..n)
            .map(|i| {
                (0..k)
                    .max_by(|&a, &b| probs[a][i].total_cmp(&probs[b][i]))
                    .unwrap_or(0)
            })
            .collect();
        // confusion matrix as an HTML table (counts, rows = actual)
        let mut m = vec![vec![0usize; k]; k];
        for i in 0..n {
            if truth[i] < k {
                m[truth[i]][predicted[i]] += 1;
            }
        }
        let _ = write!(
            confusion_html,
            "<table class=\"cm\"><tr><th>actual \\ predicted</th>"
        );
        for c in &proba_cols {
            let _ = write!(confusion_html, "<th>{}</th>", esc(c));
        }
        confusion_html.push_str("</tr>");
        let max = m.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
        for (r, row) in m.iter().enumerate() {
            let _ = write!(confusion_html, "<tr><th>{}</th>", esc(&proba_cols[r]));
            for &v in row {
                let a = 0.1 + 0.8 * v as f64 / max;
                let _ = write!(
                    confusion_html,
                    "<td style=\"background: rgba(31,119,180,{a:.2})\">{v}</td>"
                );
            }
            confusion_html.push_str("</tr>");
        }
        confusion_html.push_str("</table>");
        let classes: Vec<usize> = if k == 2 { vec![1] } else { (0..k).collect() };
        let (mut roc_series, mut pr_series, mut cal_series) = (vec![], vec![], vec![]);
        for c in classes {
            let y: Vec<bool> = truth.iter().map(|&t| t == c).collect();
            let (r, auc) = roc(&y, &probs[c]);
            let (p, ap) = pr(&y, &probs[c]);
            summary.insert(format!("ROC AUC ({})", proba_cols[c]), auc);
            summary.insert(format!("average precision ({})", proba_cols[c]), ap);
            roc_series.push(Series {
                name: format!("{} AUC {auc:.3}", proba_cols[c]),
                points: r,
                scatter: false,
            });
            pr_series.push(Series {
                name: format!("{} AP {ap:.3}", proba_cols[c]),
                points: p,
                scatter: false,
            });
            // calibration: 10 equal-width bins of the predicted probability
            let mut bins = vec![(0.0, 0.0, 0usize); 10];
            for i in 0..n {
                let b = ((probs[c][i] * 10.0) as usize).min(9);
                bins[b].0 += probs[c][i];
                bins[b].1 += f64::from(u8::from(y[i]));
                bins[b].2 += 1;
            }
            let pts = bins
                .iter()
                .filter(|b| b.2 > 0)
                .map(|b| (b.0 / b.2 as f64, b.1 / b.2 as f64))
                .collect();
            cal_series.push(Series {
                name: proba_cols[c].clone(),
                points: pts,
                scatter: false,
            });
        }
        let charts = [
            (
                "roc.svg",
                "ROC curve (test rows)",
                "false positive rate",
                "true positive rate",
                roc_series,
                true,
            ),
            (
                "precision_recall.svg",
                "precision-recall curve",
                "recall",
                "precision",
                pr_series,
                false,
            ),
            (
                "calibration.svg",
                "calibration (10 bins)",
                "mean predicted probability",
                "observed frequency",
                cal_series,
                true,
            ),
        ];
        for (file, title, xl, yl, series, diagonal) in charts {
            let chart = Chart {
                title: title.into(),
                x_label: xl.into(),
                y_label: yl.into(),
                series,
                diagonal,
                unit_square: true,
            };
            add(
                "Classification",
                file,
                "image/svg+xml",
                chart.svg().into_bytes(),
            )?;
        }
    }

    // attributions: the library's PNG plots
    let explanation_path = dir.join("explanation.json");
    if explanation_path.is_file() {
        let e = Explanation::load_json(&explanation_path)?;
        let opts = plots::PlotOptions::default().width(800);
        let bar = img_dir.join("importance.png");
        plots::bar(&e.global_importance(), &bar, &opts)?;
        let swarm = img_dir.join("beeswarm.png");
        plots::beeswarm(&e, 0, &swarm, &opts)?;
        for p in [bar, swarm] {
            let bytes = std::fs::read(&p).map_err(|err| CliError::io(&p, err))?;
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("plot.png")
                .to_string();
            add("Feature attributions", &name, "image/png", bytes)?;
        }
    }

    let mut html = String::new();
    let title = format!("widedeep run {}", dir.display());
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}img{{margin:6px;border:1px solid #eee}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}</style>\
         </head><body><h1>{}</h1>",
        esc(&title),
        esc(&title)
    );
    html.push_str("<h2>Test metrics</h2><table>");
    if let Some(test) = metrics.get("test").and_then(|t| t.as_object()) {
        for (k, v) in test {
            let _ = write!(
                html,
                "<tr><th>{}</th><td>{:.4}</td></tr>",
                esc(k),
                v.as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    for (k, v) in &summary {
        let _ = write!(html, "<tr><th>{}</th><td>{v:.4}</td></tr>", esc(k));
    }
    for k in ["epochs", "fit_seconds", "train_rows", "test_rows"] {
        if let Some(v) = metrics.get(k) {
            let _ = write!(html, "<tr><th>{k}</th><td>{v}</td></tr>");
        }
    }
    html.push_str("</table>");
    if !confusion_html.is_empty() {
        let _ = write!(
            html,
            "<h2>Confusion matrix (test rows)</h2>{confusion_html}"
        );
    }
    for (heading, imgs) in &sections {
        let _ = write!(html, "<h2>{}</h2><div>", esc(heading));
        for (file, uri) in imgs {
            let _ = write!(html, "<img src=\"{uri}\" alt=\"{}\">", esc(file));
        }
        html.push_str("</div>");
    }
    // a check any browser runs: how many images decoded (read by the headless-browser test)
    html.push_str(
        "<script>window.addEventListener('load', function () {\
         var imgs = document.images, ok = 0;\
         for (var i = 0; i < imgs.length; i++) {\
         if (imgs[i].complete && imgs[i].naturalWidth > 0) { ok++; }\
         else { console.error('image did not load: ' + imgs[i].alt); } }\
         document.body.setAttribute('data-images-loaded', ok + '/' + imgs.length); });</script>",
    );
    html.push_str("</body></html>\n");
    let out = output
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.join("report.html"));
    std::fs::write(&out, html).map_err(|e| CliError::io(&out, e))?;
    Ok(Report { html: out, images })
}

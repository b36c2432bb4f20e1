//! Token highlighting of text columns as HTML.
use super::draw::{check_output, check_row, detail_of, detail_row, BLUE, RED};
use crate::error::{Result, WideDeepError};
use crate::explain::{DetailKind, Explanation};
use crate::macros::{bail, ensure};
use std::path::Path;

/// `s` with the HTML special characters escaped.
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
/// (explainers made by `Explainer::for_pipeline` record them), else the token ids. Positions
/// whose id is `pad_id` are skipped.
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
    let detail = detail_of(e, feature, "token", "text")?;
    let DetailKind::Tokens {
        seq_len,
        token_ids,
        tokens: known,
    } = &detail.kind
    else {
        bail!(config("feature"), "`{feature}` is not a text feature");
    };
    check_row(e, row)?;
    if let Some(t) = tokens {
        ensure!(
            t.len() == *seq_len,
            config("tokens"),
            "{} tokens for {seq_len} positions",
            t.len()
        );
    }
    let vals = detail_row(detail, row, output, e.n_outputs());
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

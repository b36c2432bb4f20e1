//! The data shown beside the values: each row's feature values as numbers (for colouring) and
//! text (categories, decoded text, image shapes), and the token strings of token values.
use super::features::Slot;
use super::{host_values, to_vec_f64, Detail, DetailKind, Explainer, Explanation};
use crate::error::Result;
use crate::models::ModelInput;
use polars::prelude::{DataFrame, DataType};
use tch::{Kind, Tensor};

impl Explainer<'_> {
    /// The data shown for each row and feature: a continuous value, else a categorical or wide
    /// code (with its category string when the preprocessors are known).
    pub(super) fn shown_values(&self, x: &ModelInput) -> (Vec<Option<f64>>, Vec<String>) {
        let n = x.batch_size() as usize;
        let p = self.features.len();
        let col_f64 = |t: &Option<Tensor>, j: usize| -> Vec<f64> {
            t.as_ref()
                .map(|t| to_vec_f64(&t.select(1, j as i64)))
                .unwrap_or_default()
        };
        let mut data = vec![None; n * p];
        let mut display = vec![String::new(); n * p];
        for (j, f) in self.features.iter().enumerate() {
            let pick = f
                .slots
                .iter()
                .find(|s| matches!(s, Slot::Cont(_)))
                .or_else(|| f.slots.iter().find(|s| matches!(s, Slot::Cat(_))))
                .or_else(|| f.slots.iter().find(|s| matches!(s, Slot::Wide(_))));
            let Some(&slot) = pick else { continue };
            let (vals, label): (Vec<f64>, Box<dyn Fn(f64) -> String>) = match slot {
                Slot::Cont(c) => (col_f64(&x.cont, c), Box::new(fmt_num)),
                Slot::Cat(c) => {
                    let name = self.names.cat[c].clone();
                    let tab = self.prep.and_then(|p| p.tab.as_ref());
                    (
                        col_f64(&x.cat, c),
                        Box::new(move |v: f64| {
                            tab.and_then(|t| t.category_of(&name, v as i64))
                                .map_or_else(|| format!("#{v:.0}"), |s| s.to_string())
                        }),
                    )
                }
                Slot::Wide(c) => {
                    let wide = self.prep.and_then(|p| p.wide.as_ref());
                    (
                        col_f64(&x.wide, c),
                        Box::new(move |v: f64| {
                            wide.and_then(|w| w.feature_of(v as i64))
                                .map_or_else(|| format!("#{v:.0}"), |(_, s)| s)
                        }),
                    )
                }
                _ => continue,
            };
            for (r, v) in vals.into_iter().enumerate().take(n) {
                data[r * p + j] = Some(v);
                display[r * p + j] = label(v);
            }
        }
        // text columns: the text decoded from the token ids (the ids without the
        // preprocessor); image columns: the image's shape (explain_df shows paths instead)
        for (j, f) in self.features.iter().enumerate() {
            if !display[j..].iter().step_by(p).all(String::is_empty) {
                continue;
            }
            for slot in &f.slots {
                match *slot {
                    Slot::Text(c) => {
                        let ids = &x.text[c];
                        let len = ids.size().get(1).copied().unwrap_or(0) as usize;
                        let flat: Vec<i64> = host_values(ids, Kind::Int64).unwrap_or_default();
                        for (r, row) in flat.chunks(len.max(1)).enumerate().take(n) {
                            display[r * p + j] = self.text_of(c, row);
                        }
                    }
                    Slot::Image(c) => {
                        let dims: Vec<String> = x.image[c]
                            .size()
                            .iter()
                            .skip(1)
                            .map(|d| d.to_string())
                            .collect();
                        for r in 0..n {
                            display[r * p + j] = format!("image {}", dims.join("×"));
                        }
                    }
                    _ => continue,
                }
                break;
            }
        }
        (data, display)
    }

    /// The fitted text preprocessor of text input `c`, when the pipeline is known.
    fn text_prep(&self, c: usize) -> Option<&widedeep_preprocessing::TextPreprocessor> {
        self.prep.and_then(|p| p.text.get(c))
    }

    /// The token strings of ids `ids` of text input `c` (`None` without its preprocessor).
    fn tokens_of(&self, c: usize, ids: &[i64]) -> Option<Vec<String>> {
        let tok = self.text_prep(c)?.tokenizer().ok()?;
        Some(
            ids.iter()
                .map(|&id| {
                    u32::try_from(id)
                        .ok()
                        .and_then(|id| tok.id_to_token(id))
                        .unwrap_or_else(|| format!("#{id}"))
                })
                .collect(),
        )
    }

    /// A row of token ids of text input `c` as text: its tokens without padding, joined by
    /// spaces (the ids themselves without the preprocessor).
    fn text_of(&self, c: usize, ids: &[i64]) -> String {
        let pad = self
            .text_prep(c)
            .and_then(|t| t.meta().ok())
            .map(|m| m.pad_id);
        let kept: Vec<i64> = ids.iter().copied().filter(|&id| Some(id) != pad).collect();
        match self.tokens_of(c, &kept) {
            Some(tokens) => tokens.join(" "),
            None => {
                let ids: Vec<String> = kept.iter().map(|id| id.to_string()).collect();
                format!("token ids [{}]", ids.join(" "))
            }
        }
    }

    /// Fills the token strings of the token-level details (needs the text preprocessors).
    pub(super) fn name_tokens(&self, details: &mut [Detail]) {
        for d in details {
            let DetailKind::Tokens {
                seq_len,
                token_ids,
                tokens,
            } = &mut d.kind
            else {
                continue;
            };
            let text = self
                .features
                .iter()
                .find(|f| f.name == d.feature)
                .and_then(|f| {
                    f.slots.iter().find_map(|s| match s {
                        Slot::Text(c) => Some(*c),
                        _ => None,
                    })
                });
            if let Some(names) = text.and_then(|c| self.tokens_of(c, token_ids)) {
                if names.len() == token_ids.len() && *seq_len > 0 {
                    *tokens = names;
                }
            }
        }
    }
}

/// A number as short text: integers without decimals, others with up to 4 significant digits.
pub(crate) fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e12 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Replaces the shown values of the features named after columns of `df` by the DataFrame's
/// own: numbers (also for colouring), strings as they are (categories, raw text, image
/// paths), the size of encoded images.
pub(super) fn show_dataframe(e: &mut Explanation, df: &DataFrame) -> Result<()> {
    let p = e.n_features();
    for (j, name) in e.feature_names.clone().iter().enumerate() {
        let Ok(col) = df.column(name) else { continue };
        let dtype = col.dtype();
        if dtype.is_primitive_numeric() || dtype.is_bool() {
            let vals = col.cast(&DataType::Float64)?;
            for (r, v) in vals.f64()?.iter().enumerate() {
                e.data[r * p + j] = v;
                e.display[r * p + j] = v.map_or_else(|| "null".into(), fmt_num);
            }
        } else if let DataType::Binary = dtype {
            // encoded images: their size (the decoded shape stays from `explain`)
            for (r, v) in col.binary()?.iter().enumerate() {
                let shown = v.map_or_else(
                    || "null".into(),
                    |b| format!("{} ({} bytes)", e.display[r * p + j], b.len()),
                );
                e.display[r * p + j] = shown;
            }
        } else if let Ok(vals) = col.cast(&DataType::String) {
            // strings as they are: categories, raw text, image paths
            for (r, v) in vals.str()?.iter().enumerate() {
                e.display[r * p + j] = v.map_or_else(|| "null".into(), |s| s.to_string());
            }
        }
    }
    Ok(())
}

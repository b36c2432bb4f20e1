//! [`Explanation`] (per-row attributions) and [`GlobalImportance`] (one score per feature).
use crate::error::{Result, WideDeepError};
use crate::macros::{bail, ensure};
use polars::prelude::{Column, DataFrame};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Finer-grained values inside one feature: per token of a text column or per region of an
/// image column (gradient methods only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DetailKind {
    /// `seq_len` token positions; `token_ids` holds the ids `[N, seq_len]` of the explained
    /// rows, `tokens` their strings `[N, seq_len]` when the text preprocessor is known (an
    /// explainer made by [`crate::explain::Explainer::for_pipeline`]), else it is empty.
    Tokens {
        /// Token positions per row.
        seq_len: usize,
        /// `[N, seq_len]`: the token ids of the explained rows.
        token_ids: Vec<i64>,
        /// `[N, seq_len]`: the token strings, or empty.
        #[serde(default)]
        tokens: Vec<String>,
    },
    /// A `rows × cols` grid of image regions (row-major), each the sum over its pixels and the
    /// three channels.
    Regions {
        /// Rows of regions.
        rows: usize,
        /// Columns of regions.
        cols: usize,
    },
}

/// Token or region values of one feature, `values` `[N, positions, outputs]` row-major; they
/// sum, over the positions, to the feature's value in [`Explanation::values`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Detail {
    /// The feature (text or image column) they refine.
    pub feature: String,
    /// Tokens or regions, and their layout.
    #[serde(flatten)]
    pub kind: DetailKind,
    /// `[N, positions, outputs]`.
    pub values: Vec<f64>,
}

impl Detail {
    /// Number of positions (tokens or regions) per row.
    pub fn positions(&self) -> usize {
        match &self.kind {
            DetailKind::Tokens { seq_len, .. } => *seq_len,
            DetailKind::Regions { rows, cols } => rows * cols,
        }
    }
}

/// Attributions of `n_rows` predictions to `feature_names.len()` features, for each of
/// `output_names.len()` model outputs.
///
/// `values[(r * n_features + j) * n_outputs + k]` is feature `j`'s contribution to output `k`
/// of row `r` (see [`Explanation::value`]); with `base_values[r * n_outputs + k]` they add up to
/// `predictions[r * n_outputs + k]` up to `additivity_gap` (exact for the Shapley methods,
/// a quadrature or sampling error for the gradient methods). `data` and `display` hold the
/// value of each feature shown in plots (`[N, n_features]`; `data` numeric for colouring,
/// `None` where there is none, `display` as text).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The method that produced it (`"kernel_shap"`, `"gradient_shap"`, ...).
    pub method: String,
    /// What is explained: `"raw"` (logits, or the value for regression) or `"probability"`.
    pub output: String,
    /// One name per explained output (e.g. `logit P(>50K)`).
    pub output_names: Vec<String>,
    /// One name per feature.
    pub feature_names: Vec<String>,
    /// For each feature, the model inputs it covers (e.g. `["wide:education", "cat:education"]`).
    pub groups: Vec<Vec<String>>,
    /// Number of explained rows N.
    pub n_rows: usize,
    /// `[N, n_features, n_outputs]`.
    pub values: Vec<f64>,
    /// `[N, n_outputs]`: the expected output over the background (or the output at the IG
    /// baseline).
    pub base_values: Vec<f64>,
    /// `[N, n_outputs]`: the model output f(x) being explained.
    pub predictions: Vec<f64>,
    /// `[N, n_outputs]`: Σ values − (prediction − base value).
    pub additivity_gap: Vec<f64>,
    /// `[N, n_features]`: numeric feature values (for colouring), `None` where not numeric.
    pub data: Vec<Option<f64>>,
    /// `[N, n_features]`: the feature values as text (empty when unknown).
    pub display: Vec<String>,
    /// Token-level and region-level values of text and image features.
    #[serde(default)]
    pub details: Vec<Detail>,
}

impl Explanation {
    /// Number of features.
    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    /// Number of explained outputs.
    pub fn n_outputs(&self) -> usize {
        self.output_names.len()
    }

    /// Feature `feature`'s contribution to output `output` of row `row`.
    pub fn value(&self, row: usize, feature: usize, output: usize) -> f64 {
        self.values[(row * self.n_features() + feature) * self.n_outputs() + output]
    }

    /// The base value of output `output` for row `row`.
    pub fn base_value(&self, row: usize, output: usize) -> f64 {
        self.base_values[row * self.n_outputs() + output]
    }

    /// The explained output f(x) `output` of row `row`.
    pub fn prediction(&self, row: usize, output: usize) -> f64 {
        self.predictions[row * self.n_outputs() + output]
    }

    /// The numeric value of a feature in a row, if it has one.
    pub fn data_value(&self, row: usize, feature: usize) -> Option<f64> {
        self.data[row * self.n_features() + feature]
    }

    /// The value of a feature in a row, as text.
    pub fn display_value(&self, row: usize, feature: usize) -> &str {
        &self.display[row * self.n_features() + feature]
    }

    /// Index of the feature called `name`.
    pub fn feature_index(&self, name: &str) -> Option<usize> {
        self.feature_names.iter().position(|f| f == name)
    }

    /// The values of output `output` as `[N][n_features]`.
    pub fn values_for_output(&self, output: usize) -> Vec<Vec<f64>> {
        (0..self.n_rows)
            .map(|r| {
                (0..self.n_features())
                    .map(|j| self.value(r, j, output))
                    .collect()
            })
            .collect()
    }

    /// Largest |Σ values − (prediction − base value)| over rows and outputs.
    pub fn max_additivity_gap(&self) -> f64 {
        self.additivity_gap
            .iter()
            .fold(0.0, |m, g| if g.abs() > m { g.abs() } else { m })
    }

    /// Σ |gap| / Σ |prediction − base value|: the additivity gap relative to the size of what
    /// is explained (0 when nothing is to explain).
    pub fn relative_additivity_gap(&self) -> f64 {
        let gap: f64 = self.additivity_gap.iter().map(|g| g.abs()).sum();
        let total: f64 = self
            .predictions
            .iter()
            .zip(&self.base_values)
            .map(|(p, b)| (p - b).abs())
            .sum();
        if total > 0.0 {
            gap / total
        } else {
            0.0
        }
    }

    /// The token or region values of feature `name`, if any.
    pub fn detail(&self, name: &str) -> Option<&Detail> {
        self.details.iter().find(|d| d.feature == name)
    }

    /// Mean |value| of each feature over the rows (and over the outputs when there are
    /// several).
    pub fn global_importance(&self) -> GlobalImportance {
        self.mean_abs(0..self.n_outputs())
    }

    /// Mean |value| of each feature for output `output` only.
    pub fn global_importance_for(&self, output: usize) -> GlobalImportance {
        self.mean_abs(output..output + 1)
    }

    /// Mean |value| of each feature over the rows and the outputs `outputs`.
    fn mean_abs(&self, outputs: std::ops::Range<usize>) -> GlobalImportance {
        let mut imp = vec![0.0; self.n_features()];
        for r in 0..self.n_rows {
            for (j, acc) in imp.iter_mut().enumerate() {
                for o in outputs.clone() {
                    *acc += self.value(r, j, o).abs();
                }
            }
        }
        let denom = (self.n_rows * outputs.len()).max(1) as f64;
        GlobalImportance {
            source: format!(
                "mean |{} value| on {}",
                self.method,
                self.output_names[outputs].join(", ")
            ),
            feature_names: self.feature_names.clone(),
            importance: imp.into_iter().map(|v| v / denom).collect(),
        }
    }

    /// The rows `rows`, in that order, as a new explanation.
    pub fn select_rows(&self, rows: &[usize]) -> Result<Explanation> {
        if let Some(&bad) = rows.iter().find(|&&r| r >= self.n_rows) {
            bail!(
                config("rows"),
                "row {bad} out of range (the explanation has {})",
                self.n_rows
            );
        }
        let (p, k) = (self.n_features(), self.n_outputs());
        let pick = |v: &[f64], width: usize| -> Vec<f64> {
            rows.iter()
                .flat_map(|&r| v[r * width..(r + 1) * width].iter().copied())
                .collect()
        };
        let details = self
            .details
            .iter()
            .map(|d| {
                let width = d.positions() * k;
                let kind = match &d.kind {
                    DetailKind::Tokens {
                        seq_len,
                        token_ids,
                        tokens,
                    } => {
                        let pick_row = |v: &[String], r: usize| -> Vec<String> {
                            v.get(r * seq_len..(r + 1) * seq_len)
                                .map_or_else(Vec::new, |s| s.to_vec())
                        };
                        DetailKind::Tokens {
                            seq_len: *seq_len,
                            token_ids: rows
                                .iter()
                                .flat_map(|&r| token_ids[r * seq_len..(r + 1) * seq_len].to_vec())
                                .collect(),
                            tokens: rows.iter().flat_map(|&r| pick_row(tokens, r)).collect(),
                        }
                    }
                    other => other.clone(),
                };
                Detail {
                    feature: d.feature.clone(),
                    kind,
                    values: pick(&d.values, width),
                }
            })
            .collect();
        Ok(Explanation {
            method: self.method.clone(),
            output: self.output.clone(),
            output_names: self.output_names.clone(),
            feature_names: self.feature_names.clone(),
            groups: self.groups.clone(),
            n_rows: rows.len(),
            values: pick(&self.values, p * k),
            base_values: pick(&self.base_values, k),
            predictions: pick(&self.predictions, k),
            additivity_gap: pick(&self.additivity_gap, k),
            data: rows
                .iter()
                .flat_map(|&r| self.data[r * p..(r + 1) * p].to_vec())
                .collect(),
            display: rows
                .iter()
                .flat_map(|&r| self.display[r * p..(r + 1) * p].to_vec())
                .collect(),
            details,
        })
    }

    /// One row per explained row (and per output when there are several): `row`, `output`
    /// (only with several outputs), `base_value`, one column of values per feature,
    /// `prediction` and `additivity_gap`. A feature whose name clashes with those columns gets
    /// the suffix `_value`.
    pub fn to_dataframe(&self) -> Result<DataFrame> {
        let (n, p, k) = (self.n_rows, self.n_features(), self.n_outputs());
        let reserved = [
            "row",
            "output",
            "base_value",
            "prediction",
            "additivity_gap",
        ];
        let mut columns = Vec::with_capacity(p + 5);
        let rows: Vec<u32> = (0..n).flat_map(|r| vec![r as u32; k]).collect();
        columns.push(Column::new("row".into(), rows));
        if k > 1 {
            let outs: Vec<String> = (0..n).flat_map(|_| self.output_names.clone()).collect();
            columns.push(Column::new("output".into(), outs));
        }
        columns.push(Column::new("base_value".into(), self.base_values.clone()));
        for (j, name) in self.feature_names.iter().enumerate() {
            let col: Vec<f64> = (0..n)
                .flat_map(|r| (0..k).map(move |o| (r, o)))
                .map(|(r, o)| self.value(r, j, o))
                .collect();
            let name = if reserved.contains(&name.as_str()) {
                format!("{name}_value")
            } else {
                name.clone()
            };
            columns.push(Column::new(name.as_str().into(), col));
        }
        columns.push(Column::new("prediction".into(), self.predictions.clone()));
        columns.push(Column::new(
            "additivity_gap".into(),
            self.additivity_gap.clone(),
        ));
        Ok(DataFrame::new(n * k, columns)?)
    }

    /// [`Explanation::to_dataframe`] followed by the data shown: one string column per
    /// feature, `<feature>_shown` (the category, the number, the raw text of a text column,
    /// the path or description of an image column).
    pub fn to_dataframe_with_data(&self) -> Result<DataFrame> {
        let mut df = self.to_dataframe()?;
        let (n, p, k) = (self.n_rows, self.n_features(), self.n_outputs());
        for (j, name) in self.feature_names.iter().enumerate() {
            let col: Vec<String> = (0..n)
                .flat_map(|r| std::iter::repeat_n(r, k))
                .map(|r| self.display[r * p + j].clone())
                .collect();
            df.with_column(Column::new(format!("{name}_shown").into(), col))?;
        }
        Ok(df)
    }

    /// The explanation as JSON (every field; see [`Explanation::from_json`]).
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string(self)?)
    }

    /// An explanation from [`Explanation::to_json`]'s text, its shapes checked.
    pub fn from_json(text: &str) -> Result<Self> {
        let e: Explanation = serde_json::from_str(text)?;
        e.check_shapes()?;
        Ok(e)
    }

    /// Writes [`Explanation::to_json`] to `path`.
    pub fn save_json(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_json()?).map_err(|e| WideDeepError::io(path, e))
    }

    /// Reads [`Explanation::save_json`]'s file.
    pub fn load_json(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| WideDeepError::io(path, e))?;
        Self::from_json(&text)
    }

    /// Checks that every array has the length its shape implies.
    pub(crate) fn check_shapes(&self) -> Result<()> {
        let (n, p, k) = (self.n_rows, self.n_features(), self.n_outputs());
        let checks = [
            ("values", self.values.len(), n * p * k),
            ("base_values", self.base_values.len(), n * k),
            ("predictions", self.predictions.len(), n * k),
            ("additivity_gap", self.additivity_gap.len(), n * k),
            ("data", self.data.len(), n * p),
            ("display", self.display.len(), n * p),
            ("groups", self.groups.len(), p),
        ];
        for (field, got, want) in checks {
            ensure!(
                got == want,
                config(format!("explanation.{field}")),
                "has {got} entries, expected {want}"
            );
        }
        for d in &self.details {
            ensure!(
                d.values.len() == n * d.positions() * k,
                config(format!("explanation.details[{}]", d.feature)),
                "values do not match rows × positions × outputs"
            );
        }
        Ok(())
    }
}

/// One non-negative score per feature: the mean |attribution| of an [`Explanation`], or the
/// attention / feature-mask importance a component reports
/// ([`GlobalImportance::from_component`], [`GlobalImportance::from_model`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GlobalImportance {
    /// Where the scores come from (e.g. `"mean |kernel_shap| (raw)"`).
    pub source: String,
    /// One name per feature.
    pub feature_names: Vec<String>,
    /// One score per feature.
    pub importance: Vec<f64>,
}

impl GlobalImportance {
    /// `(feature, importance)` pairs, most important first (ties keep feature order).
    pub fn ranked(&self) -> Vec<(String, f64)> {
        let mut pairs: Vec<(String, f64)> = self
            .feature_names
            .iter()
            .cloned()
            .zip(self.importance.iter().copied())
            .collect();
        pairs.sort_by(|a, b| b.1.total_cmp(&a.1));
        pairs
    }

    /// The `n` most important features.
    pub fn top(&self, n: usize) -> Vec<(String, f64)> {
        let mut r = self.ranked();
        r.truncate(n);
        r
    }

    /// Scores divided by their sum (unchanged when they sum to 0).
    pub fn normalized(&self) -> GlobalImportance {
        let total: f64 = self.importance.iter().sum();
        let importance = if total > 0.0 {
            self.importance.iter().map(|v| v / total).collect()
        } else {
            self.importance.clone()
        };
        GlobalImportance {
            source: self.source.clone(),
            feature_names: self.feature_names.clone(),
            importance,
        }
    }

    /// Columns `feature` and `importance`, most important first.
    pub fn to_dataframe(&self) -> Result<DataFrame> {
        let ranked = self.ranked();
        let names: Vec<String> = ranked.iter().map(|(n, _)| n.clone()).collect();
        let vals: Vec<f64> = ranked.iter().map(|(_, v)| *v).collect();
        Ok(DataFrame::new(
            names.len(),
            vec![
                Column::new("feature".into(), names),
                Column::new("importance".into(), vals),
            ],
        )?)
    }

    /// The importances as JSON.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string(self)?)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A hand-made explanation: 3 rows, features a, b, c, one output.
    pub(crate) fn toy() -> Explanation {
        let values = vec![0.5, -0.2, 0.0, 1.0, 0.1, -0.3, -0.5, 0.4, 0.2];
        let base = vec![0.1; 3];
        let predictions: Vec<f64> = (0..3)
            .map(|r| 0.1 + values[r * 3..r * 3 + 3].iter().sum::<f64>())
            .collect();
        Explanation {
            method: "toy".into(),
            output: "raw".into(),
            output_names: vec!["raw".into()],
            feature_names: vec!["a".into(), "b".into(), "c".into()],
            groups: vec![
                vec!["cat:a".into()],
                vec!["cont:b".into()],
                vec!["cat:c".into()],
            ],
            n_rows: 3,
            values,
            base_values: base,
            predictions,
            additivity_gap: vec![0.0; 3],
            data: vec![
                Some(1.0),
                Some(0.5),
                None,
                Some(2.0),
                Some(-1.0),
                None,
                Some(3.0),
                Some(0.0),
                None,
            ],
            display: ["x", "0.5", "", "y", "-1", "", "z", "0", ""]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            details: vec![],
        }
    }

    #[test]
    fn global_importance_is_mean_absolute_value_ranked() {
        let e = toy();
        let g = e.global_importance();
        let want = [(0.5 + 1.0 + 0.5) / 3.0, (0.2 + 0.1 + 0.4) / 3.0, 0.5 / 3.0];
        for (a, b) in g.importance.iter().zip(want) {
            assert!((a - b).abs() < 1e-12);
        }
        let ranked: Vec<String> = g.ranked().into_iter().map(|(n, _)| n).collect();
        assert_eq!(ranked, ["a", "b", "c"]);
        assert!((g.normalized().importance.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn json_round_trip_and_shape_checks() {
        let e = toy();
        let back = Explanation::from_json(&e.to_json().unwrap()).unwrap();
        assert_eq!(back, e);
        let mut bad = e.clone();
        bad.values.pop();
        let err = Explanation::from_json(&bad.to_json().unwrap()).unwrap_err();
        assert!(err.to_string().contains("explanation.values"), "{err}");
    }

    #[test]
    fn dataframe_has_one_column_per_feature() {
        let df = toy().to_dataframe().unwrap();
        assert_eq!(df.height(), 3);
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "row",
                "base_value",
                "a",
                "b",
                "c",
                "prediction",
                "additivity_gap"
            ]
        );
        let b: Vec<f64> = df
            .column("b")
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(b, [-0.2, 0.1, 0.4]);
    }

    #[test]
    fn dataframe_with_data_carries_the_shown_values() {
        let df = toy().to_dataframe_with_data().unwrap();
        assert_eq!(df.width(), 7 + 3);
        let a = df.column("a_shown").unwrap().str().unwrap();
        assert_eq!(a.iter().flatten().collect::<Vec<_>>(), ["x", "y", "z"]);
    }

    #[test]
    fn select_rows_keeps_everything_aligned() {
        let e = toy();
        let s = e.select_rows(&[2, 0]).unwrap();
        assert_eq!(s.n_rows, 2);
        assert_eq!(s.value(0, 1, 0), e.value(2, 1, 0));
        assert_eq!(s.display_value(1, 0), "x");
        s.check_shapes().unwrap();
        assert!(e.select_rows(&[3]).is_err());
    }
}

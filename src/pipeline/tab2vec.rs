//! Tab2Vec: the learned vector representation of each row of a DataFrame, as a DataFrame.
use crate::error::{Result, WideDeepError};
use crate::macros::ensure;
use crate::models::{Component, WideDeep};
use crate::pipeline::{Pipeline, Preprocessors};
use crate::training::Dataset;
use polars::prelude::{Column, DataFrame, IntoColumn, NamedFrom, Series};
use std::collections::HashSet;
use tch::{Device, Kind, Tensor};
use widedeep_preprocessing::{TabPreprocessor, Transform};

/// Turns DataFrame rows into the vectors a fitted tabular model sees at its embedding layer (the
/// reference's `Tab2Vec`): each categorical column becomes its embedding, `embed_dim` columns
/// named `<col>_emb_<k>`; each continuous column becomes its value as the model receives it
/// (after the `TabPreprocessor`'s imputation and scaling), named `<col>`, or its embedding
/// `<col>_emb_<k>` for models that embed continuous columns.
///
/// Works with any tabular component that implements [`Component::embed`] (TabMlp, TabResnet,
/// TabNet, ...). Runs in evaluation mode without gradients, in batches.
///
/// ```no_run
/// # fn main() -> widedeep::Result<()> {
/// # let pipeline: widedeep::pipeline::Pipeline = unimplemented!();
/// # let df: polars::prelude::DataFrame = unimplemented!();
/// use widedeep::pipeline::Tab2Vec;
/// let vectors = Tab2Vec::from_pipeline(&pipeline)?.keep_original(true).transform(&df)?;
/// # Ok(())
/// # }
/// ```
pub struct Tab2Vec<'a> {
    tab: &'a TabPreprocessor,
    component: &'a dyn Component,
    device: Device,
    keep_original: bool,
    batch_size: i64,
}

impl std::fmt::Debug for Tab2Vec<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tab2Vec")
            .field("component", &self.component)
            .field("keep_original", &self.keep_original)
            .field("batch_size", &self.batch_size)
            .finish()
    }
}

impl<'a> Tab2Vec<'a> {
    /// Uses the fitted tabular preprocessor of `preprocessors` and the tabular component of
    /// `model` (its `deeptabular`; for a model built from components, the first one).
    pub fn new(preprocessors: &'a Preprocessors, model: &'a WideDeep) -> Result<Self> {
        let tab = preprocessors
            .tab
            .as_ref()
            .ok_or_else(|| WideDeepError::Missing("Tab2Vec needs a tabular preprocessor".into()))?;
        tab.meta()?; // fitted
        let has_tab = model.config().is_none_or(|c| c.deeptabular.is_some());
        let component = model
            .components()
            .first()
            .filter(|_| has_tab)
            .ok_or_else(|| WideDeepError::Missing("the model has no tabular component".into()))?;
        Ok(Self {
            tab,
            component: component.as_ref(),
            device: model.device(),
            keep_original: false,
            batch_size: 4096,
        })
    }

    /// [`Tab2Vec::new`] with a pipeline's preprocessors and model.
    pub fn from_pipeline(pipeline: &'a Pipeline) -> Result<Self> {
        Self::new(&pipeline.preprocessors, pipeline.trainer.model())
    }

    /// Keep the input DataFrame's columns, in front of the vectors. A vector column whose name
    /// is already taken (a continuous column) then gets the suffix `_vec`.
    pub fn keep_original(mut self, on: bool) -> Self {
        self.keep_original = on;
        self
    }

    /// Rows per forward pass (default 4096).
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.batch_size = rows.max(1) as i64;
        self
    }

    /// The vectors of the rows of `df` (which needs the tabular preprocessor's columns): one
    /// `f32` column per embedding dimension, in the order of [`Component::feature_names`],
    /// preceded by `df`'s own columns with [`Tab2Vec::keep_original`].
    pub fn transform(&self, df: &DataFrame) -> Result<DataFrame> {
        let data = Dataset::from_arrays(None, Some(&self.tab.transform(df)?), None)?;
        let names = self.component.feature_names();
        let mut parts: Vec<Vec<Tensor>> = names.iter().map(|_| Vec::new()).collect();
        for batch in data.batches(self.batch_size) {
            let input = batch.input.to_device(self.device);
            self.component.check_input(&input)?;
            let embedded = tch::no_grad(|| self.component.embed(&input)).ok_or_else(|| {
                WideDeepError::Missing(
                    "the tabular component does not implement Component::embed".into(),
                )
            })?;
            ensure!(
                embedded.len() == names.len(),
                input("tab2vec"),
                "the component embeds {} columns but names {}",
                embedded.len(),
                names.len()
            );
            for (slot, t) in parts.iter_mut().zip(embedded) {
                let rows = t.size()[0];
                slot.push(
                    t.reshape([rows, -1])
                        .to_kind(Kind::Float)
                        .to_device(Device::Cpu),
                );
            }
        }
        let n_rows = df.height();
        let cont: HashSet<String> = self.tab.meta()?.cont.into_iter().collect();
        let taken: HashSet<String> = if self.keep_original {
            df.get_column_names()
                .iter()
                .map(|c| c.to_string())
                .collect()
        } else {
            HashSet::new()
        };
        let mut columns: Vec<Column> = if self.keep_original {
            df.columns().to_vec()
        } else {
            Vec::new()
        };
        for (name, chunks) in names.iter().zip(parts) {
            let values = if chunks.is_empty() {
                Tensor::zeros([0, 1], (Kind::Float, Device::Cpu))
            } else {
                Tensor::cat(&chunks, 0)
            };
            let width = values.size()[1];
            // one contiguous run of n_rows values per output column
            let flat = Vec::<f32>::try_from(values.tr().contiguous().view([-1]))?;
            for k in 0..width as usize {
                let mut col = if width == 1 && cont.contains(name) {
                    name.clone()
                } else {
                    format!("{name}_emb_{k}")
                };
                if taken.contains(&col) {
                    col.push_str("_vec");
                }
                let slice = &flat[k * n_rows..(k + 1) * n_rows];
                columns.push(Series::new(col.as_str().into(), slice).into_column());
            }
        }
        Ok(DataFrame::new(n_rows, columns)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{TabMlpConfig, TabNetConfig, TabResnetConfig, WideDeepConfig};
    use polars::prelude::*;

    fn frame() -> DataFrame {
        df!(
            "city" => ["Oslo", "Lima", "Oslo", "Rome", "Lima"],
            "temp" => [1.0f64, 2.0, 3.0, 4.0, 5.0],
            "id" => [10i64, 11, 12, 13, 14],
        )
        .unwrap()
    }

    fn preprocessors() -> Preprocessors {
        let mut prep = Preprocessors::new().tab(
            TabPreprocessor::new(&["city"], &["temp"])
                .embed_dim_for("city", 2)
                .scaling(widedeep_preprocessing::Scaling::None),
        );
        prep.fit(&frame()).unwrap();
        prep
    }

    #[test]
    fn vectors_are_the_embedding_rows_and_the_values() {
        let prep = preprocessors();
        let meta = prep.tab_meta().unwrap();
        let configs: Vec<WideDeepConfig> = vec![
            WideDeepConfig::new().deeptabular(TabMlpConfig::from_meta(&meta)),
            WideDeepConfig::new().deeptabular(TabResnetConfig::from_meta(&meta)),
            WideDeepConfig::new().deeptabular(TabNetConfig::from_meta(&meta)),
        ];
        for cfg in configs {
            let model = WideDeep::new(&cfg, Device::Cpu).unwrap();
            let out = Tab2Vec::new(&prep, &model)
                .unwrap()
                .batch_size(2)
                .transform(&frame())
                .unwrap();
            let names: Vec<&str> = out.get_column_names().iter().map(|c| c.as_str()).collect();
            assert_eq!(names, vec!["city_emb_0", "city_emb_1", "temp"]);
            // Lima = 1, Oslo = 2, Rome = 3: row r of city's vectors is row code[r] of the table.
            let table = model.var_store().variables()["deeptabular.embed.emb_0.weight"].copy();
            for (row, code) in [2i64, 1, 2, 3, 1].into_iter().enumerate() {
                for k in 0..2 {
                    let got = out
                        .column(&format!("city_emb_{k}"))
                        .unwrap()
                        .f32()
                        .unwrap()
                        .get(row)
                        .unwrap();
                    let want = table.double_value(&[code, k as i64]) as f32;
                    assert_eq!(got, want, "row {row} dim {k}");
                }
            }
            let temp: Vec<f32> = out
                .column("temp")
                .unwrap()
                .f32()
                .unwrap()
                .into_no_null_iter()
                .collect();
            assert_eq!(temp, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        }
    }

    #[test]
    fn keep_original_puts_the_input_first_and_renames_clashes() {
        let prep = preprocessors();
        let cfg =
            WideDeepConfig::new().deeptabular(TabMlpConfig::from_meta(&prep.tab_meta().unwrap()));
        let model = WideDeep::new(&cfg, Device::Cpu).unwrap();
        let out = Tab2Vec::new(&prep, &model)
            .unwrap()
            .keep_original(true)
            .transform(&frame())
            .unwrap();
        let names: Vec<&str> = out.get_column_names().iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            vec!["city", "temp", "id", "city_emb_0", "city_emb_1", "temp_vec"]
        );
        assert_eq!(out.height(), 5);
    }

    #[test]
    fn errors_are_typed() {
        let prep = preprocessors();
        let wide_only = WideDeep::new(
            &WideDeepConfig::new().wide(crate::models::WideConfig::new(4)),
            Device::Cpu,
        )
        .unwrap();
        assert!(Tab2Vec::new(&prep, &wide_only).is_err());
        let cfg =
            WideDeepConfig::new().deeptabular(TabMlpConfig::from_meta(&prep.tab_meta().unwrap()));
        let model = WideDeep::new(&cfg, Device::Cpu).unwrap();
        assert!(Tab2Vec::new(&Preprocessors::new(), &model).is_err());
        let t2v = Tab2Vec::new(&prep, &model).unwrap();
        let err = t2v.transform(&frame().drop("city").unwrap()).unwrap_err();
        assert!(err.to_string().contains("city"), "{err}");
    }
}

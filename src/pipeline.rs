//! A fitted pipeline — preprocessors + model + trainer settings + history — that predicts from
//! DataFrames and saves to (and loads from) one directory.
//!
//! Directory layout: `pipeline.json` (preprocessors — fitted tokenizers included —, model
//! config, trainer config), `model.safetensors` (weights, batch-norm statistics and pretrained
//! BERT / ResNet weights included), `history.json`, and for each text column a copy of its
//! tokenizer as a Hugging Face `text_{i}_tokenizer.json` (for other tools; loading reads
//! `pipeline.json`).
use crate::error::{Result, WideDeepError};
use crate::models::{WideDeep, WideDeepConfig};
use crate::training::{Dataset, History, Metric, Objective, TargetSpec, Trainer, TrainerConfig};
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};
use widedeep_preprocessing::{
    ImageData, ImageMeta, ImagePreprocessor, TabData, TabMeta, TabPreprocessor, TargetData,
    TargetEncoder, TargetKind, TextData, TextMeta, TextPreprocessor, WideData, WidePreprocessor,
};

/// The preprocessors of each input, fitted together on one DataFrame.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Preprocessors {
    pub wide: Option<WidePreprocessor>,
    pub tab: Option<TabPreprocessor>,
    pub target: Option<TargetEncoder>,
    /// One per text column, in the order of `ModelInput::text` (the fitted tokenizers are
    /// saved inside `pipeline.json`).
    #[serde(default)]
    pub text: Vec<TextPreprocessor>,
    /// One per image column, in the order of `ModelInput::image`.
    #[serde(default)]
    pub image: Vec<ImagePreprocessor>,
    /// Target encoders of a multi-target model, one per target column in order: the target
    /// becomes `[N, T]` f32 (see [`crate::training::stack_targets`]) and
    /// [`Preprocessors::objective`] an [`Objective::MultiTarget`]. Used instead of `target`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub multi_target: Vec<TargetEncoder>,
}

impl Preprocessors {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn wide(mut self, p: WidePreprocessor) -> Self {
        self.wide = Some(p);
        self
    }
    pub fn tab(mut self, p: TabPreprocessor) -> Self {
        self.tab = Some(p);
        self
    }
    pub fn target(mut self, p: TargetEncoder) -> Self {
        self.target = Some(p);
        self
    }
    /// Adds a target column of a multi-target model (target `i` = the number added before).
    pub fn multi_target(mut self, p: TargetEncoder) -> Self {
        self.multi_target.push(p);
        self
    }
    /// Adds a text column (its output is `input.text[i]`, `i` = the number added before).
    pub fn text(mut self, p: TextPreprocessor) -> Self {
        self.text.push(p);
        self
    }
    /// Adds an image column (its output is `input.image[i]`).
    pub fn image(mut self, p: ImagePreprocessor) -> Self {
        self.image.push(p);
        self
    }

    /// Fits every preprocessor on `df`.
    pub fn fit(&mut self, df: &DataFrame) -> Result<()> {
        if self.target.is_some() && !self.multi_target.is_empty() {
            return Err(WideDeepError::config(
                "multi_target",
                "set either `target` or `multi_target`, not both",
            ));
        }
        if let Some(p) = &mut self.wide {
            p.fit(df)?;
        }
        if let Some(p) = &mut self.tab {
            p.fit(df)?;
        }
        if let Some(p) = &mut self.target {
            p.fit(df)?;
        }
        for p in &mut self.multi_target {
            p.fit(df)?;
        }
        for p in &mut self.text {
            p.fit(df)?;
        }
        for p in &mut self.image {
            p.fit(df)?;
        }
        Ok(())
    }

    /// Transforms `df` into tensors. The target is included when a target encoder is set and
    /// `df` has its column (so prediction data may lack it).
    pub fn transform(&self, df: &DataFrame) -> Result<Dataset> {
        let images = self
            .image
            .iter()
            .map(|p| p.transform(df))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        self.transform_with_images(df, &images)
    }

    /// Like [`Preprocessors::transform`], but the images are not decoded here: the data set
    /// keeps each image column's paths or bytes and the trainer decodes them batch by batch
    /// on a worker thread (for data whose images do not fit in memory). Training, evaluation
    /// and prediction give the same results as with `transform`. Fit first (`fit` decodes in
    /// chunks, so it does not hold every image either).
    pub fn transform_lazy(&self, df: &DataFrame) -> Result<Dataset> {
        let images = self
            .image
            .iter()
            .map(|p| p.rows(df))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let (wide, tab, texts, target, multi) = self.transform_parts(df)?;
        let mut data =
            Dataset::from_parts_lazy(wide.as_ref(), tab.as_ref(), &texts, images, target.as_ref())?;
        if multi.is_some() {
            data.target = multi;
        }
        Ok(data)
    }

    #[allow(clippy::type_complexity)]
    fn transform_parts(
        &self,
        df: &DataFrame,
    ) -> Result<(
        Option<WideData>,
        Option<TabData>,
        Vec<TextData>,
        Option<TargetData>,
        Option<Tensor>,
    )> {
        let wide = self.wide.as_ref().map(|p| p.transform(df)).transpose()?;
        let tab = self.tab.as_ref().map(|p| p.transform(df)).transpose()?;
        let target = match &self.target {
            Some(t)
                if df
                    .get_column_names()
                    .iter()
                    .any(|c| c.as_str() == t.column()) =>
            {
                Some(t.transform(df)?)
            }
            _ => None,
        };
        let texts = self
            .text
            .iter()
            .map(|p| p.transform(df))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        // a multi-target objective: one encoder per target column, stacked to `[N, T]`
        let has = |t: &TargetEncoder| {
            df.get_column_names()
                .iter()
                .any(|c| c.as_str() == t.column())
        };
        let multi = if !self.multi_target.is_empty() && self.multi_target.iter().all(has) {
            let cols = self
                .multi_target
                .iter()
                .map(|t| t.transform(df))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Some(crate::training::stack_targets(&cols)?)
        } else {
            None
        };
        Ok((wide, tab, texts, target, multi))
    }

    fn transform_with_images(&self, df: &DataFrame, images: &[ImageData]) -> Result<Dataset> {
        let (wide, tab, texts, target, multi) = self.transform_parts(df)?;
        let mut data =
            Dataset::from_parts(wide.as_ref(), tab.as_ref(), &texts, images, target.as_ref())?;
        if multi.is_some() {
            data.target = multi;
        }
        Ok(data)
    }
    /// Fits every preprocessor on `df` and transforms it (images are decoded once).
    pub fn fit_transform(&mut self, df: &DataFrame) -> Result<Dataset> {
        let mut images = std::mem::take(&mut self.image);
        let fitted = self.fit(df);
        let decoded = fitted.and_then(|_| {
            images
                .iter_mut()
                .map(|p| p.fit_transform(df).map_err(Into::into))
                .collect::<Result<Vec<_>>>()
        });
        self.image = images;
        self.transform_with_images(df, &decoded?)
    }

    /// Metadata of the fitted text preprocessor `i` (vocabulary size, pad id, length).
    pub fn text_meta(&self, i: usize) -> Result<TextMeta> {
        let p = self
            .text
            .get(i)
            .ok_or_else(|| WideDeepError::Missing(format!("no text preprocessor {i}")))?;
        Ok(p.meta()?)
    }

    /// Column, size and normalisation statistics of the fitted image preprocessor `i` (for
    /// `ImageInput::from_meta`, so that the model normalises with the fitted statistics).
    pub fn image_meta(&self, i: usize) -> Result<ImageMeta> {
        let p = self
            .image
            .get(i)
            .ok_or_else(|| WideDeepError::Missing(format!("no image preprocessor {i}")))?;
        Ok(p.meta()?)
    }

    /// `wide_dim` of the fitted wide preprocessor.
    pub fn wide_dim(&self) -> Result<usize> {
        let p = self
            .wide
            .as_ref()
            .ok_or_else(|| WideDeepError::Missing("no wide preprocessor".into()))?;
        Ok(p.wide_dim())
    }

    /// Column metadata of the fitted tabular preprocessor.
    pub fn tab_meta(&self) -> Result<TabMeta> {
        let p = self
            .tab
            .as_ref()
            .ok_or_else(|| WideDeepError::Missing("no tabular preprocessor".into()))?;
        Ok(p.meta()?)
    }

    /// The objective matching the fitted target encoder(s): binary, multiclass (with its
    /// number of classes) or regression (MSE), or a [`Objective::MultiTarget`] of those
    /// (unweighted, mean) for `multi_target`.
    pub fn objective(&self) -> Result<Objective> {
        if !self.multi_target.is_empty() {
            let targets = self
                .multi_target
                .iter()
                .map(|t| match t.kind() {
                    TargetKind::Binary => TargetSpec::Binary { pos_weight: None },
                    TargetKind::Multiclass => TargetSpec::Multiclass {
                        n_classes: t.n_classes() as i64,
                        class_weight: None,
                    },
                    TargetKind::Regression => TargetSpec::Regression,
                })
                .collect();
            return Ok(Objective::MultiTarget {
                targets,
                weights: None,
                reduction: Default::default(),
            });
        }
        let t = self
            .target
            .as_ref()
            .ok_or_else(|| WideDeepError::Missing("no target encoder".into()))?;
        Ok(match t.kind() {
            TargetKind::Binary => Objective::Binary,
            TargetKind::Multiclass => Objective::Multiclass {
                n_classes: t.n_classes() as i64,
            },
            TargetKind::Regression => Objective::Regression,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    format_version: u32,
    widedeep_version: String,
    preprocessors: Preprocessors,
    model: WideDeepConfig,
    trainer: TrainerConfig,
}

const FORMAT_VERSION: u32 = 1;
const MANIFEST: &str = "pipeline.json";
const WEIGHTS: &str = "model.safetensors";
const HISTORY: &str = "history.json";

/// Preprocessors plus a trained model: DataFrame in, predictions out.
#[derive(Debug)]
pub struct Pipeline {
    pub preprocessors: Preprocessors,
    pub trainer: Trainer,
}

impl Pipeline {
    pub fn new(preprocessors: Preprocessors, trainer: Trainer) -> Self {
        Self {
            preprocessors,
            trainer,
        }
    }

    /// Predictions for the rows of `df`: class indices (`[N]` i64) or values (`[N]` f32).
    pub fn predict(&self, df: &DataFrame) -> Result<Tensor> {
        self.trainer.predict(&self.preprocessors.transform(df)?)
    }

    /// Class probabilities `[N, n_classes]` for the rows of `df`.
    pub fn predict_proba(&self, df: &DataFrame) -> Result<Tensor> {
        self.trainer
            .predict_proba(&self.preprocessors.transform(df)?)
    }

    /// Loss and metrics on `df`, which must hold the target column.
    pub fn evaluate(
        &self,
        df: &DataFrame,
        metrics: Option<&[Metric]>,
    ) -> Result<BTreeMap<String, f64>> {
        self.trainer
            .evaluate(&self.preprocessors.transform(df)?, metrics)
    }

    pub fn history(&self) -> &History {
        self.trainer.history()
    }

    /// Saves everything to `dir`, replacing it if it exists. The files are written to a
    /// temporary sibling directory first and moved into place at the end, so a failed save
    /// leaves no partial pipeline behind.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let model = self.trainer.model().config().ok_or_else(|| {
            WideDeepError::Missing(
                "a model built from custom components has no config to save".into(),
            )
        })?;
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            widedeep_version: env!("CARGO_PKG_VERSION").into(),
            preprocessors: self.preprocessors.clone(),
            model: model.clone(),
            trainer: self.trainer.config().clone(),
        };
        let name = dir
            .file_name()
            .ok_or_else(|| {
                WideDeepError::config("dir", format!("{} has no final component", dir.display()))
            })?
            .to_string_lossy()
            .into_owned();
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| WideDeepError::io(&parent, e))?;
        let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        let result = (|| -> Result<()> {
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir(&tmp).map_err(|e| WideDeepError::io(&tmp, e))?;
            write_json(&tmp.join(MANIFEST), &manifest)?;
            write_json(&tmp.join(HISTORY), self.trainer.history())?;
            self.trainer.model().var_store().save(tmp.join(WEIGHTS))?;
            for (i, p) in self.preprocessors.text.iter().enumerate() {
                if p.is_fitted() {
                    p.save_tokenizer(tmp.join(format!("text_{i}_tokenizer.json")))?;
                }
            }
            if dir.exists() {
                let old = parent.join(format!(".{name}.old-{}", std::process::id()));
                std::fs::rename(dir, &old).map_err(|e| WideDeepError::io(dir, e))?;
                std::fs::rename(&tmp, dir).map_err(|e| WideDeepError::io(dir, e))?;
                let _ = std::fs::remove_dir_all(&old);
            } else {
                std::fs::rename(&tmp, dir).map_err(|e| WideDeepError::io(dir, e))?;
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        result
    }

    /// Loads a pipeline saved by [`Pipeline::save`] onto `device`.
    pub fn load(dir: impl AsRef<Path>, device: Device) -> Result<Self> {
        let dir = dir.as_ref();
        let bad = |reason: String| WideDeepError::BadPipeline {
            path: dir.to_path_buf(),
            reason,
        };
        let read = |file: &str| {
            let path = dir.join(file);
            std::fs::read_to_string(&path).map_err(|e| bad(format!("{file}: {e}")))
        };
        let manifest: Manifest =
            serde_json::from_str(&read(MANIFEST)?).map_err(|e| bad(format!("{MANIFEST}: {e}")))?;
        if manifest.format_version != FORMAT_VERSION {
            return Err(bad(format!(
                "format version {} (this build reads {FORMAT_VERSION})",
                manifest.format_version
            )));
        }
        let history: History =
            serde_json::from_str(&read(HISTORY)?).map_err(|e| bad(format!("{HISTORY}: {e}")))?;
        let mut model = WideDeep::new(&manifest.model, device)?;
        model
            .var_store_mut()
            .load(dir.join(WEIGHTS))
            .map_err(|e| bad(format!("{WEIGHTS}: {e}")))?;
        let mut trainer = Trainer::new(model, manifest.trainer)?;
        trainer.set_history(history);
        Ok(Self {
            preprocessors: manifest.preprocessors,
            trainer,
        })
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text).map_err(|e| WideDeepError::io(path, e))
}

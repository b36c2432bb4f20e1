//! A fitted pipeline — preprocessors + model + trainer settings + history — that predicts from
//! DataFrames and saves to (and loads from) one directory.
//!
//! Directory layout: `pipeline.json` (preprocessors — fitted tokenizers included —, model
//! config, trainer config), `model.safetensors` (weights, batch-norm statistics and pretrained
//! BERT / ResNet weights included), `history.json`, and for each text column a copy of its
//! tokenizer as a Hugging Face `text_{i}_tokenizer.json` (for other tools; loading reads
//! `pipeline.json`).
mod bayesian;
mod parquet;
mod sample;
mod scan;
mod tab2vec;

pub use bayesian::BayesianPipeline;
pub use parquet::{ParquetPredict, ParquetPredictReport};
pub use sample::sample_parquet;
pub use scan::{ParquetScan, ScanDataset, ScanOptions};
pub use tab2vec::Tab2Vec;

use crate::error::{Result, WideDeepError};
use crate::macros::{bail, ensure};
use crate::models::{WideDeep, WideDeepConfig};
use crate::training::{Dataset, History, Metric, Objective, TargetSpec, Trainer, TrainerConfig};
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};
use widedeep_preprocessing::{
    Fit, ImageData, ImageMeta, ImagePreprocessor, SequenceData, SequenceMeta, SequencePreprocessor,
    TabData, TabMeta, TabPreprocessor, TargetData, TargetEncoder, TargetKind, TextData, TextMeta,
    TextPreprocessor, Transform, WideData, WidePreprocessor,
};

/// The preprocessors of each input, fitted together on one DataFrame.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Preprocessors {
    /// The wide part's input (`ModelInput::wide`).
    pub wide: Option<WidePreprocessor>,
    /// The deep tabular input (`ModelInput::cat`, `ModelInput::cont`).
    pub tab: Option<TabPreprocessor>,
    /// The target of a single-target model.
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
    /// Behaviour sequences (`ModelInput::seq`) for the sequence recommenders. With it, the
    /// frame becomes one sample per interaction with enough history (see
    /// [`SequencePreprocessor`]) and every other preprocessor fits and transforms the
    /// samples' rows ([`SequenceData::frame`]): predictions are per sample, in the order of
    /// [`SequenceData::rows`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<SequencePreprocessor>,
}

impl Preprocessors {
    /// No preprocessor yet.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the wide preprocessor.
    pub fn wide(mut self, p: WidePreprocessor) -> Self {
        self.wide = Some(p);
        self
    }
    /// Sets the tabular preprocessor.
    pub fn tab(mut self, p: TabPreprocessor) -> Self {
        self.tab = Some(p);
        self
    }
    /// Sets the target encoder.
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
    /// Sets the behaviour-sequence preprocessor (its output is `input.seq`).
    pub fn seq(mut self, p: SequencePreprocessor) -> Self {
        self.seq = Some(p);
        self
    }

    /// The samples of `df` when a sequence preprocessor is set (see
    /// [`Preprocessors::seq`](Self::seq)): the frame the other preprocessors work on is then
    /// [`SequenceData::frame`].
    fn sequences(&self, df: &DataFrame) -> Result<Option<SequenceData>> {
        Ok(self.seq.as_ref().map(|p| p.transform(df)).transpose()?)
    }

    /// Fits every preprocessor on `df` (with a sequence preprocessor: it on `df`, the others
    /// on the samples' rows).
    pub fn fit(&mut self, df: &DataFrame) -> Result<()> {
        let seq = match &mut self.seq {
            Some(p) => Some(p.fit_transform(df)?),
            None => None,
        };
        self.fit_rows(seq.as_ref().map_or(df, |s| &s.frame))
    }

    /// Fits every preprocessor but the sequence one on `df`.
    fn fit_rows(&mut self, df: &DataFrame) -> Result<()> {
        ensure!(
            self.target.is_none() || self.multi_target.is_empty(),
            config("multi_target"),
            "set either `target` or `multi_target`, not both"
        );
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
    /// `df` has its column (so prediction data may lack it). Input columns that are entirely
    /// null in `df` are listed in [`Dataset::all_null`] (and reported on stderr); a column
    /// whose dtype changed since `fit` is an error.
    pub fn transform(&self, df: &DataFrame) -> Result<Dataset> {
        let seq = self.sequences(df)?;
        let df = seq.as_ref().map_or(df, |s| &s.frame);
        let images = self
            .image
            .iter()
            .map(|p| p.transform(df))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        self.transform_with_images(df, &images, seq.as_ref())
    }

    /// Like [`Preprocessors::transform`], but the images are not decoded here: the data set
    /// keeps each image column's paths or bytes and the trainer decodes them batch by batch
    /// on a worker thread (for data whose images do not fit in memory). Training, evaluation
    /// and prediction give the same results as with `transform`. Fit first (`fit` decodes in
    /// chunks, so it does not hold every image either).
    pub fn transform_lazy(&self, df: &DataFrame) -> Result<Dataset> {
        let seq = self.sequences(df)?;
        let df = seq.as_ref().map_or(df, |s| &s.frame);
        let images = self
            .image
            .iter()
            .map(|p| p.rows(df))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let (wide, tab, texts, target, multi) = self.transform_parts(df)?;
        let mut data = match &seq {
            // the sequences are an input: the lazy images join them
            Some(seq) => {
                let mut data = Dataset::from_all(
                    Some(seq),
                    wide.as_ref(),
                    tab.as_ref(),
                    &texts,
                    &[],
                    target.as_ref(),
                )?;
                for rows in images {
                    data.with_lazy_images(rows)?;
                }
                data
            }
            None => Dataset::from_parts_lazy(
                wide.as_ref(),
                tab.as_ref(),
                &texts,
                images,
                target.as_ref(),
            )?,
        };
        if multi.is_some() {
            data.target = multi;
        }
        data.all_null = all_null(wide.as_ref(), tab.as_ref(), &texts);
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

    fn transform_with_images(
        &self,
        df: &DataFrame,
        images: &[ImageData],
        seq: Option<&SequenceData>,
    ) -> Result<Dataset> {
        let (wide, tab, texts, target, multi) = self.transform_parts(df)?;
        let mut data = Dataset::from_all(
            seq,
            wide.as_ref(),
            tab.as_ref(),
            &texts,
            images,
            target.as_ref(),
        )?;
        if multi.is_some() {
            data.target = multi;
        }
        data.all_null = all_null(wide.as_ref(), tab.as_ref(), &texts);
        Ok(data)
    }
    /// Fits every preprocessor on `df` and transforms it (images are decoded once).
    pub fn fit_transform(&mut self, df: &DataFrame) -> Result<Dataset> {
        let seq = match &mut self.seq {
            Some(p) => Some(p.fit_transform(df)?),
            None => None,
        };
        let df = seq.as_ref().map_or(df, |s| &s.frame);
        let mut images = std::mem::take(&mut self.image);
        let fitted = self.fit_rows(df);
        let decoded = fitted.and_then(|_| {
            images
                .iter_mut()
                .map(|p| p.fit_transform(df).map_err(Into::into))
                .collect::<Result<Vec<_>>>()
        });
        self.image = images;
        self.transform_with_images(df, &decoded?, seq.as_ref())
    }

    /// Sizes of the fitted sequence columns (for `DinConfig::from_meta`,
    /// `SeqTransformerConfig::from_meta`).
    pub fn seq_meta(&self) -> Result<SequenceMeta> {
        let p = self
            .seq
            .as_ref()
            .ok_or_else(|| WideDeepError::Missing("no sequence preprocessor".into()))?;
        Ok(p.meta()?)
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

    /// Whether a fitted target encoder scales its regression target
    /// ([`TargetScaling`](widedeep_preprocessing::TargetScaling)): then predictions are mapped
    /// back to the target's units by [`Pipeline::predict`] and the regression metrics of
    /// [`Pipeline::evaluate`] are computed in those units.
    pub fn scales_targets(&self) -> bool {
        self.target
            .iter()
            .chain(&self.multi_target)
            .any(TargetEncoder::is_scaled)
    }

    /// Maps regression columns of `t` back to the target's units: every column for a single
    /// target (values `[N]`, or `[N, Q]` quantiles), column `i` of a multi-target `[N, T]`
    /// prediction or target (`blocks` false) or the regression column of target `i` in the
    /// `[N, Σ widths]` scores (`blocks` true).
    fn unscale(&self, objective: &Objective, t: &Tensor, blocks: bool) -> Result<Tensor> {
        if !self.scales_targets() {
            return Ok(t.shallow_clone());
        }
        let t = t
            .to_device(Device::Cpu)
            .to_kind(tch::Kind::Float)
            .contiguous();
        let two_d = t.dim() == 2;
        let cols = if two_d { t.size()[1] } else { 1 };
        let mut columns: Vec<Tensor> = (0..cols)
            .map(|j| {
                if two_d {
                    t.select(1, j)
                } else {
                    t.shallow_clone()
                }
            })
            .collect();
        let n_cols = columns.len();
        let mut invert = |j: usize, enc: &TargetEncoder| -> Result<()> {
            let v = Vec::<f32>::try_from(columns[j].contiguous())?;
            columns[j] = Tensor::from_slice(&enc.inverse_values(&v));
            Ok(())
        };
        match (objective, &self.target) {
            (Objective::MultiTarget { targets, .. }, _) => {
                let mut offset = 0usize;
                for (i, (spec, enc)) in targets.iter().zip(&self.multi_target).enumerate() {
                    let j = if blocks { offset } else { i };
                    if matches!(spec, TargetSpec::Regression) && j < n_cols {
                        invert(j, enc)?;
                    }
                    offset += spec.width() as usize;
                }
            }
            (_, Some(enc)) if enc.kind() == TargetKind::Regression => {
                for j in 0..n_cols {
                    invert(j, enc)?;
                }
            }
            _ => {}
        }
        Ok(if two_d {
            Tensor::stack(&columns, 1)
        } else {
            columns.swap_remove(0)
        })
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

/// The input columns reported entirely null by the preprocessors' outputs.
fn all_null(wide: Option<&WideData>, tab: Option<&TabData>, texts: &[TextData]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let names = wide
        .iter()
        .flat_map(|w| &w.all_null)
        .chain(tab.iter().flat_map(|t| &t.all_null))
        .chain(texts.iter().flat_map(|t| &t.all_null));
    for name in names {
        if !out.contains(name) {
            out.push(name.clone());
        }
    }
    out
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    format_version: u32,
    widedeep_version: String,
    preprocessors: Preprocessors,
    model: WideDeepConfig,
    trainer: TrainerConfig,
    /// Checksums verified on load (absent in saves from before they were written, and
    /// removable by hand to edit the file on purpose).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checksums: Option<Checksums>,
}

/// CRC-32 checksums (with the byte length) of `model.safetensors` and of the manifest's own
/// content (its JSON value without the `checksums` field, printed compactly), so a flipped
/// byte or a changed number in either file is an error on load instead of NaN or silently
/// different predictions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Checksums {
    weights: String,
    manifest: String,
}

fn checksum(bytes: &[u8]) -> String {
    format!("crc32:{:08x}:{}", crc32fast::hash(bytes), bytes.len())
}

/// The checksum of a manifest value, `checksums` left out.
fn manifest_checksum(value: &serde_json::Value) -> Result<String> {
    let mut v = value.clone();
    if let Some(map) = v.as_object_mut() {
        map.remove("checksums");
    }
    Ok(checksum(serde_json::to_string(&v)?.as_bytes()))
}

/// Files a pipeline directory holds: what [`Pipeline::save`] writes.
fn is_pipeline_file(name: &str) -> bool {
    matches!(name, MANIFEST | WEIGHTS | HISTORY)
        || (name.starts_with("text_")
            && name.ends_with("_tokenizer.json")
            && name["text_".len()..name.len() - "_tokenizer.json".len()]
                .bytes()
                .all(|b| b.is_ascii_digit()))
}

/// Whether `dir` (an existing directory) may be replaced by a save: it is empty, or it holds
/// a pipeline saved by this library (a `pipeline.json` with its format marker) and nothing
/// but pipeline files. Anything else is an error naming what is in the way.
fn check_replaceable(dir: &Path) -> Result<()> {
    let refuse = |reason: String| {
        Err(WideDeepError::config(
            "dir",
            format!(
                "{} exists and {reason}; refusing to replace it (choose another path or remove it yourself)",
                dir.display()
            ),
        ))
    };
    let entries = std::fs::read_dir(dir).map_err(|e| WideDeepError::io(dir, e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| WideDeepError::io(dir, e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    if names.is_empty() {
        return Ok(());
    }
    if let Some(other) = names.iter().find(|n| !is_pipeline_file(n)) {
        return refuse(format!("holds `{other}`, which is not a pipeline file"));
    }
    let marker = std::fs::read_to_string(dir.join(MANIFEST))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| {
            v.get("format_version").is_some_and(|f| f.is_u64())
                && v.get("widedeep_version").is_some_and(|f| f.is_string())
        });
    if !marker {
        return refuse(format!("has no `{MANIFEST}` written by widedeep"));
    }
    Ok(())
}

const FORMAT_VERSION: u32 = 1;
const MANIFEST: &str = "pipeline.json";
const WEIGHTS: &str = "model.safetensors";
const HISTORY: &str = "history.json";

/// Preprocessors plus a trained model: DataFrame in, predictions out.
#[derive(Debug)]
pub struct Pipeline {
    /// The fitted preprocessors.
    pub preprocessors: Preprocessors,
    /// The trained model with its settings and history.
    pub trainer: Trainer,
}

impl Pipeline {
    /// Bundles fitted preprocessors and a trainer (usually after `fit`).
    pub fn new(preprocessors: Preprocessors, trainer: Trainer) -> Self {
        Self {
            preprocessors,
            trainer,
        }
    }

    /// Predictions for the rows of `df` (with a sequence preprocessor: for its samples, in
    /// the order of [`SequenceData::rows`]): class indices (`[N]` i64) or values (`[N]` f32;
    /// `[N, T]` for a multi-target model, see [`Objective::predict`]). Regression values are
    /// in the target's units: a target scaled by its encoder is mapped back.
    pub fn predict(&self, df: &DataFrame) -> Result<Tensor> {
        let pred = self.trainer.predict(&self.preprocessors.transform(df)?)?;
        if !self.preprocessors.scales_targets() {
            return Ok(pred);
        }
        let pred = self
            .preprocessors
            .unscale(&self.trainer.config().objective, &pred, false)?;
        crate::training::trainer::check_finite_rows(&pred)?;
        Ok(pred)
    }

    /// Class probabilities `[N, n_classes]` for the rows of `df` (binary: `[1 − p, p]`). For
    /// a multi-target model, `[N, T, C]`: `proba.select(1, t)` is target `t`'s probabilities
    /// (see [`Objective::predict_proba`]).
    pub fn predict_proba(&self, df: &DataFrame) -> Result<Tensor> {
        self.trainer
            .predict_proba(&self.preprocessors.transform(df)?)
    }

    /// Loss and metrics on `df`, which must hold the target column. With a scaled regression
    /// target, the loss is the training loss (on scaled values) and R², RMSE and MAE are
    /// computed in the target's units.
    pub fn evaluate(
        &self,
        df: &DataFrame,
        metrics: Option<&[Metric]>,
    ) -> Result<BTreeMap<String, f64>> {
        let data = self.preprocessors.transform(df)?;
        let mut record = self.trainer.evaluate(&data, metrics)?;
        if self.preprocessors.scales_targets() {
            let objective = &self.trainer.config().objective;
            let raw = self.trainer.predict_raw(&data)?;
            let scores = self
                .preprocessors
                .unscale(objective, &objective.scores(&raw), true)?;
            let target = data.target.as_ref().expect("checked by evaluate");
            let target = self.preprocessors.unscale(objective, target, false)?;
            for m in metrics.unwrap_or(&self.trainer.config().metrics) {
                if matches!(m, Metric::R2 | Metric::Rmse | Metric::Mae) {
                    record.extend(m.compute_named(objective, &scores, &target)?);
                }
            }
            crate::training::trainer::check_finite_record(&record)?;
        }
        Ok(record)
    }

    /// The training history (per-epoch losses and metrics).
    pub fn history(&self) -> &History {
        self.trainer.history()
    }

    /// Saves everything to `dir`.
    ///
    /// `dir` may be new, an empty directory, or a pipeline directory saved earlier (which is
    /// replaced). Anything else — a regular file, a directory holding other files, a symlink
    /// — is an error naming the path, and nothing is touched: a save never deletes a user's
    /// files. The files are written to a temporary sibling directory first and moved into
    /// place at the end, so a failed save leaves neither a partial pipeline nor a temporary
    /// directory behind, and a replaced pipeline is kept until the new one is in place.
    ///
    /// `pipeline.json` records checksums of itself and of the weights, verified by
    /// [`Pipeline::load`].
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let model = self.trainer.model().config().ok_or_else(|| {
            WideDeepError::Missing(
                "a model built from custom components has no config to save".into(),
            )
        })?;
        save_atomically(dir.as_ref(), |tmp| {
            self.trainer.model().var_store().save(tmp.join(WEIGHTS))?;
            let manifest = Manifest {
                format_version: FORMAT_VERSION,
                widedeep_version: env!("CARGO_PKG_VERSION").into(),
                preprocessors: self.preprocessors.clone(),
                model: model.clone(),
                trainer: self.trainer.config().clone(),
                checksums: None,
            };
            write_manifest(tmp, manifest, |m, sums| m.checksums = Some(sums))?;
            write_json(&tmp.join(HISTORY), self.trainer.history())?;
            for (i, p) in self.preprocessors.text.iter().enumerate() {
                if p.is_fitted() {
                    p.save_tokenizer(tmp.join(format!("text_{i}_tokenizer.json")))?;
                }
            }
            Ok(())
        })
    }

    /// Loads a pipeline saved by [`Pipeline::save`] onto `device`.
    ///
    /// Checks, each a [`WideDeepError::BadPipeline`] naming the file: the format version,
    /// the checksums of `pipeline.json` and `model.safetensors` (when recorded), and that the
    /// weights hold exactly the model's tensors with the model's shapes (a mismatch names the
    /// tensor and both shapes). A model too large to allocate is
    /// [`WideDeepError::ModelTooLarge`].
    pub fn load(dir: impl AsRef<Path>, device: Device) -> Result<Self> {
        let dir = dir.as_ref();
        let bad = |reason: String| WideDeepError::BadPipeline {
            path: dir.to_path_buf(),
            reason,
        };
        let value = read_manifest(dir)?;
        if value.get("kind").and_then(|k| k.as_str()) == Some(bayesian::KIND) {
            bail!(bad(format!(
                "{MANIFEST} holds a Bayesian pipeline; load it with BayesianPipeline::load"
            )));
        }
        let manifest: Manifest =
            serde_json::from_value(value).map_err(|e| bad(format!("{MANIFEST}: {e}")))?;
        let weights_path = dir.join(WEIGHTS);
        let read = |file: &str| {
            let path = dir.join(file);
            std::fs::read_to_string(&path).map_err(|e| bad(format!("{file}: {e}")))
        };
        let history: History =
            serde_json::from_str(&read(HISTORY)?).map_err(|e| bad(format!("{HISTORY}: {e}")))?;
        let model = WideDeep::new(&manifest.model, device)?;
        crate::models::weights::load_var_store(model.var_store(), &weights_path)
            .map_err(|reason| bad(format!("{WEIGHTS}: {reason}")))?;
        let mut trainer = Trainer::new(model, manifest.trainer)?;
        trainer.set_history(history);
        Ok(Self {
            preprocessors: manifest.preprocessors,
            trainer,
        })
    }
}

/// Writes a pipeline directory `dir` atomically: `write` fills a temporary sibling
/// directory, which then replaces `dir` (see [`Pipeline::save`] for the rules: `dir` may be
/// new, empty or a pipeline saved earlier; a failed save leaves nothing behind).
pub(crate) fn save_atomically(dir: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
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
    let replace = match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {
            check_replaceable(dir)?;
            true
        }
        Ok(m) => {
            let what = if m.file_type().is_symlink() {
                "is a symbolic link"
            } else {
                "is a file, not a directory"
            };
            bail!(
                config("dir"),
                "{} {what}; refusing to replace it",
                dir.display()
            );
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => bail!(WideDeepError::io(dir, e)),
    };
    std::fs::create_dir_all(&parent).map_err(|e| WideDeepError::io(&parent, e))?;
    let tmp = unused_sibling(&parent, &name, "tmp");
    let result = (|| -> Result<()> {
        std::fs::create_dir(&tmp).map_err(|e| WideDeepError::io(&tmp, e))?;
        write(&tmp)?;
        if !replace {
            return std::fs::rename(&tmp, dir).map_err(|e| WideDeepError::io(dir, e));
        }
        // Move the old pipeline aside, the new one in, then delete the old one; if the
        // second move fails, the old one goes back.
        let old = unused_sibling(&parent, &name, "old");
        std::fs::rename(dir, &old).map_err(|e| WideDeepError::io(dir, e))?;
        if let Err(e) = std::fs::rename(&tmp, dir) {
            let _ = std::fs::rename(&old, dir);
            bail!(WideDeepError::io(dir, e));
        }
        std::fs::remove_dir_all(&old).map_err(|e| WideDeepError::io(&old, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// Writes `manifest` to `tmp/pipeline.json` with the checksums of itself and of
/// `tmp/model.safetensors` (set on it by `set`).
pub(crate) fn write_manifest<M: Serialize>(
    tmp: &Path,
    mut manifest: M,
    set: impl FnOnce(&mut M, Checksums),
) -> Result<()> {
    let weights =
        std::fs::read(tmp.join(WEIGHTS)).map_err(|e| WideDeepError::io(tmp.join(WEIGHTS), e))?;
    // the checksum of the JSON text as written and read back (f32 fields print shorter than
    // their f64 value, so `to_value` would not match the file)
    let value: serde_json::Value = serde_json::from_str(&serde_json::to_string(&manifest)?)?;
    set(
        &mut manifest,
        Checksums {
            weights: checksum(&weights),
            manifest: manifest_checksum(&value)?,
        },
    );
    write_json(&tmp.join(MANIFEST), &manifest)
}

/// Reads `dir/pipeline.json` and verifies its checksums (when recorded) and the format
/// version; returns its JSON value. Errors are [`WideDeepError::BadPipeline`] naming the file.
pub(crate) fn read_manifest(dir: &Path) -> Result<serde_json::Value> {
    let bad = |reason: String| WideDeepError::BadPipeline {
        path: dir.to_path_buf(),
        reason,
    };
    let text =
        std::fs::read_to_string(dir.join(MANIFEST)).map_err(|e| bad(format!("{MANIFEST}: {e}")))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("{MANIFEST}: {e}")))?;
    let version = value.get("format_version").and_then(|v| v.as_u64());
    if version != Some(FORMAT_VERSION as u64) {
        bail!(bad(format!(
            "format version {} (this build reads {FORMAT_VERSION})",
            version.map_or("missing".to_string(), |v| v.to_string())
        )));
    }
    if let Some(sums) = value.get("checksums").filter(|v| !v.is_null()) {
        let sums: Checksums = serde_json::from_value(sums.clone())
            .map_err(|e| bad(format!("{MANIFEST}: checksums: {e}")))?;
        ensure!(
            manifest_checksum(&value)? == sums.manifest,
            bad(format!(
                "{MANIFEST} does not match its checksum (edited or corrupted; remove its \
                 `checksums` field to load a deliberately edited file)"
            ))
        );
        let bytes = std::fs::read(dir.join(WEIGHTS)).map_err(|e| bad(format!("{WEIGHTS}: {e}")))?;
        if checksum(&bytes) != sums.weights {
            bail!(bad(format!(
                "{WEIGHTS} does not match the checksum recorded in {MANIFEST} (corrupted or \
                 replaced)"
            )));
        }
    }
    Ok(value)
}

/// A path `parent/.{name}.{what}-{pid}-{n}` that does not exist yet.
fn unused_sibling(parent: &Path, name: &str, what: &str) -> PathBuf {
    let pid = std::process::id();
    (0u32..)
        .map(|n| parent.join(format!(".{name}.{what}-{pid}-{n}")))
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .expect("some name is free")
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text).map_err(|e| WideDeepError::io(path, e))
}

//! The experiment file of `widedeep train`: data, preprocessors, model, training settings.
//!
//! ```toml
//! seed = 42
//! device = "auto"                      # "cpu", "cuda", "cuda:N" or "auto"
//!
//! [data]
//! dataset = "adult"                    # or path = "train.parquet"
//! test_fraction = 0.2                  # seeded split; or test = "test.parquet"
//!
//! [preprocessing.wide]                 # fields of widedeep's WidePreprocessor
//! wide_cols = ["education", "occupation"]
//! [preprocessing.tab]                  # TabPreprocessor
//! cat_cols = ["education"]
//! continuous_cols = ["age"]
//! [preprocessing.target]               # TargetEncoder
//! column = "income"
//! kind = "binary"
//! positive_class = ">50K"
//!
//! [model]                              # WideDeepConfig
//! wide = true
//! [model.deeptabular]                  # any tabular component, by its `model` tag
//! model = "tab_mlp"
//! mlp = { hidden_dims = [64, 32], dropout = 0.1 }
//!
//! [training]                           # TrainerConfig
//! epochs = 10
//! metrics = ["accuracy", "auc"]
//! ```
//!
//! Every section after `[data]` is laid over the library's default for it (see
//! [`crate::overlay`]): any field of the library's configuration can be set, unknown fields
//! and wrong types are errors naming the file, the line and the field path, and the run
//! directory receives the resolved file with every default written out.
use crate::error::{CliError, Result};
use crate::overlay::{json_to_toml, to_json, Source};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use widedeep::models::{Backbone, ImageModelConfig, TabModelConfig, TextModelConfig};
use widedeep::prelude::*;

/// The fixed part of an experiment file; the library sections stay TOML until resolved.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Seeds the split, the weights (unless `model.seed` is set) and training (unless
    /// `training.seed` is set).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// `auto` (CUDA when available, else CPU), `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
    /// Where the rows come from.
    pub data: DataConfig,
    /// The preprocessors' sections.
    pub preprocessing: PreprocessingConfig,
    /// The model (`WideDeepConfig` fields; components by their `model` tag).
    #[serde(default)]
    pub model: toml::Table,
    /// The trainer (`TrainerConfig` fields).
    #[serde(default)]
    pub training: toml::Table,
    /// Explanations written by `train` for the report (rows of the test set).
    #[serde(default)]
    pub explain: ExplainSettings,
}

fn default_seed() -> u64 {
    42
}
fn default_device() -> String {
    "auto".into()
}
fn default_test_fraction() -> f64 {
    0.2
}

/// `[data]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// A bundled data set: `adult`, `california_housing`, `womens_ecommerce_reviews`, `ecoli`,
    /// `mnist5k` (columns `image`, `label`) or `digits` (mnist5k with a number word, a shift
    /// and a noise column; target `high`, as in the `digits` example).
    pub dataset: Option<String>,
    /// A Parquet file (or CSV file) of training rows.
    pub path: Option<PathBuf>,
    /// Test rows from their own file instead of a split.
    pub test: Option<PathBuf>,
    /// Validation rows from their own file (else `training.val_split`, if set).
    pub validation: Option<PathBuf>,
    /// Fraction of the rows held out as the test set (seeded by `seed`), when `test` is not
    /// given.
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    /// Use only this many rows (a seeded sample), e.g. for a quick run.
    pub rows: Option<usize>,
}

/// `[preprocessing]`: one table per preprocessor, in the library's field names.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreprocessingConfig {
    /// `WidePreprocessor` (required: `wide_cols`).
    pub wide: Option<toml::Value>,
    /// `TabPreprocessor` (`cat_cols`, `continuous_cols`).
    pub tab: Option<toml::Value>,
    /// `TargetEncoder` (required: `column`, `kind`).
    pub target: toml::Value,
    /// `TextPreprocessor`s (required: `text_col`).
    #[serde(default)]
    pub text: Vec<toml::Value>,
    /// `ImagePreprocessor`s (required: `img_col`; `root` of the paths, by default the
    /// bundled mnist5k folder).
    #[serde(default)]
    pub image: Vec<toml::Value>,
}

/// `[explain]`: the attributions `train` computes on test rows for the report.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainSettings {
    /// `gradient_shap`, `integrated_gradients`, `kernel_shap`, `permutation` or `none`.
    #[serde(default = "default_method")]
    pub method: String,
    /// Test rows explained.
    #[serde(default = "default_explain_rows")]
    pub rows: usize,
    /// Background rows (from the training rows).
    #[serde(default = "default_background")]
    pub background: usize,
}

fn default_method() -> String {
    "gradient_shap".into()
}
fn default_explain_rows() -> usize {
    200
}
fn default_background() -> usize {
    100
}

impl Default for ExplainSettings {
    fn default() -> Self {
        Self {
            method: default_method(),
            rows: default_explain_rows(),
            background: default_background(),
        }
    }
}

/// A parsed experiment: the file, its fixed part and the preprocessors (not fitted yet).
#[derive(Clone, Debug)]
pub struct Loaded {
    /// Where errors point.
    pub source: Source,
    /// The fixed part.
    pub experiment: Experiment,
    /// The preprocessors the file describes.
    pub preprocessors: Preprocessors,
    /// The directory relative paths in the file are resolved against.
    pub base_dir: PathBuf,
}

/// The explanation method of a name.
pub fn method_of(name: &str) -> Option<Method> {
    Some(match name {
        "gradient_shap" => Method::gradient_shap(),
        "integrated_gradients" => Method::integrated_gradients(),
        "kernel_shap" => Method::kernel_shap(),
        "permutation" => Method::permutation(),
        _ => return None,
    })
}

fn required<'a>(source: &Source, path: &str, table: &'a toml::Value, key: &str) -> Result<&'a str> {
    match table.get(key) {
        Some(toml::Value::String(s)) => Ok(s),
        Some(_) => Err(source.error(&format!("{path}.{key}"), "expected a string")),
        None => Err(source.error(path, format!("missing field `{key}`"))),
    }
}

fn strings(source: &Source, path: &str, table: &toml::Value, key: &str) -> Result<Vec<String>> {
    match table.get(key) {
        None => Ok(Vec::new()),
        Some(toml::Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| source.error(&format!("{path}.{key}[{i}]"), "expected a string"))
            })
            .collect(),
        Some(_) => Err(source.error(&format!("{path}.{key}"), "expected an array of strings")),
    }
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Capitalises a lowercase `kind` of a target table (`binary` → `Binary`).
fn target_table(t: &toml::Value) -> toml::Value {
    let mut t = t.clone();
    if let Some(toml::Value::String(k)) = t.get_mut("kind") {
        let mut c = k.chars();
        if let Some(first) = c.next() {
            *k = first.to_uppercase().chain(c).collect();
        }
    }
    t
}

impl Loaded {
    /// Reads and checks `file`: syntax, the fixed part, and every preprocessor section.
    pub fn read(file: &Path) -> Result<Self> {
        Self::read_with(file, &[])
    }

    /// As [`Loaded::read`], with `overrides` (`training.epochs=1`, `data.rows=500`: a dotted
    /// key and a TOML value, a bare word being a string) applied over the file.
    pub fn read_with(file: &Path, overrides: &[String]) -> Result<Self> {
        let (source, mut table) = crate::overlay::read_toml(file)?;
        for o in overrides {
            crate::overlay::set_override(&mut table, o)?;
        }
        let experiment: Experiment = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let path = e.path().to_string();
                let message = e.inner().message().to_string();
                source.error(if path == "." { "" } else { &path }, message)
            })?;
        let base_dir = file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut loaded = Self {
            source,
            experiment,
            preprocessors: Preprocessors::new(),
            base_dir,
        };
        loaded.check_fixed()?;
        loaded.preprocessors = loaded.build_preprocessors()?;
        loaded.check_training()?;
        Ok(loaded)
    }

    fn check_fixed(&self) -> Result<()> {
        let e = &self.experiment;
        let s = &self.source;
        match (&e.data.dataset, &e.data.path) {
            (Some(_), Some(_)) => {
                return Err(s.error("data.path", "give either `dataset` or `path`, not both"))
            }
            (None, None) => return Err(s.error("data", "missing field `dataset` or `path`")),
            (Some(d), None) if !crate::data::DATASETS.contains(&d.as_str()) => {
                return Err(s.error(
                    "data.dataset",
                    format!(
                        "unknown data set `{d}`; expected one of {}",
                        crate::data::DATASETS.join(", ")
                    ),
                ))
            }
            _ => {}
        }
        if !(e.data.test_fraction > 0.0 && e.data.test_fraction < 1.0) {
            return Err(s.error(
                "data.test_fraction",
                format!("must be in (0, 1), got {}", e.data.test_fraction),
            ));
        }
        if e.data.rows == Some(0) {
            return Err(s.error("data.rows", "must be positive"));
        }
        if e.device != "auto" {
            parse_device(&e.device).map_err(|err| s.error("device", err.to_string()))?;
        }
        if e.explain.method != "none" && method_of(&e.explain.method).is_none() {
            return Err(s.error(
                "explain.method",
                format!(
                    "unknown method `{}`; expected gradient_shap, integrated_gradients, \
                     kernel_shap, permutation or none",
                    e.explain.method
                ),
            ));
        }
        Ok(())
    }

    /// A path of the file, relative to the file's folder.
    pub fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    fn build_preprocessors(&self) -> Result<Preprocessors> {
        let s = &self.source;
        let p = &self.experiment.preprocessing;
        let mut prep = Preprocessors::new();
        if let Some(w) = &p.wide {
            let cols = strings(s, "preprocessing.wide", w, "wide_cols")?;
            if cols.is_empty() {
                return Err(s.error("preprocessing.wide", "missing field `wide_cols`"));
            }
            let base = WidePreprocessor::new(&refs(&cols));
            prep = prep.wide(s.resolve("preprocessing.wide", &base, w)?);
        }
        if let Some(t) = &p.tab {
            let cat = strings(s, "preprocessing.tab", t, "cat_cols")?;
            let cont = strings(s, "preprocessing.tab", t, "continuous_cols")?;
            if cat.is_empty() && cont.is_empty() {
                return Err(s.error(
                    "preprocessing.tab",
                    "missing field `cat_cols` or `continuous_cols`",
                ));
            }
            let base = TabPreprocessor::new(&refs(&cat), &refs(&cont));
            prep = prep.tab(s.resolve("preprocessing.tab", &base, t)?);
        }
        let target = target_table(&p.target);
        let column = required(s, "preprocessing.target", &target, "column")?;
        let kind: TargetKind = match required(s, "preprocessing.target", &target, "kind")? {
            "Binary" => TargetKind::Binary,
            "Multiclass" => TargetKind::Multiclass,
            "Regression" => TargetKind::Regression,
            other => {
                return Err(s.error(
                    "preprocessing.target.kind",
                    format!("unknown kind `{other}`; expected binary, multiclass or regression"),
                ))
            }
        };
        let base = TargetEncoder::new(column, kind);
        prep = prep.target(s.resolve("preprocessing.target", &base, &target)?);
        for (i, t) in p.text.iter().enumerate() {
            let path = format!("preprocessing.text[{i}]");
            let col = required(s, &path, t, "text_col")?;
            prep = prep.text(s.resolve(&path, &TextPreprocessor::new(col), t)?);
        }
        for (i, t) in p.image.iter().enumerate() {
            let path = format!("preprocessing.image[{i}]");
            let col = required(s, &path, t, "img_col")?;
            let mut t = t.clone();
            // `root = "dir"` is a shorthand of `source = { kind = "paths", root = "dir" }`
            let root = match t.as_table_mut().and_then(|t| t.remove("root")) {
                Some(toml::Value::String(r)) => self.path(Path::new(&r)),
                Some(_) => return Err(s.error(&format!("{path}.root"), "expected a string")),
                None => widedeep::datasets::mnist5k_dir(),
            };
            let base = ImagePreprocessor::from_paths(col, root);
            prep = prep.image(s.resolve(&path, &base, &t)?);
        }
        Ok(prep)
    }

    /// The model configuration for the fitted preprocessors `prep`.
    pub fn model_config(&self, prep: &Preprocessors) -> Result<WideDeepConfig> {
        let s = &self.source;
        let mut user = self.experiment.model.clone();
        let mut base = WideDeepConfig::new().seed(self.experiment.seed);
        match user.remove("wide") {
            None | Some(toml::Value::Boolean(false)) => {}
            Some(w) => {
                let dim = prep
                    .wide_dim()
                    .map_err(|_| s.error("model.wide", "needs a `[preprocessing.wide]` section"))?;
                let w = if w.is_bool() {
                    toml::Value::Table(Default::default())
                } else {
                    w
                };
                base = base.wide(s.resolve("model.wide", &WideConfig::new(dim), &w)?);
            }
        }
        if let Some(t) = user.remove("deeptabular") {
            base.deeptabular = Some(self.tab_component(prep, &t)?);
        }
        if let Some(h) = user.remove("head") {
            base = base.head(s.resolve("model.head", &MlpConfig::default(), &h)?);
        }
        match user.remove("deeptext") {
            None => {}
            Some(toml::Value::Array(items)) => {
                for (i, t) in items.iter().enumerate() {
                    base = base.deeptext(self.text_component(prep, i, t)?);
                }
            }
            Some(_) => return Err(s.error("model.deeptext", "expected an array of tables")),
        }
        match user.remove("deepimage") {
            None => {}
            Some(toml::Value::Array(items)) => {
                for (i, t) in items.iter().enumerate() {
                    base = base.deepimage(self.image_component(prep, i, t)?);
                }
            }
            Some(_) => return Err(s.error("model.deepimage", "expected an array of tables")),
        }
        let config: WideDeepConfig = s.resolve("model", &base, &toml::Value::Table(user))?;
        Ok(config)
    }

    /// Resolves a component's table (without its `model` tag) against `base`, typed as the
    /// component's own config so that errors keep their field path.
    fn component<T, E>(&self, path: &str, base: T, t: &toml::Value) -> Result<E>
    where
        T: Serialize + serde::de::DeserializeOwned + Into<E>,
    {
        let mut t = t.clone();
        if let Some(table) = t.as_table_mut() {
            table.remove("model");
        }
        Ok(self.source.resolve::<T>(path, &base, &t)?.into())
    }

    fn tag<'a>(&self, path: &str, t: &'a toml::Value) -> Result<&'a str> {
        required(&self.source, path, t, "model")
    }

    fn tab_component(&self, prep: &Preprocessors, t: &toml::Value) -> Result<TabModelConfig> {
        let s = &self.source;
        let path = "model.deeptabular";
        let tag = self.tag(path, t)?;
        let meta = prep
            .tab_meta()
            .map_err(|_| s.error(path, "needs a `[preprocessing.tab]` section"))?;
        Ok(match tag {
            "tab_mlp" => self.component(path, TabMlpConfig::from_meta(&meta), t)?,
            "tab_resnet" => self.component(path, TabResnetConfig::from_meta(&meta), t)?,
            "tab_net" => self.component(path, TabNetConfig::from_meta(&meta), t)?,
            "tab_transformer" => self.component(path, TabTransformerConfig::from_meta(&meta), t)?,
            "saint" => self.component(path, SaintConfig::from_meta(&meta), t)?,
            "ft_transformer" => self.component(path, FtTransformerConfig::from_meta(&meta), t)?,
            "context_attention_mlp" => {
                self.component(path, ContextAttentionMlpConfig::from_meta(&meta), t)?
            }
            "self_attention_mlp" => {
                self.component(path, SelfAttentionMlpConfig::from_meta(&meta), t)?
            }
            "tab_perceiver" => self.component(path, TabPerceiverConfig::from_meta(&meta), t)?,
            "tab_fastformer" => self.component(path, TabFastFormerConfig::from_meta(&meta), t)?,
            "autoint" => self.component(path, AutoIntConfig::from_meta(&meta), t)?,
            "autoint_plus" => self.component(path, AutoIntPlusConfig::from_meta(&meta), t)?,
            "dcn" => self.component(path, DcnConfig::from_meta(&meta), t)?,
            "dcnv2" => self.component(path, DcnV2Config::from_meta(&meta), t)?,
            "gdcn" => self.component(path, GdcnConfig::from_meta(&meta), t)?,
            other => {
                return Err(s.error(
                    &format!("{path}.model"),
                    format!(
                        "unknown or unsupported tabular model `{other}`; expected tab_mlp, \
                         tab_resnet, tab_net, tab_transformer, saint, ft_transformer, \
                         context_attention_mlp, self_attention_mlp, tab_perceiver, \
                         tab_fastformer, autoint, autoint_plus, dcn, dcnv2 or gdcn"
                    ),
                ))
            }
        })
    }

    fn text_component(
        &self,
        prep: &Preprocessors,
        i: usize,
        t: &toml::Value,
    ) -> Result<TextModelConfig> {
        let s = &self.source;
        let path = format!("model.deeptext[{i}]");
        let tag = self.tag(&path, t)?;
        let meta = prep
            .text_meta(i)
            .map_err(|_| s.error(&path, format!("needs a text preprocessor number {}", i + 1)))?;
        let input = TextInput::from_meta(&meta, i);
        Ok(match tag {
            "basic_rnn" => self.component(&path, BasicRnnConfig::new(input), t)?,
            "attentive_rnn" => self.component(&path, AttentiveRnnConfig::new(input), t)?,
            "stacked_attentive_rnn" => {
                self.component(&path, StackedAttentiveRnnConfig::new(input), t)?
            }
            "text_transformer" | "transformer" => {
                self.component(&path, TextTransformerConfig::new(input), t)?
            }
            other => {
                return Err(s.error(
                    &format!("{path}.model"),
                    format!(
                        "unknown or unsupported text model `{other}`; expected basic_rnn, \
                         attentive_rnn, stacked_attentive_rnn or text_transformer"
                    ),
                ))
            }
        })
    }

    fn image_component(
        &self,
        prep: &Preprocessors,
        i: usize,
        t: &toml::Value,
    ) -> Result<ImageModelConfig> {
        let s = &self.source;
        let path = format!("model.deepimage[{i}]");
        let tag = self.tag(&path, t)?;
        let meta = prep.image_meta(i).map_err(|_| {
            s.error(
                &path,
                format!("needs an image preprocessor number {}", i + 1),
            )
        })?;
        let input = ImageInput::from_meta(&meta, i);
        Ok(match tag {
            "small_cnn" => self.component(&path, SmallCnnConfig::new(input), t)?,
            "backbone" => {
                self.component(&path, BackboneConfig::new(input, Backbone::default()), t)?
            }
            other => {
                return Err(s.error(
                    &format!("{path}.model"),
                    format!("unknown image model `{other}`; expected small_cnn or backbone"),
                ))
            }
        })
    }

    /// A library error raised while building the model (`section` = `model`) or the trainer
    /// (`training`): an invalid value becomes a config error at the field's path in the file.
    pub fn library_error(&self, section: &str, err: WideDeepError) -> CliError {
        let WideDeepError::InvalidConfig { field, reason } = &err else {
            return err.into();
        };
        let (head, rest) = field.split_once('.').unwrap_or((field.as_str(), ""));
        let tab_tag = self
            .experiment
            .model
            .get("deeptabular")
            .and_then(|t| t.get("model"))
            .and_then(|t| t.as_str());
        let path = match (section, rest.is_empty()) {
            ("training", false) => format!("training.{rest}"),
            ("model", false) if Some(head) == tab_tag => format!("model.deeptabular.{rest}"),
            (_, _) => format!("{section}.{field}"),
        };
        self.source.error(&path, reason.clone())
    }

    /// Checks the `[training]` section before any data is read (with a placeholder objective
    /// of the target's kind; the real one needs the fitted target encoder).
    pub fn check_training(&self) -> Result<()> {
        let objective = match self.preprocessors.target.as_ref().map(|t| t.kind()) {
            Some(TargetKind::Regression) => Objective::Regression,
            Some(TargetKind::Multiclass) => Objective::Multiclass { n_classes: 3 },
            _ => Objective::Binary,
        };
        let config = self.trainer_config_for(objective)?;
        config
            .validate()
            .map_err(|e| self.library_error("training", e))
    }

    /// The trainer configuration for the fitted preprocessors `prep`.
    pub fn trainer_config(&self, prep: &Preprocessors) -> Result<TrainerConfig> {
        self.trainer_config_for(prep.objective()?)
    }

    fn trainer_config_for(&self, objective: Objective) -> Result<TrainerConfig> {
        let s = &self.source;
        let base = TrainerConfig::new(objective).seed(self.experiment.seed);
        let mut user = self.experiment.training.clone();
        // `objective = "huber"` is a shorthand of `objective = { objective = "huber" }`
        if let Some(toml::Value::String(name)) = user.get("objective").cloned() {
            let mut t = toml::Table::new();
            t.insert("objective".into(), toml::Value::String(name));
            user.insert("objective".into(), toml::Value::Table(t));
        }
        s.resolve("training", &base, &toml::Value::Table(user))
    }

    /// The resolved experiment file: the fixed part with its defaults, the preprocessors
    /// (unfitted), the model and the trainer settings, every field written out.
    pub fn resolved_toml(&self, model: &WideDeepConfig, trainer: &TrainerConfig) -> Result<String> {
        let mut doc = to_json(&self.experiment);
        let mut prep = serde_json::Map::new();
        let p = &self.preprocessors;
        let unfitted = |v: serde_json::Value| {
            let mut v = v;
            if let Some(o) = v.as_object_mut() {
                o.remove("fitted");
                o.remove("classes");
                o.remove("fitted_scale");
                o.remove("dtype");
            }
            v
        };
        if let Some(w) = &p.wide {
            prep.insert("wide".into(), unfitted(to_json(w)));
        }
        if let Some(t) = &p.tab {
            prep.insert("tab".into(), unfitted(to_json(t)));
        }
        if let Some(t) = &p.target {
            prep.insert("target".into(), unfitted(to_json(t)));
        }
        if !p.text.is_empty() {
            let v = p.text.iter().map(|t| unfitted(to_json(t))).collect();
            prep.insert("text".into(), serde_json::Value::Array(v));
        }
        if !p.image.is_empty() {
            let v = p.image.iter().map(|t| unfitted(to_json(t))).collect();
            prep.insert("image".into(), serde_json::Value::Array(v));
        }
        doc["preprocessing"] = serde_json::Value::Object(prep);
        let mut model = to_json(model);
        if let Some(o) = model.as_object_mut() {
            // the resolved file is read back by `model_config`: `wide` keeps its table
            o.remove("pred_dim");
        }
        doc["model"] = model;
        doc["training"] = to_json(trainer);
        let value = json_to_toml(&doc)
            .ok_or_else(|| CliError::Usage("the resolved configuration is empty".into()))?;
        toml::to_string_pretty(&value)
            .map_err(|e| CliError::Usage(format!("writing the resolved configuration: {e}")))
    }
}

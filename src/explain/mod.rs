//! Feature attributions (SHAP values and integrated gradients) for any [`WideDeep`] model, over
//! every input: wide, tabular, text and image columns.
//!
//! An [`Explainer`] holds a model, a [`Background`] (rows standing in for "feature absent",
//! drawn by [`ExplainerConfig::background`]) and the mapping from model inputs to the
//! *features* reported: one per original column. Inputs with the same name form one feature,
//! so `education` fed both to the wide part and to the tabular component gets one value; a
//! crossed wide column (`education-occupation`) is a feature of its own.
//!
//! Methods ([`Method`]):
//! - **Integrated gradients** and **GradientSHAP** (expected gradients) differentiate the model
//!   at the embedding layer of each input ([`crate::models::Component::embed`] /
//!   [`crate::models::Component::forward_embedded`]): a categorical column's embedding, a
//!   continuous column's value, a text column's token embeddings (values per token, summed per
//!   column), an image column's pixels (summed over channels into a grid of regions, then per
//!   column). The wide part enters through its weight rows, so on the logit scale it is exact.
//!   Every deep component must implement `embed`; others need the model-agnostic methods.
//! - **KernelSHAP**, **permutation SHAP** and **exact Shapley values** (≤ 12 players) treat each
//!   feature as one player and call only `WideDeep::forward_t`: "absent" players take their
//!   values from the background rows (interventional SHAP), so they work for any component.
//!
//! Every [`Explanation`] reports its additivity gap (Σ values − (f(x) − base value)): ~0 for the
//! Shapley methods, the quadrature or sampling error for the gradient methods. The explained
//! output is chosen by [`Output`]: the raw output (logits; the default) or probabilities.
//! Work is split into batches of at most [`ExplainerConfig::batch_size`] model rows and
//! [`ExplainerConfig::max_batch_elements`] input elements, so memory stays bounded.
//!
//! ```no_run
//! use widedeep::explain::{Explainer, ExplainerConfig, Method};
//! # fn main() -> widedeep::Result<()> {
//! # let pipeline: widedeep::pipeline::Pipeline = todo!();
//! # let (train_df, test_df): (polars::prelude::DataFrame, polars::prelude::DataFrame) = todo!();
//! let config = ExplainerConfig::new(Method::gradient_shap()).background_size(100);
//! let explainer = Explainer::for_pipeline(&pipeline, &train_df, &config)?;
//! let explanation = explainer.explain_df(&test_df.head(Some(500)))?;
//! for (feature, score) in explanation.global_importance().top(5) {
//!     println!("{feature}: {score:.3}");
//! }
//! widedeep::explain::plots::beeswarm(&explanation, 0, "beeswarm.png", &Default::default())?;
//! # Ok(())
//! # }
//! ```
mod attention;
mod background;
mod explanation;
mod gradients;
pub mod plots;
mod shapley;

pub use background::{Background, BackgroundKind, KMEANS_MAX_ROWS};
pub use explanation::{Detail, DetailKind, Explanation, GlobalImportance};

use crate::error::{Result, WideDeepError};
use crate::macros::setters;
use crate::models::{ModelInput, WideDeep};
use crate::pipeline::{Pipeline, Preprocessors};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use polars::prelude::{DataFrame, DataType};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::IsTerminal;
use tch::{Device, Kind, Tensor};
use widedeep_preprocessing::TargetKind;

/// Largest number of players [`Method::Exact`] accepts (it evaluates 2^players coalitions).
pub const MAX_EXACT_PLAYERS: usize = 12;

/// Where integrated gradients start from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IgBaseline {
    /// One path from the weighted mean of the background in embedding space (the mean
    /// embedding of each categorical column, the mean of each continuous column, the mean wide
    /// weight row); the base value is the output there.
    #[default]
    BackgroundMean,
    /// One path from every background row, averaged with the background weights; the base
    /// value is the mean output over the background (as for SHAP). Costs `steps × len()`
    /// gradients per row.
    BackgroundRows,
}

/// The attribution method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Method {
    /// Integrated gradients with `steps` Gauss–Legendre points on [0, 1] (default 50).
    IntegratedGradients { steps: usize, baseline: IgBaseline },
    /// GradientSHAP / expected gradients: the mean of `(x − b) ⊙ ∇f(b + α(x − b))` over
    /// `samples` draws (default 200) of a background row `b` and α ~ U(0, 1). With at least as
    /// many samples as background rows the draws are stratified: each row `b` gets
    /// `max(1, round(samples · weight))` of them, so the estimate is exact for a model linear
    /// in its parts (e.g. the wide part); with fewer, rows are drawn by weight. The α of a
    /// row's draws are stratified too (one in each of `samples` equal slices of [0, 1]).
    GradientShap { samples: usize },
    /// KernelSHAP with `samples` coalitions per row (0: `2·players + 2048`); sizes whose
    /// coalitions all fit in the budget are enumerated, the rest sampled as distinct
    /// complementary pairs (the middle size of an even player count too), stratified by size
    /// with equal shares per size (Leverage SHAP's leverage scores);
    /// the efficiency constraint Σφ = f(x) − base is imposed exactly. A sample is read
    /// through a Shapley-kernel weighted 3-additive surrogate (k_ADD-SHAP, exact Shapley values
    /// of the fit) when its C(P,1) + C(P,2) + C(P,3) terms number at most half the coalitions
    /// and at most 400 (P ≤ 13), else through the additive regression; with every coalition
    /// both are exact. Row r uses draw r mod 16 (rows share draws and their factorization).
    KernelShap { samples: usize },
    /// Permutation SHAP: `permutations` random orders (default 10), each walked forwards and
    /// backwards (antithetic), `2·(players − 1)` coalitions per order.
    Permutation { permutations: usize },
    /// Exact Shapley values over all 2^players coalitions (at most [`MAX_EXACT_PLAYERS`]).
    Exact,
}

impl Method {
    /// Integrated gradients, 50 steps from the background mean.
    pub fn integrated_gradients() -> Self {
        Method::IntegratedGradients {
            steps: 50,
            baseline: IgBaseline::BackgroundMean,
        }
    }
    /// GradientSHAP with 200 samples per row.
    pub fn gradient_shap() -> Self {
        Method::GradientShap { samples: 200 }
    }
    /// KernelSHAP with the automatic budget `2·players + 2048`.
    pub fn kernel_shap() -> Self {
        Method::KernelShap { samples: 0 }
    }
    /// Permutation SHAP with 10 permutations.
    pub fn permutation() -> Self {
        Method::Permutation { permutations: 10 }
    }

    /// Short name used in explanations (`"kernel_shap"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Method::IntegratedGradients { .. } => "integrated_gradients",
            Method::GradientShap { .. } => "gradient_shap",
            Method::KernelShap { .. } => "kernel_shap",
            Method::Permutation { .. } => "permutation_shap",
            Method::Exact => "exact_shapley",
        }
    }

    /// Whether it differentiates the model (needs `Component::embed` on every component).
    pub fn is_gradient(&self) -> bool {
        matches!(
            self,
            Method::IntegratedGradients { .. } | Method::GradientShap { .. }
        )
    }
}

impl Default for Method {
    fn default() -> Self {
        Method::gradient_shap()
    }
}

/// The model output that is explained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// The model's raw output `[N, pred_dim]`: the logit for binary classification (values are
    /// in log-odds and the wide part is exactly additive), one logit per class for multiclass,
    /// the prediction for regression.
    #[default]
    Raw,
    /// Probabilities: the sigmoid of the logit (`pred_dim` 1) or the softmax over classes.
    Probability,
}

/// Several features reported as one (e.g. a column and its missing-value indicator).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureGroup {
    pub name: String,
    pub members: Vec<String>,
}

/// Settings of an [`Explainer`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExplainerConfig {
    pub method: Method,
    pub output: Output,
    /// How the background is drawn from the data given to the explainer.
    pub background: BackgroundKind,
    /// Number of background rows (or k-means clusters). Default 100.
    pub background_size: usize,
    /// Most rows per model call. Default 16384 (rows of tabular inputs are small; wide
    /// inputs such as images are capped by `max_batch_elements`).
    pub batch_size: usize,
    /// Most input elements (all inputs of all rows) per model call; lowers the rows per call
    /// for wide inputs such as images. Default 2^24.
    pub max_batch_elements: usize,
    /// Grid of regions `[rows, cols]` image attributions are summed into. Default `[8, 8]`.
    pub image_grid: [usize; 2],
    /// Features to report together under one name.
    #[serde(default)]
    pub groups: Vec<FeatureGroup>,
    /// Shapley methods on the raw output: take the wide part's attributions in closed form
    /// (it is additive in its columns: `w[x_j] − E_b w[b_j]`) and play the coalition game on
    /// the deep components only, which is exact for the wide part and cheaper. `false` treats
    /// the whole model as a black box (as shap's KernelExplainer does). Default `true`.
    #[serde(default = "yes")]
    pub wide_closed_form: bool,
    pub seed: u64,
    /// 0: silent; 1: a progress bar on stderr when it is a terminal.
    pub verbose: u8,
}

impl Default for ExplainerConfig {
    fn default() -> Self {
        Self {
            method: Method::default(),
            output: Output::Raw,
            background: BackgroundKind::Sample,
            background_size: 100,
            batch_size: 16384,
            max_batch_elements: 1 << 24,
            image_grid: [8, 8],
            groups: Vec::new(),
            wide_closed_form: true,
            seed: 0,
            verbose: 1,
        }
    }
}

fn yes() -> bool {
    true
}

impl ExplainerConfig {
    pub fn new(method: Method) -> Self {
        Self {
            method,
            ..Self::default()
        }
    }

    setters!(
        method: Method,
        output: Output,
        background: BackgroundKind,
        background_size: usize,
        batch_size: usize,
        max_batch_elements: usize,
        image_grid: [usize; 2],
        wide_closed_form: bool,
        seed: u64,
        verbose: u8,
    );

    /// Reports the features `members` together as `name`.
    pub fn group(mut self, name: &str, members: &[&str]) -> Self {
        self.groups.push(FeatureGroup {
            name: name.into(),
            members: members.iter().map(|m| m.to_string()).collect(),
        });
        self
    }

    /// Checks every value; errors name the field (`explain.…`).
    pub fn validate(&self) -> Result<()> {
        let positive = |v: usize, field: &str| {
            if v == 0 {
                Err(WideDeepError::config(
                    format!("explain.{field}"),
                    "must be at least 1",
                ))
            } else {
                Ok(())
            }
        };
        positive(self.background_size, "background_size")?;
        positive(self.batch_size, "batch_size")?;
        positive(self.max_batch_elements, "max_batch_elements")?;
        positive(self.image_grid[0], "image_grid")?;
        positive(self.image_grid[1], "image_grid")?;
        match self.method {
            Method::IntegratedGradients { steps, .. } => positive(steps, "method.steps")?,
            Method::GradientShap { samples } => positive(samples, "method.samples")?,
            Method::Permutation { permutations } => positive(permutations, "method.permutations")?,
            Method::KernelShap { .. } | Method::Exact => {}
        }
        let mut seen = HashMap::new();
        for g in &self.groups {
            if g.name.is_empty() || g.members.is_empty() {
                return Err(WideDeepError::config(
                    "explain.groups",
                    "a group needs a name and at least one member",
                ));
            }
            for m in &g.members {
                if let Some(other) = seen.insert(m.clone(), g.name.clone()) {
                    return Err(WideDeepError::config(
                        "explain.groups",
                        format!("`{m}` is in both `{other}` and `{}`", g.name),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Validates, draws the background from `data` and builds an explainer for `model` (input
    /// names from the tabular component where it reports them, else `wide_0`, `cat_0`, ...).
    pub fn build<'a>(&self, model: &'a WideDeep, data: &ModelInput) -> Result<Explainer<'a>> {
        Explainer::new(model, data, self)
    }
}

/// Names of the model's input columns, in [`ModelInput`] order: they become feature names,
/// and inputs sharing a name form one feature.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputNames {
    pub wide: Vec<String>,
    pub cat: Vec<String>,
    pub cont: Vec<String>,
    pub text: Vec<String>,
    pub image: Vec<String>,
}

impl InputNames {
    /// The names the fitted preprocessors give their output columns: wide (and crossed) column
    /// names, categorical and continuous column names (missing indicators included), the text
    /// and image columns' names.
    pub fn from_preprocessors(prep: &Preprocessors) -> Result<Self> {
        let mut names = InputNames::default();
        if let Some(w) = &prep.wide {
            names.wide = w.feature_names();
        }
        if let Some(t) = &prep.tab {
            let meta = t.meta()?;
            names.cat = meta.cat.into_iter().map(|c| c.name).collect();
            names.cont = meta.cont;
        }
        names.text = prep.text.iter().map(|t| t.column().to_string()).collect();
        names.image = prep.image.iter().map(|t| t.column().to_string()).collect();
        Ok(names)
    }
}

/// One model input column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Slot {
    Wide(usize),
    Cat(usize),
    Cont(usize),
    Text(usize),
    Image(usize),
}

/// A reported feature: a name and the input columns it covers.
#[derive(Clone, Debug)]
pub(crate) struct FeatureSpec {
    pub name: String,
    pub slots: Vec<Slot>,
}

/// Column counts of each input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    pub wide: usize,
    pub cat: usize,
    pub cont: usize,
    pub text: usize,
    pub image: usize,
}

impl Layout {
    fn of(input: &ModelInput) -> Layout {
        let width = |t: &Option<Tensor>| t.as_ref().map_or(0, |t| t.size()[1] as usize);
        Layout {
            wide: width(&input.wide),
            cat: width(&input.cat),
            cont: width(&input.cont),
            text: input.text.len(),
            image: input.image.len(),
        }
    }
}

/// Computes attributions for a [`WideDeep`] model; see the [module docs](self).
pub struct Explainer<'a> {
    model: &'a WideDeep,
    config: ExplainerConfig,
    background: Background,
    layout: Layout,
    names: InputNames,
    features: Vec<FeatureSpec>,
    output_names: Vec<String>,
    prep: Option<&'a Preprocessors>,
    /// `[M, k]` f64 on the CPU: the (linked) model output at each background row.
    bg_outputs: Vec<f64>,
}

impl std::fmt::Debug for Explainer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Explainer")
            .field("config", &self.config)
            .field("background_rows", &self.background.len())
            .field("features", &self.feature_names())
            .finish()
    }
}

impl<'a> Explainer<'a> {
    /// An explainer whose background is drawn from `data` as `config` says.
    pub fn new(model: &'a WideDeep, data: &ModelInput, config: &ExplainerConfig) -> Result<Self> {
        config.validate()?;
        model.check_input(data)?;
        let background = match config.background {
            BackgroundKind::Sample => {
                Background::sample(data, config.background_size, config.seed)?
            }
            BackgroundKind::KMeans => {
                Background::kmeans(data, config.background_size, config.seed)?
            }
        };
        Self::with_background(model, background, None, config)
    }

    /// An explainer with a given background and input names (`None`: defaults as in
    /// [`Explainer::new`]).
    pub fn with_background(
        model: &'a WideDeep,
        background: Background,
        names: Option<InputNames>,
        config: &ExplainerConfig,
    ) -> Result<Self> {
        config.validate()?;
        model.check_input(background.input())?;
        let background = background.to_device(model.device());
        let layout = Layout::of(background.input());
        let names = match names {
            Some(n) => n,
            None => default_names(model, layout, background.input()),
        };
        let pred_dim = model.pred_dim() as usize;
        let output_names = default_output_names(config.output, pred_dim);
        let mut ex = Explainer {
            model,
            config: config.clone(),
            background,
            layout,
            names,
            features: Vec::new(),
            output_names,
            prep: None,
            bg_outputs: Vec::new(),
        };
        if ex.config.method.is_gradient() {
            gradients::check_support(&ex)?;
        }
        ex.features = ex.resolve_features()?;
        if let Method::Exact = ex.config.method {
            // the players of the game actually played (without the wide-only features when the
            // wide part is taken in closed form)
            let players = if ex.splits_wide() {
                ex.game_players().len()
            } else {
                ex.players().len()
            };
            if players > MAX_EXACT_PLAYERS {
                return Err(WideDeepError::config(
                    "explain.method",
                    format!(
                        "exact Shapley values enumerate 2^players coalitions and take at most \
                         {MAX_EXACT_PLAYERS} players; this model has {players}; use kernel_shap \
                         or permutation"
                    ),
                ));
            }
        }
        let bg_out = ex.eval_linked(ex.background.input())?;
        ex.bg_outputs = to_vec_f64(&bg_out);
        Ok(ex)
    }

    /// An explainer for a fitted pipeline: the background is drawn from the rows of `df`
    /// (transformed by the pipeline), features are named after the DataFrame's columns, outputs
    /// after the target's classes, and [`Explainer::explain_df`] becomes available.
    pub fn for_pipeline(
        pipeline: &'a Pipeline,
        df: &DataFrame,
        config: &ExplainerConfig,
    ) -> Result<Self> {
        config.validate()?;
        let prep = &pipeline.preprocessors;
        let data = prep.transform(df)?.input;
        let model = pipeline.trainer.model();
        model.check_input(&data)?;
        let background = match config.background {
            BackgroundKind::Sample => {
                Background::sample(&data, config.background_size, config.seed)?
            }
            BackgroundKind::KMeans => {
                Background::kmeans(&data, config.background_size, config.seed)?
            }
        };
        let names = InputNames::from_preprocessors(prep)?;
        let mut ex = Self::with_background(model, background, Some(names), config)?;
        ex.prep = Some(prep);
        if let Some(t) = &prep.target {
            ex.output_names = pipeline_output_names(config.output, t.kind(), t.classes());
        }
        Ok(ex)
    }

    /// Renames the outputs (one name per explained output).
    pub fn output_names(mut self, names: Vec<String>) -> Result<Self> {
        if names.len() != self.output_names.len() {
            return Err(WideDeepError::config(
                "explain.output_names",
                format!(
                    "{} names for {} outputs",
                    names.len(),
                    self.output_names.len()
                ),
            ));
        }
        self.output_names = names;
        Ok(self)
    }

    /// The reported feature names, in order.
    pub fn feature_names(&self) -> Vec<String> {
        self.features.iter().map(|f| f.name.clone()).collect()
    }

    pub fn background(&self) -> &Background {
        &self.background
    }

    pub fn config(&self) -> &ExplainerConfig {
        &self.config
    }

    pub fn model(&self) -> &WideDeep {
        self.model
    }

    /// The mean (linked) output over the background, `[k]`: the base value of the Shapley
    /// methods and of GradientSHAP.
    pub fn expected_value(&self) -> Vec<f64> {
        weighted_mean(
            self.background.weights(),
            &self.bg_outputs,
            self.n_outputs(),
        )
    }

    /// Attributions for every row of `input` (tensors in the layout the model was trained on).
    pub fn explain(&self, input: &ModelInput) -> Result<Explanation> {
        self.model.check_input(input)?;
        let layout = Layout::of(input);
        if layout != self.layout {
            return Err(WideDeepError::InputMismatch {
                input: "explain".into(),
                reason: format!(
                    "the rows to explain have columns {layout:?}, the background {:?}",
                    self.layout
                ),
            });
        }
        let n = input.batch_size() as usize;
        if n == 0 {
            return Err(WideDeepError::Missing(
                "nothing to explain: the input has no rows".into(),
            ));
        }
        let x = input.to_device(self.model.device());
        let preds = to_vec_f64(&self.eval_linked(&x)?);
        let bar = self.progress_bar(n);
        let attr = if self.config.method.is_gradient() {
            gradients::attribute(self, &x, &bar)?
        } else {
            shapley::attribute(self, &x, &preds, &bar)?
        };
        bar.finish_and_clear();
        let (p, k) = (self.features.len(), self.n_outputs());
        let mut gap = vec![0.0; n * k];
        for r in 0..n {
            for o in 0..k {
                let s: f64 = (0..p).map(|j| attr.values[(r * p + j) * k + o]).sum();
                gap[r * k + o] = s - (preds[r * k + o] - attr.base[r * k + o]);
            }
        }
        let (data, display) = self.shown_values(&x);
        let mut details = attr.details;
        self.name_tokens(&mut details);
        let e = Explanation {
            method: self.config.method.name().into(),
            output: match self.config.output {
                Output::Raw => "raw".into(),
                Output::Probability => "probability".into(),
            },
            output_names: self.output_names.clone(),
            feature_names: self.feature_names(),
            groups: self
                .features
                .iter()
                .map(|f| f.slots.iter().map(|s| self.slot_label(*s)).collect())
                .collect(),
            n_rows: n,
            values: attr.values,
            base_values: attr.base,
            predictions: preds,
            additivity_gap: gap,
            data,
            display,
            details,
        };
        e.check_shapes()?;
        Ok(e)
    }

    /// Transforms `df` with the pipeline's preprocessors and explains its rows; the values
    /// shown in plots are the DataFrame's own. Needs [`Explainer::for_pipeline`].
    pub fn explain_df(&self, df: &DataFrame) -> Result<Explanation> {
        let prep = self.prep.ok_or_else(|| {
            WideDeepError::Missing(
                "explain_df needs an explainer made by Explainer::for_pipeline".into(),
            )
        })?;
        let data = prep.transform(df)?;
        let mut e = self.explain(&data.input)?;
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
        Ok(e)
    }

    // ---- internals shared by the methods ----

    pub(crate) fn n_outputs(&self) -> usize {
        self.model.pred_dim() as usize
    }

    pub(crate) fn features(&self) -> &[FeatureSpec] {
        &self.features
    }

    /// Indices of the features that have at least one input column (the Shapley players).
    pub(crate) fn players(&self) -> Vec<usize> {
        (0..self.features.len())
            .filter(|&j| !self.features[j].slots.is_empty())
            .collect()
    }

    /// Indices of the features that own a column of a deep component: the players of the
    /// game on the deep components when the wide part is taken in closed form.
    pub(crate) fn game_players(&self) -> Vec<usize> {
        (0..self.features.len())
            .filter(|&j| {
                self.features[j]
                    .slots
                    .iter()
                    .any(|s| !matches!(s, Slot::Wide(_)))
            })
            .collect()
    }

    pub(crate) fn layout(&self) -> Layout {
        self.layout
    }

    pub(crate) fn image_grid(&self) -> [usize; 2] {
        self.config.image_grid
    }

    /// Rows per model call: `batch_size`, lowered so that a call holds at most
    /// `max_batch_elements` input elements (`per_row` elements per row).
    pub(crate) fn rows_per_call(&self, per_row: usize) -> usize {
        (self.config.max_batch_elements / per_row.max(1)).clamp(1, self.config.batch_size)
    }

    /// Input elements of one row.
    pub(crate) fn elements_per_row(input: &ModelInput) -> usize {
        input
            .tensors()
            .map(|t| t.size().iter().skip(1).product::<i64>() as usize)
            .sum()
    }

    /// The explained output of raw model outputs `[n, pred_dim]` → `[n, k]`.
    pub(crate) fn link(&self, raw: &Tensor) -> Tensor {
        match self.config.output {
            Output::Raw => raw.shallow_clone(),
            Output::Probability if raw.size()[1] == 1 => raw.sigmoid(),
            Output::Probability => raw.softmax(-1, Kind::Float),
        }
    }

    /// Linked outputs `[n, k]` (f64, CPU) of every row of `input`, in eval mode, batched.
    pub(crate) fn eval_linked(&self, input: &ModelInput) -> Result<Tensor> {
        let n = input.batch_size();
        let step = self.rows_per_call(Self::elements_per_row(input)) as i64;
        let mut outs = Vec::new();
        tch::no_grad(|| {
            let mut s = 0;
            while s < n {
                let len = step.min(n - s);
                let chunk = input.map(|t| t.narrow(0, s, len));
                let raw = self.model.forward_t(&chunk, false);
                outs.push(self.link(&raw).to_kind(Kind::Double).to_device(Device::Cpu));
                s += len;
            }
        });
        Ok(Tensor::cat(&outs, 0))
    }

    pub(crate) fn seed(&self) -> u64 {
        self.config.seed
    }

    /// Whether the Shapley methods take the wide part in closed form (raw output, a wide part,
    /// `wide_closed_form` on).
    pub(crate) fn splits_wide(&self) -> bool {
        self.config.wide_closed_form
            && self.config.output == Output::Raw
            && self.model.wide().is_some()
    }

    /// The deep components' share of the raw output `[n, pred_dim]` (the output without the
    /// wide part and its bias).
    pub(crate) fn deep_output(&self, input: &ModelInput) -> Tensor {
        let feats: Vec<Tensor> = self
            .model
            .components()
            .iter()
            .map(|c| c.forward_t(input, false))
            .collect();
        if feats.is_empty() {
            let n = input.batch_size();
            return Tensor::zeros(
                [n, self.model.pred_dim()],
                (Kind::Float, self.model.device()),
            );
        }
        self.model.combine(None, &feats, false)
    }

    /// [`Explainer::deep_output`] of every row, batched: `[n, pred_dim]` f64 on the CPU.
    pub(crate) fn eval_deep(&self, input: &ModelInput) -> Tensor {
        let n = input.batch_size();
        let step = self.rows_per_call(Self::elements_per_row(input)) as i64;
        let mut outs = Vec::new();
        tch::no_grad(|| {
            let mut s = 0;
            while s < n {
                let len = step.min(n - s);
                let chunk = input.map(|t| t.narrow(0, s, len));
                outs.push(
                    self.deep_output(&chunk)
                        .to_kind(Kind::Double)
                        .to_device(Device::Cpu),
                );
                s += len;
            }
        });
        Tensor::cat(&outs, 0)
    }

    fn progress_bar(&self, rows: usize) -> ProgressBar {
        if self.config.verbose == 0 || !std::io::stderr().is_terminal() {
            return ProgressBar::with_draw_target(Some(rows as u64), ProgressDrawTarget::hidden());
        }
        let bar = ProgressBar::new(rows as u64);
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} rows {elapsed} (eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(self.config.method.name());
        bar
    }

    fn slot_name(&self, slot: Slot) -> &str {
        match slot {
            Slot::Wide(j) => &self.names.wide[j],
            Slot::Cat(j) => &self.names.cat[j],
            Slot::Cont(j) => &self.names.cont[j],
            Slot::Text(j) => &self.names.text[j],
            Slot::Image(j) => &self.names.image[j],
        }
    }

    fn slot_label(&self, slot: Slot) -> String {
        let kind = match slot {
            Slot::Wide(_) => "wide",
            Slot::Cat(_) => "cat",
            Slot::Cont(_) => "cont",
            Slot::Text(_) => "text",
            Slot::Image(_) => "image",
        };
        format!("{kind}:{}", self.slot_name(slot))
    }

    /// Maps a raw name through the configured groups.
    pub(crate) fn group_of(&self, name: &str) -> String {
        self.config
            .groups
            .iter()
            .find(|g| g.members.iter().any(|m| m == name))
            .map_or_else(|| name.to_string(), |g| g.name.clone())
    }

    /// Features from the input names (merged by name, grouped), then names only the deep
    /// components report (gradient methods).
    fn resolve_features(&self) -> Result<Vec<FeatureSpec>> {
        let l = self.layout;
        let n = &self.names;
        for (field, have, want) in [
            ("wide", n.wide.len(), l.wide),
            ("cat", n.cat.len(), l.cat),
            ("cont", n.cont.len(), l.cont),
            ("text", n.text.len(), l.text),
            ("image", n.image.len(), l.image),
        ] {
            if have != want {
                return Err(WideDeepError::config(
                    format!("explain.input_names.{field}"),
                    format!("{have} names for {want} input columns"),
                ));
            }
        }
        let slots = (0..l.cat)
            .map(Slot::Cat)
            .chain((0..l.cont).map(Slot::Cont))
            .chain((0..l.text).map(Slot::Text))
            .chain((0..l.image).map(Slot::Image))
            .chain((0..l.wide).map(Slot::Wide));
        let mut features: Vec<FeatureSpec> = Vec::new();
        for slot in slots {
            let name = self.group_of(self.slot_name(slot));
            match features.iter_mut().find(|f| f.name == name) {
                Some(f) => f.slots.push(slot),
                None => features.push(FeatureSpec {
                    name,
                    slots: vec![slot],
                }),
            }
        }
        if self.config.method.is_gradient() {
            let one = self.background.input().map(|t| t.narrow(0, 0, 1));
            let (_, ranges) = tch::no_grad(|| gradients::embed_all(self, &one))?;
            for (c, (comp, r)) in self.model.components().iter().zip(ranges).enumerate() {
                for name in gradients::part_names(comp.as_ref(), c, r.len()) {
                    let name = self.group_of(&name);
                    if !features.iter().any(|f| f.name == name) {
                        features.push(FeatureSpec {
                            name,
                            slots: Vec::new(),
                        });
                    }
                }
            }
        }
        Ok(features)
    }

    /// The data shown for each row and feature: a continuous value, else a categorical or wide
    /// code (with its category string when the preprocessors are known).
    fn shown_values(&self, x: &ModelInput) -> (Vec<Option<f64>>, Vec<String>) {
        let n = x.batch_size() as usize;
        let p = self.features.len();
        let col_f64 = |t: &Option<Tensor>, j: usize| -> Vec<f64> {
            t.as_ref()
                .map(|t| {
                    Vec::<f64>::try_from(
                        t.select(1, j as i64)
                            .to_kind(Kind::Double)
                            .to_device(Device::Cpu),
                    )
                    .unwrap_or_default()
                })
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
                        let flat: Vec<i64> =
                            Vec::try_from(ids.to_device(Device::Cpu).contiguous().view([-1]))
                                .unwrap_or_default();
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
    fn name_tokens(&self, details: &mut [Detail]) {
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

/// What a method returns: values `[n, P, k]`, base values `[n, k]`, details.
pub(crate) struct Attribution {
    pub values: Vec<f64>,
    pub base: Vec<f64>,
    pub details: Vec<Detail>,
}

fn default_names(model: &WideDeep, l: Layout, background: &ModelInput) -> InputNames {
    let generic = |prefix: &str, n: usize| (0..n).map(|j| format!("{prefix}_{j}")).collect();
    let mut names = InputNames {
        wide: generic("wide", l.wide),
        cat: generic("cat", l.cat),
        cont: generic("cont", l.cont),
        text: generic("text", l.text),
        image: generic("image", l.image),
    };
    // the tabular component (built first) names its categorical then continuous columns
    let has_tab = model.config().is_some_and(|c| c.deeptabular.is_some());
    if has_tab {
        if let Some(tab) = model.components().first() {
            let tab_names = tab.feature_names();
            if tab_names.len() == l.cat + l.cont && !tab_names.is_empty() {
                names.cat = tab_names[..l.cat].to_vec();
                names.cont = tab_names[l.cat..].to_vec();
            }
        }
    }
    // text and image components name their token ([b, L, d]) and pixel ([b, C, H, W]) parts
    let one = background.map(|t| t.narrow(0, 0, 1.min(t.size()[0])));
    let (mut text, mut image) = (Vec::new(), Vec::new());
    for (c, comp) in model.components().iter().enumerate() {
        if let Some(parts) = tch::no_grad(|| comp.embed(&one)) {
            let part_names = gradients::part_names(comp.as_ref(), c, parts.len());
            for (name, part) in part_names.into_iter().zip(&parts) {
                match part.dim() {
                    3 => text.push(name),
                    4 => image.push(name),
                    _ => {}
                }
            }
        }
    }
    if text.len() == l.text {
        names.text = text;
    }
    if image.len() == l.image {
        names.image = image;
    }
    names
}

fn default_output_names(output: Output, pred_dim: usize) -> Vec<String> {
    match (output, pred_dim) {
        (Output::Raw, 1) => vec!["raw".into()],
        (Output::Probability, 1) => vec!["probability".into()],
        (Output::Raw, k) => (0..k).map(|c| format!("logit[{c}]")).collect(),
        (Output::Probability, k) => (0..k).map(|c| format!("P({c})")).collect(),
    }
}

fn pipeline_output_names(output: Output, kind: TargetKind, classes: &[String]) -> Vec<String> {
    match (kind, output) {
        (TargetKind::Binary, Output::Raw) => {
            vec![format!("logit P({})", classes.get(1).map_or("1", |s| s))]
        }
        (TargetKind::Binary, Output::Probability) => {
            vec![format!("P({})", classes.get(1).map_or("1", |s| s))]
        }
        (TargetKind::Multiclass, Output::Raw) => {
            classes.iter().map(|c| format!("logit[{c}]")).collect()
        }
        (TargetKind::Multiclass, Output::Probability) => {
            classes.iter().map(|c| format!("P({c})")).collect()
        }
        (TargetKind::Regression, _) => vec!["prediction".into()],
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

/// The weighted mean `[k]` of `rows` (`[weights.len(), k]`, row-major).
pub(crate) fn weighted_mean(weights: &[f64], rows: &[f64], k: usize) -> Vec<f64> {
    let mut mean = vec![0.0; k];
    for (m, w) in weights.iter().enumerate() {
        for (o, b) in mean.iter_mut().enumerate() {
            *b += w * rows[m * k + o];
        }
    }
    mean
}

/// A float tensor's values as `Vec<f64>` (any shape, row-major).
pub(crate) fn to_vec_f64(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(
        t.to_kind(Kind::Double)
            .to_device(Device::Cpu)
            .contiguous()
            .view([-1]),
    )
    .unwrap_or_default()
}

#[cfg(test)]
mod tests;

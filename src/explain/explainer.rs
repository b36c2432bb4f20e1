//! The [`Explainer`]: a model, its background and the features reported; it computes
//! [`Explanation`]s.
use super::display::show_dataframe;
use super::features::{default_names, FeatureSpec, Layout, Slot};
use super::output::{default_output_names, pipeline_output_names};
use super::{
    gradients, shapley, to_vec_f64, weighted_mean, Background, ExplainerConfig, Explanation,
    InputNames, Method, Output, MAX_EXACT_PLAYERS,
};
use crate::error::Result;
use crate::macros::{bail, ensure};
use crate::models::{ModelInput, WideDeep};
use crate::pipeline::{Pipeline, Preprocessors};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use polars::prelude::DataFrame;
use std::io::IsTerminal;

/// Computes attributions for a [`WideDeep`] model; see the [module docs](crate::explain).
pub struct Explainer<'a> {
    /// The explained model.
    pub(super) model: &'a WideDeep,
    /// The settings (validated).
    pub(super) config: ExplainerConfig,
    /// The background rows, on the model's device.
    pub(super) background: Background,
    /// Column counts of the model's inputs.
    pub(super) layout: Layout,
    /// Names of the model's input columns.
    pub(super) names: InputNames,
    /// The reported features, in order.
    pub(super) features: Vec<FeatureSpec>,
    /// One name per explained output.
    pub(super) output_names: Vec<String>,
    /// The pipeline's preprocessors (explainers made by [`Explainer::for_pipeline`]).
    pub(super) prep: Option<&'a Preprocessors>,
    /// `[M, k]` f64 on the CPU: the (linked) model output at each background row.
    pub(super) bg_outputs: Vec<f64>,
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
    ///
    /// # Shapes
    /// - `data`: `[N, ...]` per input, as the model takes it
    pub fn new(model: &'a WideDeep, data: &ModelInput, config: &ExplainerConfig) -> Result<Self> {
        config.validate()?;
        model.check_input(data)?;
        let background = config.draw_background(data)?;
        Self::with_background(model, background, None, config)
    }

    /// An explainer with a given background and input names (`None`: defaults as in
    /// [`Explainer::new`]).
    ///
    /// # Shapes
    /// - `background`: `[M, ...]` per input, as the model takes it
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
            let players = ex.game_players().len();
            ensure!(
                players <= MAX_EXACT_PLAYERS,
                config("explain.method"),
                "exact Shapley values enumerate 2^players coalitions and take at most \
                 {MAX_EXACT_PLAYERS} players; this model has {players}; use kernel_shap or \
                 permutation"
            );
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
        let background = config.draw_background(&data)?;
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
        ensure!(
            names.len() == self.output_names.len(),
            config("explain.output_names"),
            "{} names for {} outputs",
            names.len(),
            self.output_names.len()
        );
        self.output_names = names;
        Ok(self)
    }

    /// The reported feature names, in order.
    pub fn feature_names(&self) -> Vec<String> {
        self.features.iter().map(|f| f.name.clone()).collect()
    }

    /// The background rows and their weights.
    pub fn background(&self) -> &Background {
        &self.background
    }

    /// The settings.
    pub fn config(&self) -> &ExplainerConfig {
        &self.config
    }

    /// The explained model.
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
    ///
    /// # Shapes
    /// - `input`: `[n, ...]` per input, the columns of the background's
    pub fn explain(&self, input: &ModelInput) -> Result<Explanation> {
        self.model.check_input(input)?;
        let layout = Layout::of(input);
        ensure!(
            layout == self.layout,
            input("explain"),
            "the rows to explain have columns {layout:?}, the background {:?}",
            self.layout
        );
        let n = input.batch_size() as usize;
        ensure!(
            n > 0,
            missing(),
            "nothing to explain: the input has no rows"
        );
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
        let Some(prep) = self.prep else {
            bail!(
                missing(),
                "explain_df needs an explainer made by Explainer::for_pipeline"
            );
        };
        let data = prep.transform(df)?;
        let mut e = self.explain(&data.input)?;
        show_dataframe(&mut e, df)?;
        Ok(e)
    }

    // ---- internals shared by the methods ----

    /// Number of explained outputs (the model's `pred_dim`).
    pub(crate) fn n_outputs(&self) -> usize {
        self.model.pred_dim() as usize
    }

    /// The reported features.
    pub(crate) fn features(&self) -> &[FeatureSpec] {
        &self.features
    }

    /// Indices of the features that have at least one input column (the Shapley players).
    pub(crate) fn players(&self) -> Vec<usize> {
        (0..self.features.len())
            .filter(|&j| !self.features[j].slots.is_empty())
            .collect()
    }

    /// The players of the game the Shapley methods play: [`Explainer::players`], or without
    /// the wide-only features when the wide part is taken in closed form
    /// ([`Explainer::splits_wide`]).
    pub(crate) fn game_players(&self) -> Vec<usize> {
        if !self.splits_wide() {
            return self.players();
        }
        (0..self.features.len())
            .filter(|&j| {
                self.features[j]
                    .slots
                    .iter()
                    .any(|s| !matches!(s, Slot::Wide(_)))
            })
            .collect()
    }

    /// Column counts of the model's inputs.
    pub(crate) fn layout(&self) -> Layout {
        self.layout
    }

    /// The grid of regions image attributions are summed into.
    pub(crate) fn image_grid(&self) -> [usize; 2] {
        self.config.image_grid
    }

    /// The seed of every random draw.
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

    /// A progress bar over `rows` rows on stderr (hidden when silent or not a terminal).
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
}

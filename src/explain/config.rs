//! The settings of an explainer: the attribution [`Method`], the explained [`Output`], the
//! background, batching, feature groups ([`ExplainerConfig`]).
use super::{Background, BackgroundKind, Explainer};
use crate::error::Result;
use crate::macros::{bail, ensure, setters};
use crate::models::{ModelInput, WideDeep};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

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
    IntegratedGradients {
        /// Gauss–Legendre points on the path.
        steps: usize,
        /// Where the path starts.
        baseline: IgBaseline,
    },
    /// GradientSHAP / expected gradients: the mean of `(x − b) ⊙ ∇f(b + α(x − b))` over
    /// `samples` draws (default 200) of a background row `b` and α ~ U(0, 1). With at least as
    /// many samples as background rows the draws are stratified: each row `b` gets
    /// `max(1, round(samples · weight))` of them, so the estimate is exact for a model linear
    /// in its parts (e.g. the wide part); with fewer, rows are drawn by weight. The α of a
    /// row's draws are stratified too (one in each of `samples` equal slices of [0, 1]).
    GradientShap {
        /// Draws per explained row.
        samples: usize,
    },
    /// KernelSHAP with `samples` coalitions per row (0: `2·players + 2048`); sizes whose
    /// coalitions all fit in the budget are enumerated, the rest sampled as distinct
    /// complementary pairs (the middle size of an even player count too), stratified by size
    /// with equal shares per size (Leverage SHAP's leverage scores);
    /// the efficiency constraint Σφ = f(x) − base is imposed exactly. A sample is read
    /// through a Shapley-kernel weighted 3-additive surrogate (k_ADD-SHAP, exact Shapley values
    /// of the fit) when its C(P,1) + C(P,2) + C(P,3) terms number at most half the coalitions
    /// and at most 400 (P ≤ 13), else through the additive regression; with every coalition
    /// both are exact. Row r uses draw r mod 16 (rows share draws and their factorization).
    KernelShap {
        /// Coalitions per row (0: `2·players + 2048`).
        samples: usize,
    },
    /// Permutation SHAP: `permutations` random orders (default 10), each walked forwards and
    /// backwards (antithetic), `2·(players − 1)` coalitions per order.
    Permutation {
        /// Random orders per row.
        permutations: usize,
    },
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
    /// The name reported.
    pub name: String,
    /// The features (input names) it covers.
    pub members: Vec<String>,
}

/// Settings of an [`Explainer`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExplainerConfig {
    /// The attribution method. Default GradientSHAP with 200 samples.
    pub method: Method,
    /// The explained output. Default the raw output.
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
    /// Seed of every random draw (background sample, k-means, coalitions, orders, α).
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

/// Serde's default of `wide_closed_form`.
fn yes() -> bool {
    true
}

impl ExplainerConfig {
    /// The default settings with `method`.
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
        let positive = |v: usize, field: &str| -> Result<()> {
            ensure!(
                v > 0,
                config(format!("explain.{field}")),
                "must be at least 1"
            );
            Ok(())
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
            ensure!(
                !g.name.is_empty() && !g.members.is_empty(),
                config("explain.groups"),
                "a group needs a name and at least one member"
            );
            for m in &g.members {
                if let Some(other) = seen.insert(m.clone(), g.name.clone()) {
                    bail!(
                        config("explain.groups"),
                        "`{m}` is in both `{other}` and `{}`",
                        g.name
                    );
                }
            }
        }
        Ok(())
    }

    /// Validates, draws the background from `data` and builds an explainer for `model` (input
    /// names from the tabular component where it reports them, else `wide_0`, `cat_0`, ...).
    ///
    /// # Shapes
    /// - `data`: `[N, ...]` per input, as the model takes it
    pub fn build<'a>(&self, model: &'a WideDeep, data: &ModelInput) -> Result<Explainer<'a>> {
        Explainer::new(model, data, self)
    }

    /// The background drawn from `data` as [`ExplainerConfig::background`] says.
    pub(super) fn draw_background(&self, data: &ModelInput) -> Result<Background> {
        match self.background {
            BackgroundKind::Sample => Background::sample(data, self.background_size, self.seed),
            BackgroundKind::KMeans => Background::kmeans(data, self.background_size, self.seed),
        }
    }
}

//! [`TabNetConfig`]: TabNet's hyper-parameters, their checks, and the build of the model.
use super::attentive::AttentiveTransformer;
use super::glu::{glu_linear, FeatTransformer, GhostBatchNorm};
use super::model::{Step, TabNet};
use super::sparsemax::MaskType;
use crate::error::Result;
use crate::macros::{ensure, setters};
use crate::models::checks::check_dropout;
use crate::models::tabular::embeddings::{TabColumns, TabEmbedConfig};
use crate::models::ComponentConfig;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use tch::nn;
use widedeep_preprocessing::TabMeta;

/// Configuration of [`TabNet`]. Start from [`TabNetConfig::from_meta`] with the fitted
/// `TabPreprocessor`'s metadata, then adjust with the setters. Defaults are the reference's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TabNetConfig {
    /// The columns and their embedding options (flattened: `cat_embed`, `cont_cols`,
    /// `embed_dropout`, `cont_norm` at the top of the JSON).
    #[serde(flatten)]
    pub embed: TabEmbedConfig,
    /// Number of decision steps (≥ 1).
    pub n_steps: usize,
    /// Width of each step's decision output, and of the model's output (≥ 1).
    pub step_dim: i64,
    /// Width of the attention features passed to the next step's mask (≥ 1).
    pub attn_dim: i64,
    /// Dropout after each GLU layer, in `[0, 1)`.
    pub dropout: f64,
    /// GLU layers specific to each step.
    pub n_glu_step_dependent: usize,
    /// GLU layers shared by all steps (their linear layers are shared; the first of them
    /// reads the embeddings). With the step-dependent ones, at least one in all.
    pub n_glu_shared: usize,
    /// Ghost batch normalisation: training batches are normalised in chunks of
    /// `virtual_batch_size` rows. `false`: ordinary batch normalisation.
    pub ghost_bn: bool,
    /// Rows per ghost batch (≥ 1).
    pub virtual_batch_size: usize,
    /// Momentum of the running statistics of the GLU and attention batch norms, in `(0, 1]`.
    pub momentum: f64,
    /// Relaxation `γ ≥ 1`: with 1 a feature is used at one step only; larger values let it be
    /// reused.
    pub gamma: f64,
    /// Added inside the logarithm of the sparsity regularisation (`> 0`, keep it tiny).
    pub epsilon: f64,
    /// The mask function of the attentive transformers.
    pub mask_type: MaskType,
    /// Weight of the sparsity regularisation (the masks' mean entropy) added to the training
    /// loss through [`Component::forward_aux`](crate::models::Component::forward_aux); 0 turns
    /// it off (≥ 0).
    pub lambda_sparse: f64,
}

impl Default for TabNetConfig {
    fn default() -> Self {
        Self {
            embed: TabEmbedConfig::default(),
            n_steps: 3,
            step_dim: 8,
            attn_dim: 8,
            dropout: 0.0,
            n_glu_step_dependent: 2,
            n_glu_shared: 2,
            ghost_bn: true,
            virtual_batch_size: 128,
            momentum: 0.02,
            gamma: 1.3,
            epsilon: 1e-15,
            mask_type: MaskType::Sparsemax,
            lambda_sparse: 1e-3,
        }
    }
}

impl TabNetConfig {
    /// Columns, cardinalities and embedding widths from a fitted `TabPreprocessor`.
    pub fn from_meta(meta: &TabMeta) -> Self {
        Self {
            embed: TabEmbedConfig::from_meta(meta),
            ..Default::default()
        }
    }
    setters!(
        n_steps: usize,
        step_dim: i64,
        attn_dim: i64,
        dropout: f64,
        n_glu_step_dependent: usize,
        n_glu_shared: usize,
        ghost_bn: bool,
        virtual_batch_size: usize,
        momentum: f64,
        gamma: f64,
        epsilon: f64,
        mask_type: MaskType,
        lambda_sparse: f64,
    );
}

impl ComponentConfig for TabNetConfig {
    type Component = TabNet;
    const NAME: &'static str = "tab_net";

    /// Checks the values, then the embedding options; errors name the field
    /// (`tab_net.n_steps`, `tab_net.embed_dropout`, ...).
    fn validate(&self) -> Result<()> {
        ensure!(
            self.n_steps >= 1,
            config("tab_net.n_steps"),
            "must be ≥ 1, got 0"
        );
        ensure!(
            self.step_dim >= 1,
            config("tab_net.step_dim"),
            "must be ≥ 1, got {}",
            self.step_dim
        );
        ensure!(
            self.attn_dim >= 1,
            config("tab_net.attn_dim"),
            "must be ≥ 1, got {}",
            self.attn_dim
        );
        check_dropout(self.dropout, "tab_net.dropout")?;
        ensure!(
            self.n_glu_shared + self.n_glu_step_dependent >= 1,
            config("tab_net.n_glu_shared"),
            "n_glu_shared + n_glu_step_dependent must be ≥ 1, got 0"
        );
        ensure!(
            self.virtual_batch_size >= 1,
            config("tab_net.virtual_batch_size"),
            "must be ≥ 1, got 0"
        );
        ensure!(
            self.momentum > 0.0 && self.momentum <= 1.0,
            config("tab_net.momentum"),
            "must be in (0, 1], got {}",
            self.momentum
        );
        ensure!(
            self.gamma >= 1.0 && self.gamma.is_finite(),
            config("tab_net.gamma"),
            "must be ≥ 1, got {}",
            self.gamma
        );
        ensure!(
            self.epsilon > 0.0 && self.epsilon < 1.0,
            config("tab_net.epsilon"),
            "must be in (0, 1), got {}",
            self.epsilon
        );
        ensure!(
            self.lambda_sparse >= 0.0 && self.lambda_sparse.is_finite(),
            config("tab_net.lambda_sparse"),
            "must be ≥ 0, got {}",
            self.lambda_sparse
        );
        self.validate_columns()
    }

    /// Validates, then builds the embeddings, the shared GLU layers, the splitter, the steps
    /// (each: attentive transformer, feature transformer) and the initial batch norm under
    /// `path`, in this order.
    fn build(&self, path: &nn::Path) -> Result<TabNet> {
        self.validate()?;
        let embed = self.build_embeddings(path)?;
        let input_dim = embed.output_dim();
        let hidden = self.step_dim + self.attn_dim;
        let bn = |p: nn::Path, dim: i64| {
            GhostBatchNorm::new(
                &p,
                dim,
                self.momentum,
                self.ghost_bn.then_some(self.virtual_batch_size as i64),
            )
        };
        let shared: Vec<nn::Linear> = (0..self.n_glu_shared)
            .map(|i| {
                let inp = if i == 0 { input_dim } else { hidden };
                glu_linear(&(path / "shared" / format!("fc_{i}")), inp, hidden)
            })
            .collect();
        let feat = |p: nn::Path| {
            FeatTransformer::new(
                &p,
                &shared,
                self.n_glu_step_dependent,
                (input_dim, hidden),
                self.dropout,
                &bn,
            )
        };
        let splitter = feat(path / "splitter");
        let steps = (0..self.n_steps)
            .map(|s| {
                let p = path / format!("step_{s}");
                Step {
                    attentive: AttentiveTransformer::new(
                        &p,
                        (self.attn_dim, input_dim),
                        self.mask_type,
                        &bn,
                    ),
                    feat: feat(&p / "feat"),
                }
            })
            .collect();
        let initial_bn = nn::batch_norm1d(
            path / "initial_bn",
            input_dim,
            nn::BatchNormConfig {
                momentum: 0.01,
                ws_init: nn::Init::Const(1.0),
                ..Default::default()
            },
        );
        let mut widths: Vec<i64> = self.cat_embed.iter().map(|c| c.embed_dim as i64).collect();
        widths.extend(std::iter::repeat_n(1, self.cont_cols.len()));
        Ok(TabNet {
            embed,
            initial_bn,
            splitter,
            steps,
            step_dim: self.step_dim,
            attn_dim: self.attn_dim,
            gamma: self.gamma,
            epsilon: self.epsilon,
            lambda_sparse: self.lambda_sparse,
            widths,
            last_masks: Mutex::new(None),
        })
    }
}

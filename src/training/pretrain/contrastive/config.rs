//! The settings of contrastive–denoising pretraining and their checks.
use crate::error::Result;
use crate::macros::{ensure, setters};
use crate::models::tabular::TabModelConfig;
use crate::models::Activation;
use crate::training::checks::positive;
use serde::{Deserialize, Serialize};

/// Which loss pretraining minimises (the reference's `loss_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CdLossType {
    /// InfoNCE between the projections of the clean and the corrupted encodings.
    Contrastive,
    /// Reconstruction of the clean input from the corrupted encoding: cross-entropy per
    /// categorical column, squared error per continuous column.
    Denoising,
    /// The sum of both (the default).
    #[default]
    Both,
}

impl CdLossType {
    /// Whether the contrastive term is computed.
    pub fn contrastive(self) -> bool {
        matches!(self, Self::Contrastive | Self::Both)
    }
    /// Whether the denoising term is computed.
    pub fn denoising(self) -> bool {
        matches!(self, Self::Denoising | Self::Both)
    }
}

/// How the denoising MLPs are laid out (the reference's `cat_mlp_type` / `cont_mlp_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenoiseMlpType {
    /// One MLP shared by every column of the kind.
    Single,
    /// One MLP per column (the default).
    #[default]
    Multiple,
}

fn default_temperature() -> f64 {
    0.1
}

fn default_one() -> f64 {
    1.0
}

fn default_corruption() -> f64 {
    0.8
}

fn default_seed() -> u64 {
    1
}

/// Configuration of the contrastive–denoising route (the model side of
/// [`ContrastiveDenoisingTrainer`](super::ContrastiveDenoisingTrainer)): the encoder (the same
/// configuration the fine-tuned
/// [`WideDeepConfig::deeptabular`](crate::models::WideDeepConfig::deeptabular) must hold), the
/// losses, the projection heads, the denoising MLPs, the corruptions and the seed of the initial
/// weights. Defaults follow pytorch-widedeep 1.7.0's `ContrastiveDenoisingTrainer`: both losses,
/// no projection heads (identity), ReLU, one denoising MLP per column, temperature 0.1,
/// `lambda_cat` = `lambda_cont` = 1, CutMix keeping each entry with probability 0.8 and MixUp
/// with λ = 0.8.
///
/// The loop settings live in the shared
/// [`PretrainConfig`](crate::training::pretrain::PretrainConfig), whose defaults are the
/// reference trainer's too: AdamW (PyTorch's defaults: lr 1e-3, weight decay 0.01), batch size
/// 32, one epoch, the validation loss in batches of the training batch size. Unlike the
/// reference the rows are shuffled every epoch (`PretrainConfig::shuffle`) and the run is
/// seeded: the weights from `seed` here, the row order and the corruptions from
/// `PretrainConfig::seed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContrastiveDenoisingConfig {
    /// The encoder to pretrain: TabTransformer (with `embed_continuous`), SAINT,
    /// FT-Transformer, TabFastFormer, ContextAttentionMlp, SelfAttentionMlp, or TabPerceiver
    /// (contrastive loss only).
    pub encoder: TabModelConfig,
    /// The loss: contrastive, denoising or both.
    #[serde(default)]
    pub loss_type: CdLossType,
    /// Widths of the first projection head, input first (it must equal the encoder's token
    /// width, `input_dim`; TabPerceiver: `latent_dim`); `None`: identity.
    #[serde(default)]
    pub projection_head1_dims: Option<Vec<i64>>,
    /// Widths of the second projection head (on the corrupted branch); `None`: the first
    /// head is applied to both branches.
    #[serde(default)]
    pub projection_head2_dims: Option<Vec<i64>>,
    /// Activation after every layer of the projection heads (the last one included, as the
    /// reference's MLPs).
    #[serde(default)]
    pub projection_heads_activation: Activation,
    /// One denoising MLP for all categorical columns or one per column.
    #[serde(default)]
    pub cat_mlp_type: DenoiseMlpType,
    /// One denoising MLP for all continuous columns or one per column.
    #[serde(default)]
    pub cont_mlp_type: DenoiseMlpType,
    /// Activation after every layer of the denoising MLPs (the last one included, as the
    /// reference's MLPs).
    #[serde(default)]
    pub denoise_mlps_activation: Activation,
    /// Temperature of the InfoNCE loss (> 0).
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// Weight of the categorical denoising loss (≥ 0).
    #[serde(default = "default_one")]
    pub lambda_cat: f64,
    /// Weight of the continuous denoising loss (≥ 0).
    #[serde(default = "default_one")]
    pub lambda_cont: f64,
    /// CutMix in input space: each entry of a row is kept with this probability and otherwise
    /// taken from another row of the batch (in [0, 1]; 1 turns CutMix off).
    #[serde(default = "default_corruption")]
    pub cutmix_lambda: f64,
    /// MixUp in embedding space: `λ · tokens + (1 − λ) · tokens of another row` (in [0, 1];
    /// 1 turns MixUp off).
    #[serde(default = "default_corruption")]
    pub mixup_lambda: f64,
    /// Seed of the initial weights (encoder first, then the projection heads and the denoising
    /// MLPs).
    #[serde(default = "default_seed")]
    pub seed: u64,
}

/// The prefix of the fields named in errors.
pub(crate) const FIELD: &str = "contrastive_denoising";

impl ContrastiveDenoisingConfig {
    /// The route for `encoder` with the reference's defaults (see the type's documentation)
    /// and seed 1.
    pub fn new(encoder: impl Into<TabModelConfig>) -> Self {
        Self {
            encoder: encoder.into(),
            loss_type: CdLossType::Both,
            projection_head1_dims: None,
            projection_head2_dims: None,
            projection_heads_activation: Activation::Relu,
            cat_mlp_type: DenoiseMlpType::Multiple,
            cont_mlp_type: DenoiseMlpType::Multiple,
            denoise_mlps_activation: Activation::Relu,
            temperature: default_temperature(),
            lambda_cat: default_one(),
            lambda_cont: default_one(),
            cutmix_lambda: default_corruption(),
            mixup_lambda: default_corruption(),
            seed: default_seed(),
        }
    }

    setters!(
        loss_type: CdLossType,
        projection_heads_activation: Activation,
        cat_mlp_type: DenoiseMlpType,
        cont_mlp_type: DenoiseMlpType,
        denoise_mlps_activation: Activation,
        temperature: f64,
        lambda_cat: f64,
        lambda_cont: f64,
        cutmix_lambda: f64,
        mixup_lambda: f64,
        seed: u64,
    );

    /// Sets `projection_head1_dims` (input width first).
    pub fn projection_head1_dims(mut self, dims: impl Into<Vec<i64>>) -> Self {
        self.projection_head1_dims = Some(dims.into());
        self
    }

    /// Sets `projection_head2_dims` (input width first).
    pub fn projection_head2_dims(mut self, dims: impl Into<Vec<i64>>) -> Self {
        self.projection_head2_dims = Some(dims.into());
        self
    }

    /// Checks every setting on its own; errors name it (`contrastive_denoising.temperature`).
    /// The encoder (`contrastive_denoising.encoder`, then its own fields) and the projection
    /// heads' input widths are checked when the model is built.
    pub fn validate(&self) -> Result<()> {
        let f = |name: &str| format!("{FIELD}.{name}");
        ensure!(
            positive(self.temperature),
            config(f("temperature")),
            "must be finite and > 0, got {}",
            self.temperature
        );
        for (name, v) in [
            ("lambda_cat", self.lambda_cat),
            ("lambda_cont", self.lambda_cont),
        ] {
            ensure!(
                v.is_finite() && v >= 0.0,
                config(f(name)),
                "must be finite and ≥ 0, got {v}"
            );
        }
        for (name, v) in [
            ("cutmix_lambda", self.cutmix_lambda),
            ("mixup_lambda", self.mixup_lambda),
        ] {
            ensure!(
                (0.0..=1.0).contains(&v),
                config(f(name)),
                "must be in [0, 1], got {v}"
            );
        }
        for (name, dims) in [
            ("projection_head1_dims", &self.projection_head1_dims),
            ("projection_head2_dims", &self.projection_head2_dims),
        ] {
            if let Some(d) = dims {
                ensure!(
                    d.len() >= 2 && d.iter().all(|&w| w > 0),
                    config(f(name)),
                    "needs the input width and at least one layer, all positive, got {d:?}"
                );
            }
        }
        ensure!(
            self.projection_head2_dims.is_none() || self.projection_head1_dims.is_some(),
            config(f("projection_head2_dims")),
            "a second projection head needs a first one (projection_head1_dims)"
        );
        Ok(())
    }
}

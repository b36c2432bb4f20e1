//! The settings of contrastive–denoising pretraining and their checks.
use crate::error::Result;
use crate::macros::{ensure, setters};
use crate::models::Activation;
use crate::training::checks::positive;
use crate::training::optim::{AdamConfig, Optimizer};
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

/// Settings of [`ContrastiveDenoisingTrainer`](super::ContrastiveDenoisingTrainer). Defaults
/// follow pytorch-widedeep 1.7.0's `ContrastiveDenoisingTrainer`: both losses, no projection
/// heads (identity), ReLU, one denoising MLP per column, temperature 0.1, `lambda_cat` =
/// `lambda_cont` = 1, CutMix keeping each entry with probability 0.8 and MixUp with λ = 0.8,
/// AdamW (PyTorch defaults: lr 1e-3, weight decay 0.01), batch size 32, one epoch. Unlike the
/// reference the rows are shuffled every epoch (`shuffle`) and the run is seeded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContrastiveDenoisingConfig {
    /// The loss: contrastive, denoising or both.
    pub loss_type: CdLossType,
    /// Widths of the first projection head, input first (it must equal the encoder's token
    /// width, `input_dim`; TabPerceiver: `latent_dim`); `None`: identity.
    pub projection_head1_dims: Option<Vec<i64>>,
    /// Widths of the second projection head (on the corrupted branch); `None`: the first
    /// head is applied to both branches.
    pub projection_head2_dims: Option<Vec<i64>>,
    /// Activation after every layer of the projection heads (the last one included, as the
    /// reference's MLPs).
    pub projection_heads_activation: Activation,
    /// One denoising MLP for all categorical columns or one per column.
    pub cat_mlp_type: DenoiseMlpType,
    /// One denoising MLP for all continuous columns or one per column.
    pub cont_mlp_type: DenoiseMlpType,
    /// Activation after every layer of the denoising MLPs (the last one included, as the
    /// reference's MLPs).
    pub denoise_mlps_activation: Activation,
    /// Temperature of the InfoNCE loss (> 0).
    pub temperature: f64,
    /// Weight of the categorical denoising loss (≥ 0).
    pub lambda_cat: f64,
    /// Weight of the continuous denoising loss (≥ 0).
    pub lambda_cont: f64,
    /// CutMix in input space: each entry of a row is kept with this probability and otherwise
    /// taken from another row of the batch (in [0, 1]; 1 turns CutMix off).
    pub cutmix_lambda: f64,
    /// MixUp in embedding space: `λ · tokens + (1 − λ) · tokens of another row` (in [0, 1];
    /// 1 turns MixUp off).
    pub mixup_lambda: f64,
    /// The optimizer of every parameter (encoder, heads, denoising MLPs).
    pub optimizer: Optimizer,
    /// Learning rate (> 0).
    pub lr: f64,
    /// Weight decay (decoupled for AdamW; ≥ 0).
    pub weight_decay: f64,
    /// Rows per batch (≥ 2: the contrastive loss contrasts the rows of a batch).
    pub batch_size: usize,
    /// Batch size of the validation loss.
    pub eval_batch_size: usize,
    /// Epochs run by each call of `pretrain` (after a resume: the epochs still to run).
    pub epochs: usize,
    /// Reshuffle the rows every epoch (the reference does not).
    pub shuffle: bool,
    /// Seeds the weights, the shuffling, dropout and the augmentations.
    pub seed: u64,
    /// 0: silent; 1: a progress bar per epoch (a summary line when stderr is not a terminal).
    pub verbose: u8,
}

impl Default for ContrastiveDenoisingConfig {
    fn default() -> Self {
        Self {
            loss_type: CdLossType::Both,
            projection_head1_dims: None,
            projection_head2_dims: None,
            projection_heads_activation: Activation::Relu,
            cat_mlp_type: DenoiseMlpType::Multiple,
            cont_mlp_type: DenoiseMlpType::Multiple,
            denoise_mlps_activation: Activation::Relu,
            temperature: 0.1,
            lambda_cat: 1.0,
            lambda_cont: 1.0,
            cutmix_lambda: 0.8,
            mixup_lambda: 0.8,
            optimizer: Optimizer::AdamW(AdamConfig::default()),
            lr: 1e-3,
            weight_decay: 0.01,
            batch_size: 32,
            eval_batch_size: 256,
            epochs: 1,
            shuffle: true,
            seed: 1,
            verbose: 1,
        }
    }
}

/// The prefix of the fields named in errors.
pub(crate) const FIELD: &str = "contrastive_denoising";

impl ContrastiveDenoisingConfig {
    /// The defaults (see the type's documentation).
    pub fn new() -> Self {
        Self::default()
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
        optimizer: Optimizer,
        lr: f64,
        weight_decay: f64,
        batch_size: usize,
        eval_batch_size: usize,
        epochs: usize,
        shuffle: bool,
        seed: u64,
        verbose: u8,
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

    /// Checks every field on its own; errors name it (`contrastive_denoising.temperature`).
    /// The projection heads' input widths are checked against the encoder when the trainer is
    /// built.
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
            ("weight_decay", self.weight_decay),
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
        ensure!(
            positive(self.lr),
            config(f("lr")),
            "must be finite and > 0, got {}",
            self.lr
        );
        ensure!(
            self.batch_size >= 2,
            config(f("batch_size")),
            "must be ≥ 2 (the contrastive loss contrasts the rows of a batch), got {}",
            self.batch_size
        );
        ensure!(
            self.eval_batch_size >= 1,
            config(f("eval_batch_size")),
            "must be ≥ 1, got 0"
        );
        self.optimizer.validate(&f("optimizer"))?;
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

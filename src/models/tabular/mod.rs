//! Deep models over the tabular input (categorical indices + continuous values).
pub mod attention_embeddings;
pub mod attention_layers;
pub mod context_attention_mlp;
pub mod embeddings;
pub mod ft_transformer;
pub mod saint;
pub mod self_attention_mlp;
pub mod tab_fastformer;
pub mod tab_mlp;
pub mod tab_perceiver;
pub mod tab_transformer;

pub use attention_embeddings::{AttnEmbedConfig, AttnEmbeddings, ContEmbed, SharedEmbed};
pub use attention_layers::TransformerActivation;
pub use context_attention_mlp::{ContextAttentionMlp, ContextAttentionMlpConfig};
pub use embeddings::{ContNorm, TabEmbeddings};
pub use ft_transformer::{FtTransformer, FtTransformerConfig};
pub use saint::{Saint, SaintConfig};
pub use self_attention_mlp::{SelfAttentionMlp, SelfAttentionMlpConfig};
pub use tab_fastformer::{TabFastFormer, TabFastFormerConfig};
pub use tab_mlp::{TabMlp, TabMlpConfig};
pub use tab_perceiver::{TabPerceiver, TabPerceiverConfig};
pub use tab_transformer::{TabTransformer, TabTransformerConfig};

use crate::error::Result;
use crate::models::Component;
use serde::{Deserialize, Serialize};
use tch::nn;

/// The serializable choice of deep tabular model inside a [`crate::models::WideDeepConfig`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum TabModelConfig {
    TabMlp(TabMlpConfig),
    TabTransformer(TabTransformerConfig),
    Saint(SaintConfig),
    #[serde(rename = "ft_transformer")]
    FtTransformer(FtTransformerConfig),
    ContextAttentionMlp(ContextAttentionMlpConfig),
    SelfAttentionMlp(SelfAttentionMlpConfig),
    TabPerceiver(TabPerceiverConfig),
    #[serde(rename = "tab_fastformer")]
    TabFastFormer(TabFastFormerConfig),
}

impl TabModelConfig {
    /// Builds the component under `path`.
    pub fn build(&self, path: &nn::Path) -> Result<Box<dyn Component>> {
        Ok(match self {
            TabModelConfig::TabMlp(c) => Box::new(c.build(path)?),
            TabModelConfig::TabTransformer(c) => Box::new(c.build(path)?),
            TabModelConfig::Saint(c) => Box::new(c.build(path)?),
            TabModelConfig::FtTransformer(c) => Box::new(c.build(path)?),
            TabModelConfig::ContextAttentionMlp(c) => Box::new(c.build(path)?),
            TabModelConfig::SelfAttentionMlp(c) => Box::new(c.build(path)?),
            TabModelConfig::TabPerceiver(c) => Box::new(c.build(path)?),
            TabModelConfig::TabFastFormer(c) => Box::new(c.build(path)?),
        })
    }
}

impl From<TabMlpConfig> for TabModelConfig {
    fn from(c: TabMlpConfig) -> Self {
        TabModelConfig::TabMlp(c)
    }
}

impl From<TabTransformerConfig> for TabModelConfig {
    fn from(c: TabTransformerConfig) -> Self {
        TabModelConfig::TabTransformer(c)
    }
}

impl From<SaintConfig> for TabModelConfig {
    fn from(c: SaintConfig) -> Self {
        TabModelConfig::Saint(c)
    }
}

impl From<FtTransformerConfig> for TabModelConfig {
    fn from(c: FtTransformerConfig) -> Self {
        TabModelConfig::FtTransformer(c)
    }
}

impl From<ContextAttentionMlpConfig> for TabModelConfig {
    fn from(c: ContextAttentionMlpConfig) -> Self {
        TabModelConfig::ContextAttentionMlp(c)
    }
}

impl From<SelfAttentionMlpConfig> for TabModelConfig {
    fn from(c: SelfAttentionMlpConfig) -> Self {
        TabModelConfig::SelfAttentionMlp(c)
    }
}

impl From<TabPerceiverConfig> for TabModelConfig {
    fn from(c: TabPerceiverConfig) -> Self {
        TabModelConfig::TabPerceiver(c)
    }
}

impl From<TabFastFormerConfig> for TabModelConfig {
    fn from(c: TabFastFormerConfig) -> Self {
        TabModelConfig::TabFastFormer(c)
    }
}

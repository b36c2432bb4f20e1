//! Deep models over the tabular input (categorical indices + continuous values).
pub mod embeddings;
pub mod tab2vec;
pub mod tab_mlp;
pub mod tab_resnet;
pub mod tabnet;

pub use embeddings::{ContNorm, TabEmbeddings};
pub use tab2vec::Tab2Vec;
pub use tab_mlp::{TabMlp, TabMlpConfig};
pub use tab_resnet::{TabResnet, TabResnetConfig};
pub use tabnet::{entmax15, sparsemax, MaskType, TabNet, TabNetConfig};

use crate::error::Result;
use crate::models::Component;
use serde::{Deserialize, Serialize};
use tch::nn;

/// The serializable choice of deep tabular model inside a [`crate::models::WideDeepConfig`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum TabModelConfig {
    TabMlp(TabMlpConfig),
    TabResnet(TabResnetConfig),
    TabNet(TabNetConfig),
}

impl TabModelConfig {
    /// Builds the component under `path`.
    pub fn build(&self, path: &nn::Path) -> Result<Box<dyn Component>> {
        Ok(match self {
            TabModelConfig::TabMlp(c) => Box::new(c.build(path)?),
            TabModelConfig::TabResnet(c) => Box::new(c.build(path)?),
            TabModelConfig::TabNet(c) => Box::new(c.build(path)?),
        })
    }
}

impl From<TabMlpConfig> for TabModelConfig {
    fn from(c: TabMlpConfig) -> Self {
        TabModelConfig::TabMlp(c)
    }
}

impl From<TabResnetConfig> for TabModelConfig {
    fn from(c: TabResnetConfig) -> Self {
        TabModelConfig::TabResnet(c)
    }
}

impl From<TabNetConfig> for TabModelConfig {
    fn from(c: TabNetConfig) -> Self {
        TabModelConfig::TabNet(c)
    }
}

//! Deep models over the tabular input (categorical indices + continuous values).
pub mod attention_embeddings;
pub mod attention_layers;
pub mod context_attention_mlp;
pub mod embeddings;
pub mod ft_transformer;
pub(crate) mod fused_attention;
pub mod saint;
pub mod self_attention_mlp;
pub mod tab2vec;
pub mod tab_fastformer;
pub mod tab_mlp;
pub mod tab_perceiver;
pub mod tab_resnet;
pub mod tab_transformer;
pub mod tabnet;

pub use attention_embeddings::{AttnEmbedConfig, AttnEmbeddings, ContEmbed, SharedEmbed};
pub use attention_layers::TransformerActivation;
pub use context_attention_mlp::{ContextAttentionMlp, ContextAttentionMlpConfig};
pub use embeddings::{ContNorm, TabEmbeddings};
pub use ft_transformer::{FtTransformer, FtTransformerConfig};
pub use saint::{Saint, SaintConfig};
pub use self_attention_mlp::{SelfAttentionMlp, SelfAttentionMlpConfig};
pub use tab2vec::Tab2Vec;
pub use tab_fastformer::{TabFastFormer, TabFastFormerConfig};
pub use tab_mlp::{TabMlp, TabMlpConfig};
pub use tab_perceiver::{TabPerceiver, TabPerceiverConfig};
pub use tab_resnet::{TabResnet, TabResnetConfig};
pub use tab_transformer::{TabTransformer, TabTransformerConfig};
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

/// `build` dispatch and `From<XxxConfig> for TabModelConfig` for every variant.
macro_rules! tab_models {
    ($($variant:ident($config:ty)),* $(,)?) => {
        impl TabModelConfig {
            /// Builds the component under `path`.
            pub fn build(&self, path: &nn::Path) -> Result<Box<dyn Component>> {
                Ok(match self {
                    $(TabModelConfig::$variant(c) => Box::new(c.build(path)?),)*
                })
            }
        }
        $(impl From<$config> for TabModelConfig {
            fn from(c: $config) -> Self {
                TabModelConfig::$variant(c)
            }
        })*
    };
}

tab_models!(
    TabMlp(TabMlpConfig),
    TabResnet(TabResnetConfig),
    TabNet(TabNetConfig),
    TabTransformer(TabTransformerConfig),
    Saint(SaintConfig),
    FtTransformer(FtTransformerConfig),
    ContextAttentionMlp(ContextAttentionMlpConfig),
    SelfAttentionMlp(SelfAttentionMlpConfig),
    TabPerceiver(TabPerceiverConfig),
    TabFastFormer(TabFastFormerConfig),
);

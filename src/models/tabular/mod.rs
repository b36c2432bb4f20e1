//! Deep models over the tabular input (categorical indices + continuous values).
pub mod attention;
pub mod context_attention_mlp;
pub mod decoders;
pub mod embeddings;
pub mod ft_transformer;
pub(crate) mod fused_attention;
pub mod saint;
pub mod self_attention_mlp;
pub mod tab_fastformer;
pub mod tab_mlp;
pub mod tab_perceiver;
pub mod tab_resnet;
pub mod tab_transformer;
pub mod tabnet;

pub use attention::{
    AttnEmbedConfig, AttnEmbeddings, ContEmbed, SharedEmbed, TransformerActivation,
};
pub use context_attention_mlp::{ContextAttentionMlp, ContextAttentionMlpConfig};
pub use decoders::{
    TabDecoder, TabDecoderConfig, TabMlpDecoder, TabMlpDecoderConfig, TabNetDecoder,
    TabNetDecoderConfig, TabResnetDecoder, TabResnetDecoderConfig,
};
pub use embeddings::{ContNorm, TabEmbedConfig, TabEmbeddings};
pub use ft_transformer::{FtTransformer, FtTransformerConfig};
pub use saint::{Saint, SaintConfig};
pub use self_attention_mlp::{SelfAttentionMlp, SelfAttentionMlpConfig};
pub use tab_fastformer::{TabFastFormer, TabFastFormerConfig};
pub use tab_mlp::{TabMlp, TabMlpConfig};
pub use tab_perceiver::{TabPerceiver, TabPerceiverConfig};
pub use tab_resnet::{TabResnet, TabResnetConfig};
pub use tab_transformer::{TabTransformer, TabTransformerConfig};
pub use tabnet::{entmax15, sparsemax, MaskType, TabNet, TabNetConfig};

/// The attention embeddings' former path, kept for the code that uses it: they are in
/// [`attention::embeddings`] now.
pub mod attention_embeddings {
    pub use super::attention::embeddings::{
        quantile_edges, AttnEmbedConfig, AttnEmbeddings, ContEmbed, Embedded, SharedEmbed,
    };
}

/// The attention layers' former path, kept for the code that uses it: the layers are in
/// [`attention`] now.
pub mod attention_layers {
    pub use super::attention::TransformerActivation;
}

component_enum! {
    /// The serializable choice of deep tabular model inside a [`crate::models::WideDeepConfig`].
    pub enum TabModelConfig {
        /// [`TabMlp`].
        TabMlp(TabMlpConfig) = "tab_mlp",
        /// [`TabResnet`].
        TabResnet(TabResnetConfig) = "tab_resnet",
        /// [`TabNet`].
        TabNet(TabNetConfig) = "tab_net",
        /// [`TabTransformer`].
        TabTransformer(TabTransformerConfig) = "tab_transformer",
        /// [`Saint`].
        Saint(SaintConfig) = "saint",
        /// [`FtTransformer`].
        FtTransformer(FtTransformerConfig) = "ft_transformer",
        /// [`ContextAttentionMlp`].
        ContextAttentionMlp(ContextAttentionMlpConfig) = "context_attention_mlp",
        /// [`SelfAttentionMlp`].
        SelfAttentionMlp(SelfAttentionMlpConfig) = "self_attention_mlp",
        /// [`TabPerceiver`].
        TabPerceiver(TabPerceiverConfig) = "tab_perceiver",
        /// [`TabFastFormer`].
        TabFastFormer(TabFastFormerConfig) = "tab_fastformer",
        /// [`AutoInt`](crate::models::rec::AutoInt).
        AutoInt(crate::models::rec::AutoIntConfig) = "autoint",
        /// [`AutoIntPlus`](crate::models::rec::AutoIntPlus).
        AutoIntPlus(crate::models::rec::AutoIntPlusConfig) = "autoint_plus",
        /// [`Dcn`](crate::models::rec::Dcn).
        Dcn(crate::models::rec::DcnConfig) = "dcn",
        /// [`DcnV2`](crate::models::rec::DcnV2).
        DcnV2(crate::models::rec::DcnV2Config) = "dcnv2",
        /// [`Gdcn`](crate::models::rec::Gdcn).
        Gdcn(crate::models::rec::GdcnConfig) = "gdcn",
        /// [`DeepFm`](crate::models::rec::DeepFm).
        DeepFm(crate::models::rec::DeepFmConfig) = "deepfm",
        /// [`DeepFfm`](crate::models::rec::DeepFfm).
        DeepFfm(crate::models::rec::DeepFfmConfig) = "deepffm",
        /// [`XDeepFm`](crate::models::rec::XDeepFm).
        XDeepFm(crate::models::rec::XDeepFmConfig) = "xdeepfm",
        /// [`Din`](crate::models::rec::Din).
        Din(crate::models::rec::DinConfig) = "din",
        /// [`SeqTransformer`](crate::models::rec::SeqTransformer).
        SeqTransformer(crate::models::rec::SeqTransformerConfig) = "seq_transformer",
    }
}

/// Shared fixtures and checks for the tabular models' unit tests.
#[cfg(test)]
pub(crate) mod testing;

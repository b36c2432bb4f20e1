//! What the attention models (TabTransformer, SAINT, FT-Transformer, TabFastFormer,
//! TabPerceiver, ContextAttentionMlp, SelfAttentionMlp) are built from:
//!
//! * [`embeddings`]: same-size column tokens ([`AttnEmbedConfig`], [`AttnEmbeddings`]);
//! * `config`: the fields, defaults, checks and build steps the attention configs share
//!   ([`AttnColumns`], [`TransformerBase`], [`AttnMlpBase`]);
//! * the layers: multi-head self- and cross-attention (`multi_head`), Linformer attention with
//!   compressed keys and values (`linformer`), FastFormer's additive attention (`additive`),
//!   the attention MLPs' context and query-key attention and perceptron (`attn_mlp`), the
//!   feed-forward layer and the post-norm transformer block (`block`), the activations
//!   ([`TransformerActivation`]);
//! * `importance`: the stored attention weights, the pooling of tokens into the output, column
//!   importances from attention, and the `Component` methods every attention model shares;
//! * `encoder`: the models as token encoders (embeddings, then blocks, no pooling) for
//!   contrastive–denoising pretraining;
//! * `model`: the body of the models whose blocks map tokens to tokens (all but SAINT and
//!   TabPerceiver).
//!
//! Shape letters: `b` batch, `s`/`n` tokens, `l` key tokens, `h` heads, `d` model width,
//! `e = d / h` head width.
mod activation;
mod additive;
mod attn_mlp;
mod block;
mod config;
pub mod embeddings;
mod encoder;
mod importance;
mod linformer;
mod model;
mod multi_head;

pub use activation::TransformerActivation;
pub use config::{AttnColumns, AttnDefaults, AttnMlpBase, TransformerBase, TransformerDefaults};
pub use embeddings::{
    quantile_edges, AttnEmbedConfig, AttnEmbeddings, ContEmbed, Embedded, SharedEmbed,
};

pub(crate) use additive::AdditiveAttention;
pub(crate) use attn_mlp::{AttnMlpBlock, ContextAttention, QueryKeySelfAttention};
pub(crate) use block::{layer_norm, FeedForward, TokenMixer, TransformerBlock};
pub(crate) use config::{attention_config, build_top_mlp};
pub(crate) use encoder::{build_token_encoder, TokenEncoder};
pub(crate) use importance::{
    apply_top_mlp, attention_component_methods, importance_over_rows, key_mass, pool_tokens,
    pooled_width, tokens_to_columns, AttentionStore,
};
pub(crate) use linformer::LinformerAttention;
pub(crate) use model::{token_model_component, TokenBlock, TokenModel};
pub(crate) use multi_head::MultiHeadAttention;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

//! [`AttnEmbedConfig`]: the embedding options shared by the attention models.
use super::{ContEmbed, SharedEmbed};
use crate::error::Result;
use crate::macros::setters;
use crate::models::checks::check_dropout;
use crate::models::{Activation, ContNorm};
use serde::{Deserialize, Serialize};

/// Embedding options shared by the attention models. The token width (`input_dim`) belongs to
/// the model config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttnEmbedConfig {
    /// Dropout on the categorical tokens, in `[0, 1)`.
    pub cat_embed_dropout: f64,
    /// A learned bias per categorical column added to its value embeddings.
    pub use_cat_bias: bool,
    /// Activation applied to the categorical tokens.
    pub cat_embed_activation: Option<Activation>,
    /// Shared column embeddings for the categorical columns.
    pub shared_embed: SharedEmbed,
    /// How continuous columns are embedded.
    pub cont_embed: ContEmbed,
    /// Dropout on the continuous tokens, in `[0, 1)`.
    pub cont_embed_dropout: f64,
    /// Activation applied to the continuous tokens (after the periodic embedding's own ReLU).
    pub cont_embed_activation: Option<Activation>,
    /// Normalisation of the continuous values before they are embedded.
    pub cont_norm: ContNorm,
    /// Drop whole column tokens (per row) instead of single dimensions: the categorical and
    /// continuous dropout probabilities then apply to tokens.
    pub full_embed_dropout: bool,
    /// Prepend a learned `[CLS]` token; models then read their output from it.
    pub with_cls_token: bool,
}

impl Default for AttnEmbedConfig {
    fn default() -> Self {
        Self {
            cat_embed_dropout: 0.0,
            use_cat_bias: false,
            cat_embed_activation: None,
            shared_embed: SharedEmbed::None,
            cont_embed: ContEmbed::Standard,
            cont_embed_dropout: 0.0,
            cont_embed_activation: None,
            cont_norm: ContNorm::None,
            full_embed_dropout: false,
            with_cls_token: false,
        }
    }
}

impl AttnEmbedConfig {
    /// The default options: no dropout, bias, shared embedding, activation, normalisation or
    /// `[CLS]` token; standard continuous embeddings.
    pub fn new() -> Self {
        Self::default()
    }
    setters!(
        cat_embed_dropout: f64,
        use_cat_bias: bool,
        cat_embed_activation: Option<Activation>,
        shared_embed: SharedEmbed,
        cont_embed: ContEmbed,
        cont_embed_dropout: f64,
        cont_embed_activation: Option<Activation>,
        cont_norm: ContNorm,
        full_embed_dropout: bool,
        with_cls_token: bool,
    );

    /// Checks the options for `n_cont` continuous columns and tokens of width `input_dim`;
    /// `prefix` names the owner in errors (e.g. `ft_transformer.embed`).
    pub fn validate(&self, input_dim: i64, n_cont: usize, prefix: &str) -> Result<()> {
        check_dropout(
            self.cat_embed_dropout,
            &format!("{prefix}.cat_embed_dropout"),
        )?;
        check_dropout(
            self.cont_embed_dropout,
            &format!("{prefix}.cont_embed_dropout"),
        )?;
        self.shared_embed
            .validate(input_dim, &format!("{prefix}.shared_embed"))?;
        self.cont_embed
            .validate(n_cont, &format!("{prefix}.cont_embed"))
    }
}

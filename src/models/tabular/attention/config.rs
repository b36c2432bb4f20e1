//! The fields, defaults, checks and first build steps the seven attention configs share.
//!
//! Each attention config embeds one shared part in its field `base` with `#[serde(flatten)]`,
//! so its saved JSON keeps every key at the top level:
//!
//! * [`AttnColumns`]: the columns and their tokens (`cat_embed`, `cont_cols`, `input_dim`,
//!   `embed`), in every part; TabPerceiver embeds it alone;
//! * [`TransformerBase`]: the columns, the transformer stack (`n_heads`, `n_blocks`, the two
//!   dropouts, `ff_factor`, `transformer_activation`) and the MLP on top, in TabTransformer,
//!   SAINT, FT-Transformer and TabFastFormer;
//! * [`AttnMlpBase`]: the columns and the blocks of the attention MLPs (`attn_dropout`,
//!   `with_addnorm`, `attn_activation`, `n_blocks`), in ContextAttentionMlp and
//!   SelfAttentionMlp.
//!
//! A config dereferences to its part, so `cfg.input_dim` or `cfg.mlp = Some(..)` read as on a
//! flat struct, and gets `from_meta` and the setters of the shared fields from
//! `attention_config!`. Defaults differ between models: a part takes them from the config's
//! [`AttnDefaults`] / [`TransformerDefaults`] (for `Default`, `from_meta`, and keys missing
//! from a JSON config alike).
use super::activation::TransformerActivation;
use super::attn_mlp::AttnMlpBlock;
use super::block::{TokenMixer, TransformerBlock};
use super::embeddings::{check_cardinalities, check_has_columns, AttnEmbedConfig, AttnEmbeddings};
use super::importance::pooled_width;
use super::multi_head::MultiHeadAttention;
use crate::error::Result;
use crate::models::checks::{
    check_dropouts, check_ff_factor, check_min, check_mlp_and_embed, check_transformer,
};
use crate::models::{Mlp, MlpConfig};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use tch::nn;
use widedeep_preprocessing::CatColumnMeta;

/// Writes what an attention config gets from its shared part (its field `base`): `Deref` and
/// `DerefMut` to the part, `from_meta`, and the builder setters of the shared fields (plus
/// `mlp` for a [`TransformerBase`]).
macro_rules! attention_config {
    ($config:ident: AttnColumns) => {
        $crate::models::tabular::attention::attention_config!(@columns $config, AttnColumns);
    };
    ($config:ident: TransformerBase) => {
        $crate::models::tabular::attention::attention_config!(@columns $config, TransformerBase);

        impl $config {
            $crate::macros::setters!(
                /// Attention heads; must divide `input_dim`.
                n_heads: i64,
                /// Transformer blocks.
                n_blocks: i64,
                /// Dropout on the attention weights and the attention residual.
                attn_dropout: f64,
                /// Dropout in and after the feed-forward layer.
                ff_dropout: f64,
                /// Feed-forward hidden width = `floor(width · ff_factor)`.
                ff_factor: f64,
                /// Activation of the feed-forward layers.
                transformer_activation: $crate::models::tabular::attention::TransformerActivation,
            );

            /// Puts an MLP on top.
            pub fn mlp(mut self, mlp: $crate::models::MlpConfig) -> Self {
                self.mlp = Some(mlp);
                self
            }
        }
    };
    ($config:ident: AttnMlpBase) => {
        $crate::models::tabular::attention::attention_config!(@columns $config, AttnMlpBase);

        impl $config {
            $crate::macros::setters!(
                /// Dropout on the attention weights, the residuals and the perceptron.
                attn_dropout: f64,
                /// Post-norm residuals around attention and perceptron.
                with_addnorm: bool,
                /// Activation of the perceptron.
                attn_activation: $crate::models::tabular::attention::TransformerActivation,
                /// Blocks.
                n_blocks: i64,
            );
        }
    };
    (@columns $config:ident, $part:ident) => {
        $crate::models::tabular::attention::attention_config!(@deref $config, $part);

        impl $config {
            /// Columns and cardinalities from a fitted `TabPreprocessor`, reference defaults
            /// otherwise.
            pub fn from_meta(meta: &::widedeep_preprocessing::TabMeta) -> Self {
                let mut config = Self::default();
                config.cat_embed = meta.cat.clone();
                config.cont_cols = meta.cont.clone();
                config
            }
        }
    };
    // `Deref`/`DerefMut` to the shared part (field `base`) and the token setters.
    (@deref $config:ident, $part:ident) => {
        impl ::std::ops::Deref for $config {
            type Target = $crate::models::tabular::attention::$part<$config>;
            fn deref(&self) -> &Self::Target {
                &self.base
            }
        }

        impl ::std::ops::DerefMut for $config {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.base
            }
        }

        impl $config {
            $crate::macros::setters!(
                /// Token width.
                input_dim: i64,
                /// Embedding options of the tokens.
                embed: $crate::models::tabular::attention::AttnEmbedConfig,
            );
        }
    };
}
pub(crate) use attention_config;

/// The defaults an attention config gives its [`AttnColumns`].
pub trait AttnDefaults {
    /// Token width.
    const INPUT_DIM: i64 = 32;
}

/// The defaults a transformer-style config gives its [`TransformerBase`].
pub trait TransformerDefaults: AttnDefaults {
    /// Attention heads.
    const N_HEADS: i64 = 8;
    /// Transformer blocks.
    const N_BLOCKS: i64 = 4;
    /// Dropout on the attention weights and the attention residual.
    const ATTN_DROPOUT: f64;
    /// Dropout in and after the feed-forward layer.
    const FF_DROPOUT: f64;
    /// Feed-forward hidden width over token width.
    const FF_FACTOR: f64 = 4.0;
    /// Activation of the feed-forward layers.
    const TRANSFORMER_ACTIVATION: TransformerActivation;
}

/// Zero-sized tag of the config whose defaults a shared part takes.
struct DefaultsOf<M>(PhantomData<fn() -> M>);

impl<M> Default for DefaultsOf<M> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<M> Clone for DefaultsOf<M> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<M> PartialEq for DefaultsOf<M> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<M> fmt::Debug for DefaultsOf<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DefaultsOf")
    }
}

/// The columns of an attention model and their tokens, shared by every attention config
/// (flattened into its JSON). `M` is the config, which gives the defaults ([`AttnDefaults`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, bound(serialize = "", deserialize = "M: AttnDefaults"))]
pub struct AttnColumns<M> {
    /// Categorical columns (name and cardinality; `embed_dim` is ignored: every token has
    /// `input_dim` dimensions).
    pub cat_embed: Vec<CatColumnMeta>,
    /// Continuous columns.
    pub cont_cols: Vec<String>,
    /// Token width (32; 64 for FT-Transformer).
    pub input_dim: i64,
    /// Embedding options of the tokens.
    pub embed: AttnEmbedConfig,
    #[serde(skip)]
    defaults: DefaultsOf<M>,
}

impl<M: AttnDefaults> Default for AttnColumns<M> {
    fn default() -> Self {
        Self {
            cat_embed: Vec::new(),
            cont_cols: Vec::new(),
            input_dim: M::INPUT_DIM,
            embed: AttnEmbedConfig::default(),
            defaults: DefaultsOf::default(),
        }
    }
}

impl<M> AttnColumns<M> {
    /// The last checks of every attention config: the MLP on top (if any), the embedding
    /// options, that there is a column, and the cardinalities; errors name the field under
    /// `name` (`saint.embed.cont_embed`, …).
    pub(crate) fn check(&self, name: &str, mlp: Option<&MlpConfig>) -> Result<()> {
        let (cat, cont) = (&self.cat_embed, &self.cont_cols);
        check_mlp_and_embed(name, mlp, &self.embed, self.input_dim, cont.len())?;
        check_has_columns(cat, cont, name)?;
        check_cardinalities(cat, name)
    }

    /// The token embeddings under `path/embed`; `embed_cont = false` keeps the continuous
    /// columns as values beside the tokens.
    pub(crate) fn embeddings(
        &self,
        path: &nn::Path,
        name: &str,
        embed_cont: bool,
    ) -> Result<AttnEmbeddings> {
        AttnEmbeddings::new(
            &(path / "embed"),
            &self.cat_embed,
            &self.cont_cols,
            self.input_dim,
            &self.embed,
            embed_cont,
            name,
        )
    }
}

/// The shared part of TabTransformer, SAINT, FT-Transformer and TabFastFormer: the columns,
/// the transformer stack and the MLP on top (flattened into the config's JSON). `M` is the
/// config, which gives the defaults ([`TransformerDefaults`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, bound(serialize = "", deserialize = "M: TransformerDefaults"))]
pub struct TransformerBase<M> {
    /// The columns and their tokens.
    #[serde(flatten)]
    pub columns: AttnColumns<M>,
    /// Attention heads (8); must divide `input_dim`.
    pub n_heads: i64,
    /// Transformer blocks.
    pub n_blocks: i64,
    /// Dropout on the attention weights and the attention residual.
    pub attn_dropout: f64,
    /// Dropout in and after the feed-forward layer.
    pub ff_dropout: f64,
    /// Feed-forward hidden width = `floor(width · ff_factor)`.
    pub ff_factor: f64,
    /// Activation of the feed-forward layers.
    pub transformer_activation: TransformerActivation,
    /// MLP on top (none by default).
    pub mlp: Option<MlpConfig>,
}

impl<M: TransformerDefaults> Default for TransformerBase<M> {
    fn default() -> Self {
        Self {
            columns: AttnColumns::default(),
            n_heads: M::N_HEADS,
            n_blocks: M::N_BLOCKS,
            attn_dropout: M::ATTN_DROPOUT,
            ff_dropout: M::FF_DROPOUT,
            ff_factor: M::FF_FACTOR,
            transformer_activation: M::TRANSFORMER_ACTIVATION,
            mlp: None,
        }
    }
}

impl<M> TransformerBase<M> {
    /// `n_heads` divides `input_dim`, `n_blocks ≥ 1`, both dropouts, `ff_factor`; errors name
    /// the field under `name`.
    pub(crate) fn check_stack(&self, name: &str) -> Result<()> {
        check_transformer(
            name,
            self.input_dim,
            self.n_heads,
            self.n_blocks,
            (self.attn_dropout, self.ff_dropout),
            self.ff_factor,
        )
    }

    /// The MLP on top, then the columns and their tokens ([`AttnColumns::check`]).
    pub(crate) fn check_top(&self, name: &str) -> Result<()> {
        self.columns.check(name, self.mlp.as_ref())
    }

    /// [`TransformerBase::check_stack`], then [`TransformerBase::check_top`].
    pub(crate) fn check(&self, name: &str) -> Result<()> {
        self.check_stack(name)?;
        self.check_top(name)
    }

    /// Hidden width of the feed-forward layers on tokens of width `width`.
    pub(crate) fn ff_hidden(&self, name: &str, width: i64) -> Result<i64> {
        check_ff_factor(width, self.ff_factor, format!("{name}.ff_factor"))
    }

    /// Multi-head self-attention on tokens of width `width` under `path/attn`.
    pub(crate) fn self_attention(
        &self,
        path: &nn::Path,
        width: i64,
        bias: bool,
    ) -> MultiHeadAttention {
        MultiHeadAttention::new_self(
            &(path / "attn"),
            width,
            self.n_heads,
            bias,
            self.attn_dropout,
        )
    }

    /// A post-norm block of `attn` and a feed-forward layer of hidden width `hidden` on tokens
    /// of width `width`, under `path`.
    pub(crate) fn block<A: TokenMixer>(
        &self,
        path: &nn::Path,
        attn: A,
        width: i64,
        hidden: i64,
    ) -> TransformerBlock<A> {
        TransformerBlock::new(
            path,
            attn,
            width,
            hidden,
            self.transformer_activation,
            (self.attn_dropout, self.ff_dropout),
        )
    }

    /// The MLP on top of `features` inputs and the model's output width ([`build_top_mlp`]).
    pub(crate) fn top_mlp(
        &self,
        path: &nn::Path,
        name: &str,
        features: i64,
    ) -> Result<(Option<Mlp>, i64)> {
        build_top_mlp(path, name, self.mlp.as_ref(), features)
    }
}

impl<M> Deref for TransformerBase<M> {
    type Target = AttnColumns<M>;
    fn deref(&self) -> &AttnColumns<M> {
        &self.columns
    }
}

impl<M> DerefMut for TransformerBase<M> {
    fn deref_mut(&mut self) -> &mut AttnColumns<M> {
        &mut self.columns
    }
}

/// The shared part of ContextAttentionMlp and SelfAttentionMlp: the columns and the blocks of
/// attention and single-layer perceptron (flattened into the config's JSON). `M` is the
/// config, which gives the defaults of the columns ([`AttnDefaults`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, bound(serialize = "", deserialize = "M: AttnDefaults"))]
pub struct AttnMlpBase<M> {
    /// The columns and their tokens.
    #[serde(flatten)]
    pub columns: AttnColumns<M>,
    /// Dropout on the attention weights, the residuals and the perceptron (0.2).
    pub attn_dropout: f64,
    /// Post-norm residuals around attention and perceptron (false: the perceptron normalises).
    pub with_addnorm: bool,
    /// Activation of the perceptron (leaky ReLU).
    pub attn_activation: TransformerActivation,
    /// Blocks (3).
    pub n_blocks: i64,
}

impl<M: AttnDefaults> Default for AttnMlpBase<M> {
    fn default() -> Self {
        Self {
            columns: AttnColumns::default(),
            attn_dropout: 0.2,
            with_addnorm: false,
            attn_activation: TransformerActivation::LeakyRelu,
            n_blocks: 3,
        }
    }
}

impl<M> AttnMlpBase<M> {
    /// `n_blocks ≥ 1`, `attn_dropout`, then the columns and their tokens; errors name the
    /// field under `name`.
    pub(crate) fn check(&self, name: &str) -> Result<()> {
        check_min(self.n_blocks, 1, format!("{name}.n_blocks"))?;
        check_dropouts(name, &[("attn_dropout", self.attn_dropout)])?;
        self.columns.check(name, None)
    }

    /// The token embeddings and `n_blocks` blocks under `path/block_{i}`, each with the
    /// attention `attention(path/block_{i}/attn)` (validate first); returns them with the
    /// output width (the `[CLS]` token or all tokens flattened).
    pub(crate) fn build<A: TokenMixer>(
        &self,
        path: &nn::Path,
        name: &str,
        attention: impl Fn(&nn::Path) -> A,
    ) -> Result<(AttnEmbeddings, Vec<AttnMlpBlock<A>>, i64)> {
        let embed = self.embeddings(path, name, true)?;
        let d = self.input_dim;
        let blocks = (0..self.n_blocks)
            .map(|i| {
                let bp = path / format!("block_{i}");
                let attn = attention(&(&bp / "attn"));
                let (act, addnorm) = (self.attn_activation, self.with_addnorm);
                AttnMlpBlock::new(&bp, attn, d, act, addnorm, self.attn_dropout)
            })
            .collect();
        let output_dim = pooled_width(embed.has_cls(), embed.n_tokens(), d);
        Ok((embed, blocks, output_dim))
    }
}

impl<M> Deref for AttnMlpBase<M> {
    type Target = AttnColumns<M>;
    fn deref(&self) -> &AttnColumns<M> {
        &self.columns
    }
}

impl<M> DerefMut for AttnMlpBase<M> {
    fn deref_mut(&mut self) -> &mut AttnColumns<M> {
        &mut self.columns
    }
}

/// The optional MLP on top of `features` inputs, under `path/mlp`, and the model's output width.
pub(crate) fn build_top_mlp(
    path: &nn::Path,
    name: &str,
    mlp: Option<&MlpConfig>,
    features: i64,
) -> Result<(Option<Mlp>, i64)> {
    let mlp = mlp
        .map(|m| m.build(&(path / "mlp"), features, &format!("{name}.mlp")))
        .transpose()?;
    let output_dim = mlp.as_ref().map_or(features, |m| m.output_dim());
    Ok((mlp, output_dim))
}

